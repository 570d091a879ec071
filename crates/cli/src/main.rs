//! The `commuter` command line: a thin layer that parses arguments, runs the pipeline crates,
//! shows progress and writes files. Exit codes: 0 success, 1 failure, 2 bad input.

mod analyze;
mod common;
mod output;
mod testgen;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Models => analyze::list_models(),
        Command::Analyze(args) => analyze::run(&args),
        Command::Testgen(args) => testgen::run(&args),
        Command::Profile(args) => testgen::profile(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
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
