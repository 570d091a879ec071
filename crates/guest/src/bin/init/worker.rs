//! A test process. The model's processes are forked once, before the first test, and serve
//! every test: forking two processes and starting their call threads for each run cost the
//! VM more than everything else a test does. Between runs a process drops every fd and mapping
//! the run set up, so each run starts from what a fresh fork would give; its call threads stay
//! pinned to their CPUs and wait for their turn.
//!
//! Per run: the coordinator sends `SETUP`; the process sets up its fds and mappings, tells the
//! call threads of its calls to prepare, and arrives; each of those threads builds its call and
//! arrives; the coordinator then gives each call its `GO` in turn. After the run, `TEARDOWN`.

use crate::calls::{Prepared, marker};
use crate::shared::{GO, PREPARE, RawResult, SETUP, Shared, TEARDOWN, decode, encode};
use crate::{calls, settle, state, sys};
use commuter_guest::plan::{FdTarget, MAX_CALLS, MAX_PAGES, Op, Plan};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What every thread of a test process knows.
#[derive(Clone, Copy)]
struct Process {
    index: usize,
    shared: &'static Shared,
    plan: &'static Plan,
}

/// Forks test process `index`; returns its pid.
pub fn spawn(
    index: usize,
    shared: &'static Shared,
    plan: &'static Plan,
) -> std::io::Result<libc::pid_t> {
    let process = Process {
        index,
        shared,
        plan,
    };
    // Read before the fork: a command sent after it, even before the child runs, is new to it.
    let seen = shared.command[index].load(Ordering::Acquire);
    match sys::fork()? {
        0 => serve(process, seen),
        pid => Ok(pid),
    }
}

/// Pages calls of this process mapped where the kernel chose (per call slot), unmapped with
/// the run's other mappings.
static CHOSEN_MAPPINGS: [AtomicU64; MAX_CALLS] = [const { AtomicU64::new(0) }; MAX_CALLS];

fn serve(p: Process, mut seen: u32) -> ! {
    install_fault_handler(p);
    // One call thread per call slot of the plan, pinned to that slot's CPU: any call may run
    // in any process.
    for slot in 0..p.plan.cpus.len() {
        start_call_thread(p, slot);
    }
    let sh = p.shared;
    loop {
        seen = Shared::wait_change(&sh.command[p.index], seen);
        let (sequence, command) = decode(seen);
        match command {
            SETUP => set_up(p),
            TEARDOWN => {
                tear_down(p);
                sh.acked[p.index].store(sequence, Ordering::Release);
                sys::futex_wake(&sh.acked[p.index]);
            }
            _ => {}
        }
    }
}

fn set_up(p: Process) {
    let sh = p.shared;
    let generation = sh.generation.load(Ordering::Acquire);
    let test = &p.plan.tests[sh.test.load(Ordering::Acquire) as usize];
    if let Some(proc) = test.setup.procs.get(p.index) {
        // One pidfd of the coordinator for all pipe ends, opened first (so it takes fd 3, below
        // every test fd); setup_proc closes it with every other fd the process does not keep.
        let has_pipes = proc
            .fds
            .iter()
            .any(|f| matches!(f.target, FdTarget::Pipe { .. }));
        let coordinator = has_pipes
            .then(|| sys::pidfd_open(sh.coordinator.load(Ordering::Acquire)))
            .transpose();
        let pipe_end = |pipe: usize, write: bool| {
            let pidfd = match &coordinator {
                Ok(fd) => fd.ok_or_else(|| std::io::Error::other("no pidfd of the coordinator"))?,
                Err(e) => {
                    let message = format!("pidfd of the coordinator: {e}");
                    return Err(std::io::Error::new(e.kind(), message));
                }
            };
            let fd = sh.pipes[pipe][usize::from(write)].load(Ordering::Acquire);
            sys::fd_from(pidfd, fd)
        };
        if let Err(e) = state::setup_proc(proc, pipe_end) {
            sh.set_error(p.index, &format!("process {}: {e}", p.index));
        }
    }
    for (slot, _) in test
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.proc == p.index)
    {
        Shared::publish(&sh.turn[p.index][slot], encode(generation, PREPARE));
    }
    sh.arrive();
}

/// Drops the last run's fds and mappings and replaces call threads that faulted.
fn tear_down(p: Process) {
    let chosen = CHOSEN_MAPPINGS.iter().map(|a| a.swap(0, Ordering::AcqRel));
    state::clean_process(chosen.filter(|a| *a != 0));
    for slot in 0..p.plan.cpus.len() {
        if p.shared.parked[p.index][slot].swap(0, Ordering::AcqRel) != 0 {
            start_call_thread(p, slot);
        }
    }
}

