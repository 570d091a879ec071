//! [`NaiveFs`]: the same interface as [`ScaleFs`](crate::ScaleFs), written the simple way: one
//! global lock around ordinary collections. Every call takes the lock (a write of one shared
//! line), whatever it touches: the contrast the scalable implementation is measured against,
//! and the reference its property test compares it with.

use crate::limits::*;
use crate::{
    Backing, BuildError, Errno, Mmap, OpenFlags, PAGE, PAGE_BYTES, PageBuf, Posix, StatBuf, Whence,
    check_setup, name_bytes, now, page_index,
};
use commuter_posix_format::errno::*;
use commuter_posix_format::signal::{SIGBUS, SIGSEGV};
use commuter_posix_format::{Backing as SetupBacking, FdTarget, Setup};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

type Page = Box<PageBuf>;

struct Inode {
    ino: u64,
    nlink: u64,
    pages: Vec<Page>,
    atime: u64,
    mtime: u64,
    ctime: u64,
}

struct Pipe {
    data: VecDeque<Page>,
    readers: u64,
    writers: u64,
}

#[derive(Clone, Copy)]
enum File {
    File { inode: usize, off: u64 },
    Pipe { pipe: usize, write: bool },
}

#[derive(Clone, Copy)]
enum MapKind {
    /// Index into `State::anon`.
    Anon(usize),
    File {
        inode: usize,
        pgoff: usize,
    },
}

#[derive(Clone, Copy)]
struct Vma {
    kind: MapKind,
    writable: bool,
}

struct State {
    dir: BTreeMap<String, usize>,
    inodes: Vec<Inode>,
    pipes: Vec<Pipe>,
    fds: [Vec<Option<File>>; 2],
    maps: [BTreeMap<u64, Vma>; 2],
    anon: Vec<Page>,
    next_ino: u64,
}

/// The naive implementation (see the module documentation).
pub struct NaiveFs(Mutex<State>);

impl State {
    fn file(&self, p: usize, fd: i32) -> Result<File, Errno> {
        let fds = self.fds.get(p).ok_or(EINVAL)?;
        usize::try_from(fd)
            .ok()
            .and_then(|i| fds.get(i).copied().flatten())
            .ok_or(EBADF)
    }

    fn alloc_fd(&mut self, p: usize, f: File) -> Result<i32, Errno> {
        let fds = self.fds.get_mut(p).ok_or(EINVAL)?;
        let i = fds.iter().position(Option::is_none).ok_or(EMFILE)?;
        fds[i] = Some(f);
        Ok(i as i32)
    }

    fn stat(&self, i: usize) -> StatBuf {
        let n = &self.inodes[i];
        StatBuf {
            ino: n.ino,
            size: n.pages.len() as u64 * PAGE,
            nlink: n.nlink,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        }
    }

    fn write_page(&mut self, i: usize, idx: usize, buf: &PageBuf) -> Result<(), Errno> {
        if idx >= MAX_FILE_PAGES {
            return Err(EFBIG);
        }
        let n = &mut self.inodes[i];
        while n.pages.len() < idx {
            n.pages.push(Box::new([0; PAGE_BYTES]));
        }
        if idx < n.pages.len() {
            n.pages[idx].copy_from_slice(buf);
        } else {
            n.pages.push(Box::new(*buf));
        }
        let t = now();
        n.mtime = t;
        n.ctime = t;
        Ok(())
    }

    fn read_page(&mut self, i: usize, idx: usize, buf: &mut PageBuf) -> usize {
        let n = &mut self.inodes[i];
        match n.pages.get(idx) {
            None => 0,
            Some(p) => {
                buf.copy_from_slice(&p[..]);
                n.atime = now();
                PAGE_BYTES
            }
        }
    }

    fn drop_link(&mut self, i: usize) {
        let n = &mut self.inodes[i];
        n.nlink = n.nlink.saturating_sub(1);
        n.ctime = now();
    }

    fn maps(&mut self, p: usize) -> Result<&mut BTreeMap<u64, Vma>, Errno> {
        self.maps.get_mut(p).ok_or(EINVAL)
    }

