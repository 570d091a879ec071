//! `kv-scalable`: a `kv` map designed by the scalable commutativity rule, run by commuter's
//! harness: wherever the `kv` model says two calls commute, they access no cache line that
//! the other writes.
//!
//! Layout (every piece on its own 64-byte cache line):
//! - per key, a *presence* line (is the key there) and a *slot* line (a sequence word that is
//!   also the key's writer lock, and the value): `contains` reads presence alone, so an
//!   `insert` that replaces the value of a present key (which commutes with `contains`) writes
//!   only the slot line;
//! - per CPU, a *length delta* line: a call that adds or removes a key counts it on its own
//!   CPU's line, and `len` sums them all. Two inserts of new keys (which commute) write
//!   different lines; an insert that replaces a value, a remove of an absent key (which commute
//!   with `len`) write no delta at all;
//! - no call writes anything when it changes nothing: `insert` of the value already there
//!   (commutes with `get`) and `remove` of an absent key only read.
//!
//! Keys are direct-mapped (a bounded key domain, `0..KEYS`, the shape of a file descriptor
//! table), so two keys never share a line and no lookup probes another key's line: a hash
//! table's probing or bucket chains would make `get(k1)` read what `insert(k2)` writes.
//!
//! Consistency: each call on one key is linearizable (a seqlock: readers retry while a writer
//! holds the slot). `len` sums the per-CPU deltas without a common lock, which is the price of
//! inserts of different keys not sharing a line: it is exact whenever no insert or remove runs
//! at the same time (as in every harness test), and during concurrent ones may return a count
//! the map never had at one instant.

use commuter_harness::AdapterError;
use commuter_harness::models::kv::{KvAdapter, KvMap};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering, fence};

/// The key domain: keys `0..KEYS`.
const KEYS: usize = 1024;
/// Length delta lines; CPU `c` counts on line `c % CPUS`.
const CPUS: usize = 64;

/// One cache line (x86_64: 64 bytes).
#[repr(align(64))]
struct Line<T>(T);

/// A key's slot: the sequence word (odd while a writer holds it) and the value.
struct Slot {
    seq: AtomicU64,
    value: AtomicU64,
}

struct ScalableMap {
    present: Box<[Line<AtomicBool>]>,
    slots: Box<[Line<Slot>]>,
    deltas: Box<[Line<AtomicI64>]>,
}

fn lines<T>(n: usize, f: impl Fn() -> T) -> Box<[Line<T>]> {
    (0..n).map(|_| Line(f())).collect()
}

fn index(key: u64) -> usize {
    // The adapter refuses keys outside the domain before any call (KEY_LIMIT).
    usize::try_from(key)
        .ok()
        .filter(|k| *k < KEYS)
        .unwrap_or_else(|| panic!("key {key} is outside the key domain 0..{KEYS}"))
}

fn cpu_line() -> usize {
    // SAFETY: no arguments. A thread that migrates right after still counts correctly (the
    // delta lines are atomics any CPU may add to); it only loses locality.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).unwrap_or(0) % CPUS
}

impl ScalableMap {
    /// Presence and value of key `i` at one instant, without writing anything.
    fn snapshot(&self, i: usize) -> (bool, u64) {
        let slot = &self.slots[i].0;
        loop {
            let s1 = slot.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                spin_loop();
                continue;
            }
            let present = self.present[i].0.load(Ordering::Relaxed);
            let value = slot.value.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == s1 {
                return (present, value);
            }
        }
    }

    /// Takes key `i`'s writer lock; returns the even sequence number to unlock with.
    fn lock(&self, i: usize) -> u64 {
        let seq = &self.slots[i].0.seq;
        loop {
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && seq
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                // Readers that saw the old even number must not see our stores as consistent.
                fence(Ordering::Release);
                return s;
            }
            spin_loop();
        }
    }

    fn unlock(&self, i: usize, s: u64) {
        self.slots[i].0.seq.store(s + 2, Ordering::Release);
    }
}

impl KvMap for ScalableMap {
    const NAME: &'static str = "kv-scalable";
    const KEY_LIMIT: Option<u64> = Some(KEYS as u64);

    fn from_entries(entries: &[(u64, u64)]) -> Result<Self, AdapterError> {
        let map = ScalableMap {
            present: lines(KEYS, || AtomicBool::new(false)),
            slots: lines(KEYS, || Slot {
                seq: AtomicU64::new(0),
                value: AtomicU64::new(0),
            }),
            deltas: lines(CPUS, || AtomicI64::new(0)),
        };
        for &(key, val) in entries {
            let i = usize::try_from(key)
                .ok()
                .filter(|k| *k < KEYS)
                .ok_or_else(|| {
                    AdapterError::Unsupported(format!("key {key} outside the domain 0..{KEYS}"))
                })?;
            map.present[i].0.store(true, Ordering::Relaxed);
            map.slots[i].0.value.store(val, Ordering::Relaxed);
        }
        // The initial entries count on the first line: the setup runs on CPU 0.
        map.deltas[0]
            .0
            .store(entries.len() as i64, Ordering::Release);
        Ok(map)
    }