fn start_call_thread(p: Process, slot: usize) {
    // Read before the thread starts: a turn given before now is not the new thread's.
    let seen = p.shared.turn[p.index][slot].load(Ordering::Acquire);
    let spawned = std::thread::Builder::new().spawn(move || call_thread(p, slot, seen));
    if let Err(e) = spawned {
        p.shared
            .set_error(p.index, &format!("thread for call {slot}: {e}"));
    }
}

fn call_thread(p: Process, slot: usize, mut seen: u32) {
    let sh = p.shared;
    let cpu = p.plan.cpus[slot];
    if let Err(e) = sys::pin(cpu) {
        sh.set_error(p.index, &format!("call {slot}: pin to CPU {cpu}: {e}"));
    }
    FAULT_SLOT.with(|s| s.set(slot));
    // Kept until the next run prepares, so that nothing is freed while the other call runs.
    let mut prepared: Option<(u32, Prepared<'static>)> = None;
    loop {
        seen = Shared::wait_change(&sh.turn[p.index][slot], seen);
        let (generation, phase) = decode(seen);
        match phase {
            PREPARE => {
                prepared = None;
                let test = &p.plan.tests[sh.test.load(Ordering::Acquire) as usize];
                match Prepared::new(&test.calls[slot].op) {
                    Ok(call) => prepared = Some((generation, call)),
                    Err(e) => sh.set_error(p.index, &format!("call {slot}: {e}")),
                }
                // Last thing before arriving: preparing may have faulted pages in.
                if sh.marked.load(Ordering::Acquire) != 0
                    && let Err(e) = settle::drain_this_cpu()
                {
                    sh.set_error(p.index, &format!("call {slot}: {e}"));
                }
                sh.arrive();
            }
            GO => {
                let marked = sh.marked.load(Ordering::Acquire) != 0;
                let result = match prepared.as_mut() {
                    Some((g, call)) if *g == generation => call.run(slot, marked),
                    _ => RawResult {
                        ret: -1,
                        data: -1,
                        cpu: sys::current_cpu(),
                        ..RawResult::default()
                    },
                };
                if let Some((_, call)) = &prepared {
                    remember_chosen_mapping(slot, call.op(), &result);
                }
                sh.set_result(slot, result);
                Shared::publish(&sh.done[slot], generation);
            }
            _ => {}
        }
    }
}

/// A mapping the kernel placed outside the test window must go with the run's other ones.
fn remember_chosen_mapping(slot: usize, op: &Op, result: &RawResult) {
    if let Op::Mmap { fixed: false, .. } = op
        && result.ret >= i64::from(MAX_PAGES)
    {
        CHOSEN_MAPPINGS[slot].store(result.ret as u64, Ordering::Release);
    }
}

// The fault handler's view of the process (set before any call runs).
static FAULT_PROCESS: AtomicUsize = AtomicUsize::new(0);
static FAULT_SHARED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The call slot of this thread (a const-initialised cell: safe to read in a handler).
    static FAULT_SLOT: Cell<usize> = const { Cell::new(0) };
}

fn install_fault_handler(p: Process) {
    FAULT_PROCESS.store(p.index, Ordering::Release);
    FAULT_SHARED.store(p.shared as *const Shared as u64, Ordering::Release);
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
/// park this thread for good; the process starts another one for the slot before the next run.
extern "C" fn on_fault(sig: libc::c_int) {
    // SAFETY: set before any call ran in this process.
    let sh = unsafe { &*(FAULT_SHARED.load(Ordering::Acquire) as *const Shared) };
    let slot = FAULT_SLOT.with(Cell::get);
    if sh.marked.load(Ordering::Acquire) != 0 {
        marker::<{ calls::END_CALL }>(slot as u64);
    }
    let generation = sh.generation.load(Ordering::Acquire);
    sh.set_result(
        slot,
        RawResult {
            ret: -1,
            signal: sig,
            data: -1,
            cpu: sys::current_cpu(),
            ..RawResult::default()
        },
    );
    let process = FAULT_PROCESS.load(Ordering::Acquire);
    sh.parked[process][slot].store(1, Ordering::Release);
    Shared::publish(&sh.done[slot], generation);
    let never = std::sync::atomic::AtomicU32::new(0);
    loop {
        sys::futex_wait(&never, 0, None);
    }
}
