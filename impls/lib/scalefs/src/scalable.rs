//! [`ScaleFs`]: the POSIX model's interface designed by the scalable commutativity rule. Where
//! two calls commute, neither writes a cache line the other reads or writes; where the
//! interface forces them to share, they share that and nothing else. The techniques are the
//! ones the sv6 work published (ScaleFS, RadixVM, Refcache):
//!
//! - **Directory**: a hash table of [`BUCKETS`] buckets, each on cache lines of its own under a
//!   sequence lock. Lookups (`stat`, `open` of an existing name, failing `link`/`unlink`/
//!   `rename`) write nothing; updates lock only the buckets of the names involved. A bucket
//!   holds names and, per name, a pointer to its *binding* (the inode, on a line of its own):
//!   whether a name exists is read from the bucket alone, so a `rename` over an existing name,
//!   which rebinds it without writing its bucket, shares nothing with calls that only ask
//!   whether the name exists (a failing `open(O_CREAT|O_EXCL)` or `link`, a no-op `rename`).
//!   Two names share a bucket only by a hash collision (the model's names `__f0..__f31` do not
//!   collide: a unit test checks it).
//! - **Inodes**: link counts and reference counts (fds and mappings that hold the inode) are
//!   Refcache-style per-CPU deltas: `link`/`unlink` of different names of one file and `open`/
//!   `close`/`mmap`/`munmap` of one file from two CPUs write different lines. `stat` sums the
//!   link deltas (it observes the count: it does not commute with a link change). Inodes are
//!   never freed inside a call: what is unreferenced is reclaimed when the instance ends (an
//!   epoch). The length, each data page, the access time and the modification times are on
//!   lines of their own; each page knows whether it is in the file, so reading or overwriting
//!   a page (and an `lseek` before the start) does not read the length, which appends write.
//!   Times come from a coarse clock and are written only when the clock has moved (two updates
//!   in one tick do not write). A write that stores what a page already holds writes nothing
//!   (an idempotent update).
//! - **Allocation**: inodes, open files, pipes and pages come from per-CPU pools filled when
//!   the instance is built (no allocator inside a call); new inode numbers are per-CPU ranges.
//! - **Fd tables**: per process, one line per fd under a sequence lock. The lowest-fd rule
//!   forces `open`/`pipe` to read every slot below the one they take (the paper's point: an
//!   `O_ANYFD` would not); they write only the slot taken. An open file's offset has a line of
//!   its own; an `lseek` to where the offset already is writes nothing.
//! - **Pipes**: a ring of page slots with the reader's head and the writer's tail on separate
//!   lines and a full flag per slot (a single-producer single-consumer queue): a read and a
//!   write of a non-empty pipe touch different lines. The counts of open read and write ends
//!   are lines of their own (a read of an empty pipe must see whether a writer is left: the
//!   sharing sv6 also kept).
//! - **Address spaces**: per process, a table of per-page entries (the leaf level of RadixVM's
//!   radix tree; the model's test area is small), one line each under a sequence lock, so
//!   calls on different pages share nothing; `munmap` of an unmapped page and `mprotect` to the
//!   protection a page has write nothing. Pages for a non-fixed `mmap` come from a region of
//!   the address space per CPU, so two such mmaps never look at the same entries. Anonymous
//!   pages are allocated at the first store (the zero page until then).

use crate::limits::*;
use crate::percpu::{CPUS, Counter, Line, Pool, SeqGuard, SeqLock, SpinLock, cpu};
use crate::{
    Backing, BuildError, Errno, Mmap, OpenFlags, PAGE, PAGE_BYTES, PageBuf, Posix, StatBuf, Whence,
    check_setup, name_bytes, now, page_index,
};
use commuter_posix_format::errno::*;
use commuter_posix_format::signal::{SIGBUS, SIGSEGV};
use commuter_posix_format::{Backing as SetupBacking, FdTarget, Setup};
use std::sync::atomic::{AtomicU64, Ordering};

/// Directory buckets.
pub const BUCKETS: usize = 256;
/// Names per bucket (a full bucket makes `link`/`open`/`rename` fail with `ENOSPC`).
pub const PER_BUCKET: usize = 4;
/// Pages of the address space each CPU picks non-fixed mappings from.
pub const REGION_PAGES: u64 = 64;

/// A page of data, on lines of its own.
#[repr(C, align(64))]
pub struct Page(PageBuf);

fn zero_page() -> Page {
    Page([0; PAGE_BYTES])
}

/// A raw pointer into the instance's pools, valid as long as the instance (objects are never
/// freed before it ends).
struct Ptr<T>(*mut T);

impl<T> Clone for Ptr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ptr<T> {}

// SAFETY: the pointee is owned by the instance's pools and only shared as `&T` with `T: Sync`.
unsafe impl<T: Sync> Send for Ptr<T> {}
unsafe impl<T: Sync> Sync for Ptr<T> {}

impl<T> Ptr<T> {
    const NULL: Ptr<T> = Ptr(std::ptr::null_mut());

    fn is_null(&self) -> bool {
        self.0.is_null()
    }

    fn get<'a>(self) -> &'a T {
        // SAFETY: non-null pointers come from the instance's pools, which outlive every call
        // (callers hold `&ScaleFs`), and are never freed before the pools are.
        unsafe { &*self.0 }
    }

