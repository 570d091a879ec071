//! The Linux target: boot Debian's stock kernel under `qemu-system-x86_64` (TCG, three vCPUs)
//! with the tracer plugin, run a guest plan, and collect the guest's result lines and the
//! tracer's per-test records. Without a plugin ([`LinuxConfig::plugin`] `None`) the same plan
//! runs under plain TCG: results and call times, no records (the tracer's overhead baseline).

use crate::initramfs::{InitramfsError, linux_initramfs};
use commuter_guest::plan::Plan;
use commuter_guest::report::{Actual, GuestLine, Platform, Timing};
use commuter_trace_format::percpu::PercpuLayout;
use commuter_trace_format::record::{self, TestRecord};
use commuter_trace_format::slab::SlabLayout;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the kernel image, overriding `.cache/linux/vmlinuz`.
pub const KERNEL_ENV: &str = "COMMUTER_LINUX_KERNEL";
/// The QEMU binary looked up in `PATH`.
pub const QEMU: &str = "qemu-system-x86_64";
const INSTALL_HINT: &str = "run scripts/install-linux-target";

/// Why a Linux run failed.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// QEMU is not installed.
    #[error("{QEMU} not found in PATH: {INSTALL_HINT}")]
    QemuNotFound,
    /// No kernel image.
    #[error("no Linux kernel image at {}: {INSTALL_HINT} (or set {KERNEL_ENV})", .0.display())]
    KernelNotFound(PathBuf),
    /// The plugin was not built.
    #[error(
        "tracer plugin {} does not exist: build it with `cargo build --release --manifest-path crates/tracer/Cargo.toml --target-dir target/tracer`",
        .0.display()
    )]
    PluginNotFound(PathBuf),
    /// No work directory: a run would scatter its files in the current directory.
    #[error("no work directory for the VM's files (LinuxConfig::work_dir is empty)")]
    NoWorkDir,
    /// The guest was not built.
    #[error(
        "guest binary {} does not exist: build it statically with `RUSTFLAGS=\"-C target-feature=+crt-static -C relocation-model=static\" cargo build --release --target x86_64-unknown-linux-gnu --manifest-path crates/guest/Cargo.toml --target-dir target/guest`",
        .0.display()
    )]
    GuestNotFound(PathBuf),
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The initramfs could not be built.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    /// QEMU could not be started.
    #[error("cannot start {QEMU}: {0}")]
    Spawn(std::io::Error),
    /// The guest did not power off in time.
    #[error("the VM did not finish within {} s (killed); last console lines:\n{console}", .timeout.as_secs())]
    Timeout {
        /// The limit.
        timeout: Duration,
        /// End of the console output.
        console: String,
    },
    /// QEMU exited with an error.
    #[error("{QEMU} failed ({status}); its log:\n{log}")]
    QemuFailed {
        /// Exit status.
        status: ExitStatus,
        /// End of QEMU's stderr and the plugin's log.
        log: String,
    },
    /// The guest reported that it could not run the plan at all.
    #[error("the guest could not run the plan: {0}")]
    Guest(String),
    /// The guest stopped before reporting every test.
    #[error("the guest stopped before finishing the plan; last console lines:\n{0}")]
    Incomplete(String),
    /// A guest line did not parse.
    #[error("unreadable guest line {line:?}: {source}")]
    GuestLine {
        /// The line.
        line: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The tracer's output did not parse.
    #[error(transparent)]
    Trace(#[from] record::ParseError),
}

/// How to run the Linux target.
#[derive(Clone, Debug)]
pub struct LinuxConfig {
    /// QEMU binary.
    pub qemu: PathBuf,
    /// Kernel image (bzImage/vmlinuz).
    pub kernel: PathBuf,
    /// The tracer plugin (`libcommuter_tracer.so`); `None` boots plain TCG, which checks
    /// results and times calls but records nothing.
    pub plugin: Option<PathBuf>,
    /// The static guest binary that becomes `/init`.
    pub guest: PathBuf,
    /// Directory for the initramfs, console log, plugin log and trace.
    pub work_dir: PathBuf,
    /// Kill the VM after this long.
    pub timeout: Duration,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Also ask the plugin for the raw access log (`raw.txt`; large).
    pub raw_log: bool,
    /// The kernel's slab layout (from the debug vmlinux: `commuter_scan::slab_layout`), passed
    /// to the plugin so that it names the slab cache of shared heap locations; `None` leaves
    /// them unnamed.
    pub slab: Option<SlabLayout>,
    /// Where the kernel keeps its per-CPU areas (from the debug vmlinux's symbols:
    /// `commuter_scan::Symbols::percpu_layout`), passed to the plugin so that it places shared
    /// locations in them; `None` leaves them unplaced.
    pub percpu: Option<PercpuLayout>,
    /// Kernel command-line arguments after [`kernel_cmdline`]'s (a self-built kernel's needs, or
    /// a deliberate change of the platform in tests).
    pub kernel_args: Vec<String>,
    /// Also trace user-mode code inside the calls (the plugin's `user=on`): the guest's own
    /// loads and stores are compared too, tagged user. Scan them with
    /// [`LinuxConfig::user_binary`].
    pub user: bool,
}

impl LinuxConfig {
    /// A configuration with QEMU from `PATH` and the kernel from [`KERNEL_ENV`] or
    /// `<repo>/.cache/linux/vmlinuz` (where `scripts/install-linux-target` puts it); checks that
    /// every input exists.
    pub fn locate(
        repo: &Path,
        plugin: PathBuf,
        guest: PathBuf,
        work_dir: PathBuf,
    ) -> Result<LinuxConfig, LinuxError> {
        Self::locate_with_kernel(repo, None, plugin, guest, work_dir)
    }

    /// Like [`LinuxConfig::locate`], with the kernel image given explicitly when `Some`.
    pub fn locate_with_kernel(
        repo: &Path,
        kernel: Option<PathBuf>,
        plugin: PathBuf,
        guest: PathBuf,
        work_dir: PathBuf,
    ) -> Result<LinuxConfig, LinuxError> {
        Self::locate_inner(repo, kernel, Some(plugin), guest, work_dir)
    }

    /// Like [`LinuxConfig::locate_with_kernel`] without the tracer plugin: plain TCG, the
    /// baseline against which the plugin's overhead is measured.
    pub fn locate_untraced(
        repo: &Path,
        kernel: Option<PathBuf>,
        guest: PathBuf,
        work_dir: PathBuf,
    ) -> Result<LinuxConfig, LinuxError> {
        Self::locate_inner(repo, kernel, None, guest, work_dir)
    }

    fn locate_inner(
        repo: &Path,
        kernel: Option<PathBuf>,
        plugin: Option<PathBuf>,
        guest: PathBuf,
        work_dir: PathBuf,
    ) -> Result<LinuxConfig, LinuxError> {
        let kernel = kernel
            .or_else(|| std::env::var_os(KERNEL_ENV).map(PathBuf::from))
            .unwrap_or_else(|| repo.join(".cache/linux/vmlinuz"));
        let cfg = LinuxConfig {
            qemu: find_in_path(QEMU).ok_or(LinuxError::QemuNotFound)?,
            kernel,
            plugin,
            guest,
            work_dir,
            timeout: Duration::from_secs(90),
            memory_mib: 512,
            raw_log: false,
            slab: None,
            percpu: None,
            kernel_args: Vec::new(),
            user: false,
        };
        cfg.check()?;
        Ok(cfg)
    }

    /// The static binary whose user-mode code the plugin traced (the guest runner that is
    /// `/init`), when user-mode tracing is on: open it with `commuter_scan::UserBinary::open`
    /// and pass it to `commuter_scan::scan_with` to name user-mode sites and user memory.
    pub fn user_binary(&self) -> Option<&Path> {
        self.user.then_some(self.guest.as_path())
    }

    /// Checks that the kernel, plugin (if any) and guest exist.
    pub fn check(&self) -> Result<(), LinuxError> {
        if !self.kernel.is_file() {
            return Err(LinuxError::KernelNotFound(self.kernel.clone()));
        }
        if let Some(plugin) = self.plugin.as_ref().filter(|p| !p.is_file()) {
            return Err(LinuxError::PluginNotFound(plugin.clone()));
        }
        if !self.guest.is_file() {
            return Err(LinuxError::GuestNotFound(self.guest.clone()));
        }
        Ok(())
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What one call did, as the guest reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// The result matched the plan's expectation.
    pub ok: bool,
    /// How it did not.
    pub mismatches: Vec<String>,
    /// What the call returned.
    pub actual: Actual,
    /// How long the call took by the guest's clock, measured around the system call alone
    /// (inside the tracer's markers when traced). `None` from older guests and for calls that
    /// faulted.
    pub elapsed: Option<Duration>,
}

/// Everything known about one test after a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestOutcome {
    /// Index in the plan.
    pub index: usize,
    /// Name from the plan.
    pub name: String,
    /// Each call's result, call A's first (None if the guest did not report it).
    pub calls: Vec<Option<CallOutcome>>,
    /// Errors the guest reported for this test.
    pub errors: Vec<String>,
    /// The tracer's record (None if the tracer wrote none, or ran without the plugin).
    pub trace: Option<TestRecord>,
}

impl TestOutcome {
    /// What the conflict scanner needs from this test; `id` and `calls` are the test's id and
    /// call names in `tests.json`.
    pub fn to_scan(&self, id: String, calls: Vec<String>) -> commuter_scan::TestRun {
        use commuter_scan::schema::{ErrorKind, TestError};
        let check = |c: &Option<CallOutcome>| {
            c.as_ref().map(|c| commuter_scan::CallCheck {
                ok: c.ok,
                mismatches: c.mismatches.clone(),
            })
        };
        let errors = self.errors.iter().map(|m| TestError {
            kind: ErrorKind::Guest,
            message: m.clone(),
        });
        commuter_scan::TestRun {
            id,
            calls,
            record: self.trace.clone(),
            results: self.calls.iter().map(check).collect(),
            errors: errors.collect(),
        }
    }

    /// Whether the two calls shared memory: `None` when the test did not run cleanly enough to
    /// say (guest errors, no trace, or an incomplete trace).
    pub fn conflict_free(&self) -> Option<bool> {
        if !self.errors.is_empty() {
            return None;
        }
        self.trace.as_ref()?.conflict_free()
    }
}

/// The result of one boot.
#[derive(Clone, Debug)]
pub struct LinuxRun {
    /// One entry per plan test, in plan order.
    pub tests: Vec<TestOutcome>,
    /// The kernel and clocksource the guest saw (`None` from guests before report version 3).
    pub platform: Option<Platform>,
    /// Wall-clock time of the boot.
    pub elapsed: Duration,
    /// Where the console log, plugin log and trace are.
    pub work_dir: PathBuf,
}

const CONSOLE: &str = "console.log";
const QEMU_LOG: &str = "qemu.log";
const PLUGIN_LOG: &str = "plugin.log";
const TRACE: &str = "trace.jsonl";

/// Boots the kernel with `plan`, waits for the guest to power off, and collects the results.
pub fn run(cfg: &LinuxConfig, plan: &Plan) -> Result<LinuxRun, LinuxError> {
    let plan_json = plan.to_json();
    let boot = boot(
        cfg,
        &Payload {
            files: vec![("plan.json", plan_json.as_bytes())],
            cpus: plan.cpus.clone(),
            init_args: Vec::new(),
        },
    )?;
    let (tests, platform) = collect(plan, &boot.console, boot.trace)?;
    Ok(LinuxRun {
        tests,
        platform,
        elapsed: boot.elapsed,
        work_dir: cfg.work_dir.clone(),
    })
}

/// How many tests of a boot still running in `work_dir` have finished, from the console the
/// guest writes as it goes (a test ends with an error or its last call's result; call B's, the
/// second, counts it: every test has one, and a third call follows it at once).
pub fn finished_tests(work_dir: &Path) -> u64 {
    count_console_lines(work_dir, |line| {
        matches!(
            GuestLine::parse(line),
            Some(Ok(
                GuestLine::Result { call: 1, .. } | GuestLine::Error { test: Some(_), .. }
            ))
        )
    })
}

/// Lines of the console of a boot in `work_dir` (running or not) that `counts`; 0 before the
/// console exists.
pub fn count_console_lines(work_dir: &Path, counts: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_to_string(work_dir.join(CONSOLE)).map_or(0, |console| {
        console.lines().filter(|l| counts(l)).count() as u64
    })
}

/// Logs where the guest's time went (its done line), for `bench/run-breakdown`.
fn log_guest_timing(t: &Timing) {
    let s = |ns: u64| Duration::from_nanos(ns).as_secs_f64();
    tracing::debug!(
        boot = s(t.boot_ns),
        setup = s(t.setup_ns),
        processes = s(t.processes_ns),
        calls = s(t.calls_ns),
        teardown = s(t.teardown_ns),
        report = s(t.report_ns),
        settle = s(t.settle_ns),
        "guest time (seconds)"
    );
}

/// What a boot gives `/init` (the configuration's guest binary) besides itself.
pub struct Payload<'a> {
    /// Files in the initramfs's root: (name, content).
    pub files: Vec<(&'a str, &'a [u8])>,
    /// The CPU of each call, call A's first (isolated on the kernel command line; the VM gets
    /// one more for setup: `n + 1` vCPUs for `n` calls on CPUs 1 to `n`). The plugin is told
    /// how many calls a test has. Empty: no calls (a traced workload), nothing isolated.
    pub cpus: Vec<u32>,
    /// Arguments for `/init`, after `--` on the kernel command line.
    pub init_args: Vec<String>,
}

