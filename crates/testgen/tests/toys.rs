//! Test generation on the toy models: counts, contents, caps, the file format.

use commuter_analyzer::select_model_call_sets;
use commuter_models::find_model;
use commuter_testgen::{LoadError, TestSuite, TestgenOptions, parse_suite, testgen};

fn suite(model: &str, functions: Option<&str>, opts: &TestgenOptions) -> TestSuite {
    let m = find_model(model).expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), functions, 2).expect("selection");
    testgen(m.as_ref(), &sets, opts, functions, &|_| {})
        .expect("testgen")
        .0
}

fn counts(s: &TestSuite) -> Vec<(String, usize)> {
    s.call_sets
        .iter()
        .map(|c| (c.name(), c.tests.len()))
        .collect()
}

#[test]
fn counter_has_one_test_per_commutative_path() {
    let s = suite("counter", None, &TestgenOptions::default());
    for cs in &s.call_sets {
        assert_eq!(cs.tests.len(), cs.commutative_paths, "{}", cs.name());
        assert!(cs.errors.is_empty() && cs.capped_paths.is_empty());
    }
    let inc_iszero = &s.call_sets[2];
    assert_eq!(inc_iszero.name(), "inc/iszero");
    let t = &inc_iszero.tests[0];
    assert_eq!(t.id, format!("{}_0", t.path));
    let counter = t.setup["counter"].as_i64().expect("an integer counter");
    assert!(
        counter > 0,
        "inc/iszero commute only on a non-zero counter: {counter}"
    );
    // iszero returns false whether it runs first (order "b") or last (order "ab").
    for e in t.expected.iter().filter(|e| e.slot == "b") {
        assert_eq!(e.result, serde_json::json!(false), "{e:?}");
    }
}

#[test]
fn rename_enumerates_name_patterns() {
    let s = suite("rename", None, &TestgenOptions::default());
    let rr = &s.call_sets[0];
    assert_eq!(rr.commutative_paths, 17);
    assert_eq!(rr.tests.len(), 46);
    // Every test of the "both sources absent" path names absent sources.
    for t in rr.tests.iter().filter(|t| t.path == "rename_rename_0") {
        let dir = t.setup["dir"].as_object().expect("dir");
        for call in &t.calls {
            let src = call.args["src"].as_str().expect("a name");
            assert!(!dir.contains_key(src), "{src} is absent in {t:?}");
        }
    }
    // Distinct tests of one path differ in their equality pattern of names.
    let path0: Vec<_> = rr
        .tests
        .iter()
        .filter(|t| t.path == "rename_rename_0")
        .collect();
    // Sources equal or not; the destinations are never looked up (both calls fail first), so
    // whether they exist makes no classes.
    assert_eq!(path0.len(), 2);
    let srcs: Vec<(String, String)> = path0
        .iter()
        .map(|t| {
            (
                t.calls[0].args["src"].to_string(),
                t.calls[1].args["src"].to_string(),
            )
        })
        .collect();
    assert!(
        srcs.iter().any(|(a, b)| a == b) && srcs.iter().any(|(a, b)| a != b),
        "{srcs:?}"
    );
}

#[test]
fn upipe_setup_holds_what_the_reads_return() {
    let s = suite("upipe", Some("read"), &TestgenOptions::default());
    let rr = &s.call_sets[0];
    assert_eq!(rr.name(), "read/read");
    // The empty pipe; and a pipe holding what the two reads take: one element twice, or two
    // different ones (which ones the reads take is the implementation's choice).
    assert_eq!(rr.tests.len(), 3);
    for t in &rr.tests {
        let counts = t.setup["elems"]["counts"].as_object().expect("counts");
        for e in &t.expected {
            if let Some(elem) = e.result.get("some").and_then(|v| v.as_str()) {
                assert!(
                    counts.get(elem).and_then(|c| c.as_i64()).unwrap_or(0) > 0,
                    "{t:?}"
                );
            }
        }
    }
}

