//! TESTGEN: for every commutative path, concrete tests that cover every meaningfully different
//! situation ("conflict coverage").
//!
//! Per commutative path: solve the path condition, build a test from the model (initial state,
//! arguments, expected results, all concrete), then block the test's isomorphism class and
//! solve again, until unsat or a cap. The class is the boolean facts the test read and the
//! equality pattern of each namespace, restricted to facts and terms that occur in the path's
//! branch conditions: a value no branch looks at takes a canonical value and makes no class
//! of its own, so every situation the model distinguishes gets one test, and none gets two.
//!
//! Invariant: no IO. Output order is canonical (call sets in selection order, paths in the
//! analyzer's order, tests in enumeration order within one fresh Z3 context per call set).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use commuter_analyzer::{
    AnalyzeError, AnalyzeOptions, CallSet, CallSetReport, ExploredCallSet, PathOutcome, PathReport,
    analyze_call_set_with, slot_name,
};
use commuter_engine::z3::ast::{Ast, Dynamic};
use commuter_engine::z3::{AstKind, Goal, Params, SatResult, Solver, Tactic};
use commuter_engine::{
    Canonical, Class, Concretizer, ConstraintKind, DynModel, Path, PoolExhausted, ScopedSolver,
    StableHashMap, StableHashSet, side_solver,
};

pub use commuter_tests_format::{
    CallSetTests, Expectation, LoadError, SuitePart, TESTS_SCHEMA, TESTS_VERSION, TestCall,
    TestCase, TestError, TestSuite, parse_suite, parse_suite_or_part,
};

pub mod shard;

/// Options of test generation.
#[derive(Clone, Debug)]
pub struct TestgenOptions {
    pub analyze: AnalyzeOptions,
    /// Stop enumerating a path after this many tests (the paper's run used 500).
    pub max_tests_per_path: usize,
    /// Stop generating for a call set after this many tests.
    pub max_testcases: Option<usize>,
}

impl Default for TestgenOptions {
    fn default() -> Self {
        TestgenOptions {
            analyze: AnalyzeOptions::default(),
            max_tests_per_path: 500,
            max_testcases: None,
        }
    }
}

/// One call set's analysis and tests, with timing for the terminal summary.
pub struct CallSetOutcome {
    pub analysis: CallSetReport,
    pub tests: CallSetTests,
    pub time: Duration,
}

/// Generate tests for every call set, in parallel; `on_done` is told of each finished set.
pub fn testgen(
    model: &dyn DynModel,
    sets: &[CallSet],
    opts: &TestgenOptions,
    functions: Option<&str>,
    on_done: &(dyn Fn(&CallSetOutcome) + Sync),
) -> Result<(TestSuite, Vec<CallSetOutcome>), AnalyzeError> {
    let outcomes = commuter_analyzer::schedule::for_each_set(model, sets, |set| {
        let started = Instant::now();
        let (analysis, tests) =
            analyze_call_set_with(model, set, &opts.analyze, |x| generate(x, opts))?;
        let outcome = CallSetOutcome {
            analysis,
            tests,
            time: started.elapsed(),
        };
        on_done(&outcome);
        Ok::<_, AnalyzeError>(outcome)
    })?;
    let suite = TestSuite {
        schema: TESTS_SCHEMA.to_string(),
        version: TESTS_VERSION,
        model: model.name().to_string(),
        ncomb: sets.iter().map(Vec::len).max().unwrap_or(0),
        functions: functions.map(str::to_string),
        max_tests_per_path: opts.max_tests_per_path,
        max_testcases: opts.max_testcases,
        part: None,
        call_sets: outcomes.iter().map(|o| o.tests.clone()).collect(),
    };
    Ok((suite, outcomes))
}

