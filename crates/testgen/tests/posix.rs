//! Conflict coverage of the POSIX model: the situations an implementation is known to tell
//! apart each get a test, and no two tests of one path are of the same class.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use commuter_analyzer::{select_model_call_sets, slot_name};
use commuter_models::find_model;
use commuter_testgen::{CallSetTests, TestCase, TestgenOptions, testgen};
use serde_json::Value as Json;

/// The tests of one call set, generated once per test binary: several tests read the same
/// set (`mmap/mmap` alone takes a minute or more), and tests run on parallel threads.
fn call_set(functions: &str) -> &'static CallSetTests {
    static GENERATED: Mutex<BTreeMap<String, &'static OnceLock<CallSetTests>>> =
        Mutex::new(BTreeMap::new());
    let once: &'static OnceLock<CallSetTests> = GENERATED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(functions.to_string())
        .or_insert_with(|| Box::leak(Box::default()));
    once.get_or_init(|| generate(functions))
}

fn generate(functions: &str) -> CallSetTests {
    let m = find_model("posix").expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), Some(functions), 2).expect("selection");
    let suite = testgen(
        m.as_ref(),
        &sets,
        &TestgenOptions::default(),
        Some(functions),
        &|_| {},
    )
    .expect("testgen")
    .0;
    assert_eq!(suite.call_sets.len(), 1, "{functions} is one call set");
    let cs = suite.call_sets.into_iter().next().expect("one call set");
    assert!(cs.errors.is_empty(), "{functions}: {:?}", cs.errors);
    cs
}

fn arg<'t>(t: &'t TestCase, slot: usize, field: &str) -> &'t Json {
    &t.calls[slot].args[field]
}

/// A place in a setup file: (setup inode, offset in bytes).
type FilePage = (i64, i64);

/// Where a setup fd or mapping points into a file; `None` for a pipe end or an anonymous page.
fn file_page(fd_or_map: &Json) -> Option<FilePage> {
    let file = &fd_or_map["file"];
    Some((file["inode"].as_i64()?, file["off"].as_i64()?))
}

/// The file fd `fd` of process `proc` in the test's setup: (inode, offset).
fn file_fd(t: &TestCase, proc: &Json, fd: &Json) -> Option<FilePage> {
    let p = proc.as_u64()? as usize;
    t.setup["procs"][p]["fds"]
        .as_array()?
        .iter()
        .find(|f| &f["fd"] == fd)
        .and_then(file_page)
}

/// Whether the two calls name different pages (in one process or in two).
fn two_pages(t: &TestCase) -> bool {
    arg(t, 0, "proc") != arg(t, 1, "proc") || arg(t, 0, "page") != arg(t, 1, "page")
}

/// The inode each call's fd is open on, when both are file fds.
fn inodes_of(t: &TestCase) -> Option<(i64, i64)> {
    let of = |slot| file_fd(t, arg(t, slot, "proc"), arg(t, slot, "fd")).map(|(i, _)| i);
    Some((of(0)?, of(1)?))
}

fn length_in_bytes(t: &TestCase, inode: i64) -> i64 {
    let pages = t.setup["inodes"][inode as usize]["data"]
        .as_array()
        .map_or(0, Vec::len);
    pages as i64 * 4096
}

#[test]
fn pwrites_to_one_file_cover_different_pages_and_one_page() {
    let cs = call_set("pwrite/pwrite");
    // Both calls write (inside the file, not appending) to one file through file fds.
    let overwrites_one_file = |t: &&TestCase| match inodes_of(t) {
        Some((a, b)) if a == b => {
            let len = length_in_bytes(t, a);
            (0..2).all(|slot| {
                let off = arg(t, slot, "off").as_i64().unwrap_or(-1);
                (0..len).contains(&off)
            })
        }
        _ => false,
    };
    let one_file: Vec<&TestCase> = cs.tests.iter().filter(overwrites_one_file).collect();
    let same_page = one_file
        .iter()
        .any(|t| arg(t, 0, "off") == arg(t, 1, "off"));
    let different_pages = one_file
        .iter()
        .any(|t| arg(t, 0, "off") != arg(t, 1, "off"));
    assert!(same_page, "no pwrite/pwrite test writes one page twice");
    assert!(
        different_pages,
        "no pwrite/pwrite test writes two pages of one file"
    );
}

