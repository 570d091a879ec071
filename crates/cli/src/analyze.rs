//! `commuter models` and `commuter analyze`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use commuter_analyzer::{Analysis, AnalyzeOptions, CallSetReport, Commutes, analyze};

use crate::Registry;
use crate::common::{SelectionArgs, progress_bar, to_json};
use crate::output::AtomicOutput;

#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    /// Print, per call set, whether the calls commute always, sometimes or never.
    #[arg(long)]
    check_conds: bool,
    /// Print the simplified condition of every path.
    #[arg(long)]
    print_conds: bool,
    /// Where to write the analysis (JSON).
    #[arg(short, long, default_value = "analysis.json")]
    output: PathBuf,
}

pub fn list_models(registry: &Registry) -> Result<()> {
    for m in registry.models() {
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

pub fn run(registry: &Registry, args: &AnalyzeArgs) -> Result<()> {
    let selected = args.selection.resolve(registry)?;
    let out = AtomicOutput::prepare(&args.output)?;
    let opts = AnalyzeOptions {
        explore: args.selection.explore_options(),
        // `--check-conds` needs the merged conditions to tell "always" from "always, given
        // the preconditions".
        print_conds: args.print_conds || args.check_conds,
    };
    tracing::info!(
        model = selected.model.name(),
        call_sets = selected.sets.len(),
        "analyzing"
    );
    let bar = progress_bar(selected.sets.len() as u64, "call sets");
    let started = Instant::now();
    let analysis = selected.on_workers(|| {
        analyze(
            selected.model,
            &selected.sets,
            &opts,
            args.selection.functions.as_deref(),
            &|cs: &CallSetReport| {
                bar.set_message(cs.name());
                bar.inc(1);
            },
        )
    })??;
    bar.finish_and_clear();
    print_table(&analysis, args, started.elapsed());
    out.commit(&to_json(&analysis)?)?;
    println!("wrote {}", args.output.display());
    Ok(())
}

/// The `--check-conds` verdict: "always" only when the calls commute in every state,
/// "always, given the preconditions: .." when only the calls' preconditions restrict it.
fn verdict(cs: &CallSetReport) -> String {
    if cs.paths == 0 {
        return "never both run (no state satisfies the calls' preconditions in every order)"
            .to_string();
    }
    match cs.commutes {
        Commutes::Always => match cs.runs_iff.as_deref() {
            None | Some("true") => "always".to_string(),
            Some(pre) => format!("always, given the preconditions: {pre}"),
        },
        Commutes::Sometimes => "sometimes".to_string(),
        Commutes::Never => "never".to_string(),
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
            format!("  {}", verdict(cs))
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
    if let Some(pre) = cs.runs_iff.as_deref().filter(|p| *p != "true") {
        println!("    preconditions (every order runs iff): {pre}");
    }
    if let Some(iff) = &cs.commutes_iff {
        println!("    commutes iff {iff}");
    }
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
