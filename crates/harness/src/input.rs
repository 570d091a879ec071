//! The runner's input: a `tests.json` (read with the schema crate `commuter-testgen` writes
//! with), narrowed to the selected tests, every call parsed by the adapter before anything runs.

use crate::adapter::{Adapter, AdapterError};
use commuter_tests_format::{LoadError, TestCase, TestSuite, parse_suite};
use serde_json::Value as Json;
use thiserror::Error;

/// Which tests of the file to run (empty lists: every test).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Test ids (`insert_len_3_0`).
    pub tests: Vec<String>,
    /// Call sets (`insert/len`).
    pub call_sets: Vec<String>,
}

/// A test ready to run: its calls parsed and its acceptable results per call.
pub struct Prepared<A: Adapter> {
    pub test: TestCase,
    /// `test`'s call set, `insert/len`.
    pub call_set: String,
    /// Call A and call B.
    pub calls: [A::Call; 2],
    /// Per call, the distinct results `tests.json` expects of it over every order (one for a
    /// model without internal choices: a commutative test's call returns the same in either
    /// order).
    pub expected: [Vec<Json>; 2],
}

/// Why the input cannot be run; every message says how to fix it.
#[derive(Debug, Error)]
pub enum InputError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}; give this runner a tests.json written by `commuter testgen`")]
    Suite(LoadError),
    #[error(
        "{file} holds tests of model `{found}`, this runner implements model `{expected}`: generate its tests with `commuter testgen -m {expected} -o tests.json`"
    )]
    WrongModel {
        file: String,
        found: String,
        expected: String,
    },
    #[error(
        "test {id} has {calls} calls; this runner runs pairs of calls: generate the tests with two calls per set (`commuter testgen`'s default)"
    )]
    NotAPair { id: String, calls: usize },
    #[error(
        "test {id}, call {slot}: {error}; the adapter and model `{model}` disagree: is the model's call list newer than the adapter? (select other call sets with --calls)"
    )]
    Call {
        id: String,
        slot: String,
        model: String,
        error: Box<AdapterError>,
    },
    #[error(
        "test {id}: no expected result for call {slot}; regenerate the file with `commuter testgen`"
    )]
    NoExpectation { id: String, slot: String },
    #[error("no test {id:?} in {file} (ids look like `{example}`; list them with --list)")]
    UnknownTest {
        id: String,
        file: String,
        example: String,
    },
    #[error("no call set {name:?} in {file}; it has: {available}")]
    UnknownCallSet {
        name: String,
        file: String,
        available: String,
    },
}

/// Reads `file` and prepares the selected tests for adapter `A`.
pub fn load<A: Adapter>(file: &str, sel: &Selection) -> Result<Vec<Prepared<A>>, InputError> {
    let bytes = std::fs::read(file).map_err(|source| InputError::Read {
        file: file.to_string(),
        source,
    })?;
    prepare::<A>(file, &bytes, sel)
}

/// [`load`] on the file's bytes (`file` names it in messages).
pub fn prepare<A: Adapter>(
    file: &str,
    bytes: &[u8],
    sel: &Selection,
) -> Result<Vec<Prepared<A>>, InputError> {
    let suite = parse_suite(file, bytes).map_err(InputError::Suite)?;
    if suite.model != A::MODEL {
        return Err(InputError::WrongModel {
            file: file.to_string(),
            found: suite.model,
            expected: A::MODEL.to_string(),
        });
    }
    check_selection(file, &suite, sel)?;
    let mut out = Vec::new();
    for cs in suite.call_sets {
        let name = cs.name();
        if !sel.call_sets.is_empty() && !sel.call_sets.contains(&name) {
            continue;
        }
        for test in cs.tests {
            if !sel.tests.is_empty() && !sel.tests.contains(&test.id) {
                continue;
            }
            out.push(prepare_test::<A>(test, name.clone())?);
        }
    }
    Ok(out)
}

