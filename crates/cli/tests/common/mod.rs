//! Shared by the end-to-end tests: running the real binary and giving each test a directory.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `commuter` binary built for these tests in `dir`.
pub fn commuter(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_commuter"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the commuter binary runs")
}

/// A fresh, empty directory named after the test file's `group` and the test.
pub fn temp_dir(group: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("commuter-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
