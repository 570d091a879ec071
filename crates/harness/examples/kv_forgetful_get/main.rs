//! A deliberately wrong `kv` runner: its `get` forgets every value. The end-to-end tests run it
//! on the user-space target to show that a wrong result is reported as a mismatch. Build it
//! static like `impls/`:
//!
//! ```text
//! RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" cargo build --release \
//!     -p commuter-harness --example kv_forgetful_get --target x86_64-unknown-linux-gnu
//! ```

mod map;

use commuter_harness::models::kv::KvAdapter;

fn main() {
    commuter_harness::main::<KvAdapter<map::ForgetfulGet>>()
}
