//! The ANALYZER: for every selected set of calls of a model, exactly when the calls commute.
//!
//! Each call set is explored symbolically (see [`sim`]); every path ends commutative or
//! divergent, with its condition over the initial state and the arguments. Call sets run in
//! parallel, each on its own Z3 context, and the result ([`Analysis`]) is plain data in a
//! canonical order, so the same model and options give the same report byte for byte.
//!
//! Invariant: this crate does no IO; progress is reported through a callback.

pub mod schedule;
pub mod select;
pub mod sim;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use commuter_engine::{
    Condition, ConditionPrinter, DynModel, EngineError, ExploreOptions, ExploreStats, Instance,
    Path, explore, explore_from, with_fresh_context,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use select::{CallSet, SelectError, select_call_sets, select_model_call_sets};
pub use sim::{PathOutcome, Verdict, slot_name};

/// The schema identifier and version of [`Analysis`] as written to `analysis.json`.
pub const ANALYSIS_SCHEMA: &str = "commuter.analysis";
/// Version 2: paths say which calls are idempotent on them (`idempotent`).
pub const ANALYSIS_VERSION: u32 = 2;

/// Options of an analysis.
#[derive(Clone, Debug, Default)]
pub struct AnalyzeOptions {
    pub explore: ExploreOptions,
    /// Compute a human-readable condition for every path.
    pub print_conds: bool,
    /// Leave out the idempotence check (paths then name no idempotent call): it costs about
    /// as much as the commutativity check itself.
    pub skip_idempotence: bool,
}

/// Errors of the analyzer.
#[derive(Debug, Error)]
pub enum AnalyzeError {
    #[error("analysing {calls}: {source}")]
    Engine {
        calls: String,
        #[source]
        source: EngineError,
    },
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(
        "movers are decided per ordered pair of calls, but the call set {calls} has {n} calls; select pairs (`-n 2`)"
    )]
    MoversNeedPairs { calls: String, n: usize },
}

/// Whether a call set commutes on all, some or none of its paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Commutes {
    Always,
    Sometimes,
    Never,
}

impl Commutes {
    /// `Always` when every one of `paths` paths says yes, `Never` when none does.
    fn of(yes: usize, paths: usize) -> Self {
        match yes {
            0 => Commutes::Never,
            n if n == paths => Commutes::Always,
            _ => Commutes::Sometimes,
        }
    }
}

/// One path of a call set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathReport {
    /// Stable id: `<call>_<call>_<index>`.
    pub id: String,
    /// The branch decisions that identify the path, `T`/`F` per decision.
    pub decisions: String,
    pub commutes: bool,
    /// For divergent paths: which comparisons fail ("ab/ba state", "a/ba result", ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub divergence: Vec<String>,
    /// The path condition, simplified, when conditions were requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Solver answers of `unknown` on this path (each side was kept as feasible).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknowns: Vec<String>,
    /// On a commutative path: the slots ("a", "b", ...) whose call is idempotent here (run
    /// twice, it repeats its result and leaves the state it left). Since schema version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idempotent: Vec<String>,
}

/// The analysis of one call set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallSetReport {
    pub calls: Vec<String>,
    pub paths: usize,
    pub commutative_paths: usize,
    pub unknowns: usize,
    pub commutes: Commutes,
    /// True if `max_paths` stopped the exploration (the counts are then lower bounds).
    #[serde(default)]
    pub truncated: bool,
    pub path_list: Vec<PathReport>,
    /// When conditions were requested: the calls commute iff this holds, given `runs_iff`
    /// (the disjunction of the commutative paths' conditions, simplified within the call
    /// set's preconditions; `true`: always; `false`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commutes_iff: Option<String>,
    /// When conditions were requested: where every order of the calls can run at all (the
    /// disjunction of every path's condition: the calls' preconditions; `true`: everywhere,
    /// `false`: nowhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_iff: Option<String>,
    /// Wall time of this call set (not serialized: reports must be reproducible).
    #[serde(skip)]
    pub time: Duration,
    #[serde(skip)]
    pub stats: Option<ExploreStats>,
}

impl CallSetReport {
    pub fn name(&self) -> String {
        self.calls.join("/")
    }
}

/// A whole analysis: what `analysis.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub schema: String,
    pub version: u32,
    pub model: String,
    /// Calls per set (`--ncomb`).
    pub ncomb: usize,
    /// The `-f` selection as given, if any.
    pub functions: Option<String>,
    pub call_sets: Vec<CallSetReport>,
}

