//! A POSIX call with concrete arguments, as the model's concretization writes it: the call's
//! name is a test call's `call` field, its arguments the `args` field.
//!
//! `proc` is the process slot (0 or 1) the call runs in; fds are fd numbers of that process;
//! names are file names; `page` is a page index in the process's test area; offsets (`off`)
//! are in bytes; `data` is a data value (the byte every byte of a page equals).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::FormatError;

/// Where `lseek` counts from, as the model's flags say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Whence {
    /// SEEK_SET.
    Set,
    /// SEEK_CUR.
    Cur,
    /// SEEK_END.
    End,
    /// No origin flag set: an invalid `whence`.
    None,
}

/// One call and its concrete arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
// Adjacently tagged: serialised as `{"call": "open", "args": {...}}`, the two fields a
// `tests.json` call keeps them in.
#[serde(tag = "call", content = "args", rename_all = "snake_case")]
pub enum PosixCall {
    /// open(name, O_RDWR | flags); `anyfd`: any unused fd will do (the model's `O_ANYFD`).
    Open {
        proc: usize,
        name: String,
        creat: bool,
        excl: bool,
        trunc: bool,
        anyfd: bool,
    },
    /// link(old, new).
    Link { old: String, new: String },
    /// unlink(name).
    Unlink { name: String },
    /// rename(src, dst).
    Rename { src: String, dst: String },
    /// stat(name).
    Stat { name: String },
    /// fstat(fd).
    Fstat { proc: usize, fd: i32 },
    /// lseek(fd, off, whence).
    Lseek {
        proc: usize,
        fd: i32,
        off: i64,
        whence: Whence,
    },
    /// close(fd).
    Close { proc: usize, fd: i32 },
    /// pipe(): a new pipe's read and write ends.
    Pipe { proc: usize },
    /// read(fd) of one page.
    Read { proc: usize, fd: i32 },
    /// write(fd) of one page of `data`.
    Write { proc: usize, fd: i32, data: u8 },
    /// pread(fd, off) of one page.
    Pread { proc: usize, fd: i32, off: i64 },
    /// pwrite(fd, off) of one page of `data`.
    Pwrite {
        proc: usize,
        fd: i32,
        off: i64,
        data: u8,
    },
    /// mmap of one page: anonymous, or of `fd` at `off`; at `page` when `fixed` (else `page`
    /// is 0 and the kernel picks).
    Mmap {
        proc: usize,
        anon: bool,
        writable: bool,
        fixed: bool,
        page: u32,
        /// The file's fd (file mappings only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fd: Option<i32>,
        /// Byte offset into the file (file mappings only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        off: Option<i64>,
    },
    /// munmap of one page.
    Munmap { proc: usize, page: u32 },
    /// mprotect of one page: readable, and writable when `writable`.
    Mprotect {
        proc: usize,
        page: u32,
        writable: bool,
    },
    /// A load of a page.
    Memread { proc: usize, page: u32 },
    /// A store of `data` into a page.
    Memwrite { proc: usize, page: u32, data: u8 },
    /// sync(): the model's durability extension.
    Sync,
    /// fsync(fd): the model's durability extension.
    Fsync { proc: usize, fd: i32 },
    /// A crash and reboot: the model's durability extension.
    Reboot,
}

impl PosixCall {
    /// The call's name (one of [`CALLS`](crate::CALLS)).
    pub fn name(&self) -> &'static str {
        match self {
            PosixCall::Open { .. } => "open",
            PosixCall::Link { .. } => "link",
            PosixCall::Unlink { .. } => "unlink",
            PosixCall::Rename { .. } => "rename",
            PosixCall::Stat { .. } => "stat",
            PosixCall::Fstat { .. } => "fstat",
            PosixCall::Lseek { .. } => "lseek",
            PosixCall::Close { .. } => "close",
            PosixCall::Pipe { .. } => "pipe",
            PosixCall::Read { .. } => "read",
            PosixCall::Write { .. } => "write",
            PosixCall::Pread { .. } => "pread",
            PosixCall::Pwrite { .. } => "pwrite",
            PosixCall::Mmap { .. } => "mmap",
            PosixCall::Munmap { .. } => "munmap",
            PosixCall::Mprotect { .. } => "mprotect",
            PosixCall::Memread { .. } => "memread",
            PosixCall::Memwrite { .. } => "memwrite",
            PosixCall::Sync => "sync",
            PosixCall::Fsync { .. } => "fsync",
            PosixCall::Reboot => "reboot",
        }
    }

    /// The process slot the call runs in (0 for calls that take no process).
    pub fn proc(&self) -> usize {
        match self {
            PosixCall::Open { proc, .. }
            | PosixCall::Fstat { proc, .. }
            | PosixCall::Lseek { proc, .. }
            | PosixCall::Close { proc, .. }
            | PosixCall::Pipe { proc }
            | PosixCall::Read { proc, .. }
            | PosixCall::Write { proc, .. }
            | PosixCall::Pread { proc, .. }
            | PosixCall::Pwrite { proc, .. }
            | PosixCall::Mmap { proc, .. }
            | PosixCall::Munmap { proc, .. }
            | PosixCall::Mprotect { proc, .. }
            | PosixCall::Memread { proc, .. }
            | PosixCall::Memwrite { proc, .. }
            | PosixCall::Fsync { proc, .. } => *proc,
            PosixCall::Link { .. }
            | PosixCall::Unlink { .. }
            | PosixCall::Rename { .. }
            | PosixCall::Stat { .. }
            | PosixCall::Sync
            | PosixCall::Reboot => 0,
        }
    }

    /// The call from a `tests.json` call's `call` and `args` fields.
    pub fn from_parts(call: &str, args: &Json) -> Result<PosixCall, FormatError> {
        let tagged = serde_json::json!({ "call": call, "args": args });
        serde_json::from_value(tagged).map_err(|source| FormatError::Args {
            call: call.to_string(),
            source,
        })
    }

    /// The call's `args` field in `tests.json` (`null` for calls without arguments, as the
    /// model writes them).
    pub fn args_json(&self) -> Result<Json, FormatError> {
        let tagged = serde_json::to_value(self).map_err(FormatError::Write)?;
        Ok(content(tagged, "args"))
    }
}

/// The content of an adjacently tagged value (`null` for a unit variant, which has none).
pub(crate) fn content(tagged: Json, key: &str) -> Json {
    match tagged {
        Json::Object(mut fields) => fields.remove(key).unwrap_or(Json::Null),
        _ => Json::Null,
    }
}
