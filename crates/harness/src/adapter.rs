//! What an implementation's author writes: an [`Adapter`] from one model's tests to their code.

use commuter_tests_format::TestCase;
use serde_json::Value as Json;
use thiserror::Error;

/// Connects an implementation to a model's tests.
///
/// The runner parses every call of the selected tests with [`Adapter::parse_call`] before it
/// runs anything (so bad input stops the run before the first test, and no JSON is touched
/// inside a traced call), then per test and run builds a fresh instance with
/// [`Adapter::setup`] on CPU 0, performs call A with [`Adapter::call`] on CPU 1 and then call
/// B on CPU 2 (both on the same instance, through `&self`: the implementation's own
/// synchronisation is what is measured), and compares [`Adapter::result`] of each output with
/// the test's expected results.
///
/// ```
/// use commuter_harness::{Adapter, AdapterError, TestCase};
/// use serde_json::{Value as Json, json};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// The `getset` model (one register): `set(v)`, `get()`.
/// struct Register(AtomicU64);
/// enum Op { Set(u64), Get }
///
/// impl Adapter for Register {
///     const MODEL: &'static str = "getset";
///     const NAME: &'static str = "getset-atomic";
///     type Call = Op;
///     type Output = Option<u64>;
///     fn setup(test: &TestCase) -> Result<Self, AdapterError> {
///         let v = test.setup["val"].as_u64().ok_or_else(|| AdapterError::setup("no \"val\""))?;
///         Ok(Register(AtomicU64::new(v)))
///     }
///     fn parse_call(call: &str, args: &Json) -> Result<Op, AdapterError> {
///         match call {
///             "set" => args["val"].as_u64().map(Op::Set).ok_or_else(|| AdapterError::args(call, "no \"val\"")),
///             "get" => Ok(Op::Get),
///             _ => Err(AdapterError::unknown_call(call, &["set", "get"])),
///         }
///     }
///     fn call(&self, op: &Op) -> Option<u64> {
///         match op {
///             Op::Set(v) => { self.0.store(*v, Ordering::Relaxed); None }
///             Op::Get => Some(self.0.load(Ordering::Relaxed)),
///         }
///     }
///     fn result(out: &Option<u64>) -> Json {
///         out.map_or(Json::Null, |v| json!(v))
///     }
/// }
/// // fn main() { commuter_harness::main::<Register>() }
/// ```
pub trait Adapter: Sized + Sync {
    /// The model whose tests this adapter runs: `tests.json`'s `"model"` must be this.
    const MODEL: &'static str;
    /// The implementation's name, for the start line (e.g. `kv-mutex`).
    const NAME: &'static str;
    /// One call with its arguments parsed.
    type Call: Sync;
    /// What a call returns, before it is put in the model's terms.
    type Output: Send;

    /// A fresh instance in the test's initial state (`test.setup`, in the model's terms; the
    /// rest of the test is there for setups that must avoid what the calls name).
    fn setup(test: &TestCase) -> Result<Self, AdapterError>;

    /// Parses call `call` with arguments `args` (both as `tests.json` has them).
    fn parse_call(call: &str, args: &Json) -> Result<Self::Call, AdapterError>;

    /// Performs one call. Runs between the tracer's call markers, on the call's CPU: do
    /// nothing here but the call itself.
    fn call(&self, call: &Self::Call) -> Self::Output;

    /// The result as `tests.json` writes expected results (after the call's end marker).
    fn result(output: &Self::Output) -> Json;

    /// Whether `actual`, the result of call `slot` (0: A, 1: B) of `test`, is one the test
    /// accepts; `expected` holds the distinct results the test gives that call over every
    /// order. The default is equality with one of them. A model whose results carry values the
    /// implementation chooses (POSIX: file times, the numbers of new fds, the page a non-fixed
    /// `mmap` picks, the identity of a new inode) overrides it to compare what the model fixes.
    fn accepts(test: &TestCase, slot: usize, actual: &Json, expected: &[Json]) -> bool {
        let _ = (test, slot);
        crate::input::matches(actual, expected)
    }
}

/// Why an adapter could not take a test.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AdapterError {
    /// The test names a call the adapter does not implement.
    #[error("unknown call `{call}` (this adapter implements {})", known.join(", "))]
    UnknownCall {
        call: String,
        known: Vec<&'static str>,
    },
    /// A call's arguments are not what the model's tests contain.
    #[error("call `{call}`: bad arguments: {problem}")]
    BadArgs { call: String, problem: String },
    /// The initial state is not what the model's tests contain.
    #[error("bad setup: {0}")]
    BadSetup(String),
    /// A well-formed state or call the implementation cannot represent (e.g. a key outside
    /// a fixed key domain).
    #[error("not supported by this implementation: {0}")]
    Unsupported(String),
}

impl AdapterError {
    pub fn unknown_call(call: &str, known: &[&'static str]) -> AdapterError {
        AdapterError::UnknownCall {
            call: call.to_string(),
            known: known.to_vec(),
        }
    }

    pub fn args(call: &str, problem: impl Into<String>) -> AdapterError {
        AdapterError::BadArgs {
            call: call.to_string(),
            problem: problem.into(),
        }
    }

    pub fn setup(problem: impl Into<String>) -> AdapterError {
        AdapterError::BadSetup(problem.into())
    }
}