    /// The mapping a memory access of `page` goes through (none: the access faults).
    fn mapping(&mut self, p: usize, page: u64) -> Result<Vma, Errno> {
        self.maps(p)
            .map_err(|_| SIGSEGV)?
            .get(&page)
            .copied()
            .ok_or(SIGSEGV)
    }
}

impl NaiveFs {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A call that panicked left the state as it was at the panic: keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Posix for NaiveFs {
    const NAME: &'static str = "posix-naive";

    fn from_setup(setup: &Setup) -> Result<NaiveFs, BuildError> {
        check_setup(setup)?;
        let t = now();
        let mut s = State {
            dir: BTreeMap::new(),
            inodes: setup
                .inodes
                .iter()
                .enumerate()
                .map(|(i, n)| Inode {
                    ino: i as u64,
                    nlink: n
                        .nlink
                        .unwrap_or(setup.names.iter().filter(|x| x.inode == i).count() as u64),
                    pages: n.data.iter().map(|v| Box::new([*v; PAGE_BYTES])).collect(),
                    atime: t,
                    mtime: t,
                    ctime: t,
                })
                .collect(),
            pipes: setup
                .pipes
                .iter()
                .map(|p| Pipe {
                    data: p.data.iter().map(|v| Box::new([*v; PAGE_BYTES])).collect(),
                    readers: 0,
                    writers: 0,
                })
                .collect(),
            fds: [vec![None; MAX_FDS], vec![None; MAX_FDS]],
            maps: [BTreeMap::new(), BTreeMap::new()],
            anon: Vec::new(),
            next_ino: setup.inodes.len() as u64,
        };
        for n in &setup.names {
            if s.dir.insert(n.name.clone(), n.inode).is_some() {
                return Err(BuildError::Invalid(format!(
                    "name {:?} listed twice",
                    n.name
                )));
            }
        }
        for (p, proc) in setup.procs.iter().enumerate() {
            for fd in &proc.fds {
                let f = match fd.target {
                    FdTarget::File { inode, off } => File::File { inode, off },
                    FdTarget::Pipe { pipe, write } => {
                        let pp = &mut s.pipes[pipe];
                        if write {
                            pp.writers += 1
                        } else {
                            pp.readers += 1
                        }
                        File::Pipe { pipe, write }
                    }
                };
                let slot = &mut s.fds[p][fd.fd as usize];
                if slot.is_some() {
                    return Err(BuildError::Invalid(format!(
                        "process {p}: fd {} listed twice",
                        fd.fd
                    )));
                }
                *slot = Some(f);
            }
            for m in &proc.maps {
                let kind = match m.backing {
                    SetupBacking::Anon { data } => {
                        s.anon.push(Box::new([data; PAGE_BYTES]));
                        MapKind::Anon(s.anon.len() - 1)
                    }
                    SetupBacking::File { inode, off } => MapKind::File {
                        inode,
                        pgoff: (off / PAGE) as usize,
                    },
                };
                s.maps[p].insert(
                    u64::from(m.page),
                    Vma {
                        kind,
                        writable: m.writable,
                    },
                );
            }
        }
        Ok(NaiveFs(Mutex::new(s)))
    }

    fn open(&self, proc: usize, name: &str, flags: OpenFlags) -> Result<i32, Errno> {
        name_bytes(name)?;
        let mut s = self.lock();
        let inode = match s.dir.get(name).copied() {
            Some(i) => {
                if flags.creat && flags.excl {
                    return Err(EEXIST);
                }
                if flags.trunc {
                    let n = &mut s.inodes[i];
                    n.pages.clear();
                    let t = now();
                    n.mtime = t;
                    n.ctime = t;
                }
                i
            }
            None => {
                if !flags.creat {
                    return Err(ENOENT);
                }
                let t = now();
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.push(Inode {
                    ino,
                    nlink: 1,
                    pages: Vec::new(),
                    atime: t,
                    mtime: t,
                    ctime: t,
                });
                let i = s.inodes.len() - 1;
                s.dir.insert(name.to_string(), i);
                i
            }
        };
        s.alloc_fd(proc, File::File { inode, off: 0 })
    }