    fn insert(&self, key: u64, val: u64) -> Option<u64> {
        let i = index(key);
        if let (true, old) = self.snapshot(i) {
            if old == val {
                // Nothing changes: write nothing (commutes with get of this key).
                return Some(old);
            }
        }
        let s = self.lock(i);
        let slot = &self.slots[i].0;
        let old = if self.present[i].0.load(Ordering::Relaxed) {
            let old = slot.value.load(Ordering::Relaxed);
            slot.value.store(val, Ordering::Relaxed);
            Some(old)
        } else {
            slot.value.store(val, Ordering::Relaxed);
            self.present[i].0.store(true, Ordering::Relaxed);
            self.deltas[cpu_line()].0.fetch_add(1, Ordering::AcqRel);
            None
        };
        self.unlock(i, s);
        old
    }

    fn get(&self, key: u64) -> Option<u64> {
        let (present, value) = self.snapshot(index(key));
        present.then_some(value)
    }

    fn remove(&self, key: u64) -> Option<u64> {
        let i = index(key);
        if !self.snapshot(i).0 {
            // Absent: write nothing (commutes with len, get and contains of this key).
            return None;
        }
        let s = self.lock(i);
        let old = if self.present[i].0.load(Ordering::Relaxed) {
            self.present[i].0.store(false, Ordering::Relaxed);
            self.deltas[cpu_line()].0.fetch_sub(1, Ordering::AcqRel);
            Some(self.slots[i].0.value.load(Ordering::Relaxed))
        } else {
            None
        };
        self.unlock(i, s);
        old
    }

    fn contains(&self, key: u64) -> bool {
        // Presence changes with one store inside the writer's lock: one load is an instant.
        self.present[index(key)].0.load(Ordering::Acquire)
    }

    fn len(&self) -> usize {
        let sum: i64 = self
            .deltas
            .iter()
            .map(|d| d.0.load(Ordering::Acquire))
            .sum();
        usize::try_from(sum).unwrap_or(0)
    }
}

fn main() {
    commuter_harness::main::<KvAdapter<ScalableMap>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of<T>(r: &T) -> usize {
        r as *const T as usize / 64
    }

    #[test]
    fn what_commuting_calls_touch_is_on_separate_lines() {
        let m = ScalableMap::from_entries(&[(0, 1), (1, 2)]).expect("map");
        let mut lines = std::collections::HashSet::new();
        for i in 0..2 {
            assert!(lines.insert(line_of(&m.present[i])));
            assert!(lines.insert(line_of(&m.slots[i])));
        }
        for d in m.deltas.iter() {
            assert!(lines.insert(line_of(d)));
        }
        assert_eq!(std::mem::align_of::<Line<AtomicBool>>(), 64);
    }

    #[test]
    fn a_map() {
        let m = ScalableMap::from_entries(&[(3, 30)]).expect("map");
        assert_eq!(m.len(), 1);
        assert_eq!(m.insert(3, 30), Some(30));
        assert_eq!(m.insert(3, 31), Some(30));
        assert_eq!(m.get(3), Some(31));
        assert_eq!(m.insert(4, 40), None);
        assert_eq!(m.len(), 2);
        assert!(m.contains(4));
        assert_eq!(m.remove(3), Some(31));
        assert_eq!(m.remove(3), None);
        assert_eq!((m.get(3), m.len()), (None, 1));
        assert!(ScalableMap::from_entries(&[(KEYS as u64, 0)]).is_err());
    }

    #[test]
    fn concurrent_writers_and_readers_agree() {
        let m = ScalableMap::from_entries(&[]).expect("map");
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let m = &m;
                s.spawn(move || {
                    for round in 0..2000u64 {
                        // Every thread fights over key 0 and owns keys 1 + t.
                        m.insert(0, t * 10_000 + round);
                        m.insert(1 + t, round);
                        if round % 3 == 0 {
                            m.remove(1 + t);
                        }
                        // A value read is one some thread wrote, never a torn mix.
                        if let Some(v) = m.get(0) {
                            assert!(v % 10_000 < 2000 && v / 10_000 < 4, "{v}");
                        }
                    }
                });
            }
        });
        // Quiescent: len is exact. Round 1999 is not a multiple of 3: every owned key stays.
        assert_eq!(m.len(), 5);
        for t in 0..4 {
            assert_eq!(m.get(1 + t), Some(1999));
        }
    }
}
