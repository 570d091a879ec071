//! End-to-end check of the guest's implementation of the POSIX-model calls on the real kernel:
//! every call returns what the plan expects (results only; conflicts are `linux_smoke`'s job).
//!
//! Same prerequisites as `linux_smoke` (scripts/install-linux-target); builds the plugin and
//! the guest with cargo, then boots once (about 6 s of VM time).

use commuter_guest::plan::*;
use commuter_targets::linux::{self, LinuxConfig};
mod common;

use common::{build_guest, build_plugin, repo};
use std::path::PathBuf;

fn exp(ret: Ret) -> Expect {
    Expect {
        ret,
        data: None,
        stat: None,
        fds: None,
    }
}

fn ok(v: i64) -> Expect {
    exp(Ret::Ok(v))
}

fn err(e: &str) -> Expect {
    exp(Ret::Err(e.into()))
}

fn with_data(mut e: Expect, d: u8) -> Expect {
    e.data = Some(d);
    e
}

fn file(fd: i32, inode: usize, off: u64) -> Fd {
    Fd {
        fd,
        target: FdTarget::File { inode, off },
    }
}

fn pipe_end(fd: i32, pipe: usize, write: bool) -> Fd {
    Fd {
        fd,
        target: FdTarget::Pipe { pipe, write },
    }
}

fn map(page: u32, backing: Backing, writable: bool) -> Map {
    Map {
        page,
        backing,
        writable,
        populated: true,
    }
}

/// Inode 0: pages [1, 2] named f0; inode 1: page [3] named f1; pipe 0 holds [4];
/// process 0: fd 10 -> inode 0 at 0, fd 20/21 -> pipe 0, page 0 anon(5) writable,
/// page 1 inode 1 beyond its end; process 1: fd 10 -> inode 1 at 4096, page 0 anon(6) read-only.
/// Inode 1 has three links: f1 and two from outside the test's directory.
fn setup() -> Setup {
    Setup {
        inodes: vec![
            Inode {
                data: vec![1, 2],
                nlink: None,
            },
            Inode {
                data: vec![3],
                nlink: Some(3),
            },
        ],
        names: vec![
            Name {
                name: "f0".into(),
                inode: 0,
            },
            Name {
                name: "f1".into(),
                inode: 1,
            },
        ],
        pipes: vec![Pipe { data: vec![4] }],
        procs: vec![
            Proc {
                fds: vec![
                    file(10, 0, 0),
                    pipe_end(20, 0, false),
                    pipe_end(21, 0, true),
                ],
                maps: vec![
                    map(0, Backing::Anon { data: 5 }, true),
                    map(
                        1,
                        Backing::File {
                            inode: 1,
                            off: 4096,
                        },
                        true,
                    ),
                ],
            },
            Proc {
                fds: vec![file(10, 1, 4096)],
                maps: vec![map(0, Backing::Anon { data: 6 }, false)],
            },
        ],
    }
}

fn name(s: &str) -> String {
    s.into()
}

