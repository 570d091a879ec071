//! `commuter run`: execute a POSIX test suite on the stock Linux kernel under the tracer, in
//! batches (one VM boot each, several VMs in parallel), and write `conflicts.json`, the terminal
//! summary and `heatmap.svg`.
//!
//! Each finished batch is scanned and saved in the work directory at once, so a killed run
//! resumes (`--resume`) where it stopped; a VM that crashes or hangs marks its batch's tests and
//! the run goes on.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use commuter_guest::plan::{PLAN_VERSION, Plan, Test};
use commuter_guest::report::Platform;
use commuter_scan::schema::{ErrorKind, Target, TestConflicts, TestError, natural_cmp};
use commuter_scan::{CONFLICTS_SCHEMA, CONFLICTS_VERSION, ConflictsFile, Symbols, TestRun, scan};
use commuter_targets::linux::{self, LinuxConfig};
use commuter_targets::posix::{PosixTest, plan_test};
use commuter_testgen::{TestCase, TestSuite, parse_suite};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::UsageError;
use crate::common::progress_bar;
use crate::output::AtomicOutput;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TargetKind {
    /// Debian's stock kernel under qemu-system-x86_64 with the tracer plugin.
    Linux,
}

#[derive(Args)]
pub struct RunArgs {
    /// The test suite (`commuter testgen -m posix`).
    pub tests: PathBuf,
    /// Where to write the conflicts (JSON); `heatmap.svg` goes beside it.
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

/// A test ready for the guest, or why it cannot run.
struct Item {
    id: String,
    calls: [String; 2],
    plan: Result<Test, String>,
}

/// What identifies a run, so `--resume` never mixes batches of different runs.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Manifest {
    tests_digest: String,
    batch: usize,
    batches: usize,
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
    if args.vms == 0 || args.batch == 0 {
        return Err(UsageError("--jobs/--vms and --batch must be at least 1".into()).into());
    }
    check_suite(suite)?;
    let out = AtomicOutput::prepare(output)?;
    let heatmap_path = output.with_file_name("heatmap.svg");
    let heatmap_out = AtomicOutput::prepare(&heatmap_path)?;
    let root = project_root();
    let mut cfg = linux_config(args, &root)?;
    let symbols = open_symbols(args, &root);
    // The plugin names slab caches with the layout read from the same debug vmlinux.
    cfg.slab = symbols.as_ref().and_then(|s| {
        s.slab_layout()
            .map_err(|e| eprintln!("note: heap objects are not named by slab cache ({e})"))
            .ok()
    });
    cfg.percpu = symbols.as_ref().and_then(Symbols::percpu_layout);
    let items = translate(suite);
    let runnable: Vec<&Item> = items.iter().filter(|i| i.plan.is_ok()).collect();
    let batches: Vec<&[&Item]> = runnable.chunks(args.batch).collect();
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.work", output.display())));
    prepare_work_dir(&work, bytes, args, batches.len())?;
    let target = Target {
        name: "linux".into(),
        version: kernel_version(&cfg.kernel),
        symbols: None,
    };
    let bar = progress_bar(runnable.len() as u64);
    let mut tests = run_batches(
        &cfg,
        &work,
        &batches,
        args.vms,
        &target,
        symbols.as_ref(),
        &bar,
    )?;
    bar.finish_and_clear();
    tests.extend(scan(target.clone(), &unrunnable(&items), None).tests);
    tests.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    let conflicts = ConflictsFile {
        schema: CONFLICTS_SCHEMA.into(),
        version: CONFLICTS_VERSION,
        target: Target {
            symbols: symbols.as_ref().map(|s| s.name().to_string()),
            ..target
        },
        tests,
    };
    let pairs = pair_counts(suite);
    print!(
        "{}",
        commuter_report::terminal(&conflicts, &pairs, args.top)
    );
    out.commit(conflicts.to_json().as_bytes())?;
    heatmap_out.commit(commuter_report::heatmap_svg(&conflicts, &pairs).as_bytes())?;
    println!("wrote {} and {}", output.display(), heatmap_path.display());
    Ok(())
}