#[test]
fn caps_are_reported() {
    let opts = TestgenOptions {
        max_tests_per_path: 2,
        ..Default::default()
    };
    let s = suite("rename", None, &opts);
    let rr = &s.call_sets[0];
    assert!(rr.tests.iter().all(|t| !t.id.ends_with("_2")));
    assert!(
        rr.capped_paths.contains(&"rename_rename_30".to_string()),
        "{:?}",
        rr.capped_paths
    );
    let opts = TestgenOptions {
        max_testcases: Some(10),
        ..Default::default()
    };
    let s = suite("rename", None, &opts);
    assert_eq!(s.call_sets[0].tests.len(), 10);
    assert!(!s.call_sets[0].capped_paths.is_empty());
}

#[test]
fn same_input_same_tests() {
    let a = suite("rename", None, &TestgenOptions::default());
    let b = suite("rename", None, &TestgenOptions::default());
    assert_eq!(a, b);
    assert_eq!(
        counts(&suite("watermark", None, &TestgenOptions::default())).len(),
        3
    );
}

#[test]
fn round_trips_and_rejects_bad_files() {
    let s = suite("getset", None, &TestgenOptions::default());
    let text = serde_json::to_string_pretty(&s).expect("json");
    assert_eq!(
        parse_suite("tests.json", text.as_bytes()).expect("parses"),
        s
    );

    let newer = text.replacen("\"version\": 1", "\"version\": 7", 1);
    let e = parse_suite("tests.json", newer.as_bytes()).unwrap_err();
    assert!(matches!(e, LoadError::Version { found: 7, .. }), "{e}");
    assert!(
        e.to_string()
            .contains("regenerate it with `commuter testgen`"),
        "{e}"
    );

    let truncated = &text[..text.len() / 2];
    let e = parse_suite("tests.json", truncated.as_bytes()).unwrap_err();
    assert!(matches!(e, LoadError::Malformed { .. }), "{e}");
    assert!(e.to_string().starts_with("tests.json: line "), "{e}");

    let wrong_field = text.replacen("\"calls\"", "\"kalls\"", 1);
    let e = parse_suite("tests.json", wrong_field.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("kalls"), "{e}");

    let e = parse_suite("x.json", b"{\"schema\": \"other\"}").unwrap_err();
    assert!(matches!(e, LoadError::NotASuite { .. }), "{e}");
}

#[test]
fn posix_tests_do_not_depend_on_the_solvers_models() {
    // Z3 returns different models for the same query in different contexts; on pipes and
    // files this used to change which tests were generated. Two runs in one process use two
    // fresh contexts.
    let first = suite("posix", Some("lseek/write"), &TestgenOptions::default());
    let second = suite("posix", Some("lseek/write"), &TestgenOptions::default());
    assert!(first.total_tests() > 100);
    assert_eq!(first, second);
}

#[test]
fn kv_setups_are_maps_an_implementation_can_build() {
    let s = suite("kv", None, &TestgenOptions::default());
    assert!(s.total_tests() > 0);
    for cs in &s.call_sets {
        assert!(cs.errors.is_empty(), "{}: {:?}", cs.name(), cs.errors);
        for t in &cs.tests {
            let map = t.setup["map"].as_object().expect("a map of entries");
            let len = t.setup["len"].as_u64().expect("a size");
            // The size counts at least the entries listed (the rest are keys no call names).
            assert!(len as usize >= map.len(), "{t:?}");
            for (k, v) in map {
                assert!(k.starts_with("Key") && v.as_str().is_some_and(|v| v.starts_with("Value")));
            }
            for c in &t.calls {
                if let Some(k) = c.args.get("key") {
                    assert!(k.as_str().is_some_and(|k| k.starts_with("Key")), "{t:?}");
                }
            }
        }
    }
    // insert/len commute only when the key is there: the setup lists it, and len counts it.
    let il = s
        .call_sets
        .iter()
        .find(|c| c.name() == "insert/len")
        .expect("insert/len");
    for t in &il.tests {
        let key = t.calls[0].args["key"].as_str().expect("key");
        assert!(t.setup["map"].get(key).is_some(), "{t:?}");
        assert!(t.setup["len"].as_u64() >= Some(1), "{t:?}");
        for e in t.expected.iter().filter(|e| e.slot == "b") {
            assert_eq!(e.result, t.setup["len"], "{t:?}");
        }
    }
}
