//! Executing one call between begin-call and end-call markers.
//!
//! Everything that allocates or faults (path strings, data pages, the read buffer) is prepared
//! before the begin-call marker, so the traced window holds the system call and little else.

use crate::shared::RawResult;
use commuter_guest::plan::{MAP_BASE, MAX_PAGES, Op, PAGE, Whence};
use std::ffi::CString;
use std::io;

/// Marker instructions (no-ops without the tracer), in the encoding the tracer decodes.
pub use commuter_trace_format::marker::{
    BEGIN_CALL, BEGIN_TEST, END_CALL, END_TEST, emit as marker,
};

/// Address of mapping page `page`.
pub fn page_addr(page: u32) -> u64 {
    MAP_BASE + u64::from(page) * PAGE
}

/// A call with its arguments converted and its buffers faulted in.
pub struct Prepared<'a> {
    op: &'a Op,
    path: [CString; 2],
    page: Vec<u8>,
    stat: libc::stat,
    fds: [i32; 2],
}

fn path(s: &str) -> io::Result<CString> {
    crate::sys::cstr(s)
}

impl<'a> Prepared<'a> {
    pub fn new(op: &'a Op) -> io::Result<Prepared<'a>> {
        let (a, b) = match op {
            Op::Open { name, .. } | Op::Unlink { name } | Op::Stat { name } => (name.as_str(), ""),
            Op::Link { old, new } => (old.as_str(), new.as_str()),
            Op::Rename { src, dst } => (src.as_str(), dst.as_str()),
            _ => ("", ""),
        };
        let fill = match op {
            Op::Write { data, .. } | Op::Pwrite { data, .. } => *data,
            _ => 0xee,
        };
        Ok(Prepared {
            op,
            path: [path(a)?, path(b)?],
            // Writing every byte faults the buffer in now, not inside the traced call.
            page: vec![fill; PAGE as usize],
            // SAFETY: all-zero is a valid `stat`.
            stat: unsafe { std::mem::zeroed() },
            fds: [-1, -1],
        })
    }

    /// The call.
    pub fn op(&self) -> &'a Op {
        self.op
    }

