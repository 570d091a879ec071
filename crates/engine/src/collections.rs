//! Symbolic collections: partial and total maps, bounded lists, sets and bags.
//!
//! A container keeps one Z3 array per leaf of its element type (see [`Value`]). Maps also log
//! the keys written since they were created: two maps that grew from the same base arrays (the
//! common case: every order of a call set starts from one initial state) are compared only at
//! the logged keys, which is exact and quantifier-free. Maps from different bases fall back to
//! a quantified comparison.

use std::marker::PhantomData;

use z3::Sort;
use z3::ast::{Array, Ast, Bool as ZBool, Dynamic};

use crate::concrete::{Concrete, Concretizer, PoolExhausted};
use crate::exec;
use crate::stable::StableHashSet;
use crate::value::{Bool, Int, IntoInt, Key, SymEq, Symbolic, Value, fresh_value, next_leaf};

/// One array per leaf of `V`, indexed by `index`, named after a fresh `V` called `name`.
fn lifted_arrays<V: Value>(name: &str, index: &Sort) -> Vec<Array> {
    V::layout(name)
        .iter()
        .map(|(n, s)| Array::new_const(n.as_str(), index, s))
        .collect()
}

fn select_all(arrays: &[Array], index: &Dynamic) -> Vec<Dynamic> {
    arrays.iter().map(|a| a.select(index)).collect()
}

fn store_all(arrays: &[Array], index: &Dynamic, leaves: &[Dynamic]) -> Vec<Array> {
    arrays
        .iter()
        .zip(leaves)
        .map(|(a, v)| a.store(index, v))
        .collect()
}

fn read<V: Value>(arrays: &[Array], index: &Dynamic) -> V {
    V::from_leaves(&mut select_all(arrays, index).into_iter())
}

