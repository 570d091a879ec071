//! A key-value map: `insert(k, v)` and `remove(k)` return the old value (or none), `get(k)`
//! the value (or none), `contains(k)` whether `k` is present, `len()` the number of keys.
//!
//! Keys and values are uninterpreted (only equality matters); in concrete tests they are the
//! labels `Key0`, `Key1`, ... and `Value0`, `Value1`, ....
//!
//! Known answers: `get`, `contains` and `len` commute with each other always; calls on
//! different keys always commute; `insert` commutes with `len` when the key is already there
//! (the map does not grow), with `contains` of the same key too when it is there, and with `get`
//! of the same key only when it stores the value already there; `remove` commutes with `len`,
//! `get` and `contains` of its key only when the key is absent.
//!
//! The number of keys is the initial map's size plus what the calls did. The initial size is a
//! free integer, bounded below by the number of distinct keys the path finds in the initial map
//! (a fact over every key, instantiated at exactly the keys the path touches, as the POSIX
//! model's ledger does): so a test's `len` is never smaller than the keys its setup lists, and
//! an implementation builds the rest of the map from keys the test does not name.

use std::cell::RefCell;

use commuter_engine::z3::ast::Dynamic;
use commuter_engine::{
    Bool, Call, Concrete, Concretizer, Int, Key as _, Model, PartialMap, PoolExhausted,
    StableHashSet, SymEq, Symbolic, exploring, invariant, serde_json, symbolic,
};

commuter_engine::uninterpreted!(
    /// A key: only equality matters.
    pub Key
);
commuter_engine::uninterpreted!(
    /// A value: only equality matters.
    pub Value
);

/// The map and its number of keys.
#[derive(Clone, Debug, Symbolic)]
pub struct Kv {
    pub map: PartialMap<Key, Value>,
    pub len: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct InsertArgs {
    pub key: Key,
    pub val: Value,
}

#[derive(Clone, Debug, Symbolic)]
pub struct KeyArgs {
    pub key: Key,
}

pub struct KvModel;

impl Model for KvModel {
    type State = Kv;
    fn name(&self) -> &'static str {
        "kv"
    }
    fn description(&self) -> &'static str {
        "a key-value map: insert(k, v), get(k), remove(k), contains(k), len()"
    }
    fn calls(&self) -> Vec<Call<Kv>> {
        vec![
            Call::new("insert", insert),
            Call::new("get", get),
            Call::new("remove", remove),
            Call::new("contains", contains),
            Call::new("len", len),
        ]
    }
    fn initial_state(&self) -> Kv {
        let s = Kv::fresh("s");
        invariant(&s.len.ge(0));
        Ledger::reset(&s);
        s
    }
    fn concrete_state(
        &self,
        state: &Kv,
        cx: &mut Concretizer,
    ) -> Result<serde_json::Value, PoolExhausted> {
        // The entries first: they name the keys the test meets, and the size is the one
        // integer the path leaves free.
        let map = state.map.concrete(cx)?;
        let len = state.len.concrete(cx)?;
        Ok(serde_json::json!({ "map": map, "len": len }))
    }
}

/// The keys of the initial map a run has touched, and that map itself.
struct Ledger {
    initial: PartialMap<Key, Value>,
    initial_len: Int,
    keys: Vec<Key>,
    seen: StableHashSet<Dynamic>,
}

thread_local! {
    // One run of the analyzer's walk at a time per thread; `initial_state` starts a run.
    static LEDGER: RefCell<Option<Ledger>> = const { RefCell::new(None) };
}

impl Ledger {
    fn reset(s: &Kv) {
        LEDGER.with(|l| {
            *l.borrow_mut() = Some(Ledger {
                initial: s.map.clone(),
                initial_len: s.len.clone(),
                keys: Vec::new(),
                seen: StableHashSet::default(),
            })
        });
    }

    /// A key a call looks up: the initial size is at least the number of distinct touched keys
    /// present in the initial map. Exact (no model of the touched keys is lost): keys nobody
    /// touches can be made present or absent at will, and only the size counts them.
    fn touch(k: &Key) {
        if !exploring() {
            return;
        }
        let bound = LEDGER.with(|l| {
            let mut l = l.borrow_mut();
            let l = l.as_mut()?;
            if !l.seen.insert(k.key_ast()) {
                return None;
            }
            l.keys.push(k.clone());
            let one = Int::lit(1).0;
            let zero = Int::lit(0).0;
            // Key i counts when it is present and differs from every key before it.
            let counted = l.keys.iter().enumerate().map(|(i, ki)| {
                let distinct = l.keys[..i].iter().map(|kj| !kj.sym_eq(ki));
                let counts = l.initial.contains(ki) & Bool::all(distinct);
                Int(counts.0.ite(&one, &zero))
            });
            let present = counted.fold(Int::lit(0), |acc, c| acc + c);
            Some(l.initial_len.ge(&present))
        });
        if let Some(b) = bound {
            invariant(&b);
        }
    }
}

#[symbolic]
fn insert(s: &mut Kv, a: &InsertArgs) -> Option<Value> {
    Ledger::touch(&a.key);
    let old = if s.map.contains(&a.key) {
        Some(s.map.get(&a.key))
    } else {
        s.len = &s.len + 1;
        None
    };
    s.map.insert(&a.key, &a.val);
    old
}

#[symbolic]
fn get(s: &mut Kv, a: &KeyArgs) -> Option<Value> {
    Ledger::touch(&a.key);
    if s.map.contains(&a.key) {
        return Some(s.map.get(&a.key));
    }
    None
}

#[symbolic]
fn remove(s: &mut Kv, a: &KeyArgs) -> Option<Value> {
    Ledger::touch(&a.key);
    if !s.map.contains(&a.key) {
        return None;
    }
    let old = s.map.get(&a.key);
    s.map.remove(&a.key);
    s.len = &s.len - 1;
    Some(old)
}

fn contains(s: &mut Kv, a: &KeyArgs) -> Bool {
    Ledger::touch(&a.key);
    s.map.contains(&a.key)
}

fn len(s: &mut Kv, _: &()) -> Int {
    s.len.clone()
}