fn check_suite(suite: &TestSuite) -> Result<()> {
    if suite.model != "posix" {
        return Err(UsageError(format!(
            "the linux target runs tests of the posix model; this suite is of `{}`",
            suite.model
        ))
        .into());
    }
    if let Some(cs) = suite.call_sets.iter().find(|c| c.calls.len() != 2) {
        return Err(UsageError(format!(
            "the linux target runs pairs of calls; the suite has the call set {}",
            cs.name()
        ))
        .into());
    }
    Ok(())
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

fn linux_config(args: &RunOptions, root: &Path) -> Result<LinuxConfig> {
    args.inputs.config(root, Duration::from_secs(args.timeout))
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

fn open_symbols(args: &RunOptions, root: &Path) -> Option<Symbols> {
    let path = args.inputs.vmlinux_path(root);
    match Symbols::open(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "note: conflicts are not symbolised ({e}); `COMMUTER_LINUX_SYMBOLS=1 ./scripts/setup` fetches the symbols"
            );
            None
        }
    }
}

/// `6.12.95+deb12-amd64` from `vmlinuz-6.12.95+deb12-amd64` (following a symlink).
fn kernel_version(kernel: &Path) -> Option<String> {
    let real = std::fs::canonicalize(kernel).unwrap_or_else(|_| kernel.to_path_buf());
    let name = real.file_name()?.to_string_lossy().into_owned();
    name.strip_prefix("vmlinuz-").map(str::to_string)
}

fn translate(suite: &TestSuite) -> Vec<Item> {
    suite
        .call_sets
        .iter()
        .flat_map(|cs| cs.tests.iter())
        .map(|t| Item {
            id: t.id.clone(),
            calls: [t.calls[0].call.clone(), t.calls[1].call.clone()],
            plan: translate_test(t),
        })
        .collect()
}

fn translate_test(t: &TestCase) -> Result<Test, String> {
    let result_of = |order: &str, slot: &str| {
        t.expected
            .iter()
            .find(|e| e.order == order && e.slot == slot)
            .map(|e| &e.result)
            .ok_or_else(|| format!("no expected result for order {order}"))
    };
    let posix = PosixTest {
        name: &t.id,
        setup: &t.setup,
        calls: [
            (t.calls[0].call.as_str(), &t.calls[0].args),
            (t.calls[1].call.as_str(), &t.calls[1].args),
        ],
        // The guest runs A, then B: A's result as A alone first, B's after A.
        expected: [result_of("a", "a")?, result_of("ab", "b")?],
    };
    plan_test(&posix).map_err(|e| e.to_string())
}

fn unrunnable(items: &[Item]) -> Vec<TestRun> {
    items
        .iter()
        .filter_map(|i| {
            let reason = i.plan.as_ref().err()?;
            Some(TestRun {
                id: i.id.clone(),
                calls: i.calls.clone(),
                errors: vec![TestError {
                    kind: ErrorKind::Guest,
                    message: format!("cannot run on Linux: {reason}"),
                }],
                ..TestRun::default()
            })
        })
        .collect()
}