impl Analysis {
    pub fn total_paths(&self) -> usize {
        self.call_sets.iter().map(|c| c.paths).sum()
    }
    pub fn total_commutative(&self) -> usize {
        self.call_sets.iter().map(|c| c.commutative_paths).sum()
    }
    pub fn total_unknowns(&self) -> usize {
        self.call_sets.iter().map(|c| c.unknowns).sum()
    }
}

/// Analyze the given call sets of `model`, in parallel; `on_done` is told of each finished set.
pub fn analyze(
    model: &dyn DynModel,
    sets: &[CallSet],
    opts: &AnalyzeOptions,
    functions: Option<&str>,
    on_done: &(dyn Fn(&CallSetReport) + Sync),
) -> Result<Analysis, AnalyzeError> {
    let call_sets = schedule::for_each_set(model, sets, |set| {
        let report = analyze_call_set(model, set, opts)?;
        on_done(&report);
        Ok::<_, AnalyzeError>(report)
    })?;
    Ok(Analysis {
        schema: ANALYSIS_SCHEMA.to_string(),
        version: ANALYSIS_VERSION,
        model: model.name().to_string(),
        ncomb: sets.iter().map(Vec::len).max().unwrap_or(0),
        functions: functions.map(str::to_string),
        call_sets,
    })
}

/// Analyze one call set on the current thread (with a fresh Z3 context).
pub fn analyze_call_set(
    model: &dyn DynModel,
    set: &[usize],
    opts: &AnalyzeOptions,
) -> Result<CallSetReport, AnalyzeError> {
    analyze_call_set_with(model, set, opts, |_| ()).map(|(report, ())| report)
}

/// A call set's explored paths, still holding their Z3 terms (valid only inside
/// [`analyze_call_set_with`]).
pub struct ExploredCallSet<'a> {
    pub model: &'a dyn DynModel,
    pub instance: &'a dyn Instance,
    pub set: &'a [usize],
    pub calls: &'a [String],
    pub paths: &'a [Path<PathOutcome>],
    pub reports: &'a [PathReport],
}

/// Analyze one call set and, while its terms are alive, let `then` derive more from its paths
/// (test generation does); `then`'s result must be plain data.
pub fn analyze_call_set_with<X: Send + Sync>(
    model: &dyn DynModel,
    set: &[usize],
    opts: &AnalyzeOptions,
    then: impl FnOnce(&ExploredCallSet) -> X + Send + Sync,
) -> Result<(CallSetReport, X), AnalyzeError> {
    let info = model.call_info();
    let calls: Vec<String> = set.iter().map(|&c| info[c].name.to_string()).collect();
    let started = Instant::now();
    let (mut report, extra) = with_fresh_context(|| {
        let instance = model.instantiate();
        let exploration = explore(&opts.explore, || {
            sim::check_call_set(instance.as_ref(), set, model.processes())
        })
        .map_err(|source| AnalyzeError::Engine {
            calls: calls.join("/"),
            source,
        })?;
        let mut exploration = exploration;
        let idempotence = idempotence(
            instance.as_ref(),
            set,
            model.processes(),
            opts,
            &mut exploration,
        )
        .map_err(|source| AnalyzeError::Engine {
            calls: calls.join("/"),
            source,
        })?;
        let report = summarize(&calls, &exploration, &idempotence, opts);
        let explored = ExploredCallSet {
            model,
            instance: instance.as_ref(),
            set,
            calls: &calls,
            paths: &exploration.paths,
            reports: &report.path_list,
        };
        let extra = then(&explored);
        Ok::<_, AnalyzeError>((report, extra))
    })?;
    report.time = started.elapsed();
    Ok((report, extra))
}

/// What the idempotence check found on one path: the idempotent slots' names and the
/// solver's unknowns met while deciding it.
#[derive(Default)]
struct Idempotence {
    slots: Vec<String>,
    unknowns: Vec<String>,
}

