//! Known answers of the POSIX model (issue 4), checked with the real analyzer on Z3.
//!
//! A scenario restricts the analysis to initial states and arguments where a fact is stated:
//! it wraps the model and assumes a condition on the symbolic initial state and on the calls'
//! arguments, which the analyzer names `a.<field>` and `b.<field>` (slots a and b); a constant
//! made with the same name and sort is the same term. Every path left must then commute (or
//! must not).

use commuter_analyzer::{
    Analysis, AnalyzeOptions, CallSetReport, Commutes, analyze, select_model_call_sets,
};
use commuter_engine::{Bool, Call, DynModel, Int, Model, SymEq, Symbolic, assume};
use commuter_models::posix::PosixModel;
use commuter_models::posix::state::{FileName, PosixState, Proc};

/// The POSIX model with `setup` assumed on every path.
struct Scenario {
    model: PosixModel,
    setup: fn(&PosixState),
}

impl Model for Scenario {
    type State = PosixState;
    fn name(&self) -> &'static str {
        "posix-scenario"
    }
    fn description(&self) -> &'static str {
        "the POSIX model restricted to a scenario"
    }
    fn calls(&self) -> Vec<Call<PosixState>> {
        Model::calls(&self.model)
    }
    fn excluded_by_default(&self) -> &'static [&'static str] {
        Model::excluded_by_default(&self.model)
    }
    fn processes(&self) -> usize {
        Model::processes(&self.model)
    }
    fn initial_state(&self) -> PosixState {
        let s = Model::initial_state(&self.model);
        (self.setup)(&s);
        s
    }
}

/// The analysis of `functions` (`None`: every pair of the default calls), with conditions.
fn run(model: &dyn DynModel, functions: Option<&str>) -> Analysis {
    analysis(model, functions, true)
}

/// `print_conds` off where only the verdicts matter: simplifying every condition of every
/// pair for printing costs more than deciding them.
fn analysis(model: &dyn DynModel, functions: Option<&str>, print_conds: bool) -> Analysis {
    analysis_n(model, functions, print_conds, 2)
}

/// [`analysis`] of call sets of `n` calls.
fn analysis_n(
    model: &dyn DynModel,
    functions: Option<&str>,
    print_conds: bool,
    n: usize,
) -> Analysis {
    let sets = select_model_call_sets(model, functions, n).expect("valid selection");
    // Idempotence has tests of its own (analyzer/tests/posix_idempotence.rs); here it would
    // double the time of every scenario.
    let opts = AnalyzeOptions {
        print_conds,
        skip_idempotence: true,
        ..Default::default()
    };
    analyze(model, &sets, &opts, functions, &|_| {}).expect("analysis runs")
}

/// The one call set of `functions` under `setup`.
fn scenario(functions: &str, setup: fn(&PosixState)) -> CallSetReport {
    scenario_of(PosixModel::default(), functions, setup)
}

fn scenario_of(model: PosixModel, functions: &str, setup: fn(&PosixState)) -> CallSetReport {
    let a = run(&Scenario { model, setup }, Some(functions));
    assert_eq!(a.call_sets.len(), 1, "{functions} is one call set");
    let cs = a.call_sets.into_iter().next().expect("one call set");
    assert!(cs.paths > 0, "{functions}: the scenario is feasible");
    assert_eq!(cs.unknowns, 0, "{functions}: no solver unknowns");
    cs
}

fn describe(cs: &CallSetReport) -> String {
    let mut out = format!("{} ({:?})\n", cs.name(), cs.commutes);
    for p in &cs.path_list {
        let verdict = if p.commutes { "commutes" } else { "diverges" };
        let cond = p.condition.as_deref().unwrap_or("?");
        out.push_str(&format!("  {verdict} when {cond}\n"));
    }
    out
}

fn expect(cs: &CallSetReport, commutes: Commutes) {
    assert_eq!(cs.commutes, commutes, "{}", describe(cs));
}

fn arg<T: Symbolic>(name: &str) -> T {
    T::fresh(name)
}

fn pid(slot: &str) -> Int {
    arg(&format!("{slot}.pid"))
}

fn proc(s: &PosixState, p: i64) -> &Proc {
    if p == 0 { &s.proc0 } else { &s.proc1 }
}

/// Both opens create: `O_CREAT` of two different names, both absent.
fn two_creates(s: &PosixState) {
    let (a, b): (FileName, FileName) = (arg("a.name"), arg("b.name"));
    let both = arg::<Bool>("a.creat") & arg::<Bool>("b.creat");
    let absent = !s.root_dir.contains(&a) & !s.root_dir.contains(&b);
    assume(&(both & absent & !a.sym_eq(&b)));
}

#[test]
fn creates_in_different_processes_commute() {
    let cs = scenario("open/open", |s| {
        two_creates(s);
        assume(&pid("b").eq(1));
    });
    expect(&cs, Commutes::Always);
}

#[test]
fn creates_in_one_process_do_not_commute() {
    // The lowest-fd rule: each order hands the other call the other fd.
    let cs = scenario("open/open", |s| {
        two_creates(s);
        assume(&pid("b").eq(0));
    });
    expect(&cs, Commutes::Never);
}

