//! The main job end to end through the real binary: analyze, testgen, run on the stock kernel
//! under the tracer, report. Needs `./scripts/setup` (QEMU, the kernel, the plugin, the guest).

mod common;
use common::{commuter, json, ok, result_of, temp_dir};

#[test]
fn check_finds_the_shared_dentry_of_stat_on_the_same_name() {
    let dir = temp_dir("check", "stat");
    let stdout = ok(&commuter(
        &["check", "-m", "posix", "-f", "stat/stat", "-o", "out"],
        &dir,
    ));
    let dir = dir.join("out");
    for file in [
        "analysis.json",
        "tests.json",
        "conflicts.json",
        "heatmap.svg",
    ] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let tests = json(&dir.join("tests.json"));
    let conflicts = json(&dir.join("conflicts.json"));
    let by_id = |id: &str| result_of(&conflicts, id);
    let mut same = 0;
    let mut different = 0;
    for t in tests["call_sets"][0]["tests"].as_array().expect("tests") {
        let names = [
            &t["calls"][0]["args"]["name"],
            &t["calls"][1]["args"]["name"],
        ];
        let present = t["setup"]["names"].as_array().map_or(0, Vec::len);
        let result = by_id(t["id"].as_str().expect("id"));
        assert!(
            result["mismatches"].as_array().is_some_and(Vec::is_empty),
            "{result}"
        );
        if names[0] == names[1] && present == 1 {
            // Both look up the same dentry: its reference count is written by both.
            assert_eq!(result["status"], "conflicted", "{t}\n{result}");
            same += 1;
        } else if names[0] != names[1] && present == 2 {
            assert_eq!(result["status"], "conflict_free", "{t}\n{result}");
            different += 1;
        }
    }
    assert!(same > 0 && different > 0, "both situations were generated");
    assert!(stdout.contains("stat/stat"), "{stdout}");
    let svg = std::fs::read_to_string(dir.join("heatmap.svg")).expect("svg");
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "an SVG image"
    );
}
