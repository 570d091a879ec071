//! `commuter-report`: turns a `conflicts.json` into what people read: a terminal summary per
//! call pair and the paper-style triangular heat map (`heatmap.svg`).
//!
//! No IO: every function takes the parsed data and returns a `String`; the CLI writes it.
//! The per-pair test counts come from `tests.json` ([`PairTests`]), so that pairs whose tests
//! did not all run (or that have no tests) are still shown truthfully.

mod heatmap;
mod summary;

pub use heatmap::heatmap_svg;
pub use summary::{PairSummary, Site, summarize, terminal, top_sites};

/// One call pair of the test suite and how many tests it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTests {
    /// The two call names, in the suite's order.
    pub calls: [String; 2],
    /// Tests generated for the pair.
    pub tests: usize,
}
