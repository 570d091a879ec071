//! `commuter-report`: turns a `conflicts.json` into what people read: a terminal summary per
//! call pair, the paper-style triangular heat map (`heatmap.svg`, or PNG), and the comparison of two
//! runs ([`diff`]), SARIF for code-scanning tools ([`sarif`]), and the self-contained HTML
//! report to explore a run or a comparison in a browser ([`report_html`], [`diff_html`]).
//!
//! No IO: every function takes the parsed data and returns a `String` (the PNG heat map: its
//! bytes, drawn with the font data the caller read); the CLI writes it.
//! The per-pair test counts come from `tests.json` ([`PairTests`]), so that pairs whose tests
//! did not all run (or that have no tests) are still shown truthfully.

mod diff;
mod heatmap;
mod html;
mod sarif;
mod summary;

pub use diff::{PairDelta, RunDiff, TestChange, diff, diff_terminal};
pub use heatmap::{PngError, heatmap_png, heatmap_svg, heatmap_svg_panels, heatmap_tikz};
pub use html::{HTML_DATA_FORMAT, HTML_DATA_VERSION, diff_html, report_html};
pub use sarif::sarif;
pub use summary::{PairSummary, Site, summarize, terminal, top_sites};

/// One call set of the test suite (a pair, or a set of three calls) and how many tests it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTests {
    /// The call names, in the suite's order.
    pub calls: Vec<String>,
    /// Tests generated for the pair.
    pub tests: usize,
}

/// The call pairs of a conflicts file and their test counts, in order of first appearance:
/// for reports made without the suite's `tests.json`.
pub fn pairs_of(conflicts: &commuter_scan::ConflictsFile) -> Vec<PairTests> {
    let mut pairs: Vec<PairTests> = Vec::new();
    let mut index = std::collections::BTreeMap::new();
    for t in &conflicts.tests {
        let i = *index.entry(summary::key(&t.calls)).or_insert_with(|| {
            pairs.push(PairTests {
                calls: t.calls.clone(),
                tests: 0,
            });
            pairs.len() - 1
        });
        pairs[i].tests += 1;
    }
    pairs
}

/// Which calls of each test are idempotent on the test's path, from the suite's `tests.json`
/// (test id → slots): a conflict there is one an implementation can avoid by not writing
/// what is already there (sv6's residual conflicts were of this kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Idempotence(std::collections::BTreeMap<String, Vec<String>>);

impl Idempotence {
    /// The idempotent slots of every test of `suite` that has any.
    pub fn of_suite(suite: &commuter_tests_format::TestSuite) -> Self {
        Idempotence(
            suite
                .call_sets
                .iter()
                .flat_map(|cs| &cs.tests)
                .filter(|t| !t.idempotent.is_empty())
                .map(|t| (t.id.clone(), t.idempotent.clone()))
                .collect(),
        )
    }

    /// The idempotent slots of test `id` (empty: none, or a test the suite does not have).
    pub fn slots(&self, id: &str) -> &[String] {
        self.0.get(id).map_or(&[], Vec::as_slice)
    }

    /// `idempotent: a, b` for a test with idempotent calls.
    pub fn label(&self, id: &str) -> Option<String> {
        let slots = self.slots(id);
        (!slots.is_empty()).then(|| format!("idempotent: {}", slots.join(", ")))
    }
}
