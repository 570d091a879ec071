//! The implementation's free choices and the "exists/none" questions over whole maps, all
//! quantifier-free through the [`ledger`](super::ledger).
//!
//! * Lowest free fd: the initial table of each process comes with its `FREE_FDS` lowest free
//!   fds `f0 < f1 < ...` (constants of the initial state, not internal choices: the answer is
//!   determined). The current table differs from the initial one only at its written keys W, so
//!   its lowest free fd is the least of: the first `fj` still free, and the keys of W that are
//!   free now and not negative. That is exact as long as the last `fj` is still free, which
//!   holds for every pair (at most 3 fds of one process are taken before an allocation: pipe,
//!   pipe). For more calls the list grows on demand: only an allocation opens a named fd, and
//!   it writes the named term itself, so when the last one is among the table's written keys
//!   (syntactically) the path may have taken it, and the next free fd of the initial table
//!   is named (`f_last < f_new`, free, every fd between them open). Pairs never get there, so
//!   their paths are what they were; `n` calls name at most `2n` (pipe takes two).
//!   The ledger instantiates "every fd in `[0, f_last)` other than the `fj` is open" at each fd
//!   the path touches.
//! * Fresh inode / fresh pipe: an internal choice, with "no directory entry / no fd of either
//!   process refers to it" (in the state at the time of the call) as ledger facts.
//! * Whether some fd of either process is an end of a pipe, whether some fd or mapping of
//!   either process refers to an inode, or whether a page's region holds another page: a
//!   branch on a fresh boolean; the "yes" side names a witness fd or page (a Skolem constant,
//!   touched like any other key), the "no" side is a ledger fact.
//! * A region for a new mapping: a fresh constant, no other page's (a new VMA; its value is
//!   never observable, so it need not be an internal choice), or, where the page may join a
//!   neighbouring mapping, a branch: the "yes" side names a witness page mapped alike, whose
//!   region the page joins (the kernel merges the two VMAs).

use std::rc::Rc;

use commuter_engine::{Bool, Int, Key, SymEq, TotalMap, Value, assume, fresh_name, fresh_value};

use super::ledger;
use super::state::{Inode, Inum, PROCESSES, PipeId, PosixState, Region, Va, Vma, zero_page};

/// How many of the lowest free fds of each initial table the model names.
pub const FREE_FDS: usize = 4;

/// Name the lowest free fds of each process's initial fd table (called on the initial state).
pub fn name_initial_free_fds(s: &PosixState) {
    for p in 0..PROCESSES {
        let initial = s.proc(p).fd_map.clone();
        let free: Vec<Int> = (0..FREE_FDS)
            .map(|j| fresh_value(&format!("s.proc{p}.free_fd{j}")))
            .collect();
        assume(&free[0].ge(0));
        for pair in free.windows(2) {
            assume(&pair[0].lt(&pair[1]));
        }
        for f in &free {
            assume(&!initial.contains(f));
        }
        let last = free[FREE_FDS - 1].clone();
        let named = free.clone();
        let open = initial.clone();
        ledger::for_all_fds(p, move |k| {
            let below_last = k.ge(0) & k.lt(&last);
            let other = !Bool::any(named.iter().map(|f| k.eq(f)));
            (below_last & other).implies(&open.contains(k))
        });
        ledger::set_free_fds(p, free);
        ledger::set_initially_open(p, Rc::new(move |k: &Int| initial.contains(k)));
    }
}

/// Names the next free fd of process `p`'s initial table, after the last named one: free
/// initially, and every fd between the two open (so the named ones stay the lowest free fds).
fn name_next_free_fd(p: usize) -> Vec<Int> {
    let mut free = ledger::free_fds(p);
    let prev = free.last().expect("FREE_FDS > 0").clone();
    let next: Int = fresh_value(&format!("s.proc{p}.free_fd{}", free.len()));
    let open = ledger::initially_open(p);
    assume(&prev.lt(&next));
    assume(&!open(&next));
    let (lo, hi) = (prev, next.clone());
    ledger::for_all_fds(p, move |k| (lo.lt(k) & k.lt(&hi)).implies(&open(k)));
    free.push(next);
    ledger::set_free_fds(p, free.clone());
    free
}

/// Distinct keys, first occurrence first.
fn distinct(keys: &[Int]) -> Vec<Int> {
    let mut out: Vec<Int> = Vec::new();
    for k in keys {
        if !out.iter().any(|o| o.0 == k.0) {
            out.push(k.clone());
        }
    }
    out
}