#[test]
fn appending_and_overwriting_are_paths_of_their_own() {
    let cs = call_set("pwrite/pwrite");
    // Per path: whether slot a's pwrite (through a file fd, at a valid offset) appends.
    let mut kinds: BTreeMap<&str, BTreeSet<bool>> = BTreeMap::new();
    for t in &cs.tests {
        let Some((ino, _)) = file_fd(t, arg(t, 0, "proc"), arg(t, 0, "fd")) else {
            continue;
        };
        let off = arg(t, 0, "off").as_i64().expect("an offset");
        if off >= 0 {
            let appends = off == length_in_bytes(t, ino);
            kinds.entry(&t.path).or_default().insert(appends);
        }
    }
    assert!(kinds.values().all(|k| k.len() == 1), "{kinds:?}");
    let seen: BTreeSet<bool> = kinds.values().flatten().copied().collect();
    assert_eq!(seen.len(), 2, "appending and overwriting: {kinds:?}");
}

#[test]
fn munmaps_cover_mapped_and_unmapped_pages() {
    let cs = call_set("munmap/munmap");
    let mapping = |t: &TestCase, slot: usize| -> &'static str {
        let p = arg(t, slot, "proc").as_u64().expect("proc") as usize;
        let page = arg(t, slot, "page");
        let maps = t.setup["procs"][p]["maps"].as_array().expect("maps");
        match maps.iter().find(|m| &m["page"] == page) {
            None => "unmapped",
            Some(m) if m.get("anon").is_some() => "anonymous",
            Some(_) => "file",
        }
    };
    let seen: BTreeSet<&str> = cs
        .tests
        .iter()
        .flat_map(|t| [mapping(t, 0), mapping(t, 1)])
        .collect();
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["anonymous", "file", "unmapped"]
    );
    // Both pages mapped, one test per writable combination at least.
    let writable = |t: &TestCase, slot: usize| {
        let p = arg(t, slot, "proc").as_u64().expect("proc") as usize;
        t.setup["procs"][p]["maps"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["page"] == *arg(t, slot, "page")))
            .map(|m| m["writable"] == Json::Bool(true))
    };
    assert!(cs.tests.iter().any(|t| writable(t, 0) == Some(true)));
    assert!(cs.tests.iter().any(|t| writable(t, 0) == Some(false)));
}

#[test]
fn created_and_truncated_is_a_path_of_its_own() {
    let cs = call_set("open/open");
    let creates_truncating = |t: &TestCase, slot: usize| {
        let name = arg(t, slot, "name");
        let exists = t.setup["names"]
            .as_array()
            .is_some_and(|n| n.iter().any(|e| &e["name"] == name));
        !exists
            && arg(t, slot, "creat") == &Json::Bool(true)
            && arg(t, slot, "trunc") == &Json::Bool(true)
    };
    assert!(cs.tests.iter().any(|t| creates_truncating(t, 0)));
}

/// A class line as (atom, truth): `x != y` is `x == y` false, `!f` is `f` false.
fn atom(line: &str) -> (String, bool) {
    for (neg, pos) in [(" != ", " == "), (" >= ", " < "), (" <= ", " > ")] {
        if line.contains(neg) {
            return (line.replacen(neg, pos, 1), false);
        }
    }
    match line.strip_prefix('!') {
        Some(rest) => (rest.to_string(), false),
        None => (line.to_string(), true),
    }
}

