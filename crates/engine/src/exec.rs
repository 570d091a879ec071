//! The path explorer: runs a pure model function again and again, once per feasible path.
//!
//! Model code asks for a concrete `bool` whenever it branches on a symbolic condition. During a
//! run the executor either replays a recorded decision (the prefix that identifies the path) or,
//! at a new branch point, asks Z3 which sides are feasible, takes one and schedules the other as a
//! new prefix. Re-execution is cheap because models are pure Rust and Z3 hash-conses terms, so a
//! replayed run rebuilds identical terms; it avoids forking processes that own a Z3 context.
//!
//! Two measured tricks keep the solver busy only when needed: a branch condition that simplifies
//! to a constant costs no query, and a condition whose value is known in the saved model of the
//! current path has that side feasible for free, so only the other side is checked.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use z3::ast::{Ast, Bool as ZBool, Dynamic};
use z3::{Model as ZModel, Params, SatResult, Solver};

use crate::error::EngineError;
use crate::stable::StableHashSet;

/// Options for one exploration.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// Evaluate new branch conditions in the saved model of the path before asking the solver.
    pub use_saved_models: bool,
    /// A single solver check that takes longer answers `unknown` (recorded, never fatal).
    pub solver_timeout: Option<Duration>,
    /// Stop after this many completed paths (the result says it was truncated).
    pub max_paths: Option<usize>,
    /// Incremented as each path completes, so that another thread can show progress inside
    /// one long exploration (a large call set's can take an hour).
    pub paths_done: Option<Arc<AtomicU64>>,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            use_saved_models: true,
            solver_timeout: Some(Duration::from_secs(60)),
            max_paths: None,
            paths_done: None,
        }
    }
}

/// Counters of one exploration, summed over its runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExploreStats {
    /// Executions of the model function (completed, infeasible or abandoned).
    pub runs: u64,
    /// Runs abandoned because an assumption made the path infeasible.
    pub infeasible: u64,
    /// New branch points, where the solver had to be consulted or the saved model answered.
    pub branch_points: u64,
    /// Branches whose condition simplified to a constant.
    pub constant_branches: u64,
    /// Solver checks issued.
    pub solver_checks: u64,
}

impl ExploreStats {
    fn add(&mut self, o: &ExploreStats) {
        self.runs += o.runs;
        self.infeasible += o.infeasible;
        self.branch_points += o.branch_points;
        self.constant_branches += o.constant_branches;
        self.solver_checks += o.solver_checks;
    }
}

/// Why a constraint is on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintKind {
    /// The model branched and this path took the side where the formula holds.
    Branch,
    /// The model assumed the formula (a precondition, a bound): shown in conditions.
    Assumption,
    /// A fact every reachable state satisfies (type invariants, [`invariant`]): it restricts
    /// the states explored but is left out of displayed conditions.
    Invariant,
}

/// One conjunct of a path condition.
#[derive(Clone, Debug)]
pub struct Constraint {
    /// The formula as the solver saw it (after simplification).
    pub formula: ZBool,
    pub kind: ConstraintKind,
}

/// A completed path: its decisions, its condition and what the model function returned.
pub struct Path<R> {
    /// The branch decisions that identify the path (replaying them rebuilds it).
    pub decisions: Vec<bool>,
    /// Branch constraints and assumptions, in the order they were made.
    pub constraints: Vec<Constraint>,
    /// Internal choices (`internal_*` values) made on this path.
    pub internals: Vec<Dynamic>,
    /// Terms the model declared part of the situation ([`situation_term`]), beyond those its
    /// branch constraints mention.
    pub situation_terms: Vec<Dynamic>,
    /// Solver answers of `unknown` met on this path (the side was treated as feasible).
    pub unknowns: Vec<String>,
    /// A model of the path condition, when one is known.
    pub model: Option<ZModel>,
    /// What the model function returned.
    pub value: R,
}

impl<R> Path<R> {
    /// The whole path condition as one formula.
    pub fn condition(&self) -> ZBool {
        let parts: Vec<&ZBool> = self.constraints.iter().map(|c| &c.formula).collect();
        ZBool::and(&parts)
    }
}