    fn same(self, other: Ptr<T>) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

// --------------------------------------------------------------------------------- inodes

#[derive(Clone, Copy)]
struct PageSlot {
    valid: bool,
    page: Ptr<Page>,
}

impl PageSlot {
    const EMPTY: PageSlot = PageSlot {
        valid: false,
        page: Ptr::NULL,
    };
}

struct Inode {
    ino: AtomicU64,
    nlink: Counter,
    /// Open files and mappings holding the inode (read only when the instance is reclaimed).
    refs: Counter,
    /// Length in pages.
    len: Line<SeqLock<usize>>,
    /// Per page: whether it is in the file (below the length) and its data, so that reads and
    /// overwrites of a page need not read the length.
    pages: [Line<SeqLock<PageSlot>>; MAX_FILE_PAGES],
    atime: Line<AtomicU64>,
    /// mtime, ctime.
    mctime: Line<[AtomicU64; 2]>,
}

impl Inode {
    fn empty() -> Inode {
        Inode {
            ino: AtomicU64::new(0),
            nlink: Counter::default(),
            refs: Counter::default(),
            len: Line(SeqLock::new(0)),
            pages: std::array::from_fn(|_| Line(SeqLock::new(PageSlot::EMPTY))),
            atime: Line(AtomicU64::new(0)),
            mctime: Line([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    fn reset(&mut self, ino: u64, nlink: i64, t: u64) {
        *self.ino.get_mut() = ino;
        self.nlink.reset(nlink);
        self.refs.reset(0);
        *self.len.0.get_mut() = 0;
        for p in &mut self.pages {
            *p.0.get_mut() = PageSlot::EMPTY;
        }
        *self.atime.0.get_mut() = t;
        for m in &mut self.mctime.0 {
            *m.get_mut() = t;
        }
    }

    fn stat(&self) -> StatBuf {
        StatBuf {
            ino: self.ino.load(Ordering::Relaxed),
            size: self.len.read() as u64 * PAGE,
            nlink: u64::try_from(self.nlink.sum()).unwrap_or(0),
            atime: self.atime.load(Ordering::Acquire),
            mtime: self.mctime[0].load(Ordering::Acquire),
            ctime: self.mctime[1].load(Ordering::Acquire),
        }
    }

    fn touch_atime(&self) {
        let t = now();
        if self.atime.load(Ordering::Relaxed) < t {
            self.atime.store(t, Ordering::Release);
        }
    }

    /// Sets mtime (when `modified`) and ctime to now, writing only what the clock moved.
    fn touch_mctime(&self, modified: bool) {
        let t = now();
        let which: &[usize] = if modified { &[0, 1] } else { &[1] };
        for &i in which {
            if self.mctime[i].load(Ordering::Relaxed) < t {
                self.mctime[i].store(t, Ordering::Release);
            }
        }
    }

    /// Page `idx` into `buf`; false when the page is not in the file (at or past the end).
    fn copy_page(&self, idx: usize, buf: &mut PageBuf) -> bool {
        let Some(slot) = self.pages.get(idx) else {
            return false;
        };
        slot.read_with(|s| {
            if !s.valid {
                return false;
            }
            if s.page.is_null() {
                buf.fill(0);
            } else {
                // SAFETY: the page is valid (pools outlive calls); a copy overlapping a writer
                // is discarded and retried by `read_with`.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        s.page.get().0.as_ptr(),
                        buf.as_mut_ptr(),
                        PAGE_BYTES,
                    )
                };
            }
            true
        })
    }

    /// Whether page `idx` is in the file (below its length); reads only that page's line.
    fn in_file(&self, idx: usize) -> bool {
        self.pages.get(idx).is_some_and(|s| s.read().valid)
    }

    /// Whether page `idx` already holds `buf` (reads only); `None` when it is not in the file.
    fn page_equals(&self, idx: usize, buf: &PageBuf) -> Option<bool> {
        self.pages.get(idx)?.read_with(|s| {
            if !s.valid {
                None
            } else if s.page.is_null() {
                Some(buf.iter().all(|b| *b == 0))
            } else {
                // SAFETY: as in `copy_page`.
                let page: &[u8] =
                    unsafe { std::slice::from_raw_parts(s.page.get().0.as_ptr(), PAGE_BYTES) };
                Some(page == buf.as_slice())
            }
        })
    }

    /// Stores `buf` as page `idx` (in the file from now on), allocating the page from the
    /// caller's CPU's pool. Callers that extend the file hold the length's lock.
    fn store_page(&self, fs: &ScaleFs, idx: usize, buf: &PageBuf) {
        let mut g = self.pages[idx].lock();
        if g.page.is_null() {
            g.page = Ptr(fs.pages.alloc(zero_page, |p| p.0.copy_from_slice(buf)));
        } else {
            // SAFETY: the slot's lock makes this the only writer of the page.
            unsafe { (*g.page.0).0.copy_from_slice(buf) };
        }
        g.valid = true;
    }

    /// Replaces page `idx` if it is in the file: touches that page's line alone (not the
    /// length), so overwrites commute with appends elsewhere without sharing.
    fn overwrite(&self, idx: usize, buf: &PageBuf) -> bool {
        match self.page_equals(idx, buf) {
            None => false,
            // An idempotent update writes nothing.
            Some(true) => true,
            Some(false) => {
                let g = self.pages[idx].lock();
                if !g.valid {
                    return false;
                }
                // SAFETY: a valid slot has a page (or is null only for setup zero pages,
                // which `store_page` gave one); the lock makes this the only writer.
                if let Some(page) = (!g.page.is_null()).then_some(g.page) {
                    unsafe { (*page.0).0.copy_from_slice(buf) };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// The model's `write_page`: replaces page `idx` or appends (zero pages fill a gap).
    fn write_page(&self, fs: &ScaleFs, idx: usize, buf: &PageBuf) -> Result<(), Errno> {
        if idx >= MAX_FILE_PAGES {
            return Err(EFBIG);
        }
        if !self.overwrite(idx, buf) {
            let mut len = self.len.lock();
            let zero = [0u8; PAGE_BYTES];
            for i in *len..idx {
                self.store_page(fs, i, &zero);
            }
            if idx >= *len || self.page_equals(idx, buf) != Some(true) {
                self.store_page(fs, idx, buf);
            }
            if idx >= *len {
                *len = idx + 1;
            }
        }
        self.touch_mctime(true);
        Ok(())
    }

    /// The model's `read_page`: 0 bytes at or past the end; sets the access time.
    fn read_page(&self, idx: usize, buf: &mut PageBuf) -> usize {
        if !self.copy_page(idx, buf) {
            return 0;
        }
        self.touch_atime();
        PAGE_BYTES
    }

    fn truncate(&self) {
        if self.len.read() != 0 {
            let mut len = self.len.lock();
            for slot in &self.pages[..*len] {
                slot.lock().valid = false;
            }
            *len = 0;
        }
        self.touch_mctime(true);
    }
}

// -------------------------------------------------------------------------------- directory

/// What a name is bound to, on a line of its own: the inode, and whether the name has left
/// its bucket. `rename` over an existing name rebinds it here without touching the bucket,
/// so calls that only ask whether the name exists (a failing `open(O_EXCL)` or `link`, a
/// no-op `rename`) share nothing with it. A binding is marked dead, and its entry removed,
/// only while its bucket is locked: under the bucket's lock, bindings in it are alive.
#[derive(Clone, Copy)]
struct Binding {
    inode: Ptr<Inode>,
    dead: bool,
}

type Dent = Line<SeqLock<Binding>>;

fn empty_dent() -> Dent {
    Line(SeqLock::new(Binding {
        inode: Ptr::NULL,
        dead: true,
    }))
}

#[derive(Clone, Copy)]
struct Entry {
    len: u8,
    name: [u8; MAX_NAME],
    dent: Ptr<Dent>,
}

impl Entry {
    const FREE: Entry = Entry {
        len: 0,
        name: [0; MAX_NAME],
        dent: Ptr::NULL,
    };

    fn is(&self, name: &[u8]) -> bool {
        self.len as usize == name.len() && &self.name[..name.len()] == name
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    entries: [Entry; PER_BUCKET],
}

impl Bucket {
    fn find(&self, name: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e.len > 0 && e.is(name))
    }

    fn get(&self, name: &[u8]) -> Option<Ptr<Dent>> {
        self.find(name).map(|i| self.entries[i].dent)
    }

    fn insert(&mut self, name: &[u8], dent: Ptr<Dent>) -> Result<(), Errno> {
        let free = self.entries.iter().position(|e| e.len == 0).ok_or(ENOSPC)?;
        let e = &mut self.entries[free];
        e.len = name.len() as u8;
        e.name[..name.len()].copy_from_slice(name);
        e.dent = dent;
        Ok(())
    }

    fn has_room(&self) -> bool {
        self.entries.iter().any(|e| e.len == 0)
    }

    /// Removes `name`, marking its binding dead (the bucket is locked).
    fn remove(&mut self, name: &[u8]) -> Option<Ptr<Inode>> {
        let i = self.find(name)?;
        let dent = self.entries[i].dent;
        let inode = {
            let mut b = dent.get().lock();
            b.dead = true;
            b.inode
        };
        self.entries[i] = Entry::FREE;
        Some(inode)
    }
}

/// The bucket of a name: FNV-1a, folded.
pub fn bucket_of(name: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    ((h ^ (h >> 32)) % BUCKETS as u64) as usize
}

// ----------------------------------------------------------------------- open files, pipes

#[derive(Clone, Copy)]
enum Kind {
    File(Ptr<Inode>),
    PipeRead(Ptr<Pipe>),
    PipeWrite(Ptr<Pipe>),
}

struct File {
    kind: Kind,
    /// Byte offset (files only).
    off: Line<SeqLock<u64>>,
}

impl File {
    fn empty() -> File {
        File {
            kind: Kind::File(Ptr::NULL),
            off: Line(SeqLock::new(0)),
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    full: bool,
    page: Ptr<Page>,
}

struct Pipe {
    readers: Line<AtomicU64>,
    writers: Line<AtomicU64>,
    /// Next slot to read.
    head: Line<SpinLock<usize>>,
    /// Next slot to write.
    tail: Line<SpinLock<usize>>,
    slots: [Line<SeqLock<Slot>>; PIPE_PAGES],
}

impl Pipe {
    fn empty() -> Pipe {
        Pipe {
            readers: Line(AtomicU64::new(0)),
            writers: Line(AtomicU64::new(0)),
            head: Line(SpinLock::new(0)),
            tail: Line(SpinLock::new(0)),
            slots: std::array::from_fn(|_| {
                Line(SeqLock::new(Slot {
                    full: false,
                    page: Ptr::NULL,
                }))
            }),
        }
    }

    fn reset(&mut self) {
        *self.readers.0.get_mut() = 0;
        *self.writers.0.get_mut() = 0;
        *self.head.0.get_mut() = 0;
        *self.tail.0.get_mut() = 0;
        for s in &mut self.slots {
            s.0.get_mut().full = false;
        }
    }

    fn read(&self, buf: &mut PageBuf) -> Result<usize, Errno> {
        let mut head = self.head.lock();
        let slot = &self.slots[*head % PIPE_PAGES];
        if !slot.read().full {
            if self.writers.load(Ordering::Acquire) > 0 {
                return Err(EAGAIN);
            }
            return Ok(0);
        }
        let mut s = slot.lock();
        // SAFETY: a full slot has a page; the head lock makes this the only reader.
        buf.copy_from_slice(&s.page.get().0);
        s.full = false;
        *head += 1;
        Ok(PAGE_BYTES)
    }

    fn write(&self, fs: &ScaleFs, buf: &PageBuf) -> Result<usize, Errno> {
        let mut tail = self.tail.lock();
        if self.readers.load(Ordering::Acquire) == 0 {
            return Err(EPIPE);
        }
        let slot = &self.slots[*tail % PIPE_PAGES];
        if slot.read().full {
            return Err(EAGAIN);
        }
        let mut s = slot.lock();
        if s.page.is_null() {
            s.page = Ptr(fs.pages.alloc(zero_page, |p| p.0.copy_from_slice(buf)));
        } else {
            // SAFETY: an empty slot's page is only touched by the tail's holder.
            unsafe { (*s.page.0).0.copy_from_slice(buf) };
        }
        s.full = true;
        *tail += 1;
        Ok(PAGE_BYTES)
    }
}

// ---------------------------------------------------------------------------- address space

#[derive(Clone, Copy)]
enum Map {
    None,
    /// An anonymous page (null: still the zero page).
    Anon(Ptr<Page>),
    /// A file's page `pgoff`.
    File(Ptr<Inode>, usize),
}

#[derive(Clone, Copy)]
struct Pte {
    map: Map,
    writable: bool,
}

const UNMAPPED: Pte = Pte {
    map: Map::None,
    writable: false,
};

struct Proc {
    fds: Box<[Line<SeqLock<Ptr<File>>>]>,
    /// `FIXED_PAGES` test-area pages, then `REGION_PAGES` per CPU.
    vm: Box<[Line<SeqLock<Pte>>]>,
}

impl Proc {
    fn new() -> Proc {
        let pages = FIXED_PAGES + CPUS as u64 * REGION_PAGES;
        Proc {
            fds: (0..MAX_FDS)
                .map(|_| Line(SeqLock::new(Ptr::NULL)))
                .collect(),
            vm: (0..pages).map(|_| Line(SeqLock::new(UNMAPPED))).collect(),
        }
    }

    fn file(&self, fd: i32) -> Result<&File, Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.fds.get(i))
            .ok_or(EBADF)?;
        let f = slot.read();
        if f.is_null() { Err(EBADF) } else { Ok(f.get()) }
    }

    /// The lowest free fd, taken for `file`: reads the slots below it, writes only its own.
    fn alloc_fd(&self, file: Ptr<File>) -> Result<i32, Errno> {
        for (i, slot) in self.fds.iter().enumerate() {
            if !slot.read().is_null() {
                continue;
            }
            let mut g = slot.lock();
            if g.is_null() {
                *g = file;
                return Ok(i as i32);
            }
        }
        Err(EMFILE)
    }

    fn pte(&self, page: u64) -> Option<&SeqLock<Pte>> {
        usize::try_from(page)
            .ok()
            .and_then(|i| self.vm.get(i))
            .map(|l| &l.0)
    }
}

/// Drops what a page-table entry held (a file's reference; an anonymous page stays in its
/// pool until the instance ends).
fn release(pte: &Pte) {
    if let Map::File(inode, _) = pte.map {
        inode.get().refs.add(-1);
    }
}

// ---------------------------------------------------------------------------------- the fs

/// The scalable implementation (see the module documentation).
pub struct ScaleFs {
    dir: Box<[Line<SeqLock<Bucket>>]>,
    procs: [Proc; 2],
    next_ino: [Line<AtomicU64>; CPUS],
    inodes: Pool<Inode>,
    files: Pool<File>,
    pipes: Pool<Pipe>,
    pages: Pool<Page>,
    dents: Pool<Dent>,
}

impl ScaleFs {
    fn proc(&self, p: usize) -> Result<&Proc, Errno> {
        self.procs.get(p).ok_or(EINVAL)
    }

    fn bucket(&self, name: &[u8]) -> &SeqLock<Bucket> {
        // Names are ASCII-checked by `name_bytes`'s caller through `&str`.
        let s = std::str::from_utf8(name).unwrap_or("");
        &self.dir[bucket_of(s)].0
    }

    /// Whether `name` exists: reads its bucket only.
    fn exists(&self, name: &[u8]) -> bool {
        self.bucket(name).read().find(name).is_some()
    }

    /// The inode `name` is bound to: reads its bucket and its binding.
    fn lookup(&self, name: &[u8]) -> Option<Ptr<Inode>> {
        loop {
            let dent = self.bucket(name).read().get(name)?;
            let b = dent.get().read();
            if !b.dead {
                return Some(b.inode);
            }
            // Removed since the bucket was read: read it again.
            std::hint::spin_loop();
        }
    }

    fn new_dent(&self, inode: Ptr<Inode>) -> Ptr<Dent> {
        Ptr(self.dents.alloc(empty_dent, |d| {
            *d.0.get_mut() = Binding { inode, dead: false };
        }))
    }

    fn new_file(&self, kind: Kind, off: u64) -> Ptr<File> {
        Ptr(self.files.alloc(File::empty, |f| {
            f.kind = kind;
            *f.off.0.get_mut() = off;
        }))
    }

    fn new_inode(&self, t: u64) -> Ptr<Inode> {
        let c = cpu();
        let ino = self.next_ino[c].fetch_add(CPUS as u64, Ordering::Relaxed);
        Ptr(self.inodes.alloc(Inode::empty, |i| i.reset(ino, 1, t)))
    }

    /// Locks the buckets of two names in bucket order: `a`'s guard, and `b`'s when `b` has
    /// another bucket.
    fn lock_two(&self, a: &[u8], b: &[u8]) -> (SeqGuard<'_, Bucket>, Option<SeqGuard<'_, Bucket>>) {
        let (ia, ib) = (bucket_of_bytes(a), bucket_of_bytes(b));
        if ia == ib {
            (self.dir[ia].0.lock(), None)
        } else if ia < ib {
            let ga = self.dir[ia].0.lock();
            let gb = self.dir[ib].0.lock();
            (ga, Some(gb))
        } else {
            let gb = self.dir[ib].0.lock();
            let ga = self.dir[ia].0.lock();
            (ga, Some(gb))
        }
    }
}

impl Posix for ScaleFs {
    const NAME: &'static str = "posix-scalable";

    fn from_setup(setup: &Setup) -> Result<ScaleFs, BuildError> {
        check_setup(setup)?;
        let n = setup.inodes.len() as u64;
        let fs = ScaleFs {
            dir: (0..BUCKETS)
                .map(|_| {
                    Line(SeqLock::new(Bucket {
                        entries: [Entry::FREE; PER_BUCKET],
                    }))
                })
                .collect(),
            procs: [Proc::new(), Proc::new()],
            next_ino: std::array::from_fn(|c| Line(AtomicU64::new(n + c as u64))),
            inodes: Pool::new(2, Inode::empty),
            files: Pool::new(4, File::empty),
            pipes: Pool::new(1, Pipe::empty),
            pages: Pool::new(4, zero_page),
            dents: Pool::new(4, empty_dent),
        };
        let t = now();
        let inodes: Vec<Ptr<Inode>> = setup
            .inodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let names = setup.names.iter().filter(|n| n.inode == i).count();
                let nlink = node.nlink.map_or(names as i64, |l| l as i64);
                let inode = Ptr(fs
                    .inodes
                    .alloc(Inode::empty, |x| x.reset(i as u64, nlink, t)));
                for (k, v) in node.data.iter().enumerate() {
                    inode.get().store_page(&fs, k, &[*v; PAGE_BYTES]);
                }
                *inode.get().len.lock() = node.data.len();
                inode
            })
            .collect();
        for n in &setup.names {
            let name = n.name.as_bytes();
            let mut b = fs.bucket(name).lock();
            if b.find(name).is_some() {
                return Err(BuildError::Invalid(format!(
                    "name {:?} listed twice",
                    n.name
                )));
            }
            b.insert(name, fs.new_dent(inodes[n.inode]))
                .map_err(|_| BuildError::Limit {
                    what: format!("names in the bucket of {:?}", n.name),
                    limit: PER_BUCKET,
                })?;
        }
        let pipes: Vec<Ptr<Pipe>> = setup
            .pipes
            .iter()
            .map(|p| {
                let pipe = Ptr(fs.pipes.alloc(Pipe::empty, Pipe::reset));
                for v in &p.data {
                    // A fresh pipe with a reader so the write cannot fail; counts are set below.
                    pipe.get().readers.store(1, Ordering::Relaxed);
                    let _ = pipe.get().write(&fs, &[*v; PAGE_BYTES]);
                }
                pipe.get().readers.store(0, Ordering::Relaxed);
                pipe
            })
            .collect();
        for (p, proc) in setup.procs.iter().enumerate() {
            for fd in &proc.fds {
                let kind = match fd.target {
                    FdTarget::File { inode, .. } => {
                        inodes[inode].get().refs.add(1);
                        Kind::File(inodes[inode])
                    }
                    FdTarget::Pipe { pipe, write } => {
                        let counter = if write {
                            &pipes[pipe].get().writers
                        } else {
                            &pipes[pipe].get().readers
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if write {
                            Kind::PipeWrite(pipes[pipe])
                        } else {
                            Kind::PipeRead(pipes[pipe])
                        }
                    }
                };
                let off = match fd.target {
                    FdTarget::File { off, .. } => off,
                    FdTarget::Pipe { .. } => 0,
                };
                let slot = &fs.procs[p].fds[fd.fd as usize];
                let mut g = slot.lock();
                if !g.is_null() {
                    return Err(BuildError::Invalid(format!(
                        "process {p}: fd {} listed twice",
                        fd.fd
                    )));
                }
                *g = fs.new_file(kind, off);
            }
            for m in &proc.maps {
                let map = match m.backing {
                    SetupBacking::Anon { data } => {
                        if data == 0 {
                            Map::Anon(Ptr::NULL)
                        } else {
                            Map::Anon(Ptr(fs.pages.alloc(zero_page, |pg| pg.0.fill(data))))
                        }
                    }
                    SetupBacking::File { inode, off } => {
                        inodes[inode].get().refs.add(1);
                        Map::File(inodes[inode], (off / PAGE) as usize)
                    }
                };
                let mut g = fs.procs[p].vm[m.page as usize].0.lock();
                *g = Pte {
                    map,
                    writable: m.writable,
                };
            }
        }
        Ok(fs)
    }

    fn open(&self, proc: usize, name: &str, flags: OpenFlags) -> Result<i32, Errno> {
        let pr = self.proc(proc)?;
        let name = name_bytes(name)?;
        // O_CREAT|O_EXCL of an existing name fails on the bucket alone.
        let existing = if self.exists(name) {
            if flags.creat && flags.excl {
                return Err(EEXIST);
            }
            self.lookup(name)
        } else {
            None
        };
        let inode = match existing {
            Some(inode) => {
                if flags.trunc {
                    inode.get().truncate();
                }
                inode
            }
            None => {
                if !flags.creat {
                    return Err(ENOENT);
                }
                let mut b = self.bucket(name).lock();
                match b.get(name) {
                    // Created meanwhile: as if this open came second.
                    Some(_) if flags.excl => return Err(EEXIST),
                    Some(dent) => dent.get().read().inode,
                    None => {
                        if !b.has_room() {
                            return Err(ENOSPC);
                        }
                        let inode = self.new_inode(now());
                        b.insert(name, self.new_dent(inode))?;
                        inode
                    }
                }
            }
        };
        inode.get().refs.add(1);
        let file = self.new_file(Kind::File(inode), 0);
        pr.alloc_fd(file).inspect_err(|_| inode.get().refs.add(-1))
    }

    fn link(&self, old: &str, new: &str) -> Result<(), Errno> {
        let (old, new) = (name_bytes(old)?, name_bytes(new)?);
        // Failures are decided by the buckets alone: they write nothing and read no binding.
        if !self.exists(old) {
            return Err(ENOENT);
        }
        if self.exists(new) {
            return Err(EEXIST);
        }
        // Only `new`'s bucket is locked: `old` is only read (a link of `old` commutes with
        // other lookups of it). The link takes effect at the lookup of `old`; the inode cannot
        // go away meanwhile (nothing is freed inside a call).
        let inode = self.lookup(old).ok_or(ENOENT)?;
        let mut g = self.bucket(new).lock();
        let inode = if bucket_of_bytes(old) == bucket_of_bytes(new) {
            g.get(old).ok_or(ENOENT)?.get().read().inode
        } else {
            inode
        };
        if g.find(new).is_some() {
            return Err(EEXIST);
        }
        if !g.has_room() {
            return Err(ENOSPC);
        }
        g.insert(new, self.new_dent(inode))?;
        drop(g);
        inode.get().nlink.add(1);
        inode.get().touch_mctime(false);
        Ok(())
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        let name = name_bytes(name)?;
        if !self.exists(name) {
            return Err(ENOENT);
        }
        let inode = self.bucket(name).lock().remove(name).ok_or(ENOENT)?;
        inode.get().nlink.add(-1);
        inode.get().touch_mctime(false);
        Ok(())
    }

    fn rename(&self, src: &str, dst: &str) -> Result<(), Errno> {
        let (src, dst) = (name_bytes(src)?, name_bytes(dst)?);
        if !self.exists(src) {
            return Err(ENOENT);
        }
        if src == dst {
            return Ok(());
        }
        loop {
            let moved = self.lookup(src).ok_or(ENOENT)?;
            if let Some(dd) = self.bucket(dst).read().get(dst) {
                let bound = dd.get().read();
                if !bound.dead {
                    // `dst` exists: rebind it (its bucket is not written), remove `src`.
                    let mut gs = self.bucket(src).lock();
                    let Some(sd) = gs.get(src) else {
                        return Err(ENOENT);
                    };
                    let moved = sd.get().read().inode;
                    if bound.inode.same(moved) {
                        // Another link of the same inode: `dst` stays as it is.
                        gs.remove(src);
                        drop(gs);
                        moved.get().nlink.add(-1);
                        moved.get().touch_mctime(false);
                        return Ok(());
                    }
                    let mut d = dd.get().lock();
                    if d.dead {
                        // `dst` was removed meanwhile: start again.
                        continue;
                    }
                    let old = d.inode;
                    d.inode = moved;
                    drop(d);
                    gs.remove(src);
                    drop(gs);
                    old.get().nlink.add(-1);
                    old.get().touch_mctime(false);
                    return Ok(());
                }
            }
            // `dst` does not exist: a new entry in its bucket, `src`'s removed.
            let (mut gs, gd) = self.lock_two(src, dst);
            if gs.get(src).is_none() {
                return Err(ENOENT);
            }
            let db: &Bucket = gd.as_deref().unwrap_or(&gs);
            if db.find(dst).is_some() {
                // Created meanwhile: start again (it is now a rebinding).
                continue;
            }
            if !db.has_room() {
                return Err(ENOSPC);
            }
            let _ = moved;
            let moved = gs.get(src).ok_or(ENOENT)?.get().read().inode;
            let dent = self.new_dent(moved);
            match gd {
                Some(mut g) => g.insert(dst, dent)?,
                None => gs.insert(dst, dent)?,
            }
            gs.remove(src);
            return Ok(());
        }
    }

    fn stat(&self, name: &str) -> Result<StatBuf, Errno> {
        let name = name_bytes(name)?;
        self.lookup(name).map(|i| i.get().stat()).ok_or(ENOENT)
    }

    fn fstat(&self, proc: usize, fd: i32) -> Result<Option<StatBuf>, Errno> {
        match self.proc(proc)?.file(fd)?.kind {
            Kind::File(inode) => Ok(Some(inode.get().stat())),
            Kind::PipeRead(_) | Kind::PipeWrite(_) => Ok(None),
        }
    }

    fn lseek(&self, proc: usize, fd: i32, off: i64, whence: Whence) -> Result<u64, Errno> {
        let f = self.proc(proc)?.file(fd)?;
        if whence == Whence::Invalid {
            return Err(EINVAL);
        }
        let Kind::File(inode) = f.kind else {
            return Err(ESPIPE);
        };
        let base = match whence {
            Whence::Set => 0,
            Whence::Cur => f.off.read(),
            _ => {
                // Before the start of the file: decided by one page's presence (the file is
                // shorter than `k` pages), not by the length, which appends elsewhere write.
                if off < 0 {
                    let k =
                        usize::try_from(off.unsigned_abs().div_ceil(PAGE)).unwrap_or(usize::MAX);
                    if !inode.get().in_file(k - 1) {
                        return Err(EINVAL);
                    }
                }
                inode.get().len.read() as u64 * PAGE
            }
        };
        let new = i64::try_from(base)
            .map_err(|_| EINVAL)?
            .checked_add(off)
            .ok_or(EINVAL)?;
        let new = u64::try_from(new).map_err(|_| EINVAL)?;
        // Seeking to where the offset is writes nothing (two equal lseeks commute).
        if f.off.read() != new {
            *f.off.lock() = new;
        }
        Ok(new)
    }

    fn close(&self, proc: usize, fd: i32) -> Result<(), Errno> {
        let pr = self.proc(proc)?;
        let f = pr.file(fd)?;
        let mut slot = pr.fds[fd as usize].lock();
        if slot.is_null() {
            return Err(EBADF);
        }
        *slot = Ptr::NULL;
        drop(slot);
        match f.kind {
            Kind::File(inode) => inode.get().refs.add(-1),
            Kind::PipeRead(p) => {
                p.get().readers.fetch_sub(1, Ordering::AcqRel);
            }
            Kind::PipeWrite(p) => {
                p.get().writers.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    fn pipe(&self, proc: usize) -> Result<(i32, i32), Errno> {
        let pr = self.proc(proc)?;
        let pipe = Ptr(self.pipes.alloc(Pipe::empty, |p| {
            p.reset();
            *p.readers.0.get_mut() = 1;
            *p.writers.0.get_mut() = 1;
        }));
        let r = pr.alloc_fd(self.new_file(Kind::PipeRead(pipe), 0))?;
        match pr.alloc_fd(self.new_file(Kind::PipeWrite(pipe), 0)) {
            Ok(w) => Ok((r, w)),
            Err(e) => {
                *pr.fds[r as usize].lock() = Ptr::NULL;
                Err(e)
            }
        }
    }

    fn read(&self, proc: usize, fd: i32, buf: &mut PageBuf) -> Result<usize, Errno> {
        let f = self.proc(proc)?.file(fd)?;
        match f.kind {
            Kind::PipeRead(p) => p.get().read(buf),
            Kind::PipeWrite(_) => Err(EBADF),
            Kind::File(inode) => {
                // At the end of the file a read changes nothing: it only reads (the offset's
                // line is written only when the offset moves).
                let idx = page_index(f.off.read() as i64)?;
                if !inode.get().in_file(idx) {
                    return Ok(0);
                }
                let mut off = f.off.lock();
                let n = inode.get().read_page(page_index(*off as i64)?, buf);
                if n > 0 {
                    *off += PAGE;
                }
                Ok(n)
            }
        }
    }

    fn write(&self, proc: usize, fd: i32, buf: &PageBuf) -> Result<usize, Errno> {
        let f = self.proc(proc)?.file(fd)?;
        match f.kind {
            Kind::PipeWrite(p) => p.get().write(self, buf),
            Kind::PipeRead(_) => Err(EBADF),
            Kind::File(inode) => {
                let mut off = f.off.lock();
                inode
                    .get()
                    .write_page(self, page_index(*off as i64)?, buf)?;
                *off += PAGE;
                Ok(PAGE_BYTES)
            }
        }
    }

    fn pread(&self, proc: usize, fd: i32, off: i64, buf: &mut PageBuf) -> Result<usize, Errno> {
        let f = self.proc(proc)?.file(fd)?;
        let Kind::File(inode) = f.kind else {
            return Err(ESPIPE);
        };
        Ok(inode.get().read_page(page_index(off)?, buf))
    }

    fn pwrite(&self, proc: usize, fd: i32, off: i64, buf: &PageBuf) -> Result<usize, Errno> {
        let f = self.proc(proc)?.file(fd)?;
        let Kind::File(inode) = f.kind else {
            return Err(ESPIPE);
        };
        inode.get().write_page(self, page_index(off)?, buf)?;
        Ok(PAGE_BYTES)
    }

    fn mmap(&self, proc: usize, req: Mmap) -> Result<u64, Errno> {
        let pr = self.proc(proc)?;
        let map = match req.backing {
            Backing::Anon => Map::Anon(Ptr::NULL),
            Backing::File { fd, off } => {
                let f = pr.file(fd)?;
                match f.kind {
                    Kind::PipeWrite(_) => return Err(EACCES),
                    Kind::PipeRead(_) if req.writable => return Err(EACCES),
                    Kind::PipeRead(_) => return Err(ENODEV),
                    Kind::File(inode) => Map::File(inode, page_index(off)?),
                }
            }
        };
        let pte = Pte {
            map,
            writable: req.writable,
        };
        let hold = || {
            if let Map::File(inode, _) = map {
                inode.get().refs.add(1);
            }
        };
        match req.fixed {
            Some(page) => {
                if page >= FIXED_PAGES {
                    return Err(EINVAL);
                }
                let mut g = pr.vm[page as usize].lock();
                release(&g);
                hold();
                *g = pte;
                Ok(page)
            }
            None => {
                let start = FIXED_PAGES + cpu() as u64 * REGION_PAGES;
                for page in start..start + REGION_PAGES {
                    let slot = &pr.vm[page as usize];
                    if !matches!(slot.read().map, Map::None) {
                        continue;
                    }
                    let mut g = slot.lock();
                    if matches!(g.map, Map::None) {
                        hold();
                        *g = pte;
                        return Ok(page);
                    }
                }
                Err(ENOMEM)
            }
        }
    }

    fn munmap(&self, proc: usize, page: u64) -> Result<(), Errno> {
        let Some(slot) = self.proc(proc)?.pte(page) else {
            return Ok(());
        };
        if matches!(slot.read().map, Map::None) {
            return Ok(());
        }
        let mut g = slot.lock();
        release(&g);
        *g = UNMAPPED;
        Ok(())
    }

    fn mprotect(&self, proc: usize, page: u64, writable: bool) -> Result<(), Errno> {
        let slot = self.proc(proc)?.pte(page).ok_or(ENOMEM)?;
        let pte = slot.read();
        if matches!(pte.map, Map::None) {
            return Err(ENOMEM);
        }
        if pte.writable != writable {
            let mut g = slot.lock();
            if matches!(g.map, Map::None) {
                return Err(ENOMEM);
            }
            g.writable = writable;
        }
        Ok(())
    }

    fn memread(&self, proc: usize, page: u64, buf: &mut PageBuf) -> Result<(), Errno> {
        let slot = self
            .proc(proc)
            .map_err(|_| SIGSEGV)?
            .pte(page)
            .ok_or(SIGSEGV)?;
        loop {
            let pte = slot.read();
            match pte.map {
                Map::None => return Err(SIGSEGV),
                Map::File(inode, pgoff) => {
                    // Past the end of the file: the page is not in it.
                    if !inode.get().copy_page(pgoff, buf) {
                        return Err(SIGBUS);
                    }
                    return Ok(());
                }
                Map::Anon(p) => {
                    // The page may be replaced (munmap, MAP_FIXED) meanwhile: copy under the
                    // entry's sequence and retry if it moved.
                    let ok = slot.read_with(|now| match now.map {
                        Map::Anon(q) if q.same(p) => {
                            if p.is_null() {
                                buf.fill(0);
                            } else {
                                // SAFETY: pool pages outlive calls; torn copies are retried.
                                unsafe {
                                    std::ptr::copy_nonoverlapping(
                                        p.get().0.as_ptr(),
                                        buf.as_mut_ptr(),
                                        PAGE_BYTES,
                                    )
                                };
                            }
                            true
                        }
                        _ => false,
                    });
                    if ok {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn memwrite(&self, proc: usize, page: u64, buf: &PageBuf) -> Result<(), Errno> {
        let slot = self
            .proc(proc)
            .map_err(|_| SIGSEGV)?
            .pte(page)
            .ok_or(SIGSEGV)?;
        let pte = slot.read();
        if matches!(pte.map, Map::None) || !pte.writable {
            return Err(SIGSEGV);
        }
        match pte.map {
            Map::None => Err(SIGSEGV),
            Map::File(inode, pgoff) => {
                // A store never extends a file: past its end is SIGBUS.
                if inode.get().overwrite(pgoff, buf) {
                    Ok(())
                } else {
                    Err(SIGBUS)
                }
            }
            Map::Anon(p) => {
                let same = slot.read_with(|now| match now.map {
                    Map::Anon(q) if q.same(p) => {
                        if p.is_null() {
                            buf.iter().all(|b| *b == 0)
                        } else {
                            p.get().0 == *buf
                        }
                    }
                    _ => false,
                });
                if same {
                    return Ok(());
                }
                let mut g = slot.lock();
                match g.map {
                    Map::Anon(q) if q.is_null() => {
                        g.map = Map::Anon(Ptr(self
                            .pages
                            .alloc(zero_page, |pg| pg.0.copy_from_slice(buf))));
                    }
                    // SAFETY: the entry's lock makes this the only writer of its page.
                    Map::Anon(q) => unsafe { (*q.0).0.copy_from_slice(buf) },
                    // Replaced meanwhile: store through what is there now.
                    _ => {
                        drop(g);
                        return self.memwrite(proc, page, buf);
                    }
                }
                Ok(())
            }
        }
    }
}

fn bucket_of_bytes(name: &[u8]) -> usize {
    bucket_of(std::str::from_utf8(name).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_models_names_get_buckets_of_their_own() {
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..32 {
            let name = format!("__f{i}");
            if let Some(other) = seen.insert(bucket_of(&name), name.clone()) {
                panic!("{name} and {other} share bucket {}", bucket_of(&name));
            }
        }
    }

    #[test]
    fn layout_keeps_shared_things_on_lines_of_their_own() {
        assert_eq!(std::mem::align_of::<Line<u8>>(), 64);
        assert_eq!(std::mem::size_of::<Line<SeqLock<Pte>>>(), 64);
        assert_eq!(std::mem::size_of::<Line<SeqLock<Ptr<File>>>>(), 64);
        assert_eq!(std::mem::size_of::<Page>() % 64, 0);
    }
}