fn same_arrays(a: &[Array], b: &[Array]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Keys written to either of two maps, each once, in first-written order.
fn union_keys<K: Key>(a: &[K], b: &[K]) -> Vec<K> {
    let mut seen = StableHashSet::default();
    a.iter()
        .chain(b)
        .filter(|k| seen.insert(k.key_ast()))
        .cloned()
        .collect()
}

/// Assume the invariant of the value the base arrays hold at `key` (values read from the
/// initial state satisfy their type's invariant). Free when the invariant is trivially true.
fn assume_base_invariant<V: Value>(base: &[Array], key: &Dynamic) {
    if !exec::exploring() {
        return;
    }
    let inv = read::<V>(base, key).invariant();
    if inv.as_const() != Some(true) {
        exec::invariant(&inv);
    }
}

fn forall_key<K: Key>(tag: &str, body: impl FnOnce(&K) -> Bool) -> Bool {
    let k = K::from_key_ast(Dynamic::new_const(format!("{tag}!key"), &K::key_sort()));
    let b = body(&k);
    Bool(z3::ast::forall_const(
        &[&k.key_ast() as &dyn Ast],
        &[],
        &b.0,
    ))
}

// ---------------------------------------------------------------------------- PartialMap

/// A partial map (a dictionary): each key is present or absent; present keys have a value.
#[derive(Clone, Debug)]
pub struct PartialMap<K: Key, V: Value> {
    base: Vec<Array>,
    present: Array,
    values: Vec<Array>,
    written: Vec<K>,
    _v: PhantomData<V>,
}

impl<K: Key, V: Value> PartialMap<K, V> {
    /// The empty map.
    pub fn empty() -> Self {
        let present = Array::const_array(&K::key_sort(), &ZBool::from_bool(false));
        let values = lifted_arrays::<V>(&format!("unset[{}][]", K::key_sort()), &K::key_sort());
        Self::from_arrays(present, values)
    }

    fn from_arrays(present: Array, values: Vec<Array>) -> Self {
        let mut base = vec![present.clone()];
        base.extend(values.iter().cloned());
        PartialMap {
            base,
            present,
            values,
            written: Vec::new(),
            _v: PhantomData,
        }
    }

    pub fn contains(&self, k: &K) -> Bool {
        Bool(
            self.present
                .select(&k.key_ast())
                .as_bool()
                .expect("presence array of sort Bool"),
        )
    }

    /// The value at `k`; unspecified (but fixed) when `k` is absent.
    pub fn get(&self, k: &K) -> V {
        let key = k.key_ast();
        assume_base_invariant::<V>(&self.base[1..], &key);
        read(&self.values, &key)
    }

    pub fn insert(&mut self, k: &K, v: &V) {
        let key = k.key_ast();
        self.present = self.present.store(&key, &ZBool::from_bool(true));
        self.values = store_all(&self.values, &key, &v.leaves());
        self.written.push(k.clone());
    }

    pub fn remove(&mut self, k: &K) {
        self.present = self.present.store(&k.key_ast(), &ZBool::from_bool(false));
        self.written.push(k.clone());
    }

    /// Keys written since the map was created (with repeats), oldest first.
    pub fn written_keys(&self) -> &[K] {
        &self.written
    }

    fn equal_at(&self, other: &Self, k: &K) -> Bool {
        let (a, b) = (self.contains(k), other.contains(k));
        a.iff(&b) & a.implies(&self.get(k).sym_eq(&other.get(k)))
    }
}

impl<K: Key, V: Value> SymEq for PartialMap<K, V> {
    fn sym_eq(&self, other: &Self) -> Bool {
        if same_arrays(&self.base, &other.base) {
            let keys = union_keys(&self.written, &other.written);
            Bool::all(keys.iter().map(|k| self.equal_at(other, k)))
        } else {
            forall_key("map", |k: &K| self.equal_at(other, k))
        }
    }
}

impl<K: Key, V: Value> Symbolic for PartialMap<K, V> {
    fn fresh(name: &str) -> Self {
        let present = Array::new_const(format!("{name}.present"), &K::key_sort(), &Sort::bool());
        let values = lifted_arrays::<V>(&format!("{name}[]"), &K::key_sort());
        Self::from_arrays(present, values)
    }
}

// ------------------------------------------------------------------------------ TotalMap

/// A total map: every key has a value.
#[derive(Clone, Debug)]
pub struct TotalMap<K: Key, V: Value> {
    base: Vec<Array>,
    values: Vec<Array>,
    written: Vec<K>,
    _v: PhantomData<V>,
}

impl<K: Key, V: Value> TotalMap<K, V> {
    /// A map with every key bound to `v`.
    pub fn constant(v: &V) -> Self {
        let values = v
            .leaves()
            .iter()
            .map(|leaf| Array::const_array(&K::key_sort(), leaf))
            .collect();
        Self::from_arrays(values)
    }

    fn from_arrays(values: Vec<Array>) -> Self {
        TotalMap {
            base: values.clone(),
            values,
            written: Vec::new(),
            _v: PhantomData,
        }
    }

    pub fn get(&self, k: &K) -> V {
        let key = k.key_ast();
        assume_base_invariant::<V>(&self.base, &key);
        read(&self.values, &key)
    }

    /// The value the map held at `k` when it was created.
    pub fn initial(&self, k: &K) -> V {
        read(&self.base, &k.key_ast())
    }

    pub fn set(&mut self, k: &K, v: &V) {
        self.values = store_all(&self.values, &k.key_ast(), &v.leaves());
        self.written.push(k.clone());
    }

    /// Keys written since the map was created (with repeats), oldest first.
    pub fn written_keys(&self) -> &[K] {
        &self.written
    }
}

impl<K: Key, V: Value> SymEq for TotalMap<K, V> {
    fn sym_eq(&self, other: &Self) -> Bool {
        if same_arrays(&self.base, &other.base) {
            let keys = union_keys(&self.written, &other.written);
            Bool::all(keys.iter().map(|k| self.get(k).sym_eq(&other.get(k))))
        } else {
            forall_key("tmap", |k: &K| self.get(k).sym_eq(&other.get(k)))
        }
    }
}

impl<K: Key, V: Value> Symbolic for TotalMap<K, V> {
    fn fresh(name: &str) -> Self {
        Self::from_arrays(lifted_arrays::<V>(&format!("{name}[]"), &K::key_sort()))
    }
}

// ----------------------------------------------------------------------------- SmallList

/// A list of at most `N` elements (e.g. a file's pages): one array per element leaf, indexed
/// from 0, plus a length. Positions at or past the length are not part of the value.
#[derive(Clone, Debug)]
pub struct SmallList<T: Value, const N: usize> {
    elems: Vec<Array>,
    len: Int,
    _t: PhantomData<T>,
}

impl<T: Value, const N: usize> SmallList<T, N> {
    /// The empty list.
    pub fn empty() -> Self {
        SmallList {
            elems: lifted_arrays::<T>("unset[]", &Sort::int()),
            len: Int::lit(0),
            _t: PhantomData,
        }
    }

    pub fn len(&self) -> Int {
        self.len.clone()
    }

    pub fn is_empty(&self) -> Bool {
        self.len.eq(0)
    }

    pub fn is_full(&self) -> Bool {
        self.len.ge(N)
    }

    /// The element at `i`; unspecified when `i` is out of range (check first).
    pub fn get(&self, i: impl IntoInt) -> T {
        read(&self.elems, &Dynamic::from_ast(&i.into_int().0))
    }

    /// Replace the element at `i` (which must be `< len`; use [`SmallList::write_at`] to append).
    pub fn set(&mut self, i: impl IntoInt, v: &T) {
        let i = Dynamic::from_ast(&i.into_int().0);
        self.elems = store_all(&self.elems, &i, &v.leaves());
    }

    /// Write at `i <= len`: replaces, or appends when `i == len`. Paths where the result would
    /// exceed `N` elements are outside the model's bounds and are dropped.
    pub fn write_at(&mut self, i: impl IntoInt, v: &T) {
        let i = i.into_int();
        exec::invariant(&(i.ge(0) & i.le(&self.len) & i.lt(N)));
        self.set(&i, v);
        self.len = self.len.max(i + 1);
    }

    /// Append; a path where the list is already full is outside the model's bounds (dropped).
    pub fn push(&mut self, v: &T) {
        exec::invariant(&self.len.lt(N));
        let at = self.len.clone();
        self.set(&at, v);
        self.len = at + 1;
    }

    /// Remove and return the first element; the list must be non-empty (check first).
    pub fn pop_front(&mut self) -> T {
        exec::assume(&self.len.gt(0));
        let first = self.get(0);
        let mut shifted = self.clone();
        for i in 0..N.saturating_sub(1) {
            shifted.set(i, &self.get(i + 1));
        }
        self.elems = shifted.elems;
        self.len = self.len.clone() - 1;
        first
    }

    /// Drop every element.
    pub fn clear(&mut self) {
        self.len = Int::lit(0);
    }
}

impl<T: Value, const N: usize> SymEq for SmallList<T, N> {
    fn sym_eq(&self, other: &Self) -> Bool {
        // Guard element comparisons with a constant length when one side has one: it keeps
        // comparisons with an empty list trivially simple.
        let guard = if other.len.as_const().is_some() {
            &other.len
        } else {
            &self.len
        };
        let elems = (0..N).map(|i| guard.gt(i).implies(&self.get(i).sym_eq(&other.get(i))));
        self.len.eq(&other.len) & Bool::all(elems)
    }
}

impl<T: Value, const N: usize> Symbolic for SmallList<T, N> {
    fn fresh(name: &str) -> Self {
        fresh_value(name)
    }
}

impl<T: Value, const N: usize> Value for SmallList<T, N> {
    fn layout(name: &str) -> Vec<(String, Sort)> {
        let mut layout: Vec<(String, Sort)> = T::layout(&format!("{name}[]"))
            .into_iter()
            .map(|(n, s)| (n, Sort::array(&Sort::int(), &s)))
            .collect();
        layout.push((format!("{name}.len"), Sort::int()));
        layout
    }
    fn leaves(&self) -> Vec<Dynamic> {
        let mut leaves: Vec<Dynamic> = self.elems.iter().map(|a| Dynamic::from_ast(a)).collect();
        leaves.push(Dynamic::from_ast(&self.len.0));
        leaves
    }
    fn from_leaves(leaves: &mut dyn Iterator<Item = Dynamic>) -> Self {
        let n = T::layout("").len();
        let elems = (0..n)
            .map(|_| {
                next_leaf(leaves)
                    .as_array()
                    .expect("list element leaf is an array")
            })
            .collect();
        let len = Int(next_leaf(leaves)
            .as_int()
            .expect("list length leaf is an Int"));
        SmallList {
            elems,
            len,
            _t: PhantomData,
        }
    }
    fn invariant(&self) -> Bool {
        self.len.ge(0) & self.len.le(N)
    }
}

// ----------------------------------------------------------------------------------- Set

/// A finite set (membership only).
#[derive(Clone, Debug)]
pub struct Set<T: Key> {
    map: PartialMap<T, Bool>,
}

impl<T: Key> Set<T> {
    pub fn empty() -> Self {
        Set {
            map: PartialMap::empty(),
        }
    }
    pub fn contains(&self, x: &T) -> Bool {
        self.map.contains(x)
    }
    pub fn insert(&mut self, x: &T) {
        self.map.insert(x, &Bool::lit(true));
    }
    pub fn remove(&mut self, x: &T) {
        self.map.remove(x);
    }
}

impl<T: Key> SymEq for Set<T> {
    fn sym_eq(&self, other: &Self) -> Bool {
        if same_arrays(&self.map.base, &other.map.base) {
            let keys = union_keys(&self.map.written, &other.map.written);
            Bool::all(
                keys.iter()
                    .map(|k| self.contains(k).iff(&other.contains(k))),
            )
        } else {
            forall_key("set", |k: &T| self.contains(k).iff(&other.contains(k)))
        }
    }
}

impl<T: Key> Symbolic for Set<T> {
    fn fresh(name: &str) -> Self {
        // Only membership matters: a set's values are fixed to `true`.
        let present = Array::new_const(format!("{name}.present"), &T::key_sort(), &Sort::bool());
        let values = vec![Array::const_array(&T::key_sort(), &ZBool::from_bool(true))];
        Set {
            map: PartialMap::from_arrays(present, values),
        }
    }
}

// ----------------------------------------------------------------------------------- Bag

/// A multiset: each element has a count; `len` is the total count.
#[derive(Clone, Debug)]
pub struct Bag<T: Key> {
    counts: TotalMap<T, Int>,
    len: Int,
    /// The length the bag was created with (bounds the initial counts).
    base_len: Int,
}

impl<T: Key> Bag<T> {
    pub fn empty() -> Self {
        Bag {
            counts: TotalMap::constant(&Int::lit(0)),
            len: Int::lit(0),
            base_len: Int::lit(0),
        }
    }

    /// How many times `x` is in the bag.
    pub fn count(&self, x: &T) -> Int {
        let c = self.counts.get(x);
        self.assume_initial_count_bounds(x);
        c
    }

    /// The total number of elements.
    pub fn len(&self) -> Int {
        self.len.clone()
    }

    pub fn is_empty(&self) -> Bool {
        self.len.eq(0)
    }

    pub fn add(&mut self, x: &T) {
        let c = self.count(x);
        self.counts.set(x, &(c + 1));
        self.len = self.len.clone() + 1;
    }

    /// Remove one `x`; the bag must contain it (check first).
    pub fn remove_one(&mut self, x: &T) {
        let c = self.count(x);
        exec::assume(&c.gt(0));
        self.counts.set(x, &(c - 1));
        self.len = self.len.clone() - 1;
    }

    /// Take out some element: which one is the implementation's choice (an internal value).
    /// The bag must be non-empty (check first).
    pub fn take_any(&mut self, name: &str) -> T {
        exec::assume(&self.len.gt(0));
        let x = T::internal(name);
        exec::assume(&self.count(&x).gt(0));
        self.remove_one(&x);
        x
    }

    /// Counts read from the initial bag are between 0 and its length.
    fn assume_initial_count_bounds(&self, x: &T) {
        if !exec::exploring() {
            return;
        }
        let c0 = self.counts.initial(x);
        let bounds = c0.ge(0) & c0.le(&self.base_len);
        if bounds.as_const() != Some(true) {
            exec::invariant(&bounds);
        }
    }
}

impl<T: Key> SymEq for Bag<T> {
    fn sym_eq(&self, other: &Self) -> Bool {
        self.len.eq(&other.len) & self.counts.sym_eq(&other.counts)
    }
}

impl<T: Key> Symbolic for Bag<T> {
    fn fresh(name: &str) -> Self {
        let len: Int = fresh_value(&format!("{name}.len"));
        if exec::exploring() {
            exec::invariant(&len.ge(0));
        }
        Bag {
            counts: TotalMap::fresh(name),
            base_len: len.clone(),
            len,
        }
    }
}

// ------------------------------------------------------------------------------ Concrete

/// The namespace of a key type: its sort's name.
fn key_namespace<K: Key>() -> String {
    K::key_sort().to_string()
}

/// An object with an entry per key of `K` the test has met so far, labelled as the key
/// concretizes; `entry` gives the value, or `None` to leave the key out.
fn keyed<K: Key + Concrete>(
    cx: &mut Concretizer,
    mut entry: impl FnMut(&K, &mut Concretizer) -> Result<Option<serde_json::Value>, PoolExhausted>,
) -> Result<serde_json::Value, PoolExhausted> {
    let mut entries = serde_json::Map::new();
    for term in cx.known(&key_namespace::<K>()) {
        let k = K::from_key_ast(term);
        if let Some(value) = entry(&k, cx)? {
            let label = k.concrete(cx)?;
            let key = label
                .as_str()
                .map_or_else(|| label.to_string(), str::to_string);
            entries.insert(key, value);
        }
    }
    Ok(serde_json::Value::Object(entries))
}

impl<K: Key + Concrete, V: Value + Concrete> Concrete for PartialMap<K, V> {
    /// The entries at the keys the test has met so far.
    fn concrete(&self, cx: &mut Concretizer) -> Result<serde_json::Value, PoolExhausted> {
        keyed(cx, |k: &K, cx| {
            if cx.bool(&self.contains(k)) {
                self.get(k).concrete(cx).map(Some)
            } else {
                Ok(None)
            }
        })
    }
}

impl<K: Key + Concrete, V: Value + Concrete> Concrete for TotalMap<K, V> {
    /// The values at the keys the test has met so far.
    fn concrete(&self, cx: &mut Concretizer) -> Result<serde_json::Value, PoolExhausted> {
        keyed(cx, |k: &K, cx| self.get(k).concrete(cx).map(Some))
    }
}

impl<T: Value + Concrete, const N: usize> Concrete for SmallList<T, N> {
    fn concrete(&self, cx: &mut Concretizer) -> Result<serde_json::Value, PoolExhausted> {
        let len = cx.int(&self.len).clamp(0, N as i64);
        (0..len)
            .map(|i| self.get(i).concrete(cx))
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array)
    }
}

impl<T: Key + Concrete> Concrete for Set<T> {
    fn concrete(&self, cx: &mut Concretizer) -> Result<serde_json::Value, PoolExhausted> {
        let mut members = Vec::new();
        for term in cx.known(&key_namespace::<T>()) {
            let x = T::from_key_ast(term);
            if cx.bool(&self.contains(&x)) {
                members.push(x.concrete(cx)?);
            }
        }
        Ok(serde_json::Value::Array(members))
    }
}

impl<T: Key + Concrete> Concrete for Bag<T> {
    /// The total count and the counts of the elements the test has met so far.
    fn concrete(&self, cx: &mut Concretizer) -> Result<serde_json::Value, PoolExhausted> {
        let counts = keyed(cx, |x: &T, cx| {
            Ok(Some(serde_json::json!(cx.int(&self.count(x)))))
        })?;
        Ok(serde_json::json!({ "len": cx.int(&self.len), "counts": counts }))
    }
}
