//! The report's embedded data: `conflicts.json` (and, when given, the suite's `tests.json`)
//! compacted for the viewer. Strings, source frames, code sites, shared objects and initial
//! states are stored once and referred to by index; tests are arrays, not objects.
//!
//! Indices are given in order of first appearance while walking the runs' tests in file order,
//! so the same input gives the same bytes.
//!
//! ```text
//! {"format":"commuter.report-html","version":3,"mode":"report"|"diff",
//!  "calls":[call names, heat-map order],
//!  "pairs":[[call index, call index], ...]            the suite's pairs
//!  "strings":[...],                                  functions, files, symbols, labels
//!  "frames":[[function, file, line], ...]             string indices (-1: unknown), line (0)
//!  "sites":[[pc, "kernel"|"user", symbol, offset, [frame, ...]], ...]
//!  "objects":[[kind, name], ...]                       kind: static, section, slab, percpu,
//!                                                      user_static, dynamic, unknown
//!  "runs":[{"title":..., "target":{...}, "pair_tests":[tests per pair],
//!           "tests":[[id, pair, status, shared, false_sharing, mismatches, errors], ...]}]}
//! ```
//!
//! The suite's side (empty without `tests.json`) is a second document, parsed on demand:
//!
//! ```text
//! {"setups":[initial state JSON, ...],
//!  "cases":[[id, path, setup, [[slot, call, args]], [[order, slot, result]],
//!             [idempotent slot, ...]], ...]}
//! ```
//!
//! `status` is 0 conflict-free, 1 conflicted, 2 unknown. A location is `[addr, size, object,
//! label, vaddr|null, a, b]` (`label` a string index: the object with its offset), an access
//! `[rw, mode, [site, ...], [caller site, ...]]` (the callers of its first site, innermost
//! first: each the call instruction's site, empty when the run has no stacks), a mismatch `[slot, call, [detail, ...]]`, an error `[kind,
//! message]`. In a diff, `runs` holds the old and the new run.

use std::collections::{BTreeMap, HashMap};

use commuter_scan::ConflictsFile;
use commuter_scan::schema::{Access, CodeSite, Frame, Location, Status, TestConflicts, What};
use commuter_tests_format::TestSuite;
use serde::Serialize;
use serde_json::Value as Json;

use crate::PairTests;
use crate::summary::key;

/// Value of the data's `format` field.
pub const FORMAT: &str = "commuter.report-html";
/// Version of the embedded data; bumped when the viewer must change with it.
pub const VERSION: u32 = 3;

