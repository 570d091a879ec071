//! [`PosixAdapter`]: runs commuter's POSIX tests on any [`Posix`] implementation through
//! `commuter-harness` (written once for both implementations).
//!
//! Calls are parsed with the shared schema (`commuter-posix-format`'s [`PosixCall`]); a call's
//! raw outcome ([`Output`], no allocation inside the traced call) becomes a [`PosixResult`]
//! afterwards. Results are compared as the model fixes them ([`PosixAdapter::accepts`]): the
//! model leaves to the implementation the times (its clock), the numbers `open` and `pipe`
//! return (the model's fd results are not in the setup's fd numbering), the identity of an
//! inode a call created (any number that is no setup inode's), and the page a non-fixed `mmap`
//! picks (a fixed one must be the page asked for). Everything else must be equal.

use crate::{
    Backing, Errno, Mmap, OpenFlags, PAGE, PageBuf, Posix, StatBuf, Whence, data_value, page_of,
};
use commuter_harness::{Adapter, AdapterError, TestCase};
use commuter_posix_format::{
    Maybe, Outcome, PipeFds, PosixCall, PosixResult, Setup, Stat, Whence as W,
};
use serde_json::Value as Json;

/// An implementation of the POSIX model as a harness adapter.
pub struct PosixAdapter<F: Posix>(pub F);

