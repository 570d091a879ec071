//! `commuter testgen` and `commuter profile`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use commuter_analyzer::AnalyzeOptions;
use commuter_engine::ExploreOptions;
use commuter_targets::shard::ShardSpec;
use commuter_testgen::shard::{part_of, set_name};
use commuter_testgen::{
    CallSetOutcome, CallSetTests, SuitePart, TestSuite, TestgenOptions, parse_suite_or_part,
    testgen,
};

use crate::common::{SelectionArgs, call_set_progress, to_json};
use crate::diff::difference;
use crate::output::AtomicOutput;
use crate::{Registry, UsageError};

#[derive(Args)]
pub struct TestgenArgs {
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Where to write the tests (JSON).
    #[arg(short, long, default_value = "tests.json")]
    output: PathBuf,
    /// Also write the suite as portable C into this directory (POSIX model only; the same as
    /// `commuter emit-c tests.json -o DIR`).
    #[arg(long, value_name = "DIR")]
    emit_c: Option<PathBuf>,
    /// Generate only part I of N (`--shard 2/4`), for a batch system's job array: call sets
    /// are dealt to the parts by expected cost, the same way on every machine; join the parts
    /// with `commuter merge PART... -o tests.json`.
    #[arg(long, value_name = "I/N")]
    shard: Option<ShardSpec>,
}

#[derive(Args)]
pub struct ProfileArgs {
    /// A `tests.json` written by `commuter testgen` (with a second one: the old suite).
    tests: PathBuf,
    /// A second `tests.json` (the new suite): print what changed per call set and per path,
    /// and the facts and equalities of the classes added and removed.
    other: Option<PathBuf>,
    /// Compare two suites (`--diff old.json new.json`; the same as giving two files).
    #[arg(long)]
    diff: bool,
    /// With two suites: only this call set (e.g. `pwrite/pwrite`).
    #[arg(long, value_name = "CALLS")]
    call_set: Option<String>,
}

#[derive(Args)]
pub struct GenerationArgs {
    /// Stop enumerating a commutative path after this many tests (the paper used 500).
    #[arg(long, default_value_t = 500)]
    pub max_tests_per_path: usize,
    /// Stop generating for a call set after this many tests.
    #[arg(long)]
    pub max_testcases: Option<usize>,
}

pub fn run(registry: &Registry, args: &TestgenArgs) -> Result<()> {
    let out = AtomicOutput::prepare(&args.output)?;
    if let Some(dir) = &args.emit_c {
        // Refused before the long generation, not after it.
        let model = args.selection.model.as_str();
        if model != "posix" {
            return Err(UsageError(format!(
                "--emit-c writes POSIX-model suites as C; `-m {model}` is not the POSIX model (use -m posix)"
            ))
            .into());
        }
        if args.shard.is_some() {
            return Err(UsageError(
                "--emit-c writes a whole suite; with --shard, merge the parts first (`commuter merge PART... -o tests.json`), then `commuter emit-c tests.json -o DIR`"
                    .to_string(),
            )
            .into());
        }
        crate::emit_c::check_destination(dir)?;
    }
    let (suite, _) = generate(registry, &args.selection, &args.generation, args.shard)?;
    out.commit(&to_json(&suite)?)?;
    println!("wrote {}", args.output.display());
    if let Some(dir) = &args.emit_c {
        crate::emit_c::write(&suite, dir)?;
    }
    Ok(())
}

