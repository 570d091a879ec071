//! `commuter trace`: a workload's reference trace in kVMTrace's four formats. The VM run is
//! `commuter_targets::trace`'s, the files `commuter_reftrace`'s; this module picks the inputs,
//! prints a summary and writes the directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use commuter_reftrace::Summary;
use commuter_targets::trace::{self, TraceError, Workload};
use indicatif::{ProgressBar, ProgressStyle};

use crate::UsageError;
use crate::assets::Assets;
use crate::output::{check_trace_dir, write_trace_dir};
use crate::run::KernelInputs;

/// Debian's busybox-static (scripts/setup installs it).
const DEFAULT_BUSYBOX: &str = "/bin/busybox";

#[derive(Args)]
pub struct TraceArgs {
    /// The trace directory to write (basic.gz, basic-named.gz, per-process/, per-thread/,
    /// summary.json); a previous trace there is replaced.
    #[arg(short, long, default_value = "reftrace")]
    pub output: PathBuf,
    /// Run this shell script with a static busybox (`busybox sh FILE ARGS`, every applet on
    /// PATH) instead of a program; the arguments after `--` are the script's.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// The static busybox for --script.
    #[arg(long, default_value = DEFAULT_BUSYBOX)]
    pub busybox: PathBuf,
    /// Print the records of a trace file (one of the .gz files a trace wrote) instead of
    /// tracing; --limit bounds how many.
    #[arg(long, value_name = "FILE", conflicts_with = "script")]
    pub show: Option<PathBuf>,
    /// With --show: at most this many records (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Seconds the VM may run.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Work directory (console, logs, the plugin's stream; default: `<output>.work`).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: KernelInputs,
    /// The static program and its arguments (after `--`); with --script, the script's
    /// arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn trace(args: &TraceArgs) -> Result<()> {
    if let Some(file) = &args.show {
        return show(file, args.limit);
    }
    let workload = match (&args.script, args.command.split_first()) {
        (Some(script), _) => Workload::Script {
            busybox: args.busybox.clone(),
            script: script.clone(),
            args: args.command.clone(),
        },
        (None, Some((program, rest))) => Workload::Program {
            path: PathBuf::from(program),
            args: rest.to_vec(),
        },
        (None, None) => {
            return Err(UsageError(
                "nothing to trace: give a static program after `--` (commuter trace -- ./prog ARGS) or --script FILE".into(),
            )
            .into());
        }
    };
    // Refused now rather than after the VM ran.
    check_trace_dir(&args.output)?;
    let assets = Assets::locate();
    let mut cfg = args
        .inputs
        .config(&assets, Duration::from_secs(args.timeout))?;
    let vmlinux = args.inputs.vmlinux_path(&assets);
    let layout = commuter_scan::reftrace_layout(&vmlinux).map_err(|e| {
        UsageError(format!(
            "{e}; the trace needs the kernel's debug image (--vmlinux, or scripts/install-linux-target --symbols)"
        ))
    })?;
    cfg.work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| with_suffix(&args.output, ".work"));
    let spinner = spinner("tracing the workload in the VM");
    let run = trace::trace(&cfg, &layout, &workload);
    spinner.finish_and_clear();
    let run = run.map_err(|e| match e {
        TraceError::Input { .. } => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other),
    })?;
    let files = commuter_reftrace::encode(&run.references);
    write_trace_dir(&files, &args.output)?;
    let summary = Summary::of(&run.references);
    let status = match (run.exit_code, run.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => "ended".into(),
    };
    println!(
        "workload pid {} ({status}), traced in {:.1} s",
        run.pid,
        run.elapsed.as_secs_f64()
    );
    if run.end.late {
        println!(
            "warning: the workload began before the tracer's instrumentation was active; its first references may be missing"
        );
    }
    if run.end.unresolved > 0 || run.end.unknown_task > 0 || run.end.unreadable_pages {
        println!(
            "note: {} accesses without a physical address and {} of an unknown task were not recorded{}",
            run.end.unresolved,
            run.end.unknown_task,
            if run.end.unreadable_pages {
                "; some struct pages were unreadable (counted anonymous)"
            } else {
                ""
            }
        );
    }
    print_summary(&summary);
    println!("wrote {}", args.output.display());
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn spinner(message: &'static str) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("{message} ...");
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(s: &Summary) {
    println!(
        "{:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>7}",
        "pid", "tid", "VM read", "VM write", "FS read", "FS write", "pages"
    );
    let row = |pid: &str, tid: &str, c: &commuter_reftrace::Counts| {
        println!(
            "{pid:>8} {tid:>8} {:>10} {:>10} {:>8} {:>8} {:>7}",
            c.vm_read, c.vm_write, c.fs_read, c.fs_write, c.pages
        );
    };
    for p in &s.processes {
        for (tid, c) in &p.threads {
            row(&p.pid.to_string(), &tid.to_string(), c);
        }
    }
    row("all", "", &s.total);
}

fn show(file: &Path, limit: usize) -> Result<()> {
    let t = commuter_reftrace::read(file).map_err(|e| UsageError(e.to_string()))?;
    println!(
        "{}: {} records ({})",
        file.display(),
        t.records.len(),
        t.format.name()
    );
    let n = if limit == 0 { t.records.len() } else { limit };
    for r in t.records.iter().take(n) {
        println!("{}", r.to_text());
    }
    Ok(())
}
