//! `commuter report` and `commuter diff` through the real binary, on a conflicts file made
//! here (the schema's real types, two tests) and a copy with one test made worse.

use std::path::Path;

use serde_json::{Value, json};

mod common;
use common::{commuter, ok};

/// A conflicts file of two inc/inc-style tests: `t_0` conflict-free, `t_1` conflicted on a
/// static variable written by a site with a source line.
fn conflicts() -> Value {
    let site = json!({"pc": "0xffffffff81000010", "mode": "kernel", "symbol": "bump",
        "offset": "0x10", "frames": [{"function": "bump", "file": "kernel/counter.c", "line": 42}]});
    let shared = json!({"addr": "0x1000", "size": 8,
        "what": {"kind": "static", "symbol": "counter", "offset": "0x0", "section": ".data",
                 "vaddr": "0xffffffff81001000"},
        "a": {"rw": "w", "mode": "kernel", "sites": [site.clone()]},
        "b": {"rw": "w", "mode": "kernel", "sites": [site]}});
    let test = |id: &str, status: &str, shared: Vec<Value>| {
        json!({"id": id, "calls": ["inc", "inc"], "status": status, "shared": shared,
               "false_sharing": [], "mismatches": [], "errors": []})
    };
    json!({"schema": "commuter.conflicts", "version": 4,
        "target": {"name": "linux", "version": null, "symbols": null},
        "tests": [test("t_0", "conflict_free", vec![]), test("t_1", "conflicted", vec![shared])]})
}

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(v).expect("JSON")).expect("write");
}

#[test]
fn report_prints_the_summary_and_writes_sarif() {
    let dir = common::temp_dir("report", "sarif");
    write(&dir, "conflicts.json", &conflicts());
    let stdout = ok(&commuter(
        &[
            "report",
            "conflicts.json",
            "--sarif",
            "r.sarif",
            "--heatmap",
            "h.svg",
        ],
        &dir,
    ));
    assert!(stdout.contains("inc/inc"), "{stdout}");
    let sarif: Value = common::json(&dir.join("r.sarif"));
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "shared-static-variable");
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "kernel/counter.c");
    assert_eq!(loc["region"]["startLine"], 42);
    assert!(dir.join("h.svg").is_file());
}

