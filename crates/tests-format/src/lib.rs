//! The `tests.json` schema: everything a target needs to set up and run each test, with no
//! access to the model or the solver.
//!
//! Plain data with serde only (no Z3), so targets, the harness that implementations link and
//! static guest binaries read test suites with the same types `commuter testgen` writes.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use thiserror::Error;

pub const TESTS_SCHEMA: &str = "commuter.tests";
pub const TESTS_VERSION: u32 = 1;

/// A whole test suite (`tests.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSuite {
    pub schema: String,
    pub version: u32,
    pub model: String,
    pub ncomb: usize,
    pub functions: Option<String>,
    pub max_tests_per_path: usize,
    pub max_testcases: Option<usize>,
    /// Present only in one part of a sharded generation (`commuter testgen --shard I/N`); such
    /// a file is joined with its siblings (`commuter merge`) before anything runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<SuitePart>,
    pub call_sets: Vec<CallSetTests>,
}

/// Which part of a sharded test generation a partial `tests.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuitePart {
    /// The part, from 1 to `count`.
    pub index: u32,
    /// How many parts the generation was cut into.
    pub count: u32,
    /// Every call set of the whole generation (`open/stat`), in selection order: a merge puts
    /// the parts' call sets back in this order and tells when one is missing.
    pub selection: Vec<String>,
    /// Whether idempotence was decided (not `--no-idempotence`): parts must agree, since a
    /// suite records it only in its tests.
    pub idempotence: bool,
}

/// The tests of one call set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSetTests {
    pub calls: Vec<String>,
    pub paths: usize,
    pub commutative_paths: usize,
    /// Ids of commutative paths whose enumeration stopped at a cap.
    pub capped_paths: Vec<String>,
    pub tests: Vec<TestCase>,
    /// Tests that could not be built (e.g. a pool of concrete values ran out).
    pub errors: Vec<TestError>,
}

/// One concrete test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// `<call>_<call>_<path>_<n>`.
    pub id: String,
    /// The analyzer's id of the commutative path the test comes from.
    pub path: String,
    /// The facts and equalities that define the test's isomorphism class within its path
    /// (empty in suites written before classes were recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class: Vec<String>,
    /// The slots ("a", "b", ...) whose call is idempotent on the test's path (run twice, it
    /// repeats its result and leaves the state it left): a conflict between such calls is one
    /// an implementation avoids by not writing what is already there. Absent in suites written
    /// before idempotence was decided, and where no call is idempotent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idempotent: Vec<String>,
    /// The initial state, in the model's own terms.
    pub setup: Json,
    /// The calls, in slot order (slot `a` first).
    pub calls: Vec<TestCall>,
    /// Each call's expected result after each order that ends with it.
    pub expected: Vec<Expectation>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCall {
    pub slot: String,
    pub call: String,
    pub args: Json,
}

/// `result` is what `slot`'s call returns when run last in `order` (e.g. order `ba`: slot `a`
/// after `b`; order `a`: slot `a` alone first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub order: String,
    pub slot: String,
    pub result: Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestError {
    pub path: String,
    pub error: String,
}

impl CallSetTests {
    pub fn name(&self) -> String {
        self.calls.join("/")
    }
}

impl TestSuite {
    pub fn total_tests(&self) -> usize {
        self.call_sets.iter().map(|c| c.tests.len()).sum()
    }
}

/// Why a `tests.json` could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{file}: not a commuter test suite: {problem}")]
    NotASuite { file: String, problem: String },
    #[error(
        "{file}: test suite version {found} is not supported (this commuter reads version {TESTS_VERSION}); regenerate it with `commuter testgen`"
    )]
    Version { file: String, found: u32 },
    #[error(
        "{file}: part {index} of {count} of a sharded test generation; join every part first: `commuter merge PART... -o tests.json`"
    )]
    Part {
        file: String,
        index: u32,
        count: u32,
    },
    #[error("{file}: line {line}, column {column}: {problem}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        problem: String,
    },
}

#[derive(Deserialize)]
struct Header {
    schema: Option<String>,
    version: Option<u32>,
}

/// Parse a whole test suite, naming `file` (for messages), position and problem on failure;
/// one part of a sharded generation is refused with the command that joins the parts.
pub fn parse_suite(file: &str, bytes: &[u8]) -> Result<TestSuite, LoadError> {
    let suite = parse_suite_or_part(file, bytes)?;
    match &suite.part {
        None => Ok(suite),
        Some(part) => Err(LoadError::Part {
            file: file.to_string(),
            index: part.index,
            count: part.count,
        }),
    }
}

/// [`parse_suite`], also accepting one part of a sharded generation (for the merge).
pub fn parse_suite_or_part(file: &str, bytes: &[u8]) -> Result<TestSuite, LoadError> {
    let malformed = |e: serde_json::Error| LoadError::Malformed {
        file: file.to_string(),
        line: e.line(),
        column: e.column(),
        problem: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let header: Header = serde_json::from_slice(bytes).map_err(malformed)?;
    if header.schema.as_deref() != Some(TESTS_SCHEMA) {
        return Err(LoadError::NotASuite {
            file: file.to_string(),
            problem: format!(
                "its \"schema\" is {:?}, expected {TESTS_SCHEMA:?}",
                header.schema
            ),
        });
    }
    match header.version {
        Some(TESTS_VERSION) => {}
        Some(found) => {
            return Err(LoadError::Version {
                file: file.to_string(),
                found,
            });
        }
        None => {
            return Err(LoadError::NotASuite {
                file: file.to_string(),
                problem: "it has no \"version\"".to_string(),
            });
        }
    }
    serde_json::from_slice(bytes).map_err(malformed)
}
