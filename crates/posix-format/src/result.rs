//! A POSIX call's result in the model's terms, as the model's concretization writes it in a
//! test's expected results: the call's name (from the test's call) and the `result` field.
//!
//! The JSON is the model's own: `{"ok": value}` or `{"err": errno}` for calls that may fail,
//! `{"some": value}` or `"none"` for an optional value, a struct as an object of its fields.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::FormatError;

/// Success with a value, or failure with an errno (for `memread`/`memwrite`: a signal number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<T> {
    Ok(T),
    Err(i32),
}

/// A value that may be absent (`read` at end of file, `fstat` of a pipe).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Maybe<T> {
    Some(T),
    None,
}

/// What `stat` and `fstat` of a file return, in the model's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    /// The model's label of the inode: `Inum<i>` is the setup's `inodes[i]` (a label past the
    /// setup's inodes is one a call created).
    pub inum: String,
    /// Length in pages.
    pub size: i64,
    pub nlink: i64,
    /// Times on the model's clock (not comparable with a kernel's).
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

impl Stat {
    /// The index into the setup's inodes this stat is of, when the label names one.
    pub fn setup_inode(&self) -> Option<usize> {
        self.inum.strip_prefix("Inum")?.parse().ok()
    }
}

/// The two fds `pipe` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeFds {
    pub read: i64,
    pub write: i64,
}

/// One call's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// Adjacently tagged: the tag is the test call's name, the content an expected `result`.
#[serde(tag = "call", content = "result", rename_all = "snake_case")]
pub enum PosixResult {
    /// The new fd.
    Open(Outcome<i64>),
    Link(Outcome<()>),
    Unlink(Outcome<()>),
    Rename(Outcome<()>),
    Stat(Outcome<Stat>),
    /// `None` for a pipe.
    Fstat(Outcome<Maybe<Stat>>),
    /// The new offset, in pages.
    Lseek(Outcome<i64>),
    Close(Outcome<()>),
    /// `pipe` cannot fail in the model.
    Pipe(PipeFds),
    /// The data value read, `None` at end of file.
    Read(Outcome<Maybe<u8>>),
    /// Bytes written.
    Write(Outcome<i64>),
    /// The data value read, `None` at end of file.
    Pread(Outcome<Maybe<u8>>),
    /// Bytes written.
    Pwrite(Outcome<i64>),
    /// The model's label of the mapped page (`Va<i>`).
    Mmap(Outcome<String>),
    Munmap(Outcome<()>),
    Mprotect(Outcome<()>),
    /// The data value read; the `Err` is a signal number.
    Memread(Outcome<u8>),
    /// The `Err` is a signal number.
    Memwrite(Outcome<()>),
    Sync(()),
    Fsync(Outcome<()>),
    Reboot(()),
}

impl PosixResult {
    /// The name of the call this is a result of (one of [`CALLS`](crate::CALLS)).
    pub fn name(&self) -> &'static str {
        match self {
            PosixResult::Open(_) => "open",
            PosixResult::Link(_) => "link",
            PosixResult::Unlink(_) => "unlink",
            PosixResult::Rename(_) => "rename",
            PosixResult::Stat(_) => "stat",
            PosixResult::Fstat(_) => "fstat",
            PosixResult::Lseek(_) => "lseek",
            PosixResult::Close(_) => "close",
            PosixResult::Pipe(_) => "pipe",
            PosixResult::Read(_) => "read",
            PosixResult::Write(_) => "write",
            PosixResult::Pread(_) => "pread",
            PosixResult::Pwrite(_) => "pwrite",
            PosixResult::Mmap(_) => "mmap",
            PosixResult::Munmap(_) => "munmap",
            PosixResult::Mprotect(_) => "mprotect",
            PosixResult::Memread(_) => "memread",
            PosixResult::Memwrite(_) => "memwrite",
            PosixResult::Sync(()) => "sync",
            PosixResult::Fsync(_) => "fsync",
            PosixResult::Reboot(()) => "reboot",
        }
    }

    /// The result of call `call` from an expected result's `result` field.
    pub fn from_parts(call: &str, result: &Json) -> Result<PosixResult, FormatError> {
        let tagged = serde_json::json!({ "call": call, "result": result });
        serde_json::from_value(tagged).map_err(|source| FormatError::Result {
            call: call.to_string(),
            source,
        })
    }

    /// The `result` field in `tests.json`.
    pub fn result_json(&self) -> Result<Json, FormatError> {
        let tagged = serde_json::to_value(self).map_err(FormatError::Write)?;
        Ok(crate::call::content(tagged, "result"))
    }
}
