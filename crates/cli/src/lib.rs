//! The `commuter` command line: a thin layer that parses arguments, runs the pipeline crates,
//! shows progress and writes files. Exit codes: 0 success, 1 failure, 2 bad input.
//!
//! The binary runs the built-in models. A model in another crate gets the same command line
//! by calling [`run`] with its models:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let my_models: Vec<Box<dyn commuter_engine::DynModel>> = Vec::new(); // yours here
//!     commuter::run(my_models, std::env::args_os())
//! }
//! ```

mod analyze;
mod assets;
mod check;
mod common;
mod diff;
mod doctor;
mod emit_c;
mod impls;
mod merge;
mod output;
mod report;
mod run;
mod testgen;
mod trace;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commuter_engine::DynModel;

/// Find where code shares memory between operations that its interface says could run
/// independently (the scalable commutativity rule).
#[derive(Parser)]
#[command(name = "commuter", version, about, long_about = None)]
struct Cli {
    /// More logging (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in models and their calls.
    Models,
    /// Derive, for every set of calls, exactly when the calls commute.
    Analyze(analyze::AnalyzeArgs),
    /// Generate concrete test cases for every commutative situation (`tests.json`).
    Testgen(testgen::TestgenArgs),
    /// Statistics of a `tests.json`, or the difference between two.
    Profile(testgen::ProfileArgs),
    /// Write a POSIX `tests.json` as portable C: one function per test, a runtime and a main
    /// (`make`, then run natively on any POSIX system).
    EmitC(emit_c::EmitCArgs),
    /// Run a test suite on a real kernel under the tracer: conflicts.json, summary, heatmap.svg.
    Run(run::RunArgs),
    /// The main job: analyze, generate tests, run them on the stock kernel, report.
    Check(check::CheckArgs),
    /// Boot a kernel once and say whether it can be used (markers, clocksource, symbols, slab
    /// and per-CPU layouts).
    Doctor(doctor::DoctorArgs),
    /// The implementations this repository carries, for `--target user --impl NAME`.
    Impls(impls::ImplsArgs),
    /// The summary (and heat map) of a finished run's conflicts.json.
    Report(report::ReportArgs),
    /// Join the parts of a sharded run (`run --shard I/N`) into the conflicts.json, summary and
    /// heatmap.svg of a single run.
    Merge(merge::MergeArgs),
    /// Compare two runs: per call pair, per test, per code site; exit code 1 if the second
    /// is worse (a test became conflicted, mismatched or unjudged).
    Diff(report::DiffArgs),
    /// Run a static program (or a busybox shell script) in the VM and write its reference
    /// trace in kVMTrace's formats (VM and FS reads and writes per canonical page).
    Trace(trace::TraceArgs),
}

/// An error caused by the user's input (exit code 2), as opposed to a failure (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The models a run can use: the built-in ones and any given by the embedding program.
pub struct Registry {
    models: Vec<Box<dyn DynModel>>,
}

impl Registry {
    fn new(extra: Vec<Box<dyn DynModel>>) -> Self {
        let mut models = commuter_models::builtin_models();
        models.extend(extra);
        Registry { models }
    }

    pub fn models(&self) -> &[Box<dyn DynModel>] {
        &self.models
    }

    pub fn find(&self, name: &str) -> Option<&dyn DynModel> {
        self.models
            .iter()
            .find(|m| m.name() == name)
            .map(|m| m.as_ref())
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second run in the same process keeps the first subscriber.
    // Colours only on a terminal: escape codes make logs in files and CI unreadable.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Run the command line with the built-in models plus `extra_models`, on `args` (the first
/// being the program name, as in `std::env::args_os()`).
pub fn run<I, T>(extra_models: Vec<Box<dyn DynModel>>, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(cli.verbose);
    let registry = Registry::new(extra_models);
    let result = match cli.command {
        Command::Models => analyze::list_models(&registry),
        Command::Analyze(args) => analyze::run(&registry, &args),
        Command::Testgen(args) => testgen::run(&registry, &args),
        Command::Profile(args) => testgen::profile(&args),
        Command::EmitC(args) => emit_c::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Check(args) => check::check(&registry, &args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Impls(args) => impls::list(&args),
        Command::Report(args) => report::report(&args),
        Command::Diff(args) => report::diff(&args),
        Command::Merge(args) => merge::merge(&args),
        Command::Trace(args) => trace::trace(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<report::Worse>().is_some() => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
