//! Running prepared tests: the instance is built on the coordinator (CPU 0), call A runs on a
//! worker thread pinned to CPU 1, then call B on one pinned to CPU 2, handed off by futex.
//! Every test runs twice on a fresh instance each time; only the second (warm) run is marked
//! for the tracer and reported, so first-touch effects (lazy allocation, cold caches) stay out.

use crate::adapter::Adapter;
use crate::input::Prepared;
use crate::marker::{self, marker};
use crate::report::{CallReport, HarnessLine, Outcome};
use crate::sys;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

/// How long the coordinator waits for a call before it gives up on the whole run (a worker
/// stuck in a call cannot be taken back).
pub const TIMEOUT_MS: u64 = 20_000;

/// Where the runner's threads run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Coordinator on CPU 0, call A on `cpus[0]`, call B on `cpus[1]`.
    Pinned([u32; 2]),
    /// Wherever the scheduler puts them (hosts without the CPUs; `--pin off`).
    Unpinned,
}

/// A run that cannot go on.
#[derive(Debug)]
pub struct Abort(pub String);

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub mismatched: usize,
    pub errors: usize,
}

/// What a worker returns for one call.
struct CallOut<O> {
    /// The output, or the call's panic message.
    output: Result<O, String>,
    cpu: i32,
    elapsed_ns: Option<u64>,
}

/// One call handed to a worker: pointers into the coordinator's test and instance, valid
/// until the worker publishes `done` (the coordinator waits for that before either goes away).
struct Job<A: Adapter> {
    instance: *const A,
    call: *const A::Call,
    marked: bool,
}

/// A worker's hand-off words and mailboxes, on its own cache lines: the runner's bookkeeping
/// must not make the two CPUs share a line.
#[repr(align(128))]
struct Lane<A: Adapter> {
    /// Run generation the worker may start (`u32::MAX`: exit).
    go: AtomicU32,
    /// Run generation the worker finished.
    done: AtomicU32,
    /// Written by the coordinator before `go`, taken by the worker after it.
    job: UnsafeCell<Option<Job<A>>>,
    /// Written by the worker before `done`, taken by the coordinator after it.
    out: UnsafeCell<Option<CallOut<A::Output>>>,
}

// SAFETY: `job` and `out` are each accessed by one thread at a time, ordered by the
// Release/Acquire generation words `go` and `done` (see their documentation); the pointers in
// a job are only dereferenced while the coordinator keeps their targets alive. `A: Sync` makes
// `&A` usable from the worker, `A::Call: Sync` the call, `A::Output: Send` the result.
unsafe impl<A: Adapter> Sync for Lane<A> {}
unsafe impl<A: Adapter> Send for Lane<A> {}

const EXIT: u32 = u32::MAX;

impl<A: Adapter> Lane<A> {
    fn new() -> Self {
        Lane {
            go: AtomicU32::new(0),
            done: AtomicU32::new(0),
            job: UnsafeCell::new(None),
            out: UnsafeCell::new(None),
        }
    }
}

fn publish(word: &AtomicU32, value: u32) {
    word.store(value, Ordering::Release);
    sys::futex_wake(word);
}

/// Waits until `ok(*word)`; false after `timeout_ms`.
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

/// The coordinator's side: two workers, started once, and the run generation.
pub struct Runner<A: Adapter + 'static> {
    lanes: [&'static Lane<A>; 2],
    placement: Placement,
    generation: u32,
}