/// The lowest fd not open in process `p`. It branches rather than building an `if`-term: a
/// side is usually infeasible (a re-written open fd is never a free one), so paths rarely
/// split, and conditions and the analyzer's quantified query stay small.
pub fn lowest_free_fd(s: &PosixState, p: usize) -> Int {
    let map = &s.proc(p).fd_map;
    let mut free = ledger::free_fds(p);
    // The last named fd is free unless an allocation of this path took it (see the module).
    while free
        .last()
        .is_some_and(|last| map.written_keys().iter().any(|k| k.0 == last.0))
    {
        free = name_next_free_fd(p);
    }
    let (last, named) = free.split_last().expect("FREE_FDS > 0");
    // The first named free fd of the initial table that is still free. Bounded model: only
    // call sets of three or more calls can take all of them.
    let mut best = last.clone();
    for f in named {
        if (!map.contains(f)).branch() {
            best = f.clone();
            break;
        }
    }
    assume(&!map.contains(&best));
    // An fd closed earlier on this path may be lower.
    for w in distinct(map.written_keys()) {
        if (w.ge(0) & !map.contains(&w) & w.lt(&best)).branch() {
            best = w;
        }
    }
    best
}

/// Any fd not open in process `p` (`O_ANYFD`): the implementation's choice.
pub fn any_free_fd(s: &PosixState, p: usize) -> Int {
    let fd = Int::internal("fd");
    assume(&(fd.ge(0) & !s.fd_contains(p, &fd)));
    fd
}

/// A fresh inode number: no directory entry, file fd or mapping of either process refers to it.
pub fn fresh_inode(s: &PosixState) -> Inum {
    let ino = Inum::internal("inum");
    let dir = s.root_dir.clone();
    let target = ino.clone();
    ledger::for_all_names(move |n| !(dir.contains(n) & dir.get(n).sym_eq(&target)));
    assume_unreferenced(s, &ino);
    ino
}

/// No fd or mapping of either process refers to `inum`, as ledger facts.
fn assume_unreferenced(s: &PosixState, inum: &Inum) {
    for p in 0..PROCESSES {
        let fds = s.proc(p).fd_map.clone();
        let target = inum.clone();
        ledger::for_all_fds(p, move |k| {
            !(fds.contains(k) & fds.get(k).is_file_of(&target))
        });
        let vas = s.proc(p).va_map.clone();
        let target = inum.clone();
        ledger::for_all_vas(p, move |k| {
            !(vas.contains(k) & vas.get(k).is_file_of(&target))
        });
    }
}

/// The name prefix of the witnesses of [`inode_referenced`] (test generation creates them).
pub const INODE_REF_WITNESS: &str = "inode_ref";

/// Whether an fd or a mapping of either process refers to `inum` (so that dropping another
/// reference to an unlinked file does not free it).
pub fn inode_referenced(s: &PosixState, inum: &Inum) -> bool {
    let tag = fresh_name(INODE_REF_WITNESS);
    let referenced: Bool = fresh_value(&tag);
    if !referenced.branch() {
        assume_unreferenced(s, inum);
        return false;
    }
    let by_fd: Bool = fresh_value(&format!("{tag}.by_fd"));
    let in_proc0: Bool = fresh_value(&format!("{tag}.in_proc0"));
    let fd: Int = fresh_value(&format!("{tag}.fd"));
    let va: Va = fresh_value(&format!("{tag}.va"));
    let refers = |p: usize| {
        let by_fd_refers = s.fd_contains(p, &fd) & s.fd_get(p, &fd).is_file_of(inum);
        let by_va_refers = s.va_contains(p, &va) & s.va_get(p, &va).is_file_of(inum);
        by_fd.clone() & by_fd_refers | !&by_fd & by_va_refers
    };
    assume(&(in_proc0.clone() & refers(0) | !&in_proc0 & refers(1)));
    true
}

/// A fresh pipe: no fd of either process is one of its ends.
pub fn fresh_pipe(s: &PosixState) -> PipeId {
    let pipe = PipeId::internal("pipe");
    for p in 0..PROCESSES {
        let fds = s.proc(p).fd_map.clone();
        let target = pipe.clone();
        ledger::for_all_fds(p, move |k| {
            !(fds.contains(k) & fds.get(k).ispipe.clone() & fds.get(k).pipeid.sym_eq(&target))
        });
    }
    pipe
}

/// The name prefix of the witness fds of [`pipe_end_open`] (test generation creates them).
pub const PIPE_END_WITNESS: &str = "pipe_end_open";

/// Whether an fd of either process is an end of `pipe` (its write end where `writer` holds).
pub fn pipe_end_open(s: &PosixState, pipe: &PipeId, writer: &Bool) -> bool {
    let tag = fresh_name(PIPE_END_WITNESS);
    let open: Bool = fresh_value(&tag);
    if open.branch() {
        let witness: Int = fresh_value(&format!("{tag}.fd"));
        let in_proc0: Bool = fresh_value(&format!("{tag}.in_proc0"));
        let is_end =
            |p: usize| s.fd_contains(p, &witness) & s.fd_get(p, &witness).is_end_of(pipe, writer);
        assume(&(in_proc0.clone() & is_end(0) | !&in_proc0 & is_end(1)));
        true
    } else {
        for p in 0..PROCESSES {
            let fds = s.proc(p).fd_map.clone();
            let target = pipe.clone();
            let writer = writer.clone();
            ledger::for_all_fds(p, move |k| {
                !(fds.contains(k) & fds.get(k).is_end_of(&target, &writer))
            });
        }
        false
    }
}

