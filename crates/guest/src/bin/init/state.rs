//! Building a test's initial state: the file system and pipes (coordinator) and each process's
//! fds and mappings (in the test process, before its call threads prepare), and removing both.

use crate::calls::{page_addr, prot};
use crate::sys;
use commuter_guest::plan::{Backing, FdTarget, MAX_PAGES, PAGE, Proc, Setup};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::MetadataExt;

/// Inode files live here until every process holds what it needs, then they are unlinked so
/// that only the plan's names remain, with the links an inode has beyond its names (its
/// `nlink`): those stay in this directory, which no call names, so link counts match the model.
const INODE_DIR: &str = ".inodes";

fn inode_path(i: usize) -> String {
    format!("{INODE_DIR}/{i}")
}

fn hidden_link_path(i: usize, k: usize) -> String {
    format!("{INODE_DIR}/{i}.{k}")
}

fn ctx(what: impl Fn() -> String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", what()))
}

/// File system state built by the coordinator.
pub struct Fs {
    /// st_ino of each setup inode.
    pub inos: Vec<u64>,
    /// Whether [`INODE_DIR`] keeps hidden links (then it stays until the test is cleaned).
    hidden: bool,
    /// Both ends of each setup pipe, held by the coordinator until the processes dup them.
    pub pipes: Vec<[i32; 2]>,
}

/// Creates inodes, names and pipes in the current directory.
pub fn create(setup: &Setup) -> io::Result<Fs> {
    fs::create_dir(INODE_DIR).map_err(ctx(|| format!("mkdir {INODE_DIR}")))?;
    let mut inos = Vec::new();
    for (i, inode) in setup.inodes.iter().enumerate() {
        let mut f = fs::File::create(inode_path(i)).map_err(ctx(|| format!("create inode {i}")))?;
        for &d in &inode.data {
            f.write_all(&[d; PAGE as usize])?;
        }
        inos.push(f.metadata()?.ino());
    }
    for n in &setup.names {
        fs::hard_link(inode_path(n.inode), &n.name).map_err(ctx(|| format!("link {}", n.name)))?;
    }
    let mut hidden = false;
    for (i, inode) in setup.inodes.iter().enumerate() {
        let names = setup.names.iter().filter(|n| n.inode == i).count();
        for k in 0..inode.hidden_links(names) {
            hidden = true;
            fs::hard_link(inode_path(i), hidden_link_path(i, k))
                .map_err(ctx(|| format!("hidden link {k} of inode {i}")))?;
        }
    }
    let mut pipes = Vec::new();
    for p in &setup.pipes {
        pipes.push(make_pipe(&p.data)?);
    }
    Ok(Fs {
        inos,
        hidden,
        pipes,
    })
}

fn make_pipe(data: &[u8]) -> io::Result<[i32; 2]> {
    let mut fds = [-1; 2];
    // SAFETY: a valid two-int array.
    sys::check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) }.into())?;
    for &d in data {
        let page = [d; PAGE as usize];
        // SAFETY: a valid buffer; the pipe holds 16 pages, the model at most 8.
        let n = unsafe { libc::write(fds[1], page.as_ptr().cast(), page.len()) };
        if n != page.len() as isize {
            return Err(io::Error::other(format!("filling a pipe wrote {n} bytes")));
        }
    }
    Ok(fds)
}

impl Fs {
    /// Drops the coordinator's pipe ends and the inode directory (after the processes are set up).
    pub fn release(&self) -> io::Result<()> {
        for p in &self.pipes {
            sys::close(p[0]);
            sys::close(p[1]);
        }
        for i in 0..self.inos.len() {
            fs::remove_file(inode_path(i)).map_err(ctx(|| format!("unlink inode {i}")))?;
        }
        if self.hidden {
            return Ok(());
        }
        fs::remove_dir(INODE_DIR)
    }

    /// Which setup inode has this st_ino.
    pub fn inode_of(&self, ino: u64) -> Option<usize> {
        self.inos.iter().position(|i| *i == ino)
    }
}

