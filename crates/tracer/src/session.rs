//! Bookkeeping between markers: per-vCPU call buffers and the per-test state machine that turns
//! a test's finished calls (two, or as many as the plugin's `calls=`) into a [`TestRecord`]. Pure Rust, so it is unit-tested without QEMU; the
//! plugin only feeds it marker events and accesses.

use crate::conflict::{self, Access};
use crate::stack::ShadowStack;
use commuter_trace_format::record::{CallStats, RECORD_VERSION, TestRecord};
use std::fmt::Write as _;

pub use commuter_trace_format::record::KERNEL_BASE;

/// Whether an instruction address is kernel code.
pub fn is_kernel_pc(pc: u64) -> bool {
    pc >= KERNEL_BASE
}

/// Whether the plugin instruments the memory accesses of the instruction at `pc`: kernel code
/// always, user code only when user-mode tracing is on (`user=on`). Decided once per
/// instruction at translation time, so with user mode off user code runs with no callback at
/// all and costs what it did before user-mode tracing existed.
pub fn traced_pc(pc: u64, user: bool) -> bool {
    user || is_kernel_pc(pc)
}

/// The accesses of one finished call.
#[derive(Debug, Default)]
pub struct CallTrace {
    /// Counters reported in the record.
    pub stats: CallStats,
    /// The kept accesses.
    pub accesses: Vec<Access>,
    /// The call stacks the accesses name (`Access::stack` is an index).
    pub stacks: Vec<Vec<u64>>,
}

/// One vCPU's recording buffer; bounded, and counting what it cannot keep.
#[derive(Debug)]
pub struct CallBuffer {
    max: usize,
    recording: bool,
    trace: CallTrace,
    /// The vCPU's shadow call stack (fed by the plugin's call and return callbacks while
    /// recording; empty when stacks are off).
    pub stack: ShadowStack,
}

/// Initial reservation, so that short calls never reallocate and long ones grow geometrically.
const INITIAL_CAPACITY: usize = 1 << 14;

impl CallBuffer {
    /// A buffer keeping at most `max` accesses per call.
    pub fn new(max: usize) -> Self {
        CallBuffer {
            max,
            recording: false,
            trace: CallTrace::default(),
            stack: ShadowStack::new(),
        }
    }

    /// Whether a call is being recorded.
    #[inline]
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Starts recording call `slot` on `vcpu`.
    pub fn begin(&mut self, slot: u64, vcpu: u32) -> Result<(), String> {
        let result = if self.recording {
            Err(format!(
                "vcpu {vcpu}: begin-call {slot} while call {} was still recording (its accesses are dropped)",
                self.trace.stats.slot
            ))
        } else {
            Ok(())
        };
        self.recording = true;
        self.trace = CallTrace::default();
        self.trace.stats.slot = slot;
        self.trace.stats.vcpu = vcpu;
        self.trace.accesses.reserve(INITIAL_CAPACITY.min(self.max));
        // The call's thread is in user mode at its begin marker: no kernel frame is live.
        self.stack.reset();
        result
    }

    /// Records one access if a call is being recorded, under the current call stack.
    #[inline]
    pub fn record(&mut self, access: Access) {
        let s = &mut self.trace.stats;
        s.accesses += 1;
        s.user += u64::from(access.user);
        if self.trace.accesses.len() < self.max {
            let stack = if access.user {
                crate::stack::NO_STACK
            } else {
                self.stack.id()
            };
            self.trace.accesses.push(Access { stack, ..access });
        } else {
            s.dropped += 1;
        }
    }

    /// Counts an access whose physical address was unknown; `user` for user-mode code.
    #[inline]
    pub fn unresolved(&mut self, user: bool) {
        self.trace.stats.accesses += 1;
        self.trace.stats.user += u64::from(user);
        self.trace.stats.unresolved += 1;
    }

    /// Counts an access to memory-mapped I/O; `user` for user-mode code.
    #[inline]
    pub fn io(&mut self, user: bool) {
        self.trace.stats.accesses += 1;
        self.trace.stats.user += u64::from(user);
        self.trace.stats.io += 1;
    }

    /// Stops recording and hands over the call's trace.
    pub fn end(&mut self, slot: u64, vcpu: u32) -> Result<CallTrace, String> {
        if !self.recording {
            return Err(format!("vcpu {vcpu}: end-call {slot} without begin-call"));
        }
        self.recording = false;
        let mut trace = std::mem::take(&mut self.trace);
        trace.stats.kept = trace.accesses.len() as u64;
        trace.stacks = self.stack.take_table();
        if trace.stats.slot != slot {
            return Err(format!(
                "vcpu {vcpu}: end-call {slot} closes begin-call {}",
                trace.stats.slot
            ));
        }
        Ok(trace)
    }
}

