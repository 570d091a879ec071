//! The state of the POSIX model (see the design document "posix-model"), its custom equalities,
//! and the accessors every call goes through.
//!
//! All reads and writes of `root_dir`, of the fd maps and of the memory maps go through the
//! accessors below: they register the key with the [`ledger`](super::ledger), which
//! instantiates the model's universal facts about those maps at exactly the keys a path touches. That keeps every
//! query quantifier-free (see the ledger's documentation for why this is exact).

use commuter_engine::{
    Bool, Int, PartialMap, SmallList, SymEq, Symbolic, TotalMap, Value, assume, fresh_value,
    situation_term,
};

use super::ledger;

commuter_engine::uninterpreted!(
    /// A file name in the root directory.
    pub FileName
);
commuter_engine::uninterpreted!(
    /// An inode number.
    pub Inum
);
commuter_engine::uninterpreted!(
    /// One page of data (4096 bytes); only equality between pages matters. In concrete tests
    /// a page is the byte all its bytes equal: 0 for the zero page, 1..=16 for the others
    /// (see `concrete`).
    pub DataVal,
    custom_concrete
);

/// The page a new anonymous mapping holds: zeros (POSIX: "initialized to zero"; the design
/// document's "fresh data value" would let a test expect any content, where Linux gives zeros).
pub fn zero_page() -> DataVal {
    fresh_value("zero_page")
}
commuter_engine::uninterpreted!(
    /// A virtual page.
    pub Va
);
commuter_engine::uninterpreted!(
    /// A pipe.
    pub PipeId
);
/// The implementation's mapping (Linux's VMA) that holds a page: pages of one region are
/// adjacent and mapped alike (`alloc::assume_vma_layout`), so the kernel keeps them in one
/// VMA. Not observable through the interface; it decides what a call splits and shares. Only
/// equality between regions matters. (An integer rather than a sort of its own: a new sort
/// moved Z3's term ids enough to send one quantified query of `open/open/open`, which never
/// meets a region, into a loop.)
pub type Region = Int;

/// Bytes in one data value: `read`/`write` move one page at a time (the shared schema's value).
pub const PAGE: i64 = commuter_posix_format::PAGE as i64;
/// Pages a file or a pipe can hold in the model.
pub const MAX_PAGES: usize = 8;
/// Processes calls can run in.
pub const PROCESSES: usize = 2;

/// Linux errno values and the signals of memory accesses, as the model's `Errno`; the numbers
/// are the shared schema's (`commuter_posix_format::{errno, signal}`), which targets and the
/// guest read too.
pub mod errno {
    use commuter_posix_format::{errno as e, signal as sig};

    pub const ENOENT: i64 = e::ENOENT as i64;
    pub const EBADF: i64 = e::EBADF as i64;
    pub const EAGAIN: i64 = e::EAGAIN as i64;
    pub const ENOMEM: i64 = e::ENOMEM as i64;
    pub const EACCES: i64 = e::EACCES as i64;
    pub const EEXIST: i64 = e::EEXIST as i64;
    pub const ENODEV: i64 = e::ENODEV as i64;
    pub const EINVAL: i64 = e::EINVAL as i64;
    pub const ESPIPE: i64 = e::ESPIPE as i64;
    pub const EPIPE: i64 = e::EPIPE as i64;
    /// Signal numbers, returned as the `Err` of `memread`/`memwrite`.
    pub const SIGBUS: i64 = sig::SIGBUS as i64;
    pub const SIGSEGV: i64 = sig::SIGSEGV as i64;
}

/// A call's error: a Linux errno (or, for memory accesses, a signal number).
pub type Errno = i64;

pub type Pages = SmallList<DataVal, MAX_PAGES>;

#[derive(Clone, Debug, Symbolic, Value)]
pub struct Inode {
    pub data: Pages,
    pub nlink: Int,
    pub atime: Int,
    pub mtime: Int,
    pub ctime: Int,
}

#[derive(Clone, Debug, Symbolic, Value)]
pub struct Pipe {
    pub data: Pages,
}