/// Analyze and generate tests with a progress bar, print the summary; shared with `check`.
pub fn generate(
    registry: &Registry,
    selection: &SelectionArgs,
    generation: &GenerationArgs,
    shard: Option<ShardSpec>,
) -> Result<(TestSuite, Vec<CallSetOutcome>)> {
    let mut selected = selection.resolve(registry)?;
    let part = shard.map(|spec| {
        let whole = std::mem::take(&mut selected.sets);
        selected.sets = part_of(selected.model, &whole, spec.index, spec.count);
        SuitePart {
            index: spec.index,
            count: spec.count,
            selection: whole.iter().map(|s| set_name(selected.model, s)).collect(),
            idempotence: !selection.no_idempotence,
        }
    });
    let (bar, paths_done) = call_set_progress(selected.sets.len() as u64);
    let opts = TestgenOptions {
        analyze: AnalyzeOptions {
            explore: ExploreOptions {
                paths_done: Some(paths_done),
                ..selection.explore_options()
            },
            print_conds: false,
            skip_idempotence: selection.no_idempotence,
        },
        max_tests_per_path: generation.max_tests_per_path,
        max_testcases: generation.max_testcases,
    };
    let started = Instant::now();
    let (mut suite, outcomes) = selected.on_workers(|| {
        testgen(
            selected.model,
            &selected.sets,
            &opts,
            selection.functions.as_deref(),
            &|o: &CallSetOutcome| {
                bar.set_message(o.tests.name());
                bar.inc(1);
            },
        )
    })??;
    bar.finish_and_clear();
    suite.part = part;
    let times: Vec<Duration> = outcomes.iter().map(|o| o.time).collect();
    print_summary(&suite, Some(&times), started.elapsed());
    Ok((suite, outcomes))
}

/// A suite to profile: a part of a sharded generation is profiled as it is.
fn load(path: &PathBuf) -> Result<TestSuite> {
    let bytes = std::fs::read(path)
        .map_err(|e| UsageError(format!("cannot read `{}`: {e}", path.display())))?;
    parse_suite_or_part(&path.display().to_string(), &bytes)
        .map_err(|e| UsageError(e.to_string()).into())
}

pub fn profile(args: &ProfileArgs) -> Result<()> {
    let first = load(&args.tests)?;
    match &args.other {
        None if args.diff || args.call_set.is_some() => {
            return Err(UsageError(
                "--diff and --call-set compare two suites: `commuter profile --diff old.json new.json`"
                    .to_string(),
            )
            .into());
        }
        None => print_summary(&first, None, Duration::ZERO),
        Some(other) => {
            let second = load(other)?;
            if let Some(name) = &args.call_set
                && !first
                    .call_sets
                    .iter()
                    .chain(&second.call_sets)
                    .any(|c| &c.name() == name)
            {
                return Err(UsageError(format!(
                    "--call-set {name}: neither suite has that call set (names look like `pwrite/pwrite`, calls in the model's order)"
                ))
                .into());
            }
            print!("{}", difference(&first, &second, args.call_set.as_deref()));
        }
    }
    Ok(())
}

/// Per call set: paths, commutative paths, tests, capped paths, errors (and time, for a run).
fn print_summary(suite: &TestSuite, times: Option<&[Duration]>, wall: Duration) {
    let width = name_width(suite.call_sets.iter().map(CallSetTests::name));
    println!(
        "{:<width$}  {:>6}  {:>11}  {:>7}  {:>6}  {:>6}{}",
        "call set",
        "paths",
        "commutative",
        "tests",
        "capped",
        "errors",
        if times.is_some() { "      time" } else { "" }
    );
    for (i, cs) in suite.call_sets.iter().enumerate() {
        let time = times
            .and_then(|t| t.get(i))
            .map(|t| format!("  {:>7.2}s", t.as_secs_f64()))
            .unwrap_or_default();
        println!(
            "{:<width$}  {:>6}  {:>11}  {:>7}  {:>6}  {:>6}{time}",
            cs.name(),
            cs.paths,
            cs.commutative_paths,
            cs.tests.len(),
            cs.capped_paths.len(),
            cs.errors.len()
        );
    }
    let sum = |f: fn(&CallSetTests) -> usize| suite.call_sets.iter().map(f).sum::<usize>();
    let wall = if times.is_some() {
        format!("  {:>7.2}s wall", wall.as_secs_f64())
    } else {
        String::new()
    };
    println!(
        "{:<width$}  {:>6}  {:>11}  {:>7}  {:>6}  {:>6}{wall}",
        "total",
        sum(|c| c.paths),
        sum(|c| c.commutative_paths),
        sum(|c| c.tests.len()),
        sum(|c| c.capped_paths.len()),
        sum(|c| c.errors.len())
    );
}

fn name_width(names: impl Iterator<Item = String>) -> usize {
    names.map(|n| n.len()).max().unwrap_or(0).max(8)
}