/// The result of exploring a model function.
pub struct Exploration<R> {
    /// Completed paths, ordered by decision vector (a canonical, solver-independent order).
    pub paths: Vec<Path<R>>,
    pub stats: ExploreStats,
    /// True when `max_paths` stopped the exploration early.
    pub truncated: bool,
}

/// Panic payload that abandons an infeasible path; never escapes `explore`.
struct Infeasible;

/// Panic payload of a precondition that fails inside [`preconditions_as_branches`]; never
/// escapes it.
struct PreconditionFailed;

/// A solver kept across runs (the explorer's, and test generation's over a call set's paths):
/// each recorded constraint sits in its own scope, and a run whose constraints start like the
/// previous run's (a depth-first exploration replays a shared prefix; paths in decision order
/// share most of theirs) keeps those scopes instead of asserting them again. Z3 then reuses
/// what it learnt from them, and no solver is torn down and set up per run.
pub struct ScopedSolver {
    solver: Solver,
    /// The formulas asserted, one scope each, oldest first.
    asserted: Vec<ZBool>,
    /// How many of `asserted` this run has recorded (in the same order); the rest are stale.
    matched: usize,
}

impl ScopedSolver {
    /// Wrap `solver` (nothing asserted on it yet).
    pub fn new(solver: Solver) -> Self {
        ScopedSolver {
            solver,
            asserted: Vec::new(),
            matched: 0,
        }
    }

    /// A new run: nothing recorded yet (stale scopes go when they first differ or before a
    /// check).
    pub fn restart(&mut self) {
        self.matched = 0;
    }

    /// Record `formula` as the run's next constraint.
    pub fn assert(&mut self, formula: &ZBool) {
        if self.asserted.get(self.matched) == Some(formula) {
            self.matched += 1;
            return;
        }
        self.drop_stale();
        self.solver.push();
        self.solver.assert(formula);
        self.asserted.push(formula.clone());
        self.matched += 1;
    }

    /// Pop the scopes of constraints this run has not recorded.
    fn drop_stale(&mut self) {
        let stale = self.asserted.len() - self.matched;
        if stale > 0 {
            self.solver.pop(stale as u32);
            self.asserted.truncate(self.matched);
        }
    }

    /// The solver holding exactly the run's constraints (a caller's own scopes on it must be
    /// closed before the next [`ScopedSolver::assert`]).
    pub fn current(&mut self) -> &Solver {
        self.drop_stale();
        &self.solver
    }
}

struct Executor {
    prefix: Vec<bool>,
    pos: usize,
    solver: ScopedSolver,
    /// A model of the current path condition, if known.
    model: Option<ZModel>,
    constraints: Vec<Constraint>,
    internals: Vec<Dynamic>,
    situation_terms: Vec<Dynamic>,
    unknowns: Vec<String>,
    pending: Vec<Pending>,
    fresh_counter: u32,
    thread: usize,
    assumed: StableHashSet<ZBool>,
    stats: ExploreStats,
    use_saved_models: bool,
    /// The per-check time limit (every way of asking, [`Executor::check`]).
    solver_timeout: Option<Duration>,
    /// Inside [`preconditions_as_branches`]: an assumption branches instead of narrowing.
    preconditions_branch: bool,
}

struct Pending {
    prefix: Vec<bool>,
    model: Option<ZModel>,
}

/// Outcome of one solver check.
enum Check {
    Sat(Option<ZModel>),
    Unsat,
    Unknown(String),
}

impl Check {
    fn feasible(&self) -> bool {
        !matches!(self, Check::Unsat)
    }
    fn into_model(self) -> Option<ZModel> {
        match self {
            Check::Sat(m) => m,
            _ => None,
        }
    }
}

thread_local! {
    static EXECUTOR: RefCell<Option<Executor>> = const { RefCell::new(None) };
}