#[test]
fn diff_exits_1_when_the_new_run_is_worse_and_0_when_not() {
    let dir = common::temp_dir("report", "diff");
    let old = conflicts();
    let mut worse = old.clone();
    worse["tests"][0] = worse["tests"][1].clone();
    worse["tests"][0]["id"] = "t_0".into();
    write(&dir, "old.json", &old);
    write(&dir, "worse.json", &worse);
    let same = commuter(&["diff", "old.json", "old.json"], &dir);
    assert_eq!(same.status.code(), Some(0));
    let out = commuter(&["diff", "old.json", "worse.json"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("became conflicted: 1") && stdout.contains("t_0"),
        "{stdout}"
    );
    assert!(stdout.contains("bump (kernel/counter.c:42)"), "{stdout}");
    // The fix is not worse.
    let back = commuter(&["diff", "worse.json", "old.json"], &dir);
    assert_eq!(back.status.code(), Some(0));
}

/// Width and height from a PNG's header (its IHDR chunk comes first).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

#[test]
fn report_writes_png_heat_maps_and_upgrades_old_files() {
    let dir = common::temp_dir("report", "png");
    let mut v3 = conflicts();
    v3["version"] = 3.into();
    // Version 3: no modes (all kernel).
    for side in ["a", "b"] {
        let access = &mut v3["tests"][1]["shared"][0][side];
        access.as_object_mut().expect("access").remove("mode");
        access["sites"][0]
            .as_object_mut()
            .expect("site")
            .remove("mode");
    }
    write(&dir, "v3.json", &v3);
    write(&dir, "v4.json", &conflicts());
    let stdout = ok(&commuter(
        &[
            "report",
            "v3.json",
            "--upgrade",
            "v5.json",
            "--heatmap",
            "one.png",
        ],
        &dir,
    ));
    assert!(stdout.contains("wrote v5.json"), "{stdout}");
    let v5 = std::fs::read_to_string(dir.join("v5.json")).expect("v5");
    assert!(v5.starts_with("{\"schema\":\"commuter.conflicts\",\"version\":5,"));
    // The site is stored once and referred to from both sides.
    assert_eq!(v5.matches("kernel/counter.c").count(), 1, "{v5}");
    assert!(v5.contains("\"sites\":[0]"), "{v5}");
    // Upgraded, it reads as the version 4 file does.
    ok(&commuter(
        &["report", "v4.json", "--upgrade", "v5-of-4.json"],
        &dir,
    ));
    let again = std::fs::read_to_string(dir.join("v5-of-4.json")).expect("v5");
    assert_eq!(again, v5);
    // PNG by extension, twice the SVG's size; a panel widens it.
    ok(&commuter(
        &[
            "report",
            "v5.json",
            "--heatmap",
            "two.png",
            "--panel",
            "v4.json",
        ],
        &dir,
    ));
    ok(&commuter(
        &["report", "v5.json", "--heatmap", "one.svg"],
        &dir,
    ));
    let svg = std::fs::read_to_string(dir.join("one.svg")).expect("svg");
    let width = |s: &str| -> u32 {
        let w = s.split("width=\"").nth(1).expect("width");
        w[..w.find('"').expect("quote")].parse().expect("number")
    };
    let one = png_size(&std::fs::read(dir.join("one.png")).expect("png"));
    let two = png_size(&std::fs::read(dir.join("two.png")).expect("png"));
    assert_eq!(one.0, 2 * width(&svg));
    assert!(two.0 > one.0 && two.1 == one.1, "{one:?} {two:?}");
}

#[test]
fn a_conflicts_file_of_another_version_is_a_usage_error() {
    let dir = common::temp_dir("report", "version");
    let mut old = conflicts();
    old["version"] = 2.into();
    write(&dir, "v2.json", &old);
    let out = commuter(&["report", "v2.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("v2.json") && stderr.contains("commuter run"),
        "{stderr}"
    );
}

#[test]
fn report_and_diff_write_html_and_tikz_panels() {
    let dir = common::temp_dir("report", "html");
    write(&dir, "conflicts.json", &conflicts());
    let mut worse = conflicts();
    worse["tests"][0] = worse["tests"][1].clone();
    worse["tests"][0]["id"] = "t_0".into();
    write(&dir, "worse.json", &worse);
    let stdout = ok(&commuter(
        &[
            "report",
            "conflicts.json",
            "--html",
            "r.html",
            "--heatmap",
            "fig.tex",
            "--panel",
            "worse.json",
        ],
        &dir,
    ));
    assert!(stdout.contains("wrote r.html"), "{stdout}");
    let html = std::fs::read_to_string(dir.join("r.html")).expect("html");
    assert!(html.contains("commuter.report-html") && html.contains("kernel/counter.c"));
    let tex = std::fs::read_to_string(dir.join("fig.tex")).expect("tikz");
    assert!(tex.starts_with("% commuter heat map") && tex.contains("\\begin{tikzpicture}"));
    assert_eq!(tex.matches("(0 of 2 cases scale)").count(), 1, "{tex}");
    assert_eq!(tex.matches("(1 of 2 cases scale)").count(), 1, "{tex}");
    let out = commuter(
        &["diff", "conflicts.json", "worse.json", "--html", "d.html"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(dir.join("d.html")).expect("diff html");
    assert!(html.contains(r#""mode":"diff""#));
    // A panel without a heat map is a usage error, before anything is written.
    let out = commuter(&["report", "conflicts.json", "--panel", "worse.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--heatmap"));
}
