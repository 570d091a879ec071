//! From a POSIX-model test (as `commuter testgen` writes it in `tests.json`) to a guest plan
//! test. The test's parts are read with the shared schema's types (`commuter_posix_format`):
//! the setup is the guest's setup; each [`PosixCall`] becomes a guest operation and each
//! [`PosixResult`] the checks the guest makes. Both translations match every call: a call added
//! to the schema does not compile until it is handled here.
//!
//! Some expectations cannot be checked on a real kernel and are left out, as in the original
//! tool: the numbers of newly opened fds (the guest's processes hold other fds), the page a
//! non-fixed `mmap` picks, times (the model's clock is not Linux's), and the identity of inodes
//! a call created. Link counts are checked: the setup gives each inode the links the model
//! says it has, hidden ones included.

use commuter_guest::plan::{
    Call, Expect, MAX_CALLS, Op, Ret, StatExpect, Test, Whence as GuestWhence,
};
use commuter_posix_format::{
    FormatError, Maybe, Outcome, PAGE, PosixCall, PosixResult, Setup, Stat, Whence, errno_name,
    signal_name,
};
use commuter_tests_format::TestCase;
use thiserror::Error;

/// One test in the model's terms: the three parts of a `tests.json` test the guest needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosixTest {
    pub name: String,
    pub setup: Setup,
    /// Call A, call B (and call C).
    pub calls: Vec<PosixCall>,
    /// The model's result of call A run first, of call B run after A (and of call C after
    /// A and B): the order the guest runs them in.
    pub expected: Vec<PosixResult>,
}

