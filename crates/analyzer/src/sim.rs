//! The SIM commutativity check of one call set, run inside the engine's explorer.
//!
//! From one symbolic initial state and one set of symbolic arguments per call, every order of
//! the calls is executed by a depth-first walk over the subset lattice: the first time a set of
//! calls has run, its state is kept and the walk goes on from it; a later order that reaches the
//! same set only compares its state with the kept one. Each call's result is compared with its
//! first result. For a pair this runs a, ab, b, ba and compares "ab/b result", "a/ba result" and
//! "ab/ba state". The calls commute on a path when some choice of internal values makes every
//! comparison hold.

use std::any::Any;

use commuter_engine::{
    AnyState, Bool, CallResult, Instance, StableHashMap, assume, branch_exists_internals,
    branch_exists_internals_since, internals_mark, may_hold, preconditions_as_branches,
    set_current_thread,
};

/// The letter naming the call in slot `i` ("a", "b", ...; past "z": "s26", ...).
pub fn slot_name(i: usize) -> String {
    if i < 26 {
        char::from(b'a' + i as u8).to_string()
    } else {
        format!("s{i}")
    }
}

/// What one path concluded.
#[derive(Debug)]
pub enum Verdict {
    Commutes,
    Diverges { reasons: Vec<String> },
}

/// Everything a path built, for test generation (Z3 terms: stays on the exploring thread).
pub struct PathOutcome {
    pub verdict: Verdict,
    /// The symbolic initial state.
    pub initial: Box<dyn AnyState>,
    /// Each slot's symbolic arguments.
    pub args: Vec<Box<dyn Any>>,
    /// Every call's result in every order that ran it: (order name, slot, result).
    pub results: Vec<(String, usize, Box<dyn CallResult>)>,
}

struct Walk<'i> {
    instance: &'i dyn Instance,
    set: &'i [usize],
    args: Vec<Box<dyn Any>>,
    first_results: Vec<Option<(String, usize)>>,
    results: Vec<(String, usize, Box<dyn CallResult>)>,
    states: StableHashMap<u64, (String, Box<dyn AnyState>)>,
    checks: Vec<(String, Bool)>,
}

impl Walk<'_> {
    fn order_name(&self, order: &[usize]) -> String {
        order.iter().map(|&i| slot_name(i)).collect()
    }

    fn visit(&mut self, state: &dyn AnyState, order: &mut Vec<usize>, mask: u64) {
        for slot in 0..self.set.len() {
            if mask & (1 << slot) != 0 {
                continue;
            }
            order.push(slot);
            let name = self.order_name(order);
            let mut next = state.clone_box();
            set_current_thread(slot);
            let result = self
                .instance
                .run(self.set[slot], next.as_mut(), self.args[slot].as_ref());
            self.compare_result(slot, &name, result);
            let reached = mask | (1 << slot);
            match self.states.get(&reached) {
                Some((first, kept)) => {
                    let label = format!("{first}/{name} state");
                    let same = kept.same_as(next.as_ref());
                    self.checks.push((label, same));
                }
                None => {
                    self.states
                        .insert(reached, (name.clone(), next.clone_box()));
                    self.visit(next.as_ref(), order, reached);
                }
            }
            order.pop();
        }
    }

    fn compare_result(&mut self, slot: usize, order: &str, result: Box<dyn CallResult>) {
        match &self.first_results[slot] {
            None => self.first_results[slot] = Some((order.to_string(), self.results.len())),
            Some((first, index)) => {
                let label = format!("{first}/{order} result");
                let same = self.results[*index].2.same_as(result.as_ref());
                self.checks.push((label, same));
            }
        }
        self.results.push((order.to_string(), slot, result));
    }
}

/// Run every order of `set` from a fresh state and decide, on the current path, whether the
/// calls commute. Must run inside `commuter_engine::explore`.
pub fn check_call_set(instance: &dyn Instance, set: &[usize], processes: usize) -> PathOutcome {
    let (walk, initial, verdict) = walk_and_decide(instance, set, processes);
    PathOutcome {
        verdict,
        initial,
        args: walk.args,
        results: walk.results,
    }
}

/// On a path of [`check_call_set`] (replayed: this runs the same walk first), whether the
/// call in `slot` is idempotent there: running it a second time, in the same process with the
/// same arguments, right after it ran alone from the initial state, gives the first run's
/// result again and leaves the state it left. `None` on a diverging path.
///
/// Internal values get the commutativity check's treatment: the call is idempotent where some
/// choice of the path's internal values (the walk's and the second run's together) makes every
/// order agree *and* the second run repeat the first. The check branches like any model code
/// (the second run may branch, and "idempotent" is a branch), so it runs in an exploration of
/// its own that extends the commutative paths (`commuter_engine::explore_from`); a path is
/// idempotent for `slot` when every extension says so.
pub fn check_idempotence(
    instance: &dyn Instance,
    set: &[usize],
    processes: usize,
    slot: usize,
) -> Option<bool> {
    let (walk, _, verdict) = walk_and_decide(instance, set, processes);
    if !matches!(verdict, Verdict::Commutes) {
        return None;
    }
    let alone = slot_name(slot);
    let (_, once) = walk.states.get(&(1 << slot))?;
    let (_, _, first) = walk.results.iter().find(|(order, _, _)| *order == alone)?;
    let mut twice = once.clone_box();
    set_current_thread(slot);
    let again = instance.run(set[slot], twice.as_mut(), walk.args[slot].as_ref());
    let same = again.same_as(first.as_ref()) & twice.same_as(once.as_ref());
    Some(branch_exists_internals(&same))
}