/// Decide, for every commutative path and every slot, whether the slot's call is idempotent
/// there ([`sim::check_idempotence`]): one exploration per slot that extends the commutative
/// paths, so the paths themselves (and their order) are those of the commutativity check.
fn idempotence(
    instance: &dyn Instance,
    set: &[usize],
    processes: usize,
    opts: &AnalyzeOptions,
    exploration: &mut commuter_engine::Exploration<PathOutcome>,
) -> Result<Vec<Idempotence>, EngineError> {
    let mut found: Vec<Idempotence> = exploration
        .paths
        .iter()
        .map(|_| Idempotence::default())
        .collect();
    if opts.skip_idempotence {
        return Ok(found);
    }
    // Each start goes with a model of its path (the first slot's: the path's saved model; a
    // later slot's: the model of a path the previous slot's exploration extended it to), so
    // the extensions' new branches ask the solver about one side only. Z3 models cannot be
    // copied, hence the hand-over from slot to slot.
    let mut models: Vec<Option<commuter_engine::z3::Model>> = exploration
        .paths
        .iter_mut()
        .filter(|p| matches!(p.value.verdict, Verdict::Commutes))
        .map(|p| p.model.take())
        .collect();
    // The commutative paths, in path order: the starts of every slot's exploration.
    let commutative: Vec<(usize, &[bool])> = exploration
        .paths
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.value.verdict, Verdict::Commutes))
        .map(|(i, p)| (i, p.decisions.as_slice()))
        .collect();
    if commutative.is_empty() {
        return Ok(found);
    }
    let base: HashMap<&[bool], usize> = commutative.iter().map(|&(i, d)| (d, i)).collect();
    let lengths: BTreeSet<usize> = base.keys().map(|d| d.len()).collect();
    let starts: Vec<Vec<bool>> = commutative.iter().map(|(_, d)| d.to_vec()).collect();
    let indices: Vec<usize> = commutative.iter().map(|&(i, _)| i).collect();
    // Every extension must be explored: a truncated one would leave a path half decided.
    let explore_opts = ExploreOptions {
        max_paths: None,
        ..opts.explore.clone()
    };
    for slot in 0..set.len() {
        let seeded = starts
            .iter()
            .cloned()
            .zip(std::mem::take(&mut models))
            .collect();
        let mut extended = explore_from(&explore_opts, seeded, || {
            sim::check_idempotence(instance, set, processes, slot)
        })?;
        models = indices.iter().map(|_| None).collect();
        // Per base path with at least one extension: whether every extension is idempotent.
        let mut verdicts: HashMap<usize, bool> = HashMap::new();
        for path in &mut extended.paths {
            let Some(&i) = lengths
                .iter()
                .filter(|&&n| n <= path.decisions.len())
                .find_map(|&n| base.get(&path.decisions[..n]))
            else {
                continue;
            };
            if let Some(k) = indices.iter().position(|&j| j == i)
                && models[k].is_none()
            {
                models[k] = path.model.take();
            }
            *verdicts.entry(i).or_insert(true) &= path.value == Some(true);
            for u in &path.unknowns {
                let u = format!("idempotence of {}: {u}", slot_name(slot));
                if !found[i].unknowns.contains(&u) {
                    found[i].unknowns.push(u);
                }
            }
        }
        for (i, all) in verdicts {
            if all {
                found[i].slots.push(slot_name(slot));
            }
        }
    }
    Ok(found)
}

fn summarize(
    calls: &[String],
    exploration: &commuter_engine::Exploration<PathOutcome>,
    idempotence: &[Idempotence],
    opts: &AnalyzeOptions,
) -> CallSetReport {
    let printer = opts.print_conds.then(ConditionPrinter::new);
    let conditions: Option<Vec<Condition>> = printer.as_ref().map(|pr| {
        exploration
            .paths
            .iter()
            .map(|p| pr.condition(&p.constraints, &p.internals))
            .collect()
    });
    let prefix = calls.join("_");
    let path_list: Vec<PathReport> = exploration
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (commutes, divergence) = verdict_parts(&p.value.verdict);
            PathReport {
                id: format!("{prefix}_{i}"),
                decisions: decisions_text(&p.decisions),
                commutes,
                divergence,
                condition: conditions.as_ref().map(|c| c[i].text()),
                unknowns: p
                    .unknowns
                    .iter()
                    .chain(&idempotence[i].unknowns)
                    .cloned()
                    .collect(),
                idempotent: idempotence[i].slots.clone(),
            }
        })
        .collect();
    let merged = printer
        .as_ref()
        .zip(conditions.as_ref())
        .map(|(pr, conds)| {
            let select = |commuting_only: bool| -> Vec<&Condition> {
                conds
                    .iter()
                    .zip(&path_list)
                    .filter(|(_, r)| r.commutes || !commuting_only)
                    .map(|(c, _)| c)
                    .collect()
            };
            // Whether the calls commute is said within their preconditions (where every order
            // runs): "commutes iff" is `true` when every path commutes.
            let all = select(false);
            (pr.merge(&select(true), &all), pr.merge(&all, &[]))
        });
    let (commutes_iff, runs_iff) = merged.unzip();
    let commutative_paths = path_list.iter().filter(|p| p.commutes).count();
    let paths = path_list.len();
    CallSetReport {
        calls: calls.to_vec(),
        paths,
        commutative_paths,
        unknowns: path_list.iter().map(|p| p.unknowns.len()).sum(),
        commutes: Commutes::of(commutative_paths, paths),
        truncated: exploration.truncated,
        path_list,
        commutes_iff,
        runs_iff,
        time: Duration::ZERO,
        stats: Some(exploration.stats.clone()),
    }
}

