//! A deliberately wrong `kv` runner: its `get` forgets every value. The end-to-end tests run it
//! on the user-space target to show that a wrong result is reported as a mismatch. Build it
//! static like `impls/`:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release \
//!     -p commuter-harness --example kv_forgetful_get --target x86_64-unknown-linux-gnu
//! ```

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use std::collections::HashMap;
use std::sync::Mutex;

struct ForgetfulGet(Mutex<HashMap<u64, u64>>);

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

fn main() {
    commuter_harness::main::<KvAdapter<ForgetfulGet>>()
}