impl Executor {
    /// Whether the path's constraints and `extra` can hold together. Z3 can be asked two ways,
    /// and each fails on queries the other decides at once: the incremental solver (the one the
    /// path's constraints live in, scoped) keeps to the SMT core, whose quantifier
    /// instantiation may give up ("incomplete quantifiers") or loop (one query of
    /// `open/open/open` grew to 14 GiB and crashed Z3), while a one-shot solver gets Z3's full
    /// preprocessing but may be slow where the incremental one had learnt what it needed (a
    /// query of the models crate's `O_ANYFD` test). So the question goes to each within
    /// [`CHECK_BUDGET`] (a deterministic count, so the same attempt decides in every run),
    /// then to each within [`FALLBACK_BUDGET`], then to one-shot solvers whose search starts
    /// from other random seeds, until one decides or the timeout passes; still unknown: the
    /// first attempt's reason. Which queries are hard for which way depends on term ids, so
    /// any change in what the engine builds moves them; the reseeded attempts are what keeps
    /// such a change from turning a decided query into an unknown (a quantified query of the
    /// `O_ANYFD` test, once terms were simplified once per context, went undecided by both
    /// ways for 60 s; seed 1 decides it in a fraction of a second, seed 2 in two). Each
    /// attempt is deterministic, so the same one decides in every run.
    fn check(&mut self, extra: &ZBool) -> Check {
        let attempts = [
            (Way::Incremental, CHECK_BUDGET),
            (Way::OneShot(0), CHECK_BUDGET),
            (Way::Incremental, FALLBACK_BUDGET),
            (Way::OneShot(0), FALLBACK_BUDGET),
            (Way::OneShot(1), FALLBACK_BUDGET),
            (Way::OneShot(2), FALLBACK_BUDGET),
            (Way::OneShot(3), FALLBACK_BUDGET),
        ];
        let mut first_reason = None;
        // A way that gave up for good (not for want of budget) is not asked again.
        let mut gave_up: Vec<Way> = Vec::new();
        for (way, budget) in attempts {
            if gave_up.contains(&way) {
                continue;
            }
            let started = Instant::now();
            let check = match way {
                Way::Incremental => self.check_incremental(extra, budget),
                Way::OneShot(seed) => self.check_one_shot(extra, budget, seed),
            };
            self.stats.solver_checks += 1;
            let Check::Unknown(reason) = check else {
                return check;
            };
            let timed_out = self.out_of_time(started);
            if !out_of_budget(&reason) {
                gave_up.push(way);
            }
            first_reason.get_or_insert(reason);
            if timed_out {
                break;
            }
        }
        Check::Unknown(first_reason.unwrap_or_default())
    }

    /// The query on the path's solver, in a scope of its own. That solver carries
    /// [`CHECK_BUDGET`] (see [`explore_from`]); another budget is set for this check only.
    fn check_incremental(&mut self, extra: &ZBool, budget: u32) -> Check {
        let solver = self.solver.current();
        if budget != CHECK_BUDGET {
            solver.set_params(&limits(self.solver_timeout, budget));
        }
        solver.push();
        solver.assert(extra);
        let check = outcome(solver);
        solver.pop(1);
        if budget != CHECK_BUDGET {
            solver.set_params(&limits(self.solver_timeout, CHECK_BUDGET));
        }
        check
    }

    /// The query on a new solver that holds only the path's constraints and `extra`, its
    /// search started from random `seed` (0: Z3's default).
    fn check_one_shot(&mut self, extra: &ZBool, budget: u32, seed: u32) -> Check {
        let solver = new_solver(self.solver_timeout, budget);
        if seed != 0 {
            let mut p = Params::new();
            p.set_u32("random_seed", seed);
            solver.set_params(&p);
        }
        for c in &self.constraints {
            solver.assert(&c.formula);
        }
        solver.assert(extra);
        outcome(&solver)
    }

    /// Whether a check that began at `started` gave up for want of time (asking again would
    /// too). Z3 reports "canceled" both for that and for the budget.
    fn out_of_time(&self, started: Instant) -> bool {
        self.solver_timeout
            .is_some_and(|limit| started.elapsed() >= limit)
    }

