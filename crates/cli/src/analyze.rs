//! `commuter models` and `commuter analyze`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use commuter_analyzer::{
    Analysis, AnalyzeOptions, CallSetReport, Commutes, MoverReport, analyze, analyze_movers,
};
use commuter_engine::ExploreOptions;

use crate::Registry;
use crate::common::{SelectionArgs, call_set_progress, progress_bar, to_json};
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
    /// Also print, per ordered pair (a, b), when a;b can be swapped to b;a (a is a right
    /// mover with respect to b), with the condition of every path.
    #[arg(long)]
    movers: bool,
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
    let (bar, paths_done) = call_set_progress(selected.sets.len() as u64);
    let opts = AnalyzeOptions {
        explore: ExploreOptions {
            paths_done: Some(paths_done),
            ..args.selection.explore_options()
        },
        // `--check-conds` needs the merged conditions to tell "always" from "always, given
        // the preconditions".
        print_conds: args.print_conds || args.check_conds,
        skip_idempotence: args.selection.no_idempotence,
    };
    tracing::info!(
        model = selected.model.name(),
        call_sets = selected.sets.len(),
        "analyzing"
    );
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
    if args.movers {
        print_movers(&selected, &opts)?;
    }
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

/// `--movers`: both directions of every selected pair, with their paths' conditions.
fn print_movers(selected: &crate::common::Selected, opts: &AnalyzeOptions) -> Result<()> {
    let opts = AnalyzeOptions {
        print_conds: true,
        ..opts.clone()
    };
    // Two directions per pair, one for a call with itself (`x/x`).
    let directions: u64 = selected
        .sets
        .iter()
        .map(|s| if s.len() == 2 && s[0] == s[1] { 1 } else { 2 })
        .sum();
    let bar = progress_bar(directions, "ordered pairs");
    let movers = selected.on_workers(|| {
        analyze_movers(selected.model, &selected.sets, &opts, &|m: &MoverReport| {
            bar.set_message(m.name());
            bar.inc(1);
        })
    })??;
    bar.finish_and_clear();
    println!();
    println!("movers: a;b can be swapped to b;a (a is a right mover with respect to b)");
    for m in &movers {
        println!(
            "{}  {} ({} of {} paths){}",
            m.name(),
            commutes_word(m.moves),
            m.movable_paths,
            m.paths,
            if m.unknowns > 0 {
                format!(", {} solver unknowns", m.unknowns)
            } else {
                String::new()
            }
        );
        for p in &m.path_list {
            let cond = p.condition.as_deref().unwrap_or("");
            if p.commutes {
                println!("    can swap when {cond}");
            } else {
                println!("    cannot ({}) when {cond}", p.divergence.join(", "));
            }
        }
    }
    Ok(())
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
            if !p.idempotent.is_empty() {
                println!("      idempotent: {}", idempotent_calls(cs, &p.idempotent));
            }
        } else {
            println!("    diverges ({}) when {cond}", p.divergence.join(", "));
        }
        for u in &p.unknowns {
            println!("      solver unknown: {u}");
        }
    }
}

/// "a (lseek), b (lseek)": each idempotent slot with its call.
fn idempotent_calls(cs: &CallSetReport, slots: &[String]) -> String {
    slots
        .iter()
        .map(|slot| {
            let call = (0..cs.calls.len())
                .find(|&i| commuter_analyzer::slot_name(i) == *slot)
                .map(|i| cs.calls[i].as_str())
                .unwrap_or("?");
            format!("{slot} ({call})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