fn digest(bytes: &[u8]) -> String {
    // FNV-1a: enough to tell two suites apart, no dependency.
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

fn prepare_work_dir(work: &Path, suite: &[u8], args: &RunOptions, batches: usize) -> Result<()> {
    let manifest = Manifest {
        tests_digest: digest(suite),
        batch: args.batch,
        batches,
    };
    let path = work.join("run.json");
    if args.resume {
        let found: Option<Manifest> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match found {
            Some(m) if m == manifest => return Ok(()),
            Some(_) => {
                return Err(UsageError(format!(
                    "{} belongs to another run (other tests or --batch); run without --resume to start over",
                    work.display()
                ))
                .into());
            }
            None => {}
        }
    } else if work.exists() {
        std::fs::remove_dir_all(work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(work)
        .map_err(|e| UsageError(format!("cannot create `{}`: {e}", work.display())))?;
    AtomicOutput::prepare(&path)?.commit(&serde_json::to_vec_pretty(&manifest)?)?;
    Ok(())
}

fn batch_file(work: &Path, i: usize) -> PathBuf {
    work.join(format!("batch-{i:05}.json"))
}

/// Runs every batch not already done, `jobs` VMs at a time; returns all tests' conflicts.
fn run_batches(
    cfg: &LinuxConfig,
    work: &Path,
    batches: &[&[&Item]],
    jobs: usize,
    target: &Target,
    symbols: Option<&Symbols>,
    bar: &ProgressBar,
) -> Result<Vec<TestConflicts>> {
    let mut done: Vec<TestConflicts> = Vec::new();
    let mut pending = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        match std::fs::read(batch_file(work, i))
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<TestConflicts>>(&b).ok())
        {
            Some(tests) => {
                bar.inc(batch.len() as u64);
                done.extend(tests);
            }
            None => pending.push(i),
        }
    }
    let (send, receive) = mpsc::channel::<(usize, Vec<TestRun>, Option<Platform>)>();
    let queue = std::sync::Mutex::new(pending.clone().into_iter());
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..jobs.min(pending.len()) {
            let send = send.clone();
            let queue = &queue;
            scope.spawn(move || {
                while let Some(i) = next(queue) {
                    let (runs, platform) = boot(cfg, work, i, batches[i]);
                    if send.send((i, runs, platform)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        // Scan on this thread as batches finish (symbols are not shared between threads).
        // The platform is the same in every boot of a run: checked on the first that says.
        let mut platform_checked = false;
        for (i, runs, platform) in receive {
            if let (false, Some(p)) = (platform_checked, platform) {
                check_platform(&p, symbols);
                platform_checked = true;
            }
            let tests = scan(target.clone(), &runs, symbols).tests;
            let file = AtomicOutput::prepare(&batch_file(work, i))?;
            file.commit(&serde_json::to_vec(&tests)?)?;
            bar.inc(runs.len() as u64);
            done.extend(tests);
        }
        Ok(())
    })?;
    Ok(done)
}

fn next(queue: &std::sync::Mutex<std::vec::IntoIter<usize>>) -> Option<usize> {
    queue.lock().ok()?.next()
}

/// Says when the kernel's results may not be its own: a clocksource other than the TSC, or
/// debug symbols of another build.
fn check_platform(platform: &Platform, symbols: Option<&Symbols>) {
    if platform.clocksource != linux::CLOCKSOURCE {
        eprintln!(
            "warning: the guest's clocksource is `{}`, not {}: conflicts on the clock are the virtual platform's (see `commuter doctor`)",
            platform.clocksource,
            linux::CLOCKSOURCE
        );
    }
    let banner = symbols.and_then(Symbols::linux_banner);
    if let Some(b) = banner.filter(|b| *b != platform.version) {
        eprintln!(
            "warning: the debug symbols are of another build ({b}) than the kernel ({}): locations may be named wrongly (see `commuter doctor`)",
            platform.version
        );
    }
}

/// One VM boot for one batch; a failed boot marks every test of the batch.
fn boot(
    cfg: &LinuxConfig,
    work: &Path,
    i: usize,
    batch: &[&Item],
) -> (Vec<TestRun>, Option<Platform>) {
    let tests: Vec<Test> = batch
        .iter()
        .filter_map(|item| item.plan.as_ref().ok().cloned())
        .collect();
    let plan = Plan {
        version: PLAN_VERSION,
        cpus: [1, 2],
        tests,
    };
    let cfg = LinuxConfig {
        work_dir: work.join(format!("vm-{i:05}")),
        ..cfg.clone()
    };
    match linux::run(&cfg, &plan) {
        Ok(run) => (
            batch
                .iter()
                .zip(&run.tests)
                .map(|(item, outcome)| outcome.to_scan(item.id.clone(), item.calls.clone()))
                .collect(),
            run.platform,
        ),
        Err(e) => {
            tracing::warn!(batch = i, error = %e, "VM failed");
            let runs = batch
                .iter()
                .map(|item| TestRun {
                    id: item.id.clone(),
                    calls: item.calls.clone(),
                    errors: vec![TestError {
                        kind: ErrorKind::Vm,
                        message: e.to_string(),
                    }],
                    ..TestRun::default()
                })
                .collect();
            (runs, None)
        }
    }
}

fn pair_counts(suite: &TestSuite) -> Vec<commuter_report::PairTests> {
    suite
        .call_sets
        .iter()
        .map(|cs| commuter_report::PairTests {
            calls: [cs.calls[0].clone(), cs.calls[1].clone()],
            tests: cs.tests.len(),
        })
        .collect()
}