/// Tests for one explored call set (runs inside its Z3 context).
fn generate(x: &ExploredCallSet, opts: &TestgenOptions) -> CallSetTests {
    // One solver for the call set: a path keeps the scopes of the prefix it shares with the
    // path before (paths come in decision order), and Z3 what it learnt there.
    let mut solver = ScopedSolver::new(side_solver());
    let mut out = CallSetTests {
        calls: x.calls.to_vec(),
        paths: x.paths.len(),
        commutative_paths: x.reports.iter().filter(|r| r.commutes).count(),
        capped_paths: Vec::new(),
        tests: Vec::new(),
        errors: Vec::new(),
    };
    for (path, report) in x.paths.iter().zip(x.reports) {
        if !report.commutes {
            continue;
        }
        let budget = opts.max_testcases.map_or(opts.max_tests_per_path, |m| {
            m.saturating_sub(out.tests.len())
                .min(opts.max_tests_per_path)
        });
        let enumerated = enumerate_path(x, path, report, budget, &mut solver);
        out.tests.extend(enumerated.tests);
        out.errors.extend(enumerated.errors);
        if enumerated.capped {
            out.capped_paths.push(report.id.clone());
        }
    }
    out
}

struct Enumerated {
    tests: Vec<TestCase>,
    errors: Vec<TestError>,
    capped: bool,
}

/// Enumerate one path's isomorphism classes, at most `budget` of them.
fn enumerate_path(
    x: &ExploredCallSet,
    path: &Path<PathOutcome>,
    report: &PathReport,
    budget: usize,
    solver: &mut ScopedSolver,
) -> Enumerated {
    let path_id = report.id.as_str();
    let relevant = branch_terms(path);
    // Every build asks about the same few hundred terms: simplify each once per path.
    let verdicts = RefCell::new(StableHashMap::<Dynamic, bool>::default());
    let is_relevant = |d: &Dynamic| {
        if let Some(&known) = verdicts.borrow().get(d) {
            return known;
        }
        let verdict = relevant.contains(d) || relevant.contains(&d.simplify());
        verdicts.borrow_mut().insert(d.clone(), verdict);
        verdict
    };
    let pool = |ns: &str| x.model.pool(ns);
    solver.restart();
    for c in &path.constraints {
        solver.assert(&c.formula);
    }
    let solver = solver.current();
    // The path's blocked classes, in a scope of their own above its constraints.
    solver.push();
    let mut done = Enumerated {
        tests: Vec::new(),
        errors: Vec::new(),
        capped: false,
    };
    let mut attempt = 0;
    loop {
        match solver.check() {
            SatResult::Unsat => break,
            SatResult::Unknown => {
                done.errors.push(TestError {
                    path: path_id.to_string(),
                    error: format!(
                        "solver unknown while enumerating: {}",
                        solver.get_reason_unknown().unwrap_or_default()
                    ),
                });
                break;
            }
            SatResult::Sat => {}
        }
        if attempt == budget {
            done.capped = true;
            break;
        }
        let Some(first) = solver.get_model() else {
            break;
        };
        let (built, class) = canonical_test(x, path, solver, first, &pool, &is_relevant);
        match built {
            Ok((setup, calls, expected)) => done.tests.push(TestCase {
                id: format!("{path_id}_{}", done.tests.len()),
                path: path_id.to_string(),
                class: class.description,
                idempotent: report.idempotent.clone(),
                setup,
                calls,
                expected,
            }),
            Err(e) => done.errors.push(TestError {
                path: path_id.to_string(),
                error: e.to_string(),
            }),
        }
        attempt += 1;
        solver.assert(class.formula.not());
    }
    solver.pop(1);
    done
}

type Built = (serde_json::Value, Vec<TestCall>, Vec<Expectation>);

/// Rebuilding a test on a new model converges: each round decides at least one more fact.
const MAX_CANONICAL_ROUNDS: usize = 64;

