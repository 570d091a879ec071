//! Shared by the end-to-end tests: running the real binary and giving each test a directory.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the `commuter` binary built for these tests in `dir`.
pub fn commuter(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_commuter"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the commuter binary runs")
}

/// A test's scratch directory, removed when the test passes and kept when it fails (its path
/// is printed then), so a run of the tests leaves nothing behind but what explains a failure.
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh, empty directory named after the test file's `group` and the test.
pub fn temp_dir(group: &str, name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("commuter-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    TestDir(dir)
}

/// A fresh directory (see [`temp_dir`]) holding `tests.json`: the POSIX suite of `sets`.
pub fn posix_suite(group: &str, name: &str, sets: &str) -> TestDir {
    let dir = temp_dir(group, name);
    ok(&commuter(
        &["testgen", "-m", "posix", "-f", sets, "-o", "tests.json"],
        &dir,
    ));
    dir
}

/// `commuter run --target user --impl IMPL` of the `tests.json` in `dir`, writing `output`
/// there: the run's stdout and the conflicts file.
pub fn run_user(dir: &Path, implementation: &str, output: &str) -> (String, Value) {
    let out = commuter(
        &[
            "run",
            "tests.json",
            "--target",
            "user",
            "--impl",
            implementation,
            "-o",
            output,
        ],
        dir,
    );
    (ok(&out), json(&dir.join(output)))
}

/// The stdout of a run that must have succeeded (else the test fails with both streams).
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A JSON file the run wrote; a `conflicts.json` in its expanded form (every location with
/// its object, every access with its code sites), as the project reads it, whatever version
/// it was written in (version 5 keeps sites and objects in tables).
pub fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("file written");
    let v: Value = serde_json::from_str(&text).expect("valid JSON");
    if v["schema"] != commuter_scan::CONFLICTS_SCHEMA {
        return v;
    }
    let file = commuter_scan::ConflictsFile::from_json(&text).expect("a valid conflicts file");
    serde_json::to_value(&file).expect("plain data")
}

/// The result of test `id` in a run's conflicts file (as [`json`] reads it).
pub fn result_of<'c>(conflicts: &'c Value, id: &str) -> &'c Value {
    conflicts["tests"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .unwrap_or_else(|| panic!("{id} in conflicts.json"))
}