    fn link(&self, old: &str, new: &str) -> Result<(), Errno> {
        name_bytes(old)?;
        name_bytes(new)?;
        let mut s = self.lock();
        let i = *s.dir.get(old).ok_or(ENOENT)?;
        if s.dir.contains_key(new) {
            return Err(EEXIST);
        }
        s.dir.insert(new.to_string(), i);
        let n = &mut s.inodes[i];
        n.nlink += 1;
        n.ctime = now();
        Ok(())
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        name_bytes(name)?;
        let mut s = self.lock();
        let i = s.dir.remove(name).ok_or(ENOENT)?;
        s.drop_link(i);
        Ok(())
    }

    fn rename(&self, src: &str, dst: &str) -> Result<(), Errno> {
        name_bytes(src)?;
        name_bytes(dst)?;
        let mut s = self.lock();
        let moved = *s.dir.get(src).ok_or(ENOENT)?;
        if src == dst {
            return Ok(());
        }
        if let Some(old) = s.dir.get(dst).copied() {
            s.drop_link(old);
        }
        s.dir.insert(dst.to_string(), moved);
        s.dir.remove(src);
        Ok(())
    }

    fn stat(&self, name: &str) -> Result<StatBuf, Errno> {
        name_bytes(name)?;
        let s = self.lock();
        let i = *s.dir.get(name).ok_or(ENOENT)?;
        Ok(s.stat(i))
    }

    fn fstat(&self, proc: usize, fd: i32) -> Result<Option<StatBuf>, Errno> {
        let s = self.lock();
        match s.file(proc, fd)? {
            File::File { inode, .. } => Ok(Some(s.stat(inode))),
            File::Pipe { .. } => Ok(None),
        }
    }

    fn lseek(&self, proc: usize, fd: i32, off: i64, whence: Whence) -> Result<u64, Errno> {
        let mut s = self.lock();
        let f = s.file(proc, fd)?;
        if whence == Whence::Invalid {
            return Err(EINVAL);
        }
        let File::File { inode, off: cur } = f else {
            return Err(ESPIPE);
        };
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => cur,
            _ => s.inodes[inode].pages.len() as u64 * PAGE,
        };
        let new = i64::try_from(base)
            .map_err(|_| EINVAL)?
            .checked_add(off)
            .ok_or(EINVAL)?;
        let new = u64::try_from(new).map_err(|_| EINVAL)?;
        s.fds[proc][fd as usize] = Some(File::File { inode, off: new });
        Ok(new)
    }

    fn close(&self, proc: usize, fd: i32) -> Result<(), Errno> {
        let mut s = self.lock();
        let f = s.file(proc, fd)?;
        s.fds[proc][fd as usize] = None;
        if let File::Pipe { pipe, write } = f {
            let p = &mut s.pipes[pipe];
            if write {
                p.writers -= 1
            } else {
                p.readers -= 1
            }
        }
        Ok(())
    }

    fn pipe(&self, proc: usize) -> Result<(i32, i32), Errno> {
        let mut s = self.lock();
        s.pipes.push(Pipe {
            data: VecDeque::new(),
            readers: 1,
            writers: 1,
        });
        let pipe = s.pipes.len() - 1;
        let r = s.alloc_fd(proc, File::Pipe { pipe, write: false })?;
        match s.alloc_fd(proc, File::Pipe { pipe, write: true }) {
            Ok(w) => Ok((r, w)),
            Err(e) => {
                s.fds[proc][r as usize] = None;
                Err(e)
            }
        }
    }

    fn read(&self, proc: usize, fd: i32, buf: &mut PageBuf) -> Result<usize, Errno> {
        let mut s = self.lock();
        match s.file(proc, fd)? {
            File::Pipe { write: true, .. } => Err(EBADF),
            File::Pipe { pipe, .. } => {
                let p = &mut s.pipes[pipe];
                match p.data.pop_front() {
                    Some(page) => {
                        buf.copy_from_slice(&page[..]);
                        Ok(PAGE_BYTES)
                    }
                    None if p.writers > 0 => Err(EAGAIN),
                    None => Ok(0),
                }
            }
            File::File { inode, off } => {
                let n = s.read_page(inode, page_index(off as i64)?, buf);
                if n > 0 {
                    s.fds[proc][fd as usize] = Some(File::File {
                        inode,
                        off: off + PAGE,
                    });
                }
                Ok(n)
            }
        }
    }

