//! End-to-end tests through the real `commuter` binary.

mod common;
use common::commuter;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> common::TestDir {
    common::temp_dir("cli", name)
}

#[test]
fn analyze_prints_conditions_and_writes_json() {
    let dir = temp_dir("analyze");
    let out = commuter(
        &[
            "analyze",
            "-m",
            "counter",
            "--check-conds",
            "--print-conds",
            "-o",
            "a.json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("inc/iszero"), "{stdout}");
    assert!(stdout.contains("commutes when s.counter != 0"), "{stdout}");
    assert!(
        stdout.contains("diverges (ab/b result) when s.counter == 0"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.json")).expect("written")).expect("json");
    assert_eq!(json["schema"], "commuter.analysis");
    assert_eq!(json["version"], 2);
    assert_eq!(json["model"], "counter");
    assert_eq!(json["call_sets"].as_array().map(Vec::len), Some(6));
    let inc_inc = &json["call_sets"][0];
    assert_eq!(inc_inc["calls"], serde_json::json!(["inc", "inc"]));
    assert_eq!(inc_inc["commutes"], "always");
}

#[test]
fn same_input_same_bytes() {
    let dir = temp_dir("determinism");
    for (jobs, file) in [("1", "one.json"), ("2", "two.json")] {
        let out = commuter(
            &[
                "analyze",
                "-m",
                "rename",
                "--print-conds",
                "-j",
                jobs,
                "-o",
                file,
            ],
            &dir,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let one = std::fs::read(dir.join("one.json")).expect("one");
    let two = std::fs::read(dir.join("two.json")).expect("two");
    assert!(one == two, "analysis.json differs between runs");
}

#[test]
fn selection_with_star_keeps_the_order_typed_and_merges_conditions() {
    let dir = temp_dir("star");
    let out = commuter(
        &[
            "analyze",
            "-m",
            "kv",
            "-f",
            "remove/*",
            "--check-conds",
            "--print-conds",
            "-o",
            "a.json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.json")).expect("written")).expect("json");
    let sets: Vec<String> = json["call_sets"]
        .as_array()
        .expect("call sets")
        .iter()
        .map(|c| {
            c["calls"]
                .as_array()
                .expect("calls")
                .iter()
                .filter_map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    // remove with every call, remove/remove included, remove first as typed.
    assert_eq!(
        sets,
        [
            "remove/insert",
            "remove/get",
            "remove/remove",
            "remove/contains",
            "remove/len"
        ]
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("    commutes iff !s.map.contains(a.key)\n"),
        "{stdout}"
    );
    assert!(json["call_sets"][4]["commutes_iff"] == "!s.map.contains(a.key)");
    let out = commuter(
        &["analyze", "-m", "counter", "-f", "dec/*", "--check-conds"],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("always, given the preconditions: s.counter >= 1"),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let dir = temp_dir("errors");
    let cases: &[(&[&str], &str)] = &[
        (&["analyze", "-m", "nosuch"], "unknown model `nosuch`"),
        (
            &["analyze", "-m", "counter", "-f", "inc,bogus"],
            "unknown call `bogus`",
        ),
        (
            &["analyze", "-m", "counter", "-f", "inc/"],
            "malformed call selection",
        ),
        (&["analyze", "-m", "counter", "-f", "{inc"], "expected `}`"),
        (
            &["analyze", "-m", "counter", "-f", "inc dec"],
            "at column 5: unexpected `d`",
        ),
        (
            &["analyze", "-m", "counter", "-n", "0"],
            "--ncomb must be at least 1",
        ),
        (
            &["analyze", "-m", "counter", "-o", "missing/dir/a.json"],
            "cannot write",
        ),
    ];
    for (args, message) in cases {
        let out = commuter(args, &dir);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let left: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert!(left.is_empty(), "nothing is written on bad input: {left:?}");
}

#[test]
fn models_lists_every_builtin() {
    let out = commuter(&["models"], &std::env::temp_dir());
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for m in [
        "counter",
        "getset",
        "watermark",
        "rename",
        "trackforget",
        "upipe",
    ] {
        assert!(stdout.contains(m), "{m} missing from {stdout}");
    }
}

#[test]
fn testgen_writes_tests_and_profile_reads_them() {
    let dir = temp_dir("testgen");
    let out = commuter(&["testgen", "-m", "rename", "-o", "t.json"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rename/rename      38           17       46"),
        "{stdout}"
    );
    let out = commuter(
        &[
            "testgen",
            "-m",
            "rename",
            "--max-tests-per-path",
            "2",
            "-o",
            "capped.json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = commuter(&["profile", "t.json"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("rename/rename      38           17       46       0       0")
    );

    let out = commuter(&["profile", "t.json", "capped.json"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("rename/rename") && diff.contains("-"),
        "{diff}"
    );

    // Per path: counts, and the lines that set each added class apart.
    let out = commuter(
        &[
            "profile",
            "--diff",
            "capped.json",
            "t.json",
            "--call-set",
            "rename/rename",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("rename/rename       25       46      +21"),
        "{diff}"
    );
    assert!(
        diff.contains("    rename_rename_30: 2 -> 17 tests"),
        "{diff}"
    );
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with("      + ")).collect();
    assert_eq!(added.len(), 21, "{diff}");
    assert!(
        added
            .iter()
            .all(|l| l.contains(" == ") || l.contains(" != ")),
        "{diff}"
    );
    let out = commuter(&["profile", "--diff", "t.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("compare two suites"),
        "{}",
        text(&out.stderr)
    );
    let out = commuter(
        &[
            "profile",
            "t.json",
            "capped.json",
            "--call-set",
            "nope/nope",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--call-set nope/nope"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(
        dir.join("bad.json"),
        "{\"schema\": \"commuter.tests\", \"version\": 1,",
    )
    .expect("write");
    let out = commuter(&["profile", "bad.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.json: line 1, column"),
        "{}",
        text(&out.stderr)
    );
    let out = commuter(&["profile", "missing.json"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read `missing.json`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn without_a_terminal_progress_is_printed_as_lines() {
    // The test's stderr is a pipe, not a terminal: the bar gives way to progress lines.
    let dir = temp_dir("progress");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_commuter"))
        .args(["analyze", "-m", "posix", "-f", "open/open", "-o", "a.json"])
        .env("COMMUTER_PROGRESS_SECS", "0.05")
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("progress: 0/1 call sets (0%) in 0:00:00"))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(line.contains("/s"), "{line}");
    // Inside the one call set, the paths explored so far count up.
    let most_paths = stderr
        .lines()
        .filter_map(|l| {
            l.split(", ")
                .find_map(|p| p.strip_suffix(" paths explored"))
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .max();
    assert!(
        most_paths.is_some_and(|n| n > 0),
        "no line counted an explored path: {stderr}"
    );
}

#[test]
fn tests_name_their_idempotent_calls_unless_told_not_to_decide() {
    let dir = temp_dir("idempotence");
    let idempotent_tests = |extra: &[&str]| {
        let mut args = vec!["testgen", "-m", "getset", "-f", "set/set", "-o", "t.json"];
        args.extend_from_slice(extra);
        let out = commuter(&args, &dir);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let suite: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("t.json")).unwrap()).unwrap();
        let tests = suite["call_sets"][0]["tests"].as_array().unwrap().clone();
        let named = tests
            .iter()
            .filter(|t| t.get("idempotent").is_some())
            .count();
        (named, tests.len())
    };
    let (named, total) = idempotent_tests(&[]);
    // set/set commutes only when both set the same value: setting it again changes nothing.
    assert!(
        total >= 1 && named == total,
        "set/set: every test is idempotent: {named} of {total}"
    );
    assert_eq!(idempotent_tests(&["--no-idempotence"]), (0, total));
}
