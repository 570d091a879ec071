//! Per-pair counts, the most frequent shared code sites, and the terminal text. A call set of
//! three calls is one row like a pair; which two of its calls shared memory is listed apart
//! (`ab`, `ac`, `bc`: the calls on CPUs 1 and 2, 1 and 3, 2 and 3).

use crate::{Idempotence, PairTests};
use commuter_scan::ConflictsFile;
use commuter_scan::schema::{Location, Status, TestConflicts};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// What happened to one call pair's (or call set's) tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairSummary {
    /// The pair (or the set of three calls).
    pub calls: Vec<String>,
    /// Tests in the suite.
    pub tests: usize,
    /// Tests whose calls shared nothing.
    pub conflict_free: usize,
    /// Tests whose calls shared memory.
    pub conflicted: usize,
    /// Tests that did not run cleanly (or are missing from the conflicts file).
    pub unknown: usize,
    /// Tests with a result that differed from the model.
    pub mismatched: usize,
}

impl PairSummary {
    /// Conflict-free fraction of the pair's tests; `None` without tests.
    pub fn fraction(&self) -> Option<f64> {
        (self.tests > 0).then(|| self.conflict_free as f64 / self.tests as f64)
    }
}

/// Unordered key, so that `stat/open` tests count for the suite's `open/stat`.
pub(crate) fn key(calls: &[String]) -> Vec<String> {
    let mut k = calls.to_vec();
    k.sort();
    k
}

/// One summary per pair of `pairs`, in its order.
pub fn summarize(conflicts: &ConflictsFile, pairs: &[PairTests]) -> Vec<PairSummary> {
    let mut by_pair: BTreeMap<Vec<String>, Vec<&TestConflicts>> = BTreeMap::new();
    for t in &conflicts.tests {
        by_pair.entry(key(&t.calls)).or_default().push(t);
    }
    pairs
        .iter()
        .map(|p| {
            let tests = by_pair.get(&key(&p.calls)).map_or(&[][..], Vec::as_slice);
            let count = |s: Status| tests.iter().filter(|t| t.status == s).count();
            let (free, conflicted) = (count(Status::ConflictFree), count(Status::Conflicted));
            PairSummary {
                calls: p.calls.clone(),
                tests: p.tests,
                conflict_free: free,
                conflicted,
                unknown: p.tests.saturating_sub(free + conflicted),
                mismatched: tests.iter().filter(|t| !t.mismatches.is_empty()).count(),
            }
        })
        .collect()
}

/// A pair of code sites that shared memory, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// The two sides' code locations (the first site of each side), sorted.
    pub code: [String; 2],
    /// What was shared, e.g. `jiffies_64`, `slab:dentry` (a slab cache), `percpu:runqueues`
    /// or `page-map` (the most frequent label).
    pub what: String,
    /// Conflicted tests in which these sites shared memory.
    pub tests: usize,
    /// Call pairs those tests belong to, sorted; in a call set of three, with the two calls
    /// that shared (`stat/stat/stat bc`).
    pub pairs: Vec<String>,
    /// The sites' callers (the innermost [`CALLER_DEPTH`] functions of either side's call
    /// stack, `vm_mmap_pgoff < ksys_mmap_pgoff`) with the tests each was seen in, most tests
    /// first (ties by name); empty when the run recorded no stacks.
    pub callers: Vec<(String, usize)>,
}

/// Functions of a call stack that name a caller group in the summary: enough to tell
/// `down_write_killable` called from `vm_mmap_pgoff` from the same lock taken for
/// `do_mprotect_pkey`, few enough to keep a line short.
pub const CALLER_DEPTH: usize = 3;

/// The caller chain of an access: the functions (ELF symbols, so an inlined helper names the
/// function it was inlined into) of its stack's innermost [`CALLER_DEPTH`] frames; `None` when
/// it has no stack.
pub fn caller_chain(access: &commuter_scan::schema::Access) -> Option<String> {
    if access.stack.is_empty() {
        return None;
    }
    let names: Vec<String> = access
        .stack
        .iter()
        .take(CALLER_DEPTH)
        .map(|s| s.symbol.clone().unwrap_or_else(|| format!("{:#x}", s.pc)))
        .collect();
    Some(names.join(" < "))
}

