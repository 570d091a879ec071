//! Running one test: build the state, have the test processes set up theirs, hand call A to
//! its CPU, then call B (and C, for three calls), collect and check the results, clean up. Every test runs twice; only
//! the second (warm) run is marked for the tracer, so first-touch effects (cold caches, lazy
//! allocations) stay out.

use crate::calls::{self, marker};
use crate::shared::{GO, MAX_PIPES, RawResult, SETUP, Shared, TEARDOWN, TIMEOUT_MS, encode};
use crate::{settle, state, sys, worker};
use commuter_guest::plan::{self, PROCS, Plan, Test};
use commuter_guest::report::{self, Actual, GuestLine, StatActual, Timing};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Everything a test run needs that outlives one run.
pub struct Runner {
    shared: &'static Shared,
    plan: &'static Plan,
    /// The test processes (see [`worker`]).
    processes: Vec<libc::pid_t>,
    generation: u32,
    /// Sequence number of the last command sent to the test processes.
    sequence: u32,
    /// Where the time went so far (reported in the done line).
    pub timing: Timing,
}

impl Runner {
    pub fn new(shared: &'static Shared, plan: &'static Plan) -> Result<Runner, String> {
        // SAFETY: plain syscall.
        shared
            .coordinator
            .store(unsafe { libc::getpid() }, Ordering::Release);
        let mut runner = Runner {
            shared,
            plan,
            processes: Vec::new(),
            generation: 0,
            sequence: 0,
            timing: Timing::default(),
        };
        runner.start_processes()?;
        Ok(runner)
    }

    fn start_processes(&mut self) -> Result<(), String> {
        for index in 0..PROCS {
            let pid = worker::spawn(index, self.shared, self.plan)
                .map_err(|e| format!("fork test process {index}: {e}"))?;
            self.processes.push(pid);
        }
        Ok(())
    }

    /// After a hang: the test processes may be stuck anywhere, so they go and new ones start.
    fn restart_processes(&mut self) -> Result<(), String> {
        for pid in self.processes.drain(..) {
            sys::kill_and_reap(pid);
        }
        for row in &self.shared.parked {
            row.iter().for_each(|p| p.store(0, Ordering::Release));
        }
        self.start_processes()
    }

    /// Runs test `index` twice and reports the second run (results and call times).
    pub fn run_test(&mut self, index: usize, test: &Test) {
        for marked in [false, true] {
            match self.run_once(index, test, marked) {
                Ok(results) if marked => {
                    let start = Instant::now();
                    report_results(index, test, &results);
                    self.timing.report_ns += elapsed_ns(start);
                }
                Ok(_) => {}
                Err(message) => {
                    let run = if marked { "traced run" } else { "warm-up run" };
                    emit(&GuestLine::Error {
                        test: Some(index),
                        message: format!("{run}: {message}"),
                    });
                    return;
                }
            }
        }
    }

    fn run_once(
        &mut self,
        index: usize,
        test: &Test,
        marked: bool,
    ) -> Result<Vec<(Actual, Option<u64>)>, String> {
        self.generation += 1;
        let sh = self.shared;
        sh.generation.store(self.generation, Ordering::Release);
        sh.test.store(index as u32, Ordering::Release);
        sh.marked.store(u32::from(marked), Ordering::Release);
        let start = Instant::now();
        let fs = state::create(&test.setup).map_err(|e| format!("setup: {e}"));
        self.timing.setup_ns += elapsed_ns(start);
        let outcome = fs.and_then(|fs| {
            let r = self.run_processes(index, test, marked, &fs);
            r.map(|raw| {
                raw.iter()
                    .map(|r| (to_actual(r, &fs), r.elapsed_ns))
                    .collect()
            })
        });
        let start = Instant::now();
        let torn_down = self.tear_down();
        let cleaned = state::clean().map_err(|e| format!("cleanup: {e}"));
        self.timing.teardown_ns += elapsed_ns(start);
        let actual = outcome?;
        torn_down?;
        cleaned?;
        Ok(actual)
    }

    fn run_processes(
        &mut self,
        index: usize,
        test: &Test,
        marked: bool,
        fs: &state::Fs,
    ) -> Result<Vec<RawResult>, String> {
        let start = Instant::now();
        let ready = self.set_up(fs);
        self.timing.processes_ns += elapsed_ns(start);
        ready?;
        if marked {
            // After every process set up (its pages are in CPU 0's batches) and right before
            // the calls; the call threads drained their CPUs when they prepared.
            let start = Instant::now();
            let settled = settle::drain_this_cpu();
            self.timing.settle_ns += elapsed_ns(start);
            settled?;
        }
        let result = self.drive(index, test, marked);
        if result.is_err() {
            self.restart_processes()?;
        }
        result
    }

