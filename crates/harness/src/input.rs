//! The runner's input: a `tests.json` (read with the schema crate `commuter-testgen` writes
//! with), narrowed to the selected tests, every call parsed by the adapter before anything runs.

use crate::adapter::{Adapter, AdapterError};
use commuter_suite::{LoadError, TestCase, TestSuite, parse_suite};
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