/// Three pipes in one process take six fds: the third needs the fifth and sixth free fds of
/// the initial table, beyond the four the model names up front. Before the model named more
/// on demand, assuming the fourth free made every such path infeasible: no path at all.
#[test]
fn three_pipes_in_one_process_get_six_free_fds() {
    let model = Scenario {
        model: PosixModel::default(),
        setup: |_| {
            assume(&(pid("b").eq(0) & pid("c").eq(0)));
        },
    };
    let a = analysis_n(&model, Some("pipe/pipe/pipe"), false, 3);
    let cs = &a.call_sets[0];
    assert!(
        cs.paths > 0,
        "three pipes in one process run: {}",
        describe(cs)
    );
    assert_eq!(cs.unknowns, 0, "{}", describe(cs));
    // Each order hands each pipe other fds (lowest free first).
    expect(cs, Commutes::Never);
    // Opens that create three names in one process: the lowest-fd rule again.
    let model = Scenario {
        model: PosixModel::default(),
        setup: |s| {
            let names: Vec<FileName> = ["a", "b", "c"]
                .iter()
                .map(|slot| arg(&format!("{slot}.name")))
                .collect();
            for (i, n) in names.iter().enumerate() {
                assume(&!s.root_dir.contains(n));
                assume(&arg::<Bool>(&format!("{}.creat", ["a", "b", "c"][i])));
                for m in &names[i + 1..] {
                    assume(&!n.sym_eq(m));
                }
            }
            assume(&(pid("b").eq(0) & pid("c").eq(0)));
        },
    };
    let a = analysis_n(&model, Some("open/open/open"), false, 3);
    let cs = &a.call_sets[0];
    assert!(cs.paths > 0 && cs.unknowns == 0, "{}", describe(cs));
    expect(cs, Commutes::Never);
}

#[test]
fn stat_stat_always_commutes() {
    let a = run(&PosixModel::default(), Some("stat/stat"));
    expect(&a.call_sets[0], Commutes::Always);
}

#[test]
fn link_then_unlink_of_an_absent_name_never_commutes() {
    let cs = scenario("link/unlink", |s| {
        let (old, new, gone): (FileName, FileName, FileName) =
            (arg("a.old"), arg("a.new"), arg("b.name"));
        assume(&s.root_dir.contains(&old));
        assume(&!s.root_dir.contains(&new));
        assume(&new.sym_eq(&gone));
    });
    expect(&cs, Commutes::Never);
}

#[test]
fn pipe_write_read_commute_when_non_empty() {
    let cs = scenario("read/write", |s| {
        let len = pipe_ends(s);
        assume(&len.gt(0));
    });
    expect(&cs, Commutes::Always);
}

#[test]
fn pipe_write_read_do_not_commute_when_empty() {
    let cs = scenario("read/write", |s| {
        let len = pipe_ends(s);
        assume(&len.eq(0));
    });
    expect(&cs, Commutes::Never);
}

/// `a.fd` is the read end and `b.fd` the write end of one pipe, both in process 0 (call sets
/// follow the model's call order: `read` is slot a, `write` slot b).
fn pipe_ends(s: &PosixState) -> Int {
    let fds = &proc(s, 0).fd_map;
    assume(&pid("b").eq(0));
    let (r, w): (Int, Int) = (arg("a.fd"), arg("b.fd"));
    assume(&(fds.contains(&w) & fds.contains(&r)));
    let (wf, rf) = (fds.get(&w), fds.get(&r));
    assume(&(wf.ispipe.clone() & wf.pipewriter.clone()));
    assume(&(rf.ispipe.clone() & !&rf.pipewriter));
    assume(&wf.pipeid.sym_eq(&rf.pipeid));
    s.pipes.get(&wf.pipeid).data.len()
}

#[test]
fn mmaps_without_map_fixed_commute() {
    let cs = scenario("mmap/mmap", |_| {
        assume(&(!arg::<Bool>("a.fixed") & !arg::<Bool>("b.fixed")));
    });
    expect(&cs, Commutes::Always);
}

#[test]
fn all_pairs_have_no_unknowns() {
    let a = analysis(&PosixModel::default(), None, false);
    assert_eq!(a.call_sets.len(), 171, "18 calls give 171 pairs");
    let with_unknowns: Vec<String> = a
        .call_sets
        .iter()
        .filter(|c| c.unknowns > 0)
        .map(|c| format!("{}: {}", c.name(), c.unknowns))
        .collect();
    assert!(with_unknowns.is_empty(), "unknowns in {with_unknowns:?}");
    // Sanity: the calls do not all commute, and do not all diverge.
    assert!(a.total_commutative() > 0 && a.total_commutative() < a.total_paths());
}

#[test]
fn extension_calls_are_not_default() {
    let info = PosixModel::default().call_info();
    let excluded: Vec<&str> = info.iter().filter(|c| !c.default).map(|c| c.name).collect();
    assert_eq!(excluded, ["sync", "fsync", "reboot"]);
    assert_eq!(info.len(), 21);
}

#[test]
fn model_is_registered_first() {
    assert_eq!(commuter_models::builtin_models()[0].name(), "posix");
}

#[test]
fn any_fd_lets_creates_in_one_process_commute() {
    let model = PosixModel { anyfd: true };
    let cs = scenario_of(model, "open/open", |s| {
        two_creates(s);
        assume(&pid("b").eq(0));
        assume(&(arg::<Bool>("a.anyfd") & arg::<Bool>("b.anyfd")));
    });
    expect(&cs, Commutes::Always);
}
