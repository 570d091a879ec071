//! File-system calls: names, inodes and file descriptors of files.

use commuter_engine::{Bool, Int, SymEq, Symbolic, assume, situation_term};

use super::alloc::{any_free_fd, fresh_inode, inode_referenced, lowest_free_fd};
use super::ledger;
use super::pipe::{closed_pipe_end, pipe_read, pipe_write};
use super::state::errno::*;
use super::state::{DataVal, Errno, Fd, FileName, Inode, Inum, PAGE, Pages, PosixState, proc_of};

#[derive(Clone, Debug, Symbolic)]
pub struct OpenArgs {
    pub name: FileName,
    pub creat: Bool,
    pub excl: Bool,
    pub trunc: Bool,
    /// `O_ANYFD`: any unused fd will do (assumed false unless the model enables it).
    pub anyfd: Bool,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct LinkArgs {
    pub old: FileName,
    pub new: FileName,
}

#[derive(Clone, Debug, Symbolic)]
pub struct NameArgs {
    pub name: FileName,
}

#[derive(Clone, Debug, Symbolic)]
pub struct RenameArgs {
    pub src: FileName,
    pub dst: FileName,
}

#[derive(Clone, Debug, Symbolic)]
pub struct FdArgs {
    pub fd: Int,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct LseekArgs {
    pub fd: Int,
    pub off: Int,
    pub whence_set: Bool,
    pub whence_cur: Bool,
    pub whence_end: Bool,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct WriteArgs {
    pub fd: Int,
    pub data: DataVal,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct PreadArgs {
    pub fd: Int,
    pub off: Int,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct PwriteArgs {
    pub fd: Int,
    pub off: Int,
    pub data: DataVal,
    pub pid: Int,
}

/// What `stat` and `fstat` of a file return.
#[derive(Clone, Debug, Symbolic)]
pub struct StatResult {
    pub inum: Inum,
    /// Length in pages.
    pub size: Int,
    pub nlink: Int,
    pub atime: Int,
    pub mtime: Int,
    pub ctime: Int,
}

/// A successful `read`: `None` at end of file (0 bytes), else one page.
pub type ReadResult = Result<Option<DataVal>, Errno>;

fn stat_of(inum: &Inum, inode: &Inode) -> StatResult {
    StatResult {
        inum: inum.clone(),
        size: inode.data.len(),
        nlink: inode.nlink.clone(),
        atime: inode.atime.clone(),
        mtime: inode.mtime.clone(),
        ctime: inode.ctime.clone(),
    }
}

pub fn open(s: &mut PosixState, a: &OpenArgs) -> Result<Int, Errno> {
    assume(&!&a.anyfd);
    open_impl(s, a)
}

/// `open` with `O_ANYFD` left to the caller.
pub fn open_anyfd(s: &mut PosixState, a: &OpenArgs) -> Result<Int, Errno> {
    open_impl(s, a)
}

fn open_impl(s: &mut PosixState, a: &OpenArgs) -> Result<Int, Errno> {
    let p = proc_of(&a.pid);
    let inum = if s.dir_contains(&a.name).branch() {
        if (a.creat.clone() & a.excl.clone()).branch() {
            return Err(EEXIST);
        }
        let inum = s.dir_get(&a.name);
        if a.trunc.branch() {
            truncate(s, &inum);
        }
        inum
    } else {
        if (!&a.creat).branch() {
            return Err(ENOENT);
        }
        // `O_CREAT|O_TRUNC` of an absent name is a situation of its own, as in the paper's
        // model, though the new file is already empty and Linux leaves its times alone
        // (`do_open` skips the truncation of a file it created).
        let _created_truncated = a.trunc.branch();
        create(s, &a.name)
    };
    let fd = if a.anyfd.branch() {
        any_free_fd(s, p)
    } else {
        lowest_free_fd(s, p)
    };
    s.fd_insert(p, &fd, &Fd::file(&inum, 0));
    Ok(fd)
}

/// `O_TRUNC` of an existing file: empty, and modified now.
fn truncate(s: &mut PosixState, inum: &Inum) {
    let mut inode = s.i_map.get(inum);
    let t = PosixState::fresh_time();
    inode.data = Pages::empty();
    inode.mtime = t.clone();
    inode.ctime = t;
    s.i_map.set(inum, &inode);
}

/// A new empty file named `name` (which is absent).
fn create(s: &mut PosixState, name: &FileName) -> Inum {
    let inum = fresh_inode(s);
    // The reference model also asks the time to be >= the old times of the inode number. Those
    // times are unobservable (no name or fd refers to the number; a mapping reads only data)
    // and no fresh time is bounded from above, so the bound never changes whether some choice
    // makes the orders agree; encoding it put array reads at internal indices under the
    // analyzer's `forall internals` query (open/open: 64 s and a solver unknown, 0.4 s without).
    let t = PosixState::fresh_time();
    let inode = Inode {
        data: Pages::empty(),
        nlink: Int::lit(1),
        atime: t.clone(),
        mtime: t.clone(),
        ctime: t,
    };
    s.i_map.set(&inum, &inode);
    s.dir_insert(name, &inum);
    inum
}

/// Add `delta` to the link count of `inum`; its ctime becomes a fresh time.
fn relink(s: &mut PosixState, inum: &Inum, delta: i64) {
    touched_inode(inum);
    let mut inode = s.i_map.get(inum);
    inode.ctime = PosixState::fresh_time();
    inode.nlink = inode.nlink + delta;
    s.i_map.set(inum, &inode);
}

pub fn link(s: &mut PosixState, a: &LinkArgs) -> Result<(), Errno> {
    if (!s.dir_contains(&a.old)).branch() {
        return Err(ENOENT);
    }
    if s.dir_contains(&a.new).branch() {
        return Err(EEXIST);
    }
    let inum = s.dir_get(&a.old);
    s.dir_insert(&a.new, &inum);
    relink(s, &inum, 1);
    Ok(())
}

pub fn unlink(s: &mut PosixState, a: &NameArgs) -> Result<(), Errno> {
    if (!s.dir_contains(&a.name)).branch() {
        return Err(ENOENT);
    }
    let inum = s.dir_get(&a.name);
    s.dir_remove(&a.name);
    drop_link(s, &inum);
    Ok(())
}

/// Removes one link of `inum`. Removing the last one is a situation of its own, though the
/// interface shows it only in `nlink`: the file system drops the inode there (Linux:
/// `drop_nlink`, `iput_final`, the page cache's truncation; the tests that found those sites
/// enumerated link counts before any branch read them).
///
/// Whether an fd or a mapping still holds the file is a situation of its own too: if none does,
/// the inode goes now (`iput_final` in the call), else with its last reference.
fn drop_link(s: &mut PosixState, inum: &Inum) {
    if s.i_map.get(inum).nlink.eq(1).branch() {
        let _freed = !inode_referenced(s, inum);
    }
    relink(s, inum, -1);
}

/// A reference to the file `inum` is gone. If the file has no links left, whether that was its
/// last reference is a situation of its own, though no call can tell: the file system frees
/// the inode there (Linux: `__dentry_kill`, `dentry_unlink_inode`, `iput_final`).
pub(super) fn dropped_reference(s: &PosixState, inum: &Inum) {
    let nlink = s.i_map.get(inum).nlink;
    // An unnamed file's count is never negative (a named one's is bounded by its names).
    assume(&nlink.ge(0));
    if nlink.eq(0).branch() {
        let _freed = !inode_referenced(s, inum);
    }
}

/// Every inode has at least as many links as names naming it in the initial directory (it may
/// have more: links from directories the model does not show, which test setups create).
pub fn assume_link_counts(s: &PosixState) {
    let dir = s.root_dir.clone();
    let inodes = s.i_map.clone();
    ledger::for_all_name_sets(move |names| {
        let names_of = |inum: &Inum| {
            Int::count(
                names
                    .iter()
                    .map(|m| dir.contains(m) & dir.get(m).sym_eq(inum)),
            )
        };
        Bool::all(names.iter().map(|n| {
            let inum = dir.get(n);
            !dir.contains(n) | inodes.get(&inum).nlink.ge(names_of(&inum))
        }))
    });
}

/// As the paper's model: only `src == dst` is a no-op (Linux also does nothing when both
/// names are links to the same inode; the reference model does not single that case out).
pub fn rename(s: &mut PosixState, a: &RenameArgs) -> Result<(), Errno> {
    if (!s.dir_contains(&a.src)).branch() {
        return Err(ENOENT);
    }
    if a.src.sym_eq(&a.dst).branch() {
        return Ok(());
    }
    if s.dir_contains(&a.dst).branch() {
        let old = s.dir_get(&a.dst);
        drop_link(s, &old);
    }
    let moved = s.dir_get(&a.src);
    s.dir_insert(&a.dst, &moved);
    s.dir_remove(&a.src);
    // Linux changes the moved inode's ctime (`simple_rename_timestamp`), which POSIX allows and
    // the reference model leaves out; a call reading the inode shares it.
    touched_inode(&moved);
    let mut inode = s.i_map.get(&moved);
    inode.ctime = PosixState::fresh_time();
    s.i_map.set(&moved, &inode);
    Ok(())
}

pub fn stat(s: &mut PosixState, a: &NameArgs) -> Result<StatResult, Errno> {
    if (!s.dir_contains(&a.name)).branch() {
        return Err(ENOENT);
    }
    let inum = s.dir_get(&a.name);
    touched_inode(&inum);
    Ok(stat_of(&inum, &s.i_map.get(&inum)))
}

/// The open fd `fd` of process `p`, or `EBADF`.
pub fn open_fd(s: &PosixState, p: usize, fd: &Int) -> Result<Fd, Errno> {
    if s.fd_contains(p, fd).branch() {
        Ok(s.fd_get(p, fd))
    } else {
        Err(EBADF)
    }
}

/// `Ok(None)` is a pipe ("is a FIFO"); a file gives the fields of `stat`.
pub fn fstat(s: &mut PosixState, a: &FdArgs) -> Result<Option<StatResult>, Errno> {
    let f = open_fd(s, proc_of(&a.pid), &a.fd)?;
    if f.is_pipe_end() {
        return Ok(None);
    }
    touched_inode(&f.inum);
    Ok(Some(stat_of(&f.inum, &s.i_map.get(&f.inum))))
}

/// A call reads or writes the inode `inum` whatever its branches look at: whether another
/// call's inode is the same one is part of the situation (`fstat` reads the times `rename`
/// or `link` just wrote; a file `link` counts may be mapped by `mmap`).
pub(super) fn touched_inode(inum: &Inum) {
    situation_term(inum);
}

/// On a pipe Linux answers `ESPIPE` (as POSIX says; measured on the stock kernel by the Linux
/// target's end-to-end test), not `EINVAL`.
pub fn lseek(s: &mut PosixState, a: &LseekArgs) -> Result<Int, Errno> {
    let p = proc_of(&a.pid);
    let mut f = open_fd(s, p, &a.fd)?;
    // Linux checks the origin before the file: no valid whence is EINVAL even on a pipe
    // (measured on the stock kernel); a pipe with a valid one is ESPIPE.
    let whence = [&a.whence_set, &a.whence_cur, &a.whence_end];
    if !Bool::any(whence.iter().map(|w| (*w).clone())).branch() {
        return Err(EINVAL);
    }
    if f.is_pipe_end() {
        return Err(ESPIPE);
    }
    let base = if a.whence_set.branch() {
        Int::lit(0)
    } else if a.whence_cur.branch() {
        f.off.clone()
    } else {
        s.i_map.get(&f.inum).data.len()
    };
    let off = base + &a.off;
    if off.lt(0).branch() {
        return Err(EINVAL);
    }
    f.off = off.clone();
    s.fd_insert(p, &a.fd, &f);
    Ok(off)
}

pub fn close(s: &mut PosixState, a: &FdArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    let f = open_fd(s, p, &a.fd)?;
    s.fd_remove(p, &a.fd);
    if f.is_pipe_end() {
        closed_pipe_end(s, &f);
    } else {
        dropped_reference(s, &f.inum);
    }
    Ok(())
}

pub fn read(s: &mut PosixState, a: &FdArgs) -> ReadResult {
    let p = proc_of(&a.pid);
    let mut f = open_fd(s, p, &a.fd)?;
    if f.is_pipe_end() {
        return pipe_read(s, &f);
    }
    let data = read_page(s, &f.inum, &f.off)?;
    if data.is_some() {
        f.off = f.off + 1;
        s.fd_insert(p, &a.fd, &f);
    }
    Ok(data)
}

/// Pipes cannot seek: `ESPIPE`; a negative offset is `EINVAL` (Linux).
pub fn pread(s: &mut PosixState, a: &PreadArgs) -> ReadResult {
    let f = open_fd(s, proc_of(&a.pid), &a.fd)?;
    if f.is_pipe_end() {
        return Err(ESPIPE);
    }
    if a.off.lt(0).branch() {
        return Err(EINVAL);
    }
    read_page(s, &f.inum, &a.off)
}

/// The page of `inum` at `off >= 0`, `None` at or past the end; reading sets the access time.
fn read_page(s: &mut PosixState, inum: &Inum, off: &Int) -> ReadResult {
    let mut inode = s.i_map.get(inum);
    if off.ge(inode.data.len()).branch() {
        return Ok(None);
    }
    let data = inode.data.get(off);
    inode.atime = PosixState::fresh_time();
    s.i_map.set(inum, &inode);
    Ok(Some(data))
}

pub fn write(s: &mut PosixState, a: &WriteArgs) -> Result<i64, Errno> {
    let p = proc_of(&a.pid);
    let mut f = open_fd(s, p, &a.fd)?;
    if f.is_pipe_end() {
        return pipe_write(s, &f, &a.data);
    }
    write_page(s, &f.inum, &f.off, &a.data);
    f.off = f.off + 1;
    s.fd_insert(p, &a.fd, &f);
    Ok(PAGE)
}

pub fn pwrite(s: &mut PosixState, a: &PwriteArgs) -> Result<i64, Errno> {
    let f = open_fd(s, proc_of(&a.pid), &a.fd)?;
    if f.is_pipe_end() {
        return Err(ESPIPE);
    }
    if a.off.lt(0).branch() {
        return Err(EINVAL);
    }
    write_page(s, &f.inum, &a.off, &a.data);
    Ok(PAGE)
}

/// Write one page at `off`: replaces, or appends at the end. Writes past the end (sparse
/// files) or beyond the model's page bound are outside the model (the path is dropped).
fn write_page(s: &mut PosixState, inum: &Inum, off: &Int, data: &DataVal) {
    let mut inode = s.i_map.get(inum);
    // Appending (the file grows: size update, block allocation) and overwriting a page are
    // separate paths, as in the paper's model, though both end in the same list write.
    let _appending = off.eq(inode.data.len()).branch();
    inode.data.write_at(off, data);
    let t = PosixState::fresh_time();
    inode.mtime = t.clone();
    inode.ctime = t;
    s.i_map.set(inum, &inode);
}

// ------------------------------------------------------------ extension: sync, fsync, reboot

pub fn sync(s: &mut PosixState, _: &()) {
    s.durable_root_dir = s.root_dir.clone();
    s.durable_i_map = s.i_map.clone();
}

/// Linux answers `EINVAL` for `fsync` on a pipe.
pub fn fsync(s: &mut PosixState, a: &FdArgs) -> Result<(), Errno> {
    let f = open_fd(s, proc_of(&a.pid), &a.fd)?;
    if f.is_pipe_end() {
        return Err(EINVAL);
    }
    let inode = s.i_map.get(&f.inum);
    s.durable_i_map.set(&f.inum, &inode);
    Ok(())
}

pub fn reboot(s: &mut PosixState, _: &()) {
    s.root_dir = s.durable_root_dir.clone();
    s.i_map = s.durable_i_map.clone();
}