/// What one boot left: the serial console and the tracer's records.
pub struct Boot {
    pub console: String,
    /// Empty when booted without the plugin.
    pub trace: Vec<TestRecord>,
    pub elapsed: Duration,
}

/// Boots the kernel with the guest binary as `/init` and `payload`, and waits for the guest to
/// power off (or the timeout).
pub fn boot(cfg: &LinuxConfig, payload: &Payload) -> Result<Boot, LinuxError> {
    let start = Instant::now();
    let console = boot_with(cfg, payload, &[])?;
    let trace = match cfg.plugin {
        Some(_) => record::parse_jsonl(&read(&cfg.work_dir.join(TRACE))?)?,
        None => Vec::new(),
    };
    Ok(Boot {
        console,
        trace,
        elapsed: start.elapsed(),
    })
}

/// Like [`boot`], with `plugin_args` appended to the plugin's arguments (another mode of the
/// plugin, e.g. `mode=reftrace`), and without reading the plugin's output: the console is
/// returned, the output is at [`plugin_output`].
pub fn boot_with(
    cfg: &LinuxConfig,
    payload: &Payload,
    plugin_args: &[String],
) -> Result<String, LinuxError> {
    cfg.check()?;
    prepare_work_dir(cfg, payload)?;
    let mut command = qemu_command(cfg, payload, plugin_args)?;
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(LinuxError::Spawn)?;
    let status =
        wait_with_timeout(&mut child, cfg.timeout).map_err(|e| io("wait for", &cfg.qemu, e))?;
    let Some(status) = status else {
        return Err(LinuxError::Timeout {
            timeout: cfg.timeout,
            console: console_tail(cfg),
        });
    };
    if !status.success() {
        return Err(LinuxError::QemuFailed {
            status,
            log: logs_tail(cfg),
        });
    }
    read(&cfg.work_dir.join(CONSOLE))
}