/// The `n` code-site pairs that appear in the most conflicted tests (ties by name).
pub fn top_sites(conflicts: &ConflictsFile, n: usize) -> Vec<Site> {
    type Acc<'a> = (
        BTreeSet<&'a str>,
        BTreeMap<String, usize>,
        BTreeSet<String>,
        BTreeMap<String, BTreeSet<&'a str>>,
    );
    let mut acc: BTreeMap<[String; 2], Acc> = BTreeMap::new();
    for t in &conflicts.tests {
        for loc in &t.shared {
            let e = acc.entry(site_key(loc)).or_default();
            e.0.insert(&t.id);
            *e.1.entry(loc.what.label()).or_default() += 1;
            e.2.insert(set_name(t, loc));
            for chain in [caller_chain(&loc.a), caller_chain(&loc.b)]
                .into_iter()
                .flatten()
            {
                e.3.entry(chain).or_default().insert(&t.id);
            }
        }
    }
    let mut out: Vec<Site> = acc
        .into_iter()
        .map(|(code, (tests, whats, pairs, callers))| {
            let mut callers: Vec<(String, usize)> =
                callers.into_iter().map(|(c, t)| (c, t.len())).collect();
            callers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Site {
                code,
                what: most_frequent(&whats),
                tests: tests.len(),
                pairs: pairs.into_iter().collect(),
                callers,
            }
        })
        .collect();
    out.sort_by(|a, b| b.tests.cmp(&a.tests).then_with(|| a.code.cmp(&b.code)));
    out.truncate(n);
    out
}

/// `open/stat`, or `stat/stat/stat bc` for the location calls b and c of a triple shared.
fn set_name(t: &TestConflicts, loc: &Location) -> String {
    if t.calls.len() > 2 {
        format!("{} {}", t.calls.join("/"), loc.pair_name())
    } else {
        t.calls.join("/")
    }
}

fn site_key(loc: &Location) -> [String; 2] {
    let label = |sites: &[commuter_scan::schema::CodeSite]| {
        sites.first().map_or_else(|| "?".to_string(), |s| s.label())
    };
    let (a, b) = (label(&loc.a.sites), label(&loc.b.sites));
    if a <= b { [a, b] } else { [b, a] }
}

fn most_frequent(counts: &BTreeMap<String, usize>) -> String {
    // Highest count; the BTreeMap order breaks ties by name.
    let mut best: Option<(&String, usize)> = None;
    for (k, v) in counts {
        if best.is_none_or(|(_, bv)| *v > bv) {
            best = Some((k, *v));
        }
    }
    best.map(|(k, _)| k.clone()).unwrap_or_default()
}

/// The terminal report: a table per call pair, the top shared code sites, and mismatches;
/// with the suite's idempotence (`idem`), also a column that counts each pair's conflicted
/// tests on idempotent paths and a list of (the first `top` of) them.
pub fn terminal(
    conflicts: &ConflictsFile,
    pairs: &[PairTests],
    top: usize,
    idem: Option<&Idempotence>,
) -> String {
    let mut s = String::new();
    let idem_counts = idem.map(|i| idempotent_conflicts(conflicts, pairs, i));
    pair_table(&mut s, &summarize(conflicts, pairs), idem_counts.as_deref());
    cpu_pairs(&mut s, conflicts, pairs);
    if let Some(i) = idem {
        idempotent_list(&mut s, conflicts, i, top);
    }
    site_list(&mut s, &top_sites(conflicts, top));
    mismatch_list(&mut s, conflicts);
    s
}

/// Per pair of `pairs`: its conflicted tests on paths where a call is idempotent.
fn idempotent_conflicts(
    conflicts: &ConflictsFile,
    pairs: &[PairTests],
    idem: &Idempotence,
) -> Vec<usize> {
    let mut by_pair: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for t in &conflicts.tests {
        if t.status == Status::Conflicted && !idem.slots(&t.id).is_empty() {
            *by_pair.entry(key(&t.calls)).or_default() += 1;
        }
    }
    pairs
        .iter()
        .map(|p| by_pair.get(&key(&p.calls)).copied().unwrap_or(0))
        .collect()
}

/// The conflicted tests on idempotent paths, labelled, in the conflicts file's order.
fn idempotent_list(s: &mut String, conflicts: &ConflictsFile, idem: &Idempotence, top: usize) {
    let labelled: Vec<(&TestConflicts, String)> = conflicts
        .tests
        .iter()
        .filter(|t| t.status == Status::Conflicted)
        .filter_map(|t| idem.label(&t.id).map(|l| (t, l)))
        .collect();
    if labelled.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nconflicts on idempotent paths ({}; a call that repeats its effect can skip writing what is already there):",
        labelled.len()
    );
    for (t, label) in labelled.iter().take(top) {
        let _ = writeln!(
            s,
            "  {} ({}): conflicted ({label})",
            t.id,
            t.calls.join("/")
        );
    }
    if labelled.len() > top {
        let _ = writeln!(s, "  ... and {} more", labelled.len() - top);
    }
}

/// Per call set of three or more calls: in how many tests each two of its calls shared memory
/// (`ab` the calls on CPUs 1 and 2, `ac` on 1 and 3, `bc` on 2 and 3), counted in one pass
/// over the run's tests.
pub(crate) struct CpuPairs(BTreeMap<Vec<String>, BTreeMap<String, usize>>);

impl CpuPairs {
    pub(crate) fn of(conflicts: &ConflictsFile) -> CpuPairs {
        let mut by_set: BTreeMap<Vec<String>, BTreeMap<String, usize>> = BTreeMap::new();
        for t in conflicts.tests.iter().filter(|t| t.calls.len() > 2) {
            let counts = by_set.entry(key(&t.calls)).or_default();
            let shared: BTreeSet<String> = t.shared.iter().map(Location::pair_name).collect();
            for p in shared {
                *counts.entry(p).or_default() += 1;
            }
        }
        CpuPairs(by_set)
    }

