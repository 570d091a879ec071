//! The POSIX test schema: one typed definition of what a POSIX-model test is, shared by the
//! model (`commuter-models`, which concretizes symbolic tests into these types), the Linux
//! target (`commuter-targets`, which translates them into guest operations and checks) and the
//! guest (`commuter-guest`, whose plan reuses the [`setup`] types and the errno and signal
//! tables).
//!
//! In `tests.json` a POSIX test keeps the generic shape of `commuter-tests-format`: a `setup`,
//! per call a `call` name and its `args`, per order and call a `result`, all JSON values. This
//! crate gives them types: [`Setup`], [`PosixCall`] (call name and arguments, serialised as the
//! `call`/`args` pair) and [`PosixResult`] (call name and the model's result, serialised as the
//! `call`/`result` pair). [`PosixCall::from_parts`] and [`PosixResult::from_parts`] read a test's
//! JSON fields back, with errors that name the call.
//!
//! Plain serde data with no Z3 and no system dependency: it builds for the guest's static target.
//!
//! # Adding a POSIX call: the steps
//!
//! The compiler leads through all but the first and the last step: every place below matches
//! exhaustively on [`PosixCall`] or [`PosixResult`].
//!
//! 1. The model (`crates/models/src/posix/`): the call's function and argument struct, and its
//!    registration in `PosixModel::calls` under a new name.
//! 2. Here: the name in [`CALLS`], a [`PosixCall`] variant with the concrete arguments, a
//!    [`PosixResult`] variant with the model's result in concrete terms, and both in the
//!    round-trip tests. [`PosixCall::name`] and [`PosixResult::name`] then fail to compile
//!    until they name it.
//! 3. The model's concretization (`crates/models/src/posix/concrete.rs`): build the new
//!    [`PosixCall`] variant from the symbolic arguments (`concrete_call`) and the new
//!    [`PosixResult`] variant from the model's result type (`concrete_posix_result`, which
//!    panics on a result type it does not read, so `cargo test -p commuter-testgen` finds a
//!    mismatch). The test `every_model_call_has_a_schema` there checks the list of names.
//! 4. The Linux target (`crates/targets/src/posix.rs`): `operation` (which guest operation
//!    runs it, or an error saying Linux cannot) and `expectation` (which of the model's result
//!    Linux can show) do not compile until they handle the new variants.
//! 5. The guest, if the call is a new system call: an `Op` variant in
//!    `crates/guest/src/plan.rs` and its execution in `crates/guest/src/bin/init/calls.rs`
//!    (again an exhaustive `match`).
//! 6. The C suite (`crates/emit-c/src/test.rs`): `emit_call` and `expectation` do not compile
//!    until they handle the new variants; a new system call also needs its operation in the
//!    runtime (`crates/emit-c/c/commuter_posix.c`).
//! 7. A test on the real kernel: `crates/targets/tests/linux_calls.rs`.

pub mod call;
pub mod result;
pub mod setup;

pub use call::{PosixCall, Whence};
pub use result::{Maybe, Outcome, PipeFds, PosixResult, Stat};
pub use setup::{Backing, Fd, FdTarget, Inode, Map, Name, Pipe, Proc, Setup};

use serde::Deserialize;
use thiserror::Error;

/// Bytes in one page, the unit of file data, offsets and mappings in the model: `read`,
/// `write`, `pread` and `pwrite` move one page, a data value fills one page.
pub const PAGE: u64 = 4096;

/// The model's calls, in the model's order (the order of call sets in every report).
/// `sync`, `fsync` and `reboot` are the model's durability extension, not run on Linux.
pub const CALLS: &[&str] = &[
    "open", "link", "unlink", "rename", "stat", "fstat", "lseek", "close", "pipe", "read", "write",
    "pread", "pwrite", "mmap", "munmap", "mprotect", "memread", "memwrite", "sync", "fsync",
    "reboot",
];

/// Linux errno values (x86-64, asm-generic/errno-base.h) that models and plans use.
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EFAULT: i32 = 14;
    pub const EEXIST: i32 = 17;
    pub const ENODEV: i32 = 19;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EMFILE: i32 = 24;
    pub const ESPIPE: i32 = 29;
    pub const EPIPE: i32 = 32;
}

/// Signals a memory access may end with (the `Err` of `memread`/`memwrite`).
pub mod signal {
    pub const SIGBUS: i32 = 7;
    pub const SIGSEGV: i32 = 11;
}

/// Errno names a test or plan may use, with their numbers.
pub const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", errno::EPERM),
    ("ENOENT", errno::ENOENT),
    ("EBADF", errno::EBADF),
    ("EAGAIN", errno::EAGAIN),
    ("ENOMEM", errno::ENOMEM),
    ("EACCES", errno::EACCES),
    ("EFAULT", errno::EFAULT),
    ("EEXIST", errno::EEXIST),
    ("ENODEV", errno::ENODEV),
    ("ENOTDIR", errno::ENOTDIR),
    ("EISDIR", errno::EISDIR),
    ("EINVAL", errno::EINVAL),
    ("EMFILE", errno::EMFILE),
    ("ESPIPE", errno::ESPIPE),
    ("EPIPE", errno::EPIPE),
];

/// Signal names a test or plan may use, with their numbers.
pub const SIGNALS: &[(&str, i32)] = &[("SIGBUS", signal::SIGBUS), ("SIGSEGV", signal::SIGSEGV)];

/// The name of an errno number (or `E<number>`).
pub fn errno_name(errno: i32) -> String {
    lookup_name(ERRNOS, errno).unwrap_or_else(|| format!("E{errno}"))
}

/// The name of a signal number (or `SIG<number>`).
pub fn signal_name(sig: i32) -> String {
    lookup_name(SIGNALS, sig).unwrap_or_else(|| format!("SIG{sig}"))
}

fn lookup_name(table: &[(&str, i32)], n: i32) -> Option<String> {
    table
        .iter()
        .find(|(_, v)| *v == n)
        .map(|(k, _)| k.to_string())
}

/// Why a part of a `tests.json` test is not a POSIX test of this schema.
#[derive(Debug, Error)]
pub enum FormatError {
    #[error("the setup is not a POSIX setup: {0}")]
    Setup(#[source] serde_json::Error),
    #[error("`{call}` arguments are not those of a POSIX call: {source}")]
    Args {
        call: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{call}` result is not a POSIX result of that call: {source}")]
    Result {
        call: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write a POSIX test part as JSON: {0}")]
    Write(#[source] serde_json::Error),
}

impl Setup {
    /// The setup of a `tests.json` test.
    pub fn from_json(setup: &serde_json::Value) -> Result<Setup, FormatError> {
        Setup::deserialize(setup).map_err(FormatError::Setup)
    }

    /// The setup as `tests.json`'s `setup` field.
    pub fn to_json(&self) -> Result<serde_json::Value, FormatError> {
        serde_json::to_value(self).map_err(FormatError::Write)
    }
}

#[cfg(test)]
mod tests;
