//! `commuter run`: the command line of a suite's run on a target. Running it (batches, VMs,
//! resume, scanning) is the targets crate's (`commuter_targets::suite`); this module picks the
//! target, shows progress, prints the summary and writes `conflicts.json` and `heatmap.svg`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use commuter_scan::ConflictsFile;
use commuter_targets::kernel::LinuxKernel;
use commuter_targets::linux::LinuxConfig;
use commuter_targets::suite::{self, Events, Target};
use commuter_targets::user::{self, UserProgram};
use commuter_testgen::{TestSuite, parse_suite};
use indicatif::ProgressBar;

use crate::UsageError;
use crate::common::progress_bar;
use crate::output::AtomicOutput;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// Debian's stock kernel under qemu-system-x86_64 with the tracer plugin (POSIX tests).
    Linux,
    /// A user-space implementation's runner (`--impl`) as the guest's init, user-mode code
    /// traced too (tests of any model).
    User,
}

#[derive(Args)]
pub struct RunArgs {
    /// The test suite (`commuter testgen -m posix`).
    pub tests: PathBuf,
    /// Where to write the conflicts (JSON); `heatmap.svg` and `report.html` go beside it.
    #[arg(short, long, default_value = "conflicts.json")]
    pub output: PathBuf,
    /// VMs to run at once (the same as --vms).
    #[arg(short, long)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub options: RunOptions,
}

