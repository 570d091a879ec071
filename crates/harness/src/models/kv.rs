//! The `kv` model: a map with `insert(k, v)`, `get(k)`, `remove(k)`, `contains(k)`, `len()`.
//!
//! Keys and values are labels, `Key<n>` and `Value<n>`; here they are the numbers `n`.
//! `setup`: `{"map": {"Key0": "Value1", ...}, "len": n}`: the entries the test's calls name,
//! and the map's size, which may exceed them (the rest are keys the test never names: this
//! module makes them up, see [`setup_entries`]). Arguments: `{"key": "Key0", "val": "Value1"}`
//! (`insert`), `{"key": "Key0"}` (`get`, `remove`, `contains`), `null` (`len`). Results:
//! `"none"` or `{"some": "Value1"}` (`insert`, `get`, `remove`: the old or current value), a
//! boolean (`contains`), an integer (`len`).

use super::{arg, label_number};
use crate::{Adapter, AdapterError, TestCase};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;

/// The map's calls.
pub const CALLS: [&str; 5] = ["insert", "get", "remove", "contains", "len"];
/// Label prefixes.
pub const KEY: &str = "Key";
pub const VALUE: &str = "Value";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvCall {
    Insert { key: u64, val: u64 },
    Get { key: u64 },
    Remove { key: u64 },
    Contains { key: u64 },
    Len,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOutput {
    /// `insert`, `remove`: the old value; `get`: the value.
    Value(Option<u64>),
    /// `contains`.
    Present(bool),
    /// `len`.
    Len(usize),
}

/// A map implementation (keys and values are label numbers).
// `len` is a model call; the model has no `is_empty`.
#[allow(clippy::len_without_is_empty)]
pub trait KvMap: Sync + Sized {
    /// For the start line, e.g. `kv-mutex`.
    const NAME: &'static str;
    /// Keys must be below this (a bounded key domain); checked before any test runs.
    const KEY_LIMIT: Option<u64> = None;
    /// A map holding exactly `entries` (distinct keys).
    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError>;
    fn insert(&self, key: u64, val: u64) -> Option<u64>;
    fn get(&self, key: u64) -> Option<u64>;
    fn remove(&self, key: u64) -> Option<u64>;
    fn contains(&self, key: u64) -> bool;
    fn len(&self) -> usize;
}

/// The initial map's entries: the setup's, plus `len` minus their number entries at the
/// smallest keys neither the setup nor any call names (value 0: no call reads them).
pub fn setup_entries(test: &TestCase) -> Result<Vec<(u64, u64)>, AdapterError> {
    let bad = |what: String| AdapterError::setup(format!("{what} in {}", test.setup));
    let map = test
        .setup
        .get("map")
        .and_then(Json::as_object)
        .ok_or_else(|| bad("no object \"map\"".into()))?;
    let len = test
        .setup
        .get("len")
        .and_then(Json::as_u64)
        .ok_or_else(|| bad("no non-negative integer \"len\"".into()))?;
    let mut entries = Vec::new();
    let mut named = BTreeSet::new();
    for (k, v) in map {
        let key = label_number(&json!(k), KEY).map_err(|e| bad(format!("map key: {e}")))?;
        let val = label_number(v, VALUE).map_err(|e| bad(format!("map value: {e}")))?;
        named.insert(key);
        entries.push((key, val));
    }
    for c in &test.calls {
        if let Some(k) = c.args.get("key") {
            named.insert(label_number(k, KEY).map_err(|e| AdapterError::args(&c.call, e))?);
        }
    }
    let len = usize::try_from(len).map_err(|_| bad(format!("len {len} too large")))?;
    if len < entries.len() {
        return Err(bad(format!(
            "len {len} is less than the {} entries listed",
            entries.len()
        )));
    }
    let mut filler = (0u64..).filter(|k| !named.contains(k));
    while entries.len() < len {
        match filler.next() {
            Some(k) => entries.push((k, 0)),
            None => return Err(bad("no free key for the unnamed entries".into())),
        }
    }
    Ok(entries)
}

pub fn parse_call(call: &str, args: &Json) -> Result<KvCall, AdapterError> {
    let label = |field: &str, prefix: &str| {
        label_number(arg(call, args, field)?, prefix).map_err(|e| AdapterError::args(call, e))
    };
    match call {
        "insert" => Ok(KvCall::Insert {
            key: label("key", KEY)?,
            val: label("val", VALUE)?,
        }),
        "get" => Ok(KvCall::Get {
            key: label("key", KEY)?,
        }),
        "remove" => Ok(KvCall::Remove {
            key: label("key", KEY)?,
        }),
        "contains" => Ok(KvCall::Contains {
            key: label("key", KEY)?,
        }),
        "len" => Ok(KvCall::Len),
        _ => Err(AdapterError::unknown_call(call, &CALLS)),
    }
}

pub fn result(out: &KvOutput) -> Json {
    match out {
        KvOutput::Value(None) => json!("none"),
        KvOutput::Value(Some(v)) => json!({ "some": format!("{VALUE}{v}") }),
        KvOutput::Present(b) => json!(b),
        KvOutput::Len(n) => json!(n),
    }
}

/// Performs `call` on `map`.
#[inline]
pub fn perform<M: KvMap>(map: &M, call: &KvCall) -> KvOutput {
    match *call {
        KvCall::Insert { key, val } => KvOutput::Value(map.insert(key, val)),
        KvCall::Get { key } => KvOutput::Value(map.get(key)),
        KvCall::Remove { key } => KvOutput::Value(map.remove(key)),
        KvCall::Contains { key } => KvOutput::Present(map.contains(key)),
        KvCall::Len => KvOutput::Len(map.len()),
    }
}

/// The adapter for any [`KvMap`].
pub struct KvAdapter<M>(pub M);

impl<M: KvMap> Adapter for KvAdapter<M> {
    const MODEL: &'static str = "kv";
    const NAME: &'static str = M::NAME;
    type Call = KvCall;
    type Output = KvOutput;

    fn setup(test: &TestCase) -> Result<Self, AdapterError> {
        M::from_entries(&setup_entries(test)?).map(KvAdapter)
    }
    fn parse_call(call: &str, args: &Json) -> Result<KvCall, AdapterError> {
        let c = parse_call(call, args)?;
        match (c, M::KEY_LIMIT) {
            (
                KvCall::Insert { key, .. }
                | KvCall::Get { key }
                | KvCall::Remove { key }
                | KvCall::Contains { key },
                Some(limit),
            ) if key >= limit => Err(AdapterError::Unsupported(format!(
                "key {key} is outside this implementation's key domain 0..{limit}"
            ))),
            _ => Ok(c),
        }
    }
    #[inline]
    fn call(&self, call: &KvCall) -> KvOutput {
        perform(&self.0, call)
    }
    fn result(out: &KvOutput) -> Json {
        result(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_case as test;

    #[test]
    fn setup_fills_the_size_with_keys_the_test_does_not_name() {
        let t = test(
            json!({"map": {"Key0": "Value1"}, "len": 4}),
            &[("get", json!({"key": "Key1"})), ("len", Json::Null)],
        );
        let entries = setup_entries(&t).expect("setup");
        // Key0 as listed, then the smallest keys neither listed nor named by a call.
        assert_eq!(entries, [(0, 1), (2, 0), (3, 0), (4, 0)]);
    }

    #[test]
    fn setups_the_model_cannot_make_are_refused() {
        let t = test(json!({"map": {"Key0": "Value1"}, "len": 0}), &[]);
        let e = setup_entries(&t).expect_err("refused");
        assert!(e.to_string().contains("less than the 1 entries"), "{e}");
        let t = test(json!({"map": {"k": "Value1"}, "len": 1}), &[]);
        let e = setup_entries(&t).expect_err("refused");
        assert!(
            e.to_string().contains("expected a label like \"Key0\""),
            "{e}"
        );
        let t = test(json!({"len": 1}), &[]);
        assert!(setup_entries(&t).is_err());
    }

    #[test]
    fn calls_and_results_in_the_models_terms() {
        let insert = parse_call("insert", &json!({"key": "Key2", "val": "Value5"}));
        assert_eq!(insert, Ok(KvCall::Insert { key: 2, val: 5 }));
        assert_eq!(parse_call("len", &Json::Null), Ok(KvCall::Len));
        let e = parse_call("get", &json!({})).expect_err("refused");
        assert!(e.to_string().contains("no field \"key\""), "{e}");
        assert!(matches!(
            parse_call("put", &Json::Null),
            Err(AdapterError::UnknownCall { .. })
        ));
        assert_eq!(result(&KvOutput::Value(None)), json!("none"));
        assert_eq!(result(&KvOutput::Value(Some(5))), json!({"some": "Value5"}));
        assert_eq!(result(&KvOutput::Present(false)), json!(false));
        assert_eq!(result(&KvOutput::Len(3)), json!(3));
    }

    struct Bounded;
    impl KvMap for Bounded {
        const NAME: &'static str = "bounded";
        const KEY_LIMIT: Option<u64> = Some(4);
        fn from_entries(_: &[(u64, u64)]) -> Result<Self, AdapterError> {
            Ok(Bounded)
        }
        fn insert(&self, _: u64, _: u64) -> Option<u64> {
            None
        }
        fn get(&self, _: u64) -> Option<u64> {
            None
        }
        fn remove(&self, _: u64) -> Option<u64> {
            None
        }
        fn contains(&self, _: u64) -> bool {
            false
        }
        fn len(&self) -> usize {
            0
        }
    }

    #[test]
    fn keys_outside_a_bounded_domain_are_refused_when_parsed() {
        let ok = <KvAdapter<Bounded> as Adapter>::parse_call("get", &json!({"key": "Key3"}));
        assert_eq!(ok, Ok(KvCall::Get { key: 3 }));
        let e = <KvAdapter<Bounded> as Adapter>::parse_call("get", &json!({"key": "Key4"}));
        assert!(matches!(e, Err(AdapterError::Unsupported(_))), "{e:?}");
    }
}
