//! `kv-dashmap`: the `kv` model on the `dashmap` crate (a sharded map: one `RwLock` per
//! shard), run by commuter's harness. Calls on keys in different shards touch different
//! locks; `len` takes every shard's lock.
//!
//! The map hashes with a fixed-key hasher rather than the default randomly seeded one: which
//! keys share a shard (and so a lock) then does not change from run to run, and neither do the
//! test results. With random seeds the conflict-free share of the `kv` suite varied between
//! about 60% and 70% across runs.

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use dashmap::DashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

type Fixed = BuildHasherDefault<DefaultHasher>;

struct Dash(DashMap<u64, u64, Fixed>);

impl KvMap for Dash {
    const NAME: &'static str = "kv-dashmap";
    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError> {
        let map = DashMap::with_hasher(Fixed::default());
        for &(k, v) in entries {
            map.insert(k, v);
        }
        Ok(Dash(map))
    }
    fn insert(&self, key: u64, val: u64) -> Option<u64> {
        self.0.insert(key, val)
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key).map(|v| *v)
    }
    fn remove(&self, key: u64) -> Option<u64> {
        self.0.remove(&key).map(|(_, v)| v)
    }
    fn contains(&self, key: u64) -> bool {
        self.0.contains_key(&key)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

fn main() {
    commuter_harness::main::<KvAdapter<Dash>>()
}
