//! `commuter run --shard` and `commuter merge` through the real binary on the stock kernel: two
//! shards of a small suite, merged, give the single run's tests in its order with the same
//! result checks and errors, and each part's tests as they were.
//! Needs `./scripts/setup`.

use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::{commuter, json, ok};

/// What a test says that does not depend on the boot it ran in: id, calls, result checks,
/// errors, and whether it could be judged at all. Not whether it conflicted: a stat/stat test
/// shares nothing of its own, and an RCU deferred wake-up (`__wake_nocb_gp`) that meets one
/// call in one boot and not in another makes it conflicted in one run only (seen in CI
/// rehearsals); nor its shared data, which is the kernel's of that boot (deploy/slurm/test-local
/// reports how often runs are alike). That the merge keeps each verdict is checked against the
/// parts, exactly.
fn judged(t: &Value) -> Vec<Value> {
    vec![
        t["id"].clone(),
        t["calls"].clone(),
        Value::Bool(t["status"] == "unknown"),
        t["mismatches"].clone(),
        t["errors"].clone(),
    ]
}

#[test]
fn two_shards_merged_equal_the_single_run() {
    let dir = common::posix_suite("shard", "e2e", "stat/stat");
    // The two shards and the single run at once (each one VM).
    let start = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_commuter"))
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("commuter runs")
    };
    let runs = [
        start(&["run", "tests.json", "--shard", "1/2", "-o", "part-1.json"]),
        start(&["run", "tests.json", "--shard", "2/2", "-o", "part-2.json"]),
        start(&["run", "tests.json", "-o", "single.json"]),
    ];
    for run in runs {
        ok(&run.wait_with_output().expect("commuter run"));
    }

    let p1 = json(&dir.join("part-1.json"));
    let p2 = json(&dir.join("part-2.json"));
    for (p, i) in [(&p1, 1), (&p2, 2)] {
        assert_eq!(p["shard"]["index"], i);
        assert_eq!(p["shard"]["count"], 2);
        assert!(!p["tests"].as_array().expect("tests").is_empty(), "{p}");
    }
    // Parts in any order; --tests checks the suite's digest.
    let stdout = ok(&commuter(
        &[
            "merge",
            "part-2.json",
            "part-1.json",
            "--tests",
            "tests.json",
            "-o",
            "merged.json",
        ],
        &dir,
    ));
    assert!(stdout.contains("stat/stat"), "{stdout}");
    // Named after the merged file, beside the single run's own.
    assert!(dir.join("merged.heatmap.svg").is_file());
    assert!(dir.join("merged.report.html").is_file());
    assert!(dir.join("single.heatmap.svg").is_file());
    let single = json(&dir.join("single.json"));
    let merged = json(&dir.join("merged.json"));
    assert!(merged.get("shard").is_none());
    assert_eq!(merged["target"], single["target"]);
    let (m, s) = (
        merged["tests"].as_array().expect("tests"),
        single["tests"].as_array().expect("tests"),
    );
    assert_eq!(m.len(), s.len());
    for (m, s) in m.iter().zip(s) {
        assert_eq!(judged(m), judged(s), "{}", s["id"]);
    }
    // Every test of the merge is its part's, verdict and shared data as they were.
    let from_parts: Vec<&Value> = [&p1, &p2]
        .iter()
        .flat_map(|p| p["tests"].as_array().expect("tests"))
        .collect();
    assert_eq!(from_parts.len(), m.len());
    for t in m {
        let part = from_parts.iter().find(|p| p["id"] == t["id"]);
        assert_eq!(part, Some(&t), "{}", t["id"]);
    }

    // The same part twice, or one missing: refused, with the fix.
    let out = commuter(&["merge", "part-1.json", "part-1.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give each shard once"));
    let out = commuter(&["merge", "part-1.json", "-o", "x.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("shard 2 of 2 missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("x.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `commuter testgen --shard I/N` and `commuter merge` of its parts: the one generation's
/// `tests.json`, byte for byte; a part alone is refused by `run` with the command that joins.
#[test]
fn test_generation_in_parts_merges_into_the_whole_suite() {
    let dir = common::temp_dir("shard", "testgen");
    // Cheap sets (seconds in a debug build), of two costs: pwrite's are twice the others'.
    let sets = "{stat,close,pwrite}/{stat,close}";
    let testgen = |extra: &[&str]| {
        let mut args = vec!["testgen", "-m", "posix", "-f", sets, "--no-idempotence"];
        args.extend_from_slice(extra);
        ok(&commuter(&args, &dir));
    };
    testgen(&["-o", "whole.json"]);
    for i in 1..=3 {
        testgen(&["--shard", &format!("{i}/3"), "-o", &format!("part{i}.json")]);
    }
    let merged = ok(&commuter(
        &[
            "merge",
            "part2.json",
            "part3.json",
            "part1.json",
            "-o",
            "tests.json",
        ],
        &dir,
    ));
    assert!(merged.contains("3 parts"), "{merged}");
    let read = |f: &str| std::fs::read(dir.join(f)).expect("read");
    assert!(
        read("whole.json") == read("tests.json"),
        "merge differs from the whole suite"
    );
    // Balanced by cost: the two pwrite pairs go to different parts, and no part is empty.
    let sets_of = |f: &str| {
        json(&dir.join(f))["call_sets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let pwrites =
        |sets: Vec<serde_json::Value>| sets.iter().filter(|s| s["calls"][0] == "pwrite").count();
    for i in 1..=3 {
        let part = sets_of(&format!("part{i}.json"));
        assert!(!part.is_empty() && pwrites(part) <= 1, "part {i}");
    }

    let refused = |args: &[&str], expect: &str| {
        let out = commuter(args, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    };
    refused(
        &["merge", "part1.json", "part3.json"],
        "part 2 of 3 is missing",
    );
    refused(
        &["run", "part1.json"],
        "commuter merge PART... -o tests.json",
    );
    refused(
        &["testgen", "-m", "posix", "--shard", "1/2", "--emit-c", "c"],
        "merge the parts first",
    );
}