impl<A: Adapter + 'static> Runner<A> {
    /// Pins the calling thread (the coordinator) to CPU 0 and starts the two workers on their
    /// CPUs. The lanes are leaked: a worker stuck in a call must not leave them dangling.
    pub fn start(placement: Placement) -> Result<Runner<A>, Abort> {
        if let Placement::Pinned(_) = placement {
            sys::pin(0).map_err(|e| Abort(format!("pin the coordinator to CPU 0: {e}")))?;
        }
        let lanes: [&'static Lane<A>; 2] = [
            Box::leak(Box::new(Lane::new())),
            Box::leak(Box::new(Lane::new())),
        ];
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        for (slot, lane) in lanes.into_iter().enumerate() {
            let cpu = match placement {
                Placement::Pinned(cpus) => Some(cpus[slot]),
                Placement::Unpinned => None,
            };
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("call-{}", slot_name(slot)))
                .spawn(move || worker(slot, lane, cpu, tx))
                .map_err(|e| Abort(format!("start the thread of call {}: {e}", slot_name(slot))))?;
        }
        for _ in 0..2 {
            let timeout = std::time::Duration::from_millis(TIMEOUT_MS);
            match rx.recv_timeout(timeout) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(Abort(e)),
                Err(e) => return Err(Abort(format!("a call thread did not start: {e}"))),
            }
        }
        Ok(Runner {
            lanes,
            placement,
            generation: 0,
        })
    }

    /// Runs test `index` twice and reports the traced run; counts it in `totals`.
    pub fn run_test(
        &mut self,
        index: usize,
        t: &Prepared<A>,
        totals: &mut Totals,
    ) -> Result<HarnessLine, Abort> {
        let mut line = None;
        for marked in [false, true] {
            match self.run_once(index, t, marked)? {
                Ok(outs) if marked => line = Some(self.check(index, t, outs)),
                Ok(_) => {}
                Err(message) => {
                    let run = if marked { "traced run" } else { "warm-up run" };
                    line = Some(error_line(index, t, format!("{run}: {message}")));
                    break;
                }
            }
        }
        let line = line.unwrap_or_else(|| error_line(index, t, "no traced run".into()));
        if let HarnessLine::Test { outcome, .. } = &line {
            match outcome {
                Outcome::Pass => totals.passed += 1,
                Outcome::Mismatch => totals.mismatched += 1,
                Outcome::Error => totals.errors += 1,
            }
        }
        Ok(line)
    }

    /// One run on a fresh instance: `Err(Abort)` when a call never returned, `Ok(Err(..))`
    /// when this test could not run.
    #[allow(clippy::type_complexity)]
    fn run_once(
        &mut self,
        index: usize,
        t: &Prepared<A>,
        marked: bool,
    ) -> Result<Result<[CallOut<A::Output>; 2], String>, Abort> {
        // Boxed, so that a worker stuck in a call can keep its pointer after an abort.
        let instance = match A::setup(&t.test) {
            Ok(i) => Box::new(i),
            Err(e) => return Ok(Err(format!("setup: {e}"))),
        };
        self.generation += 1;
        let g = self.generation;
        for (lane, call) in self.lanes.iter().zip(&t.calls) {
            // SAFETY: the worker does not touch `job` until it sees `go == g` (published below).
            unsafe {
                *lane.job.get() = Some(Job {
                    instance: &*instance,
                    call,
                    marked,
                })
            };
        }
        if marked {
            marker::<{ marker::BEGIN_TEST }>(index as u64);
        }
        for (slot, lane) in self.lanes.iter().enumerate() {
            publish(&lane.go, g);
            if !wait_until(&lane.done, |v| v == g, Some(TIMEOUT_MS)) {
                // The worker may still use `instance`: never free it.
                Box::leak(instance);
                return Err(Abort(format!(
                    "test {}: call {} did not return within {TIMEOUT_MS} ms",
                    t.test.id,
                    slot_name(slot)
                )));
            }
        }
        if marked {
            marker::<{ marker::END_TEST }>(index as u64);
        }
        // SAFETY: each worker wrote `out` before publishing `done == g`, observed above.
        let take = |slot: usize| unsafe { (*self.lanes[slot].out.get()).take() };
        let (a, b) = (take(0), take(1));
        drop(instance);
        match (a, b) {
            (Some(a), Some(b)) => Ok(self.check_cpus([a, b])),
            _ => Ok(Err("a call thread returned no result".into())),
        }
    }

    fn check_cpus(&self, outs: [CallOut<A::Output>; 2]) -> Result<[CallOut<A::Output>; 2], String> {
        for (slot, o) in outs.iter().enumerate() {
            if let Err(p) = &o.output {
                return Err(format!("call {} panicked: {p}", slot_name(slot)));
            }
            if let Placement::Pinned(cpus) = self.placement {
                if o.cpu != cpus[slot] as i32 {
                    return Err(format!(
                        "call {} ran on CPU {} instead of {}",
                        slot_name(slot),
                        o.cpu,
                        cpus[slot]
                    ));
                }
            }
        }
        Ok(outs)
    }

    fn check(&self, index: usize, t: &Prepared<A>, outs: [CallOut<A::Output>; 2]) -> HarnessLine {
        let calls: Vec<CallReport> = outs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let actual = match &o.output {
                    Ok(out) => A::result(out),
                    // check_cpus turned panics into errors before this.
                    Err(p) => serde_json::Value::String(format!("panic: {p}")),
                };
                CallReport {
                    slot: t.test.calls[i].slot.clone(),
                    call: t.test.calls[i].call.clone(),
                    ok: A::accepts(&t.test, i, &actual, &t.expected[i]),
                    actual,
                    expected: t.expected[i].clone(),
                    cpu: o.cpu,
                    elapsed_ns: o.elapsed_ns,
                }
            })
            .collect();
        let outcome = if calls.iter().all(|c| c.ok) {
            Outcome::Pass
        } else {
            Outcome::Mismatch
        };
        HarnessLine::Test {
            index,
            id: t.test.id.clone(),
            outcome,
            calls,
            message: None,
        }
    }

    /// Lets the workers exit (they are not joined: the process ends right after).
    pub fn stop(self) {
        for lane in self.lanes {
            publish(&lane.go, EXIT);
        }
    }
}

