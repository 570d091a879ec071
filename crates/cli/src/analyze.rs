//! `commuter models` and `commuter analyze`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use commuter_analyzer::{
    Analysis, AnalyzeOptions, CallSetReport, Commutes, analyze, select_call_sets,
};
use commuter_engine::{DynModel, ExploreOptions};
use commuter_models::{builtin_models, find_model};
use indicatif::{ProgressBar, ProgressStyle};

use crate::UsageError;
use crate::output::AtomicOutput;

/// The model analysed when none is named.
pub const DEFAULT_MODEL: &str = "rename";

#[derive(Args)]
pub struct AnalyzeArgs {
    /// The model to analyze (see `commuter models`).
    #[arg(short, long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Number of calls per call set.
    #[arg(short = 'n', long = "ncomb", default_value_t = 2)]
    ncomb: usize,
    /// Which call sets: names, `*`, `!name`, `a/b` sets, `{..}` groups, comma-separated
    /// (e.g. `open,stat`, `*,!sync`, `{open,link}/unlink`).
    #[arg(short, long)]
    functions: Option<String>,
    /// Print, per call set, whether the calls commute always, sometimes or never.
    #[arg(long)]
    check_conds: bool,
    /// Print the simplified condition of every path.
    #[arg(long)]
    print_conds: bool,
    /// Where to write the analysis (JSON).
    #[arg(short, long, default_value = "analysis.json")]
    output: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Seconds one solver query may take before it counts as `unknown`.
    #[arg(long, default_value_t = 60)]
    solver_timeout: u64,
    /// Stop exploring a call set after this many paths (the report says so).
    #[arg(long)]
    max_paths: Option<usize>,
    /// Ask the solver at every branch instead of first consulting the path's saved model
    /// (slower; the benchmark's baseline).
    #[arg(long)]
    no_saved_models: bool,
}

pub fn list_models() -> Result<()> {
    for m in builtin_models() {
        println!("{:<12} {}", m.name(), m.description());
        let calls: Vec<String> = m
            .call_info()
            .iter()
            .map(|c| {
                if c.default {
                    c.name.to_string()
                } else {
                    format!("({})", c.name)
                }
            })
            .collect();
        println!("{:<12} calls: {}", "", calls.join(", "));
    }
    Ok(())
}

fn lookup_model(name: &str) -> Result<Box<dyn DynModel>> {
    find_model(name).ok_or_else(|| {
        let known: Vec<&str> = builtin_models().iter().map(|m| m.name()).collect();
        UsageError(format!(
            "unknown model `{name}`; the built-in models are: {} (see `commuter models`)",
            known.join(", ")
        ))
        .into()
    })
}

fn configure_threads(jobs: Option<usize>) -> Result<()> {
    if let Some(0) = jobs {
        return Err(UsageError("--jobs must be at least 1".into()).into());
    }
    if let Some(n) = jobs {
        // Fails only if the pool was already built, which cannot happen in this process.
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("configuring worker threads")?;
    }
    Ok(())
}

pub fn run(args: &AnalyzeArgs) -> Result<()> {
    let model = lookup_model(&args.model)?;
    let info = model.call_info();
    let names: Vec<&str> = info.iter().map(|c| c.name).collect();
    let defaults: Vec<bool> = info.iter().map(|c| c.default).collect();
    let sets = select_call_sets(&names, &defaults, args.functions.as_deref(), args.ncomb)
        .map_err(|e| UsageError(e.to_string()))?;
    let out = AtomicOutput::prepare(&args.output)?;
    configure_threads(args.jobs)?;
    let opts = AnalyzeOptions {
        explore: ExploreOptions {
            solver_timeout: Some(Duration::from_secs(args.solver_timeout)),
            max_paths: args.max_paths,
            use_saved_models: !args.no_saved_models,
        },
        print_conds: args.print_conds,
    };
    tracing::info!(model = model.name(), call_sets = sets.len(), "analyzing");
    let bar = progress_bar(sets.len() as u64);
    let started = Instant::now();
    let analysis = analyze(
        model.as_ref(),
        &sets,
        &opts,
        args.functions.as_deref(),
        &|cs: &CallSetReport| {
            bar.set_message(cs.name());
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    print_table(&analysis, args, started.elapsed());
    let mut json = serde_json::to_vec_pretty(&analysis).context("serializing the analysis")?;
    json.push(b'\n');
    out.commit(&json)?;
    println!("wrote {}", args.output.display());
    Ok(())
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn commutes_word(c: Commutes) -> &'static str {
    match c {
        Commutes::Always => "always",
        Commutes::Sometimes => "sometimes",
        Commutes::Never => "never",
    }
}

fn print_table(analysis: &Analysis, args: &AnalyzeArgs, wall: Duration) {
    let width = analysis
        .call_sets
        .iter()
        .map(|c| c.name().len())
        .max()
        .unwrap_or(8)
        .max(8);
    let check = if args.check_conds { "  commutes" } else { "" };
    println!(
        "{:<width$}  {:>6}  {:>11}  {:>8}  {:>8}{check}",
        "call set", "paths", "commutative", "unknowns", "time"
    );
    for cs in &analysis.call_sets {
        let verdict = if args.check_conds {
            format!("  {}", commutes_word(cs.commutes))
        } else {
            String::new()
        };
        let truncated = if cs.truncated { " (truncated)" } else { "" };
        println!(
            "{:<width$}  {:>6}  {:>11}  {:>8}  {:>7.2}s{verdict}{truncated}",
            cs.name(),
            cs.paths,
            cs.commutative_paths,
            cs.unknowns,
            cs.time.as_secs_f64()
        );
        if args.print_conds {
            print_conditions(cs);
        }
    }
    println!(
        "{:<width$}  {:>6}  {:>11}  {:>8}  {:>7.2}s wall",
        "total",
        analysis.total_paths(),
        analysis.total_commutative(),
        analysis.total_unknowns(),
        wall.as_secs_f64()
    );
}

fn print_conditions(cs: &CallSetReport) {
    for p in &cs.path_list {
        let cond = p.condition.as_deref().unwrap_or("");
        if p.commutes {
            println!("    commutes when {cond}");
        } else {
            println!("    diverges ({}) when {cond}", p.divergence.join(", "));
        }
        for u in &p.unknowns {
            println!("      solver unknown: {u}");
        }
    }
}