/// Two tests of one path must differ in a fact or an equality both of them define.
fn assert_distinct_classes(cs: &CallSetTests) {
    let mut by_path: BTreeMap<&str, Vec<&TestCase>> = BTreeMap::new();
    for t in &cs.tests {
        by_path.entry(&t.path).or_default().push(t);
    }
    for tests in by_path.values() {
        let classes: Vec<BTreeMap<String, bool>> = tests
            .iter()
            .map(|t| t.class.iter().map(|l| atom(l)).collect())
            .collect();
        for (i, a) in classes.iter().enumerate() {
            for (j, b) in classes.iter().enumerate().skip(i + 1) {
                let differ = a.iter().any(|(k, v)| b.get(k).is_some_and(|w| w != v));
                assert!(
                    differ,
                    "{} and {} share a class:\n{:?}\n{:?}",
                    tests[i].id, tests[j].id, tests[i].class, tests[j].class
                );
            }
        }
    }
}

#[test]
fn no_two_tests_of_one_path_share_a_class() {
    for functions in [
        "pwrite/pwrite",
        "munmap/munmap",
        "close/close",
        "link/close",
        "lseek/lseek",
        "open/unlink",
        "mmap/memread",
        "close/read",
        "mprotect/mprotect",
    ] {
        let cs = call_set(functions);
        assert!(!cs.tests.is_empty(), "{functions}");
        assert_distinct_classes(cs);
    }
}

#[test]
fn names_no_branch_reads_make_no_classes() {
    // link's names on a missing source: only whether they are equal to each other is read
    // (no, `new` is never looked up), and close's fd is open or not.
    let cs = call_set("link/close");
    let enoent: Vec<&TestCase> = cs
        .tests
        .iter()
        .filter(|t| {
            t.expected
                .iter()
                .any(|e| e.slot == "a" && e.result.get("err") == Some(&Json::from(2)))
        })
        .collect();
    assert!(!enoent.is_empty());
    assert!(
        enoent
            .iter()
            .all(|t| t.class.iter().all(|l| !l.contains("a.new"))),
        "{:?}",
        enoent.iter().map(|t| &t.class).collect::<Vec<_>>()
    );
}

/// The link count of the inode `name` names in the test's setup, and how many names name it.
fn links_of(t: &TestCase, name: &Json) -> Option<(i64, usize)> {
    let names = t.setup["names"].as_array()?;
    let inode = names.iter().find(|n| &n["name"] == name)?["inode"].as_i64()?;
    let nlink = t.setup["inodes"][inode as usize]["nlink"].as_i64()?;
    let named = names.iter().filter(|n| n["inode"] == inode).count();
    Some((nlink, named))
}

#[test]
fn unlinking_the_last_link_and_another_link_are_both_covered() {
    let cs = call_set("unlink/unlink");
    let succeeding: Vec<(i64, usize)> = cs
        .tests
        .iter()
        .filter_map(|t| links_of(t, arg(t, 0, "name")))
        .collect();
    assert!(
        succeeding.contains(&(1, 1)),
        "no unlink/unlink test removes a file's last link: {succeeding:?}"
    );
    assert!(
        succeeding.iter().any(|&(nlink, _)| nlink > 1),
        "no unlink/unlink test removes one of several links: {succeeding:?}"
    );
    // Setups are realisable: an inode never has fewer links than names naming it.
    for t in &cs.tests {
        for n in t.setup["names"].as_array().into_iter().flatten() {
            let (nlink, named) = links_of(t, &n["name"]).expect("a named inode has a link count");
            assert!(
                nlink >= named as i64,
                "{}: {nlink} links, {named} names",
                t.id
            );
        }
    }
}

/// The setup's mapping of the page call `slot` names, in the call's process.
fn mapping(t: &TestCase, slot: usize) -> Option<&Json> {
    let p = arg(t, slot, "proc").as_u64()? as usize;
    let maps = t.setup["procs"][p]["maps"].as_array()?;
    maps.iter().find(|m| m["page"] == *arg(t, slot, "page"))
}

