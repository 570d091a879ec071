//! `commuter check`: the main job in one command. Analyze the model, generate its tests, run
//! them on the target and report: `analysis.json`, `tests.json`, `conflicts.json`,
//! `heatmap.svg` and `report.html` in one output directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use commuter_analyzer::{ANALYSIS_SCHEMA, ANALYSIS_VERSION, Analysis};

use crate::Registry;
use crate::UsageError;
use crate::common::{SelectionArgs, to_json};
use crate::output::AtomicOutput;
use crate::run::{RunOptions, execute};
use crate::testgen::{GenerationArgs, generate};

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    generation: GenerationArgs,
    #[command(flatten)]
    run: RunOptions,
    /// Directory for analysis.json, tests.json, conflicts.json, heatmap.svg and report.html.
    #[arg(short, long, default_value = "commuter-out")]
    out_dir: PathBuf,
}

pub fn check(registry: &Registry, args: &CheckArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| UsageError(format!("cannot create `{}`: {e}", args.out_dir.display())))?;
    let analysis_out = AtomicOutput::prepare(&args.out_dir.join("analysis.json"))?;
    let tests_out = AtomicOutput::prepare(&args.out_dir.join("tests.json"))?;
    let (suite, outcomes) = generate(registry, &args.selection, &args.generation, None)?;
    let analysis = Analysis {
        schema: ANALYSIS_SCHEMA.to_string(),
        version: ANALYSIS_VERSION,
        model: suite.model.clone(),
        ncomb: suite.ncomb,
        functions: suite.functions.clone(),
        call_sets: outcomes.into_iter().map(|o| o.analysis).collect(),
    };
    analysis_out.commit(&to_json(&analysis)?)?;
    let bytes = to_json(&suite)?;
    tests_out.commit(&bytes)?;
    execute(
        &suite,
        &bytes,
        &args.run,
        &args.out_dir.join("conflicts.json"),
    )
}
