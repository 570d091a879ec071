//! Universal facts about maps, instantiated at exactly the keys a path touches.
//!
//! The model needs statements over *all* keys of a map: "no directory entry names the fresh
//! inode", "no fd of either process is an end of the fresh pipe", "no mapping maps this
//! inode", "the lowest free fds of the initial table are f0 < f1 < ...". The original Commuter
//! asserted them with `forall`, its main source of slow queries and solver unknowns, and a
//! quantifier inside a path condition also nests under the analyzer's `forall internals` query.
//!
//! Here a fact is a function from a key to a condition. The ledger remembers every key of
//! `root_dir`, of each fd table and of each memory map that the path has read or written (in
//! any order of the call set: the ledger lives for one run of the analyzer's walk) and assumes
//! every fact at every such key, whichever comes first. That is exact: the path condition and the comparisons read
//! a map only at touched keys (the engine compares maps at written keys, and writes go through
//! the same accessors), so any model of the instantiated facts can be changed at untouched keys
//! to satisfy the facts everywhere without changing the value of anything on the path.
//!
//! The ledger is per thread and reset by `PosixModel::initial_state`, which the analyzer calls
//! once at the start of every run; re-execution of a path touches the same keys in the same
//! order, so it rebuilds the same assumptions.

use std::cell::RefCell;
use std::rc::Rc;

use commuter_engine::z3::ast::Dynamic;
use commuter_engine::{Bool, Int, Key, StableHashSet, assume, exploring, invariant};

use super::state::{FileName, PROCESSES, Va};

/// A universal fact about one map, as a condition on a key.
pub type Fact<K> = Rc<dyn Fn(&K) -> Bool>;

struct Facts<K: Key> {
    keys: Vec<K>,
    seen: StableHashSet<Dynamic>,
    facts: Vec<Fact<K>>,
}

impl<K: Key> Default for Facts<K> {
    fn default() -> Self {
        Facts {
            keys: Vec::new(),
            seen: StableHashSet::default(),
            facts: Vec::new(),
        }
    }
}

impl<K: Key> Facts<K> {
    /// Record `k`; if it is new, the facts to assume at it.
    fn touch(&mut self, k: &K) -> Option<Vec<Fact<K>>> {
        if self.seen.insert(k.key_ast()) {
            self.keys.push(k.clone());
            Some(self.facts.clone())
        } else {
            None
        }
    }

    /// Record `fact`; the keys to assume it at.
    fn add(&mut self, fact: Fact<K>) -> Vec<K> {
        self.facts.push(fact);
        self.keys.clone()
    }
}

/// A fact about every touched key of a map at once (e.g. counting the names of an inode).
pub type SetFact<K> = Rc<dyn Fn(&[K]) -> Bool>;

/// A fact about every two touched keys of a map (e.g. pages of one region are alike).
pub type PairFact<K> = Rc<dyn Fn(&K, &K) -> Bool>;

#[derive(Default)]
struct Ledger {
    names: Facts<FileName>,
    name_sets: Vec<SetFact<FileName>>,
    fds: [Facts<Int>; PROCESSES],
    vas: [Facts<Va>; PROCESSES],
    va_pairs: [Vec<PairFact<Va>>; PROCESSES],
    /// The lowest free fds of each process's initial table, ascending.
    free_fds: [Vec<Int>; PROCESSES],
    /// Whether an fd is open in each process's initial table (to name more free fds).
    initially_open: [Option<OpenFact>; PROCESSES],
}

/// "This fd is open in the initial table".
pub type OpenFact = Rc<dyn Fn(&Int) -> Bool>;

thread_local! {
    static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
}

/// Forget the previous run's keys and facts.
pub fn reset() {
    LEDGER.with(|l| *l.borrow_mut() = Ledger::default());
}

fn assume_at<K: Key>(facts: &[Fact<K>], keys: &[K]) {
    for f in facts {
        for k in keys {
            assume(&f(k));
        }
    }
}

/// A key of `root_dir` that the path reads or writes.
pub fn touch_name(name: &FileName) {
    if !exploring() {
        return;
    }
    let touched = LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        let facts = l.names.touch(name)?;
        Some((facts, l.name_sets.clone(), l.names.keys.clone()))
    });
    let Some((facts, set_facts, keys)) = touched else {
        return;
    };
    assume_at(&facts, std::slice::from_ref(name));
    // A set fact over more keys implies the same fact over fewer (counts only grow), so
    // assuming it again at every new key keeps it exact without retracting anything.
    for fact in set_facts {
        assume(&fact(&keys));
    }
}

