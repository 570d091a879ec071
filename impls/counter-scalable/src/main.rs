//! `counter-scalable`: the `counter` model on per-CPU counts, run by commuter's harness.
//!
//! Each CPU adds its `inc`s and subtracts its `dec`s on its own 64-byte line (a line may go
//! negative: only the sum is the counter); `iszero` sums every line. So `inc`/`inc`,
//! `inc`/`dec`, `dec`/`dec` (which always commute, `dec` being defined on a positive counter
//! only) and `iszero`/`iszero` are conflict-free. `inc`/`iszero` and `dec`/`iszero`, which
//! commute while the counter stays non-zero, are not: `iszero` reads every CPU's line. A
//! non-zero indicator that `iszero` alone reads (SNZI-style) would fix those, but an `inc`
//! from zero must then write the indicator, and two `inc`s from zero, which commute, would
//! conflict on it: of the two, this design keeps the always-commuting pairs conflict-free.
//!
//! The sum is exact whenever no `inc` or `dec` runs at the same time (every harness test);
//! during concurrent ones it may see a count the counter never had at one instant.

use commuter_harness::AdapterError;
use commuter_harness::models::counter::{CounterAdapter, CounterImpl};
use std::sync::atomic::{AtomicI64, Ordering};

/// Count lines; CPU `c` counts on line `c % CPUS`.
const CPUS: usize = 64;

/// One cache line (x86_64: 64 bytes).
#[repr(align(64))]
struct Line(AtomicI64);

struct PerCpu(Box<[Line]>);

fn own_line(c: &PerCpu) -> &AtomicI64 {
    // SAFETY: no arguments. A thread that migrates right after still counts correctly.
    let cpu = unsafe { libc::sched_getcpu() };
    &c.0[usize::try_from(cpu).unwrap_or(0) % CPUS].0
}

impl CounterImpl for PerCpu {
    const NAME: &'static str = "counter-scalable";
    fn new(value: u64) -> Result<Self, AdapterError> {
        let value = i64::try_from(value)
            .map_err(|_| AdapterError::Unsupported(format!("counter {value} above i64::MAX")))?;
        let lines: Box<[Line]> = (0..CPUS).map(|_| Line(AtomicI64::new(0))).collect();
        // The setup runs on CPU 0: the initial count is its line's.
        lines[0].0.store(value, Ordering::Release);
        Ok(PerCpu(lines))
    }
    fn inc(&self) {
        own_line(self).fetch_add(1, Ordering::AcqRel);
    }
    fn dec(&self) {
        own_line(self).fetch_sub(1, Ordering::AcqRel);
    }
    fn is_zero(&self) -> bool {
        self.0
            .iter()
            .map(|l| l.0.load(Ordering::Acquire))
            .sum::<i64>()
            == 0
    }
}

fn main() {
    commuter_harness::main::<CounterAdapter<PerCpu>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_separate_and_the_sum_is_the_count() {
        let c = PerCpu::new(2).expect("counter");
        let a = &c.0[0] as *const Line as usize;
        let b = &c.0[1] as *const Line as usize;
        assert_eq!(b - a, 64);
        assert!(!c.is_zero());
        c.dec();
        c.dec();
        assert!(c.is_zero());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1000).for_each(|_| c.inc()));
            }
        });
        assert!(!c.is_zero());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1000).for_each(|_| c.dec()));
            }
        });
        assert!(c.is_zero());
    }
}