    fn record(&mut self, formula: ZBool, kind: ConstraintKind) {
        self.solver.assert(&formula);
        self.constraints.push(Constraint { formula, kind });
    }

    fn saved_value(&self, c: &ZBool) -> Option<bool> {
        if !self.use_saved_models {
            return None;
        }
        self.model.as_ref()?.eval(c, true)?.as_bool()
    }

    fn note_unknown(&mut self, what: &str, check: &Check) {
        if let Check::Unknown(reason) = check {
            self.unknowns.push(format!("{what}: {reason}"));
        }
    }

    fn replaying(&self) -> bool {
        self.pos < self.prefix.len()
    }

    fn take_recorded(&mut self) -> bool {
        let d = self.prefix[self.pos];
        self.pos += 1;
        d
    }

    fn commit(&mut self, take: bool) {
        self.prefix.push(take);
        self.pos += 1;
    }

    fn schedule(&mut self, side: bool, model: Option<ZModel>) {
        let mut prefix = self.prefix.clone();
        prefix.push(side);
        self.pending.push(Pending { prefix, model });
    }

    /// Decide a branch between `when_true` and `when_false`, two formulas whose disjunction
    /// holds under the path condition (for a plain branch: `c` and `not c`; then they are
    /// `complementary` and a saved model that falsifies `when_true` proves `when_false` feasible).
    fn branch_between(&mut self, when_true: ZBool, when_false: ZBool, complementary: bool) -> bool {
        if self.replaying() {
            let d = self.take_recorded();
            self.record(
                if d { when_true } else { when_false },
                ConstraintKind::Branch,
            );
            return d;
        }
        self.stats.branch_points += 1;
        let known = self.saved_value(&when_true).filter(|&v| v || complementary);
        let take = match known {
            Some(v) => {
                let other = if v { &when_false } else { &when_true };
                let check = self.check(&other.clone());
                self.note_unknown("branch", &check);
                if check.feasible() {
                    let m = check.into_model();
                    self.schedule(!v, m);
                }
                v
            }
            None => {
                let t = self.check(&when_true);
                let f = self.check(&when_false);
                self.note_unknown("branch (true side)", &t);
                self.note_unknown("branch (false side)", &f);
                match (t.feasible(), f.feasible()) {
                    (true, true) => {
                        self.schedule(false, f.into_model());
                        self.model = t.into_model();
                        true
                    }
                    (true, false) => {
                        self.model = t.into_model();
                        true
                    }
                    (false, true) => {
                        self.model = f.into_model();
                        false
                    }
                    (false, false) => panic::panic_any(Infeasible),
                }
            }
        };
        self.commit(take);
        self.record(
            if take { when_true } else { when_false },
            ConstraintKind::Branch,
        );
        take
    }

    fn branch(&mut self, c: &ZBool) -> bool {
        let c = crate::value::simplified_bool(c);
        if let Some(b) = c.as_bool() {
            self.stats.constant_branches += 1;
            return b;
        }
        let not_c = c.not();
        self.branch_between(c, not_c, true)
    }

    /// Branch on "some choice of this path's internal values (those registered from index
    /// `from` on) makes `c` hold".
    fn branch_exists_internals(&mut self, c: &ZBool, from: usize) -> bool {
        let c = crate::value::simplified_bool(c);
        if let Some(b) = c.as_bool() {
            self.stats.constant_branches += 1;
            return b;
        }
        let quantified = self.internals.len() > from;
        let none_works = if quantified {
            self.no_internal_choice_satisfies(&c, from)
        } else {
            c.not()
        };
        if self.replaying() {
            let d = self.take_recorded();
            self.record(if d { c } else { none_works }, ConstraintKind::Branch);
            return d;
        }
        if quantified && !self.check(&c.not()).feasible() {
            // Every choice satisfies `c` here: skip the quantified query, keep one decision.
            self.stats.branch_points += 1;
            self.commit(true);
            self.record(c, ConstraintKind::Branch);
            return true;
        }
        let complementary = !quantified;
        self.branch_between(c, none_works, complementary)
    }