    fn write(&self, proc: usize, fd: i32, buf: &PageBuf) -> Result<usize, Errno> {
        let mut s = self.lock();
        match s.file(proc, fd)? {
            File::Pipe { write: false, .. } => Err(EBADF),
            File::Pipe { pipe, .. } => {
                let p = &mut s.pipes[pipe];
                if p.readers == 0 {
                    return Err(EPIPE);
                }
                if p.data.len() >= PIPE_PAGES {
                    return Err(EAGAIN);
                }
                p.data.push_back(Box::new(*buf));
                Ok(PAGE_BYTES)
            }
            File::File { inode, off } => {
                s.write_page(inode, page_index(off as i64)?, buf)?;
                s.fds[proc][fd as usize] = Some(File::File {
                    inode,
                    off: off + PAGE,
                });
                Ok(PAGE_BYTES)
            }
        }
    }

    fn pread(&self, proc: usize, fd: i32, off: i64, buf: &mut PageBuf) -> Result<usize, Errno> {
        let mut s = self.lock();
        let File::File { inode, .. } = s.file(proc, fd)? else {
            return Err(ESPIPE);
        };
        Ok(s.read_page(inode, page_index(off)?, buf))
    }

    fn pwrite(&self, proc: usize, fd: i32, off: i64, buf: &PageBuf) -> Result<usize, Errno> {
        let mut s = self.lock();
        let File::File { inode, .. } = s.file(proc, fd)? else {
            return Err(ESPIPE);
        };
        s.write_page(inode, page_index(off)?, buf)?;
        Ok(PAGE_BYTES)
    }

    fn mmap(&self, proc: usize, req: Mmap) -> Result<u64, Errno> {
        let mut s = self.lock();
        let kind = match req.backing {
            Backing::Anon => {
                s.anon.push(Box::new([0; PAGE_BYTES]));
                MapKind::Anon(s.anon.len() - 1)
            }
            Backing::File { fd, off } => match s.file(proc, fd)? {
                File::Pipe { write: true, .. } => return Err(EACCES),
                File::Pipe { .. } if req.writable => return Err(EACCES),
                File::Pipe { .. } => return Err(ENODEV),
                File::File { inode, .. } => MapKind::File {
                    inode,
                    pgoff: page_index(off)?,
                },
            },
        };
        let maps = s.maps(proc)?;
        let page = match req.fixed {
            Some(p) if p >= FIXED_PAGES => return Err(EINVAL),
            Some(p) => p,
            // The first free page above the test area.
            None => (FIXED_PAGES..)
                .find(|p| !maps.contains_key(p))
                .ok_or(ENOMEM)?,
        };
        maps.insert(
            page,
            Vma {
                kind,
                writable: req.writable,
            },
        );
        Ok(page)
    }

    fn munmap(&self, proc: usize, page: u64) -> Result<(), Errno> {
        let mut s = self.lock();
        s.maps(proc)?.remove(&page);
        Ok(())
    }

    fn mprotect(&self, proc: usize, page: u64, writable: bool) -> Result<(), Errno> {
        let mut s = self.lock();
        let vma = s.maps(proc)?.get_mut(&page).ok_or(ENOMEM)?;
        vma.writable = writable;
        Ok(())
    }

    fn memread(&self, proc: usize, page: u64, buf: &mut PageBuf) -> Result<(), Errno> {
        let mut s = self.lock();
        let vma = s.mapping(proc, page)?;
        match vma.kind {
            MapKind::Anon(a) => buf.copy_from_slice(&s.anon[a][..]),
            MapKind::File { inode, pgoff } => {
                let p = s.inodes[inode].pages.get(pgoff).ok_or(SIGBUS)?;
                buf.copy_from_slice(&p[..]);
            }
        }
        Ok(())
    }

    fn memwrite(&self, proc: usize, page: u64, buf: &PageBuf) -> Result<(), Errno> {
        let mut s = self.lock();
        let vma = s.mapping(proc, page)?;
        if !vma.writable {
            return Err(SIGSEGV);
        }
        match vma.kind {
            MapKind::Anon(a) => s.anon[a].copy_from_slice(buf),
            MapKind::File { inode, pgoff } => {
                let p = s.inodes[inode].pages.get_mut(pgoff).ok_or(SIGBUS)?;
                p.copy_from_slice(buf);
            }
        }
        Ok(())
    }
}