/// How many fds and mappings of the test's setup refer to setup inode `inode`.
fn references(t: &TestCase, inode: i64) -> usize {
    let procs = t.setup["procs"].as_array().into_iter().flatten();
    procs
        .map(|p| {
            let fds = p["fds"].as_array().into_iter().flatten();
            let maps = p["maps"].as_array().into_iter().flatten();
            fds.filter(|f| f["file"]["inode"].as_i64() == Some(inode))
                .count()
                + maps
                    .filter(|m| m["file"]["inode"].as_i64() == Some(inode))
                    .count()
        })
        .sum()
}

/// Whether setup inode `inode` has no name and no link at all (open, but unlinked).
fn unlinked(t: &TestCase, inode: i64) -> bool {
    let named = t.setup["names"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|n| n["inode"].as_i64() == Some(inode));
    !named
        && t.setup["inodes"][inode as usize]["nlink"]
            .as_i64()
            .unwrap_or(0)
            == 0
}

/// Over the tests of `cs` where call a drops a reference to an unlinked file (`held(t)`: the
/// setup inode it names), how many references the file had: 1 (the last) or 2 (or more).
fn references_of_unlinked(
    cs: &CallSetTests,
    held: impl Fn(&TestCase) -> Option<i64>,
) -> Vec<usize> {
    let counts: BTreeSet<usize> = cs
        .tests
        .iter()
        .filter_map(|t| {
            let inode = held(t)?;
            unlinked(t, inode).then(|| references(t, inode).min(2))
        })
        .collect();
    counts.into_iter().collect()
}

#[test]
fn closing_an_unlinked_file_covers_its_last_reference_and_a_shared_one() {
    let cs = call_set("close/close");
    let counts = references_of_unlinked(cs, |t| {
        file_fd(t, arg(t, 0, "proc"), arg(t, 0, "fd")).map(|(inode, _)| inode)
    });
    assert_eq!(counts, [1, 2], "close/close: the last fd and one of two");
}

#[test]
fn unmapping_an_unlinked_file_covers_its_last_reference_and_a_shared_one() {
    let cs = call_set("munmap/munmap");
    let counts = references_of_unlinked(cs, |t| mapping(t, 0)?["file"]["inode"].as_i64());
    assert_eq!(
        counts,
        [1, 2],
        "munmap/munmap: the last mapping and one of two"
    );
}

/// The file page that call `slot` (`mmap`) replaces, where it maps one with `MAP_FIXED` and
/// succeeds.
fn replaced_page(t: &TestCase, slot: usize) -> Option<FilePage> {
    let name = slot_name(slot);
    let succeeds = t
        .expected
        .iter()
        .any(|e| e.slot == name && e.order == name && e.result.get("ok").is_some());
    if !(arg(t, slot, "fixed").as_bool()? && succeeds) {
        return None;
    }
    file_page(mapping(t, slot)?)
}

/// Two `MAP_FIXED` mappings that each replace a page of one file: whichever runs second
/// drops the file's last reference (Linux: `__dentry_kill`), a situation no test had; and
/// two that replace the same page of it, one folio mapped twice.
#[test]
fn two_replaced_pages_of_one_file_are_covered() {
    let cs = call_set("mmap/mmap");
    let replaced_pairs: Vec<(FilePage, FilePage, &TestCase)> = cs
        .tests
        .iter()
        .filter(|t| two_pages(t))
        .filter_map(|t| Some((replaced_page(t, 0)?, replaced_page(t, 1)?, t)))
        .collect();
    assert!(
        replaced_pairs
            .iter()
            .any(|(a, b, t)| a.0 == b.0 && unlinked(t, a.0)),
        "mmap/mmap: no test replaces two pages of one unlinked file"
    );
    assert!(
        replaced_pairs.iter().any(|(a, b, _)| a == b),
        "mmap/mmap: no test replaces one file page mapped twice"
    );
}