    /// Hands the setup pipes to the test processes and waits until they and the call threads
    /// are ready.
    fn set_up(&mut self, fs: &state::Fs) -> Result<(), String> {
        let sh = self.shared;
        if fs.pipes.len() > MAX_PIPES {
            return Err(format!(
                "setup: {} pipes, the guest passes at most {MAX_PIPES}",
                fs.pipes.len()
            ));
        }
        for (slot, ends) in sh.pipes.iter().zip(&fs.pipes) {
            slot[0].store(ends[0], Ordering::Release);
            slot[1].store(ends[1], Ordering::Release);
        }
        sh.reset_ready();
        self.command(SETUP);
        // Each process and each call's thread arrives once.
        if !sh.wait_ready((PROCS + self.plan.cpus.len()) as u32) {
            self.restart_processes()?;
            return Err(format!("processes not ready after {TIMEOUT_MS} ms"));
        }
        match (0..PROCS).find_map(|p| sh.take_error(p)) {
            Some(e) => Err(format!("setup: {e}")),
            None => fs.release().map_err(|e| format!("setup: {e}")),
        }
    }

    /// Sends `command` to every test process.
    fn command(&mut self, command: u32) -> u32 {
        self.sequence += 1;
        for word in &self.shared.command {
            Shared::publish(word, encode(self.sequence, command));
        }
        self.sequence
    }

    /// Has the test processes drop the run's fds and mappings (as exiting processes did).
    fn tear_down(&mut self) -> Result<(), String> {
        let sequence = self.command(TEARDOWN);
        let sh = self.shared;
        let done = sh
            .acked
            .iter()
            .all(|word| Shared::wait(word, sequence, Some(TIMEOUT_MS)));
        if done {
            return Ok(());
        }
        self.restart_processes()?;
        Err(format!(
            "test processes not cleaned up after {TIMEOUT_MS} ms"
        ))
    }

    /// The hand-off: call A, then call B, and so on.
    fn drive(&mut self, index: usize, test: &Test, marked: bool) -> Result<Vec<RawResult>, String> {
        let sh = self.shared;
        let g = self.generation;
        let start = Instant::now();
        if marked {
            marker::<{ calls::BEGIN_TEST }>(index as u64);
        }
        for (call, c) in test.calls.iter().enumerate() {
            Shared::publish(&sh.turn[c.proc][call], encode(g, GO));
            if !Shared::wait(&sh.done[call], g, Some(TIMEOUT_MS)) {
                return Err(format!("call {call} did not return within {TIMEOUT_MS} ms"));
            }
        }
        if marked {
            marker::<{ calls::END_TEST }>(index as u64);
        }
        self.timing.calls_ns += elapsed_ns(start);
        let results: Vec<RawResult> = (0..test.calls.len()).map(|c| sh.result(c)).collect();
        for (call, r) in results.iter().enumerate() {
            if r.cpu != self.plan.cpus[call] as i32 {
                return Err(format!(
                    "call {call} ran on CPU {} instead of {}",
                    r.cpu, self.plan.cpus[call]
                ));
            }
        }
        Ok(results)
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn to_actual(r: &RawResult, fs: &state::Fs) -> Actual {
    Actual {
        ret: r.ret,
        errno: (r.errno != 0).then(|| plan::errno_name(r.errno)),
        signal: (r.signal != 0).then(|| plan::signal_name(r.signal)),
        data: u8::try_from(r.data).ok(),
        stat: r.has_stat.then(|| StatActual {
            ino: r.ino,
            inode: fs.inode_of(r.ino),
            size: r.size,
            nlink: r.nlink,
            fifo: r.fifo,
        }),
        fds: r.has_fds.then_some(r.fds),
    }
}

fn report_results(index: usize, test: &Test, results: &[(Actual, Option<u64>)]) {
    for (call, (actual, elapsed_ns)) in results.iter().enumerate() {
        let mismatches = report::check(&test.calls[call].expect, actual);
        emit(&GuestLine::Result {
            test: index,
            call,
            ok: mismatches.is_empty(),
            mismatches,
            actual: actual.clone(),
            elapsed_ns: *elapsed_ns,
        });
    }
}

/// Prints one guest line on the console.
pub fn emit(line: &GuestLine) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // The console is the only channel; if it fails there is nobody to tell.
    let _ = writeln!(out, "{}", line.to_line());
    let _ = out.flush();
}
