//! The building blocks of the scalable implementation: cache lines, the current CPU, a
//! spinlock, a sequence lock whose readers write nothing, per-CPU counters (Refcache's deltas)
//! and per-CPU object pools.

use std::cell::UnsafeCell;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering, fence};

/// CPUs with lines of their own; CPU `c` uses slot `c % CPUS` (the tracer's VM has 3).
pub const CPUS: usize = 4;

/// One cache line (x86_64: 64 bytes): what two things that must not share a line are put in.
#[repr(align(64))]
#[derive(Default)]
pub struct Line<T>(pub T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The calling thread's per-CPU slot. A thread that migrates right after only loses locality:
/// every per-CPU structure is safe to use from any CPU.
pub fn cpu() -> usize {
    // SAFETY: no arguments; glibc answers from rseq or the vDSO (no kernel entry).
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).unwrap_or(0) % CPUS
}

/// A test-and-test-and-set spinlock (writes its line only to take and release it).
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, which the lock makes exclusive.
unsafe impl<T: Send> Sync for SpinLock<T> {}
unsafe impl<T: Send> Send for SpinLock<T> {}

pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> SpinGuard<'_, T> {
        loop {
            if !self.locked.load(Ordering::Relaxed)
                && self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return SpinGuard { lock: self };
            }
            spin_loop();
        }
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T> std::ops::Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// A sequence lock over a `Copy` value: readers take a consistent snapshot without writing
/// anything (they retry while a writer is inside), writers take the sequence word as a lock.
/// This is what lets lookups (directory, fd table, page table, file length) run beside updates
/// of other entries without sharing a written line.
pub struct SeqLock<T: Copy> {
    seq: AtomicU64,
    value: UnsafeCell<T>,
}

// SAFETY: writers are exclusive (odd sequence); readers copy the value with volatile reads and
// discard any copy a writer may have overlapped (the sequence changed), as crossbeam's
// `AtomicCell` fallback does. `T: Send` because values cross threads.
unsafe impl<T: Copy + Send> Sync for SeqLock<T> {}
unsafe impl<T: Copy + Send> Send for SeqLock<T> {}

pub struct SeqGuard<'a, T: Copy> {
    lock: &'a SeqLock<T>,
    seq: u64,
}

impl<T: Copy> SeqLock<T> {
    pub fn new(value: T) -> Self {
        SeqLock {
            seq: AtomicU64::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// A consistent copy of the value; writes nothing.
    pub fn read(&self) -> T {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                spin_loop();
                continue;
            }
            // SAFETY: the pointer is valid; a torn copy is discarded below.
            let v = unsafe { std::ptr::read_volatile(self.value.get()) };
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return v;
            }
        }
    }

    /// Runs `f` on a consistent view of the value in place (for values too large to copy,
    /// such as a page); `f` must not act on what it reads before this returns.
    pub fn read_with<R>(&self, mut f: impl FnMut(&T) -> R) -> R {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                spin_loop();
                continue;
            }
            // SAFETY: the pointer is valid; a result from a torn view is discarded below.
            let r = f(unsafe { &*self.value.get() });
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return r;
            }
        }
    }

    pub fn lock(&self) -> SeqGuard<'_, T> {
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return SeqGuard { lock: self, seq: s };
            }
            spin_loop();
        }
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }
}

impl<T: Copy> std::ops::Deref for SeqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the only writer; readers only copy.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: Copy> std::ops::DerefMut for SeqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: Copy> Drop for SeqGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.seq.store(self.seq + 2, Ordering::Release);
    }
}

/// A count kept as one delta per CPU (Refcache): changing it writes only the caller's CPU's
/// line; reading it sums every line, which only calls that observe the count do.
#[derive(Default)]
pub struct Counter {
    deltas: [Line<AtomicI64>; CPUS],
}

impl Counter {
    pub fn add(&self, d: i64) {
        self.deltas[cpu()].0.fetch_add(d, Ordering::AcqRel);
    }

    pub fn sum(&self) -> i64 {
        self.deltas
            .iter()
            .map(|l| l.0.load(Ordering::Acquire))
            .sum()
    }

    pub fn reset(&self, base: i64) {
        for (i, l) in self.deltas.iter().enumerate() {
            l.0.store(if i == 0 { base } else { 0 }, Ordering::Relaxed);
        }
    }
}

/// Per-CPU pools of objects, filled when the instance is built: taking one touches only the
/// caller's CPU's line (no allocator inside a call, whose arenas and `brk`/`mmap` would be
/// shared). Objects live until the pool is dropped: reclamation is deferred to the end of the
/// instance, as an epoch (Refcache frees at epoch boundaries; RCU-style readers may still
/// hold a pointer to what a call unlinked).
pub struct Pool<T> {
    cpus: Box<[Line<SpinLock<PoolCpu<T>>>]>,
}

struct PoolCpu<T> {
    spare: Vec<Box<T>>,
    live: Vec<*mut T>,
}

// SAFETY: the raw pointers are owned boxes (see `Drop`); objects are shared through `&T` only
// where `T: Sync`.
unsafe impl<T: Send> Send for PoolCpu<T> {}

impl<T> Pool<T> {
    /// `spare` objects per CPU, made by `make`.
    pub fn new(spare: usize, make: impl Fn() -> T) -> Pool<T> {
        let cpus = (0..CPUS)
            .map(|_| {
                Line(SpinLock::new(PoolCpu {
                    spare: (0..spare).map(|_| Box::new(make())).collect(),
                    live: Vec::with_capacity(spare * 4 + 16),
                }))
            })
            .collect();
        Pool { cpus }
    }

    /// An object from the caller's CPU's pool (made with `make` when it is empty), set up by
    /// `init`; valid until the pool is dropped.
    pub fn alloc(&self, make: impl FnOnce() -> T, init: impl FnOnce(&mut T)) -> *mut T {
        let mut c = self.cpus[cpu()].lock();
        let mut b = c.spare.pop().unwrap_or_else(|| Box::new(make()));
        init(&mut b);
        let p = Box::into_raw(b);
        c.live.push(p);
        p
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        for c in self.cpus.iter_mut() {
            for p in c.0.get_mut().live.drain(..) {
                // SAFETY: every pointer in `live` came from `Box::into_raw` and is freed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}
