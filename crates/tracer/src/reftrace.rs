//! The plugin's `mode=reftrace`: a workload's references in kVMTrace's terms
//! ([`commuter_trace_format::reftrace`]), decided per memory access of a vCPU. Pure apart from
//! the [`GuestMemory`] it reads `struct page` from, so it is unit-tested without QEMU.
//!
//! # What is recorded
//!
//! Between the guest's begin-test and end-test markers, for every task but the guest's own
//! (`/init`, whose pid is begin-test's argument) and the idle tasks (pid 0):
//!
//! - **VM read / VM write**: every load and store by user-mode code (the instruction's address
//!   is below the kernel's half), one reference per access, as kVMTrace records them (nothing
//!   is coalesced). Instruction fetches are not memory accesses for QEMU's plugins and are not
//!   recorded.
//! - **FS read / FS write**: the kernel copying between user memory and a page-cache page. The
//!   rule: a kernel-mode store paired with the vCPU's kernel-mode access just before it, when
//!   that one is a load (the two halves of a copy loop: `rep movs`, or `rep_movs_alternative`'s
//!   load into a register and store from it). A load from a kernel address followed by a
//!   store to a user address is a copy to user (read-family calls): the loaded page is the
//!   candidate of an FS read. A load from a user address followed by a store to a kernel
//!   address is a copy from user (write-family calls): the stored page is the candidate of an
//!   FS write. A candidate is a reference when its page is a page-cache page; one reference per
//!   page per copy (consecutive pairs on the same page are one copy of it; a user-mode access or
//!   a task switch ends the copy).
//!
//! # Canonical pages, backing, tasks
//!
//! The canonical page number is the guest-physical frame number (QEMU's hardware address of the
//! access): the same page is one number in every mapping and in the page cache. A page is a
//! file page when its `struct page`'s `mapping` (the head page's, for a tail page of a compound
//! page) is an `address_space` pointer: non-null, `PAGE_MAPPING_ANON` and
//! `PAGE_MAPPING_MOVABLE` clear ([`Backing::of_mapping`]); anything else is anonymous. The task
//! is the one `__switch_to` last switched the vCPU to (its `next` argument), read as
//! `task_struct.tgid` (pid) and `task_struct.pid` (tid).

use crate::session::is_kernel_pc;
use crate::slab::{GuestMemory, head_page, read_u32, read_u64};
use commuter_trace_format::reftrace::{
    Backing, Kind, PAGE_SHIFT, RefTraceLayout, Reference, USER_TOP,
};

/// A task, as the trace names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// Thread group id: the process.
    pub pid: u32,
    /// The thread.
    pub tid: u32,
}

/// Reads the task whose `task_struct` is at `task` (a kernel address).
pub fn read_task(layout: &RefTraceLayout, mem: &mut dyn GuestMemory, task: u64) -> Option<Task> {
    let tid = read_u32(mem, task.checked_add(layout.task_pid)?)?;
    let pid = read_u32(mem, task.checked_add(layout.task_tgid)?)?;
    Some(Task { pid, tid })
}

/// The backing of physical frame `pfn`, from its `struct page` in the array at `vmemmap`.
/// `None` when the page cannot be read.
pub fn read_backing(
    layout: &RefTraceLayout,
    vmemmap: u64,
    mem: &mut dyn GuestMemory,
    pfn: u64,
) -> Option<Backing> {
    // A tail page of a compound page: its own `mapping` is not the folio's.
    let head = head_page(mem, vmemmap, layout.page_size, layout.compound_head, pfn)?;
    let mapping = read_u64(mem, head.checked_add(layout.page_mapping)?)?;
    Some(Backing::of_mapping(mapping))
}

/// A memory access as the plugin sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemAccess {
    /// The instruction's address (its mode: user below [`crate::session::KERNEL_BASE`]).
    pub pc: u64,
    /// The virtual address accessed.
    pub vaddr: u64,
    /// The physical address; `None` when QEMU could not resolve it.
    pub paddr: Option<u64>,
    /// A store.
    pub write: bool,
}

/// Says what backs a page (the plugin reads `struct page`; tests give a table).
pub trait Pages {
    /// The backing of frame `pfn`; `None` when it cannot be read.
    fn backing(&mut self, pfn: u64) -> Option<Backing>;
}

