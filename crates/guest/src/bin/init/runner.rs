//! Running one test: build the state, fork the processes, hand call A to its CPU, then call B,
//! collect and check the results, clean up. Every test runs twice; only the second (warm) run
//! is marked for the tracer, so first-touch effects (cold caches, lazy allocations) stay out.

use crate::calls::{self, Prepared, marker};
use crate::shared::{RawResult, Shared, TIMEOUT_MS};
use crate::{state, sys};
use commuter_guest::plan::{self, PROCS, Test};
use commuter_guest::report::{self, Actual, GuestLine, StatActual};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Everything a test run needs that outlives one run.
pub struct Runner {
    pub shared: &'static Shared,
    pub cpus: [u32; 2],
    generation: u32,
}

impl Runner {
    pub fn new(shared: &'static Shared, cpus: [u32; 2]) -> Runner {
        Runner {
            shared,
            cpus,
            generation: 0,
        }
    }

    fn run(&self, marked: bool) -> Run {
        Run {
            shared: self.shared,
            cpus: self.cpus,
            generation: self.generation,
            marked,
        }
    }

    /// Runs test `index` twice and reports the second run (results and call times).
    pub fn run_test(&mut self, index: usize, test: &Test) {
        for marked in [false, true] {
            match self.run_once(index, test, marked) {
                Ok(results) if marked => report_results(index, test, &results),
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
    ) -> Result<[(Actual, Option<u64>); 2], String> {
        self.generation += 1;
        let fs = state::create(&test.setup).map_err(|e| format!("setup: {e}"));
        let outcome = fs.and_then(|fs| {
            let r = self.run_processes(index, test, marked, &fs);
            r.map(|raw| raw.map(|r| (to_actual(&r, &fs), r.elapsed_ns)))
        });
        let cleaned = state::clean().map_err(|e| format!("cleanup: {e}"));
        let actual = outcome?;
        cleaned?;
        Ok(actual)
    }

    fn run_processes(
        &self,
        index: usize,
        test: &Test,
        marked: bool,
        fs: &state::Fs,
    ) -> Result<[RawResult; 2], String> {
        self.shared.reset_ready();
        let mut pids = Vec::new();
        for proc in 0..PROCS {
            match sys::fork() {
                Ok(0) => child(proc, test, fs, self.run(marked)),
                Ok(pid) => pids.push(pid),
                Err(e) => {
                    kill_all(&pids);
                    return Err(format!("fork: {e}"));
                }
            }
        }
        let result = self.drive(index, marked, fs);
        match result {
            Ok(_) => pids.iter().for_each(|p| sys::reap(*p)),
            Err(_) => kill_all(&pids),
        }
        result
    }

    /// The hand-off: processes ready, call A, call B, release.
    fn drive(&self, index: usize, marked: bool, fs: &state::Fs) -> Result<[RawResult; 2], String> {
        let sh = self.shared;
        let g = self.generation;
        // Each process and each call thread arrives once.
        if !sh.wait_ready((PROCS + 2) as u32) {
            return Err(format!("processes not ready after {TIMEOUT_MS} ms"));
        }
        if let Some(e) = (0..PROCS).find_map(|p| sh.take_error(p)) {
            return Err(format!("setup: {e}"));
        }
        fs.release().map_err(|e| format!("setup: {e}"))?;
        if marked {
            marker::<{ calls::BEGIN_TEST }>(index as u64);
        }
        for call in 0..2 {
            Shared::publish(&sh.go[call], g);
            if !Shared::wait(&sh.done[call], g, Some(TIMEOUT_MS)) {
                return Err(format!("call {call} did not return within {TIMEOUT_MS} ms"));
            }
        }
        if marked {
            marker::<{ calls::END_TEST }>(index as u64);
        }
        Shared::publish(&sh.exit, g);
        let results = [sh.result(0), sh.result(1)];
        for (call, r) in results.iter().enumerate() {
            if r.cpu != self.cpus[call] as i32 {
                return Err(format!(
                    "call {call} ran on CPU {} instead of {}",
                    r.cpu, self.cpus[call]
                ));
            }
        }
        Ok(results)
    }
}

fn kill_all(pids: &[libc::pid_t]) {
    pids.iter().for_each(|p| sys::kill_and_reap(*p));
}

/// A test process: set up, run its calls on their CPUs, wait to be released. Never returns.
fn child(proc: usize, test: &Test, fs: &state::Fs, run: Run) -> ! {
    let sh = run.shared;
    if let Some(p) = test.setup.procs.get(proc) {
        if let Err(e) = state::setup_proc(p, fs) {
            sh.set_error(proc, &format!("process {proc}: {e}"));
        }
    }
    install_fault_handler(run);
    let mut threads = 0;
    for (call, c) in test
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.proc == proc)
    {
        let op = c.op.clone();
        let spawned = std::thread::Builder::new().spawn(move || call_thread(call, &op, proc, run));
        match spawned {
            Ok(_) => threads += 1,
            Err(e) => sh.set_error(
                proc,
                &format!("process {proc}: thread for call {call}: {e}"),
            ),
        }
    }
    // Keep the arrival count fixed even if a thread could not start.
    let calls_here = test.calls.iter().filter(|c| c.proc == proc).count();
    (threads..calls_here).for_each(|_| sh.arrive());
    sh.arrive();
    Shared::wait(&sh.exit, run.generation, None);
    // SAFETY: ends the whole process, including call threads parked in the fault handler.
    unsafe { libc::_exit(0) }
}

/// What a test process needs to know about the current run.
#[derive(Clone, Copy)]
struct Run {
    shared: &'static Shared,
    cpus: [u32; 2],
    generation: u32,
    marked: bool,
}

fn call_thread(call: usize, op: &plan::Op, proc: usize, run: Run) {
    let sh = run.shared;
    let cpu = run.cpus[call];
    if let Err(e) = sys::pin(cpu) {
        sh.set_error(proc, &format!("call {call}: pin to CPU {cpu}: {e}"));
    }
    let prepared = Prepared::new(op);
    if let Err(e) = &prepared {
        sh.set_error(proc, &format!("call {call}: {e}"));
    }
    sh.arrive();
    Shared::wait(&sh.go[call], run.generation, None);
    let result = match prepared {
        Ok(mut p) => {
            FAULT_CALL.store(call, Ordering::Release);
            p.run(call, run.marked)
        }
        Err(_) => RawResult {
            ret: -1,
            data: -1,
            cpu: sys::current_cpu(),
            ..RawResult::default()
        },
    };
    sh.set_result(call, result);
    Shared::publish(&sh.done[call], run.generation);
}

// The fault handler's view of the run (set in each test process before its calls run).
static FAULT_SHARED: AtomicPtr<Shared> = AtomicPtr::new(std::ptr::null_mut());
static FAULT_GENERATION: AtomicU32 = AtomicU32::new(0);
static FAULT_CALL: AtomicUsize = AtomicUsize::new(0);
static FAULT_MARKED: AtomicU32 = AtomicU32::new(0);

fn install_fault_handler(run: Run) {
    FAULT_SHARED.store((run.shared as *const Shared).cast_mut(), Ordering::Release);
    FAULT_GENERATION.store(run.generation, Ordering::Release);
    FAULT_MARKED.store(u32::from(run.marked), Ordering::Release);
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: installs a handler that only uses atomics, raw syscalls and the marker.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// A memread/memwrite faulted: that is the call's result (SIGSEGV or SIGBUS). Report it and
/// park this thread; the process is ended by the coordinator's release.
extern "C" fn on_fault(sig: libc::c_int) {
    let call = FAULT_CALL.load(Ordering::Acquire);
    if FAULT_MARKED.load(Ordering::Acquire) != 0 {
        marker::<{ calls::END_CALL }>(call as u64);
    }
    let g = FAULT_GENERATION.load(Ordering::Acquire);
    // SAFETY: set before any call ran in this process.
    let sh = unsafe { &*FAULT_SHARED.load(Ordering::Acquire) };
    let cpu = sys::current_cpu();
    sh.set_result(
        call,
        RawResult {
            ret: -1,
            signal: sig,
            data: -1,
            cpu,
            ..RawResult::default()
        },
    );
    Shared::publish(&sh.done[call], g);
    loop {
        sys::futex_wait(&sh.exit, sh.exit.load(Ordering::Acquire), None);
    }
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

fn report_results(index: usize, test: &Test, results: &[(Actual, Option<u64>); 2]) {
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
