//! The guest plan: what the guest runs, with concrete Linux arguments (version [`PLAN_VERSION`];
//! version 1, whose tests are pairs, is read too).
//!
//! A plan is one JSON document at `/plan.json` in the initramfs:
//!
//! ```json
//! {"version": 2, "cpus": [1, 2], "tests": [{
//!    "name": "stat-same",
//!    "setup": {
//!      "inodes": [{"data": [1]}],
//!      "names": [{"name": "__f0", "inode": 0}],
//!      "pipes": [{"data": [2, 3]}],
//!      "procs": [{"fds": [{"fd": 10, "file": {"inode": 0, "off": 0}},
//!                         {"fd": 20, "pipe": {"pipe": 0, "write": false}}],
//!                 "maps": [{"page": 0, "anon": {"data": 4}, "writable": true}]},
//!                {"fds": [], "maps": []}]},
//!    "calls": [
//!      {"proc": 0, "op": {"call": "stat", "name": "__f0"}, "expect": {"ret": {"ok": 0}, "stat": {"inode": 0}}},
//!      {"proc": 1, "op": {"call": "stat", "name": "__f0"}, "expect": {"ret": {"ok": 0}}}]}]}
//! ```
//!
//! Conventions: the state lives in a fresh tmpfs directory that is every process's working
//! directory, so names are plain file names. An inode is a file holding one 4096-byte page per
//! data value, every byte of a page equal to its data value. `setup.inodes[i]` is only reachable
//! through the names linked to it and the fds and mappings that refer to it. Offsets are in
//! bytes. A mapping's `page` is the page index from [`MAP_BASE`]. Call 0 (call A) runs on
//! `cpus[0]`, call 1 (call B) on `cpus[1]`, and so on, one after the other; setup runs on CPU
//! 0. A plan has one CPU per call and every test as many calls: 2 (a pair), up to
//! [`MAX_CALLS`]. Version 2 allowed more than two (`cpus` and `calls` were pairs in version 1,
//! which reads the same).

use serde::{Deserialize, Serialize};

// The setup, the page size and the errno and signal tables are the POSIX test schema's: the
// model writes them and the target translates them with the same types.
pub use commuter_posix_format::setup::{
    Backing, Fd, FdTarget, Inode, Map, Name, Pipe, Proc, Setup,
};
pub use commuter_posix_format::{ERRNOS, PAGE, SIGNALS, errno_name, signal_name};

/// Version of the plan format; the guest refuses other versions than this one and 1.
pub const PLAN_VERSION: u32 = 2;
/// The oldest plan version read.
pub const PLAN_OLDEST_READ: u32 = 1;
pub use commuter_trace_format::MAX_CALLS;
/// Where the guest maps page 0 of each process's test mappings.
pub const MAP_BASE: u64 = 0x100_0000_0000;
/// Mapping pages a test may use per process.
pub const MAX_PAGES: u32 = 64;
/// Number of processes a test can use.
pub const PROCS: usize = 2;
/// Lowest fd a test may place a file or pipe at (below are stdio and the guest's own fds).
pub const MIN_TEST_FD: i32 = 10;
/// Highest fd a test may use.
pub const MAX_TEST_FD: i32 = 63;

/// A whole run: many tests, executed in order in one boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Must equal [`PLAN_VERSION`].
    pub version: u32,
    /// The CPU of each call slot: call A's, call B's, ... (CPU 0 does setup).
    #[serde(default = "default_cpus")]
    pub cpus: Vec<u32>,
    /// The tests; a test's index in this list is its id in markers and reports.
    pub tests: Vec<Test>,
}

fn default_cpus() -> Vec<u32> {
    vec![1, 2]
}

/// One test: a state and its calls (as many as the plan has CPUs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Test {
    /// Human-readable label, echoed in reports.
    #[serde(default)]
    pub name: String,
    /// The state before the calls.
    #[serde(default)]
    pub setup: Setup,
    /// Call A, call B, ..., in the order they run.
    pub calls: Vec<Call>,
}

/// One call of a test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// The process slot (0 or 1) the call runs in.
    pub proc: usize,
    /// The system call and its arguments.
    pub op: Op,
    /// What the model says it returns.
    pub expect: Expect,
}

/// Where `lseek` counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Whence {
    /// SEEK_SET.
    Set,
    /// SEEK_CUR.
    Cur,
    /// SEEK_END.
    End,
    /// No valid origin (the model's "no whence flag"): passes 999, which Linux rejects.
    Invalid,
}