    /// Runs the call inside begin/end-call markers when `marked`, timing it.
    pub fn run(&mut self, slot: usize, marked: bool) -> RawResult {
        let cpu = crate::sys::current_cpu();
        if marked {
            marker::<BEGIN_CALL>(slot as u64);
        }
        // The clock is read inside the markers: the time then includes what recording the call
        // costs (the tracer's memory callbacks) but not the markers' own bookkeeping.
        let start = crate::sys::monotonic_ns();
        let ret = self.invoke();
        // Read errno before anything else can change it.
        let errno = if ret < 0 {
            io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        let end = crate::sys::monotonic_ns();
        if marked {
            marker::<END_CALL>(slot as u64);
        }
        let mut r = self.result(ret, errno, cpu);
        r.elapsed_ns = start.zip(end).map(|(s, e)| e.saturating_sub(s));
        r
    }

    fn invoke(&mut self) -> i64 {
        let p0 = self.path[0].as_ptr();
        let p1 = self.path[1].as_ptr();
        let buf = self.page.as_mut_ptr().cast::<libc::c_void>();
        let len = self.page.len();
        // SAFETY: valid C strings, a valid 4096-byte buffer, and the plan's fds and pages; a bad
        // page faults into the guest's SIGSEGV/SIGBUS handler, which is the expected outcome.
        unsafe {
            match *self.op {
                Op::Getpid => libc::getpid().into(),
                Op::Open {
                    creat, excl, trunc, ..
                } => libc::open(p0, open_flags(creat, excl, trunc), 0o666).into(),
                Op::Link { .. } => libc::link(p0, p1).into(),
                Op::Unlink { .. } => libc::unlink(p0).into(),
                Op::Rename { .. } => libc::rename(p0, p1).into(),
                Op::Stat { .. } => libc::stat(p0, &mut self.stat).into(),
                Op::Fstat { fd } => libc::fstat(fd, &mut self.stat).into(),
                Op::Lseek { fd, off, whence } => libc::lseek(fd, off, whence_flag(whence)),
                Op::Close { fd } => libc::close(fd).into(),
                Op::Pipe => libc::pipe2(self.fds.as_mut_ptr(), libc::O_NONBLOCK).into(),
                Op::Read { fd } => libc::read(fd, buf, len) as i64,
                Op::Write { fd, .. } => libc::write(fd, buf, len) as i64,
                Op::Pread { fd, off } => libc::pread(fd, buf, len, off) as i64,
                Op::Pwrite { fd, off, .. } => libc::pwrite(fd, buf, len, off) as i64,
                Op::Mmap {
                    page,
                    anon,
                    writable,
                    fixed,
                    fd,
                    off,
                } => mmap(page, anon, writable, fixed, fd, off),
                Op::Munmap { page } => {
                    libc::munmap(page_addr(page) as *mut libc::c_void, PAGE as usize).into()
                }
                Op::Mprotect { page, writable } => libc::mprotect(
                    page_addr(page) as *mut libc::c_void,
                    PAGE as usize,
                    prot(writable),
                )
                .into(),
                Op::Memread { page } => {
                    i64::from(std::ptr::read_volatile(page_addr(page) as *const u8))
                }
                Op::Memwrite { page, data } => {
                    std::ptr::write_volatile(page_addr(page) as *mut u8, data);
                    0
                }
            }
        }
    }

    fn result(&self, ret: i64, errno: i32, cpu: i32) -> RawResult {
        let mut r = RawResult {
            ret,
            errno,
            data: -1,
            cpu,
            ..RawResult::default()
        };
        if ret < 0 {
            return r;
        }
        match *self.op {
            Op::Stat { .. } | Op::Fstat { .. } => self.fill_stat(&mut r),
            Op::Pipe => {
                r.fds = self.fds;
                r.has_fds = true;
            }
            Op::Read { .. } | Op::Pread { .. } if ret > 0 => r.data = i32::from(self.page[0]),
            Op::Memread { .. } => {
                r.data = ret as i32;
                r.ret = 0;
            }
            Op::Mmap { .. } => r.ret = mmap_page(ret),
            _ => {}
        }
        r
    }

    fn fill_stat(&self, r: &mut RawResult) {
        r.has_stat = true;
        r.ino = self.stat.st_ino;
        r.size = self.stat.st_size as u64;
        r.nlink = self.stat.st_nlink;
        r.fifo = self.stat.st_mode & libc::S_IFMT == libc::S_IFIFO;
    }
}

fn open_flags(creat: bool, excl: bool, trunc: bool) -> i32 {
    let mut f = libc::O_RDWR;
    for (on, flag) in [
        (creat, libc::O_CREAT),
        (excl, libc::O_EXCL),
        (trunc, libc::O_TRUNC),
    ] {
        if on {
            f |= flag;
        }
    }
    f
}

fn whence_flag(w: Whence) -> i32 {
    match w {
        Whence::Set => libc::SEEK_SET,
        Whence::Cur => libc::SEEK_CUR,
        Whence::End => libc::SEEK_END,
        Whence::Invalid => 999,
    }
}

pub fn prot(writable: bool) -> i32 {
    libc::PROT_READ | if writable { libc::PROT_WRITE } else { 0 }
}

unsafe fn mmap(page: u32, anon: bool, writable: bool, fixed: bool, fd: i32, off: i64) -> i64 {
    let (addr, fixed_flag) = if fixed {
        (page_addr(page) as *mut libc::c_void, libc::MAP_FIXED)
    } else {
        (std::ptr::null_mut(), 0)
    };
    let (kind, fd, off) = if anon {
        (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    } else {
        (libc::MAP_SHARED, fd, off)
    };
    // SAFETY: maps one page; MAP_FIXED only inside the test window.
    let p = unsafe {
        libc::mmap(
            addr,
            PAGE as usize,
            prot(writable),
            kind | fixed_flag,
            fd,
            off,
        )
    };
    if p == libc::MAP_FAILED { -1 } else { p as i64 }
}

/// mmap's result as a page index when inside the test window, else the raw address.
fn mmap_page(addr: i64) -> i64 {
    let a = addr as u64;
    let end = page_addr(MAX_PAGES);
    if (MAP_BASE..end).contains(&a) {
        ((a - MAP_BASE) / PAGE) as i64
    } else {
        addr
    }
}