/// A `MAP_FIXED` mapping that replaces a file page which the other call reads through another
/// mapping of it: one folio, unmapped on one side and faulted in on the other
/// (`folio_inc_refs`), a situation no test had.
#[test]
fn a_replaced_file_page_read_through_another_mapping_is_covered() {
    let cs = call_set("mmap/memread");
    let covered = cs.tests.iter().any(|t| {
        let read = mapping(t, 1).and_then(file_page);
        two_pages(t) && read.is_some() && replaced_page(t, 0) == read
    });
    assert!(
        covered,
        "mmap/memread: no test replaces a file page the other call reads through another mapping"
    );
}

#[test]
fn unlinking_covers_a_file_still_open_and_one_freed() {
    let cs = call_set("unlink/close");
    let last_link_refs: BTreeSet<usize> = cs
        .tests
        .iter()
        .filter_map(|t| {
            let (nlink, named) = links_of(t, arg(t, 0, "name"))?;
            let names = t.setup["names"].as_array()?;
            let inode =
                names.iter().find(|n| n["name"] == *arg(t, 0, "name"))?["inode"].as_i64()?;
            (nlink == 1 && named == 1).then(|| references(t, inode).min(1))
        })
        .collect();
    assert_eq!(
        last_link_refs.into_iter().collect::<Vec<_>>(),
        [0, 1],
        "unlink/close: the last link of a file no fd holds, and of one an fd holds"
    );
}

#[test]
fn mprotect_covers_a_changed_and_an_unchanged_protection() {
    let cs = call_set("mprotect/mprotect");
    let unchanged: BTreeSet<bool> = cs
        .tests
        .iter()
        .filter_map(|t| Some(mapping(t, 0)?["writable"] == *arg(t, 0, "writable")))
        .collect();
    assert_eq!(unchanged.into_iter().collect::<Vec<_>>(), [false, true]);
}

/// The pipe end fd `fd` of process `proc` is in the test's setup: (pipe, write end).
fn pipe_fd(t: &TestCase, proc: &Json, fd: &Json) -> Option<(i64, bool)> {
    let p = proc.as_u64()? as usize;
    let f = t.setup["procs"][p]["fds"]
        .as_array()?
        .iter()
        .find(|f| &f["fd"] == fd)?;
    Some((f["pipe"]["pipe"].as_i64()?, f["pipe"]["write"].as_bool()?))
}

/// Every pipe end fd of the test's setup: (process, fd, pipe, write end).
fn pipe_fds(t: &TestCase) -> Vec<(usize, i64, i64, bool)> {
    let procs = t.setup["procs"].as_array().into_iter().flatten();
    procs
        .enumerate()
        .flat_map(|(p, proc)| {
            let fds = proc["fds"].as_array().into_iter().flatten();
            fds.filter_map(move |f| {
                let end = &f["pipe"];
                Some((
                    p,
                    f["fd"].as_i64()?,
                    end["pipe"].as_i64()?,
                    end["write"].as_bool()?,
                ))
            })
        })
        .collect()
}

#[test]
fn closing_a_pipe_end_covers_a_shared_end_a_released_end_and_a_freed_pipe() {
    let cs = call_set("close/close");
    let situations: BTreeSet<&str> = cs
        .tests
        .iter()
        .filter_map(|t| {
            let (proc, fd) = (arg(t, 0, "proc"), arg(t, 0, "fd"));
            let (pipe, write) = pipe_fd(t, proc, fd)?;
            let others: Vec<bool> = pipe_fds(t)
                .into_iter()
                .filter(|&(p, f, q, _)| {
                    q == pipe && !(Some(p as u64) == proc.as_u64() && Some(f) == fd.as_i64())
                })
                .map(|(_, _, _, w)| w)
                .collect();
            Some(if others.contains(&write) {
                "another fd holds the end"
            } else if others.contains(&!write) {
                "the end is released"
            } else {
                "the pipe is freed"
            })
        })
        .collect();
    assert_eq!(
        situations.into_iter().collect::<Vec<_>>(),
        [
            "another fd holds the end",
            "the end is released",
            "the pipe is freed"
        ]
    );
}