/// The file the plugin writes (its `out=`) in a boot's work directory.
pub fn plugin_output(cfg: &LinuxConfig) -> PathBuf {
    cfg.work_dir.join(TRACE)
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> LinuxError {
    LinuxError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn read(path: &Path) -> Result<String, LinuxError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| io("read", path, e))
}

fn prepare_work_dir(cfg: &LinuxConfig, payload: &Payload) -> Result<(), LinuxError> {
    let dir = &cfg.work_dir;
    if dir.as_os_str().is_empty() {
        return Err(LinuxError::NoWorkDir);
    }
    std::fs::create_dir_all(dir).map_err(|e| io("create directory", dir, e))?;
    // Stale outputs of an earlier run must not be mistaken for this run's.
    for f in [CONSOLE, QEMU_LOG, PLUGIN_LOG, TRACE, "raw.txt"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let init = std::fs::read(&cfg.guest).map_err(|e| io("read", &cfg.guest, e))?;
    let image = linux_initramfs(&init, &payload.files)?;
    let path = dir.join("initramfs.cpio");
    std::fs::write(&path, image).map_err(|e| io("write", &path, e))
}

/// The clocksource the guest must use: reading the TSC is one instruction that touches no
/// memory, as on the many-core machines whose scalability the tests stand for.
pub const CLOCKSOURCE: &str = "tsc";

/// Kernel command line: a quiet console on the serial port, no KASLR (stable addresses for
/// symbolising), and the test CPUs isolated from the scheduler, timer ticks and RCU
/// callbacks so that the traced calls are not interleaved with housekeeping.
///
/// The clock: under TCG the kernel's clocksource watchdog may find the TSC unstable and fall
/// back to the emulated HPET (Debian's 6.1 does), whose read takes a shared lock word, so every
/// call that reads the time (file times, timestamps) would conflict on the virtual platform
/// instead of the kernel. `tsc=reliable` skips the watchdog and `clocksource=tsc` selects it;
/// QEMU's TSC is one counter for all vCPUs, so it is in fact reliable. The guest reports the
/// clocksource it got ([`LinuxRun::platform`]).
pub fn kernel_cmdline(cpus: &[u32]) -> String {
    let list = cpus
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // No call CPUs (a traced workload): every CPU is the scheduler's.
    let isolated = if cpus.is_empty() {
        String::new()
    } else {
        format!("nohz_full={list} isolcpus={list} rcu_nocbs={list} ")
    };
    format!("console=ttyS0 quiet panic=-1 nokaslr {isolated}clocksource={CLOCKSOURCE} tsc=reliable")
}

fn qemu_command(
    cfg: &LinuxConfig,
    payload: &Payload,
    plugin_args: &[String],
) -> Result<Command, LinuxError> {
    let dir = &cfg.work_dir;
    let vcpus = payload.cpus.iter().max().map_or(3, |m| m + 1).max(3);
    let stderr = std::fs::File::create(dir.join(QEMU_LOG)).map_err(|e| io("create", dir, e))?;
    let mut c = Command::new(&cfg.qemu);
    // Multi-threaded TCG (the default): with thread=single QEMU 10.0 reports wrong vCPU indexes.
    c.args([
        "-accel",
        "tcg",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
    ])
    .args([
        "-smp",
        &vcpus.to_string(),
        "-m",
        &cfg.memory_mib.to_string(),
    ])
    .arg("-serial")
    .arg(format!("file:{}", dir.join(CONSOLE).display()))
    .arg("-kernel")
    .arg(&cfg.kernel)
    .arg("-initrd")
    .arg(dir.join("initramfs.cpio"))
    .arg("-append")
    .arg(
        std::iter::once(kernel_cmdline(&payload.cpus))
            .chain(cfg.kernel_args.iter().cloned())
            .chain(init_args(&payload.init_args))
            .collect::<Vec<_>>()
            .join(" "),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(stderr);
    if let Some(path) = &cfg.plugin {
        let mut plugin = format!("{},out={}", path.display(), dir.join(TRACE).display());
        if cfg.raw_log {
            write!(plugin, ",raw={}", dir.join("raw.txt").display()).ok();
        }
        if let Some(slab) = &cfg.slab {
            write!(plugin, ",{}", slab.plugin_arg()).ok();
        }
        if let Some(percpu) = &cfg.percpu {
            write!(plugin, ",{}", percpu.plugin_arg()).ok();
        }
        if cfg.user {
            plugin.push_str(",user=on");
        }
        // Pairs leave it out: the plugin's default, and the command line pairs always had.
        if !payload.cpus.is_empty() && payload.cpus.len() != 2 {
            write!(plugin, ",calls={}", payload.cpus.len()).ok();
        }
        for arg in plugin_args {
            write!(plugin, ",{arg}").ok();
        }
        // The plugin's messages only reach the log with `-d plugin`.
        c.args(["-d", "plugin", "-D"])
            .arg(dir.join(PLUGIN_LOG))
            .args(["-plugin", &plugin]);
    }
    Ok(c)
}

/// The VM must not outlive the driver: killed (even with SIGKILL, as a batch system cancels a
/// job), the driver takes its QEMU with it, and `--resume` continues later. Without this the
/// child is reparented to init and runs its batch to the end (a hung one until its timeout
/// would have been, which nobody is left to enforce).
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid before the fork; after it, the child only makes async-signal-safe
    // system calls (prctl, getppid) before exec.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal.
            if libc::getppid() != parent {
                return Err(std::io::Error::other(
                    "the driver exited while starting QEMU",
                ));
            }
            Ok(())
        });
    }
}