/// Build the test of the class the canonical decisions pick (see `Canonical`), starting from
/// the solver's `first` model; returns it with its class formula.
fn canonical_test(
    x: &ExploredCallSet,
    path: &Path<PathOutcome>,
    solver: &Solver,
    first: commuter_engine::z3::Model,
    pool: &dyn Fn(&str) -> commuter_engine::Pool,
    is_relevant: &dyn Fn(&Dynamic) -> bool,
) -> (Result<Built, PoolExhausted>, Class) {
    let mut canonical = Canonical::open(solver);
    let mut model = first;
    let mut rounds = 0;
    let mut no_better_model = false;
    loop {
        let mut cx = Concretizer::canonical(&model, pool, &mut canonical, solver);
        let built = build_test(x, path, &mut cx);
        rounds += 1;
        // Only the last build's class is used: a stale build's is never computed.
        if !cx.is_stale() || rounds == MAX_CANONICAL_ROUNDS || no_better_model {
            let class = cx.class(is_relevant);
            drop(cx);
            canonical.close(solver);
            return (built, class);
        }
        drop(cx);
        match canonical.model(solver) {
            Some(m) => model = m,
            // Cannot happen (the decisions were each proved possible); build once more.
            None => no_better_model = true,
        }
    }
}

fn build_test(
    x: &ExploredCallSet,
    path: &Path<PathOutcome>,
    cx: &mut Concretizer,
) -> Result<Built, PoolExhausted> {
    let outcome = &path.value;
    let mut calls = Vec::new();
    for (slot, &call) in x.set.iter().enumerate() {
        calls.push(TestCall {
            slot: slot_name(slot),
            call: x.calls[slot].clone(),
            args: x.instance.concrete_args(
                call,
                outcome.args[slot].as_ref(),
                outcome.initial.as_ref(),
                cx,
            )?,
        });
    }
    // Results before the state: values first met in results (an element a read returns) must
    // appear in the state's description.
    let mut expected = Vec::new();
    for (order, slot, result) in &outcome.results {
        // Results follow from the situation: they do not define new classes.
        let call = x.set[*slot];
        let result = cx.quietly(|cx| x.instance.concrete_result(call, result.as_ref(), cx))?;
        expected.push(Expectation {
            order: order.clone(),
            slot: slot_name(*slot),
            result,
        });
    }
    let setup = x.instance.concrete_state(outcome.initial.as_ref(), cx)?;
    Ok((setup, calls, expected))
}

/// Every subterm of the path's branch constraints (not of its assumptions) and of the terms
/// the model declared part of the situation: the facts and terms a test's class is made of.
/// Branch terms are collected after simplification that resolves reads of just-written keys,
/// so a map's initial contents count only where a branch can still see them, and a fact or
/// value neither mentions (whether an fd the path never inspects is a pipe, a name no call
/// looks up) takes a canonical value without making classes of its own.
fn branch_terms(path: &Path<PathOutcome>) -> StableHashSet<Dynamic> {
    let mut params = Params::new();
    params.set_bool("blast_select_store", true);
    let simplify = Tactic::new("simplify").with(&params);
    let goal = Goal::new(false, false, false);
    for c in path
        .constraints
        .iter()
        .filter(|c| c.kind == ConstraintKind::Branch)
    {
        goal.assert(&c.formula);
    }
    let formulas: Vec<Dynamic> = match simplify.apply(&goal, None) {
        Ok(r) => r
            .list_subgoals()
            .flat_map(|g| g.get_formulas())
            .map(|f| Dynamic::from_ast(&f))
            .collect(),
        Err(_) => goal
            .get_formulas()
            .iter()
            .map(|f| Dynamic::from_ast(f))
            .collect(),
    };
    let mut seen = StableHashSet::default();
    for f in &formulas {
        collect_subterms(f, &mut seen);
    }
    for t in &path.situation_terms {
        collect_subterms(t, &mut seen);
    }
    seen
}

fn collect_subterms(d: &Dynamic, seen: &mut StableHashSet<Dynamic>) {
    if !seen.insert(d.clone()) || d.kind() != AstKind::App {
        return;
    }
    for c in d.children() {
        collect_subterms(&c, seen);
    }
}
