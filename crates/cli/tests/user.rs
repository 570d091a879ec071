//! The user-space target through the real binary on the stock kernel: `kv` implementations'
//! runners (`impls/`, built with commuter-harness) as the guest's init, user-mode code traced.
//! Needs `./scripts/setup` (kernel, plugin, runners); a missing piece fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;
use common::{commuter, json, ok};

/// The `kv` suite in a fresh directory.
fn kv_suite(name: &str) -> common::TestDir {
    let dir = common::temp_dir("user", name);
    ok(&commuter(
        &["testgen", "-m", "kv", "-o", "tests.json"],
        &dir,
    ));
    dir
}

/// `commuter run --target user --impl IMPL` of the suite in `dir`: stdout and conflicts.json.
fn run_user(dir: &Path, implementation: &str) -> (String, Value) {
    common::run_user(dir, implementation, "conflicts.json")
}

fn tests(conflicts: &Value) -> &Vec<Value> {
    conflicts["tests"].as_array().expect("tests")
}

/// A test's setup and call arguments, from the suite.
fn suite_test<'s>(suite: &'s Value, id: &str) -> &'s Value {
    suite["call_sets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|cs| cs["tests"].as_array().into_iter().flatten())
        .find(|t| t["id"] == id)
        .expect("the test is in the suite")
}

#[test]
fn a_mutex_hashmap_conflicts_on_its_lock_word_even_for_gets_of_different_keys() {
    let dir = kv_suite("mutex");
    let (stdout, conflicts) = run_user(&dir, "kv-mutex");
    let suite = json(&dir.join("tests.json"));
    assert!(
        tests(&conflicts)
            .iter()
            .all(|t| t["mismatches"] == Value::Array(vec![])),
        "a correct map has no mismatch"
    );
    let get_get_different_keys = tests(&conflicts).iter().find(|t| {
        let args: Vec<&Value> = suite_test(&suite, t["id"].as_str().unwrap_or_default())["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| &c["args"])
            .collect();
        t["calls"] == serde_json::json!(["get", "get"]) && args.len() == 2 && args[0] != args[1]
    });
    let t = get_get_different_keys.expect("a get/get test of two different keys");
    assert_eq!(t["status"], "conflicted", "{t:#}");
    // The lock word: written by user-mode code of both calls, named down to a source line.
    let lock = &t["shared"][0];
    for side in ["a", "b"] {
        assert_eq!(lock[side]["mode"], "user", "{lock:#}");
        let site = &lock[side]["sites"][0];
        assert_eq!(site["mode"], "user", "{site:#}");
        let frame = &site["frames"][0];
        assert!(
            frame["file"].is_string() && frame["line"].is_u64(),
            "a user site has a source line: {site:#}"
        );
    }
    // The report tells user-space sites apart from the kernel's.
    assert!(stdout.contains("user:"), "{stdout}");
}

#[test]
fn a_map_designed_by_the_rule_is_conflict_free_where_the_model_says_calls_commute() {
    let dir = kv_suite("scalable");
    let (_, conflicts) = run_user(&dir, "kv-scalable");
    let all = tests(&conflicts);
    let free = all
        .iter()
        .filter(|t| t["status"] == "conflict_free")
        .count();
    assert!(!all.is_empty());
    assert!(
        free * 100 >= all.len() * 99,
        "{free} of {} conflict-free",
        all.len()
    );
    assert!(all.iter().all(|t| t["mismatches"] == Value::Array(vec![])));
}

/// The deliberately wrong runner (`crates/harness/examples/kv_forgetful_get.rs`), built static.
fn forgetful_runner() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(env!("CARGO"))
        .current_dir(&repo)
        .args(["build", "--release", "-q", "-p", "commuter-harness"])
        .args([
            "--example",
            "kv_forgetful_get",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .args(["--target-dir", "target/harness-examples"])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        )
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the wrong runner");
    repo.join("target/harness-examples/x86_64-unknown-linux-gnu/release/examples/kv_forgetful_get")
}

#[test]
fn a_wrong_result_is_reported_as_a_mismatch() {
    let dir = kv_suite("wrong");
    let runner = forgetful_runner();
    let (stdout, conflicts) = run_user(&dir, runner.to_str().expect("UTF-8 path"));
    let mismatched: Vec<&Value> = tests(&conflicts)
        .iter()
        .filter(|t| t["mismatches"] != Value::Array(vec![]))
        .collect();
    assert!(!mismatched.is_empty(), "{stdout}");
    // Only tests whose get finds a value can catch a get that forgets.
    for t in &mismatched {
        let calls = t["calls"].as_array().expect("calls");
        assert!(calls.iter().any(|c| c == "get"), "{t:#}");
        let detail = t["mismatches"][0]["details"][0]
            .as_str()
            .unwrap_or_default();
        assert!(detail.starts_with("get: expected"), "{detail}");
    }
}

#[test]
fn an_unknown_implementation_is_refused_with_the_list_command() {
    let dir = kv_suite("unknown");
    let out = commuter(
        &[
            "run",
            "tests.json",
            "--target",
            "user",
            "--impl",
            "no-such-map",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("commuter impls"), "{stderr}");
    let out = commuter(&["run", "tests.json", "--impl", "kv-mutex"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target user"));
}