fn check_selection(file: &str, suite: &TestSuite, sel: &Selection) -> Result<(), InputError> {
    let names: Vec<String> = suite.call_sets.iter().map(|c| c.name()).collect();
    if let Some(name) = sel.call_sets.iter().find(|n| !names.contains(n)) {
        return Err(InputError::UnknownCallSet {
            name: name.clone(),
            file: file.to_string(),
            available: names.join(", "),
        });
    }
    let ids = || {
        suite
            .call_sets
            .iter()
            .flat_map(|c| c.tests.iter())
            .map(|t| &t.id)
    };
    if let Some(id) = sel.tests.iter().find(|id| !ids().any(|t| t == *id)) {
        return Err(InputError::UnknownTest {
            id: id.clone(),
            file: file.to_string(),
            example: ids()
                .next()
                .cloned()
                .unwrap_or_else(|| "get_len_0_0".into()),
        });
    }
    Ok(())
}

fn prepare_test<A: Adapter>(test: TestCase, call_set: String) -> Result<Prepared<A>, InputError> {
    if test.calls.len() != 2 {
        return Err(InputError::NotAPair {
            id: test.id,
            calls: test.calls.len(),
        });
    }
    let parse = |i: usize| {
        let c = &test.calls[i];
        A::parse_call(&c.call, &c.args).map_err(|error| InputError::Call {
            id: test.id.clone(),
            slot: c.slot.clone(),
            model: A::MODEL.to_string(),
            error: Box::new(error),
        })
    };
    let calls = [parse(0)?, parse(1)?];
    let expected = [expected_of(&test, 0)?, expected_of(&test, 1)?];
    Ok(Prepared {
        test,
        call_set,
        calls,
        expected,
    })
}

/// The distinct results expected of call `i` over every order, in file order.
fn expected_of(test: &TestCase, i: usize) -> Result<Vec<Json>, InputError> {
    let slot = &test.calls[i].slot;
    let mut out: Vec<Json> = Vec::new();
    for e in test.expected.iter().filter(|e| &e.slot == slot) {
        if !out.contains(&e.result) {
            out.push(e.result.clone());
        }
    }
    if out.is_empty() {
        return Err(InputError::NoExpectation {
            id: test.id.clone(),
            slot: slot.clone(),
        });
    }
    Ok(out)
}

