//! Virtual memory: `mmap`, `munmap`, `mprotect`, and memory accesses.

use commuter_engine::{Bool, Int, Symbolic, Value, assume, situation_term};

use super::alloc::{fresh_region, joined_region, region_shared};
use super::fs::{dropped_reference, open_fd, touched_inode};
use super::state::errno::*;
use super::state::{DataVal, Errno, PosixState, Va, Vma, proc_of, unused, zero_page};

#[derive(Clone, Debug, Symbolic)]
pub struct MmapArgs {
    pub anon: Bool,
    pub writable: Bool,
    pub fixed: Bool,
    pub va: Va,
    pub fd: Int,
    /// Offset in pages (so always page aligned).
    pub off: Int,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct VaArgs {
    pub va: Va,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct MprotectArgs {
    pub va: Va,
    pub writable: Bool,
    pub pid: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct MemwriteArgs {
    pub va: Va,
    pub data: DataVal,
    pub pid: Int,
}

/// Without `MAP_FIXED` the page is the implementation's choice among the unmapped ones.
pub fn mmap(s: &mut PosixState, a: &MmapArgs) -> Result<Va, Errno> {
    let p = proc_of(&a.pid);
    let (va, fixed, replaces) = if a.fixed.branch() {
        (a.va.clone(), true, s.va_contains(p, &a.va).branch())
    } else {
        let va = Va::internal("va");
        assume(&!s.va_contains(p, &va));
        (va, false, false)
    };
    let vma = if a.anon.branch() {
        // A page the caller places may join a neighbouring anonymous mapping; the
        // implementation's choice of page is its own business (it may well merge too), and
        // what is merged or split around a replaced page is the unmapping's business (see
        // below).
        let region = if fixed && !replaces {
            joined_region(s, p, &va, &Bool::lit(true), &a.writable)
        } else {
            fresh_region(s, p)
        };
        Vma {
            anon: Bool::lit(true),
            writable: a.writable.clone(),
            anondata: zero_page(),
            inum: unused("inum"),
            off: Int::lit(0),
            region,
            populated: Bool::lit(false),
        }
    } else {
        file_vma(s, p, a)?
    };
    // `MAP_FIXED` over a mapped page unmaps it (Linux, and the paper's "creates or replaces"):
    // replacing is a situation of its own, and what is replaced matters once the new mapping
    // is known to work (a refused one leaves the old alone). Only presence, the region, the
    // file and its page (are they another call's): how the replaced page was mapped
    // multiplies mmap/mmap's paths tenfold (measured), and whether its region holds other
    // pages took mmap/mmap from 1,489 tests to 2,516 (measured), for the same unmapping and
    // split that munmap's situations cover. (Branching on the replaced page here, after the
    // new mapping is built, instead of first made mmap/mmap's analysis about five times
    // slower: measured.)
    if replaces {
        touched_mapping(s, p, &va);
    }
    s.va_insert(p, &va, &vma);
    Ok(va)
}

/// A shared mapping of the file open at `a.fd`. For a pipe the design document says `ENODEV`;
/// Linux (`do_mmap`) first refuses an end that is not readable, or a writable mapping of an end
/// that is not writable, with `EACCES` (measured on the stock kernel), as the model does.
fn file_vma(s: &PosixState, p: usize, a: &MmapArgs) -> Result<Vma, Errno> {
    let f = open_fd(s, p, &a.fd)?;
    if f.is_pipe_end() {
        if f.pipewriter.branch() || a.writable.branch() {
            return Err(EACCES);
        }
        return Err(ENODEV);
    }
    assume(&a.off.ge(0));
    // The mapping takes a reference to the file and to its page at `off` (the page cache's,
    // shared with every other mapping of it), whether or not a branch compares them.
    touched_inode(&f.inum);
    situation_term(&a.off);
    Ok(Vma {
        anon: Bool::lit(false),
        writable: a.writable.clone(),
        anondata: unused("anondata"),
        inum: f.inum,
        off: a.off.clone(),
        region: fresh_region(s, p),
        populated: Bool::lit(false),
    })
}

/// Process `p`'s mapped page `va` leaves its region: it is about to be unmapped or changed
/// alone. Which region holds
/// it is part of the situation (another call's page may share it: the VMA, its lock, its
/// `anon_vma`), and whether the region holds other pages is a situation of its own: then the
/// implementation splits the mapping first (Linux: `__split_vma`, `vm_area_dup`, the maple
/// tree's stores). A file page is always alone in its region (`alloc::assume_vma_layout`), so
/// only anonymous pages take that branch.
fn leaves_region(s: &PosixState, p: usize, va: &Va) {
    touched_region(s, p, va);
    let _split = region_shared(s, p, va);
}

/// A call reaches process `p`'s mapped page `va` through the page tables: whether the page has
/// been touched since it was mapped is part of the situation (a first touch faults it in and
/// may allocate the page-table levels above it; a teardown or protection change walks its
/// entry), with no result of its own.
fn touched_entry(s: &PosixState, p: usize, va: &Va) {
    situation_term(&s.va_get(p, va).unpopulated());
}

/// A call works on the mapping holding process `p`'s page `va`: whether another call's page is
/// in the same one is part of the situation. (Where `va` is unmapped the term names no
/// mapping; test generation reads a region only for a mapped page, so it makes no class.)
fn touched_region(s: &PosixState, p: usize, va: &Va) {
    situation_term(&s.va_get(p, va).region);
}

/// A call unmaps process `p`'s page `va`, whatever its branches look at: whether another
/// call's page is in the same region (see [`touched_region`]) and, where it is a file page,
/// whether another call's page maps the same file, and the same page of it, are part of the
/// situation. The file's last reference is dropped by whichever call unmaps it last
/// (`__dentry_kill`, `dentry_unlink_inode`); a replaced page's file has no link unless a branch
/// asks, so replacing its only mapping frees it. The same page of the file is one folio of the
/// page cache, mapped twice: unmapping one mapping while the other call faults or unmaps the
/// other changes the folio's counts and flags (`folio_inc_refs`, its mapcount). (For an
/// anonymous page the file and offset terms name none; test generation reads them only for a
/// file page.) The offset took mmap/mmap from 1,824 tests to 2,441; the whole model's generation
/// was no slower in an alternated benchmark against the version without it (measured).
/// One read of the mapping, not [`touched_region`] and another: a second `va_get` repeats its
/// assumption on the path, which made mmap/mmap's analysis 1.5 times slower (measured).
fn touched_mapping(s: &PosixState, p: usize, va: &Va) {
    let vma = s.va_get(p, va);
    situation_term(&vma.region);
    touched_inode(&vma.inum);
    situation_term(&vma.off);
}

/// Removes the mapping, whether or not one is there. Whether the page was mapped, and how, is a
/// situation of its own: an implementation finds nothing, or tears down an anonymous page or a
/// file page, read-only or writable (dirty tracking), alone in its mapping or split off it;
/// the result is the same. Unmapping a file drops a reference to it (`dropped_reference`: the
/// last one frees an unlinked file).
pub fn munmap(s: &mut PosixState, a: &VaArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    if s.va_contains(p, &a.va).branch() {
        let vma = s.va_get(p, &a.va);
        let anon = vma.anon.branch();
        let _writable = vma.writable.branch();
        leaves_region(s, p, &a.va);
        touched_entry(s, p, &a.va);
        s.va_remove(p, &a.va);
        if !anon {
            dropped_reference(s, &vma.inum);
        }
    }
    Ok(())
}

/// Linux leaves a mapping whose protection does not change alone (`mprotect_fixup`: no split,
/// no merge, no page table walk): a situation of its own, with the same result. A change splits
/// the page off its region where that holds other pages, and an anonymous page may join a
/// neighbouring region its new protection makes alike (`vma_merge_existing_range`). (Whether
/// the page is anonymous matters less otherwise, and as a branch of its own it multiplied the
/// tests of every set with `mprotect` by four: measured.)
pub fn mprotect(s: &mut PosixState, a: &MprotectArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    if (!s.va_contains(p, &a.va)).branch() {
        return Err(ENOMEM);
    }
    let mut vma = s.va_get(p, &a.va);
    if vma.writable.iff(&a.writable).branch() {
        touched_region(s, p, &a.va);
        return Ok(());
    }
    // The page leaves its region, which no longer maps it alike (a split, where the region
    // holds other pages).
    leaves_region(s, p, &a.va);
    touched_entry(s, p, &a.va);
    vma.writable = a.writable.clone();
    vma.region = joined_region(s, p, &a.va, &vma.anon, &vma.writable);
    s.va_insert(p, &a.va, &vma);
    Ok(())
}

/// `Err(SIGSEGV)` unmapped; `Err(SIGBUS)` past the end of a mapped file. No atime update.
pub fn memread(s: &mut PosixState, a: &VaArgs) -> Result<DataVal, Errno> {
    let p = proc_of(&a.pid);
    if (!s.va_contains(p, &a.va)).branch() {
        return Err(SIGSEGV);
    }
    touched_region(s, p, &a.va);
    touched_entry(s, p, &a.va);
    let vma = s.va_get(p, &a.va);
    if vma.anon.branch() {
        return Ok(vma.anondata);
    }
    let data = s.i_map.get(&vma.inum).data;
    if vma.off.ge(data.len()).branch() {
        return Err(SIGBUS);
    }
    Ok(data.get(&vma.off))
}

/// `Err(SIGSEGV)` unmapped or read-only; `Err(SIGBUS)` past the end of a mapped file. No time
/// update.
pub fn memwrite(s: &mut PosixState, a: &MemwriteArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    // A write to a read-only page faults on its mapping too (its lock, the access check).
    touched_region(s, p, &a.va);
    if (!s.va_contains(p, &a.va) | !&s.va_get(p, &a.va).writable).branch() {
        return Err(SIGSEGV);
    }
    touched_entry(s, p, &a.va);
    let mut vma = s.va_get(p, &a.va);
    if vma.anon.branch() {
        vma.anondata = a.data.clone();
        // Only a page's initial state makes situations; the write is stored here anyway.
        vma.populated = Bool::lit(true);
        s.va_insert(p, &a.va, &vma);
        return Ok(());
    }
    let mut inode = s.i_map.get(&vma.inum);
    if vma.off.ge(inode.data.len()).branch() {
        return Err(SIGBUS);
    }
    inode.data.set(&vma.off, &a.data);
    s.i_map.set(&vma.inum, &inode);
    Ok(())
}
