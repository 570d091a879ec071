//! Three calls at once, end to end through the real binary: `check -n 3` analyses a triple,
//! generates its tests, runs each test's three calls on CPUs 1 to 3 of the stock kernel under
//! the tracer, and reports which two of the calls shared memory. Needs `./scripts/setup`
//! (QEMU, the kernel, the plugin, the guest).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

mod common;
use common::{commuter, json, ok, result_of, temp_dir};

#[test]
fn three_stats_share_the_dentry_of_one_name_pair_by_pair() {
    let root = temp_dir("three", "stat");
    // 22 tests in one boot: 12.5 s to 25 s on the 2-core machine under load.
    let stdout = check_triple(&root, "stat/stat/stat", &[]);
    let dir = root.join("out");
    let tests = json(&dir.join("tests.json"));
    let text = std::fs::read_to_string(dir.join("conflicts.json")).expect("conflicts.json");
    // Version 6, or 7 once a shared location carries the tracer's call stacks.
    let stacks = text.contains("\"stack\":[");
    let version = if stacks { 7 } else { 6 };
    assert!(
        text.starts_with(&format!(
            "{{\"schema\":\"commuter.conflicts\",\"version\":{version},"
        )),
        "a file with triples is version 6, 7 with call stacks"
    );
    let conflicts: Value = serde_json::from_str(&text).expect("JSON");
    let by_id = |id: &str| result_of(&conflicts, id);
    let (mut same, mut different) = (0, 0);
    let suite_tests = tests["call_sets"][0]["tests"].as_array().expect("tests");
    for t in suite_tests {
        let result = by_id(t["id"].as_str().expect("id"));
        assert_eq!(
            result["calls"].as_array().map(Vec::len),
            Some(3),
            "{result}"
        );
        assert_agrees(result);
        let names: Vec<&Value> = (0..3).map(|i| &t["calls"][i]["args"]["name"]).collect();
        let present = t["setup"]["names"].as_array().map_or(0, Vec::len);
        // Which pairs of calls shared a location (a and b leave `slots` out).
        let pairs: BTreeSet<String> = result["shared"]
            .as_array()
            .expect("shared")
            .iter()
            .map(call_pair)
            .collect();
        if names[0] == names[1] && names[1] == names[2] && present == 1 {
            // All three look up one dentry: each pair writes its reference count.
            assert_eq!(result["status"], "conflicted", "{t}\n{result}");
            let all: BTreeSet<String> = ["01", "02", "12"].map(String::from).into();
            assert_eq!(pairs, all, "every pair of calls shared: {result}");
            same += 1;
        } else if names[0] != names[1]
            && names[1] != names[2]
            && names[0] != names[2]
            && present == 3
        {
            assert_eq!(result["status"], "conflict_free", "{t}\n{result}");
            different += 1;
        }
    }
    assert!(same > 0 && different > 0, "both situations were generated");
    assert!(stdout.contains("stat/stat/stat"), "{stdout}");
    assert!(stdout.contains("which calls shared memory"), "{stdout}");
    let svg = std::fs::read_to_string(dir.join("heatmap.svg")).expect("svg");
    assert!(svg.contains("stat/stat/stat: "), "the triple's row");
    let _ = std::fs::remove_dir_all(&root);
}

/// The kernel returned the model's results, and the run had no errors.
fn assert_agrees(result: &Value) {
    assert!(
        result["mismatches"].as_array().is_some_and(Vec::is_empty),
        "the kernel agrees with the model: {result}"
    );
    assert!(
        result["errors"].as_array().is_some_and(Vec::is_empty),
        "{result}"
    );
}

/// `commuter check -m posix -n 3 -f TRIPLE ARGS -o out` in `root`; its standard output.
fn check_triple(root: &Path, triple: &str, args: &[&str]) -> String {
    let mut all = vec!["check", "-m", "posix", "-n", "3", "-f", triple];
    all.extend(args);
    all.extend(["-o", "out"]);
    ok(&commuter(&all, root))
}

/// The two calls that shared a location, as slot digits (`"12"`: b and c; a and b leave
/// `slots` out).
fn call_pair(location: &Value) -> String {
    match &location["slots"] {
        Value::Null => "01".to_string(),
        s => format!("{}{}", s[0], s[1]),
    }
}

/// Which pairs of calls shared a location of this kernel slab cache (`"01"`: a and b).
fn pairs_sharing_cache(result: &Value, cache: &str) -> BTreeSet<String> {
    result["shared"]
        .as_array()
        .expect("shared")
        .iter()
        .filter(|l| l["what"]["cache"] == cache)
        .map(call_pair)
        .collect()
}

/// `open/open/open` (create or not, exclusive or not, truncate or not, each name present or
/// not, two processes for three calls): the whole triple analysed (3,328 paths, about a minute
/// in a debug build), its first 400 tests run. Linux takes an fd from the process's table before
/// it looks the name up (`get_unused_fd_flags`, and `put_unused_fd` if the open then fails), so
/// two calls share the fd table (`files_cache`) exactly when they run in one process, whatever
/// they return.
#[test]
fn three_opens_share_the_fd_table_of_the_two_in_one_process() {
    let root = temp_dir("three", "open");
    let stdout = check_triple(&root, "open/open/open", &["--max-testcases", "400"]);
    let dir = root.join("out");
    let tests = json(&dir.join("tests.json"));
    let conflicts = json(&dir.join("conflicts.json"));
    let suite_tests = tests["call_sets"][0]["tests"].as_array().expect("tests");
    assert_eq!(suite_tests.len(), 400, "capped at 400 tests");
    let (mut one_process, mut two_processes) = (0, 0);
    for t in suite_tests {
        let result = result_of(&conflicts, t["id"].as_str().expect("id"));
        assert_agrees(result);
        let sharing = pairs_sharing_cache(result, "files_cache");
        let calls = t["calls"].as_array().expect("calls");
        for (x, y) in [(0, 1), (0, 2), (1, 2)] {
            let same = calls[x]["args"]["proc"] == calls[y]["args"]["proc"];
            assert_eq!(
                sharing.contains(&format!("{x}{y}")),
                same,
                "calls {x} and {y} share the fd table iff in one process: {t}\n{result}"
            );
            if same {
                one_process += 1;
            } else {
                two_processes += 1;
            }
        }
    }
    assert!(
        one_process > 0 && two_processes > 0,
        "both situations were generated"
    );
    assert!(stdout.contains("open/open/open"), "{stdout}");
    let _ = std::fs::remove_dir_all(&root);
}
