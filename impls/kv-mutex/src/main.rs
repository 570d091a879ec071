//! `kv-mutex`: the `kv` model on `std::sync::Mutex<HashMap<u64, u64>>`, run by commuter's
//! harness (see `commuter_harness` for the command line and output). The baseline: every call
//! takes the one lock, so no two calls are conflict-free.

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

struct MutexMap(Mutex<HashMap<u64, u64>>);

impl MutexMap {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, u64>> {
        // A call that panicked inside the lock leaves a map that is still a map.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl KvMap for MutexMap {
    const NAME: &'static str = "kv-mutex";
    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError> {
        Ok(MutexMap(Mutex::new(entries.iter().copied().collect())))
    }
    fn insert(&self, key: u64, val: u64) -> Option<u64> {
        self.lock().insert(key, val)
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.lock().get(&key).copied()
    }
    fn remove(&self, key: u64) -> Option<u64> {
        self.lock().remove(&key)
    }
    fn contains(&self, key: u64) -> bool {
        self.lock().contains_key(&key)
    }
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn main() {
    commuter_harness::main::<KvAdapter<MutexMap>>()
}
