//! `counter-scalable`: the `counter` model designed by the scalable commutativity rule, run by
//! commuter's harness.
//!
//! The count is split over non-negative parts, each on its own 64-byte line: a *reserve* (0 or
//! 1, a lower bound: while it is 1 the counter is not zero), a *spare* (the rest of the initial
//! count) and one *delta* per CPU (what `inc` added there). `inc` adds to its CPU's delta;
//! `dec` takes one from its own delta, else the spare, else the reserve, else another CPU's
//! delta; `iszero` reads the reserve, and only when it is 0 the spare and every delta.
//!
//! So, from a counter built by `setup` (reserve 1 and spare n - 1 for n > 0): `inc`/`inc` and
//! `iszero`/`iszero` touch different lines always; `inc`/`iszero` on a non-zero counter (where
//! they commute) too, as `iszero` stops at the reserve; `dec`/`iszero` on a counter of at least
//! 2 (where they commute) too, as `dec` takes from the spare; `inc`/`dec` on a positive counter
//! too (`dec` never reads the other CPU's delta before the reserve). Not `dec`/`dec` on a
//! counter of at least 2, which commute: both take from the spare. Spreading the spare over
//! per-CPU lines would fix that only for CPUs it guessed; a per-CPU-delta-only design (each
//! CPU's line may go negative, `iszero` sums them all) makes `dec`/`dec` conflict-free but
//! `inc`/`iszero` and `dec`/`iszero` conflict: this design keeps five of the six pairs.
//!
//! After the counter has been zero, the reserve stays 0 (an `inc` from zero must not write a
//! line another `inc` writes), and `iszero` reads every line. Each part changes atomically,
//! and the count is exact whenever no `inc` or `dec` runs at the same time (every harness
//! test); during concurrent ones `iszero` may see a count the counter never had at one instant.

use commuter_harness::AdapterError;
use commuter_harness::models::counter::{CounterAdapter, CounterImpl};
use std::sync::atomic::{AtomicU64, Ordering};

/// Delta lines; CPU `c` counts on line `c % CPUS`.
const CPUS: usize = 64;

/// One cache line (x86_64: 64 bytes).
#[repr(align(64))]
struct Line(AtomicU64);

impl Line {
    fn new(v: u64) -> Line {
        Line(AtomicU64::new(v))
    }

    /// Takes one if the part is positive (only reads it when it is zero).
    fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
            .is_ok()
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

struct Split {
    reserve: Line,
    spare: Line,
    deltas: Box<[Line]>,
}

fn own_index() -> usize {
    // SAFETY: no arguments. A thread that migrates right after still counts correctly (any
    // CPU may change any part atomically); it only loses locality.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(0) % CPUS
}

impl CounterImpl for Split {
    const NAME: &'static str = "counter-scalable";
    fn new(value: u64) -> Result<Self, AdapterError> {
        let reserve = value.min(1);
        Ok(Split {
            reserve: Line::new(reserve),
            spare: Line::new(value - reserve),
            deltas: (0..CPUS).map(|_| Line::new(0)).collect(),
        })
    }
    fn inc(&self) {
        self.deltas[own_index()].0.fetch_add(1, Ordering::AcqRel);
    }
    fn dec(&self) {
        let own = own_index();
        // The model defines dec only on a positive counter; on zero nothing changes.
        let _ = self.deltas[own].take()
            || self.spare.take()
            || self.reserve.take()
            || self
                .deltas
                .iter()
                .enumerate()
                .any(|(i, d)| i != own && d.take());
    }
    fn is_zero(&self) -> bool {
        self.reserve.get() == 0 && self.spare.get() == 0 && self.deltas.iter().all(|d| d.get() == 0)
    }
}

fn main() {
    commuter_harness::main::<CounterAdapter<Split>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(l: &Line) -> usize {
        l as *const Line as usize / 64
    }

    #[test]
    fn parts_are_on_separate_lines() {
        let c = Split::new(3).expect("counter");
        let mut lines = std::collections::HashSet::new();
        assert!(lines.insert(line(&c.reserve)) && lines.insert(line(&c.spare)));
        assert!(c.deltas.iter().all(|d| lines.insert(line(d))));
        assert_eq!((c.reserve.get(), c.spare.get()), (1, 2));
    }

    #[test]
    fn commuting_calls_leave_each_others_parts_alone() {
        // dec on a counter of 2 takes from the spare: iszero can stop at the reserve.
        let c = Split::new(2).expect("counter");
        c.dec();
        assert_eq!((c.reserve.get(), c.spare.get()), (1, 0));
        assert!(!c.is_zero());
        // inc lands on this CPU's delta only.
        c.inc();
        assert_eq!((c.reserve.get(), c.spare.get()), (1, 0));
        assert_eq!(c.deltas[own_index()].get(), 1);
    }

    #[test]
    fn the_parts_sum_to_the_count_under_concurrency() {
        let c = Split::new(2).expect("counter");
        c.dec();
        c.dec();
        assert!(c.is_zero());
        c.dec();
        assert!(c.is_zero(), "dec of zero leaves zero");
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