/// A call's raw outcome.
#[derive(Debug)]
pub enum Output {
    Open(Result<i32, Errno>),
    Unit(&'static str, Result<(), Errno>),
    Stat(Result<StatBuf, Errno>),
    Fstat(Result<Option<StatBuf>, Errno>),
    Lseek(Result<u64, Errno>),
    Pipe(Result<(i32, i32), Errno>),
    /// `read`/`pread`: bytes read and the page's data value (`None`: not one value).
    Read(&'static str, Result<(usize, Option<u8>), Errno>),
    /// `write`/`pwrite`: bytes written.
    Write(&'static str, Result<usize, Errno>),
    Mmap(Result<u64, Errno>),
    Memread(Result<Option<u8>, Errno>),
}

/// The durability extension's calls: an in-memory file system has no disk to make durable.
const NO_DISK: &str = "sync, fsync and reboot (the model's durability extension): this in-memory implementation has no disk; generate tests without them (commuter testgen -m posix -f '!sync,!fsync,!reboot')";

fn whence(w: W) -> Whence {
    match w {
        W::Set => Whence::Set,
        W::Cur => Whence::Cur,
        W::End => Whence::End,
        W::None => Whence::Invalid,
    }
}

fn stat_of(st: &StatBuf) -> Stat {
    Stat {
        inum: format!("Inum{}", st.ino),
        size: (st.size / PAGE) as i64,
        nlink: st.nlink as i64,
        atime: st.atime as i64,
        mtime: st.mtime as i64,
        ctime: st.ctime as i64,
    }
}

fn outcome<T, U>(r: &Result<T, Errno>, f: impl FnOnce(&T) -> U) -> Outcome<U> {
    match r {
        Ok(v) => Outcome::Ok(f(v)),
        Err(e) => Outcome::Err(*e),
    }
}

/// `read`'s outcome in the model's terms: `None` at end of file; a page that is not one data
/// value (which no correct implementation returns) becomes an errno no test expects.
fn read_result(r: &Result<(usize, Option<u8>), Errno>) -> Outcome<Maybe<u8>> {
    match r {
        Ok((0, _)) => Outcome::Ok(Maybe::None),
        Ok((_, Some(v))) => Outcome::Ok(Maybe::Some(*v)),
        Ok((_, None)) => Outcome::Err(-1),
        Err(e) => Outcome::Err(*e),
    }
}

impl Output {
    /// The result in the model's terms.
    pub fn result(&self) -> PosixResult {
        match self {
            Output::Open(r) => PosixResult::Open(outcome(r, |fd| i64::from(*fd))),
            Output::Unit(call, r) => {
                let o = outcome(r, |_| ());
                match *call {
                    "link" => PosixResult::Link(o),
                    "unlink" => PosixResult::Unlink(o),
                    "rename" => PosixResult::Rename(o),
                    "close" => PosixResult::Close(o),
                    "munmap" => PosixResult::Munmap(o),
                    "mprotect" => PosixResult::Mprotect(o),
                    _ => PosixResult::Memwrite(o),
                }
            }
            Output::Stat(r) => PosixResult::Stat(outcome(r, stat_of)),
            Output::Fstat(r) => PosixResult::Fstat(outcome(r, |s| match s {
                Some(s) => Maybe::Some(stat_of(s)),
                None => Maybe::None,
            })),
            Output::Lseek(r) => PosixResult::Lseek(outcome(r, |off| (off / PAGE) as i64)),
            // `pipe` cannot fail in the model; a failure here (no fd left) is an fd of -errno.
            Output::Pipe(r) => PosixResult::Pipe(match r {
                Ok((read, write)) => PipeFds {
                    read: i64::from(*read),
                    write: i64::from(*write),
                },
                Err(e) => PipeFds {
                    read: -i64::from(*e),
                    write: -i64::from(*e),
                },
            }),
            Output::Read(call, r) => {
                let o = read_result(r);
                if *call == "read" {
                    PosixResult::Read(o)
                } else {
                    PosixResult::Pread(o)
                }
            }
            Output::Write(call, r) => {
                let o = outcome(r, |n| *n as i64);
                if *call == "write" {
                    PosixResult::Write(o)
                } else {
                    PosixResult::Pwrite(o)
                }
            }
            Output::Mmap(r) => PosixResult::Mmap(outcome(r, |p| format!("Va{p}"))),
            Output::Memread(r) => PosixResult::Memread(match r {
                Ok(Some(v)) => Outcome::Ok(*v),
                Ok(None) => Outcome::Err(-1),
                Err(e) => Outcome::Err(*e),
            }),
        }
    }
}

/// Performs `call` on `fs`.
pub fn perform<F: Posix>(fs: &F, call: &PosixCall) -> Output {
    let mut buf: PageBuf = [0; crate::PAGE_BYTES];
    match call {
        PosixCall::Open {
            proc,
            name,
            creat,
            excl,
            trunc,
            anyfd: _,
        } => Output::Open(fs.open(
            *proc,
            name,
            OpenFlags {
                creat: *creat,
                excl: *excl,
                trunc: *trunc,
            },
        )),
        PosixCall::Link { old, new } => Output::Unit("link", fs.link(old, new)),
        PosixCall::Unlink { name } => Output::Unit("unlink", fs.unlink(name)),
        PosixCall::Rename { src, dst } => Output::Unit("rename", fs.rename(src, dst)),
        PosixCall::Stat { name } => Output::Stat(fs.stat(name)),
        PosixCall::Fstat { proc, fd } => Output::Fstat(fs.fstat(*proc, *fd)),
        PosixCall::Lseek {
            proc,
            fd,
            off,
            whence: w,
        } => Output::Lseek(fs.lseek(*proc, *fd, *off, whence(*w))),
        PosixCall::Close { proc, fd } => Output::Unit("close", fs.close(*proc, *fd)),
        PosixCall::Pipe { proc } => Output::Pipe(fs.pipe(*proc)),
        PosixCall::Read { proc, fd } => Output::Read(
            "read",
            fs.read(*proc, *fd, &mut buf).map(|n| (n, data_value(&buf))),
        ),
        PosixCall::Write { proc, fd, data } => {
            Output::Write("write", fs.write(*proc, *fd, &page_of(*data)))
        }
        PosixCall::Pread { proc, fd, off } => Output::Read(
            "pread",
            fs.pread(*proc, *fd, *off, &mut buf)
                .map(|n| (n, data_value(&buf))),
        ),
        PosixCall::Pwrite {
            proc,
            fd,
            off,
            data,
        } => Output::Write("pwrite", fs.pwrite(*proc, *fd, *off, &page_of(*data))),
        PosixCall::Mmap {
            proc,
            anon,
            writable,
            fixed,
            page,
            fd,
            off,
        } => Output::Mmap(fs.mmap(
            *proc,
            Mmap {
                backing: if *anon {
                    Backing::Anon
                } else {
                    Backing::File {
                        fd: fd.unwrap_or(-1),
                        off: off.unwrap_or(0),
                    }
                },
                writable: *writable,
                fixed: fixed.then_some(u64::from(*page)),
            },
        )),
        PosixCall::Munmap { proc, page } => {
            Output::Unit("munmap", fs.munmap(*proc, u64::from(*page)))
        }
        PosixCall::Mprotect {
            proc,
            page,
            writable,
        } => Output::Unit("mprotect", fs.mprotect(*proc, u64::from(*page), *writable)),
        PosixCall::Memread { proc, page } => Output::Memread(
            fs.memread(*proc, u64::from(*page), &mut buf)
                .map(|()| data_value(&buf)),
        ),
        PosixCall::Memwrite { proc, page, data } => Output::Unit(
            "memwrite",
            fs.memwrite(*proc, u64::from(*page), &page_of(*data)),
        ),
        // Refused by `parse_call`.
        PosixCall::Sync | PosixCall::Fsync { .. } | PosixCall::Reboot => {
            Output::Unit("unsupported", Err(-1))
        }
    }
}

/// A result with what the model leaves to the implementation blanked out (see the module
/// documentation); `setup_inodes` is how many inodes the test's setup has.
pub fn normalize(r: &PosixResult, setup_inodes: usize) -> PosixResult {
    let stat = |s: &Stat| {
        let known = s
            .setup_inode()
            .filter(|i| *i < setup_inodes)
            .map_or_else(|| "new".to_string(), |i| format!("Inum{i}"));
        Stat {
            inum: known,
            atime: 0,
            mtime: 0,
            ctime: 0,
            ..s.clone()
        }
    };
    match r {
        PosixResult::Open(Outcome::Ok(fd)) if *fd >= 0 => PosixResult::Open(Outcome::Ok(0)),
        PosixResult::Pipe(p) if p.read >= 0 && p.write >= 0 && p.read != p.write => {
            PosixResult::Pipe(PipeFds { read: 0, write: 1 })
        }
        PosixResult::Mmap(Outcome::Ok(_)) => PosixResult::Mmap(Outcome::Ok("Va".into())),
        PosixResult::Stat(Outcome::Ok(s)) => PosixResult::Stat(Outcome::Ok(stat(s))),
        PosixResult::Fstat(Outcome::Ok(Maybe::Some(s))) => {
            PosixResult::Fstat(Outcome::Ok(Maybe::Some(stat(s))))
        }
        other => other.clone(),
    }
}

/// Whether `actual` is a result the model allows for `call`, given its expected results.
pub fn accepts(
    call: &PosixCall,
    setup_inodes: usize,
    actual: &PosixResult,
    expected: &[PosixResult],
) -> bool {
    if let (
        PosixCall::Mmap {
            fixed: true, page, ..
        },
        PosixResult::Mmap(Outcome::Ok(label)),
    ) = (call, actual)
    {
        if *label != format!("Va{page}") {
            return false;
        }
    }
    let a = normalize(actual, setup_inodes);
    expected.iter().any(|e| normalize(e, setup_inodes) == a)
}

impl<F: Posix> Adapter for PosixAdapter<F> {
    const MODEL: &'static str = "posix";
    const NAME: &'static str = F::NAME;
    type Call = PosixCall;
    type Output = Output;

    fn setup(test: &TestCase) -> Result<Self, AdapterError> {
        let setup =
            Setup::from_json(&test.setup).map_err(|e| AdapterError::setup(e.to_string()))?;
        F::from_setup(&setup)
            .map(PosixAdapter)
            .map_err(|e| match e {
                crate::BuildError::Limit { .. } => AdapterError::Unsupported(e.to_string()),
                crate::BuildError::Invalid(m) => AdapterError::setup(m),
            })
    }

    fn parse_call(call: &str, args: &Json) -> Result<PosixCall, AdapterError> {
        let c = PosixCall::from_parts(call, args).map_err(|e| {
            if commuter_posix_format::CALLS.contains(&call) {
                AdapterError::args(call, e.to_string())
            } else {
                AdapterError::unknown_call(call, &commuter_posix_format::CALLS[..18])
            }
        })?;
        match c {
            PosixCall::Sync | PosixCall::Fsync { .. } | PosixCall::Reboot => {
                Err(AdapterError::Unsupported(NO_DISK.into()))
            }
            c if c.proc() > 1 => Err(AdapterError::args(call, "proc must be 0 or 1")),
            c => Ok(c),
        }
    }

    fn call(&self, call: &PosixCall) -> Output {
        perform(&self.0, call)
    }

    fn result(output: &Output) -> Json {
        // The schema is plain data: serialising cannot fail.
        output.result().result_json().unwrap_or(Json::Null)
    }

    fn accepts(test: &TestCase, slot: usize, actual: &Json, expected: &[Json]) -> bool {
        let Some(c) = test.calls.get(slot) else {
            return false;
        };
        let (Ok(call), Ok(actual)) = (
            PosixCall::from_parts(&c.call, &c.args),
            PosixResult::from_parts(&c.call, actual),
        ) else {
            return false;
        };
        let inodes = Setup::from_json(&test.setup).map_or(0, |s| s.inodes.len());
        let expected: Vec<PosixResult> = expected
            .iter()
            .filter_map(|e| PosixResult::from_parts(&c.call, e).ok())
            .collect();
        accepts(&call, inodes, &actual, &expected)
    }
}
