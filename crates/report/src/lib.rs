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

/// One call pair of the test suite and how many tests it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTests {
    /// The two call names, in the suite's order.
    pub calls: [String; 2],
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