/// A system call (or memory access) with concrete arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Op {
    /// getpid(): a harness check, touches almost nothing.
    Getpid,
    /// open(name, O_RDWR | flags, 0666).
    Open {
        /// File name.
        name: String,
        /// O_CREAT.
        #[serde(default)]
        creat: bool,
        /// O_EXCL.
        #[serde(default)]
        excl: bool,
        /// O_TRUNC.
        #[serde(default)]
        trunc: bool,
    },
    /// link(old, new).
    Link {
        /// Existing name.
        old: String,
        /// New name.
        new: String,
    },
    /// unlink(name).
    Unlink {
        /// File name.
        name: String,
    },
    /// rename(src, dst).
    Rename {
        /// Source name.
        src: String,
        /// Destination name.
        dst: String,
    },
    /// stat(name).
    Stat {
        /// File name.
        name: String,
    },
    /// fstat(fd).
    Fstat {
        /// File descriptor.
        fd: i32,
    },
    /// lseek(fd, off, whence).
    Lseek {
        /// File descriptor.
        fd: i32,
        /// Byte offset.
        off: i64,
        /// Origin.
        whence: Whence,
    },
    /// close(fd).
    Close {
        /// File descriptor.
        fd: i32,
    },
    /// pipe2(fds, O_NONBLOCK).
    Pipe,
    /// read(fd, buf, 4096).
    Read {
        /// File descriptor.
        fd: i32,
    },
    /// write(fd, page of `data`, 4096).
    Write {
        /// File descriptor.
        fd: i32,
        /// Data value.
        data: u8,
    },
    /// pread(fd, buf, 4096, off).
    Pread {
        /// File descriptor.
        fd: i32,
        /// Byte offset.
        off: i64,
    },
    /// pwrite(fd, page of `data`, 4096, off).
    Pwrite {
        /// File descriptor.
        fd: i32,
        /// Byte offset.
        off: i64,
        /// Data value.
        data: u8,
    },
    /// mmap of one page; returns the page index.
    Mmap {
        /// Page index (used when `fixed`).
        page: u32,
        /// Anonymous (else a shared mapping of `fd`).
        anon: bool,
        /// PROT_WRITE.
        writable: bool,
        /// MAP_FIXED at `page`.
        fixed: bool,
        /// File descriptor (file mappings).
        #[serde(default)]
        fd: i32,
        /// Byte offset (file mappings).
        #[serde(default)]
        off: i64,
    },
    /// munmap of one page.
    Munmap {
        /// Page index.
        page: u32,
    },
    /// mprotect of one page.
    Mprotect {
        /// Page index.
        page: u32,
        /// PROT_WRITE (PROT_READ always).
        writable: bool,
    },
    /// Read the first byte of a page.
    Memread {
        /// Page index.
        page: u32,
    },
    /// Write the first byte of a page.
    Memwrite {
        /// Page index.
        page: u32,
        /// Data value.
        data: u8,
    },
}

/// The expected result of a call; fields left out are not checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expect {
    /// Return value, error or signal.
    pub ret: Ret,
    /// First byte of the data read (read, pread, memread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<u8>,
    /// What stat/fstat report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<StatExpect>,
    /// The two fds pipe returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds: Option<[i32; 2]>,
}

/// How a call ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ret {
    /// Success with exactly this value (mmap: the page index).
    Ok(i64),
    /// Success with any non-negative value (e.g. "any fd").
    AnyOk,
    /// Failure with this errno name, e.g. `"ENOENT"`.
    Err(String),
    /// Killed by this signal name, `"SIGSEGV"` or `"SIGBUS"`.
    Signal(String),
}

/// Expected stat/fstat fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatExpect {
    /// The file is `setup.inodes[inode]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<usize>,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Link count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlink: Option<u64>,
    /// Whether it is a FIFO (fstat of a pipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo: Option<bool>,
}

