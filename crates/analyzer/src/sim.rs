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
use std::collections::HashMap;

use commuter_engine::{
    AnyState, Bool, CallResult, Instance, assume, branch_exists_internals, may_hold,
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
    states: HashMap<u64, (String, Box<dyn AnyState>)>,
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
    let initial = instance.initial_state();
    let args: Vec<Box<dyn Any>> = set
        .iter()
        .enumerate()
        .map(|(slot, &call)| instance.fresh_args(call, &slot_name(slot)))
        .collect();
    assume_processes(instance, set, &args, processes);
    let mut walk = Walk {
        instance,
        set,
        args,
        first_results: vec![None; set.len()],
        results: Vec::new(),
        states: HashMap::new(),
        checks: Vec::new(),
    };
    walk.visit(initial.as_ref(), &mut Vec::new(), 0);
    let agree = Bool::all(walk.checks.iter().map(|(_, c)| c.clone()));
    let verdict = if branch_exists_internals(&agree) {
        Verdict::Commutes
    } else {
        Verdict::Diverges {
            reasons: divergence_reasons(&walk.checks),
        }
    };
    PathOutcome {
        verdict,
        initial,
        args: walk.args,
        results: walk.results,
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
