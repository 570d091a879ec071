//! `counter-atomic`: the `counter` model on one `AtomicU64`, run by commuter's harness. The
//! baseline: every call touches the one word, so `inc`/`inc` conflict although they commute.

use commuter_harness::AdapterError;
use commuter_harness::models::counter::{CounterAdapter, CounterImpl};
use std::sync::atomic::{AtomicU64, Ordering};

struct Atomic(AtomicU64);

impl CounterImpl for Atomic {
    const NAME: &'static str = "counter-atomic";
    fn new(value: u64) -> Result<Self, AdapterError> {
        Ok(Atomic(AtomicU64::new(value)))
    }
    fn inc(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
    fn dec(&self) {
        // The model defines dec only on a positive counter; a zero counter stays zero.
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1));
    }
    fn is_zero(&self) -> bool {
        self.0.load(Ordering::Acquire) == 0
    }
}

fn main() {
    commuter_harness::main::<CounterAdapter<Atomic>>()
}