/// Why a plan cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not JSON of the right shape.
    #[error("the plan is not valid JSON of the plan format: {0}")]
    Json(#[from] serde_json::Error),
    /// Written for another guest.
    #[error(
        "plan version {found} is not supported (this guest reads versions {PLAN_OLDEST_READ} to {PLAN_VERSION}): rebuild the guest with the commuter that wrote the plan"
    )]
    Version {
        /// The version found.
        found: u32,
    },
    /// The plan's CPUs are not one distinct CPU other than 0 per call.
    #[error("plan cpus {cpus:?}: {problem}")]
    Cpus {
        /// The CPUs given.
        cpus: Vec<u32>,
        /// What is wrong.
        problem: String,
    },
    /// A test refers to something that does not exist or is out of range.
    #[error("test {test} ({name}): {problem}")]
    Invalid {
        /// Test index.
        test: usize,
        /// Test name.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

impl Plan {
    /// Parses and validates a plan.
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        if !(PLAN_OLDEST_READ..=PLAN_VERSION).contains(&plan.version) {
            return Err(PlanError::Version {
                found: plan.version,
            });
        }
        plan.check_cpus().map_err(|problem| PlanError::Cpus {
            cpus: plan.cpus.clone(),
            problem,
        })?;
        for (i, t) in plan.tests.iter().enumerate() {
            t.validate()
                .and_then(|()| match t.calls.len() {
                    n if n == plan.cpus.len() => Ok(()),
                    n => Err(format!(
                        "{n} calls, but the plan runs {} per test (one per CPU)",
                        plan.cpus.len()
                    )),
                })
                .map_err(|problem| PlanError::Invalid {
                    test: i,
                    name: t.name.clone(),
                    problem,
                })?;
        }
        Ok(plan)
    }

    /// One CPU per call, 2 to [`MAX_CALLS`] of them, distinct and other than 0 (setup's).
    fn check_cpus(&self) -> Result<(), String> {
        let n = self.cpus.len();
        if !(2..=MAX_CALLS).contains(&n) {
            return Err(format!(
                "{n} CPUs: a test runs 2 to {MAX_CALLS} calls, one per CPU"
            ));
        }
        if self.cpus.contains(&0) {
            return Err("CPU 0 does the setup: calls run on other CPUs".into());
        }
        for (i, c) in self.cpus.iter().enumerate() {
            if self.cpus[i + 1..].contains(c) {
                return Err(format!("CPU {c} appears twice: each call needs its own"));
            }
        }
        Ok(())
    }

    /// The plan as JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Test {
    /// Checks every reference and range; the guest relies on this.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.setup;
        if s.procs.len() > PROCS {
            return Err(format!("{} processes, at most {PROCS}", s.procs.len()));
        }
        for n in &s.names {
            check_name(&n.name)?;
            check_index("inode", n.inode, s.inodes.len())?;
        }
        for (i, inode) in s.inodes.iter().enumerate() {
            let names = s.names.iter().filter(|n| n.inode == i).count();
            match inode.nlink {
                Some(n) if n < names as u64 => {
                    return Err(format!(
                        "inode {i} has {n} links but {names} names name it (a model's link count must count every name)"
                    ));
                }
                Some(n) if n > MAX_LINKS => {
                    return Err(format!("inode {i} has {n} links, at most {MAX_LINKS}"));
                }
                _ => {}
            }
        }
        for p in &s.procs {
            check_proc(p, s)?;
        }
        for c in &self.calls {
            check_index("process", c.proc, PROCS)?;
            check_op(&c.op)?;
            check_expect(&c.expect)?;
        }
        Ok(())
    }
}

/// Links an inode may have in a setup (each hidden one is a file the guest creates).
pub const MAX_LINKS: u64 = 16;

