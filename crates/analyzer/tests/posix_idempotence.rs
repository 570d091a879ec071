//! Known answers of the idempotence check on the POSIX model: decided, with no solver unknown.

use commuter_analyzer::{Analysis, CallSetReport};

mod common;
use common::idempotence;

fn run(functions: &str) -> Analysis {
    let a = common::run("posix", Some(functions));
    assert_eq!(a.total_unknowns(), 0, "{functions}");
    a
}

fn only(a: &Analysis) -> &CallSetReport {
    assert_eq!(a.call_sets.len(), 1);
    &a.call_sets[0]
}

fn dump(paths: &[(String, Vec<String>)]) -> String {
    paths
        .iter()
        .map(|(c, i)| format!("{i:?} when {c}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const BOTH: [&str; 2] = ["a", "b"];

/// Whether `atom` occurs in `cond` as a positive conjunct-level atom (not after `!`, not as
/// part of a longer name).
fn holds(cond: &str, atom: &str) -> bool {
    let name = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '#';
    cond.match_indices(atom).any(|(i, _)| {
        let before = cond[..i].chars().next_back();
        let after = cond[i + atom.len()..].chars().next();
        !before.is_some_and(|c| name(c) || c == '!') && !after.is_some_and(name)
    })
}

fn has(idem: &[String], slot: &str) -> bool {
    idem.iter().any(|s| s == slot)
}

#[test]
fn stat_stat_is_idempotent_everywhere() {
    let paths = idempotence(only(&run("stat/stat")));
    assert!(!paths.is_empty());
    for (cond, idem) in &paths {
        assert_eq!(idem, &BOTH, "read-only calls: {cond}");
    }
}

#[test]
#[ignore = "lseek/lseek takes about a minute in a debug build: run with --ignored"]
fn lseek_to_an_absolute_offset_is_idempotent() {
    let paths = idempotence(only(&run("lseek/lseek")));
    // Both seek to an absolute offset (SEEK_SET; one fd and one offset included): each
    // repeats itself.
    let absolute: Vec<_> = paths
        .iter()
        .filter(|(c, _)| holds(c, "a.whence_set") && holds(c, "b.whence_set"))
        .collect();
    assert!(!absolute.is_empty(), "{}", dump(&paths));
    for (cond, idem) in &absolute {
        assert_eq!(idem, &BOTH, "{cond}");
    }
    // A relative seek (SEEK_CUR) that succeeds moves again when repeated.
    assert!(
        paths
            .iter()
            .any(|(c, idem)| holds(c, "a.whence_cur") && !has(idem, "a")),
        "{}",
        dump(&paths)
    );
}

#[test]
#[ignore = "write/write takes several minutes in a debug build: run with --ignored"]
fn pipe_writes_are_not_idempotent() {
    let paths = idempotence(only(&run("write/write")));
    // a writes to a pipe whose read end is open: it appends each time. (Without a reader it
    // fails with EPIPE each time, which is idempotent.)
    let pipe_writes: Vec<_> = paths
        .iter()
        .filter(|(c, _)| holds(c, "s.proc0.fd_map[a.fd].pipewriter") && holds(c, "pipe_end_open#1"))
        .collect();
    assert!(!pipe_writes.is_empty(), "{}", dump(&paths));
    for (cond, idem) in &pipe_writes {
        assert!(!has(idem, "a"), "{idem:?} when {cond}");
    }
    assert!(
        paths
            .iter()
            .any(|(c, idem)| holds(c, "s.proc0.fd_map[a.fd].pipewriter")
                && !holds(c, "pipe_end_open#1")
                && has(idem, "a")),
        "a write without a reader (EPIPE) repeats itself: {}",
        dump(&paths)
    );
}

#[test]
#[ignore = "pwrite/pwrite takes about two minutes in a debug build: run with --ignored"]
fn pwrite_is_idempotent() {
    // Writing the same bytes at the same offset again changes nothing (the same byte at the
    // same offset by both calls included): every commutative path.
    let paths = idempotence(only(&run("pwrite/pwrite")));
    assert!(!paths.is_empty());
    for (cond, idem) in &paths {
        assert_eq!(idem, &BOTH, "{cond}");
    }
}

#[test]
#[ignore = "mmap/mmap takes several minutes in a debug build: run with --ignored"]
fn fixed_anonymous_mmap_of_the_same_page_is_idempotent() {
    let paths = idempotence(only(&run("mmap/mmap")));
    let same: Vec<_> = paths
        .iter()
        .filter(|(c, _)| {
            ["a.fixed", "a.anon", "b.fixed", "b.anon", "b.va == a.va"]
                .iter()
                .all(|atom| holds(c, atom))
        })
        .collect();
    assert!(!same.is_empty(), "{}", dump(&paths));
    for (cond, idem) in &same {
        assert_eq!(idem, &BOTH, "{cond}");
    }
}

/// `mmap`/`mmap` without conditions (a few seconds): every query decided. One of its quantified
/// queries ("no choice of the path's internal values ...") comes back "incomplete quantifiers"
/// from the incremental solver and is decided only by the engine's one-shot retry (this test
/// failed before it, once the engine started reusing simplified conditions).
#[test]
fn mmap_mmap_is_decided_without_unknowns() {
    let m = commuter_models::find_model("posix").expect("built-in model");
    let sets = commuter_analyzer::select_model_call_sets(m.as_ref(), Some("mmap/mmap"), 2)
        .expect("valid selection");
    let opts = commuter_analyzer::AnalyzeOptions::default();
    let a = commuter_analyzer::analyze(m.as_ref(), &sets, &opts, Some("mmap/mmap"), &|_| {})
        .expect("analysis runs");
    assert_eq!(
        a.total_unknowns(),
        0,
        "{:?}",
        only(&a)
            .path_list
            .iter()
            .filter(|p| !p.unknowns.is_empty())
            .map(|p| &p.id)
            .collect::<Vec<_>>()
    );
    assert!(
        only(&a).path_list.len() > 600,
        "mmap/mmap has about 700 paths"
    );
}