/// Why a test cannot be run on Linux.
#[derive(Debug, Error)]
pub enum TranslateError {
    #[error("{call}: {problem}")]
    Call { call: String, problem: String },
    #[error("setup: {0}")]
    Setup(String),
    #[error("the test is not a POSIX test of 2 to {MAX_CALLS} calls: {0}")]
    Shape(String),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl PosixTest {
    /// The POSIX test a `tests.json` test of two (or three) calls is.
    pub fn from_case(t: &TestCase) -> Result<PosixTest, TranslateError> {
        let n = t.calls.len();
        if !(2..=MAX_CALLS).contains(&n) {
            return Err(TranslateError::Shape(format!(
                "{n} calls, not 2 to {MAX_CALLS}"
            )));
        }
        let result_of = |order: &str, slot: &str, call: &str| {
            let expected = t
                .expected
                .iter()
                .find(|e| e.order == order && e.slot == slot)
                .ok_or_else(|| {
                    TranslateError::Shape(format!("no expected result for order {order}"))
                })?;
            Ok::<_, TranslateError>(PosixResult::from_parts(call, &expected.result)?)
        };
        // The guest runs A, then B, then C: A's result as A alone first, B's after A ("ab"),
        // C's after A and B ("abc").
        let slots: String = ('a'..='z').take(n).collect();
        let mut calls = Vec::with_capacity(n);
        let mut expected = Vec::with_capacity(n);
        for (i, c) in t.calls.iter().enumerate() {
            calls.push(PosixCall::from_parts(&c.call, &c.args)?);
            expected.push(result_of(&slots[..=i], &slots[i..=i], &c.call)?);
        }
        Ok(PosixTest {
            name: t.id.clone(),
            setup: Setup::from_json(&t.setup)?,
            calls,
            expected,
        })
    }
}

pub fn plan_test(t: &PosixTest) -> Result<Test, TranslateError> {
    let inodes = t.setup.inodes.len();
    let call = |i: usize| -> Result<Call, TranslateError> {
        let call = &t.calls[i];
        let fail = |problem: String| TranslateError::Call {
            call: call.name().to_string(),
            problem,
        };
        let op = operation(call).map_err(&fail)?;
        let expect = expectation(call, &t.expected[i], inodes).map_err(&fail)?;
        Ok(Call {
            proc: call.proc(),
            op,
            expect,
        })
    };
    let test = Test {
        name: t.name.clone(),
        setup: t.setup.clone(),
        calls: (0..t.calls.len()).map(call).collect::<Result<_, _>>()?,
    };
    test.validate().map_err(TranslateError::Setup)?;
    Ok(test)
}

/// Durability cannot be traced meaningfully on a RAM file system (as in the paper).
const NOT_ON_LINUX: &str =
    "no Linux mapping: the model's durability extension is not run on a RAM file system";

/// The guest operation: the call's arguments less what only the model uses (the process is
/// the guest call's, `anyfd` only widens what the model accepts).
fn operation(call: &PosixCall) -> Result<Op, String> {
    let op = match call.clone() {
        PosixCall::Open {
            name,
            creat,
            excl,
            trunc,
            proc: _,
            anyfd: _,
        } => Op::Open {
            name,
            creat,
            excl,
            trunc,
        },
        PosixCall::Link { old, new } => Op::Link { old, new },
        PosixCall::Unlink { name } => Op::Unlink { name },
        PosixCall::Rename { src, dst } => Op::Rename { src, dst },
        PosixCall::Stat { name } => Op::Stat { name },
        PosixCall::Fstat { fd, proc: _ } => Op::Fstat { fd },
        PosixCall::Lseek {
            fd,
            off,
            whence,
            proc: _,
        } => Op::Lseek {
            fd,
            off,
            whence: match whence {
                Whence::Set => GuestWhence::Set,
                Whence::Cur => GuestWhence::Cur,
                Whence::End => GuestWhence::End,
                Whence::None => GuestWhence::Invalid,
            },
        },
        PosixCall::Close { fd, proc: _ } => Op::Close { fd },
        PosixCall::Pipe { proc: _ } => Op::Pipe,
        PosixCall::Read { fd, proc: _ } => Op::Read { fd },
        PosixCall::Write { fd, data, proc: _ } => Op::Write { fd, data },
        PosixCall::Pread { fd, off, proc: _ } => Op::Pread { fd, off },
        PosixCall::Pwrite {
            fd,
            off,
            data,
            proc: _,
        } => Op::Pwrite { fd, off, data },
        PosixCall::Mmap {
            anon,
            writable,
            fixed,
            page,
            fd,
            off,
            proc: _,
        } => Op::Mmap {
            page,
            anon,
            writable,
            fixed,
            // An anonymous mapping has no file: the guest ignores both.
            fd: fd.unwrap_or(0),
            off: off.unwrap_or(0),
        },
        PosixCall::Munmap { page, proc: _ } => Op::Munmap { page },
        PosixCall::Mprotect {
            page,
            writable,
            proc: _,
        } => Op::Mprotect { page, writable },
        PosixCall::Memread { page, proc: _ } => Op::Memread { page },
        PosixCall::Memwrite {
            page,
            data,
            proc: _,
        } => Op::Memwrite { page, data },
        PosixCall::Sync | PosixCall::Fsync { .. } | PosixCall::Reboot => {
            return Err(NOT_ON_LINUX.to_string());
        }
    };
    Ok(op)
}

/// Bytes in one page, as the guest's return values count them.
const PAGE_BYTES: i64 = PAGE as i64;

/// The checks of the model's result of `call` that Linux can show.
fn expectation(call: &PosixCall, result: &PosixResult, inodes: usize) -> Result<Expect, String> {
    let mut expect = Expect {
        ret: Ret::AnyOk,
        data: None,
        stat: None,
        fds: None,
    };
    // A failing call returns its errno; a failing memory access is killed by a signal.
    fn errno_or<T>(outcome: &Outcome<T>, ok: impl FnOnce(&T) -> Ret) -> Ret {
        match outcome {
            Outcome::Ok(v) => ok(v),
            Outcome::Err(n) => Ret::Err(errno_name(*n)),
        }
    }
    fn signal_or<T>(outcome: &Outcome<T>, ok: impl FnOnce(&T) -> Ret) -> Ret {
        match outcome {
            Outcome::Ok(v) => ok(v),
            Outcome::Err(n) => Ret::Signal(signal_name(*n)),
        }
    }
    match result {
        // The new fd's number is the kernel's choice.
        PosixResult::Open(o) => expect.ret = errno_or(o, |_| Ret::AnyOk),
        PosixResult::Link(o)
        | PosixResult::Unlink(o)
        | PosixResult::Rename(o)
        | PosixResult::Close(o)
        | PosixResult::Munmap(o)
        | PosixResult::Mprotect(o) => expect.ret = errno_or(o, |()| Ret::Ok(0)),
        PosixResult::Memwrite(o) => expect.ret = signal_or(o, |()| Ret::Ok(0)),
        PosixResult::Write(o) | PosixResult::Pwrite(o) => {
            expect.ret = errno_or(o, |&bytes| Ret::Ok(bytes))
        }
        PosixResult::Lseek(o) => expect.ret = errno_or(o, |&pages| Ret::Ok(pages * PAGE_BYTES)),
        PosixResult::Stat(o) => match o {
            Outcome::Ok(st) => file_stat(&mut expect, st, inodes)?,
            Outcome::Err(n) => expect.ret = Ret::Err(errno_name(*n)),
        },
        PosixResult::Fstat(o) => match o {
            Outcome::Ok(Maybe::Some(st)) => file_stat(&mut expect, st, inodes)?,
            Outcome::Ok(Maybe::None) => {
                expect.ret = Ret::Ok(0);
                expect.stat = Some(StatExpect {
                    fifo: Some(true),
                    ..StatExpect::default()
                });
            }
            Outcome::Err(n) => expect.ret = Ret::Err(errno_name(*n)),
        },
        PosixResult::Read(o) | PosixResult::Pread(o) => match o {
            Outcome::Ok(Maybe::Some(d)) => {
                expect.ret = Ret::Ok(PAGE_BYTES);
                expect.data = Some(*d);
            }
            // End of file: nothing read.
            Outcome::Ok(Maybe::None) => expect.ret = Ret::Ok(0),
            Outcome::Err(n) => expect.ret = Ret::Err(errno_name(*n)),
        },
        PosixResult::Memread(o) => {
            expect.ret = signal_or(o, |_| Ret::Ok(0));
            if let Outcome::Ok(d) = o {
                expect.data = Some(*d);
            }
        }
        // Only a fixed mapping's page is the model's; otherwise the kernel picks.
        PosixResult::Mmap(o) => {
            expect.ret = errno_or(o, |_| match call {
                PosixCall::Mmap {
                    fixed: true, page, ..
                } => Ret::Ok(i64::from(*page)),
                _ => Ret::AnyOk,
            })
        }
        // The two new fds' numbers are the kernel's choice.
        PosixResult::Pipe(_) => expect.ret = Ret::AnyOk,
        PosixResult::Sync(()) | PosixResult::Fsync(_) | PosixResult::Reboot(()) => {
            return Err(NOT_ON_LINUX.to_string());
        }
    }
    Ok(expect)
}

/// A file's stat: the inode where it is one of the setup's, its size and link count.
fn file_stat(expect: &mut Expect, st: &Stat, inodes: usize) -> Result<(), String> {
    expect.ret = Ret::Ok(0);
    let size = u64::try_from(st.size * PAGE_BYTES)
        .map_err(|_| format!("the model's size {} is negative", st.size))?;
    let nlink = u64::try_from(st.nlink)
        .map_err(|_| format!("the model's link count {} is negative", st.nlink))?;
    expect.stat = Some(StatExpect {
        inode: st.setup_inode().filter(|&i| i < inodes),
        size: Some(size),
        nlink: Some(nlink),
        fifo: Some(false),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    fn test(
        calls: [(&str, Json); 2],
        expected: [Json; 2],
        setup: Json,
    ) -> Result<Test, TranslateError> {
        let call = |i: usize| PosixCall::from_parts(calls[i].0, &calls[i].1);
        let result = |i: usize| PosixResult::from_parts(calls[i].0, &expected[i]);
        plan_test(&PosixTest {
            name: "t".into(),
            setup: Setup::from_json(&setup)?,
            calls: vec![call(0)?, call(1)?],
            expected: vec![result(0)?, result(1)?],
        })
    }

    fn setup_one_file() -> Json {
        json!({"inodes": [{"data": [3, 4]}], "names": [{"name": "__f0", "inode": 0}],
               "pipes": [], "procs": [{"fds": [{"fd": 10, "file": {"inode": 0, "off": 4096}}], "maps": []},
                                       {"fds": [], "maps": []}]})
    }

    #[test]
    fn stat_and_read_check_what_linux_can_show() {
        let t = test(
            [("stat", json!({"name": "__f0"})), ("read", json!({"proc": 0, "fd": 10}))],
            [
                json!({"ok": {"inum": "Inum0", "size": 2, "nlink": 7, "atime": 1, "mtime": 1, "ctime": 1}}),
                json!({"ok": {"some": 4}}),
            ],
            setup_one_file(),
        )
        .expect("translates");
        let stat = t.calls[0].expect.stat.clone().expect("stat checked");
        assert_eq!(
            (stat.inode, stat.size, stat.nlink),
            (Some(0), Some(8192), Some(7))
        );
        assert_eq!(t.calls[1].expect.ret, Ret::Ok(4096));
        assert_eq!(t.calls[1].expect.data, Some(4));
        assert_eq!(t.calls[1].op, Op::Read { fd: 10 });
    }

    #[test]
    fn errors_signals_and_unpredictable_values() {
        let t = test(
            [("open", json!({"proc": 1, "name": "__f1", "creat": true, "excl": false, "trunc": false, "anyfd": false})),
             ("memread", json!({"proc": 0, "page": 2}))],
            [json!({"ok": 0}), json!({"err": 11})],
            setup_one_file(),
        )
        .expect("translates");
        assert_eq!(t.calls[0].proc, 1);
        assert_eq!(t.calls[0].expect.ret, Ret::AnyOk);
        assert_eq!(t.calls[1].expect.ret, Ret::Signal("SIGSEGV".into()));
        let t = test(
            [
                ("unlink", json!({"name": "__f3"})),
                (
                    "lseek",
                    json!({"proc": 0, "fd": 10, "off": 0, "whence": "none"}),
                ),
            ],
            [json!({"err": 2}), json!({"err": 22})],
            setup_one_file(),
        )
        .expect("translates");
        assert_eq!(t.calls[0].expect.ret, Ret::Err("ENOENT".into()));
        assert_eq!(t.calls[1].expect.ret, Ret::Err("EINVAL".into()));
    }

    #[test]
    fn untranslatable_tests_say_why() {
        let e = test(
            [("sync", json!(null)), ("stat", json!({"name": "__f0"}))],
            [json!(null), json!({"err": 2})],
            setup_one_file(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("sync:"), "{e}");
        let e = test(
            [
                ("stat", json!({"name": "__f0"})),
                ("stat", json!({"name": "__f0"})),
            ],
            [json!({"err": 2}), json!({"err": 2})],
            json!({"names": [{"name": "__f0", "inode": 4}]}),
        )
        .unwrap_err();
        assert!(matches!(e, TranslateError::Setup(_)), "{e}");
        let e = test(
            [
                ("unlink", json!({"name": "__f0"})),
                ("stat", json!({"name": "__f0"})),
            ],
            [json!({"ok": {"some": 4}}), json!({"err": 2})],
            setup_one_file(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("`unlink` result"), "{e}");
    }
}