fn check_index(what: &str, i: usize, len: usize) -> Result<(), String> {
    if i < len {
        Ok(())
    } else {
        Err(format!("{what} {i} does not exist (there are {len})"))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
    if ok {
        Ok(())
    } else {
        Err(format!("bad file name {name:?}"))
    }
}

fn check_fd(fd: i32) -> Result<(), String> {
    if (MIN_TEST_FD..=MAX_TEST_FD).contains(&fd) {
        Ok(())
    } else {
        Err(format!("fd {fd} is outside {MIN_TEST_FD}..={MAX_TEST_FD}"))
    }
}

fn check_page(page: u32) -> Result<(), String> {
    if page < MAX_PAGES {
        Ok(())
    } else {
        Err(format!("page {page} is not below {MAX_PAGES}"))
    }
}

fn check_proc(p: &Proc, s: &Setup) -> Result<(), String> {
    let mut seen = Vec::new();
    for f in &p.fds {
        check_fd(f.fd)?;
        if seen.contains(&f.fd) {
            return Err(format!("fd {} is set up twice", f.fd));
        }
        seen.push(f.fd);
        match f.target {
            FdTarget::File { inode, .. } => check_index("inode", inode, s.inodes.len())?,
            FdTarget::Pipe { pipe, .. } => check_index("pipe", pipe, s.pipes.len())?,
        }
    }
    for m in &p.maps {
        check_page(m.page)?;
        m.check()?;
        if let Backing::File { inode, .. } = m.backing {
            check_index("inode", inode, s.inodes.len())?;
        }
    }
    Ok(())
}

fn check_op(op: &Op) -> Result<(), String> {
    match op {
        Op::Open { name, .. } | Op::Unlink { name } | Op::Stat { name } => check_name(name),
        Op::Link { old, new } => check_name(old).and(check_name(new)),
        Op::Rename { src, dst } => check_name(src).and(check_name(dst)),
        Op::Mmap { page, .. }
        | Op::Munmap { page }
        | Op::Mprotect { page, .. }
        | Op::Memread { page }
        | Op::Memwrite { page, .. } => check_page(*page),
        _ => Ok(()),
    }
}

fn check_expect(e: &Expect) -> Result<(), String> {
    match &e.ret {
        Ret::Err(name) if !ERRNOS.iter().any(|(n, _)| n == name) => {
            Err(format!("unknown errno {name:?}"))
        }
        Ret::Signal(name) if !SIGNALS.iter().any(|(n, _)| n == name) => {
            Err(format!("unknown signal {name:?}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"version": 2, "cpus": [1, 2], "tests": [{
       "name": "stat-same",
       "setup": {
         "inodes": [{"data": [1]}],
         "names": [{"name": "__f0", "inode": 0}],
         "pipes": [{"data": [2, 3]}],
         "procs": [{"fds": [{"fd": 10, "file": {"inode": 0, "off": 0}},
                            {"fd": 20, "pipe": {"pipe": 0, "write": false}}],
                    "maps": [{"page": 0, "anon": {"data": 4}, "writable": true}]},
                   {"fds": [], "maps": []}]},
       "calls": [
         {"proc": 0, "op": {"call": "stat", "name": "__f0"}, "expect": {"ret": {"ok": 0}, "stat": {"inode": 0}}},
         {"proc": 1, "op": {"call": "stat", "name": "__f0"}, "expect": {"ret": {"ok": 0}}}]}]}"#;

    #[test]
    fn the_documented_example_parses_and_round_trips() {
        let plan = Plan::from_json(EXAMPLE).unwrap();
        let t = &plan.tests[0];
        assert_eq!(
            t.setup.procs[0].fds[1].target,
            FdTarget::Pipe {
                pipe: 0,
                write: false
            }
        );
        assert_eq!(t.setup.procs[0].maps[0].backing, Backing::Anon { data: 4 });
        assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
    }

    #[test]
    fn ops_use_the_call_tag() {
        let op: Op = serde_json::from_str(r#"{"call":"open","name":"a","creat":true}"#).unwrap();
        assert_eq!(
            op,
            Op::Open {
                name: "a".into(),
                creat: true,
                excl: false,
                trunc: false
            }
        );
        let ret: Ret = serde_json::from_str(r#""any_ok""#).unwrap();
        assert_eq!(ret, Ret::AnyOk);
    }

    fn invalid(edit: impl Fn(&mut Test)) -> String {
        let mut plan = Plan::from_json(EXAMPLE).unwrap();
        edit(&mut plan.tests[0]);
        match Plan::from_json(&plan.to_json()) {
            Err(PlanError::Invalid { problem, .. }) => problem,
            other => panic!("expected an invalid plan, got {other:?}"),
        }
    }

    #[test]
    fn bad_references_are_rejected() {
        assert!(invalid(|t| t.setup.names[0].inode = 5).contains("inode 5"));
        assert!(invalid(|t| t.setup.procs[0].fds[0].fd = 3).contains("fd 3"));
        assert!(invalid(|t| t.setup.names[0].name = "a/b".into()).contains("bad file name"));
        assert!(invalid(|t| t.calls[1].proc = 2).contains("process 2"));
        assert!(invalid(|t| t.calls[0].expect.ret = Ret::Err("ENOPE".into())).contains("ENOPE"));
        assert!(invalid(|t| t.setup.inodes[0].nlink = Some(0)).contains("must count every name"));
        assert!(invalid(|t| t.setup.inodes[0].nlink = Some(99)).contains("at most 16"));
        let bad_version = EXAMPLE.replacen("\"version\": 2", "\"version\": 3", 1);
        assert!(matches!(
            Plan::from_json(&bad_version),
            Err(PlanError::Version { found: 3 })
        ));
        // Version 1 (pairs) is read as it was.
        let v1 = EXAMPLE.replacen("\"version\": 2", "\"version\": 1", 1);
        assert_eq!(Plan::from_json(&v1).unwrap().tests.len(), 1);
    }

    #[test]
    fn three_calls_need_three_cpus() {
        let mut plan = Plan::from_json(EXAMPLE).unwrap();
        plan.cpus = vec![1, 2, 3];
        let third = plan.tests[0].calls[1].clone();
        plan.tests[0].calls.push(third);
        assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
        // Two calls in a three-CPU plan.
        let mut short = plan.clone();
        short.tests[0].calls.pop();
        match Plan::from_json(&short.to_json()) {
            Err(PlanError::Invalid { problem, .. }) => {
                assert!(
                    problem.contains("2 calls, but the plan runs 3"),
                    "{problem}"
                )
            }
            other => panic!("expected an invalid test, got {other:?}"),
        }
        for (cpus, want) in [
            (vec![1, 1, 2], "CPU 1 appears twice"),
            (vec![0, 1, 2], "CPU 0 does the setup"),
            (vec![1, 2, 3, 4], "4 CPUs"),
        ] {
            let mut bad = plan.clone();
            bad.cpus = cpus;
            let e = Plan::from_json(&bad.to_json()).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