    /// `forall I'. not (pc[I'/I] and c[I'/I])`, with I the path's internal values from index
    /// `from` on (earlier ones stay free: the condition is over them too).
    fn no_internal_choice_satisfies(&self, c: &ZBool, from: usize) -> ZBool {
        let bound = &self.internals[from..];
        let primed: Vec<Dynamic> = bound
            .iter()
            .map(|v| Dynamic::new_const(format!("{}'", v.decl().name()), &v.get_sort()))
            .collect();
        let pairs: Vec<(&Dynamic, &Dynamic)> = bound.iter().zip(primed.iter()).collect();
        let mut parts: Vec<ZBool> = self
            .constraints
            .iter()
            .map(|k| substitute(&k.formula, &pairs))
            .collect();
        parts.push(substitute(c, &pairs));
        let body = ZBool::and(&parts).not();
        let bound: Vec<&dyn Ast> = primed.iter().map(|v| v as &dyn Ast).collect();
        z3::ast::forall_const(&bound, &[], &body)
    }

    fn assume(&mut self, c: &ZBool, kind: ConstraintKind) {
        let c = crate::value::simplified_bool(c);
        if let Some(b) = c.as_bool() {
            if !b {
                panic::panic_any(Infeasible);
            }
            return;
        }
        if !self.assumed.insert(c.clone()) {
            return;
        }
        if !self.replaying() && self.saved_value(&c) != Some(true) {
            let check = self.check(&c);
            self.note_unknown("assumption", &check);
            match check {
                Check::Unsat => panic::panic_any(Infeasible),
                Check::Sat(m) => self.model = m,
                Check::Unknown(_) => self.model = None,
            }
        }
        self.record(c, kind);
    }

    /// A precondition inside [`preconditions_as_branches`]: branch on it (once per formula:
    /// one that already holds on the path holds again); whether it holds on this path.
    fn precondition(&mut self, c: &ZBool) -> bool {
        let c = crate::value::simplified_bool(c);
        if let Some(b) = c.as_bool() {
            return b;
        }
        if self.assumed.contains(&c) {
            return true;
        }
        let holds = self.branch(&c);
        if holds {
            self.assumed.insert(c);
        }
        holds
    }

    fn may_hold(&mut self, c: &ZBool) -> bool {
        let c = crate::value::simplified_bool(c);
        if let Some(b) = c.as_bool() {
            return b;
        }
        if self.saved_value(&c) == Some(true) {
            return true;
        }
        let check = self.check(&c);
        self.note_unknown("query", &check);
        check.feasible()
    }
}

fn substitute(f: &ZBool, pairs: &[(&Dynamic, &Dynamic)]) -> ZBool {
    f.substitute(pairs)
}

fn with_executor<T>(what: &str, f: impl FnOnce(&mut Executor) -> T) -> T {
    EXECUTOR.with(|cell| {
        let mut guard = cell.borrow_mut();
        match guard.as_mut() {
            Some(ex) => f(ex),
            None => panic!("{what} called outside commuter_engine::explore"),
        }
    })
}

/// Branch on a symbolic condition: explores both feasible sides, returns this path's side.
pub(crate) fn branch(c: &ZBool) -> bool {
    with_executor("branch", |e| e.branch(c))
}

/// Branch on whether some choice of the path's internal values makes `c` hold.
///
/// The `true` side is the path condition with `c`; the `false` side is the part of the path's
/// inputs (state and arguments) for which *no* internal choice on this path satisfies `c`.
/// Without internal values this is an ordinary branch.
pub fn branch_exists_internals(c: &crate::Bool) -> bool {
    with_executor("branch_exists_internals", |e| {
        e.branch_exists_internals(&c.0, 0)
    })
}

/// Like [`branch_exists_internals`], quantifying only the internal values registered since
/// [`internals_mark`] returned `mark`; earlier ones stay free, like the state and arguments.
/// Used where one order's choices are given ("for every way a;b ran") and another's chosen
/// ("b;a can match it").
pub fn branch_exists_internals_since(mark: usize, c: &crate::Bool) -> bool {
    with_executor("branch_exists_internals_since", |e| {
        e.branch_exists_internals(&c.0, mark)
    })
}

