//! `determinator-cow`: the `determinator` model (Determinator's Put/Get/Ret on child spaces)
//! as a kernel would keep it, run by commuter's harness.
//!
//! A space's memory is a page map: one reference-counted page per page number. `Copy` shares
//! the source's page (copy-on-write: a write through `Arc::make_mut` copies a shared page
//! first), `Zero` maps a fresh zero page, and `Snap` keeps a second reference to each of the
//! child's pages, so taking a snapshot copies no bytes. `Merge` compares pages first (a child
//! page that is still the snapshot's page was not written) and bytes only in pages the child
//! wrote; a parent page still equal to the snapshot's takes the child's page whole.
//!
//! Locks: each child behind its own mutex, each page number of the parent behind its own, all
//! on cache lines of their own (calls on different children touch different lines); a merge
//! locks only the parent pages the child wrote. Sharing pages costs what copy-on-write costs:
//! two copies of one page bump one reference count.

use commuter_harness::AdapterError;
use commuter_harness::models::determinator::{
    DetCall, DetError, DetOutput, DeterminatorAdapter, DeterminatorImpl, PAGE_BYTES, PAGES, Setup,
};
use std::sync::{Arc, Mutex, MutexGuard};

type Page = [i64; PAGE_BYTES];
type PageRef = Arc<Page>;

/// Keeps what it holds on a cache line of its own.
#[repr(align(64))]
struct Line<T>(T);

struct ChildSpace {
    regs: i64,
    started: bool,
    mem: [PageRef; PAGES],
    perm: [i64; PAGES],
    /// The merge reference: the pages `mem` had at the last snapshot (shared, not copied).
    snap: [PageRef; PAGES],
}

struct Spaces {
    parent: [Line<Mutex<PageRef>>; PAGES],
    /// Indexed by child number; children the test does not name are absent.
    children: Vec<Option<Line<Mutex<ChildSpace>>>>,
}

/// A lock's value even if another call panicked while holding it (a test's calls are
/// independent runs; the result check reports what went wrong).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Spaces {
    fn child(&self, id: u64) -> &Mutex<ChildSpace> {
        // The adapter checked that every call's child is in the setup.
        match self.children.get(id as usize) {
            Some(Some(c)) => &c.0,
            _ => unreachable!("child {id} is not in the setup"),
        }
    }

    /// The child, stopped, or `Busy`.
    fn stopped(&self, id: u64) -> Result<MutexGuard<'_, ChildSpace>, DetError> {
        let c = lock(self.child(id));
        if c.started {
            Err(DetError::Busy)
        } else {
            Ok(c)
        }
    }

    fn merge(&self, id: u64) -> Result<(), DetError> {
        let c = self.stopped(id)?;
        // Pages first: a page the child did not write is still its snapshot's page.
        let written: Vec<usize> = (0..PAGES)
            .filter(|&p| !Arc::ptr_eq(&c.mem[p], &c.snap[p]))
            .collect();
        let mut parent: Vec<(usize, MutexGuard<'_, PageRef>)> = written
            .iter()
            .map(|&p| (p, lock(&self.parent[p].0)))
            .collect();
        // All or nothing: every written byte is checked before any is merged.
        for (p, page) in &parent {
            let (child, snap) = (&c.mem[*p], &c.snap[*p]);
            if (0..PAGE_BYTES).any(|b| child[b] != snap[b] && page[b] != snap[b]) {
                return Err(DetError::Conflict);
            }
        }
        for (p, guard) in &mut parent {
            let (child, snap) = (&c.mem[*p], &c.snap[*p]);
            let page: &mut PageRef = guard;
            if Arc::ptr_eq(page, snap) || **page == **snap {
                // The parent did not change this page: the child's page is the merge.
                *page = child.clone();
            } else {
                let bytes = Arc::make_mut(page);
                for b in 0..PAGE_BYTES {
                    if child[b] != snap[b] {
                        bytes[b] = child[b];
                    }
                }
            }
        }
        Ok(())
    }

    fn perform(&self, call: &DetCall) -> Result<Option<i64>, DetError> {
        match *call {
            DetCall::PutRegs { child, regs } => self.stopped(child)?.regs = regs,
            DetCall::PutCopy { child, page } => {
                let mut c = self.stopped(child)?;
                c.mem[page] = lock(&self.parent[page].0).clone();
            }
            DetCall::PutZero { child, page } => {
                self.stopped(child)?.mem[page] = Arc::new([0; PAGE_BYTES]);
            }
            DetCall::PutPerm { child, page, perm } => self.stopped(child)?.perm[page] = perm,
            DetCall::PutSnap { child } => {
                let mut c = self.stopped(child)?;
                c.snap = c.mem.clone();
            }
            DetCall::PutStart { child } => self.stopped(child)?.started = true,
            DetCall::GetRegs { child } => return Ok(Some(self.stopped(child)?.regs)),
            DetCall::GetCopy { child, page } => {
                let c = self.stopped(child)?;
                *lock(&self.parent[page].0) = c.mem[page].clone();
            }
            DetCall::GetMerge { child } => self.merge(child)?,
            DetCall::Ret { child } => lock(self.child(child)).started = false,
        }
        Ok(None)
    }
}

impl DeterminatorImpl for Spaces {
    const NAME: &'static str = "determinator-cow";

    fn new(setup: &Setup) -> Result<Self, AdapterError> {
        let parent = setup.mem.map(|p| Line(Mutex::new(Arc::new(p))));
        let len = setup.children.iter().map(|c| c.id as usize + 1).max();
        let mut children: Vec<Option<Line<Mutex<ChildSpace>>>> = Vec::new();
        children.resize_with(len.unwrap_or(0), || None);
        for c in &setup.children {
            let snap = c.snap.map(Arc::new);
            // A page equal to its snapshot is shared with it, as after a real snapshot.
            let mem = std::array::from_fn(|p| {
                if c.mem[p] == c.snap[p] {
                    snap[p].clone()
                } else {
                    Arc::new(c.mem[p])
                }
            });
            children[c.id as usize] = Some(Line(Mutex::new(ChildSpace {
                regs: c.regs,
                started: c.started,
                mem,
                perm: c.perm,
                snap,
            })));
        }
        Ok(Spaces { parent, children })
    }

    fn call(&self, call: &DetCall) -> DetOutput {
        let r = self.perform(call);
        match call {
            DetCall::GetRegs { .. } => DetOutput::Regs(r.map(|v| v.unwrap_or_default())),
            DetCall::Ret { .. } => DetOutput::Ret,
            _ => DetOutput::Done(r.map(|_| ())),
        }
    }
}

fn main() {
    commuter_harness::main::<DeterminatorAdapter<Spaces>>()
}
