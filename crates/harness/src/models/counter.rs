//! The `counter` model: `inc`, `dec` (only on a positive counter), `iszero`.
//!
//! `setup`: `{"counter": n}`, `n >= 0`; calls take no arguments (`null`); `inc` and `dec`
//! return `null`, `iszero` a boolean.

use crate::{Adapter, AdapterError, TestCase};
use serde_json::{Value as Json, json};

/// The counter's calls.
pub const CALLS: [&str; 3] = ["inc", "dec", "iszero"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterCall {
    Inc,
    Dec,
    IsZero,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOutput {
    /// `inc` and `dec` return nothing.
    Unit,
    IsZero(bool),
}

/// A counter implementation.
pub trait CounterImpl: Sync + Sized {
    /// For the start line, e.g. `counter-atomic`.
    const NAME: &'static str;
    /// A counter holding `value`.
    fn new(value: u64) -> Result<Self, AdapterError>;
    fn inc(&self);
    /// Only called on a positive counter (the model's precondition).
    fn dec(&self);
    fn is_zero(&self) -> bool;
}

/// The counter's initial value.
pub fn setup_value(test: &TestCase) -> Result<u64, AdapterError> {
    test.setup
        .get("counter")
        .and_then(Json::as_u64)
        .ok_or_else(|| {
            AdapterError::setup(format!(
                "expected {{\"counter\": <non-negative integer>}}, found {}",
                test.setup
            ))
        })
}

pub fn parse_call(call: &str, _args: &Json) -> Result<CounterCall, AdapterError> {
    match call {
        "inc" => Ok(CounterCall::Inc),
        "dec" => Ok(CounterCall::Dec),
        "iszero" => Ok(CounterCall::IsZero),
        _ => Err(AdapterError::unknown_call(call, &CALLS)),
    }
}

pub fn result(out: &CounterOutput) -> Json {
    match out {
        CounterOutput::Unit => Json::Null,
        CounterOutput::IsZero(z) => json!(z),
    }
}

/// The adapter for any [`CounterImpl`].
pub struct CounterAdapter<C>(pub C);

impl<C: CounterImpl> Adapter for CounterAdapter<C> {
    const MODEL: &'static str = "counter";
    const NAME: &'static str = C::NAME;
    type Call = CounterCall;
    type Output = CounterOutput;

    fn setup(test: &TestCase) -> Result<Self, AdapterError> {
        C::new(setup_value(test)?).map(CounterAdapter)
    }
    fn parse_call(call: &str, args: &Json) -> Result<CounterCall, AdapterError> {
        parse_call(call, args)
    }
    #[inline]
    fn call(&self, call: &CounterCall) -> CounterOutput {
        match call {
            CounterCall::Inc => {
                self.0.inc();
                CounterOutput::Unit
            }
            CounterCall::Dec => {
                self.0.dec();
                CounterOutput::Unit
            }
            CounterCall::IsZero => CounterOutput::IsZero(self.0.is_zero()),
        }
    }
    fn result(out: &CounterOutput) -> Json {
        result(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_setup_calls_and_results() {
        let t = TestCase {
            id: "t".into(),
            path: "p".into(),
            class: vec![],
            idempotent: vec![],
            setup: json!({"counter": 2}),
            calls: vec![],
            expected: vec![],
        };
        assert_eq!(setup_value(&t), Ok(2));
        let neg = TestCase {
            setup: json!({"counter": -1}),
            ..t
        };
        assert!(setup_value(&neg).is_err());
        assert_eq!(parse_call("iszero", &Json::Null), Ok(CounterCall::IsZero));
        assert!(parse_call("reset", &Json::Null).is_err());
        assert_eq!(result(&CounterOutput::Unit), Json::Null);
        assert_eq!(result(&CounterOutput::IsZero(true)), json!(true));
    }
}
