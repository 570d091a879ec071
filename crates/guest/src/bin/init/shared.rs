//! The page shared between the coordinator (CPU 0), the test processes and their call threads:
//! futex words for the hand-offs, the calls' raw results, and setup errors.
//!
//! Every word carries a run generation (or a command sequence number) rather than a flag, so
//! nothing has to be reset between runs: "call 1 may go" is a new value of its thread's `turn`.

use crate::sys;
use commuter_guest::plan::{MAX_CALLS, PROCS};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// What a call returned, in plain memory the coordinator can read after `done`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct RawResult {
    pub ret: i64,
    pub errno: i32,
    pub signal: i32,
    /// First byte read, or -1.
    pub data: i32,
    pub fds: [i32; 2],
    pub has_fds: bool,
    pub has_stat: bool,
    pub fifo: bool,
    pub ino: u64,
    pub size: u64,
    pub nlink: u64,
    /// CPU the call actually ran on.
    pub cpu: i32,
    /// Nanoseconds the call took (None when it faulted or the clock failed).
    pub elapsed_ns: Option<u64>,
}

/// Pipes a test's setup may have (their fds pass through this page).
pub const MAX_PIPES: usize = 16;

/// A call thread's turn: build the call (before the processes count as ready) ...
pub const PREPARE: u32 = 1;
/// ... and run it.
pub const GO: u32 = 2;
/// A test process's commands: set up the run's fds and mappings ...
pub const SETUP: u32 = 1;
/// ... and drop them again.
pub const TEARDOWN: u32 = 2;

/// `generation` and `phase` (or a command's sequence number and kind) in one futex word.
pub fn encode(number: u32, kind: u32) -> u32 {
    number.wrapping_mul(4) | kind
}

/// The number and the kind of an [`encode`]d word.
pub fn decode(word: u32) -> (u32, u32) {
    (word / 4, word % 4)
}

const ERR_LEN: usize = 480;

#[repr(C)]
pub struct Shared {
    /// Participants (processes and call threads) that finished setup in this run.
    pub ready: AtomicU32,
    /// Per process and call slot: the call thread's next step, `encode(generation, phase)`.
    pub turn: [[AtomicU32; MAX_CALLS]; PROCS],
    /// Per call slot: the generation whose call returned.
    pub done: [AtomicU32; MAX_CALLS],
    /// Per process: its next command, `encode(sequence, command)`.
    pub command: [AtomicU32; PROCS],
    /// Per process: the sequence number of the last command it finished.
    pub acked: [AtomicU32; PROCS],
    /// The current run: its generation, the plan index of its test, whether it is traced.
    pub generation: AtomicU32,
    pub test: AtomicU32,
    pub marked: AtomicU32,
    /// The coordinator's pid and its fds of each setup pipe's two ends, which the test
    /// processes copy with pidfd_getfd (the same open pipe, as if inherited).
    pub coordinator: AtomicI32,
    pub pipes: [[AtomicI32; 2]; MAX_PIPES],
    /// Per process and call slot: the call thread faulted and stays parked in its handler; the
    /// process starts a new one before the next run.
    pub parked: [[AtomicU32; MAX_CALLS]; PROCS],
    results: [UnsafeCell<RawResult>; MAX_CALLS],
    error_set: [AtomicU32; PROCS],
    errors: [UnsafeCell<[u8; ERR_LEN]>; PROCS],
}

// SAFETY: result and error slots are written by one thread before it publishes a generation
// with Release ordering and read by the coordinator only after an Acquire load of it.
unsafe impl Sync for Shared {}

/// How long the coordinator waits for a setup or a call before giving up on the test.
pub const TIMEOUT_MS: u64 = 20_000;

impl Shared {
    /// Maps the shared page (before any fork).
    pub fn map() -> std::io::Result<&'static Shared> {
        let p = sys::shared_anon(std::mem::size_of::<Shared>())?;
        // SAFETY: zeroed memory is a valid `Shared` (atomics, integers, bools as 0).
        Ok(unsafe { &*(p as *const Shared) })
    }

    pub fn publish(word: &AtomicU32, generation: u32) {
        word.store(generation, Ordering::Release);
        sys::futex_wake(word);
    }

    /// Waits for `word == generation`; false on timeout.
    pub fn wait(word: &AtomicU32, generation: u32, timeout_ms: Option<u64>) -> bool {
        Self::wait_until(word, |v| v == generation, timeout_ms)
    }

    /// Waits for the `ready` count to reach `n`; false on timeout.
    pub fn wait_ready(&self, n: u32) -> bool {
        Self::wait_until(&self.ready, |v| v >= n, Some(TIMEOUT_MS))
    }

    fn wait_until(word: &AtomicU32, ok: impl Fn(u32) -> bool, timeout_ms: Option<u64>) -> bool {
        let start = std::time::Instant::now();
        loop {
            let v = word.load(Ordering::Acquire);
            if ok(v) {
                return true;
            }
            let left = match timeout_ms {
                Some(ms) => match ms.checked_sub(start.elapsed().as_millis() as u64) {
                    Some(left) if left > 0 => Some(left),
                    _ => return false,
                },
                None => None,
            };
            sys::futex_wait(word, v, left);
        }
    }

    /// Waits for `word` to differ from `seen`; returns the new value.
    pub fn wait_change(word: &AtomicU32, seen: u32) -> u32 {
        loop {
            let v = word.load(Ordering::Acquire);
            if v != seen {
                return v;
            }
            sys::futex_wait(word, v, None);
        }
    }

    pub fn arrive(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
        sys::futex_wake(&self.ready);
    }

    pub fn reset_ready(&self) {
        self.ready.store(0, Ordering::Release);
    }

    pub fn set_result(&self, call: usize, r: RawResult) {
        // SAFETY: only call `call`'s thread writes this slot, before publishing `done`.
        unsafe { *self.results[call].get() = r };
    }

    pub fn result(&self, call: usize) -> RawResult {
        // SAFETY: read after `done[call]` was observed (see `Sync`).
        unsafe { *self.results[call].get() }
    }

    /// Records a setup error of process `proc` (first one wins).
    pub fn set_error(&self, proc: usize, msg: &str) {
        if self.error_set[proc].swap(1, Ordering::AcqRel) != 0 {
            return;
        }
        let bytes = msg.as_bytes();
        let n = bytes.len().min(ERR_LEN - 1);
        // SAFETY: the swap above gives this thread exclusive access to the buffer.
        unsafe {
            let buf = &mut *self.errors[proc].get();
            buf[..n].copy_from_slice(&bytes[..n]);
            buf[n] = 0;
        }
    }

    /// Takes process `proc`'s setup error, if any.
    pub fn take_error(&self, proc: usize) -> Option<String> {
        if self.error_set[proc].swap(0, Ordering::AcqRel) == 0 {
            return None;
        }
        // SAFETY: the writer finished before `arrive` (Release), which we observed.
        let buf = unsafe { &*self.errors[proc].get() };
        let end = buf.iter().position(|b| *b == 0).unwrap_or(ERR_LEN);
        Some(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}
