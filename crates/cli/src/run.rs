//! `commuter run`: the command line of a suite's run on a target. Running it (batches, VMs,
//! resume, scanning) is the targets crate's (`commuter_targets::suite`); this module picks the
//! target, shows progress, prints the summary and writes `conflicts.json` and `heatmap.svg`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use commuter_scan::ConflictsFile;
use commuter_targets::kernel::LinuxKernel;
use commuter_targets::linux::{KERNEL_ENV, LinuxConfig};
use commuter_targets::shard::ShardSpec;
use commuter_targets::suite::{self, Events, Target};
use commuter_targets::user::{self, UserProgram};
use commuter_testgen::{TestSuite, parse_suite};
use indicatif::ProgressBar;

use crate::UsageError;
use crate::assets::Assets;
use crate::common::progress_bar;
use crate::output::{AtomicOutput, pictures_beside};

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
    /// Where to write the conflicts (JSON); `heatmap.svg` and `report.html` go beside it
    /// (`X.heatmap.svg` and `X.report.html` beside an `X.json` of another name).
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
    /// VMs to run at once (default: one per host core; a VM keeps about one core busy, its
    /// test processes handing the CPU to each other).
    #[arg(long, default_value_t = default_vms())]
    pub vms: usize,
    /// Tests per VM boot (a boot costs about as much as several hundred tests).
    #[arg(long, default_value_t = 1000)]
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
    /// Run only part I of N of the suite (1 <= I <= N), cut by expected cost; the output is
    /// that part's conflicts.json, to join with `commuter merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    #[command(flatten)]
    pub inputs: KernelInputs,
    /// How many shared code sites the summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// One VM per host core.
fn default_vms() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
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
    let (heatmap_path, html_path) = pictures_beside(output);
    // A part's heat map and report would show most pairs empty: the merge draws the whole.
    let pictures = match args.shard {
        None => Some((
            AtomicOutput::prepare(&heatmap_path)?,
            AtomicOutput::prepare(&html_path)?,
        )),
        Some(_) => None,
    };
    let assets = Assets::locate();
    let root = project_root();
    let options = suite::RunOptions {
        vms: args.vms,
        batch: args.batch,
        resume: args.resume,
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.work", output.display()))),
        shard: args.shard,
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
                .config(&assets, Duration::from_secs(args.timeout))?;
            let kernel = LinuxKernel::new(cfg, &args.inputs.vmlinux_path(&assets));
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
                .config(&assets, Duration::from_secs(args.timeout))?;
            // A runner of impls/ says its model; a runner given by path is trusted to run the
            // suite's (and refuses it at boot if not).
            let model = user::implementations(&root)
                .ok()
                .and_then(|all| all.into_iter().find(|i| i.name == name))
                .map_or_else(|| suite.model.clone(), |i| i.model);
            let program =
                UserProgram::new(cfg, &runner, &model, &args.inputs.vmlinux_path(&assets));
            run_on(&program, suite, bytes, &options)?
        }
    };
    let pairs = match args.shard {
        None => pair_counts(suite),
        Some(_) => commuter_report::pairs_of(&conflicts),
    };
    let idem = commuter_report::Idempotence::of_suite(suite);
    print!(
        "{}",
        commuter_report::terminal(&conflicts, &pairs, args.top, Some(&idem))
    );
    out.commit(conflicts.to_json().as_bytes())?;
    match pictures {
        Some((heatmap_out, html_out)) => {
            heatmap_out.commit(commuter_report::heatmap_svg(&conflicts, &pairs).as_bytes())?;
            html_out
                .commit(commuter_report::report_html(&conflicts, &pairs, Some(suite)).as_bytes())?;
            println!(
                "wrote {}, {} and {}",
                output.display(),
                heatmap_path.display(),
                html_path.display()
            );
        }
        None => println!(
            "wrote {} (shard {} of the suite's {} tests; join all parts with `commuter merge`)",
            output.display(),
            args.shard.map(|s| s.to_string()).unwrap_or_default(),
            conflicts.shard.as_ref().map_or(0, |s| s.suite_tests),
        ),
    }
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

/// The project checkout (see [`Assets`]), else the current directory: where the
/// implementations of `impls/` are listed and built.
pub(crate) fn project_root() -> PathBuf {
    Assets::locate()
        .checkout()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// What a Linux boot is made of; each defaults to what `scripts/setup` installs or builds.
#[derive(Args, Clone, Debug)]
pub struct KernelInputs {
    /// Kernel image (default: `.cache/linux/vmlinuz` of the project, from scripts/setup, or
    /// of an installation's cache directory).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Kernel with debug symbols, to name code and data (default: `vmlinux` beside the
    /// default kernel).
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
    pub fn config(&self, assets: &Assets, timeout: Duration) -> Result<LinuxConfig> {
        let plugin = self.plugin.clone().unwrap_or_else(|| assets.plugin());
        let guest = self.guest.clone().unwrap_or_else(|| assets.guest());
        let kernel = self
            .kernel
            .clone()
            .or_else(|| std::env::var_os(KERNEL_ENV).map(PathBuf::from))
            .unwrap_or_else(|| assets.kernel());
        let mut cfg = LinuxConfig::locate_with_kernel(
            assets.checkout().unwrap_or(Path::new(".")),
            Some(kernel),
            plugin,
            guest,
            PathBuf::new(),
        )
        .map_err(|e| UsageError(format!("{e}; {}", assets.fix())))?;
        cfg.timeout = timeout;
        cfg.kernel_args.clone_from(&self.kernel_args);
        Ok(cfg)
    }

    /// The debug image's path.
    pub fn vmlinux_path(&self, assets: &Assets) -> PathBuf {
        self.vmlinux.clone().unwrap_or_else(|| assets.vmlinux())
    }
}

pub(crate) fn pair_counts(suite: &TestSuite) -> Vec<commuter_report::PairTests> {
    suite
        .call_sets
        .iter()
        .map(|cs| commuter_report::PairTests {
            calls: cs.calls.clone(),
            tests: cs.tests.len(),
        })
        .collect()
}