/// Pages of one region are mapped alike: both anonymous, with the same protection (Linux keeps
/// adjacent pages in one VMA exactly then: the setups map them adjacent, before any call). A
/// file page is alone in its region: merging file pages needs consecutive offsets of one file,
/// which no branch asks for. And of each page alone ([`page_as_set_up`]): what an untouched
/// page can hold.
pub fn assume_vma_layout(s: &PosixState) {
    for p in 0..PROCESSES {
        let map = s.proc(p).va_map.clone();
        let inodes = s.i_map.clone();
        ledger::for_all_va_pairs(p, move |u, v| {
            if u.key_ast() == v.key_ast() {
                return page_as_set_up(&map.get(u), &inodes);
            }
            let together = !u.sym_eq(v)
                & map.contains(u)
                & map.contains(v)
                & map.get(u).region.sym_eq(&map.get(v).region);
            let (a, b) = (map.get(u), map.get(v));
            together.implies(&(a.anon.clone() & b.anon.clone() & a.writable.iff(&b.writable)))
        });
    }
}

/// A page a setup maps and has not touched holds zeros if anonymous (the kernel's zero page
/// until written); a file page past the end of its file cannot have been touched (a touch
/// raises `SIGBUS`). Facts of the initial state only: later truncation leaves a populated
/// page's entry to the implementation, which the model does not follow.
fn page_as_set_up(vma: &Vma, inodes: &TotalMap<Inum, Inode>) -> Bool {
    let anon_zero = vma.anon.clone() & vma.unpopulated();
    let past_end = !&vma.anon & vma.off.ge(inodes.get(&vma.inum).data.len());
    anon_zero.implies(&vma.anondata.sym_eq(&zero_page())) & past_end.implies(&vma.unpopulated())
}

/// A region for a new mapping of process `p`: no page of the current map is in it.
pub fn fresh_region(s: &PosixState, p: usize) -> Region {
    let region: Region = fresh_value(&fresh_name("new_region"));
    let map = s.proc(p).va_map.clone();
    let target = region.clone();
    ledger::for_all_vas(p, move |k| {
        !(map.contains(k) & map.get(k).region.sym_eq(&target))
    });
    region
}

/// The name prefix of the witnesses of [`region_shared`] (test generation creates them),
/// followed by the process: `region_shared_p0#3`.
pub const REGION_WITNESS: &str = "region_shared_p";

/// Whether another page of process `p` is in the region of its mapped page `va`: then the
/// implementation splits that mapping to unmap or change `va` alone (Linux: `__split_vma`).
pub fn region_shared(s: &PosixState, p: usize, va: &Va) -> bool {
    let region = s.va_get(p, va).region;
    let tag = fresh_name(&format!("{REGION_WITNESS}{p}"));
    let shared: Bool = fresh_value(&tag);
    if shared.branch() {
        let witness: Va = fresh_value(&format!("{tag}.va"));
        let other = !witness.sym_eq(va)
            & s.va_contains(p, &witness)
            & s.va_get(p, &witness).region.sym_eq(&region);
        assume(&other);
        true
    } else {
        let map = s.proc(p).va_map.clone();
        let (page, target) = (va.clone(), region);
        ledger::for_all_vas(p, move |k| {
            !(!k.sym_eq(&page) & map.contains(k) & map.get(k).region.sym_eq(&target))
        });
        false
    }
}

/// The name prefix of the witnesses of [`joined_region`] (test generation lays the joining page
/// out next to them), followed by the process: `region_joined_p0#3` (one per order of the
/// calls, as the split witnesses). `TAG.va` is the witness page, `TAG.at` the page that joins
/// its region.
pub const JOIN_WITNESS: &str = "region_joined_p";

/// The region process `p`'s page `va` is in once it is mapped with protection `writable` (a
/// new mapping, or a protection change): a new one, or, where the page is anonymous (`anon`),
/// another anonymous page's mapped alike. Joining is a situation of its own: Linux merges a
/// mapping with a neighbouring one mapped alike (`vma_merge_new_range`,
/// `vma_merge_existing_range`: the neighbour's VMA grows, the maple tree is rewritten) where
/// a page in a region of its own is a new VMA. The witness is any such page: test generation
/// places `va` next to its region's pages. A file page never joins: merging file pages needs
/// consecutive offsets of one file, which no branch asks for ([`assume_vma_layout`]).
pub fn joined_region(s: &PosixState, p: usize, va: &Va, anon: &Bool, writable: &Bool) -> Region {
    let tag = fresh_name(&format!("{JOIN_WITNESS}{p}"));
    let joins: Bool = fresh_value(&tag);
    if joins.branch() {
        let witness: Va = fresh_value(&format!("{tag}.va"));
        let at: Va = fresh_value(&format!("{tag}.at"));
        let alike = s.va_get(p, &witness);
        assume(
            &(anon.clone()
                & at.sym_eq(va)
                & !witness.sym_eq(va)
                & s.va_contains(p, &witness)
                & alike.anon.clone()
                & alike.writable.iff(writable)),
        );
        alike.region
    } else {
        fresh_region(s, p)
    }
}