/// Whether `first; second` can be swapped to `second; first` ([`sim::check_mover`]): `first`
/// is a right mover with respect to `second` (equivalently `second` a left mover with respect
/// to `first`) on the paths that say `moves`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoverReport {
    pub first: String,
    pub second: String,
    pub paths: usize,
    pub movable_paths: usize,
    pub unknowns: usize,
    /// Always, sometimes or never movable.
    pub moves: Commutes,
    /// Per path: `commutes` says "movable here"; `divergence` which comparison of `ab` (the
    /// given order) with `ba` fails; never `idempotent`.
    pub path_list: Vec<PathReport>,
}

impl MoverReport {
    /// `first;second`.
    pub fn name(&self) -> String {
        format!("{};{}", self.first, self.second)
    }
}

/// The mover conditions of every ordered pair the call sets (pairs) give: for a set `x/y`,
/// `x;y → y;x` and then `y;x → x;y` (once for `x/x`). In selection order, each direction on
/// a fresh Z3 context, sets in parallel; `on_done` is told of each finished direction.
pub fn analyze_movers(
    model: &dyn DynModel,
    sets: &[CallSet],
    opts: &AnalyzeOptions,
    on_done: &(dyn Fn(&MoverReport) + Sync),
) -> Result<Vec<MoverReport>, AnalyzeError> {
    let info = model.call_info();
    let name = |set: &[usize]| {
        set.iter()
            .map(|&c| info[c].name)
            .collect::<Vec<_>>()
            .join("/")
    };
    if let Some(bad) = sets.iter().find(|s| s.len() != 2) {
        return Err(AnalyzeError::MoversNeedPairs {
            calls: name(bad),
            n: bad.len(),
        });
    }
    let per_set = schedule::for_each_set(model, sets, |set| {
        let (x, y) = (set[0], set[1]);
        let directions: &[(usize, usize)] = if x == y { &[(x, y)] } else { &[(x, y), (y, x)] };
        directions
            .iter()
            .map(|&(first, second)| {
                let report = mover(model, first, second, opts)?;
                on_done(&report);
                Ok(report)
            })
            .collect::<Result<Vec<_>, AnalyzeError>>()
    })?;
    Ok(per_set.into_iter().flatten().collect())
}

/// One direction of [`analyze_movers`].
fn mover(
    model: &dyn DynModel,
    first: usize,
    second: usize,
    opts: &AnalyzeOptions,
) -> Result<MoverReport, AnalyzeError> {
    let info = model.call_info();
    let (a, b) = (info[first].name.to_string(), info[second].name.to_string());
    with_fresh_context(|| {
        let instance = model.instantiate();
        let exploration = explore(&opts.explore, || {
            sim::check_mover(instance.as_ref(), first, second, model.processes())
        })
        .map_err(|source| AnalyzeError::Engine {
            calls: format!("{a};{b}"),
            source,
        })?;
        let printer = opts.print_conds.then(ConditionPrinter::new);
        let path_list: Vec<PathReport> = exploration
            .paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (commutes, divergence) = verdict_parts(&p.value);
                PathReport {
                    id: format!("{a}_{b}_mover_{i}"),
                    decisions: decisions_text(&p.decisions),
                    commutes,
                    divergence,
                    condition: printer
                        .as_ref()
                        .map(|pr| pr.render(&p.constraints, &p.internals)),
                    unknowns: p.unknowns.clone(),
                    idempotent: Vec::new(),
                }
            })
            .collect();
        let movable_paths = path_list.iter().filter(|p| p.commutes).count();
        let paths = path_list.len();
        Ok(MoverReport {
            first: a.clone(),
            second: b.clone(),
            paths,
            movable_paths,
            unknowns: path_list.iter().map(|p| p.unknowns.len()).sum(),
            moves: Commutes::of(movable_paths, paths),
            path_list,
        })
    })
}

/// Whether a path commutes, and the divergence reasons when it does not.
fn verdict_parts(verdict: &Verdict) -> (bool, Vec<String>) {
    match verdict {
        Verdict::Commutes => (true, Vec::new()),
        Verdict::Diverges { reasons } => (false, reasons.clone()),
    }
}

/// A path's branch decisions as `T`/`F` letters.
fn decisions_text(decisions: &[bool]) -> String {
    decisions
        .iter()
        .map(|&d| if d { 'T' } else { 'F' })
        .collect()
}
