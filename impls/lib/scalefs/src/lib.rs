//! `scalefs`: the interface of commuter's POSIX model (files in one directory, inodes with link
//! counts and times, per-process fd tables with the lowest-fd rule, pipes, per-process address
//! spaces of pages) implemented twice behind one trait, [`Posix`]:
//!
//! - [`ScaleFs`], designed by the scalable commutativity rule with the techniques the sv6
//!   kernel published (RadixVM, Refcache, ScaleFS): wherever two calls commute, they write no
//!   cache line the other one reads or writes (see the module documentation of [`scalable`]
//!   for the layout and for the sharing the interface forces);
//! - [`NaiveFs`], the same semantics with every call under one global lock, the contrast.
//!
//! [`PosixAdapter`] runs either on commuter's POSIX tests through `commuter-harness`: it builds
//! an instance from a test's setup (`commuter-posix-format`'s [`Setup`]), performs its calls and
//! puts their results in the model's terms. The runner crates `posix-scalable` and
//! `posix-naive` are its three-line `main`s.
//!
//! Conventions (the model's): data moves one page ([`PAGE`] bytes) at a time, and a page's
//! *data value* is the byte every byte of it equals; file offsets are bytes (page aligned);
//! address-space pages are page indices; process slots are 0 and 1.

pub mod adapter;
pub mod naive;
mod percpu;
pub mod scalable;

pub use adapter::PosixAdapter;
pub use commuter_posix_format::{PAGE, Setup};
pub use naive::NaiveFs;
pub use scalable::ScaleFs;

use thiserror::Error;

/// Bytes in a page, as a `usize`.
pub const PAGE_BYTES: usize = PAGE as usize;

/// One page of data.
pub type PageBuf = [u8; PAGE_BYTES];

/// A call's failure: a Linux errno (for `memread`/`memwrite`, a signal number).
pub type Errno = i32;

/// Errno values beyond the model's (capacity limits of these implementations).
pub mod limits {
    /// A file would grow past [`MAX_FILE_PAGES`].
    pub const EFBIG: i32 = 27;
    /// A directory bucket (scalable) or the name table is full.
    pub const ENOSPC: i32 = 28;
    /// A name longer than [`MAX_NAME`] bytes.
    pub const ENAMETOOLONG: i32 = 36;
    /// Pages a file may hold.
    pub const MAX_FILE_PAGES: usize = 16;
    /// Pages a pipe may buffer (then `write` says `EAGAIN`).
    pub const PIPE_PAGES: usize = 16;
    /// Bytes of a file name.
    pub const MAX_NAME: usize = 24;
    /// Fd numbers per process: `0..MAX_FDS`.
    pub const MAX_FDS: usize = 64;
    /// Pages of the test area a process can map at a chosen (`MAP_FIXED`) page: `0..FIXED_PAGES`.
    pub const FIXED_PAGES: u64 = 64;
}

/// `open`'s flags beyond `O_RDWR` (always set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub creat: bool,
    pub excl: bool,
    pub trunc: bool,
}

/// Where `lseek` counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    Set,
    Cur,
    End,
    /// No valid origin (`EINVAL`).
    Invalid,
}

/// What a one-page `mmap` maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Private anonymous memory, zero-filled.
    Anon,
    /// A shared mapping of the file open at `fd`, at byte offset `off`.
    File { fd: i32, off: i64 },
}

/// A one-page `mmap` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mmap {
    pub backing: Backing,
    pub writable: bool,
    /// `MAP_FIXED` at this page (replacing what is there), else the implementation picks.
    pub fixed: Option<u64>,
}

/// What `stat` and `fstat` return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatBuf {
    /// Inode number: a setup's `inodes[i]` is `i`; created inodes have numbers past them.
    pub ino: u64,
    /// Length in bytes.
    pub size: u64,
    pub nlink: u64,
    /// Seconds.
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
}

/// Why a setup cannot be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("{0}")]
    Invalid(String),
    #[error("{what} exceeds this implementation's limit of {limit}")]
    Limit { what: String, limit: usize },
}

/// The POSIX model's interface. Every call takes the process slot it runs in where the model's
/// call has one; results are as the model specifies them (see `crates/models/src/posix`).
pub trait Posix: Sync + Sized {
    /// The implementation's name (the runner's).
    const NAME: &'static str;

    /// An instance in `setup`'s state. Inodes get numbers `0..setup.inodes.len()`.
    fn from_setup(setup: &Setup) -> Result<Self, BuildError>;

    /// `open(name, O_RDWR | flags)`: the lowest free fd.
    fn open(&self, proc: usize, name: &str, flags: OpenFlags) -> Result<i32, Errno>;
    fn link(&self, old: &str, new: &str) -> Result<(), Errno>;
    fn unlink(&self, name: &str) -> Result<(), Errno>;
    fn rename(&self, src: &str, dst: &str) -> Result<(), Errno>;
    fn stat(&self, name: &str) -> Result<StatBuf, Errno>;
    /// `None` for a pipe.
    fn fstat(&self, proc: usize, fd: i32) -> Result<Option<StatBuf>, Errno>;
    /// The new offset in bytes.
    fn lseek(&self, proc: usize, fd: i32, off: i64, whence: Whence) -> Result<u64, Errno>;
    fn close(&self, proc: usize, fd: i32) -> Result<(), Errno>;
    /// A new pipe: (read end, write end), the two lowest free fds.
    fn pipe(&self, proc: usize) -> Result<(i32, i32), Errno>;
    /// Reads one page into `buf`: bytes read (0 at end of file).
    fn read(&self, proc: usize, fd: i32, buf: &mut PageBuf) -> Result<usize, Errno>;
    /// Writes one page: bytes written.
    fn write(&self, proc: usize, fd: i32, buf: &PageBuf) -> Result<usize, Errno>;
    fn pread(&self, proc: usize, fd: i32, off: i64, buf: &mut PageBuf) -> Result<usize, Errno>;
    fn pwrite(&self, proc: usize, fd: i32, off: i64, buf: &PageBuf) -> Result<usize, Errno>;
    /// The mapped page.
    fn mmap(&self, proc: usize, req: Mmap) -> Result<u64, Errno>;
    fn munmap(&self, proc: usize, page: u64) -> Result<(), Errno>;
    fn mprotect(&self, proc: usize, page: u64, writable: bool) -> Result<(), Errno>;
    /// A load of the whole page into `buf`; the error is a signal number.
    fn memread(&self, proc: usize, page: u64, buf: &mut PageBuf) -> Result<(), Errno>;
    /// A store of the whole page; the error is a signal number.
    fn memwrite(&self, proc: usize, page: u64, buf: &PageBuf) -> Result<(), Errno>;
}