/// `-- ARG...`: what the kernel passes on to `/init`.
fn init_args(args: &[String]) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    std::iter::once("--".to_string())
        .chain(args.iter().cloned())
        .collect()
}

/// Waits for the child; `None` (after killing it) on timeout.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last `lines` lines of `text` (a console, in an error).
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn console_tail(cfg: &LinuxConfig) -> String {
    tail(&read(&cfg.work_dir.join(CONSOLE)).unwrap_or_default(), 20)
}

fn logs_tail(cfg: &LinuxConfig) -> String {
    let mut s = String::new();
    for f in [QEMU_LOG, PLUGIN_LOG] {
        let text = read(&cfg.work_dir.join(f)).unwrap_or_default();
        s.push_str(&tail(&text, 20));
        s.push('\n');
    }
    s
}

/// Joins the guest's console lines and the tracer's records per test; also returns the
/// platform the guest reported.
pub fn collect(
    plan: &Plan,
    console: &str,
    trace: Vec<TestRecord>,
) -> Result<(Vec<TestOutcome>, Option<Platform>), LinuxError> {
    let mut tests: Vec<TestOutcome> = plan
        .tests
        .iter()
        .enumerate()
        .map(|(index, t)| TestOutcome {
            index,
            name: t.name.clone(),
            calls: vec![None; t.calls.len()],
            ..TestOutcome::default()
        })
        .collect();
    let mut done = false;
    let mut platform = None;
    for line in console.lines() {
        let Some(parsed) = GuestLine::parse(line) else {
            continue;
        };
        let parsed = parsed.map_err(|source| LinuxError::GuestLine {
            line: line.into(),
            source,
        })?;
        match &parsed {
            GuestLine::Start { platform: p, .. } => platform.clone_from(p),
            GuestLine::Done {
                timing: Some(t), ..
            } => log_guest_timing(t),
            _ => {}
        }
        done |= apply(&mut tests, parsed)?;
    }
    if !done {
        return Err(LinuxError::Incomplete(tail(console, 20)));
    }
    for rec in trace {
        match usize::try_from(rec.test)
            .ok()
            .and_then(|i| tests.get_mut(i))
        {
            Some(t) => t.trace = Some(rec),
            None => {
                return Err(LinuxError::Guest(format!(
                    "the tracer reported unknown test {}",
                    rec.test
                )));
            }
        }
    }
    Ok((tests, platform))
}