#[test]
fn a_pipe_end_closed_in_one_process_is_read_in_the_other() {
    // One open file shared by two processes: Linux drops its count in close, and read uses it.
    let cs = call_set("close/read");
    let shared = cs.tests.iter().any(|t| {
        let a = pipe_fd(t, arg(t, 0, "proc"), arg(t, 0, "fd"));
        let b = pipe_fd(t, arg(t, 1, "proc"), arg(t, 1, "fd"));
        a.is_some() && a == b && arg(t, 0, "proc") != arg(t, 1, "proc")
    });
    assert!(
        shared,
        "close/read: no test reads the pipe end the other process closes"
    );
}

#[test]
fn fstat_covers_the_inode_rename_moves() {
    let cs = call_set("rename/fstat");
    let moved_and_read = cs.tests.iter().any(|t| {
        let names = t.setup["names"].as_array();
        let moved = names
            .into_iter()
            .flatten()
            .find(|n| n["name"] == *arg(t, 0, "src"))
            .and_then(|n| n["inode"].as_i64());
        let read = file_fd(t, arg(t, 1, "proc"), arg(t, 1, "fd")).map(|(i, _)| i);
        moved.is_some() && moved == read
    });
    assert!(
        moved_and_read,
        "rename/fstat: no test reads the inode rename moves"
    );
}

/// The setup's mappings of process `p`, by page.
fn maps_of(t: &TestCase, p: usize) -> BTreeMap<i64, &Json> {
    let maps = t.setup["procs"][p]["maps"].as_array().into_iter().flatten();
    maps.filter_map(|m| Some((m["page"].as_i64()?, m)))
        .collect()
}

/// Two pages a setup maps next to each other are one mapping to the kernel only if mapped
/// alike: both anonymous, with one protection.
fn alike(a: &Json, b: &Json) -> bool {
    a.get("anon").is_some() && b.get("anon").is_some() && a["writable"] == b["writable"]
}

#[test]
fn setups_lay_out_pages_as_the_model_maps_them() {
    // Two calls' pages in one region are in one run of pages mapped alike (one mapping to the
    // kernel); in two regions and mapped alike, they are not adjacent (the kernel would merge
    // them).
    let (mut one_mapping, mut two_mappings) = (0, 0);
    for functions in ["mprotect/mprotect", "munmap/memwrite", "munmap/mprotect"] {
        let cs = call_set(functions);
        for t in &cs.tests {
            let p = arg(t, 0, "proc").as_u64().unwrap_or(0) as usize;
            let (Some(a), Some(b)) = (arg(t, 0, "page").as_i64(), arg(t, 1, "page").as_i64())
            else {
                continue;
            };
            let maps = maps_of(t, p);
            let (Some(ma), Some(mb)) = (maps.get(&a), maps.get(&b)) else {
                continue;
            };
            if arg(t, 0, "proc") != arg(t, 1, "proc") || a == b {
                continue;
            }
            let regions = format!("s.proc{p}.va_map[a.va].region == s.proc{p}.va_map[b.va].region");
            let same = t.class.contains(&regions);
            let apart = t.class.contains(&regions.replace(" == ", " != "));
            if same {
                one_mapping += 1;
                let run = (a.min(b)..=a.max(b)).all(|q| maps.get(&q).is_some_and(|m| alike(m, ma)));
                assert!(run, "{}: one mapping, pages {a} and {b} apart", t.id);
            }
            if apart && alike(ma, mb) {
                two_mappings += 1;
                assert_ne!(
                    (a - b).abs(),
                    1,
                    "{}: two mappings, pages {a} and {b}",
                    t.id
                );
            }
        }
    }
    // Both checks ran (the class lines they look for are still printed this way).
    assert!(one_mapping > 0, "no test has two calls on one mapping");
    assert!(
        two_mappings > 0,
        "no test has two calls on two mappings mapped alike"
    );
}