/// The data value of a page: the byte all its bytes equal, `None` when they differ.
pub fn data_value(buf: &PageBuf) -> Option<u8> {
    let first = buf[0];
    buf.iter().all(|b| *b == first).then_some(first)
}

/// The clock file times come from: coarse seconds (as file systems' coarse timestamps). A time
/// is only written when the clock has moved past it, so updates within one tick are read-only:
/// two calls that both "update" a time do not write a shared line for it.
pub fn now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; the coarse clock is read through the vDSO
    // (no kernel entry inside a call).
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if r == 0 {
        u64::try_from(ts.tv_sec).unwrap_or(0)
    } else {
        0
    }
}

/// Validates the parts of a setup both implementations rely on (indices in range, limits).
pub(crate) fn check_setup(setup: &Setup) -> Result<(), BuildError> {
    use limits::*;
    let bad = |m: String| Err(BuildError::Invalid(m));
    for (i, node) in setup.inodes.iter().enumerate() {
        if node.data.len() > MAX_FILE_PAGES {
            return Err(BuildError::Limit {
                what: format!("inode {i}'s {} pages", node.data.len()),
                limit: MAX_FILE_PAGES,
            });
        }
    }
    for n in &setup.names {
        if n.inode >= setup.inodes.len() {
            return bad(format!(
                "name {:?} links inode {}, which the setup lacks",
                n.name, n.inode
            ));
        }
        if n.name.len() > MAX_NAME || n.name.is_empty() || n.name.contains('/') {
            return bad(format!(
                "name {:?}: not a file name of 1..={MAX_NAME} bytes without '/'",
                n.name
            ));
        }
    }
    for (i, pipe) in setup.pipes.iter().enumerate() {
        if pipe.data.len() > PIPE_PAGES {
            return Err(BuildError::Limit {
                what: format!("pipe {i}'s {} pages", pipe.data.len()),
                limit: PIPE_PAGES,
            });
        }
    }
    if setup.procs.len() > 2 {
        return bad(format!("{} processes; the model has 2", setup.procs.len()));
    }
    for (p, proc) in setup.procs.iter().enumerate() {
        for fd in &proc.fds {
            if fd.fd < 0 || fd.fd as usize >= MAX_FDS {
                return bad(format!("process {p}: fd {} outside 0..{MAX_FDS}", fd.fd));
            }
            match fd.target {
                commuter_posix_format::FdTarget::File { inode, off } => {
                    if inode >= setup.inodes.len() {
                        return bad(format!(
                            "process {p}: fd {} refers to inode {inode}, which the setup lacks",
                            fd.fd
                        ));
                    }
                    if off % PAGE != 0 {
                        return bad(format!(
                            "process {p}: fd {} offset {off} is not page aligned",
                            fd.fd
                        ));
                    }
                }
                commuter_posix_format::FdTarget::Pipe { pipe, .. } => {
                    if pipe >= setup.pipes.len() {
                        return bad(format!(
                            "process {p}: fd {} refers to pipe {pipe}, which the setup lacks",
                            fd.fd
                        ));
                    }
                }
            }
        }
        for m in &proc.maps {
            if u64::from(m.page) >= FIXED_PAGES {
                return bad(format!(
                    "process {p}: page {} outside the test area 0..{FIXED_PAGES}",
                    m.page
                ));
            }
            if let commuter_posix_format::Backing::File { inode, off } = m.backing {
                if inode >= setup.inodes.len() || off % PAGE != 0 {
                    return bad(format!(
                        "process {p}: page {} maps inode {inode} at {off}: no such inode or not page aligned",
                        m.page
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A file name's bytes: `ENAMETOOLONG` past [`limits::MAX_NAME`], `ENOENT` for an empty name
/// or one with a `/` (one directory: no paths).
pub(crate) fn name_bytes(name: &str) -> Result<&[u8], Errno> {
    if name.len() > limits::MAX_NAME {
        return Err(limits::ENAMETOOLONG);
    }
    if name.is_empty() || name.contains('/') {
        return Err(commuter_posix_format::errno::ENOENT);
    }
    Ok(name.as_bytes())
}

/// A page filled with `v`.
pub fn page_of(v: u8) -> PageBuf {
    [v; PAGE_BYTES]
}

/// Byte offset → page index, for offsets that are page aligned and not negative.
pub(crate) fn page_index(off: i64) -> Result<usize, Errno> {
    use commuter_posix_format::errno::EINVAL;
    if off < 0 || off as u64 % PAGE != 0 {
        return Err(EINVAL);
    }
    usize::try_from(off as u64 / PAGE).map_err(|_| limits::EFBIG)
}