/// How many internal values the current path has registered so far.
pub fn internals_mark() -> usize {
    with_executor("internals_mark", |e| e.internals.len())
}

/// Restrict the current path to states where `c` holds; an infeasible path is abandoned.
/// Use it for preconditions (they appear in conditions); see also [`invariant`].
pub fn assume(c: &crate::Bool) {
    let holds = with_executor("assume", |e| {
        if e.preconditions_branch {
            e.precondition(&c.0)
        } else {
            e.assume(&c.0, ConstraintKind::Assumption);
            true
        }
    });
    if !holds {
        panic::panic_any(PreconditionFailed);
    }
}

/// Declare `term` part of the current path's situation, as if a branch had looked at it:
/// test generation then tells situations apart by its equalities with the other terms of
/// its kind that the path's branches mention. For objects a call works on without branching
/// on them: the pipe an fd is an end of (a call that only fails on it still touches its open
/// file), the inode `fstat` reads.
pub fn situation_term(term: &impl crate::Value) {
    let leaves = term.leaves();
    with_executor("situation_term", |e| e.situation_terms.extend(leaves));
}

/// Run `f` (model code) with its preconditions as branches: an [`assume`] inside it splits
/// the path into the side where the precondition holds (`f` goes on) and the side where it
/// fails (`f` stops there and this returns `None`), instead of dropping the failing inputs.
/// [`invariant`]s still narrow. Used where a call's precondition failing is an answer, not an
/// impossible situation: a swapped order that cannot run (movers).
pub fn preconditions_as_branches<T>(f: impl FnOnce() -> T) -> Option<T> {
    let previous = with_executor("preconditions_as_branches", |e| {
        std::mem::replace(&mut e.preconditions_branch, true)
    });
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    with_executor("preconditions_as_branches", |e| {
        e.preconditions_branch = previous
    });
    match result {
        Ok(v) => Some(v),
        Err(p) if p.is::<PreconditionFailed>() => None,
        Err(p) => panic::resume_unwind(p),
    }
}

/// Declare a fact that holds in every state the model can reach (`counter >= 0`): like
/// [`assume`], but left out of displayed conditions, which it would only clutter.
pub fn invariant(c: &crate::Bool) {
    with_executor("invariant", |e| e.assume(&c.0, ConstraintKind::Invariant))
}

/// Whether `c` can hold on the current path (one solver query; nothing is recorded).
pub fn may_hold(c: &crate::Bool) -> bool {
    with_executor("may_hold", |e| e.may_hold(&c.0))
}

/// A deterministic unique name (the same in every re-execution of the same path).
pub fn fresh_name(prefix: &str) -> String {
    with_executor("fresh_name", |e| {
        e.fresh_counter += 1;
        format!("{prefix}#{}", e.fresh_counter)
    })
}

/// The index of the calling thread: the position of the running call in its call set.
///
/// Models use it for per-thread behaviour (e.g. a log of which thread did what).
pub fn current_thread() -> usize {
    with_executor("current_thread", |e| e.thread)
}

/// Set by the analyzer before it runs each call.
pub fn set_current_thread(index: usize) {
    with_executor("set_current_thread", |e| e.thread = index)
}

/// Register a fresh constant as an internal choice of the implementation.
pub(crate) fn register_internal(v: Dynamic) {
    with_executor("internal", |e| e.internals.push(v))
}

/// True inside `explore`.
pub fn exploring() -> bool {
    EXECUTOR.with(|cell| cell.borrow().is_some())
}

