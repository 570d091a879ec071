//! Settling the kernel before a traced run, so that what a test shares is a function of the
//! test and not of the tests before it in the boot.
//!
//! Linux keeps per-CPU caches that it empties in batches: new pages wait in a per-CPU batch
//! before they join the shared LRU lists, and page-state counters (`vmstat`) are summed per CPU
//! and folded into the zone's and node's shared counters only when a CPU's difference passes a
//! threshold. Left alone, whether a test's calls take a page off an LRU list
//! (`lru_gen_del_folio`, on the memory cgroup's shared `lruvec`) or fold a counter (a write to
//! `vm_node_stat`) depends on how full those caches happened to be: two runs of one suite then
//! differ by hundreds of sites, and one test run after different tests shares different memory.
//!
//! Before each traced run, once every process has set up, each CPU's LRU batches are drained
//! by a thread on that CPU (the call threads on theirs, the coordinator on CPU 0):
//! `madvise(MADV_COLD)` drains the calling CPU's batches before it looks at the range, here an
//! inaccessible page nobody touches. Then the coordinator folds every CPU's counters
//! (`/proc/sys/vm/stat_refresh`, which runs the fold on each CPU), the drains' changes
//! included. Kernel-wide drains (`compact_memory`, `drop_caches`) were not used: compaction
//! moves pages and puts the moved ones back into a batch, and `drop_caches` drains only from
//! Linux 6.x on and drops clean files.

use commuter_guest::report::SettleStep;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The page `MADV_COLD` is given: mapped by the coordinator before it forks the test
/// processes, which inherit it (an inaccessible mapping, so it never merges with a test's).
static SCRATCH: AtomicUsize = AtomicUsize::new(0);
/// Whether LRU batches can be drained (found by the coordinator before the fork).
static LRU: AtomicBool = AtomicBool::new(false);

const PAGE: usize = 4096;
const STAT_REFRESH: &str = "/proc/sys/vm/stat_refresh";

/// The settling steps this kernel offers (found once at start, before the test processes
/// fork).
pub struct Settle {
    vmstat: bool,
}

impl Settle {
    /// Tries every step once and keeps those that work. The driver warns about the others.
    pub fn probe() -> Settle {
        let lru = map_scratch().and_then(|()| drain_local_lru()).is_ok();
        LRU.store(lru, Ordering::Release);
        Settle {
            vmstat: write_one(STAT_REFRESH).is_ok(),
        }
    }

    /// The steps that work, for the start line.
    pub fn steps(&self) -> Vec<SettleStep> {
        let mut steps = Vec::new();
        if LRU.load(Ordering::Acquire) {
            steps.push(SettleStep::Lru);
        }
        if self.vmstat {
            steps.push(SettleStep::Vmstat);
        }
        steps
    }

    /// The coordinator's part, once the call threads drained their CPUs: CPU 0's batches,
    /// then every CPU's counters. A step that worked at start and fails now is an error.
    pub fn run(&self) -> Result<(), String> {
        drain_this_cpu()?;
        if self.vmstat {
            write_one(STAT_REFRESH).map_err(|e| format!("settle: write {STAT_REFRESH}: {e}"))?;
        }
        Ok(())
    }
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

fn write_one(path: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(b"1")
}
