//! `report.html`: one self-contained page (no network) to explore a run, or two runs compared.
//!
//! The page is a template with the viewer's CSS and JavaScript (hand-written, no build step)
//! and the run's data as JSON ([`model`]) in a `<script type="application/json">` element.
//! The viewer draws the heat map, a cell's tests filtered by outcome, code site and shared
//! object, a test's state, calls, results and shared locations, and the code sites ranked by
//! the tests they affect; each view has its URL fragment (`#test=ID`).

mod model;

use commuter_scan::ConflictsFile;
use commuter_tests_format::TestSuite;

use crate::PairTests;

pub use model::{FORMAT as HTML_DATA_FORMAT, VERSION as HTML_DATA_VERSION};

const TEMPLATE: &str = include_str!("template.html");
const CSS: &str = include_str!("viewer.css");
const JS: &str = include_str!("viewer.js");

/// The report of one run. `pairs` gives the heat map's pairs and their test counts (from the
/// suite, or [`crate::pairs_of`]); `suite`, when given, adds each test's initial state, calls and
/// expected results, and lists its tests missing from `conflicts` as unknown.
pub fn report_html(
    conflicts: &ConflictsFile,
    pairs: &[PairTests],
    suite: Option<&TestSuite>,
) -> String {
    let (data, cases) = model::report_data(conflicts, pairs, suite);
    let title = format!("commuter report: {}", model::title_of(conflicts));
    page(&title, &data, &cases)
}

/// Two runs compared, in the same viewer: cells coloured by the change of their conflict-free
/// share, tests that changed verdict, code sites that appeared or vanished.
pub fn diff_html(old: &ConflictsFile, new: &ConflictsFile) -> String {
    let (data, cases) = model::diff_data(old, new);
    let title = format!(
        "commuter diff: {} \u{2192} {}",
        model::title_of(old),
        model::title_of(new)
    );
    page(&title, &data, &cases)
}

fn page(title: &str, data: &model::Data, cases: &model::Cases) -> String {
    let fill = |part: &str| {
        part.replace("__CSS__", CSS)
            .replace("__JS__", JS)
            .replace("__TITLE__", &escape(title))
    };
    // The data goes between the template's pieces, so no placeholder inside it (or in the
    // title, substituted last) is ever replaced.
    let (head, rest) = TEMPLATE.split_once("__DATA__").unwrap_or((TEMPLATE, ""));
    let (middle, tail) = rest.split_once("__CASES__").unwrap_or((rest, ""));
    let mut out = fill(head);
    out.push_str(&script_json(data));
    out.push_str(&fill(middle));
    out.push_str(&script_json(cases));
    out.push_str(&fill(tail));
    out
}

/// JSON to put inside a `<script>` element: `<` only occurs inside JSON strings, where
/// `\u003c` means the same, so the data can never close its element.
fn script_json(v: &impl serde::Serialize) -> String {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