fn install_quiet_panic_hook() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            if !payload.is::<Infeasible>() && !payload.is::<PreconditionFailed>() {
                previous(info)
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// What a check of `solver`'s assertions says, with a model when satisfiable.
fn outcome(solver: &Solver) -> Check {
    match solver.check() {
        SatResult::Sat => Check::Sat(solver.get_model()),
        SatResult::Unsat => Check::Unsat,
        SatResult::Unknown => Check::Unknown(
            solver
                .get_reason_unknown()
                .unwrap_or_else(|| "unknown".to_string()),
        ),
    }
}

/// Z3's budget for one attempt at a check ([`Executor::check`]), in its resource units: a
/// count of internal steps, the same on every machine and in every run, unlike a timeout.
const CHECK_BUDGET: u32 = 2_000_000;

/// The budget of the second round of attempts: large enough for every query the first round
/// leaves (the whole POSIX model decides with it, tests unchanged), and finite because Z3's
/// timeout does not stop every loop: without it, one quantified query of `open/open/open`
/// grew to 15 GiB inside the quantifier instantiation and crashed Z3, the timeout long past.
const FALLBACK_BUDGET: u32 = 20 * CHECK_BUDGET;

/// Z3's budget for a query that shapes output without deciding a path: is a conjunct of a
/// printed condition implied by the others, may a test's value take its canonical choice. Z3's
/// timeout does not stop every loop (one such query, quantified, sat 15 minutes in E-matching
/// once the engine's terms changed) where a budget, counted in steps, does, at the same step in
/// every run. Every caller reads `unknown` as the answer that changes nothing: the conjunct
/// stays, the value keeps the model's choice.
const SIDE_BUDGET: u32 = FALLBACK_BUDGET;

/// A solver for side queries (see [`SIDE_BUDGET`]): printing conditions and choosing tests'
/// values.
pub fn side_solver() -> Solver {
    new_solver(None, SIDE_BUDGET)
}

/// The ways of asking Z3 ([`Executor::check`]): the path's solver, or a new one whose search
/// starts from a random seed (0: Z3's default).
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Incremental,
    OneShot(u32),
}

/// A solver whose every check stops after `timeout` and after `rlimit` of Z3's resource units.
fn new_solver(timeout: Option<Duration>, rlimit: u32) -> Solver {
    let solver = Solver::new();
    solver.set_params(&limits(timeout, rlimit));
    solver
}

/// Solver parameters: stop each check after `timeout` and after `rlimit` of Z3's resource
/// units.
fn limits(timeout: Option<Duration>, rlimit: u32) -> Params {
    let mut p = Params::new();
    if let Some(t) = timeout {
        p.set_u32("timeout", t.as_millis().min(u32::MAX as u128) as u32);
    }
    p.set_u32("rlimit", rlimit);
    p
}

enum RunOutcome<R> {
    Completed(Path<R>),
    Infeasible,
}

fn run_once<R>(
    f: &mut dyn FnMut() -> R,
    start: Pending,
    mut solver: ScopedSolver,
    opts: &ExploreOptions,
    stats: &mut ExploreStats,
    pending: &mut Vec<Pending>,
) -> Result<(RunOutcome<R>, ScopedSolver), EngineError> {
    solver.restart();
    let decisions_hint = start.prefix.clone();
    let executor = Executor {
        prefix: start.prefix,
        pos: 0,
        solver,
        model: start.model,
        constraints: Vec::new(),
        internals: Vec::new(),
        situation_terms: Vec::new(),
        unknowns: Vec::new(),
        pending: Vec::new(),
        fresh_counter: 0,
        thread: 0,
        assumed: StableHashSet::default(),
        stats: ExploreStats::default(),
        use_saved_models: opts.use_saved_models,
        solver_timeout: opts.solver_timeout,
        preconditions_branch: false,
    };
    EXECUTOR.with(|cell| *cell.borrow_mut() = Some(executor));
    let result = panic::catch_unwind(AssertUnwindSafe(&mut *f));
    let ex = EXECUTOR
        .with(|cell| cell.borrow_mut().take())
        .ok_or(EngineError::ExecutorLost)?;
    stats.add(&ex.stats);
    stats.runs += 1;
    pending.extend(ex.pending);
    match result {
        Ok(value) => {
            let path = Path {
                decisions: ex.prefix,
                constraints: ex.constraints,
                internals: ex.internals,
                situation_terms: ex.situation_terms,
                unknowns: ex.unknowns,
                model: ex.model,
                value,
            };
            Ok((RunOutcome::Completed(path), ex.solver))
        }
        Err(p) if p.downcast_ref::<Infeasible>().is_some() => {
            stats.infeasible += 1;
            Ok((RunOutcome::Infeasible, ex.solver))
        }
        Err(p) => Err(EngineError::ModelPanicked {
            message: panic_message(p.as_ref()),
            decisions: decisions_hint,
        }),
    }
}

