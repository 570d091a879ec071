//! Two runs compared: what a kernel patch (or another implementation) changed, per call pair,
//! per test and per code site; and whether anything got worse, so CI can gate on it.

use crate::summary::key;
use commuter_scan::ConflictsFile;
use commuter_scan::schema::{Status, TestConflicts};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One call pair in both runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairDelta {
    /// The pair, `a/b`.
    pub pair: String,
    /// Tests in the old and the new run.
    pub tests: [usize; 2],
    /// Conflict-free tests in the old and the new run.
    pub conflict_free: [usize; 2],
}

/// A test whose verdict changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestChange {
    /// The test's id.
    pub id: String,
    /// Its call pair, `a/b`.
    pub pair: String,
    /// The code sites of its shared locations in the run where it is conflicted.
    pub sites: Vec<String>,
}

/// Everything that differs between an old and a new run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunDiff {
    /// Every call pair of either run, in order of first appearance (old run first).
    pub pairs: Vec<PairDelta>,
    /// Conflict-free before, conflicted now.
    pub became_conflicted: Vec<TestChange>,
    /// Conflicted before, conflict-free now.
    pub became_conflict_free: Vec<TestChange>,
    /// Tests whose results now differ from the model's and did not before.
    pub new_mismatches: Vec<String>,
    /// Tests whose results differed from the model's before and no longer do.
    pub fixed_mismatches: Vec<String>,
    /// Tests that ran cleanly before and could not be judged now (crash, overflow, ...).
    pub new_unknown: Vec<String>,
    /// Tests of one run only (the runs are of different suites).
    pub only_old: usize,
    pub only_new: usize,
    /// Code sites of shared locations found only in the new run, with their test counts.
    pub sites_appeared: Vec<(String, usize)>,
    /// Code sites of shared locations found only in the old run, with their test counts.
    pub sites_vanished: Vec<(String, usize)>,
}

impl RunDiff {
    /// Whether the new run is worse in anything: a test that became conflicted, a new result
    /// mismatch, a test that can no longer be judged.
    pub fn got_worse(&self) -> bool {
        !self.became_conflicted.is_empty()
            || !self.new_mismatches.is_empty()
            || !self.new_unknown.is_empty()
    }
}

/// Compares `old` and `new`, test by test (by id).
pub fn diff(old: &ConflictsFile, new: &ConflictsFile) -> RunDiff {
    let by_id = |f: &ConflictsFile| -> BTreeMap<String, usize> {
        f.tests
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect()
    };
    let (old_ids, new_ids) = (by_id(old), by_id(new));
    let mut d = RunDiff {
        pairs: pair_deltas(old, new),
        only_old: old_ids
            .keys()
            .filter(|id| !new_ids.contains_key(*id))
            .count(),
        only_new: new_ids
            .keys()
            .filter(|id| !old_ids.contains_key(*id))
            .count(),
        ..RunDiff::default()
    };
    for t in &new.tests {
        let Some(&i) = old_ids.get(&t.id) else {
            continue;
        };
        compare_test(&mut d, &old.tests[i], t);
    }
    let (old_sites, new_sites) = (site_counts(old), site_counts(new));
    d.sites_appeared = only_in(&new_sites, &old_sites);
    d.sites_vanished = only_in(&old_sites, &new_sites);
    d
}

fn compare_test(d: &mut RunDiff, old: &TestConflicts, new: &TestConflicts) {
    use Status::*;
    match (old.status, new.status) {
        (ConflictFree, Conflicted) => d.became_conflicted.push(change(new)),
        (Conflicted, ConflictFree) => d.became_conflict_free.push(change(old)),
        (ConflictFree | Conflicted, Unknown) => d.new_unknown.push(new.id.clone()),
        _ => {}
    }
    match (old.mismatches.is_empty(), new.mismatches.is_empty()) {
        (true, false) => d.new_mismatches.push(new.id.clone()),
        (false, true) => d.fixed_mismatches.push(new.id.clone()),
        _ => {}
    }
}

fn change(t: &TestConflicts) -> TestChange {
    TestChange {
        id: t.id.clone(),
        pair: t.calls.join("/"),
        sites: sites_of(t).into_iter().collect(),
    }
}

/// The code sites (both calls') of a test's shared locations.
fn sites_of(t: &TestConflicts) -> BTreeSet<String> {
    t.shared
        .iter()
        .flat_map(|loc| loc.a.sites.iter().chain(&loc.b.sites))
        .map(|s| s.label())
        .collect()
}

/// Per code site, the tests whose shared locations it touched.
fn site_counts(f: &ConflictsFile) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for t in &f.tests {
        for site in sites_of(t) {
            *counts.entry(site).or_insert(0) += 1;
        }
    }
    counts
}

