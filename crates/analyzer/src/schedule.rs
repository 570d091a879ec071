//! Running call sets on every worker thread, costly sets first, results in selection order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use commuter_engine::DynModel;

use crate::CallSet;

/// The estimated cost of analysing a call set and generating its tests: the product of its
/// calls' cost hints (`commuter_engine::Model::cost_hint`).
pub fn set_cost(model: &dyn DynModel, set: &CallSet) -> u64 {
    let costs: Vec<u32> = model.call_info().iter().map(|c| c.cost).collect();
    cost(&costs, set)
}

/// [`set_cost`] with the hints in `costs` by call index.
fn cost(costs: &[u32], set: &CallSet) -> u64 {
    set.iter()
        .map(|&c| u64::from(costs.get(c).copied().unwrap_or(1)))
        .product()
}

/// `f` of every set on the current rayon pool's threads, the most costly sets first (a
/// longest-first schedule: with sets of very different costs, starting the longest late
/// leaves one core working alone at the end). Returns the results in the order of `sets`
/// (so output never depends on scheduling) or the first error in that order.
pub fn for_each_set<T: Send, E: Send>(
    model: &dyn DynModel,
    sets: &[CallSet],
    f: impl Fn(&CallSet) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let costs: Vec<u32> = model.call_info().iter().map(|c| c.cost).collect();
    let mut order: Vec<usize> = (0..sets.len()).collect();
    // Stable: equal costs keep selection order.
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&costs, &sets[i])));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, E>>>> =
        Mutex::new((0..sets.len()).map(|_| None).collect());
    rayon::scope(|scope| {
        for _ in 0..rayon::current_num_threads().min(sets.len()) {
            scope.spawn(|_| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = f(&sets[i]);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slots
        .into_iter()
        .map(|slot| slot.expect("every set was run"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_models::posix::PosixModel;

    fn call(name: &str) -> usize {
        let info = PosixModel::default().call_info();
        info.iter()
            .position(|c| c.name == name)
            .expect("a POSIX call")
    }

    #[test]
    fn results_come_back_in_selection_order_whatever_runs_first() {
        let (stat, mmap) = (call("stat"), call("mmap"));
        let sets: Vec<CallSet> = vec![vec![stat, stat], vec![stat, mmap], vec![mmap, mmap]];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a pool");
        let started = Mutex::new(Vec::new());
        let out: Result<Vec<CallSet>, ()> = pool.install(|| {
            for_each_set(&PosixModel::default(), &sets, |set| {
                started.lock().expect("not poisoned").push(set.clone());
                Ok(set.clone())
            })
        });
        assert_eq!(out, Ok(sets.clone()));
        // One worker: strictly costliest first.
        let started = started.into_inner().expect("not poisoned");
        assert_eq!(started, [sets[2].clone(), sets[1].clone(), sets[0].clone()]);
    }

    #[test]
    fn the_first_error_in_selection_order_wins() {
        let (stat, mmap, close) = (call("stat"), call("mmap"), call("close"));
        // Three different calls: the last in selection order, or the first to run (the
        // costliest, mmap), would be another error.
        let sets: Vec<CallSet> = vec![vec![stat], vec![mmap], vec![close]];
        let out: Result<Vec<()>, usize> =
            for_each_set(&PosixModel::default(), &sets, |set| Err(set[0]));
        assert_eq!(out, Err(stat));
    }
}
