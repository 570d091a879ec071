//! A `kv` map whose `get` forgets every value: deliberately wrong, shared by the example runner
//! (for the end-to-end tests on the VM) and the harness's own tests (natively).

use commuter_harness::AdapterError;
use commuter_harness::models::kv::KvMap;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct ForgetfulGet(Mutex<HashMap<u64, u64>>);

impl KvMap for ForgetfulGet {
    const NAME: &'static str = "kv-forgetful-get";
    fn from_entries(e: &[(u64, u64)]) -> Result<Self, AdapterError> {
        Ok(ForgetfulGet(Mutex::new(e.iter().copied().collect())))
    }
    fn insert(&self, k: u64, v: u64) -> Option<u64> {
        self.0.lock().ok()?.insert(k, v)
    }
    fn get(&self, _: u64) -> Option<u64> {
        None
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.0.lock().ok()?.remove(&k)
    }
    fn contains(&self, k: u64) -> bool {
        self.0.lock().is_ok_and(|m| m.contains_key(&k))
    }
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |m| m.len())
    }
}