#[test]
fn mprotect_covers_pages_of_one_mapping_and_a_page_split_off_its_mapping() {
    let cs = call_set("mprotect/mprotect");
    let page = |t: &TestCase, slot| arg(t, slot, "page").as_i64();
    let one_mapping = cs.tests.iter().any(|t| {
        let same_proc = arg(t, 0, "proc") == arg(t, 1, "proc");
        let (Some(a), Some(b)) = (page(t, 0), page(t, 1)) else {
            return false;
        };
        let p = arg(t, 0, "proc").as_u64().unwrap_or(0) as usize;
        let maps = maps_of(t, p);
        same_proc
            && (a - b).abs() == 1
            && maps
                .get(&a)
                .zip(maps.get(&b))
                .is_some_and(|(x, y)| alike(x, y))
    });
    assert!(
        one_mapping,
        "mprotect/mprotect: no test changes two pages of one mapping"
    );
    let split = cs.tests.iter().any(|t| {
        let Some(a) = page(t, 0) else { return false };
        let p = arg(t, 0, "proc").as_u64().unwrap_or(0) as usize;
        let maps = maps_of(t, p);
        let named = [page(t, 0), page(t, 1)];
        let changes = maps
            .get(&a)
            .is_some_and(|m| m["writable"] != *arg(t, 0, "writable"));
        let neighbour = [a - 1, a + 1]
            .into_iter()
            .any(|n| !named.contains(&Some(n)) && maps.get(&n).is_some_and(|m| alike(m, maps[&a])));
        changes && neighbour
    });
    assert!(
        split,
        "mprotect/mprotect: no test splits a page off a mapping of more pages"
    );
}

/// Whether the setup touches the page call `slot` names (`None`: the page is not mapped).
fn populated(t: &TestCase, slot: usize) -> Option<bool> {
    mapping(t, slot).map(|m| m["populated"] != Json::Bool(false))
}

#[test]
fn page_calls_cover_touched_and_untouched_pages() {
    // A first touch faults the page in (and may allocate page tables), a teardown walks its
    // entry: munmap/memread has a test where neither page was touched, the case where the
    // read allocates the page-table levels the unmap walks.
    let cs = call_set("munmap/memread");
    let combos: BTreeSet<(bool, bool)> = cs
        .tests
        .iter()
        .filter_map(|t| Some((populated(t, 0)?, populated(t, 1)?)))
        .collect();
    assert_eq!(
        combos.into_iter().collect::<Vec<_>>(),
        [(false, false), (false, true), (true, false), (true, true)],
        "munmap/memread: touched and untouched pages"
    );
    // Untouched anonymous pages hold zeros (the kernel's zero page), and no file page past its
    // file's end counts as touched.
    for t in &cs.tests {
        for p in 0..2 {
            for m in t.setup["procs"][p]["maps"].as_array().into_iter().flatten() {
                let touched = m["populated"] != Json::Bool(false);
                if let Some(data) = m["anon"]["data"].as_u64() {
                    assert!(
                        touched || data == 0,
                        "{}: untouched page holds {data}",
                        t.id
                    );
                } else if touched {
                    let inode = m["file"]["inode"].as_i64().expect("file mapping");
                    let off = m["file"]["off"].as_i64().expect("file offset");
                    assert!(
                        off < length_in_bytes(t, inode),
                        "{}: a page past its file's end is touched",
                        t.id
                    );
                }
            }
        }
    }
    // A page no call touches (a neighbour in the same mapping) is set up as every setup had
    // it: touched.
    let cs = call_set("munmap/munmap");
    let mut neighbours = 0;
    for t in &cs.tests {
        for p in 0..2 {
            let named: Vec<&Json> = (0..2)
                .filter(|&slot| arg(t, slot, "proc").as_u64() == Some(p as u64))
                .map(|slot| arg(t, slot, "page"))
                .collect();
            for m in t.setup["procs"][p]["maps"].as_array().into_iter().flatten() {
                if !named.contains(&&m["page"]) {
                    neighbours += 1;
                    assert_ne!(m["populated"], Json::Bool(false), "{}: {m}", t.id);
                }
            }
        }
    }
    assert!(
        neighbours > 0,
        "munmap/munmap: no test maps a page no call names"
    );
}