    /// `ab 2, ac 0, bc 1` for the call set `calls`: every pair of its slots, those that never
    /// shared too (a zero is an answer).
    pub(crate) fn text(&self, calls: &[String]) -> String {
        let counts = self.0.get(&key(calls));
        let n = calls.len();
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                let name = format!(
                    "{}{}",
                    commuter_scan::schema::slot_name(i),
                    commuter_scan::schema::slot_name(j)
                );
                let c = counts.and_then(|c| c.get(&name)).copied().unwrap_or(0);
                out.push(format!("{name} {c}"));
            }
        }
        out.join(", ")
    }
}

/// The section of [`CpuPairs`], for suites with call sets of more than two calls.
fn cpu_pairs(s: &mut String, conflicts: &ConflictsFile, pairs: &[PairTests]) {
    let sets: Vec<&PairTests> = pairs.iter().filter(|p| p.calls.len() > 2).collect();
    if sets.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nwhich calls shared memory (tests per pair of calls: a on CPU 1, b on CPU 2, c on CPU 3):"
    );
    let counts = CpuPairs::of(conflicts);
    for p in sets {
        let _ = writeln!(s, "  {}: {}", p.calls.join("/"), counts.text(&p.calls));
    }
}

fn pair_table(s: &mut String, rows: &[PairSummary], idem: Option<&[usize]>) {
    let width = rows
        .iter()
        .map(|r| r.calls.join("/").len())
        .chain([9])
        .max()
        .unwrap_or(9);
    // The idempotent column only where the suite's idempotence is known.
    let idem_head = if idem.is_some() {
        format!("  {:>10}", "idempotent")
    } else {
        String::new()
    };
    // Pairs keep the heading they always had.
    let heading = if rows.iter().any(|r| r.calls.len() > 2) {
        "call set"
    } else {
        "call pair"
    };
    let _ = writeln!(
        s,
        "{:<width$}  {:>6}  {:>13}  {:>6}  {:>10}{idem_head}  {:>7}  {:>10}",
        heading, "tests", "conflict-free", "%", "conflicted", "unknown", "mismatched"
    );
    let (mut tests, mut free, mut idem_total) = (0, 0, 0);
    for (i, r) in rows.iter().enumerate() {
        tests += r.tests;
        free += r.conflict_free;
        let idem_cell = match idem {
            Some(counts) => {
                let n = counts.get(i).copied().unwrap_or(0);
                idem_total += n;
                format!("  {n:>10}")
            }
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:>6}  {:>13}  {:>6}  {:>10}{idem_cell}  {:>7}  {:>10}",
            r.calls.join("/"),
            r.tests,
            r.conflict_free,
            percent(r.fraction()),
            r.conflicted,
            r.unknown,
            r.mismatched
        );
    }
    let total = (tests > 0).then(|| free as f64 / tests as f64);
    let idem_total = if idem.is_some() {
        format!("  {:>10}  {idem_total:>10}", "")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{:<width$}  {tests:>6}  {free:>13}  {:>6}{idem_total}",
        "total",
        percent(total)
    );
}

fn percent(f: Option<f64>) -> String {
    f.map_or_else(|| "-".into(), |f| format!("{:.1}", f * 100.0))
}

fn site_list(s: &mut String, sites: &[Site]) {
    if sites.is_empty() {
        return;
    }
    let _ = writeln!(s, "\ntop shared locations by code site:");
    for site in sites {
        let _ = writeln!(
            s,
            "{:>5} tests  {}  ({})\n             {}\n             {}",
            site.tests,
            site.what,
            site.pairs.join(", "),
            site.code[0],
            site.code[1]
        );
        if !site.callers.is_empty() {
            let _ = writeln!(s, "             called from:");
        }
        for (chain, tests) in site.callers.iter().take(MAX_CALLER_LINES) {
            let _ = writeln!(s, "{tests:>17} tests  {chain}");
        }
        if site.callers.len() > MAX_CALLER_LINES {
            let more = site.callers.len() - MAX_CALLER_LINES;
            let _ = writeln!(s, "                  ... and {more} more callers");
        }
    }
}

/// Caller groups listed per code site in the terminal.
const MAX_CALLER_LINES: usize = 4;

fn mismatch_list(s: &mut String, conflicts: &ConflictsFile) {
    let bad: Vec<&TestConflicts> = conflicts
        .tests
        .iter()
        .filter(|t| !t.mismatches.is_empty())
        .collect();
    if bad.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nresult mismatches (model or implementation wrong):");
    for t in bad {
        for m in &t.mismatches {
            let _ = writeln!(
                s,
                "  {} {} ({}): {}",
                t.id,
                m.slot,
                m.call,
                m.details.join("; ")
            );
        }
    }
}