/// Whether a call's result is one the test expects.
pub fn matches(actual: &Json, expected: &[Json]) -> bool {
    expected.contains(actual)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::kv::{KvAdapter, KvMap};
    use serde_json::json;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Map(Mutex<BTreeMap<u64, u64>>);
    impl KvMap for Map {
        const NAME: &'static str = "test-map";
        fn from_entries(e: &[(u64, u64)]) -> Result<Self, AdapterError> {
            Ok(Map(Mutex::new(e.iter().copied().collect())))
        }
        fn insert(&self, k: u64, v: u64) -> Option<u64> {
            self.0.lock().ok()?.insert(k, v)
        }
        fn get(&self, k: u64) -> Option<u64> {
            self.0.lock().ok()?.get(&k).copied()
        }
        fn remove(&self, k: u64) -> Option<u64> {
            self.0.lock().ok()?.remove(&k)
        }
        fn contains(&self, k: u64) -> bool {
            self.0.lock().is_ok_and(|m| m.contains_key(&k))
        }
        fn len(&self) -> usize {
            self.0.lock().map_or(0, |m| m.len())
        }
    }
    type Kv = KvAdapter<Map>;

    /// A one-test `kv` suite whose call B is `call_b`.
    fn suite(model: &str, call_b: &str) -> Json {
        json!({
            "schema": "commuter.tests", "version": 1, "model": model, "ncomb": 2,
            "functions": null, "max_tests_per_path": 100, "max_testcases": null,
            "call_sets": [{
                "calls": ["get", call_b], "paths": 1, "commutative_paths": 1,
                "capped_paths": [], "errors": [],
                "tests": [{
                    "id": "get_x_0_0", "path": "get_x_0",
                    "setup": {"map": {"Key0": "Value0"}, "len": 1},
                    "calls": [
                        {"slot": "a", "call": "get", "args": {"key": "Key0"}},
                        {"slot": "b", "call": call_b, "args": {"key": "Key0"}}
                    ],
                    "expected": [
                        {"order": "a", "slot": "a", "result": {"some": "Value0"}},
                        {"order": "ba", "slot": "a", "result": {"some": "Value0"}},
                        {"order": "b", "slot": "b", "result": true},
                        {"order": "ab", "slot": "b", "result": true}
                    ]
                }]
            }]
        })
    }

    fn load(j: &Json, sel: &Selection) -> Result<Vec<Prepared<Kv>>, InputError> {
        prepare::<Kv>("tests.json", j.to_string().as_bytes(), sel)
    }

    #[test]
    fn a_suite_is_read_with_its_calls_parsed_and_results_merged() {
        let tests = load(&suite("kv", "contains"), &Selection::default()).expect("loads");
        assert_eq!(tests.len(), 1);
        let t = &tests[0];
        assert_eq!(t.call_set, "get/contains");
        // One expected value per call, though two orders state it.
        assert_eq!(t.expected[0], [json!({"some": "Value0"})]);
        assert_eq!(t.expected[1], [json!(true)]);
        assert!(matches(&json!({"some": "Value0"}), &t.expected[0]));
        assert!(!matches(&json!("none"), &t.expected[0]));
        assert!(!matches(&json!({"some": "Value1"}), &t.expected[0]));
    }

    #[test]
    fn the_wrong_schema_or_version_names_the_fix() {
        let mut j = suite("kv", "contains");
        j["schema"] = json!("commuter.analysis");
        let e = load(&j, &Selection::default()).err().expect("refused");
        assert!(matches!(e, InputError::Suite(_)), "{e:?}");
        assert!(e.to_string().contains("commuter testgen"), "{e}");
        j["schema"] = json!("commuter.tests");
        j["version"] = json!(99);
        let e = load(&j, &Selection::default()).err().expect("refused");
        assert!(
            e.to_string()
                .contains("regenerate it with `commuter testgen`"),
            "{e}"
        );
        let e = prepare::<Kv>("t.json", b"{\"schema\": ", &Selection::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn tests_of_another_model_name_the_command_that_makes_the_right_ones() {
        let e = load(&suite("counter", "contains"), &Selection::default())
            .err()
            .expect("refused");
        assert!(
            e.to_string()
                .contains("commuter testgen -m kv -o tests.json"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_call_names_the_test_and_the_calls_the_adapter_knows() {
        let e = load(&suite("kv", "frobnicate"), &Selection::default())
            .err()
            .expect("refused");
        let msg = e.to_string();
        assert!(msg.contains("test get_x_0_0, call b"), "{msg}");
        assert!(msg.contains("unknown call `frobnicate`"), "{msg}");
        assert!(msg.contains("insert, get, remove, contains, len"), "{msg}");
        assert!(msg.contains("--calls"), "{msg}");
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        let mut j = suite("kv", "contains");
        j["call_sets"][0]["tests"][0]["calls"][1]["args"] = json!({"key": 7});
        let e = load(&j, &Selection::default()).err().expect("refused");
        assert!(
            e.to_string().contains("expected a label like \"Key0\""),
            "{e}"
        );
    }

    #[test]
    fn selections_pick_tests_and_refuse_names_the_file_lacks() {
        let j = suite("kv", "contains");
        let by_id = Selection {
            tests: vec!["get_x_0_0".into()],
            ..Selection::default()
        };
        assert_eq!(load(&j, &by_id).map(|t| t.len()).ok(), Some(1));
        let by_set = Selection {
            call_sets: vec!["get/contains".into()],
            ..Selection::default()
        };
        assert_eq!(load(&j, &by_set).map(|t| t.len()).ok(), Some(1));
        let missing = Selection {
            tests: vec!["nope".into()],
            ..Selection::default()
        };
        let e = load(&j, &missing).err().expect("refused");
        assert!(e.to_string().contains("ids look like `get_x_0_0`"), "{e}");
        let other_set = Selection {
            call_sets: vec!["len/len".into()],
            ..Selection::default()
        };
        let e = load(&j, &other_set).err().expect("refused");
        assert!(e.to_string().contains("it has: get/contains"), "{e}");
    }

    #[test]
    fn a_call_without_an_expected_result_is_refused() {
        let mut j = suite("kv", "contains");
        let exp = j["call_sets"][0]["tests"][0]["expected"]
            .as_array_mut()
            .expect("array");
        exp.retain(|e| e["slot"] != "b");
        let e = load(&j, &Selection::default()).err().expect("refused");
        assert!(matches!(e, InputError::NoExpectation { .. }), "{e:?}");
    }
}
