//! `commuter merge`: the parts of a sharded run (`commuter run --shard I/N` on several machines)
//! joined into the `conflicts.json`, summary, `heatmap.svg` and `report.html` a single run writes. The checks
//! (same suite, same shard count, every shard once, one target) are
//! `commuter_targets::shard::merge`'s; this module reads, prints and writes.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use commuter_targets::shard;
use commuter_testgen::parse_suite;

use crate::UsageError;
use crate::output::AtomicOutput;
use crate::report::read_conflicts;

#[derive(Args)]
pub struct MergeArgs {
    /// Every shard's conflicts.json (`commuter run --shard I/N`), in any order.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// Where to write the joined conflicts (JSON); `heatmap.svg` and `report.html` go beside it.
    #[arg(short, long, default_value = "conflicts.json")]
    pub output: PathBuf,
    /// The suite the shards ran (`tests.json`): checked against the parts' digest, and its
    /// call-pair order and counts used for the summary and heat map, as `run` does (default:
    /// the pairs of the joined file).
    #[arg(long)]
    pub tests: Option<PathBuf>,
    /// How many shared code sites the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

pub fn merge(args: &MergeArgs) -> Result<()> {
    let out = AtomicOutput::prepare(&args.output)?;
    let heatmap_path = args.output.with_file_name("heatmap.svg");
    let heatmap_out = AtomicOutput::prepare(&heatmap_path)?;
    let html_path = args.output.with_file_name("report.html");
    let html_out = AtomicOutput::prepare(&html_path)?;
    let suite = match &args.tests {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read `{}`: {e}", path.display())))?;
            let suite = parse_suite(&path.display().to_string(), &bytes)
                .map_err(|e| UsageError(e.to_string()))?;
            Some((suite, shard::suite_digest(&bytes)))
        }
        None => None,
    };
    let mut parts = Vec::with_capacity(args.parts.len());
    for path in &args.parts {
        parts.push((path.display().to_string(), read_conflicts(path)?));
    }
    let digest = suite.as_ref().map(|(_, d)| d.as_str());
    let merged = shard::merge(parts, digest).map_err(|e| UsageError(e.to_string()))?;
    let pairs = match &suite {
        Some((suite, _)) => crate::run::pair_counts(suite),
        None => commuter_report::pairs_of(&merged),
    };
    let idem = suite
        .as_ref()
        .map(|(suite, _)| commuter_report::Idempotence::of_suite(suite));
    print!(
        "{}",
        commuter_report::terminal(&merged, &pairs, args.top, idem.as_ref())
    );
    out.commit(merged.to_json().as_bytes())?;
    heatmap_out.commit(commuter_report::heatmap_svg(&merged, &pairs).as_bytes())?;
    let suite = suite.as_ref().map(|(suite, _)| suite);
    html_out.commit(commuter_report::report_html(&merged, &pairs, suite).as_bytes())?;
    println!(
        "wrote {}, {} and {} ({} parts)",
        args.output.display(),
        heatmap_path.display(),
        html_path.display(),
        args.parts.len()
    );
    Ok(())
}
