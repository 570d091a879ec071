//! `kv-rwlock`: the `kv` model on `std::sync::RwLock<HashMap<u64, u64>>`, run by commuter's
//! harness. Readers share the lock, but taking it for reading still writes the lock word, so
//! even `get`/`get` conflict.

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

struct RwLockMap(RwLock<HashMap<u64, u64>>);

impl RwLockMap {
    // A call that panicked inside the lock leaves a map that is still a map.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<u64, u64>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, HashMap<u64, u64>> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl KvMap for RwLockMap {
    const NAME: &'static str = "kv-rwlock";
    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError> {
        Ok(RwLockMap(RwLock::new(entries.iter().copied().collect())))
    }
    fn insert(&self, key: u64, val: u64) -> Option<u64> {
        self.write().insert(key, val)
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.read().get(&key).copied()
    }
    fn remove(&self, key: u64) -> Option<u64> {
        self.write().remove(&key)
    }
    fn contains(&self, key: u64) -> bool {
        self.read().contains_key(&key)
    }
    fn len(&self) -> usize {
        self.read().len()
    }
}

fn main() {
    commuter_harness::main::<KvAdapter<RwLockMap>>()
}