/// The page next to call `slot`'s page, on either side, that the setup maps anonymously with
/// protection `writable`, if any (the kernel merges a mapping with such a neighbour).
fn alike_neighbour(t: &TestCase, slot: usize, writable: &Json) -> Option<i64> {
    let p = arg(t, slot, "proc").as_u64()? as usize;
    let page = arg(t, slot, "page").as_i64()?;
    let maps = maps_of(t, p);
    [page - 1, page + 1].into_iter().find(|n| {
        maps.get(n)
            .is_some_and(|m| m.get("anon").is_some() && m["writable"] == *writable)
    })
}

/// Whether call `slot` is the other call's page's neighbour in its process.
fn next_to_other_call(t: &TestCase, slot: usize, neighbour: i64) -> bool {
    arg(t, 0, "proc") == arg(t, 1, "proc") && arg(t, 1 - slot, "page").as_i64() == Some(neighbour)
}

#[test]
fn a_new_anonymous_page_joins_a_neighbouring_mapping_and_keeps_apart() {
    // A `MAP_FIXED` anonymous page next to an anonymous page mapped alike joins its mapping
    // (the kernel grows the neighbour's VMA); the other call then replaces the neighbour,
    // splitting the grown mapping (`__split_vma`), a situation no test had. And a new page
    // with no such neighbour is a mapping of its own.
    let cs = call_set("mmap/mmap");
    let new_page = |t: &TestCase, slot| {
        let p = arg(t, slot, "proc").as_u64().unwrap_or(0) as usize;
        let unmapped = arg(t, slot, "page")
            .as_i64()
            .is_some_and(|page| !maps_of(t, p).contains_key(&page));
        arg(t, slot, "fixed") == true && arg(t, slot, "anon") == true && unmapped
    };
    let joins_replaced = cs.tests.iter().any(|t| {
        (0..2).any(|slot| {
            new_page(t, slot)
                && alike_neighbour(t, slot, arg(t, slot, "writable"))
                    .is_some_and(|n| next_to_other_call(t, slot, n))
                && arg(t, 1 - slot, "fixed") == true
        })
    });
    assert!(
        joins_replaced,
        "mmap/mmap: no new anonymous page joins the mapping of the page the other call replaces"
    );
    let alone = cs.tests.iter().any(|t| {
        (0..2).any(|slot| {
            new_page(t, slot) && alike_neighbour(t, slot, arg(t, slot, "writable")).is_none()
        })
    });
    assert!(
        alone,
        "mmap/mmap: no new anonymous page is a mapping of its own"
    );
}

#[test]
fn mprotect_covers_a_page_joining_the_neighbouring_mapping_another_call_writes() {
    // A protection change that makes a page alike with its neighbour merges the two mappings
    // (`vma_merge_existing_range`); the other call writes to the neighbour.
    let cs = call_set("mprotect/memwrite");
    let covered = cs.tests.iter().any(|t| {
        let p = arg(t, 0, "proc").as_u64().unwrap_or(0) as usize;
        let changes = arg(t, 0, "page")
            .as_i64()
            .and_then(|page| maps_of(t, p).get(&page).copied().cloned())
            .is_some_and(|m| m.get("anon").is_some() && m["writable"] != *arg(t, 0, "writable"));
        changes
            && alike_neighbour(t, 0, arg(t, 0, "writable"))
                .is_some_and(|n| next_to_other_call(t, 0, n))
    });
    assert!(
        covered,
        "mprotect/memwrite: no page joins, by its new protection, the mapping the other call writes"
    );
}
