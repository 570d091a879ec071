//! Shared by the end-to-end tests: building the plugin and the guest with cargo.
//!
//! The tests build them rather than expect them built, so `cargo test` alone is enough once
//! `scripts/install-linux-target` has run; cargo's incremental builds make this cheap.

// Each test file uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cargo build --release` for a sibling crate with exactly the given RUSTFLAGS.
fn cargo_build(args: &[&str], rustflags: Option<&str>) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(repo())
        .arg("build")
        .arg("--release")
        .args(args);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        c.env_remove(var);
    }
    if let Some(flags) = rustflags {
        c.env("RUSTFLAGS", flags);
    }
    let out = c.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cargo build {args:?} failed:\n{stderr}"));
    }
    Ok(())
}

/// Builds the tracer plugin into `target/tracer` and returns its path.
pub fn build_plugin() -> Result<PathBuf, String> {
    let args = [
        "--manifest-path",
        "crates/tracer/Cargo.toml",
        "--target-dir",
        "target/tracer",
    ];
    cargo_build(&args, None)?;
    Ok(repo().join("target/tracer/release/libcommuter_tracer.so"))
}

/// Builds the static guest into `target/guest` and returns its path.
pub fn build_guest() -> Result<PathBuf, String> {
    let target = "x86_64-unknown-linux-gnu";
    let args = [
        "--manifest-path",
        "crates/guest/Cargo.toml",
        "--target-dir",
        "target/guest",
        "--target",
        target,
    ];
    // An explicit --target keeps the static flags off build scripts and proc macros.
    cargo_build(
        &args,
        Some("-C target-feature=+crt-static -C relocation-model=static"),
    )?;
    Ok(repo()
        .join("target/guest")
        .join(target)
        .join("release/commuter-guest"))
}

/// No guest error, and both calls returned what the plan expected and were timed.
pub fn assert_calls_ran(t: &commuter_targets::linux::TestOutcome) {
    assert!(
        t.errors.is_empty(),
        "{}: guest errors {:?}",
        t.name,
        t.errors
    );
    for (i, c) in t.calls.iter().enumerate() {
        let c = c
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no result for call {i}", t.name));
        assert!(c.ok, "{}: call {i} mismatched: {:?}", t.name, c.mismatches);
        // Only its presence: values depend on the host (bench/tracer-overhead measures them).
        assert!(c.elapsed.is_some(), "{}: call {i} was not timed", t.name);
    }
}