fn error_line<A: Adapter>(index: usize, t: &Prepared<A>, message: String) -> HarnessLine {
    HarnessLine::Test {
        index,
        id: t.test.id.clone(),
        outcome: Outcome::Error,
        calls: Vec::new(),
        message: Some(message),
    }
}

/// `a`, `b`: the slot names `tests.json` uses.
pub fn slot_name(slot: usize) -> &'static str {
    ["a", "b"].get(slot).copied().unwrap_or("?")
}

fn worker<A: Adapter>(
    slot: usize,
    lane: &'static Lane<A>,
    cpu: Option<u32>,
    started: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let pinned = cpu.map_or(Ok(()), |c| {
        sys::pin(c).map_err(|e| format!("pin call {} to CPU {c}: {e}", slot_name(slot)))
    });
    let ok = pinned.is_ok();
    // The coordinator waits for this; if it is gone, so is the run.
    let _ = started.send(pinned);
    if !ok {
        return;
    }
    let mut seen = 0;
    loop {
        if !wait_until(&lane.go, |v| v != seen, None) {
            continue;
        }
        let g = lane.go.load(Ordering::Acquire);
        if g == EXIT {
            return;
        }
        seen = g;
        // SAFETY: the coordinator wrote the job before publishing `go == g` and waits for
        // `done == g` before touching it, the instance or the call again.
        let job = unsafe { (*lane.job.get()).take() };
        let out = job.map(|job| {
            // SAFETY: see the job's documentation.
            let (instance, call) = unsafe { (&*job.instance, &*job.call) };
            run_call::<A>(slot, instance, call, job.marked)
        });
        // SAFETY: the coordinator reads `out` only after `done == g`, published below.
        unsafe { *lane.out.get() = out };
        publish(&lane.done, g);
    }
}

/// The call between the begin-call and end-call markers when `marked`. It is timed outside
/// them: reading the clock reads the vDSO's time data, which a timer tick on another CPU
/// writes, and the tracer would report that as the call's sharing.
fn run_call<A: Adapter>(
    slot: usize,
    instance: &A,
    call: &A::Call,
    marked: bool,
) -> CallOut<A::Output> {
    let cpu = sys::current_cpu();
    let start = sys::monotonic_ns();
    if marked {
        marker::<{ marker::BEGIN_CALL }>(slot as u64);
    }
    let output = catch_unwind(AssertUnwindSafe(|| instance.call(call)));
    if marked {
        marker::<{ marker::END_CALL }>(slot as u64);
    }
    let end = sys::monotonic_ns();
    CallOut {
        output: output.map_err(|p| panic_message(p.as_ref())),
        cpu,
        elapsed_ns: start.zip(end).map(|(s, e)| e.saturating_sub(s)),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
