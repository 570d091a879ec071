//! `commuter report` (what a finished run found, again, without rerunning it) and `commuter
//! diff` (two runs compared; exit code 1 when the second is worse, so CI can gate a patch).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use commuter_scan::ConflictsFile;
use commuter_testgen::parse_suite;

use crate::UsageError;
use crate::output::AtomicOutput;

#[derive(Args)]
pub struct ReportArgs {
    /// A `conflicts.json` written by `commuter run` or `check`.
    pub conflicts: PathBuf,
    /// The suite the run ran (`tests.json`): its call-pair order and test counts, so pairs with
    /// missing tests show as such (default: the pairs of the conflicts file).
    #[arg(long)]
    pub tests: Option<PathBuf>,
    /// Also write the heat map here: SVG; PNG when FILE ends in `.png` (twice the SVG's size,
    /// text in DejaVu Sans, else the system's sans-serif font); TikZ/PGF for LaTeX when it
    /// ends in `.tex` or `.tikz`.
    #[arg(long, value_name = "FILE")]
    pub heatmap: Option<PathBuf>,
    /// Another run's `conflicts.json` whose heat map goes beside this one's, as a panel
    /// (repeatable; e.g. Linux and another target, or two kernels).
    #[arg(long, value_name = "CONFLICTS")]
    pub panel: Vec<PathBuf>,
    /// Also write SARIF 2.1.0 here: one result per code site that touched shared memory, for
    /// code-scanning tools.
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
    /// Also write the HTML report here: one self-contained page to explore the run in a
    /// browser (heat map, each pair's tests, shared locations, code sites).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the conflicts file again here, in the current version (code sites, frames
    /// and objects stored once; 5 for pairs, 6 with three calls, 7 with call stacks): an old
    /// run's version 3 or 4 file upgraded.
    #[arg(long, value_name = "FILE")]
    pub upgrade: Option<PathBuf>,
    /// How many shared code sites the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The old run's `conflicts.json` (e.g. before a kernel patch).
    pub old: PathBuf,
    /// The new run's `conflicts.json`.
    pub new: PathBuf,
    /// How many tests and code sites each list shows.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Also write the comparison as an HTML report here (cells coloured by the change).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// The new run is worse than the old one (exit code 1; the report already says how).
#[derive(Debug)]
pub struct Worse;

impl std::fmt::Display for Worse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the new run is worse than the old one")
    }
}

impl std::error::Error for Worse {}

/// Reads and checks a `conflicts.json`; a bad file is the user's to fix.
pub fn read_conflicts(path: &Path) -> Result<ConflictsFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read `{}`: {e}", path.display())))?;
    parse_conflicts(&path.display().to_string(), &text)
}

/// A conflicts file's text, read from `name` (for messages).
pub fn parse_conflicts(name: &str, text: &str) -> Result<ConflictsFile> {
    Ok(ConflictsFile::from_json(text).map_err(|e| UsageError(format!("`{name}`: {e}")))?)
}

/// Pixels per SVG unit of a PNG heat map: twice the SVG's size, sharp enough for print.
const PNG_SCALE: f32 = 2.0;

/// The PNG heat map's font: DejaVu Sans, the SVG's first choice (Debian's `fonts-dejavu-core`,
/// which `scripts/setup` installs), else the system's sans-serif font.
fn heatmap_font() -> Result<Vec<u8>> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let query = |families| fontdb::Query {
        families,
        ..fontdb::Query::default()
    };
    let id = db
        .query(&query(&[fontdb::Family::Name("DejaVu Sans")]))
        .or_else(|| db.query(&query(&[fontdb::Family::SansSerif])))
        .ok_or_else(|| {
            UsageError(
                "no sans-serif font found for the PNG heat map's text: install one (Debian: `apt-get install fonts-dejavu-core`), or write an SVG heat map".into(),
            )
        })?;
    if let Some(face) = db.face(id) {
        tracing::debug!(font = ?face.source, family = ?face.families, "PNG heat map font");
    }
    db.with_face_data(id, |data, _| data.to_vec())
        .ok_or_else(|| UsageError("the PNG heat map's font file could not be read".into()).into())
}

pub fn report(args: &ReportArgs) -> Result<()> {
    if !args.panel.is_empty() && args.heatmap.is_none() {
        return Err(
            UsageError("--panel adds a panel to the heat map: add --heatmap FILE".into()).into(),
        );
    }
    let conflicts = read_conflicts(&args.conflicts)?;
    let heatmap = args
        .heatmap
        .as_deref()
        .map(AtomicOutput::prepare)
        .transpose()?;
    let sarif = args
        .sarif
        .as_deref()
        .map(AtomicOutput::prepare)
        .transpose()?;
    let html = args
        .html
        .as_deref()
        .map(AtomicOutput::prepare)
        .transpose()?;
    let upgrade = args
        .upgrade
        .as_deref()
        .map(AtomicOutput::prepare)
        .transpose()?;
    let suite = match &args.tests {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read `{}`: {e}", path.display())))?;
            Some(
                parse_suite(&path.display().to_string(), &bytes)
                    .map_err(|e| UsageError(e.to_string()))?,
            )
        }
        None => None,
    };
    let pairs = match &suite {
        Some(suite) => crate::run::pair_counts(suite),
        None => commuter_report::pairs_of(&conflicts),
    };
    let idem = suite.as_ref().map(commuter_report::Idempotence::of_suite);
    print!(
        "{}",
        commuter_report::terminal(&conflicts, &pairs, args.top, idem.as_ref())
    );
    if let (Some(out), Some(path)) = (heatmap, &args.heatmap) {
        let others = args
            .panel
            .iter()
            .map(|p| read_conflicts(p))
            .collect::<Result<Vec<_>>>()?;
        let other_pairs: Vec<_> = others.iter().map(commuter_report::pairs_of).collect();
        let mut runs = vec![(&conflicts, pairs.as_slice())];
        runs.extend(
            others
                .iter()
                .zip(&other_pairs)
                .map(|(c, p)| (c, p.as_slice())),
        );
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let bytes = match ext.as_deref() {
            Some("tex" | "tikz") => commuter_report::heatmap_tikz(&runs).into_bytes(),
            Some("png") => commuter_report::heatmap_png(&runs, &[heatmap_font()?], PNG_SCALE)
                .map_err(|e| UsageError(format!("`{}`: {e}", path.display())))?,
            _ => commuter_report::heatmap_svg_panels(&runs).into_bytes(),
        };
        out.commit(&bytes)?;
        println!("wrote {}", path.display());
    }
    if let (Some(out), Some(path)) = (sarif, &args.sarif) {
        out.commit(commuter_report::sarif(&conflicts, idem.as_ref()).as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let (Some(out), Some(path)) = (html, &args.html) {
        let page = commuter_report::report_html(&conflicts, &pairs, suite.as_ref());
        out.commit(page.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let (Some(out), Some(path)) = (upgrade, &args.upgrade) {
        out.commit(conflicts.to_json().as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

pub fn diff(args: &DiffArgs) -> Result<()> {
    let html = args
        .html
        .as_deref()
        .map(AtomicOutput::prepare)
        .transpose()?;
    let old = read_conflicts(&args.old)?;
    let new = read_conflicts(&args.new)?;
    let d = commuter_report::diff(&old, &new);
    print!("{}", commuter_report::diff_terminal(&d, args.limit));
    if let (Some(out), Some(path)) = (html, &args.html) {
        out.commit(commuter_report::diff_html(&old, &new).as_bytes())?;
        println!("wrote {}", path.display());
    }
    if d.got_worse() {
        return Err(Worse.into());
    }
    Ok(())
}