/// Explore every feasible path of `f`, a pure function of symbolic values.
///
/// `f` is run once per path (and once per infeasible prefix); it must build the same terms for
/// the same decisions, which holds for any function whose only source of nondeterminism is the
/// engine. Paths come back in a canonical order, independent of the solver's models.
pub fn explore<R>(
    opts: &ExploreOptions,
    f: impl FnMut() -> R,
) -> Result<Exploration<R>, EngineError> {
    explore_from(opts, vec![(Vec::new(), None)], f)
}

/// Explore every feasible path of `f` whose decisions extend one of `starts`: decision
/// prefixes of paths of `f` already explored, so that a
/// function that does more after those paths' last branch (the analyzer's idempotence check)
/// re-decides nothing the first exploration decided. Replaying a start costs no solver check.
/// A start's model, when given, must satisfy its path's condition (the explored path's saved
/// model, or that of a path extending it): new branches then ask the solver about one side
/// only, as they do inside a first exploration.
pub fn explore_from<R>(
    opts: &ExploreOptions,
    starts: Vec<(Vec<bool>, Option<ZModel>)>,
    mut f: impl FnMut() -> R,
) -> Result<Exploration<R>, EngineError> {
    if exploring() {
        return Err(EngineError::NestedExplore);
    }
    install_quiet_panic_hook();
    let mut stats = ExploreStats::default();
    let mut paths = Vec::new();
    // Popped from the end: reversed, so the first start is explored first.
    let mut queue: Vec<Pending> = starts
        .into_iter()
        .rev()
        .map(|(prefix, model)| Pending { prefix, model })
        .collect();
    let mut solver = ScopedSolver::new(new_solver(opts.solver_timeout, CHECK_BUDGET));
    let mut truncated = false;
    while let Some(start) = queue.pop() {
        if opts.max_paths.is_some_and(|m| paths.len() >= m) {
            truncated = true;
            break;
        }
        let mut discovered = Vec::new();
        let (outcome, s) = run_once(&mut f, start, solver, opts, &mut stats, &mut discovered)?;
        solver = s;
        // Depth-first: explore the most recently discovered alternative first.
        queue.extend(discovered);
        if let RunOutcome::Completed(p) = outcome {
            paths.push(p);
            if let Some(done) = &opts.paths_done {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    paths.sort_by(|a, b| a.decisions.cmp(&b.decisions));
    Ok(Exploration {
        paths,
        stats,
        truncated,
    })
}

/// Z3's process-wide settings, made once before the first context.
///
/// `model.compact=false`: Z3 otherwise compacts every model it hands out (folding function
/// interpretations), and exploration and test generation ask for a model after almost every
/// satisfiable check. The values our terms evaluate to do not change (`analysis.json` and
/// `tests.json` of the whole POSIX model byte-identical); test generation takes about a tenth
/// less time.
fn configure_z3() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| z3::set_global_param("model.compact", "false"));
}

/// Run `f` with a fresh Z3 context on this thread, so that term creation order (and with it
/// every simplified formula and model) does not depend on what the thread did before.
pub fn with_fresh_context<T: Send + Sync>(f: impl FnOnce() -> T + Send + Sync) -> T {
    configure_z3();
    let cfg = z3::Config::new();
    crate::value::new_context_generation();
    let result = z3::with_z3_config(&cfg, f);
    crate::value::new_context_generation();
    result
}

/// Whether Z3's reason for `unknown` is the budget or the timeout running out (asking another
/// way may still decide), not a way that gave up for good ("incomplete quantifiers"). The
/// incremental solver says "canceled", a new one "max. resource limit exceeded".
fn out_of_budget(reason: &str) -> bool {
    reason.contains("canceled") || reason.contains("resource limit")
}