/// How to run a suite (shared by `run` and `check`).
#[derive(Args, Clone)]
pub struct RunOptions {
    /// Where to run the tests.
    #[arg(long, value_enum, default_value = "linux")]
    pub target: TargetKind,
    /// The implementation for `--target user`: a name from `commuter impls` (built now if
    /// needed) or the path of a static runner built with commuter-harness.
    #[arg(long = "impl", value_name = "NAME|PATH")]
    pub implementation: Option<String>,
    /// VMs to run at once (each uses three virtual CPUs).
    #[arg(long, default_value_t = 1)]
    pub vms: usize,
    /// Tests per VM boot.
    #[arg(long, default_value_t = 400)]
    pub batch: usize,
    /// Seconds a VM may run before it counts as hung (its batch's tests are marked).
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Continue a killed run: keep the batches its work directory already holds.
    #[arg(long)]
    pub resume: bool,
    /// Work directory (default: `<output>.work`).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: KernelInputs,
    /// How many shared code sites the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

pub fn run(args: &RunArgs) -> Result<()> {
    let bytes = std::fs::read(&args.tests)
        .map_err(|e| UsageError(format!("cannot read `{}`: {e}", args.tests.display())))?;
    let suite = parse_suite(&args.tests.display().to_string(), &bytes)
        .map_err(|e| UsageError(e.to_string()))?;
    let options = RunOptions {
        vms: args.jobs.unwrap_or(args.options.vms),
        ..args.options.clone()
    };
    execute(&suite, &bytes, &options, &args.output)
}

/// Run `suite` (whose file content is `bytes`, for resuming) and write `output` and the heat
/// map beside it.
pub fn execute(suite: &TestSuite, bytes: &[u8], args: &RunOptions, output: &Path) -> Result<()> {
    let out = AtomicOutput::prepare(output)?;
    let heatmap_path = output.with_file_name("heatmap.svg");
    let heatmap_out = AtomicOutput::prepare(&heatmap_path)?;
    let html_path = output.with_file_name("report.html");
    let html_out = AtomicOutput::prepare(&html_path)?;
    let root = project_root();
    let options = suite::RunOptions {
        vms: args.vms,
        batch: args.batch,
        resume: args.resume,
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.work", output.display()))),
    };
    if args.target == TargetKind::Linux && args.implementation.is_some() {
        return Err(UsageError(
            "--impl names a user-space implementation: add --target user".into(),
        )
        .into());
    }
    let conflicts = match args.target {
        TargetKind::Linux => {
            let cfg = args
                .inputs
                .config(&root, Duration::from_secs(args.timeout))?;
            let kernel = LinuxKernel::new(cfg, &args.inputs.vmlinux_path(&root));
            run_on(&kernel, suite, bytes, &options)?
        }
        TargetKind::User => {
            let name = args.implementation.as_deref().ok_or_else(|| {
                UsageError(
                    "--target user needs --impl NAME|PATH (`commuter impls` lists them)".into(),
                )
            })?;
            let runner = user::runner(&root, name).map_err(|e| UsageError(e.to_string()))?;
            let cfg = args
                .inputs
                .config(&root, Duration::from_secs(args.timeout))?;
            // A runner of impls/ says its model; a runner given by path is trusted to run the
            // suite's (and refuses it at boot if not).
            let model = user::implementations(&root)
                .ok()
                .and_then(|all| all.into_iter().find(|i| i.name == name))
                .map_or_else(|| suite.model.clone(), |i| i.model);
            let program = UserProgram::new(cfg, &runner, &model, &args.inputs.vmlinux_path(&root));
            run_on(&program, suite, bytes, &options)?
        }
    };
    let pairs = pair_counts(suite);
    print!(
        "{}",
        commuter_report::terminal(&conflicts, &pairs, args.top)
    );
    out.commit(conflicts.to_json().as_bytes())?;
    heatmap_out.commit(commuter_report::heatmap_svg(&conflicts, &pairs).as_bytes())?;
    html_out.commit(commuter_report::report_html(&conflicts, &pairs, Some(suite)).as_bytes())?;
    println!(
        "wrote {}, {} and {}",
        output.display(),
        heatmap_path.display(),
        html_path.display()
    );
    Ok(())
}

/// The run on one target, with a progress bar; a usage error keeps its exit code.
fn run_on<T: Target>(
    target: &T,
    suite: &TestSuite,
    bytes: &[u8],
    options: &suite::RunOptions,
) -> Result<ConflictsFile> {
    let bar = Bar(progress_bar(0, "tests"));
    let result = suite::run_suite(target, suite, bytes, options, &bar);
    bar.0.finish_and_clear();
    result.map_err(|e| match e.is_usage() {
        true => UsageError(e.to_string()).into(),
        false => anyhow::Error::new(e),
    })
}

/// The run's progress on the terminal; warnings above the bar.
struct Bar(ProgressBar);

impl Events for Bar {
    fn start(&self, tests: u64) {
        self.0.set_length(tests);
    }
    fn progress(&self, tests: u64) {
        self.0.inc(tests);
    }
    fn warn(&self, message: &str) {
        self.0.suspend(|| eprintln!("warning: {message}"));
    }
}

/// The project directory: `COMMUTER_HOME`, else the ancestor of the running binary that holds
/// the workspace (`target/<profile>/commuter`), else the current directory.
pub(crate) fn project_root() -> PathBuf {
    if let Some(home) = std::env::var_os("COMMUTER_HOME") {
        return PathBuf::from(home);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|d| d.join("crates/guest/Cargo.toml").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("."))
}

/// What a Linux boot is made of; each defaults to what `scripts/setup` installs or builds.
#[derive(Args, Clone, Debug)]
pub struct KernelInputs {
    /// Kernel image (default: `.cache/linux/vmlinuz` of the project, from scripts/setup).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Kernel with debug symbols, to name code and data (default: `.cache/linux/vmlinux`).
    #[arg(long)]
    pub vmlinux: Option<PathBuf>,
    /// The tracer plugin (default: built by scripts/setup).
    #[arg(long)]
    pub plugin: Option<PathBuf>,
    /// The static guest `/init` (default: built by scripts/setup).
    #[arg(long)]
    pub guest: Option<PathBuf>,
    /// An extra kernel command-line argument, after the target's own (repeatable; where an
    /// option is given twice the kernel takes the last one).
    #[arg(long = "kernel-arg", value_name = "ARG")]
    pub kernel_args: Vec<String>,
}

impl KernelInputs {
    /// The target configuration; a missing input is a usage error naming the fix.
    pub fn config(&self, root: &Path, timeout: Duration) -> Result<LinuxConfig> {
        let plugin = self
            .plugin
            .clone()
            .unwrap_or_else(|| root.join("target/tracer/release/libcommuter_tracer.so"));
        let guest = self.guest.clone().unwrap_or_else(|| {
            root.join("target/guest/x86_64-unknown-linux-gnu/release/commuter-guest")
        });
        let mut cfg = LinuxConfig::locate_with_kernel(
            root,
            self.kernel.clone(),
            plugin,
            guest,
            PathBuf::new(),
        )
        .map_err(|e| {
            UsageError(format!(
                "{e}; ./scripts/setup installs and builds everything"
            ))
        })?;
        cfg.timeout = timeout;
        cfg.kernel_args.clone_from(&self.kernel_args);
        Ok(cfg)
    }

    /// The debug image's path.
    pub fn vmlinux_path(&self, root: &Path) -> PathBuf {
        self.vmlinux
            .clone()
            .unwrap_or_else(|| root.join(".cache/linux/vmlinux"))
    }
}

pub(crate) fn pair_counts(suite: &TestSuite) -> Vec<commuter_report::PairTests> {
    suite
        .call_sets
        .iter()
        .map(|cs| commuter_report::PairTests {
            calls: [cs.calls[0].clone(), cs.calls[1].clone()],
            tests: cs.tests.len(),
        })
        .collect()
}
