//! Boots the Linux target once on a guest plan and prints every call's outcome as one JSON line
//! on stdout; `bench/tracer-overhead` drives it with and without the tracer plugin.
//!
//! ```text
//! run_plan PLAN.json --guest GUEST --work DIR [--plugin PLUGIN.so] [--kernel VMLINUZ]
//! {"test":0,"name":"stat","call":0,"ok":true,"errors":[],"elapsed_ns":81234,"traced":true}
//! ```
//!
//! Without `--plugin` the VM runs under plain TCG. Exit status 2 on bad arguments, 1 when the
//! boot fails.

use commuter_guest::plan::Plan;
use commuter_targets::linux::{self, LinuxConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str =
    "usage: run_plan PLAN.json --guest GUEST --work DIR [--plugin PLUGIN.so] [--kernel VMLINUZ]";

struct Args {
    plan: PathBuf,
    guest: PathBuf,
    work: PathBuf,
    plugin: Option<PathBuf>,
    kernel: Option<PathBuf>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut plan, mut guest, mut work, mut plugin, mut kernel) = (None, None, None, None, None);
    while let Some(arg) = argv.next() {
        let slot = match arg.as_str() {
            "--guest" => &mut guest,
            "--work" => &mut work,
            "--plugin" => &mut plugin,
            "--kernel" => &mut kernel,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => {
                if plan.replace(PathBuf::from(&arg)).is_some() {
                    return Err(format!("a second plan {arg:?}: one plan per boot"));
                }
                continue;
            }
        };
        let value = argv.next().ok_or_else(|| format!("{arg} needs a value"))?;
        *slot = Some(PathBuf::from(value));
    }
    Ok(Args {
        plan: plan.ok_or("no plan given")?,
        guest: guest.ok_or("--guest is required")?,
        work: work.ok_or("--work is required")?,
        plugin,
        kernel,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("run_plan: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("run_plan: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.plan)
        .map_err(|e| format!("read {}: {e}", args.plan.display()))?;
    let plan = Plan::from_json(&text).map_err(|e| format!("{}: {e}", args.plan.display()))?;
    // The kernel's default location is relative to the repository this example belongs to.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (guest, work, kernel) = (args.guest.clone(), args.work.clone(), args.kernel.clone());
    let cfg = match &args.plugin {
        Some(p) => LinuxConfig::locate_with_kernel(&repo, kernel, p.clone(), guest, work),
        None => LinuxConfig::locate_untraced(&repo, kernel, guest, work),
    }
    .map_err(|e| e.to_string())?;
    let run = linux::run(&cfg, &plan).map_err(|e| e.to_string())?;
    eprintln!(
        "run_plan: {} tests, boot {:.1} s, {}",
        run.tests.len(),
        run.elapsed.as_secs_f64(),
        if cfg.plugin.is_some() {
            "traced"
        } else {
            "plain TCG"
        }
    );
    for t in &run.tests {
        for (call, outcome) in t.calls.iter().enumerate() {
            let line = serde_json::json!({
                "test": t.index,
                "name": t.name,
                "call": call,
                "ok": outcome.as_ref().is_some_and(|c| c.ok),
                "mismatches": outcome.as_ref().map(|c| &c.mismatches),
                "errors": t.errors,
                "elapsed_ns": outcome.as_ref().and_then(|c| c.elapsed).map(|d| d.as_nanos()),
                // A clean record with both calls: the time is that of a recorded call.
                "traced": t.trace.as_ref().is_some_and(|r| r.errors.is_empty() && r.calls.len() == 2),
            });
            println!("{line}");
        }
    }
    Ok(())
}
