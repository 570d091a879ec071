//! `commuter emit-c` and `testgen --emit-c` through the real binary: what they write, what
//! they refuse. (Compiling and running the C: `crates/emit-c/tests/native.rs`.)

mod common;
use common::{commuter, ok, temp_dir};

use std::path::{Path, PathBuf};

fn subset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../emit-c/tests/posix-subset.json")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn emit_c_writes_the_suite_and_replaces_only_its_own() {
    let dir = temp_dir("emit-c", "writes");
    let fixture = subset();
    let fixture = fixture.to_str().expect("utf-8 path");
    let stdout = ok(&commuter(&["emit-c", fixture, "-o", "c"], &dir));
    assert!(
        stdout.contains("326 tests as C (0 not run natively), 9 call sets"),
        "{stdout}"
    );
    let c = dir.join("c");
    for f in [
        "Makefile",
        "commuter_posix.h",
        "commuter_posix.c",
        "suite.c",
        "tests_open_close.c",
        "tests_memread_memwrite.c",
    ] {
        assert!(c.join(f).is_file(), "{f} written");
    }
    let first = std::fs::read(c.join("tests_open_close.c")).expect("read");
    // Again over the earlier suite, changed meanwhile: replaced as a whole (the changed file
    // written again, a file the suite does not have gone), nothing left beside it.
    std::fs::write(c.join("tests_open_close.c"), "stale").expect("write");
    std::fs::write(c.join("tests_stale.c"), "stale").expect("write");
    ok(&commuter(&["emit-c", fixture, "-o", "c"], &dir));
    assert_eq!(
        std::fs::read(c.join("tests_open_close.c")).expect("read"),
        first
    );
    assert!(!c.join("tests_stale.c").exists(), "the old suite is gone");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("c")]);

    // A directory that is not an emitted suite is left alone.
    std::fs::create_dir(dir.join("mine")).expect("mkdir");
    std::fs::write(dir.join("mine/notes.txt"), "keep").expect("write");
    let out = commuter(&["emit-c", fixture, "-o", "mine"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`mine` exists and is not a C suite commuter wrote"),
        "{}",
        stderr(&out)
    );
    assert!(dir.join("mine/notes.txt").is_file());
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn emit_c_refuses_other_models_before_generating() {
    let dir = temp_dir("emit-c", "refuses");
    let out = commuter(
        &["testgen", "-m", "counter", "-o", "t.json", "--emit-c", "c"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`-m counter` is not the POSIX model"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("t.json").exists() && !dir.join("c").exists());

    ok(&commuter(
        &["testgen", "-m", "counter", "-o", "t.json"],
        &dir,
    ));
    let out = commuter(&["emit-c", "t.json", "-o", "c"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the suite is of the `counter` model"),
        "{}",
        stderr(&out)
    );
    let out = commuter(&["emit-c", "missing.json", "-o", "c"], &dir);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot read `missing.json`"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