/// A key of process `p`'s fd table that the path reads or writes.
pub fn touch_fd(p: usize, fd: &Int) {
    touch_in(|l| &mut l.fds[p], fd);
}

/// A key of process `p`'s memory map that the path reads or writes.
pub fn touch_va(p: usize, va: &Va) {
    if !exploring() {
        return;
    }
    let touched = LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        let facts = l.vas[p].touch(va)?;
        Some((facts, l.va_pairs[p].clone(), l.vas[p].keys.clone()))
    });
    let Some((facts, pair_facts, keys)) = touched else {
        return;
    };
    assume_at(&facts, std::slice::from_ref(va));
    for fact in pair_facts {
        for k in &keys {
            invariant(&fact(va, k));
        }
    }
}

/// Record `k` in the map `facts` picks; assume the map's facts at it if it is new.
fn touch_in<K: Key>(facts: impl FnOnce(&mut Ledger) -> &mut Facts<K>, k: &K) {
    if !exploring() {
        return;
    }
    let new = LEDGER.with(|l| facts(&mut l.borrow_mut()).touch(k));
    assume_at(&new.unwrap_or_default(), std::slice::from_ref(k));
}

/// Record `fact` for the map `facts` picks, and assume it at every key touched so far.
fn add_in<K: Key>(facts: impl FnOnce(&mut Ledger) -> &mut Facts<K>, fact: Fact<K>) {
    let keys = LEDGER.with(|l| facts(&mut l.borrow_mut()).add(fact.clone()));
    assume_at(&[fact], &keys);
}

/// Assume `fact` at every key of `root_dir`.
pub fn for_all_names(fact: impl Fn(&FileName) -> Bool + 'static) {
    add_in(|l| &mut l.names, Rc::new(fact));
}

/// Assume `fact` of the set of touched keys of `root_dir`, now and whenever a key is added.
/// Exact for facts that untouched keys can always be made to satisfy (an untouched name can
/// be absent), like "an inode has at least as many links as names naming it".
pub fn for_all_name_sets(fact: impl Fn(&[FileName]) -> Bool + 'static) {
    let fact: SetFact<FileName> = Rc::new(fact);
    let keys = LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        l.name_sets.push(fact.clone());
        l.names.keys.clone()
    });
    if !keys.is_empty() {
        assume(&fact(&keys));
    }
}

/// Assume `fact` at every key of process `p`'s fd table.
pub fn for_all_fds(p: usize, fact: impl Fn(&Int) -> Bool + 'static) {
    add_in(|l| &mut l.fds[p], Rc::new(fact));
}

/// Assume `fact` at every key of process `p`'s memory map.
pub fn for_all_vas(p: usize, fact: impl Fn(&Va) -> Bool + 'static) {
    add_in(|l| &mut l.vas[p], Rc::new(fact));
}

/// Assume the symmetric `fact` of every two touched keys of process `p`'s memory map, now and
/// whenever a key is added, as an invariant of the model's states (left out of displayed
/// conditions). Exact for facts that an untouched key can always be made to satisfy (an
/// untouched page can be unmapped).
pub fn for_all_va_pairs(p: usize, fact: impl Fn(&Va, &Va) -> Bool + 'static) {
    let fact: PairFact<Va> = Rc::new(fact);
    let keys = LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        l.va_pairs[p].push(fact.clone());
        l.vas[p].keys.clone()
    });
    // Symmetric: each pair once.
    for (i, u) in keys.iter().enumerate() {
        for v in &keys[..=i] {
            invariant(&fact(u, v));
        }
    }
}

/// Record the lowest free fds of process `p`'s initial table.
pub fn set_free_fds(p: usize, fds: Vec<Int>) {
    LEDGER.with(|l| l.borrow_mut().free_fds[p] = fds);
}

/// Record what "open in process `p`'s initial table" is.
pub fn set_initially_open(p: usize, open: OpenFact) {
    LEDGER.with(|l| l.borrow_mut().initially_open[p] = Some(open));
}

/// Whether an fd is open in process `p`'s initial table (set with the free fds).
pub fn initially_open(p: usize) -> OpenFact {
    LEDGER
        .with(|l| l.borrow().initially_open[p].clone())
        .expect("the initial state named its free fds")
}

/// The lowest free fds of process `p`'s initial table, ascending.
pub fn free_fds(p: usize) -> Vec<Int> {
    LEDGER.with(|l| l.borrow().free_fds[p].clone())
}