/// Applies one guest line; true when it is the final `done` line.
fn apply(tests: &mut [TestOutcome], line: GuestLine) -> Result<bool, LinuxError> {
    let unknown = |i: usize| LinuxError::Guest(format!("the guest reported unknown test {i}"));
    match line {
        GuestLine::Start { .. } => {}
        GuestLine::Done { .. } => return Ok(true),
        GuestLine::Error {
            test: None,
            message,
        } => return Err(LinuxError::Guest(message)),
        GuestLine::Error {
            test: Some(i),
            message,
        } => tests
            .get_mut(i)
            .ok_or_else(|| unknown(i))?
            .errors
            .push(message),
        GuestLine::Result {
            test,
            call,
            ok,
            mismatches,
            actual,
            elapsed_ns,
        } => {
            let slot = tests
                .get_mut(test)
                .and_then(|t| t.calls.get_mut(call))
                .ok_or_else(|| unknown(test))?;
            *slot = Some(CallOutcome {
                ok,
                mismatches,
                actual,
                elapsed: elapsed_ns.map(Duration::from_nanos),
            });
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_guest::plan::{Call, Expect, Op, Ret, Test};
    use commuter_trace_format::record::RECORD_VERSION;

    fn plan(n: usize) -> Plan {
        let call = Call {
            proc: 0,
            op: Op::Getpid,
            expect: Expect {
                ret: Ret::AnyOk,
                data: None,
                stat: None,
                fds: None,
            },
        };
        let test = Test {
            name: "t".into(),
            setup: Default::default(),
            calls: vec![call.clone(), call],
        };
        Plan {
            version: 1,
            cpus: vec![1, 2],
            tests: vec![test; n],
        }
    }

    fn record(test: u64) -> TestRecord {
        TestRecord {
            v: RECORD_VERSION,
            test,
            calls: vec![],
            overflow: false,
            shared: vec![],
            false_sharing: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn collect_joins_console_and_trace() {
        let console = "\
[ 1.0] booting\r
@@commuter {\"event\":\"start\",\"version\":1,\"tests\":2}\r
@@commuter {\"event\":\"result\",\"test\":0,\"call\":1,\"ok\":true,\"mismatches\":[],\"actual\":{\"ret\":5}}\r
@@commuter {\"event\":\"error\",\"test\":1,\"message\":\"setup: boom\"}\r
@@commuter {\"event\":\"done\",\"tests\":2}\r\n";
        let (t, platform) = collect(&plan(2), console, vec![record(0)]).unwrap();
        assert_eq!(platform, None, "a version 1 guest reports no platform");
        assert_eq!(t[0].calls[1].as_ref().unwrap().actual.ret, 5);
        // A version 1 guest line: no call time.
        assert_eq!(t[0].calls[1].as_ref().unwrap().elapsed, None);
        assert!(t[0].calls[0].is_none());
        assert_eq!(t[0].conflict_free(), Some(true));
        assert_eq!(t[1].errors, vec!["setup: boom".to_string()]);
        assert_eq!(t[1].conflict_free(), None);
    }

    #[test]
    fn a_running_boot_counts_tests_ended_by_a_second_result_or_an_error() {
        let dir = std::env::temp_dir().join(format!("commuter-finished-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(finished_tests(&dir), 0, "no console yet");
        let console = "\
@@commuter {\"event\":\"start\",\"version\":1,\"tests\":4}\r
@@commuter {\"event\":\"result\",\"test\":0,\"call\":0,\"ok\":true,\"mismatches\":[],\"actual\":{\"ret\":5}}\r
@@commuter {\"event\":\"result\",\"test\":0,\"call\":1,\"ok\":true,\"mismatches\":[],\"actual\":{\"ret\":5}}\r
@@commuter {\"event\":\"error\",\"test\":1,\"message\":\"setup: boom\"}\r
[ 9.0] kernel noise\r
@@commuter {\"event\":\"result\",\"test\":2,\"call\":0,\"ok\":true,\"mismatches\":[],\"actual\":{\"ret\":5}}\r
@@commuter {\"event\":\"resu";
        std::fs::write(dir.join(CONSOLE), console).unwrap();
        assert_eq!(finished_tests(&dir), 2, "test 2 has one result so far");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn collect_reports_missing_done_and_guest_failures() {
        let start = "@@commuter {\"event\":\"start\",\"version\":1,\"tests\":1}\n";
        assert!(matches!(
            collect(&plan(1), start, vec![]),
            Err(LinuxError::Incomplete(_))
        ));
        let fatal = "@@commuter {\"event\":\"error\",\"message\":\"read /plan.json: nope\"}\n";
        assert!(
            matches!(collect(&plan(1), fatal, vec![]), Err(LinuxError::Guest(m)) if m.contains("nope"))
        );
        let done = "@@commuter {\"event\":\"done\",\"tests\":1}\n";
        assert!(matches!(
            collect(&plan(1), done, vec![record(4)]),
            Err(LinuxError::Guest(_))
        ));
    }

    #[test]
    fn result_lines_give_the_call_time() {
        let console = "\
@@commuter {\"event\":\"start\",\"version\":1,\"report\":2,\"tests\":1}\r
@@commuter {\"event\":\"result\",\"test\":0,\"call\":0,\"ok\":true,\"mismatches\":[],\"actual\":{\"ret\":0},\"elapsed_ns\":1500}\r
@@commuter {\"event\":\"result\",\"test\":0,\"call\":1,\"ok\":false,\"mismatches\":[\"x\"],\"actual\":{\"ret\":-1,\"signal\":\"SIGSEGV\"}}\r
@@commuter {\"event\":\"done\",\"tests\":1}\r\n";
        // Without the plugin there are no records; the times are all there is.
        let (t, _) = collect(&plan(1), console, vec![]).unwrap();
        let calls: Vec<&CallOutcome> = t[0].calls.iter().flatten().collect();
        assert_eq!(calls[0].elapsed, Some(Duration::from_nanos(1500)));
        assert_eq!(calls[1].elapsed, None, "a faulted call has no time");
        assert_eq!(t[0].trace, None);
        let bad = console.replace("1500", "-3");
        assert!(matches!(
            collect(&plan(1), &bad, vec![]),
            Err(LinuxError::GuestLine { .. })
        ));
    }

    #[test]
    fn cmdline_isolates_the_test_cpus() {
        let c = kernel_cmdline(&[1, 2]);
        assert!(c.contains("isolcpus=1,2") && c.contains("nokaslr") && c.contains("console=ttyS0"));
        assert!(c.contains("clocksource=tsc tsc=reliable"), "{c}");
        let c = kernel_cmdline(&[]);
        assert!(!c.contains("isolcpus") && c.contains("nokaslr"), "{c}");
        let c = kernel_cmdline(&[1, 2, 3]);
        assert!(
            c.contains("nohz_full=1,2,3 isolcpus=1,2,3 rcu_nocbs=1,2,3"),
            "{c}"
        );
    }

    #[test]
    fn missing_inputs_name_the_fix() {
        let cfg = LinuxConfig {
            qemu: "qemu".into(),
            kernel: "/nonexistent/vmlinuz".into(),
            plugin: Some("p.so".into()),
            guest: "g".into(),
            work_dir: "w".into(),
            timeout: Duration::from_secs(1),
            memory_mib: 512,
            raw_log: false,
            slab: None,
            percpu: None,
            kernel_args: Vec::new(),
            user: false,
        };
        assert_eq!(
            cfg.user_binary(),
            None,
            "user-mode tracing is off by default"
        );
        let msg = cfg.check().unwrap_err().to_string();
        assert!(msg.contains("scripts/install-linux-target"), "{msg}");
        // Without a plugin, a missing plugin file is no problem; the next missing input is named.
        let untraced = LinuxConfig {
            kernel: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            plugin: None,
            ..cfg
        };
        assert!(matches!(
            untraced.check(),
            Err(LinuxError::GuestNotFound(_))
        ));
    }
}