#[derive(Serialize)]
pub(crate) struct Data {
    format: &'static str,
    version: u32,
    mode: &'static str,
    calls: Vec<String>,
    pairs: Vec<[usize; 2]>,
    strings: Vec<String>,
    frames: Vec<FrameRow>,
    sites: Vec<SiteRow>,
    objects: Vec<(&'static str, String)>,
    runs: Vec<Run>,
}

/// The suite's side of the tests, in an element of its own that the viewer parses only when a
/// test is opened (it is half of a full run's data, and not needed to draw anything else).
#[derive(Serialize, Default)]
pub(crate) struct Cases {
    setups: Vec<Json>,
    cases: Vec<CaseRow>,
}

/// `[pc, mode, symbol, offset, frames]`.
type SiteRow = (String, Json, i64, String, Vec<usize>);
/// `[function, file, line]`.
type FrameRow = (i64, i64, u32);
type CaseRow = (
    String,
    String,
    usize,
    Vec<(String, String, Json)>,
    Vec<(String, String, Json)>,
    Vec<String>,
);

#[derive(Serialize)]
struct Run {
    title: String,
    target: commuter_scan::schema::Target,
    pair_tests: Vec<usize>,
    tests: Vec<TestRow>,
}

type TestRow = (
    String,
    usize,
    u8,
    Vec<LocRow>,
    Vec<LocRow>,
    Vec<(String, String, Vec<String>)>,
    Vec<(Json, String)>,
);
type LocRow = (
    String,
    u32,
    usize,
    usize,
    Option<String>,
    AccessRow,
    AccessRow,
);
type AccessRow = (Json, Json, Vec<usize>, Vec<usize>);

/// Interning tables, filled in order of first appearance.
#[derive(Default)]
struct Tables {
    strings: Vec<String>,
    string_ix: HashMap<String, usize>,
    frames: Vec<FrameRow>,
    frame_ix: HashMap<Frame, usize>,
    sites: Vec<SiteRow>,
    site_ix: HashMap<CodeSite, usize>,
    objects: Vec<(&'static str, String)>,
    object_ix: HashMap<(&'static str, String), usize>,
}

impl Tables {
    fn string(&mut self, s: &str) -> usize {
        if let Some(&i) = self.string_ix.get(s) {
            return i;
        }
        self.strings.push(s.to_string());
        self.string_ix.insert(s.to_string(), self.strings.len() - 1);
        self.strings.len() - 1
    }

    fn opt_string(&mut self, s: Option<&str>) -> i64 {
        s.map_or(-1, |s| self.string(s) as i64)
    }

    fn frame(&mut self, f: &Frame) -> usize {
        if let Some(&i) = self.frame_ix.get(f) {
            return i;
        }
        let row = (
            self.opt_string(f.function.as_deref()),
            self.opt_string(f.file.as_deref()),
            f.line.unwrap_or(0),
        );
        self.frames.push(row);
        self.frame_ix.insert(f.clone(), self.frames.len() - 1);
        self.frames.len() - 1
    }

    fn site(&mut self, s: &CodeSite) -> usize {
        if let Some(&i) = self.site_ix.get(s) {
            return i;
        }
        let frames = s.frames.iter().map(|f| self.frame(f)).collect();
        let row = (
            format!("{:#x}", s.pc),
            to_json(&s.mode),
            self.opt_string(s.symbol.as_deref()),
            format!("{:#x}", s.offset),
            frames,
        );
        self.sites.push(row);
        self.site_ix.insert(s.clone(), self.sites.len() - 1);
        self.sites.len() - 1
    }

    fn object(&mut self, w: &What) -> usize {
        let k = object_key(w);
        if let Some(&i) = self.object_ix.get(&k) {
            return i;
        }
        self.objects.push(k.clone());
        self.object_ix.insert(k, self.objects.len() - 1);
        self.objects.len() - 1
    }

    fn access(&mut self, a: &Access) -> AccessRow {
        (
            to_json(&a.rw),
            to_json(&a.mode),
            a.sites.iter().map(|s| self.site(s)).collect(),
            a.stack.iter().map(|s| self.site(s)).collect(),
        )
    }

    fn location(&mut self, l: &Location) -> LocRow {
        let label = self.string(&l.what.label());
        (
            format!("{:#x}", l.addr),
            l.size,
            self.object(&l.what),
            label,
            vaddr(&l.what).map(|v| format!("{v:#x}")),
            self.access(&l.a),
            self.access(&l.b),
        )
    }

    fn test(&mut self, t: &TestConflicts, pair: usize) -> TestRow {
        (
            t.id.clone(),
            pair,
            status_code(t.status),
            t.shared.iter().map(|l| self.location(l)).collect(),
            t.false_sharing.iter().map(|l| self.location(l)).collect(),
            t.mismatches
                .iter()
                .map(|m| (m.slot.clone(), m.call.clone(), m.details.clone()))
                .collect(),
            t.errors
                .iter()
                .map(|e| (to_json(&e.kind), e.message.clone()))
                .collect(),
        )
    }
}

/// The shared object a location is in, without the offset: what the viewer filters by (a
/// static symbol, a slab cache, a per-CPU variable, a region of dynamic memory).
fn object_key(w: &What) -> (&'static str, String) {
    match w {
        What::Static { symbol, .. } => ("static", symbol.clone()),
        What::Section { section, .. } => ("section", section.clone()),
        What::Slab { cache, .. } => ("slab", format!("slab:{cache}")),
        What::Percpu { symbol, .. } => (
            "percpu",
            symbol
                .as_ref()
                .map_or_else(|| "percpu".to_string(), |s| format!("percpu:{s}")),
        ),
        What::UserStatic {
            symbol, section, ..
        } => (
            "user_static",
            format!("user:{}", symbol.as_deref().unwrap_or(section)),
        ),
        What::Dynamic { region, .. } => ("dynamic", region.name().to_string()),
        What::Unknown => ("unknown", "?".to_string()),
    }
}

fn vaddr(w: &What) -> Option<u64> {
    match w {
        What::Static { vaddr, .. }
        | What::Section { vaddr, .. }
        | What::Slab { vaddr, .. }
        | What::UserStatic { vaddr, .. }
        | What::Dynamic { vaddr, .. } => Some(*vaddr),
        What::Percpu { .. } | What::Unknown => None,
    }
}

fn status_code(s: Status) -> u8 {
    match s {
        Status::ConflictFree => 0,
        Status::Conflicted => 1,
        Status::Unknown => 2,
    }
}

fn to_json(v: &impl Serialize) -> Json {
    // Unit enums and plain data: serialising cannot fail.
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// `Linux 6.12.95+deb12-amd64`.
pub(crate) fn title_of(c: &ConflictsFile) -> String {
    let mut name: String = {
        let mut ch = c.target.name.chars();
        ch.next()
            .map(|f| f.to_uppercase().chain(ch).collect())
            .unwrap_or_default()
    };
    if let Some(v) = &c.target.version {
        name.push(' ');
        name.push_str(v);
    }
    name
}

/// Builder over the union of the runs' call pairs.
struct Builder {
    t: Tables,
    calls: Vec<String>,
    pairs: Vec<[usize; 2]>,
    pair_ix: BTreeMap<Vec<String>, usize>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            t: Tables::default(),
            calls: Vec::new(),
            pairs: Vec::new(),
            pair_ix: BTreeMap::new(),
        }
    }

    fn call(&mut self, c: &str) -> usize {
        match self.calls.iter().position(|x| x == c) {
            Some(i) => i,
            None => {
                self.calls.push(c.to_string());
                self.calls.len() - 1
            }
        }
    }

    /// A call set's index; its grid cell is that of its first two calls (a set of three has
    /// no cell of its own in the viewer's grid of pairs).
    fn pair(&mut self, calls: &[String]) -> usize {
        let k = key(calls);
        if let Some(&i) = self.pair_ix.get(&k) {
            return i;
        }
        let name = |i: usize| calls.get(i).map_or("", String::as_str);
        let ab = [self.call(name(0)), self.call(name(1))];
        self.pairs.push(ab);
        self.pair_ix.insert(k, self.pairs.len() - 1);
        self.pairs.len() - 1
    }

    fn run(&mut self, c: &ConflictsFile, pairs: &[PairTests], suite: Option<&TestSuite>) -> Run {
        for p in pairs {
            self.pair(&p.calls);
        }
        let mut tests: Vec<TestRow> = c
            .tests
            .iter()
            .map(|t| {
                let p = self.pair(&t.calls);
                self.t.test(t, p)
            })
            .collect();
        // Tests of the suite that the conflicts file lacks (a run cut short, failed batches):
        // shown as unknown, so a cell's list matches its count.
        if let Some(suite) = suite {
            let present: std::collections::HashSet<&str> =
                c.tests.iter().map(|t| t.id.as_str()).collect();
            for cs in &suite.call_sets {
                for t in cs.tests.iter().filter(|t| !present.contains(t.id.as_str())) {
                    let p = self.pair(&cs.calls);
                    tests.push((
                        t.id.clone(),
                        p,
                        2,
                        Vec::new(),
                        Vec::new(),
                        Vec::new(),
                        vec![(
                            Json::String("missing".into()),
                            "not in conflicts.json: the test did not run".into(),
                        )],
                    ));
                }
            }
        }
        let mut pair_tests = vec![0; self.pairs.len()];
        for t in &tests {
            pair_tests[t.1] += 1;
        }
        // The suite's count wins where it is known (a pair with no test in the file).
        for p in pairs {
            let i = self.pair(&p.calls);
            if i < pair_tests.len() {
                pair_tests[i] = pair_tests[i].max(p.tests);
            }
        }
        Run {
            title: title_of(c),
            target: c.target.clone(),
            pair_tests,
            tests,
        }
    }

    fn finish(
        self,
        mode: &'static str,
        suite: Option<&TestSuite>,
        runs: Vec<Run>,
    ) -> (Data, Cases) {
        let mut runs = runs;
        for r in &mut runs {
            r.pair_tests.resize(self.pairs.len(), 0);
        }
        let (setups, cases) = suite.map(cases_of).unwrap_or_default();
        let data = Data {
            format: FORMAT,
            version: VERSION,
            mode,
            calls: self.calls,
            pairs: self.pairs,
            strings: self.t.strings,
            frames: self.t.frames,
            sites: self.t.sites,
            objects: self.t.objects,
            runs,
        };
        (data, Cases { setups, cases })
    }
}

/// The suite's tests: initial states stored once, calls and expected results per test.
fn cases_of(suite: &TestSuite) -> (Vec<Json>, Vec<CaseRow>) {
    let mut setups = Vec::new();
    let mut setup_ix: HashMap<String, usize> = HashMap::new();
    let mut cases = Vec::new();
    for t in suite.call_sets.iter().flat_map(|cs| &cs.tests) {
        let text = t.setup.to_string();
        let next = setups.len();
        let i = *setup_ix.entry(text).or_insert(next);
        if i == next {
            setups.push(t.setup.clone());
        }
        cases.push((
            t.id.clone(),
            t.path.clone(),
            i,
            t.calls
                .iter()
                .map(|c| (c.slot.clone(), c.call.clone(), c.args.clone()))
                .collect(),
            t.expected
                .iter()
                .map(|e| (e.order.clone(), e.slot.clone(), e.result.clone()))
                .collect(),
            t.idempotent.clone(),
        ));
    }
    (setups, cases)
}

/// One run's data.
pub(crate) fn report_data(
    conflicts: &ConflictsFile,
    pairs: &[PairTests],
    suite: Option<&TestSuite>,
) -> (Data, Cases) {
    let mut b = Builder::new();
    let run = b.run(conflicts, pairs, suite);
    b.finish("report", suite, vec![run])
}

/// Two runs' data, old first.
pub(crate) fn diff_data(old: &ConflictsFile, new: &ConflictsFile) -> (Data, Cases) {
    let mut b = Builder::new();
    let (po, pn) = (crate::pairs_of(old), crate::pairs_of(new));
    let r0 = b.run(old, &po, None);
    let r1 = b.run(new, &pn, None);
    b.finish("diff", None, vec![r0, r1])
}
