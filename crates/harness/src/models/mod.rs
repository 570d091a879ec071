//! Typed views of the built-in models' JSON (`setup`, `args`, results as `tests.json` writes
//! them), so an implementation of `kv`, `counter` or `determinator` only writes its operations:
//! implement [`kv::KvMap`], [`counter::CounterImpl`] or [`determinator::DeterminatorImpl`] and
//! run `main::<KvAdapter<MyMap>>()`.
//!
//! Other models write their [`crate::Adapter`] directly.

pub mod counter;
pub mod determinator;
pub mod kv;

use crate::AdapterError;
use serde_json::Value as Json;

/// The number of an uninterpreted value's label (`Key3` with prefix `Key`: 3).
pub fn label_number(v: &Json, prefix: &str) -> Result<u64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a label like \"{prefix}0\", found {v}"))?;
    s.strip_prefix(prefix)
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("expected a label like \"{prefix}0\", found {s:?}"))
}

/// An object field of a call's arguments.
fn arg<'a>(call: &str, args: &'a Json, field: &str) -> Result<&'a Json, AdapterError> {
    args.get(field)
        .ok_or_else(|| AdapterError::args(call, format!("no field {field:?} in {args}")))
}

/// A test of `setup` whose calls (`(call, args)`, slots a, b, ...) the unit tests of the typed
/// views parse.
#[cfg(test)]
fn test_case(setup: Json, calls: &[(&str, Json)]) -> commuter_tests_format::TestCase {
    commuter_tests_format::TestCase {
        id: "t".into(),
        path: "p".into(),
        class: vec![],
        idempotent: vec![],
        setup,
        calls: calls
            .iter()
            .zip(["a", "b", "c"])
            .map(|((call, args), slot)| commuter_tests_format::TestCall {
                slot: slot.into(),
                call: call.to_string(),
                args: args.clone(),
            })
            .collect(),
        expected: vec![],
    }
}