/// A file descriptor: a pipe end (`pipeid`, `pipewriter`) or an open file (`inum`, `off`).
#[derive(Clone, Debug, Symbolic, Value)]
#[symbolic(eq = fd_eq)]
pub struct Fd {
    pub ispipe: Bool,
    pub pipeid: PipeId,
    pub pipewriter: Bool,
    pub inum: Inum,
    pub off: Int,
}

/// Only the fields of the fd's kind are observable.
fn fd_eq(a: &Fd, b: &Fd) -> Bool {
    let pipe = a.pipeid.sym_eq(&b.pipeid) & a.pipewriter.iff(&b.pipewriter);
    let file = a.inum.sym_eq(&b.inum) & a.off.eq(&b.off);
    a.ispipe.iff(&b.ispipe) & (a.ispipe.clone() & pipe | !&a.ispipe & file)
}

impl Fd {
    pub fn file(inum: &Inum, off: impl Into<Int>) -> Fd {
        Fd {
            ispipe: Bool::lit(false),
            pipeid: unused("pipeid"),
            pipewriter: Bool::lit(false),
            inum: inum.clone(),
            off: off.into(),
        }
    }

    pub fn pipe_end(pipe: &PipeId, writer: bool) -> Fd {
        Fd {
            ispipe: Bool::lit(true),
            pipeid: pipe.clone(),
            pipewriter: Bool::lit(writer),
            inum: unused("inum"),
            off: Int::lit(0),
        }
    }

    /// True for an fd that is an end of `pipe`: its write end where `writer` holds, else its
    /// read end.
    pub fn is_end_of(&self, pipe: &PipeId, writer: &Bool) -> Bool {
        self.ispipe.clone() & self.pipeid.sym_eq(pipe) & self.pipewriter.iff(writer)
    }

    /// Branches on whether the fd is a pipe end. If it is, which pipe is part of the situation,
    /// whether or not a branch reads it: every fd of one end shares the end's open file (pipes
    /// are opened once; more fds of an end come from `dup` and `fork`), which a call on one fd
    /// touches (its reference count) even where it only fails (`pread`: `ESPIPE`), so another
    /// call's fd may be the same end or not.
    pub fn is_pipe_end(&self) -> bool {
        let pipe = self.ispipe.branch();
        if pipe {
            situation_term(&self.pipeid);
        }
        pipe
    }

    /// True for a file fd of inode `inum`.
    pub fn is_file_of(&self, inum: &Inum) -> Bool {
        !&self.ispipe & self.inum.sym_eq(inum)
    }
}

/// A memory mapping: anonymous (`anondata`) or of a file (`inum`, page offset `off`), in the
/// implementation's mapping `region`; `populated` once touched since it was mapped.
#[derive(Clone, Debug, Symbolic, Value)]
#[symbolic(eq = vma_eq)]
pub struct Vma {
    pub anon: Bool,
    pub writable: Bool,
    pub anondata: DataVal,
    pub inum: Inum,
    pub off: Int,
    pub region: Region,
    /// Whether the page has been touched since it was mapped, so that the implementation has
    /// it in its page tables (Linux: a present page-table entry). The first touch faults it
    /// in, allocating page-table levels on the way (shared by every page under them); tearing
    /// a page down or changing its protection walks its entry. Not observable.
    pub populated: Bool,
}

impl Vma {
    /// True for a mapping of inode `inum`.
    pub fn is_file_of(&self, inum: &Inum) -> Bool {
        !&self.anon & self.inum.sym_eq(inum)
    }

    /// Whether the page is still untouched since it was mapped. Test generation reads (and
    /// calls declare) this side of [`Vma::populated`]: a fact no call declares is decided
    /// false, and setups have always touched their pages.
    pub fn unpopulated(&self) -> Bool {
        !&self.populated
    }
}

/// Only the fields of the mapping's kind are observable (not its region, the layout, nor
/// whether it is populated).
fn vma_eq(a: &Vma, b: &Vma) -> Bool {
    let anon = a.anondata.sym_eq(&b.anondata);
    let file = a.inum.sym_eq(&b.inum) & a.off.eq(&b.off);
    a.anon.iff(&b.anon) & a.writable.iff(&b.writable) & (a.anon.clone() & anon | !&a.anon & file)
}