/// Sites of `a` that `b` lacks, most tests first (ties by name).
fn only_in(a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = a
        .iter()
        .filter(|(site, _)| !b.contains_key(*site))
        .map(|(s, n)| (s.clone(), *n))
        .collect();
    out.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out
}

fn pair_deltas(old: &ConflictsFile, new: &ConflictsFile) -> Vec<PairDelta> {
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut deltas: BTreeMap<Vec<String>, PairDelta> = BTreeMap::new();
    for (run, f) in [old, new].into_iter().enumerate() {
        for t in &f.tests {
            let k = key(&t.calls);
            let delta = deltas.entry(k.clone()).or_insert_with(|| {
                order.push(k.clone());
                PairDelta {
                    pair: t.calls.join("/"),
                    tests: [0; 2],
                    conflict_free: [0; 2],
                }
            });
            delta.tests[run] += 1;
            delta.conflict_free[run] += usize::from(t.status == Status::ConflictFree);
        }
    }
    order
        .into_iter()
        .filter_map(|k| deltas.remove(&k))
        .collect()
}

/// The terminal text of a diff: changed pairs, changed tests (at most `limit` of each kind),
/// code sites that appeared or vanished, and the verdict.
pub fn diff_terminal(d: &RunDiff, limit: usize) -> String {
    let mut s = String::new();
    // A pair changed when its counts did or any of its tests changed verdict.
    let touched: BTreeSet<&str> = d
        .became_conflicted
        .iter()
        .chain(&d.became_conflict_free)
        .map(|t| t.pair.as_str())
        .collect();
    let changed: Vec<&PairDelta> = d
        .pairs
        .iter()
        .filter(|p| {
            p.tests[0] != p.tests[1]
                || p.conflict_free[0] != p.conflict_free[1]
                || touched.contains(p.pair.as_str())
        })
        .collect();
    let _ = writeln!(
        s,
        "{:<18} {:>13} {:>13} {:>8}",
        "call pair", "old free", "new free", "change"
    );
    for p in &changed {
        let _ = writeln!(
            s,
            "{:<18} {:>13} {:>13} {:>+7.1}%",
            p.pair,
            format!("{}/{}", p.conflict_free[0], p.tests[0]),
            format!("{}/{}", p.conflict_free[1], p.tests[1]),
            100.0 * (share(p.conflict_free[1], p.tests[1]) - share(p.conflict_free[0], p.tests[0]))
        );
    }
    let _ = writeln!(
        s,
        "{} of {} call pairs changed\n",
        changed.len(),
        d.pairs.len()
    );
    tests_list(&mut s, "became conflicted", &d.became_conflicted, limit);
    tests_list(
        &mut s,
        "became conflict-free",
        &d.became_conflict_free,
        limit,
    );
    ids_list(&mut s, "new result mismatches", &d.new_mismatches, limit);
    ids_list(&mut s, "mismatches fixed", &d.fixed_mismatches, limit);
    ids_list(
        &mut s,
        "no longer judged (crash, overflow, ...)",
        &d.new_unknown,
        limit,
    );
    sites_list(&mut s, "code sites that appeared", &d.sites_appeared, limit);
    sites_list(&mut s, "code sites that vanished", &d.sites_vanished, limit);
    if d.only_old + d.only_new > 0 {
        let _ = writeln!(
            s,
            "tests in one run only: {} old, {} new (the suites differ; only common tests are compared)",
            d.only_old, d.only_new
        );
    }
    let verdict = if d.got_worse() {
        "worse: some test became conflicted, mismatched or unjudged"
    } else {
        "nothing got worse"
    };
    let _ = writeln!(s, "{verdict}");
    s
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn heading(s: &mut String, title: &str, n: usize, limit: usize) {
    let shown = if n > limit {
        format!(" (first {limit})")
    } else {
        String::new()
    };
    let _ = writeln!(s, "{title}: {n}{shown}");
}

fn tests_list(s: &mut String, title: &str, tests: &[TestChange], limit: usize) {
    if tests.is_empty() {
        return;
    }
    heading(s, title, tests.len(), limit);
    for t in tests.iter().take(limit) {
        let _ = writeln!(s, "  {}  ({})", t.id, t.pair);
        for site in &t.sites {
            let _ = writeln!(s, "      {site}");
        }
    }
    s.push('\n');
}

fn ids_list(s: &mut String, title: &str, ids: &[String], limit: usize) {
    if ids.is_empty() {
        return;
    }
    heading(s, title, ids.len(), limit);
    for id in ids.iter().take(limit) {
        let _ = writeln!(s, "  {id}");
    }
    s.push('\n');
}

fn sites_list(s: &mut String, title: &str, sites: &[(String, usize)], limit: usize) {
    if sites.is_empty() {
        return;
    }
    heading(s, title, sites.len(), limit);
    for (site, n) in sites.iter().take(limit) {
        let _ = writeln!(s, "  {n:>5} tests  {site}");
    }
    s.push('\n');
}