/// What an access amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reference to record.
    Reference(Reference),
    /// Nothing to record.
    Nothing,
    /// An access of the workload without a physical address.
    Unresolved,
    /// An access while the vCPU's task is not known.
    UnknownTask,
    /// An access whose page's `struct page` could not be read (recorded as anonymous when a
    /// VM reference; a dropped candidate when an FS one).
    Unreadable(Option<Reference>),
}

/// Entries of the per-vCPU cache of page backings (direct-mapped by frame number).
const CACHE: usize = 8;

/// One kernel-mode access, for pairing loads and stores into copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KernelAccess {
    page: u64,
    user: bool,
    write: bool,
}

/// The state of one vCPU: its task, its last kernel access, its current copy, its cache.
#[derive(Debug, Default)]
pub struct VcpuState {
    task: Option<Task>,
    last_kernel: Option<KernelAccess>,
    /// The FS candidate of the copy in progress.
    copy: Option<(Kind, u64)>,
    /// Backings of recently used pages; emptied when the vCPU comes back from the kernel
    /// (only the kernel changes what a frame holds, and a frame this vCPU maps changes only
    /// after the kernel ran here: a reclaim or unmap elsewhere shoots down this TLB by an
    /// interrupt).
    cache: [Option<(u64, Backing)>; CACHE],
    kernel_ran: bool,
}

impl VcpuState {
    /// The vCPU now runs `task` (`None`: not known).
    pub fn switch_to(&mut self, task: Option<Task>) {
        self.task = task;
        self.last_kernel = None;
        self.copy = None;
    }

    /// The task the vCPU runs, if known.
    pub fn task(&self) -> Option<Task> {
        self.task
    }

    /// Decides what `access` is; `exclude` is the pid whose accesses are not the workload's
    /// (the guest's `/init`).
    pub fn access(&mut self, access: MemAccess, exclude: u32, pages: &mut dyn Pages) -> Outcome {
        let Some(task) = self.task else {
            return Outcome::UnknownTask;
        };
        if task.pid == exclude || task.pid == 0 {
            return Outcome::Nothing;
        }
        let Some(paddr) = access.paddr else {
            return Outcome::Unresolved;
        };
        let page = paddr >> PAGE_SHIFT;
        if is_kernel_pc(access.pc) {
            return self.kernel_access(access, page, task, pages);
        }
        // User mode: a copy in the kernel is over.
        self.last_kernel = None;
        self.copy = None;
        if std::mem::take(&mut self.kernel_ran) {
            self.cache = [None; CACHE];
        }
        let kind = if access.write {
            Kind::VmWrite
        } else {
            Kind::VmRead
        };
        let slot = (page as usize) % CACHE;
        let (backing, readable) = match self.cache[slot] {
            Some((p, b)) if p == page => (b, true),
            _ => match pages.backing(page) {
                Some(b) => {
                    self.cache[slot] = Some((page, b));
                    (b, true)
                }
                None => (Backing::Anon, false),
            },
        };
        let r = reference(kind, backing, task, page);
        if readable {
            Outcome::Reference(r)
        } else {
            Outcome::Unreadable(Some(r))
        }
    }

    fn kernel_access(
        &mut self,
        access: MemAccess,
        page: u64,
        task: Task,
        pages: &mut dyn Pages,
    ) -> Outcome {
        self.kernel_ran = true;
        let current = KernelAccess {
            page,
            user: access.vaddr < USER_TOP,
            write: access.write,
        };
        let previous = self.last_kernel.replace(current);
        let Some(previous) = previous.filter(|p| current.write && !p.write) else {
            return Outcome::Nothing;
        };
        let candidate = match (previous.user, current.user) {
            (false, true) => (Kind::FsRead, previous.page),
            (true, false) => (Kind::FsWrite, current.page),
            _ => return Outcome::Nothing,
        };
        if self.copy == Some(candidate) {
            return Outcome::Nothing;
        }
        self.copy = Some(candidate);
        let (kind, page) = candidate;
        match pages.backing(page) {
            Some(Backing::File) => Outcome::Reference(reference(kind, Backing::File, task, page)),
            Some(Backing::Anon) => Outcome::Nothing,
            None => Outcome::Unreadable(None),
        }
    }
}