/// Empties the current directory after a run.
pub fn clean() -> io::Result<()> {
    for e in fs::read_dir(".")? {
        let e = e?;
        if e.file_type()?.is_dir() {
            fs::remove_dir_all(e.path())?;
        } else {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Sets up one process's fds and mappings, then closes every other fd above stderr.
/// `pipe_end(pipe, write)` gives this process an fd of a setup pipe's end.
pub fn setup_proc(
    proc: &Proc,
    pipe_end: impl Fn(usize, bool) -> io::Result<i32>,
) -> io::Result<()> {
    for f in &proc.fds {
        let from = match f.target {
            FdTarget::File { inode, off } => open_at(inode, off)?,
            FdTarget::Pipe { pipe, write } => pipe_end(pipe, write)?,
        };
        sys::dup2(from, f.fd).map_err(ctx(|| format!("dup2 to fd {}", f.fd)))?;
    }
    for m in &proc.maps {
        map_page(m.page, &m.backing, m.writable, m.populated)
            .map_err(ctx(|| format!("map page {}", m.page)))?;
    }
    let mut keep: Vec<i32> = proc.fds.iter().map(|f| f.fd).collect();
    keep.sort_unstable();
    close_all_but(&keep);
    Ok(())
}

fn open_at(inode: usize, off: u64) -> io::Result<i32> {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(inode_path(inode))
        .map_err(ctx(|| format!("open inode {inode}")))?;
    // SAFETY: a valid fd owned by `f`.
    sys::check(unsafe { libc::lseek(f.as_raw_fd(), off as i64, libc::SEEK_SET) })?;
    // Left open on purpose: `close_all_but` closes it after dup2 copied it.
    Ok(f.into_raw_fd())
}

/// Maps one setup page; a populated page is touched (written, or read inside its file) so
/// that it is in the page tables when the calls start, an unpopulated one is left for the
/// first call that touches it.
fn map_page(page: u32, backing: &Backing, writable: bool, populated: bool) -> io::Result<()> {
    let addr = page_addr(page) as *mut libc::c_void;
    let len = PAGE as usize;
    let fixed = libc::MAP_FIXED;
    match *backing {
        Backing::Anon { data } => {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | fixed;
            // SAFETY: maps one page inside the test window, then writes its first byte.
            unsafe {
                check_map(libc::mmap(addr, len, prot(true), flags, -1, 0))?;
                if populated {
                    std::ptr::write_volatile(addr.cast::<u8>(), data);
                }
                sys::check(libc::mprotect(addr, len, prot(writable)).into())?;
            }
        }
        Backing::File { inode, off } => {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(inode_path(inode))?;
            let flags = libc::MAP_SHARED | fixed;
            // SAFETY: maps one page inside the test window.
            unsafe {
                check_map(libc::mmap(
                    addr,
                    len,
                    prot(writable),
                    flags,
                    f.as_raw_fd(),
                    off as i64,
                ))?;
            }
            // Fault the page in now (when inside the file) so that a traced memread measures
            // the access, not the first-touch fault.
            if populated && off < f.metadata()?.len() {
                // SAFETY: the page is mapped and backed by the file.
                unsafe { std::ptr::read_volatile(addr.cast::<u8>()) };
            }
        }
    }
    Ok(())
}

fn check_map(p: *mut libc::c_void) -> io::Result<()> {
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Drops everything a test left in a test process: every fd above stderr and every mapping of
/// the test window (plus `extra`, pages a call mapped where the kernel chose), so that the next
/// test starts from the process a fresh fork would give.
pub fn clean_process(extra: impl Iterator<Item = u64>) {
    close_range(3, u32::MAX);
    let window = (MAX_PAGES as usize) * PAGE as usize;
    // SAFETY: unmapping the test window and pages calls mapped, which nothing else uses.
    unsafe {
        libc::munmap(page_addr(0) as *mut libc::c_void, window);
        for addr in extra {
            libc::munmap(addr as *mut libc::c_void, PAGE as usize);
        }
    }
}

/// Closes every fd from 3 up except `keep` (sorted), with close_range over the gaps.
fn close_all_but(keep: &[i32]) {
    let mut from = 3u32;
    for &k in keep {
        let k = k as u32;
        if k > from {
            close_range(from, k - 1);
        }
        from = k + 1;
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: closing fds this process does not need.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
}
