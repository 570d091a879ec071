//! The emitted C suite compiled with this machine's C compiler (`cc -std=c99 -Wall -Werror`)
//! and run natively: every result the model expects is what the system returns.
//!
//! `posix-subset.json` is a real POSIX suite covering every call the model runs on a system
//! (nine call sets, one test per commutative path), made with
//! `commuter testgen -m posix -f 'open/close,link/unlink,rename/stat,fstat/lseek,pipe/read,write/pread,pwrite/munmap,mmap/mprotect,memread/memwrite' --max-tests-per-path 1`
//! and stored without whitespace. The whole suite: `bench/emit-c`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use commuter_emit_c::{CSuite, PROGRAM, emit};
use commuter_tests_format::{TestSuite, parse_suite};

fn subset() -> TestSuite {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/posix-subset.json");
    let bytes = std::fs::read(&path).expect("the fixture is readable");
    parse_suite("posix-subset.json", &bytes).expect("the fixture is a suite")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("commuter-emit-c-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes the suite's files into `dir` and compiles them with the documented `cc` line.
fn build(c: &CSuite, dir: &Path) -> PathBuf {
    let mut sources = Vec::new();
    for f in &c.files {
        std::fs::write(dir.join(&f.name), &f.contents).expect("write a C file");
        if f.name.ends_with(".c") {
            sources.push(f.name.clone());
        }
    }
    let out = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Werror", "-o", PROGRAM])
        .args(&sources)
        .current_dir(dir)
        .output()
        .expect("`cc` runs (scripts/setup installs a C compiler)");
    assert!(
        out.status.success(),
        "the C suite compiles:\n{}",
        text(&out)
    );
    dir.join(PROGRAM)
}

/// Runs the program in `dir` with its test directory under `dir/work` (given relative).
fn run(program: &Path, args: &[&str], dir: &Path) -> Output {
    std::fs::create_dir_all(dir.join("work")).expect("work dir");
    Command::new(program)
        .args(["-d", "work"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the C suite runs")
}

#[test]
fn the_subset_compiles_and_passes_natively() {
    let suite = subset();
    let c = emit(&suite).expect("the subset is written as C");
    // Every call a system runs is in the subset (the durability extension is not in it).
    for call in commuter_posix_format::CALLS {
        if ["sync", "fsync", "reboot"].contains(call) {
            continue;
        }
        assert!(
            suite
                .call_sets
                .iter()
                .any(|cs| cs.calls.iter().any(|c| c == call)),
            "the subset has no `{call}` test: regenerate it with every call"
        );
    }
    assert_eq!(c.tests, suite.total_tests());
    assert_eq!(c.not_run, 0);
    let dir = temp_dir("subset");
    let program = build(&c, &dir);
    let out = run(&program, &[], &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n = c.tests;
    assert!(
        stdout.ends_with(&format!(
            "{n} tests: {n} passed, 0 failed, 0 errors, 0 not run\n"
        )),
        "every test passes natively:\n{}",
        text(&out)
    );
    assert!(out.status.success(), "{}", text(&out));
    // Every test cleaned up after itself, and the run removed its test directory.
    let left: Vec<_> = std::fs::read_dir(dir.join("work")).expect("list").collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A selection: one call set and one test of another, by name.
    let first = &suite.call_sets[0];
    let other = &suite.call_sets[1].tests[0].id;
    let out = run(&program, &[&first.name(), other], &dir);
    let expected = first.tests.len() + 1;
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with(&format!(
            "{expected} tests: {expected} passed, 0 failed, 0 errors, 0 not run\n"
        )),
        "{}",
        text(&out)
    );
    let out = run(&program, &["no/such"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no test or call set is named `no/such`"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// The checks can fail: a wrong expectation (and a wrong link count in the setup) is reported
/// with the test, the call and both values, and the exit status is 1.
#[test]
fn a_wrong_expectation_fails_with_what_differs() {
    let mut suite = subset();
    let stat_set = suite
        .call_sets
        .iter_mut()
        .find(|cs| cs.calls == ["rename", "stat"])
        .expect("rename/stat in the subset");
    // A stat that finds a file: claim one link more than the file has.
    let t = stat_set
        .tests
        .iter_mut()
        .find(|t| {
            t.expected
                .iter()
                .any(|e| e.order == "ab" && e.slot == "b" && e.result.get("ok").is_some())
        })
        .expect("a stat that succeeds");
    let id = t.id.clone();
    for e in t.expected.iter_mut().filter(|e| e.order == "ab") {
        let nlink = e.result["ok"]["nlink"].as_i64().expect("nlink");
        e.result["ok"]["nlink"] = serde_json::json!(nlink + 1);
    }
    suite.call_sets.retain(|cs| cs.calls == ["rename", "stat"]);
    let c = emit(&suite).expect("written as C");
    let dir = temp_dir("wrong");
    let program = build(&c, &dir);
    let out = run(&program, &[&id], &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout.contains(&format!("FAIL {id}: call b (stat): expected a file of")),
        "{}",
        text(&out)
    );
    assert!(
        stdout.ends_with("1 tests: 0 passed, 1 failed, 0 errors, 0 not run\n"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn same_suite_same_bytes() {
    let suite = subset();
    assert_eq!(emit(&suite).expect("C"), emit(&suite).expect("C"));
}
