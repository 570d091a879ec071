//! Virtual memory: `mmap`, `munmap`, `mprotect`, and memory accesses.

use commuter_engine::{Bool, Int, PartialMap, Symbolic, Value, assume};

use super::fs::open_fd;
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
    let va = if a.fixed.branch() {
        // `MAP_FIXED` over a mapped page first unmaps it (Linux, and the paper's "creates or
        // replaces"): replacing is a situation of its own. Only presence: how the replaced page
        // was mapped multiplies mmap/mmap's paths tenfold (measured) for the same unmapping
        // that munmap's situations already cover.
        let _replaces = s.proc(p).va_map.contains(&a.va).branch();
        a.va.clone()
    } else {
        let va = Va::internal("va");
        assume(&!s.proc(p).va_map.contains(&va));
        va
    };
    let vma = if a.anon.branch() {
        Vma {
            anon: Bool::lit(true),
            writable: a.writable.clone(),
            anondata: zero_page(),
            inum: unused("inum"),
            off: Int::lit(0),
        }
    } else {
        file_vma(s, p, a)?
    };
    s.proc_mut(p).va_map.insert(&va, &vma);
    Ok(va)
}

/// A shared mapping of the file open at `a.fd`. For a pipe the design document says `ENODEV`;
/// Linux (`do_mmap`) first refuses an end that is not readable, or a writable mapping of an end
/// that is not writable, with `EACCES` (measured on the stock kernel), as the model does.
fn file_vma(s: &PosixState, p: usize, a: &MmapArgs) -> Result<Vma, Errno> {
    let f = open_fd(s, p, &a.fd)?;
    if f.ispipe.branch() {
        if f.pipewriter.branch() || a.writable.branch() {
            return Err(EACCES);
        }
        return Err(ENODEV);
    }
    assume(&a.off.ge(0));
    Ok(Vma {
        anon: Bool::lit(false),
        writable: a.writable.clone(),
        anondata: unused("anondata"),
        inum: f.inum,
        off: a.off.clone(),
    })
}

/// The mapping at `va` (check presence first); file offsets are never negative.
fn vma_at(map: &PartialMap<Va, Vma>, va: &Va) -> Vma {
    let vma = map.get(va);
    assume(&(vma.anon.clone() | vma.off.ge(0)));
    vma
}

/// Removes the mapping, whether or not one is there. Whether the page was mapped, and how, is a
/// situation of its own: an implementation finds nothing, or tears down an anonymous page or a
/// file page, read-only or writable (dirty tracking); the result is the same.
pub fn munmap(s: &mut PosixState, a: &VaArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    branch_on_mapping(&s.proc(p).va_map, &a.va);
    s.proc_mut(p).va_map.remove(&a.va);
    Ok(())
}

/// Split the path on the state of the mapping at `va` (absent; anonymous or file; writable or
/// not) where a call's effect is the same in every case but the work behind it is not.
fn branch_on_mapping(map: &PartialMap<Va, Vma>, va: &Va) {
    if map.contains(va).branch() {
        let vma = vma_at(map, va);
        let _anon = vma.anon.branch();
        let _writable = vma.writable.branch();
    }
}

pub fn mprotect(s: &mut PosixState, a: &MprotectArgs) -> Result<(), Errno> {
    let p = proc_of(&a.pid);
    let map = &mut s.proc_mut(p).va_map;
    if (!map.contains(&a.va)).branch() {
        return Err(ENOMEM);
    }
    let mut vma = map.get(&a.va);
    vma.writable = a.writable.clone();
    map.insert(&a.va, &vma);
    Ok(())
}

/// `Err(SIGSEGV)` unmapped; `Err(SIGBUS)` past the end of a mapped file. No atime update.
pub fn memread(s: &mut PosixState, a: &VaArgs) -> Result<DataVal, Errno> {
    let map = &s.proc(proc_of(&a.pid)).va_map;
    if (!map.contains(&a.va)).branch() {
        return Err(SIGSEGV);
    }
    let vma = vma_at(map, &a.va);
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
    let map = &s.proc(p).va_map;
    if (!map.contains(&a.va) | !&map.get(&a.va).writable).branch() {
        return Err(SIGSEGV);
    }
    let mut vma = vma_at(map, &a.va);
    if vma.anon.branch() {
        vma.anondata = a.data.clone();
        s.proc_mut(p).va_map.insert(&a.va, &vma);
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
