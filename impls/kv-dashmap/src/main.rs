//! `kv-dashmap`: the `kv` model on the `dashmap` crate (a sharded map: one `RwLock` per
//! shard), run by commuter's harness. Calls on keys in different shards touch different
//! locks; `len` takes every shard's lock.

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use dashmap::DashMap;

struct Dash(DashMap<u64, u64>);

impl KvMap for Dash {
    const NAME: &'static str = "kv-dashmap";
    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError> {
        Ok(Dash(entries.iter().copied().collect()))
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
