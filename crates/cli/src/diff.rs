//! `commuter profile --diff old.json new.json`: what changed between two test suites, per call
//! set and per path, and which facts and equalities tell the added and removed classes apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use commuter_testgen::{CallSetTests, TestSuite};

/// The classes of one path: each a set of class lines (facts and equalities).
type Classes = Vec<BTreeSet<String>>;

/// One path's tests in both suites.
#[derive(Default)]
struct PathTests {
    old: Classes,
    new: Classes,
}

/// The difference report, as text; `only` restricts it to one call set.
pub fn difference(old: &TestSuite, new: &TestSuite, only: Option<&str>) -> String {
    let names = call_set_names(old, new, only);
    let width = names.iter().map(String::len).max().unwrap_or(0).max(8);
    let classes_known = !lacks_classes(old) && !lacks_classes(new);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>7}  {:>7}  {:>7}",
        "call set", "old", "new", "change"
    );
    let (mut total_old, mut total_new) = (0, 0);
    for name in &names {
        let (a, b) = (find(old, name), find(new, name));
        total_old += count(a).unwrap_or(0);
        total_new += count(b).unwrap_or(0);
        call_set_section(&mut out, name, width, (a, b), classes_known);
    }
    let _ = writeln!(
        out,
        "{:<width$}  {total_old:>7}  {total_new:>7}  {:>+7}",
        "total",
        total_new as i64 - total_old as i64
    );
    if !classes_known {
        out.push_str("(a suite records no classes: per path, only test counts are compared)\n");
    }
    out
}

fn find<'s>(suite: &'s TestSuite, name: &str) -> Option<&'s CallSetTests> {
    suite.call_sets.iter().find(|c| c.name() == name)
}

/// One call set's line and its changed paths; nothing when nothing changed.
fn call_set_section(
    out: &mut String,
    name: &str,
    width: usize,
    (a, b): (Option<&CallSetTests>, Option<&CallSetTests>),
    classes_known: bool,
) {
    let (na, nb) = (count(a), count(b));
    let paths = paths_of(a, b);
    let changed: Vec<&(String, PathTests)> = paths
        .iter()
        .filter(|(_, p)| path_changed(p, classes_known))
        .collect();
    if na == nb && changed.is_empty() {
        return;
    }
    let change = nb.unwrap_or(0) as i64 - na.unwrap_or(0) as i64;
    let _ = writeln!(
        out,
        "{name:<width$}  {:>7}  {:>7}  {change:>+7}",
        show(na),
        show(nb)
    );
    for (id, p) in changed {
        describe_path(out, id, p, classes_known);
    }
}

fn call_set_names(old: &TestSuite, new: &TestSuite, only: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for cs in old.call_sets.iter().chain(&new.call_sets) {
        let n = cs.name();
        if !names.contains(&n) && only.is_none_or(|o| o == n) {
            names.push(n);
        }
    }
    names
}

fn count(cs: Option<&CallSetTests>) -> Option<usize> {
    cs.map(|c| c.tests.len())
}

fn show(v: Option<usize>) -> String {
    v.map_or("-".to_string(), |n| n.to_string())
}

/// Suites written before classes were recorded (or whose tests all have one class per path).
fn lacks_classes(suite: &TestSuite) -> bool {
    suite
        .call_sets
        .iter()
        .flat_map(|c| &c.tests)
        .all(|t| t.class.is_empty())
}

/// Each path's classes in both suites, paths in the analyzer's order (by number).
fn paths_of(old: Option<&CallSetTests>, new: Option<&CallSetTests>) -> Vec<(String, PathTests)> {
    let mut paths: BTreeMap<(usize, String), PathTests> = BTreeMap::new();
    for (cs, is_new) in [(old, false), (new, true)] {
        for t in cs.iter().flat_map(|c| &c.tests) {
            let entry = paths
                .entry((path_number(&t.path), t.path.clone()))
                .or_default();
            let class: BTreeSet<String> = t.class.iter().cloned().collect();
            if is_new {
                entry.new.push(class);
            } else {
                entry.old.push(class);
            }
        }
    }
    paths.into_iter().map(|((_, id), p)| (id, p)).collect()
}

/// The path's number: the last `_`-separated part of its id.
fn path_number(id: &str) -> usize {
    id.rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn path_changed(p: &PathTests, classes_known: bool) -> bool {
    p.old.len() != p.new.len() || classes_known && (!added(p).is_empty() || !removed(p).is_empty())
}

/// Classes of the new suite that the old one does not have.
fn added(p: &PathTests) -> Vec<&BTreeSet<String>> {
    p.new.iter().filter(|c| !p.old.contains(c)).collect()
}

fn removed(p: &PathTests) -> Vec<&BTreeSet<String>> {
    p.old.iter().filter(|c| !p.new.contains(c)).collect()
}

/// One changed path: counts, then each added (`+`) and removed (`-`) class by the lines that
/// set it apart from what every class of the path shares.
fn describe_path(out: &mut String, id: &str, p: &PathTests, classes_known: bool) {
    let _ = writeln!(out, "    {id}: {} -> {} tests", p.old.len(), p.new.len());
    if !classes_known {
        return;
    }
    let shared = shared_lines(p);
    for (sign, classes) in [("+", added(p)), ("-", removed(p))] {
        for class in classes {
            let own: Vec<&str> = class
                .iter()
                .filter(|l| !shared.contains(*l))
                .map(String::as_str)
                .collect();
            let text = if own.is_empty() {
                "(no facts beyond the path's own)".to_string()
            } else {
                own.join(", ")
            };
            let _ = writeln!(out, "      {sign} {text}");
        }
    }
}

/// The class lines every test of the path, old and new, has (none when there is only one class
/// to show: then all its lines are news).
fn shared_lines(p: &PathTests) -> BTreeSet<String> {
    let all: Vec<&BTreeSet<String>> = p
        .old
        .iter()
        .chain(&p.new)
        .filter(|c| !c.is_empty())
        .collect();
    match all.split_first() {
        Some((first, rest)) if !rest.is_empty() => rest.iter().fold((*first).clone(), |acc, c| {
            acc.intersection(c).cloned().collect()
        }),
        _ => BTreeSet::new(),
    }
}