/// The walk over every order of `set` from a fresh state, and the path's verdict.
fn walk_and_decide<'i>(
    instance: &'i dyn Instance,
    set: &'i [usize],
    processes: usize,
) -> (Walk<'i>, Box<dyn AnyState>, Verdict) {
    let (initial, args) = fresh_inputs(instance, set, processes);
    let mut walk = Walk {
        instance,
        set,
        args,
        first_results: vec![None; set.len()],
        results: Vec::new(),
        states: StableHashMap::default(),
        checks: Vec::new(),
    };
    walk.visit(initial.as_ref(), &mut Vec::new(), 0);
    let verdict = decide(&walk.checks, branch_exists_internals);
    (walk, initial, verdict)
}

/// The symbolic initial state and each slot's fresh arguments, process arguments narrowed
/// ([`assume_processes`]).
fn fresh_inputs(
    instance: &dyn Instance,
    set: &[usize],
    processes: usize,
) -> (Box<dyn AnyState>, Vec<Box<dyn Any>>) {
    let initial = instance.initial_state();
    let args: Vec<Box<dyn Any>> = set
        .iter()
        .enumerate()
        .map(|(slot, &call)| instance.fresh_args(call, &slot_name(slot)))
        .collect();
    assume_processes(instance, set, &args, processes);
    (initial, args)
}

/// `Commutes` where `exists` (a branch over internal values) says some choice makes every
/// check hold, else the failing checks as reasons.
fn decide(checks: &[(String, Bool)], exists: impl FnOnce(&Bool) -> bool) -> Verdict {
    let agree = Bool::all(checks.iter().map(|(_, c)| c.clone()));
    if exists(&agree) {
        Verdict::Commutes
    } else {
        Verdict::Diverges {
            reasons: divergence_reasons(checks),
        }
    }
}

/// Process arguments name one of the model's processes; without loss of generality the first
/// call that takes one runs in process 0.
fn assume_processes(
    instance: &dyn Instance,
    set: &[usize],
    args: &[Box<dyn Any>],
    processes: usize,
) {
    let mut first = true;
    for (slot, &call) in set.iter().enumerate() {
        if let Some(pid) = instance.pid(call, args[slot].as_ref()) {
            assume(&(pid.ge(0) & pid.lt(processes)));
            if first {
                assume(&pid.eq(0));
                first = false;
            }
        }
    }
}

/// The comparisons that fail on this (diverging) path: those that fail whatever the path's
/// inputs, else those that can fail. Decided by the solver (not read off one model), so the
/// report does not depend on which model the solver returns.
fn divergence_reasons(checks: &[(String, Bool)]) -> Vec<String> {
    let always: Vec<String> = checks
        .iter()
        .filter(|(_, c)| !may_hold(c))
        .map(|(label, _)| label.clone())
        .collect();
    if !always.is_empty() {
        return always;
    }
    checks
        .iter()
        .filter(|(_, c)| may_hold(&!c))
        .map(|(label, _)| label.clone())
        .collect()
}

/// On the current path: can `first; second` (run in that order from one initial state) be
/// swapped to `second; first`? That is, `first` is a right mover with respect to `second`:
/// whatever `first; second` returns and leaves, `second; first` returns and leaves too. One
/// direction only: the internal values `first; second` chose are given (they stay free, like
/// the state and arguments), only those of `second; first` are chosen to match
/// (`branch_exists_internals_since`). A precondition (`assume`) of the given order narrows the
/// question to where `first; second` runs; one of the swapped order is an answer ("ba
/// precondition": `second; first` cannot run there). Must run inside
/// `commuter_engine::explore`.
pub fn check_mover(
    instance: &dyn Instance,
    first: usize,
    second: usize,
    processes: usize,
) -> Verdict {
    let set = [first, second];
    let (initial, args) = fresh_inputs(instance, &set, processes);
    let run_order = |order: [usize; 2]| {
        let mut state = initial.clone_box();
        let mut results: Vec<Option<Box<dyn CallResult>>> = vec![None, None];
        for slot in order {
            set_current_thread(slot);
            results[slot] = Some(instance.run(set[slot], state.as_mut(), args[slot].as_ref()));
        }
        (state, results)
    };
    // The given order's preconditions narrow the path: only where a;b runs is the question
    // asked. The swapped order's are an answer: where b;a cannot run, it cannot replace a;b.
    let (given_state, given) = run_order([0, 1]);
    let mark = internals_mark();
    let Some((swapped_state, swapped)) = preconditions_as_branches(|| run_order([1, 0])) else {
        return Verdict::Diverges {
            reasons: vec!["ba precondition".to_string()],
        };
    };
    let mut checks = Vec::new();
    for slot in 0..2 {
        if let (Some(g), Some(s)) = (&given[slot], &swapped[slot]) {
            let label = format!("ab/ba {} result", slot_name(slot));
            checks.push((label, g.same_as(s.as_ref())));
        }
    }
    checks.push((
        "ab/ba state".to_string(),
        given_state.same_as(swapped_state.as_ref()),
    ));
    decide(&checks, |agree| branch_exists_internals_since(mark, agree))
}