/// The test in progress: begin-test, the calls that finished, end-test.
#[derive(Debug)]
pub struct TestSession {
    /// Calls every test has (slots 0 to `expected - 1`).
    expected: usize,
    current: Option<u64>,
    calls: Vec<CallTrace>,
    errors: Vec<String>,
}

impl Default for TestSession {
    /// A session of two-call tests.
    fn default() -> Self {
        TestSession::new(2)
    }
}

impl TestSession {
    /// A session whose tests have `calls` calls each.
    pub fn new(calls: usize) -> Self {
        TestSession {
            expected: calls,
            current: None,
            calls: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Starts test `test`. If the previous test never ended, returns its (error) record.
    pub fn begin_test(&mut self, test: u64) -> Option<TestRecord> {
        let unfinished = self.current.map(|prev| {
            self.errors.push(format!(
                "test {prev} never ended: begin-test {test} came first"
            ));
            self.finish(prev)
        });
        self.current = Some(test);
        unfinished
    }

    /// Whether a test is in progress.
    pub fn in_test(&self) -> bool {
        self.current.is_some()
    }

    /// Adds a finished call to the current test.
    pub fn add_call(&mut self, call: CallTrace) {
        if self.current.is_none() {
            self.errors.push(format!(
                "call {} on vcpu {} ran outside any test",
                call.stats.slot, call.stats.vcpu
            ));
            return;
        }
        self.calls.push(call);
    }

    /// Records an error against the current (or next) test.
    pub fn add_error(&mut self, error: String) {
        self.errors.push(error);
    }

    /// Ends test `test` and computes its record.
    pub fn end_test(&mut self, test: u64) -> TestRecord {
        match self.current {
            Some(cur) if cur != test => self
                .errors
                .push(format!("end-test {test} closes begin-test {cur}")),
            None => self
                .errors
                .push(format!("end-test {test} without begin-test")),
            _ => {}
        }
        self.finish(test)
    }

    /// Ends the test in progress at exit, if any.
    pub fn abandon(&mut self) -> Option<TestRecord> {
        let cur = self.current?;
        self.errors
            .push(format!("test {cur} never ended (QEMU exited)"));
        Some(self.finish(cur))
    }

    fn finish(&mut self, test: u64) -> TestRecord {
        self.current = None;
        let mut calls = std::mem::take(&mut self.calls);
        let mut errors = std::mem::take(&mut self.errors);
        calls.sort_by_key(|c| c.stats.slot);
        errors.extend(check_calls(&calls, self.expected));
        let conflicts = if errors.is_empty() {
            let accesses: Vec<(&[conflict::Access], &[Vec<u64>])> = calls
                .iter()
                .map(|c| (c.accesses.as_slice(), c.stacks.as_slice()))
                .collect();
            conflict::analyze_calls(&accesses)
        } else {
            conflict::Conflicts::default()
        };
        TestRecord {
            v: RECORD_VERSION,
            test,
            overflow: calls.iter().any(|c| c.stats.dropped > 0),
            calls: calls.into_iter().map(|c| c.stats).collect(),
            shared: conflicts.shared,
            false_sharing: conflicts.false_sharing,
            errors,
        }
    }

    /// The raw access lines of the calls so far (`test slot vcpu pc addr size r|w`).
    pub fn raw_lines(&self, test: u64) -> String {
        let mut s = String::new();
        for c in &self.calls {
            for a in &c.accesses {
                let rw = if a.write { 'w' } else { 'r' };
                let _ = writeln!(
                    s,
                    "{test} {} {} {:#x} {:#x} {} {rw}",
                    c.stats.slot, c.stats.vcpu, a.pc, a.addr, a.size
                );
            }
        }
        s
    }
}

/// A test needs exactly calls 0 to `expected - 1` (sorted by slot), each on a vCPU of its own.
fn check_calls(calls: &[CallTrace], expected: usize) -> Option<String> {
    let slots: Vec<u64> = calls.iter().map(|c| c.stats.slot).collect();
    let want: Vec<u64> = (0..expected as u64).collect();
    if slots != want {
        return Some(format!("expected calls {want:?}, got {slots:?}"));
    }
    for (i, a) in calls.iter().enumerate() {
        if let Some(b) = calls[i + 1..].iter().find(|b| b.stats.vcpu == a.stats.vcpu) {
            return Some(format!(
                "calls {} and {} both ran on vcpu {}: each call must run on a CPU of its own",
                a.stats.slot, b.stats.slot, a.stats.vcpu
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn call(slot: u64, vcpu: u32, accesses: &[(u64, bool)]) -> CallTrace {
        let mut b = CallBuffer::new(2);
        b.begin(slot, vcpu).unwrap();
        for &(addr, write) in accesses {
            b.record(Access {
                addr,
                vaddr: addr,
                pc: KERNEL_BASE + addr,
                size: 8,
                write,
                user: false,
                stack: crate::stack::NO_STACK,
            });
        }
        b.end(slot, vcpu).unwrap()
    }

    #[test]
    fn a_test_with_two_calls_reports_conflicts() {
        let mut s = TestSession::default();
        assert!(s.begin_test(3).is_none());
        s.add_call(call(1, 2, &[(0x100, false)]));
        s.add_call(call(0, 1, &[(0x100, true)]));
        let r = s.end_test(3);
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!(r.calls[0].slot, 0);
        assert_eq!(r.shared.len(), 1);
        assert_eq!(r.conflict_free(), Some(false));
        assert!(!s.in_test());
    }

    #[test]
    fn a_test_with_three_calls_reports_the_pairs_that_share() {
        let mut s = TestSession::new(3);
        s.begin_test(4);
        // Calls 1 and 2 write one word; call 0 only reads another one.
        s.add_call(call(2, 3, &[(0x200, true)]));
        s.add_call(call(0, 1, &[(0x100, false)]));
        s.add_call(call(1, 2, &[(0x200, true)]));
        let r = s.end_test(4);
        assert_eq!(r.errors, Vec::<String>::new());
        let slots: Vec<u64> = r.calls.iter().map(|c| c.slot).collect();
        assert_eq!(slots, vec![0, 1, 2]);
        let pairs: Vec<[u64; 2]> = r.shared.iter().map(|l| l.slots).collect();
        assert_eq!(pairs, vec![[1, 2]]);
        assert_eq!(r.conflict_free(), Some(false));
        // A missing third call, or two calls on one vCPU, is an error, not a silent pair.
        s.begin_test(5);
        s.add_call(call(0, 1, &[]));
        s.add_call(call(1, 2, &[]));
        let r = s.end_test(5);
        assert!(
            r.errors[0].contains("expected calls [0, 1, 2], got [0, 1]"),
            "{r:?}"
        );
        s.begin_test(6);
        s.add_call(call(0, 1, &[]));
        s.add_call(call(1, 2, &[]));
        s.add_call(call(2, 1, &[]));
        let r = s.end_test(6);
        assert!(
            r.errors[0].contains("calls 0 and 2 both ran on vcpu 1"),
            "{r:?}"
        );
    }

    #[test]
    fn overflow_is_counted_and_flagged() {
        let mut s = TestSession::default();
        s.begin_test(0);
        s.add_call(call(0, 1, &[(0, false), (64, false), (128, false)]));
        s.add_call(call(1, 2, &[]));
        let r = s.end_test(0);
        assert!(r.overflow);
        assert_eq!(
            (r.calls[0].accesses, r.calls[0].kept, r.calls[0].dropped),
            (3, 2, 1)
        );
        assert_eq!(r.conflict_free(), None);
    }

    #[test]
    fn protocol_errors_are_reported_not_hidden() {
        let mut s = TestSession::default();
        s.begin_test(0);
        s.add_call(call(0, 1, &[]));
        s.add_call(call(1, 1, &[]));
        assert!(
            s.end_test(0).errors[0].contains("calls 0 and 1 both ran on vcpu 1"),
            "the message names the two calls"
        );

        s.begin_test(1);
        s.add_call(call(0, 1, &[]));
        let prev = s.begin_test(2).unwrap();
        assert_eq!(prev.test, 1);
        assert!(prev.errors.iter().any(|e| e.contains("never ended")));
        let r = s.end_test(5);
        assert!(r.errors.iter().any(|e| e.contains("closes begin-test 2")));
        assert!(r.errors.iter().any(|e| e.contains("expected calls [0, 1]")));
    }

    #[test]
    fn buffer_rejects_unbalanced_markers() {
        let mut b = CallBuffer::new(4);
        assert!(b.end(0, 1).is_err());
        b.begin(0, 1).unwrap();
        assert!(b.begin(1, 1).is_err());
        assert!(b.end(0, 1).is_err());
        assert!(!b.recording());
    }

    #[test]
    fn raw_lines_list_every_kept_access() {
        let mut s = TestSession::default();
        s.begin_test(9);
        s.add_call(call(0, 1, &[(0x40, true)]));
        let raw = s.raw_lines(9);
        assert_eq!(raw, format!("9 0 1 {:#x} 0x40 8 w\n", KERNEL_BASE + 0x40));
    }

    /// The stack a kernel access ran under reaches the record; user-mode accesses have none.
    #[test]
    fn accesses_carry_the_call_stack_into_the_record() {
        let slot = 0xffff_c900_0001_3ff8;
        let mut s = TestSession::default();
        s.begin_test(1);
        let mut a = CallBuffer::new(16);
        a.stack.call(0xdead, 0xffff_c900_0000_0ff8); // before the call: forgotten at begin
        a.begin(0, 1).unwrap();
        a.stack.call(0xffff_ffff_8100_0100, slot);
        a.stack.call(0xffff_ffff_8100_0200, slot - 0x30);
        a.record(at(0xffff_ffff_8150_0000, 0x100, 0x100, true));
        a.stack.ret(slot - 0x30);
        a.record(at(0x40_1000, 0x200, 0x200, true));
        s.add_call(a.end(0, 1).unwrap());
        s.add_call(call(1, 2, &[(0x100, false)]));
        let r = s.end_test(1);
        assert_eq!(
            r.shared[0].a.stack,
            vec![0xffff_ffff_8100_0200, 0xffff_ffff_8100_0100]
        );
        assert!(r.shared[0].b.stack.is_empty(), "call 1 saw no call");
    }

    #[test]
    fn kernel_pcs() {
        assert!(is_kernel_pc(0xffff_ffff_8100_0000));
        assert!(!is_kernel_pc(0x0000_7fff_ffff_f000));
    }

    /// What the plugin's translation callback decides for each instruction.
    #[test]
    fn user_code_is_traced_only_when_asked() {
        let (kernel, user) = (0xffff_ffff_8137_a1c2, 0x40_1a2b);
        assert!(traced_pc(kernel, false) && traced_pc(kernel, true));
        assert!(!traced_pc(user, false), "user mode is off by default");
        assert!(traced_pc(user, true));
        assert!(Config::parse(&["out=t"]).is_ok_and(|c| !c.user));
    }

    /// A call as the plugin records it: only the instructions `traced_pc` admits reach the
    /// buffer, each tagged by its PC's mode.
    fn traced_call(slot: u64, vcpu: u32, user_on: bool, accesses: &[Access]) -> CallTrace {
        let mut b = CallBuffer::new(64);
        b.begin(slot, vcpu).unwrap();
        for a in accesses.iter().filter(|a| traced_pc(a.pc, user_on)) {
            b.record(Access {
                user: !is_kernel_pc(a.pc),
                ..*a
            });
        }
        b.end(slot, vcpu).unwrap()
    }

    fn at(pc: u64, addr: u64, vaddr: u64, write: bool) -> Access {
        Access {
            addr,
            vaddr,
            pc,
            size: 1,
            write,
            user: false,
            stack: crate::stack::NO_STACK,
        }
    }

    /// Two threads of one process store to one byte of a shared page (memwrite/memwrite), and
    /// the kernel of call B reads it too (a write() from that page): user-user sharing on one
    /// physical address, and a side that is both user and kernel.
    fn two_threads(user_on: bool) -> TestRecord {
        let page = 0x0123_4000;
        let user_va = 0x100_0000_0000;
        let kernel_va = 0xffff_8880_0000_0000 + page;
        let a = [at(0x40_1000, page, user_va, true)];
        let b = [
            at(0x40_1000, page, user_va, true),
            at(0xffff_ffff_8150_0000, page, user_va, false),
            // The kernel's direct-map alias of the same page: the same physical line.
            at(0xffff_ffff_8150_0040, page + 8, kernel_va + 8, false),
        ];
        let mut s = TestSession::default();
        s.begin_test(0);
        s.add_call(traced_call(0, 1, user_on, &a));
        s.add_call(traced_call(1, 2, user_on, &b));
        s.end_test(0)
    }

    #[test]
    fn user_mode_accesses_are_tagged_and_shared_by_physical_address() {
        use commuter_trace_format::record::{Mode, Rw};
        let r = two_threads(true);
        assert_eq!(r.errors, Vec::<String>::new());
        assert_eq!((r.calls[0].accesses, r.calls[0].user), (1, 1));
        assert_eq!((r.calls[1].accesses, r.calls[1].user), (3, 1));
        assert_eq!(r.shared.len(), 1, "{:?}", r.shared);
        let s = &r.shared[0];
        assert_eq!(
            (s.addr, s.size, s.vaddr),
            (0x0123_4000, 1, Some(0x100_0000_0000))
        );
        assert_eq!((s.a.mode, s.a.rw, s.a.pc), (Mode::User, Rw::W, 0x40_1000));
        assert_eq!(s.b.mode, Mode::Both);
        assert_eq!(s.b.pcs, vec![0x40_1000, 0xffff_ffff_8150_0000]);
        // Byte 8, read by the kernel through the direct map, shares the line but no byte.
        assert!(
            r.false_sharing.is_empty(),
            "byte 0 is shared, so the line is not false"
        );
    }

    #[test]
    fn without_user_mode_nothing_of_user_code_is_recorded() {
        let r = two_threads(false);
        assert_eq!((r.calls[0].accesses, r.calls[0].user), (0, 0));
        assert_eq!((r.calls[1].accesses, r.calls[1].user), (2, 0));
        assert!(r.shared.is_empty() && r.false_sharing.is_empty(), "{r:?}");
    }
}