/// A field of the other kind of fd or vma: never compared, so any fixed value will do.
pub fn unused<T: Value>(what: &str) -> T {
    fresh_value(&format!("unused_{what}"))
}

#[derive(Clone, Debug, Symbolic)]
pub struct Proc {
    pub fd_map: PartialMap<Int, Fd>,
    pub va_map: PartialMap<Va, Vma>,
}

#[derive(Clone, Debug, Symbolic)]
pub struct PosixState {
    pub root_dir: PartialMap<FileName, Inum>,
    pub i_map: TotalMap<Inum, Inode>,
    pub pipes: TotalMap<PipeId, Pipe>,
    pub proc0: Proc,
    pub proc1: Proc,
    /// What survives a reboot (only the sync/fsync/reboot extension uses these).
    pub durable_root_dir: PartialMap<FileName, Inum>,
    pub durable_i_map: TotalMap<Inum, Inode>,
}

impl PosixState {
    pub fn proc(&self, p: usize) -> &Proc {
        if p == 0 { &self.proc0 } else { &self.proc1 }
    }

    pub fn proc_mut(&mut self, p: usize) -> &mut Proc {
        if p == 0 {
            &mut self.proc0
        } else {
            &mut self.proc1
        }
    }

    // ------------------------------------------------------------------ root directory

    pub fn dir_contains(&self, name: &FileName) -> Bool {
        ledger::touch_name(name);
        self.root_dir.contains(name)
    }

    pub fn dir_get(&self, name: &FileName) -> Inum {
        ledger::touch_name(name);
        self.root_dir.get(name)
    }

    pub fn dir_insert(&mut self, name: &FileName, inum: &Inum) {
        ledger::touch_name(name);
        self.root_dir.insert(name, inum);
    }

    pub fn dir_remove(&mut self, name: &FileName) {
        ledger::touch_name(name);
        self.root_dir.remove(name);
    }

    // ------------------------------------------------------------------------ fd tables

    pub fn fd_contains(&self, p: usize, fd: &Int) -> Bool {
        ledger::touch_fd(p, fd);
        self.proc(p).fd_map.contains(fd)
    }

    /// The fd at `fd` (check presence first); file offsets are never negative.
    pub fn fd_get(&self, p: usize, fd: &Int) -> Fd {
        ledger::touch_fd(p, fd);
        let f = self.proc(p).fd_map.get(fd);
        assume(&(f.ispipe.clone() | f.off.ge(0)));
        f
    }

    pub fn fd_insert(&mut self, p: usize, fd: &Int, v: &Fd) {
        ledger::touch_fd(p, fd);
        self.proc_mut(p).fd_map.insert(fd, v);
    }

    pub fn fd_remove(&mut self, p: usize, fd: &Int) {
        ledger::touch_fd(p, fd);
        self.proc_mut(p).fd_map.remove(fd);
    }

    // ---------------------------------------------------------------------- memory maps

    pub fn va_contains(&self, p: usize, va: &Va) -> Bool {
        ledger::touch_va(p, va);
        self.proc(p).va_map.contains(va)
    }

    /// The mapping at `va` (check presence first); file offsets are never negative.
    pub fn va_get(&self, p: usize, va: &Va) -> Vma {
        ledger::touch_va(p, va);
        let vma = self.proc(p).va_map.get(va);
        assume(&(vma.anon.clone() | vma.off.ge(0)));
        vma
    }

    pub fn va_insert(&mut self, p: usize, va: &Va, vma: &Vma) {
        ledger::touch_va(p, va);
        self.proc_mut(p).va_map.insert(va, vma);
    }

    pub fn va_remove(&mut self, p: usize, va: &Va) {
        ledger::touch_va(p, va);
        self.proc_mut(p).va_map.remove(va);
    }

    // --------------------------------------------------------------------------- inodes

    /// A fresh time: the implementation's choice (the clock's value at the update). Only a
    /// created inode's times are bounded below (see `fs::create`), as the reference model says.
    pub fn fresh_time() -> Int {
        Int::internal("time")
    }
}

/// The process a call runs in (the analyzer has already assumed `0 <= pid < 2`).
pub fn proc_of(pid: &Int) -> usize {
    if pid.eq(0).branch() { 0 } else { 1 }
}
