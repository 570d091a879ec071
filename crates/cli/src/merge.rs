//! `commuter merge`: the parts of a sharded run (`commuter run --shard I/N` on several machines)
//! joined into the `conflicts.json`, summary, `heatmap.svg` and `report.html` a single run writes;
//! or the parts of a sharded test generation (`commuter testgen --shard I/N`) joined into the
//! `tests.json` one generation writes. The checks (same suite or generation, same shard count,
//! every shard once, one target) are `commuter_targets::shard::merge`'s and
//! `commuter_testgen::shard::merge_parts`'s; this module reads, prints and writes.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use commuter_targets::shard;
use commuter_testgen::shard::merge_parts;
use commuter_testgen::{TESTS_SCHEMA, parse_suite, parse_suite_or_part};

use crate::UsageError;
use crate::common::to_json;
use crate::output::{AtomicOutput, pictures_beside};
use crate::report::parse_conflicts;

#[derive(Args)]
pub struct MergeArgs {
    /// Every shard's conflicts.json (`commuter run --shard I/N`) or every part's tests.json
    /// (`commuter testgen --shard I/N`), in any order.
    #[arg(required = true, value_name = "PART")]
    pub parts: Vec<PathBuf>,
    /// Where to write the joined file: conflicts (default `conflicts.json`; `heatmap.svg` and
    /// `report.html` go beside it, named after any other name as `run` names them) or tests
    /// (default `tests.json`).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
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
    // Each part read once: its schema says which kind of merge it is part of.
    let mut parts = Vec::with_capacity(args.parts.len());
    for path in &args.parts {
        parts.push((path.display().to_string(), read(path)?));
    }
    if parts.first().is_some_and(|(_, bytes)| is_tests(bytes)) {
        return merge_tests(args, parts);
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("conflicts.json"));
    let out = AtomicOutput::prepare(&output)?;
    let (heatmap_path, html_path) = pictures_beside(&output);
    let heatmap_out = AtomicOutput::prepare(&heatmap_path)?;
    let html_out = AtomicOutput::prepare(&html_path)?;
    let suite = match &args.tests {
        Some(path) => {
            let bytes = read(path)?;
            let suite = parse_suite(&path.display().to_string(), &bytes)
                .map_err(|e| UsageError(e.to_string()))?;
            Some((suite, shard::suite_digest(&bytes)))
        }
        None => None,
    };
    let parts = parts
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8(bytes)
                .map_err(|_| UsageError(format!("`{name}` is not a conflicts file (not UTF-8)")))?;
            Ok((name.clone(), parse_conflicts(&name, &text)?))
        })
        .collect::<Result<Vec<_>>>()?;
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
        output.display(),
        heatmap_path.display(),
        html_path.display(),
        args.parts.len()
    );
    Ok(())
}

/// Whether a part is a `tests.json` (a test generation's part) rather than a `conflicts.json`,
/// by its `schema` field.
fn is_tests(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<String>,
    }
    let schema: Option<Schema> = serde_json::from_slice(bytes).ok();
    schema.and_then(|s| s.schema).as_deref() == Some(TESTS_SCHEMA)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| UsageError(format!("cannot read `{}`: {e}", path.display())).into())
}

/// The parts of a sharded test generation joined into one `tests.json`.
fn merge_tests(args: &MergeArgs, parts: Vec<(String, Vec<u8>)>) -> Result<()> {
    if args.tests.is_some() {
        return Err(UsageError(
            "--tests names the suite of a run's parts; test generation parts are the suite itself: drop --tests".to_string(),
        )
        .into());
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("tests.json"));
    let out = AtomicOutput::prepare(&output)?;
    let parts = parts
        .into_iter()
        .map(|(name, bytes)| {
            let suite =
                parse_suite_or_part(&name, &bytes).map_err(|e| UsageError(e.to_string()))?;
            Ok((name, suite))
        })
        .collect::<Result<Vec<_>>>()?;
    let merged = merge_parts(parts).map_err(|e| UsageError(e.to_string()))?;
    out.commit(&to_json(&merged)?)?;
    println!(
        "wrote {} ({} call sets, {} tests, {} parts)",
        output.display(),
        merged.call_sets.len(),
        merged.total_tests(),
        args.parts.len()
    );
    Ok(())
}
