//! Shared by the analyzer's integration tests: running a built-in model's analysis and
//! reading its call sets.

#![allow(dead_code)] // Each test file uses its own subset.

use commuter_analyzer::{Analysis, AnalyzeOptions, CallSetReport, analyze, select_model_call_sets};
use commuter_models::find_model;

/// The analysis of a built-in model's pairs (`functions`: the `-f` selection), with conditions.
pub fn run(model: &str, functions: Option<&str>) -> Analysis {
    let m = find_model(model).expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), functions, 2).expect("valid selection");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    analyze(m.as_ref(), &sets, &opts, functions, &|_| {}).expect("analysis runs")
}

/// The call set named `name` ("a/b").
pub fn set<'a>(a: &'a Analysis, name: &str) -> &'a CallSetReport {
    a.call_sets
        .iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| {
            panic!(
                "call set {name} in {:?}",
                a.call_sets.iter().map(|c| c.name()).collect::<Vec<_>>()
            )
        })
}

/// (condition, idempotent slots) of every commutative path.
pub fn idempotence(cs: &CallSetReport) -> Vec<(String, Vec<String>)> {
    cs.path_list
        .iter()
        .filter(|p| p.commutes)
        .map(|p| {
            (
                p.condition.clone().unwrap_or_default(),
                p.idempotent.clone(),
            )
        })
        .collect()
}

/// Text of every path, for snapshots.
pub fn render(a: &Analysis) -> String {
    render_with(a, true)
}

/// [`render`], with each call set's `runs iff` line only if `runs_iff` (POSIX's preconditions
/// are long, and pinned elsewhere).
pub fn render_with(a: &Analysis, runs_iff: bool) -> String {
    let mut out = String::new();
    for cs in &a.call_sets {
        out.push_str(&format!(
            "{} ({:?}, {} paths)\n",
            cs.name(),
            cs.commutes,
            cs.paths
        ));
        out.push_str(&format!(
            "  commutes iff {}\n",
            cs.commutes_iff.as_deref().unwrap_or("?")
        ));
        if runs_iff && cs.runs_iff.as_deref() != Some("true") {
            out.push_str(&format!(
                "  runs iff {}\n",
                cs.runs_iff.as_deref().unwrap_or("?")
            ));
        }
        for p in &cs.path_list {
            let verdict = if p.commutes {
                "commutes".to_string()
            } else {
                format!("diverges [{}]", p.divergence.join(", "))
            };
            out.push_str(&format!(
                "  {verdict} when {}\n",
                p.condition.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}
