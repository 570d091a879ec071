//! Settling the kernel before a traced run, so that what a test shares is a function of the
//! test and not of the tests before it in the boot.
//!
//! Linux keeps new pages in a per-CPU batch before they join the shared LRU lists. Left alone,
//! whether a test's calls take a page off an LRU list (`lru_gen_del_folio`, on the memory
//! cgroup's shared `lruvec`) depends on how full those batches happened to be: the same test
//! shares the LRU list after some tests and not after others. Before each traced run, once
//! every process has set up, each CPU's batches are drained by a thread on that CPU (the call
//! threads on theirs, the coordinator on CPU 0): `madvise(MADV_COLD)` drains the calling CPU's
//! batches before it looks at the range, here an inaccessible page nobody touches.
//! Kernel-wide drains (`compact_memory`, `drop_caches`) were not used: compaction moves pages
//! and puts the moved ones back into a batch, and `drop_caches` drains only from Linux 6.x on
//! and drops clean files.
//!
//! Per-CPU page counters (`vmstat`) are left alone, measured: folding them before every run
//! (`/proc/sys/vm/stat_refresh`) runs a work item on every CPU, which wakes the halted call
//! CPUs through the host and made a run of the whole suite 46% longer (on 2 cores, 2 VMs); it
//! also lets a clock tick pass between setup and calls more often (more atime updates) and
//! trims the per-CPU page lists (more trips to the zone lock). What it removes is a counter
//! fold inside about ten tests of 16,024, which moves between tests from run to run.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The page `MADV_COLD` is given: mapped by the coordinator before it forks the test
/// processes, which inherit it (an inaccessible mapping, so it never merges with a test's).
static SCRATCH: AtomicUsize = AtomicUsize::new(0);
/// Whether LRU batches can be drained (found by the coordinator before the fork).
static LRU: AtomicBool = AtomicBool::new(false);

const PAGE: usize = 4096;

/// Finds out, once at start and before the test processes fork, whether this kernel can drain
/// LRU batches, for the start line (the driver warns if not).
pub fn probe() -> bool {
    let lru = map_scratch().and_then(|()| drain_local_lru()).is_ok();
    LRU.store(lru, Ordering::Release);
    lru
}

/// Drains the LRU batches of the CPU the caller runs on, if the kernel can.
pub fn drain_this_cpu() -> Result<(), String> {
    if !LRU.load(Ordering::Acquire) {
        return Ok(());
    }
    drain_local_lru().map_err(|e| format!("settle: madvise(MADV_COLD): {e}"))
}

fn map_scratch() -> io::Result<()> {
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    SCRATCH.store(page as usize, Ordering::Release);
    Ok(())
}

fn drain_local_lru() -> io::Result<()> {
    let page = SCRATCH.load(Ordering::Acquire) as *mut libc::c_void;
    // SAFETY: the scratch page is mapped for the life of the process; MADV_COLD only hints
    // about pages (it has none).
    let r = unsafe { libc::madvise(page, PAGE, libc::MADV_COLD) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