fn reference(kind: Kind, backing: Backing, task: Task, page: u64) -> Reference {
    Reference {
        kind,
        backing,
        pid: task.pid,
        tid: task.tid,
        page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames 0x100.. are file pages, others anonymous; frame 0xdead cannot be read. Counts
    /// the lookups.
    #[derive(Default)]
    struct Table {
        lookups: usize,
    }

    impl Pages for Table {
        fn backing(&mut self, pfn: u64) -> Option<Backing> {
            self.lookups += 1;
            match pfn {
                0xdead => None,
                0x100..=0x1ff => Some(Backing::File),
                _ => Some(Backing::Anon),
            }
        }
    }

    const USER_PC: u64 = 0x40_1000;
    const KERNEL_PC: u64 = 0xffff_ffff_8100_0000;
    const DIRECT_MAP: u64 = 0xffff_8880_0000_0000;
    const WORKLOAD: Task = Task { pid: 60, tid: 61 };

    fn user(vaddr: u64, pfn: u64, write: bool) -> MemAccess {
        MemAccess {
            pc: USER_PC,
            vaddr,
            paddr: Some((pfn << PAGE_SHIFT) | (vaddr & 0xfff)),
            write,
        }
    }

    /// A kernel access to `pfn` through a user address (`user`) or the direct map.
    fn kernel(user: bool, pfn: u64, write: bool) -> MemAccess {
        let base = if user { 0x7fff_0000_0000 } else { DIRECT_MAP };
        MemAccess {
            pc: KERNEL_PC,
            vaddr: base + (pfn << PAGE_SHIFT),
            paddr: Some(pfn << PAGE_SHIFT),
            write,
        }
    }

    fn run(state: &mut VcpuState, pages: &mut Table, accesses: &[MemAccess]) -> Vec<Reference> {
        accesses
            .iter()
            .filter_map(|a| match state.access(*a, 1, pages) {
                Outcome::Reference(r) | Outcome::Unreadable(Some(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    fn refs(list: &[(Kind, Backing, u64)]) -> Vec<Reference> {
        list.iter()
            .map(|&(k, b, p)| reference(k, b, WORKLOAD, p))
            .collect()
    }

    fn workload() -> VcpuState {
        let mut s = VcpuState::default();
        s.switch_to(Some(WORKLOAD));
        s
    }

    #[test]
    fn user_accesses_are_vm_references_one_per_access() {
        let mut s = workload();
        let mut pages = Table::default();
        let got = run(
            &mut s,
            &mut pages,
            &[
                user(0x1000, 7, true),
                user(0x1008, 7, true),
                user(0x2000, 0x150, false),
            ],
        );
        use {Backing::*, Kind::*};
        assert_eq!(
            got,
            refs(&[
                (VmWrite, Anon, 7),
                (VmWrite, Anon, 7),
                (VmRead, File, 0x150)
            ])
        );
        assert_eq!(
            pages.lookups, 2,
            "the second access to page 7 hits the cache"
        );
    }

    #[test]
    fn the_cache_is_emptied_after_the_kernel_ran() {
        let mut s = workload();
        let mut pages = Table::default();
        run(&mut s, &mut pages, &[user(0x1000, 7, true)]);
        run(&mut s, &mut pages, &[kernel(false, 9, false)]);
        run(&mut s, &mut pages, &[user(0x1000, 7, false)]);
        assert_eq!(pages.lookups, 2);
    }

    #[test]
    fn copies_from_and_to_page_cache_pages_are_fs_references_once_per_page() {
        let mut s = workload();
        let mut pages = Table::default();
        // read(): 3 eight-byte pairs from file page 0x120 to user page 5, then two pairs from
        // file page 0x121; the user code runs; a second read of page 0x120.
        let mut copy = Vec::new();
        for pfn in [0x120, 0x120, 0x120, 0x121, 0x121] {
            copy.push(kernel(false, pfn, false));
            copy.push(kernel(true, 5, true));
        }
        copy.push(user(0x3000, 4, true));
        copy.push(kernel(false, 0x120, false));
        copy.push(kernel(true, 5, true));
        // write(): user page 5 into file page 0x130.
        copy.push(user(0x3000, 4, true));
        copy.push(kernel(true, 5, false));
        copy.push(kernel(false, 0x130, true));
        use {Backing::*, Kind::*};
        assert_eq!(
            run(&mut s, &mut pages, &copy),
            refs(&[
                (FsRead, File, 0x120),
                (FsRead, File, 0x121),
                (VmWrite, Anon, 4),
                (FsRead, File, 0x120),
                (VmWrite, Anon, 4),
                (FsWrite, File, 0x130),
            ])
        );
    }

    #[test]
    fn other_kernel_traffic_is_no_reference() {
        let mut s = workload();
        let mut pages = Table::default();
        let got = run(
            &mut s,
            &mut pages,
            &[
                // A copy from a kernel stack (anonymous page) to user: stat's result.
                kernel(false, 9, false),
                kernel(true, 5, true),
                // Kernel-to-kernel copy of a file page (no user side).
                kernel(false, 0x140, false),
                kernel(false, 0x141, true),
                // A store to user memory after a store: no load to pair with.
                kernel(false, 0x150, true),
                kernel(true, 5, true),
                // Load, load, store: only the last load pairs.
                kernel(false, 0x160, false),
                kernel(false, 9, false),
                kernel(true, 5, true),
            ],
        );
        assert_eq!(got, vec![]);
    }

    #[test]
    fn excluded_unknown_and_unresolved_accesses_are_told_apart() {
        let mut pages = Table::default();
        let mut s = VcpuState::default();
        assert_eq!(
            s.access(user(0x1000, 7, true), 1, &mut pages),
            Outcome::UnknownTask
        );
        s.switch_to(Some(Task { pid: 1, tid: 1 }));
        assert_eq!(
            s.access(user(0x1000, 7, true), 1, &mut pages),
            Outcome::Nothing,
            "the guest's own accesses"
        );
        s.switch_to(Some(Task { pid: 0, tid: 0 }));
        assert_eq!(
            s.access(kernel(false, 7, true), 1, &mut pages),
            Outcome::Nothing,
            "the idle task"
        );
        s.switch_to(Some(WORKLOAD));
        let mut a = user(0x1000, 7, true);
        a.paddr = None;
        assert_eq!(s.access(a, 1, &mut pages), Outcome::Unresolved);
        assert_eq!(
            s.access(user(0x1000, 0xdead, false), 1, &mut pages),
            Outcome::Unreadable(Some(reference(
                Kind::VmRead,
                Backing::Anon,
                WORKLOAD,
                0xdead
            )))
        );
    }

    use crate::slab::Words;

    const LAYOUT: RefTraceLayout = RefTraceLayout {
        switch_to: 0xffff_ffff_8100_0000,
        task_pid: 0x9a8,
        task_tgid: 0x9b0,
        vmemmap_base: 0xffff_ffff_8260_0000,
        page_size: 0x40,
        page_mapping: 0x18,
        compound_head: 0x8,
    };
    const VMEMMAP: u64 = 0xffff_ea00_0000_0000;

    #[test]
    fn struct_page_and_task_struct_are_read_at_the_layouts_offsets() {
        let mut m = Words::default();
        let page = |pfn: u64| VMEMMAP + pfn * 0x40;
        // Frame 10: an anonymous page; 11: a file page; 12: a tail of a compound page whose
        // head, 11, is a file page; 13: unreadable.
        m.0.insert(page(10) + 8, 0);
        m.0.insert(page(10) + 0x18, 0xffff_8880_0400_0001);
        m.0.insert(page(11) + 8, 0);
        m.0.insert(page(11) + 0x18, 0xffff_8880_0400_1230);
        m.0.insert(page(12) + 8, page(11) + 1);
        m.0.insert(page(12) + 0x18, 0x400);
        let b = |m: &mut Words, pfn| read_backing(&LAYOUT, VMEMMAP, m, pfn);
        assert_eq!(b(&mut m, 10), Some(Backing::Anon));
        assert_eq!(b(&mut m, 11), Some(Backing::File));
        assert_eq!(b(&mut m, 12), Some(Backing::File));
        assert_eq!(b(&mut m, 13), None);
        let task = 0xffff_8880_0500_0000u64;
        // pid and tgid are 4-byte fields; the test memory holds them as the low half of a word.
        m.0.insert(task + 0x9a8, 61);
        m.0.insert(task + 0x9b0, 60);
        assert_eq!(read_task(&LAYOUT, &mut m, task), Some(WORKLOAD));
        assert_eq!(read_task(&LAYOUT, &mut m, task + 8), None);
    }
}