/// (name, call A in process 0, call B in process 1)
type Case = (&'static str, (Op, Expect), (Op, Expect));

fn cases() -> Vec<Case> {
    let stat1 = StatExpect {
        inode: Some(1),
        size: Some(4096),
        nlink: Some(3),
        fifo: None,
    };
    let fstat0 = StatExpect {
        inode: Some(0),
        size: Some(8192),
        nlink: Some(1),
        fifo: Some(false),
    };
    let fifo = StatExpect {
        fifo: Some(true),
        ..StatExpect::default()
    };
    let mut pipe_ok = ok(0);
    pipe_ok.fds = Some([3, 4]);
    vec![
        (
            "link-unlink",
            (
                Op::Link {
                    old: name("f0"),
                    new: name("g"),
                },
                ok(0),
            ),
            (Op::Unlink { name: name("f1") }, ok(0)),
        ),
        (
            "link-exists",
            (
                Op::Link {
                    old: name("f0"),
                    new: name("f1"),
                },
                err("EEXIST"),
            ),
            (Op::Unlink { name: name("nope") }, err("ENOENT")),
        ),
        (
            "rename-stat",
            (
                Op::Rename {
                    src: name("f0"),
                    dst: name("g"),
                },
                ok(0),
            ),
            (
                Op::Stat { name: name("f1") },
                Expect {
                    stat: Some(stat1),
                    ..ok(0)
                },
            ),
        ),
        (
            "fstat-lseek",
            (
                Op::Fstat { fd: 10 },
                Expect {
                    stat: Some(fstat0),
                    ..ok(0)
                },
            ),
            (
                Op::Lseek {
                    fd: 10,
                    off: 0,
                    whence: Whence::Cur,
                },
                ok(4096),
            ),
        ),
        (
            "fstat-pipe-lseek-end",
            (
                Op::Fstat { fd: 20 },
                Expect {
                    stat: Some(fifo),
                    ..ok(0)
                },
            ),
            (
                Op::Lseek {
                    fd: 10,
                    off: -4096,
                    whence: Whence::End,
                },
                ok(0),
            ),
        ),
        (
            "lseek-pipe-close",
            (
                Op::Lseek {
                    fd: 20,
                    off: 0,
                    whence: Whence::Set,
                },
                err("ESPIPE"),
            ),
            (Op::Close { fd: 12 }, err("EBADF")),
        ),
        (
            "close-open",
            (Op::Close { fd: 10 }, ok(0)),
            (
                Op::Open {
                    name: name("f0"),
                    creat: false,
                    excl: false,
                    trunc: false,
                },
                ok(3),
            ),
        ),
        (
            "open-errors",
            (
                Op::Open {
                    name: name("f1"),
                    creat: true,
                    excl: true,
                    trunc: false,
                },
                err("EEXIST"),
            ),
            (
                Op::Open {
                    name: name("x"),
                    creat: false,
                    excl: false,
                    trunc: false,
                },
                err("ENOENT"),
            ),
        ),
        (
            "pipe-pipe",
            (Op::Pipe, pipe_ok.clone()),
            (Op::Pipe, pipe_ok),
        ),
        (
            "read-read",
            (Op::Read { fd: 10 }, with_data(ok(4096), 1)),
            (Op::Read { fd: 10 }, ok(0)),
        ),
        (
            "pipe-read-write",
            (Op::Read { fd: 20 }, with_data(ok(4096), 4)),
            (Op::Write { fd: 10, data: 9 }, ok(4096)),
        ),
        (
            "pread-pwrite",
            (Op::Pread { fd: 10, off: 4096 }, with_data(ok(4096), 2)),
            (
                Op::Pwrite {
                    fd: 10,
                    off: 0,
                    data: 7,
                },
                ok(4096),
            ),
        ),
        (
            "pipe-write-pread",
            (Op::Write { fd: 21, data: 8 }, ok(4096)),
            (Op::Pread { fd: 10, off: 0 }, with_data(ok(4096), 3)),
        ),
        (
            "mmap-mmap",
            (
                Op::Mmap {
                    page: 2,
                    anon: true,
                    writable: true,
                    fixed: true,
                    fd: 0,
                    off: 0,
                },
                ok(2),
            ),
            (
                Op::Mmap {
                    page: 3,
                    anon: false,
                    writable: false,
                    fixed: true,
                    fd: 10,
                    off: 0,
                },
                ok(3),
            ),
        ),
        (
            "mmap-badfd-munmap",
            (
                Op::Mmap {
                    page: 2,
                    anon: false,
                    writable: true,
                    fixed: true,
                    fd: 13,
                    off: 0,
                },
                err("EBADF"),
            ),
            (Op::Munmap { page: 0 }, ok(0)),
        ),
        (
            "mprotect",
            (
                Op::Mprotect {
                    page: 0,
                    writable: false,
                },
                ok(0),
            ),
            (
                Op::Mprotect {
                    page: 5,
                    writable: true,
                },
                err("ENOMEM"),
            ),
        ),
        (
            "memwrite-memread",
            (Op::Memwrite { page: 0, data: 9 }, ok(0)),
            (Op::Memread { page: 0 }, with_data(ok(0), 6)),
        ),
        (
            "memfaults",
            (Op::Memread { page: 1 }, exp(Ret::Signal("SIGBUS".into()))),
            (
                Op::Memwrite { page: 0, data: 1 },
                exp(Ret::Signal("SIGSEGV".into())),
            ),
        ),
        (
            "memread-unmapped",
            (Op::Memread { page: 9 }, exp(Ret::Signal("SIGSEGV".into()))),
            (Op::Getpid, exp(Ret::AnyOk)),
        ),
    ]
}

/// Both calls in process 0 (two threads on two CPUs): they share the fd table.
fn same_process() -> Test {
    Test {
        name: "same-process-close-fstat".into(),
        setup: setup(),
        calls: vec![
            Call {
                proc: 0,
                op: Op::Close { fd: 10 },
                expect: ok(0),
            },
            Call {
                proc: 0,
                op: Op::Fstat { fd: 10 },
                expect: err("EBADF"),
            },
        ],
    }
}

#[test]
fn every_call_returns_what_the_plan_expects() {
    let tests: Vec<Test> = cases()
        .into_iter()
        .map(|(n, a, b)| Test {
            name: n.into(),
            setup: setup(),
            calls: vec![
                Call {
                    proc: 0,
                    op: a.0,
                    expect: a.1,
                },
                Call {
                    proc: 1,
                    op: b.0,
                    expect: b.1,
                },
            ],
        })
        .chain(std::iter::once(same_process()))
        .collect();
    let plan = Plan {
        version: PLAN_VERSION,
        cpus: vec![1, 2],
        tests,
    };
    let plugin = build_plugin().unwrap_or_else(|e| panic!("{e}"));
    let guest = build_guest().unwrap_or_else(|e| panic!("{e}"));
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("linux-calls");
    let cfg = LinuxConfig::locate(&repo(), plugin, guest, work).unwrap_or_else(|e| panic!("{e}"));
    let run = linux::run(&cfg, &plan).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = Vec::new();
    for t in &run.tests {
        failures.extend(t.errors.iter().map(|e| format!("{}: {e}", t.name)));
        for (i, c) in t.calls.iter().enumerate() {
            match c {
                Some(c) if c.ok => {}
                Some(c) => failures.push(format!("{} call {i}: {:?}", t.name, c.mismatches)),
                None => failures.push(format!("{} call {i}: no result", t.name)),
            }
        }
        let traced = t
            .trace
            .as_ref()
            .is_some_and(|r| r.errors.is_empty() && r.calls.len() == 2);
        if !traced {
            failures.push(format!("{}: no clean trace record: {:?}", t.name, t.trace));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
