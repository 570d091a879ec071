//! Running a whole test suite on a target: the seam every target implements.
//!
//! A [`Target`] knows how to prepare one test and how to run a batch of prepared tests (one VM
//! boot). [`run_suite`] does the rest for every target alike: batching, several VMs at once,
//! a work directory that a killed run resumes from (each finished batch is scanned and saved at
//! once, atomically), batches whose VM crashed or hung marked test by test, tests the target
//! cannot run recorded with the reason, and the final `conflicts.json` in the suite's order.
//! Progress and warnings go to the caller's [`Events`]; nothing here prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

use commuter_guest::report::Platform;
use commuter_scan::schema::{
    ErrorKind, Target as TargetInfo, TestConflicts, TestError, natural_cmp,
};
use commuter_scan::{
    CONFLICTS_SCHEMA, CONFLICTS_VERSION, ConflictsFile, Shard, Symbols, TestRun, UserBinary, scan,
    scan_with,
};
use commuter_tests_format::{TestCase, TestSuite};

use crate::shard::{self, ShardSpec};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A place tests run: an implementation (a kernel, a user-space library) on a platform.
pub trait Target: Sync {
    /// A test ready to run (e.g. a guest plan's test).
    type Prepared: Send + Sync;

    /// What `conflicts.json` records about the target (name, version).
    fn describe(&self) -> TargetInfo;

    /// Whether this target runs tests of this suite at all (its model, its call-set size).
    fn check_suite(&self, suite: &TestSuite) -> Result<(), SuiteError>;

    /// One test ready to run, or why this target cannot run it (recorded with the test).
    fn prepare(&self, test: &TestCase) -> Result<Self::Prepared, String>;

    /// Runs one batch in `work_dir` (one VM boot): a [`TestRun`] per test in the batch's order,
    /// or why the whole batch failed (then every test of it is marked with the reason).
    fn run_batch(
        &self,
        batch: &[&Item<Self::Prepared>],
        work_dir: &Path,
    ) -> Result<BatchRun, String>;

    /// How many tests of a batch still running in `work_dir` have finished, judged from the
    /// files it writes as it goes (for progress within a long batch; 0 if the target cannot
    /// tell, then a batch counts when it ends).
    fn finished_in(&self, _work_dir: &Path) -> u64 {
        0
    }

    /// The symbol tables conflicts are named with; opened once, on the scanning thread.
    fn open_symbols(&self, events: &dyn Events) -> SymbolTables;

    /// What is wrong with the platform a batch ran on (checked once per run).
    fn platform_warnings(&self, _platform: &Platform, _symbols: Option<&Symbols>) -> Vec<String> {
        Vec::new()
    }
}

/// What conflicts are named with: the kernel's debug image, and the runner binary of a
/// user-space target (its own DWARF names user-mode code and memory).
#[derive(Default)]
pub struct SymbolTables {
    pub kernel: Option<Symbols>,
    pub user: Option<UserBinary>,
}

/// A test of the suite with what the target made of it.
pub struct Item<P> {
    /// The test's id in `tests.json`.
    pub id: String,
    /// Its call names, slot a first.
    pub calls: Vec<String>,
    /// The prepared test, or why the target cannot run it.
    pub test: Result<P, String>,
}

/// What one batch gave.
pub struct BatchRun {
    /// One per test of the batch, in its order.
    pub runs: Vec<TestRun>,
    /// The platform the guest reported, if it did.
    pub platform: Option<Platform>,
}

/// What the caller sees of a run.
pub trait Events: Sync {
    /// The run starts: this many tests will run (some may be done already, see `progress`).
    fn start(&self, tests: u64);
    /// This many more tests are done (run now, or found in the work directory).
    fn progress(&self, tests: u64);
    /// Something the user should know while the run goes on.
    fn warn(&self, message: &str);
}

/// How to run a suite.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// VMs at once.
    pub vms: usize,
    /// Tests per VM boot.
    pub batch: usize,
    /// Keep the batches the work directory already holds.
    pub resume: bool,
    /// Where batches and VM files go.
    pub work_dir: PathBuf,
    /// Run only this part of the suite (see [`crate::shard`]); the result names it.
    pub shard: Option<ShardSpec>,
}

/// Why a suite cannot run on a target.
#[derive(Debug, Error)]
pub enum SuiteError {
    #[error("the {target} target runs tests of the {expected} model; this suite is of `{found}`")]
    Model {
        target: String,
        expected: String,
        found: String,
    },
    #[error("the {target} target runs {runs}; the suite has the call set {call_set}")]
    Arity {
        target: String,
        /// What the target runs, e.g. "pairs of calls".
        runs: String,
        call_set: String,
    },
}

/// Refuses a suite with a call set of other than two calls (`target` names the target).
pub fn pairs_only(target: &str, suite: &TestSuite) -> Result<(), SuiteError> {
    match suite.call_sets.iter().find(|c| c.calls.len() != 2) {
        Some(cs) => Err(SuiteError::Arity {
            target: target.into(),
            runs: "pairs of calls (testgen -n 2)".into(),
            call_set: cs.name(),
        }),
        None => Ok(()),
    }
}

/// Why a run stopped.
#[derive(Debug, Error)]
pub enum RunError {
    /// The user asked for something impossible: the message names the fix.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("{what} `{path}`: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// Whether the error is the user's to fix (as opposed to a failure of the run).
    pub fn is_usage(&self) -> bool {
        matches!(self, RunError::Usage(_) | RunError::Suite(_))
    }
}

/// What identifies a run, so `--resume` never mixes batches of different runs.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Manifest {
    tests_digest: String,
    batch: usize,
    batches: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<ShardSpec>,
}

/// Runs every test of `suite` (whose file content is `suite_bytes`, to tell runs apart on
/// resume) on `target`; returns the scanned conflicts of all tests in the suite's order.
pub fn run_suite<T: Target>(
    target: &T,
    suite: &TestSuite,
    suite_bytes: &[u8],
    options: &RunOptions,
    events: &dyn Events,
) -> Result<ConflictsFile, RunError> {
    if options.vms == 0 || options.batch == 0 {
        return Err(RunError::Usage(
            "--jobs/--vms and --batch must be at least 1".into(),
        ));
    }
    target.check_suite(suite)?;
    let items = prepare(target, suite, options.shard);
    let runnable: Vec<&Item<T::Prepared>> = items.iter().filter(|i| i.test.is_ok()).collect();
    let batches: Vec<&[&Item<T::Prepared>]> = runnable.chunks(options.batch).collect();
    prepare_work_dir(&options.work_dir, suite_bytes, options, batches.len())?;
    let info = target.describe();
    events.start(runnable.len() as u64);
    let started = std::time::Instant::now();
    let symbols = target.open_symbols(events);
    let symbols_seconds = started.elapsed().as_secs_f64();
    tracing::debug!(symbols_seconds, "symbols opened");
    let mut tests = Runner {
        target,
        work: &options.work_dir,
        info: &info,
        symbols: &symbols,
        events,
    }
    .run_batches(&batches, options.vms)?;
    tests.extend(scan(info.clone(), &unrunnable(&items), None).tests);
    tests.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    Ok(ConflictsFile {
        schema: CONFLICTS_SCHEMA.into(),
        version: CONFLICTS_VERSION,
        target: TargetInfo {
            symbols: symbols.kernel.as_ref().map(|s| s.name().to_string()),
            ..info
        },
        shard: options.shard.map(|s| Shard {
            index: s.index,
            count: s.count,
            suite_digest: digest(suite_bytes),
            suite_tests: shard::tests(suite).count(),
        }),
        tests,
    })
}

/// The tests to run (all, or those of `shard`), each prepared for the target.
fn prepare<T: Target>(
    target: &T,
    suite: &TestSuite,
    shard: Option<ShardSpec>,
) -> Vec<Item<T::Prepared>> {
    let mine = shard.map(|s| shard::select(suite, s));
    shard::tests(suite)
        .enumerate()
        .filter(|(i, _)| mine.as_ref().is_none_or(|m| m[*i]))
        .map(|(_, t)| Item {
            id: t.id.clone(),
            calls: t.calls.iter().map(|c| c.call.clone()).collect(),
            test: target.prepare(t),
        })
        .collect()
}

fn unrunnable<P>(items: &[Item<P>]) -> Vec<TestRun> {
    items
        .iter()
        .filter_map(|i| {
            let reason = i.test.as_ref().err()?;
            Some(TestRun {
                id: i.id.clone(),
                calls: i.calls.clone(),
                errors: vec![TestError {
                    kind: ErrorKind::Guest,
                    message: format!("cannot run on this target: {reason}"),
                }],
                ..TestRun::default()
            })
        })
        .collect()
}

/// Every test of a failed batch, marked with why.
fn failed_batch<P>(batch: &[&Item<P>], message: &str) -> Vec<TestRun> {
    batch
        .iter()
        .map(|item| TestRun {
            id: item.id.clone(),
            calls: item.calls.clone(),
            errors: vec![TestError {
                kind: ErrorKind::Vm,
                message: message.to_string(),
            }],
            ..TestRun::default()
        })
        .collect()
}

fn digest(bytes: &[u8]) -> String {
    shard::suite_digest(bytes)
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

fn prepare_work_dir(
    work: &Path,
    suite: &[u8],
    options: &RunOptions,
    batches: usize,
) -> Result<(), RunError> {
    let manifest = Manifest {
        tests_digest: digest(suite),
        batch: options.batch,
        batches,
        shard: options.shard,
    };
    let path = work.join("run.json");
    if options.resume {
        let found: Option<Manifest> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match found {
            Some(m) if m == manifest => return Ok(()),
            Some(_) => {
                return Err(RunError::Usage(format!(
                    "{} belongs to another run (other tests, --batch or --shard); run without --resume to start over",
                    work.display()
                )));
            }
            None => {}
        }
    } else if work.exists() {
        std::fs::remove_dir_all(work).map_err(io("clearing", work))?;
    }
    std::fs::create_dir_all(work)
        .map_err(|e| RunError::Usage(format!("cannot create `{}`: {e}", work.display())))?;
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other);
    write_atomic(&path, &bytes.map_err(io("writing", &path))?)
}

/// Writes `bytes` beside `path` and renames it into place: a reader (a resumed run) never sees
/// half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    use std::io::Write;
    let temp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&temp).map_err(io("writing", &temp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io("writing", &temp))?;
    std::fs::rename(&temp, path).map_err(io("moving into place", path))
}

fn batch_file(work: &Path, i: usize) -> PathBuf {
    work.join(format!("batch-{i:05}.json"))
}

struct Runner<'a, T: Target> {
    target: &'a T,
    work: &'a Path,
    info: &'a TargetInfo,
    symbols: &'a SymbolTables,
    events: &'a dyn Events,
}

/// What a VM thread tells the scanning thread.
enum VmEvent {
    Started(usize),
    Finished(usize, BatchRun),
}

fn vm_dir(work: &Path, batch: usize) -> PathBuf {
    work.join(format!("vm-{batch:05}"))
}

/// Boots one batch; a failed boot marks every test of the batch with the reason.
fn run_one_batch<T: Target>(
    target: &T,
    batch: &[&Item<T::Prepared>],
    dir: &Path,
    i: usize,
) -> BatchRun {
    let started = std::time::Instant::now();
    let run = target.run_batch(batch, dir);
    let vm_seconds = started.elapsed().as_secs_f64();
    tracing::debug!(batch = i, tests = batch.len(), vm_seconds, "batch ran");
    run.unwrap_or_else(|e| {
        tracing::warn!(batch = i, error = %e, "VM failed");
        BatchRun {
            runs: failed_batch(batch, &e),
            platform: None,
        }
    })
}

impl<T: Target> Runner<'_, T> {
    /// Scans batches as they finish (symbol tables are not shared between threads) and
    /// reports progress, also within running batches, until every VM thread is done.
    fn collect_batches(
        &self,
        receive: &mpsc::Receiver<VmEvent>,
        batches: &[&[&Item<T::Prepared>]],
        done: &mut Vec<TestConflicts>,
    ) -> Result<(), RunError> {
        // Per running batch: tests already reported as progress.
        let mut running: BTreeMap<usize, u64> = BTreeMap::new();
        // The platform is the same in every boot of a run: checked once.
        let mut platform_checked = false;
        loop {
            match receive.recv_timeout(std::time::Duration::from_secs(1)) {
                Ok(VmEvent::Started(i)) => {
                    running.insert(i, 0);
                }
                Ok(VmEvent::Finished(i, run)) => {
                    let reported = running.remove(&i).unwrap_or(0);
                    if !platform_checked && let Some(p) = &run.platform {
                        for w in self
                            .target
                            .platform_warnings(p, self.symbols.kernel.as_ref())
                        {
                            self.events.warn(&w);
                        }
                        platform_checked = true;
                    }
                    done.extend(self.scan_batch(i, &run)?);
                    self.events
                        .progress((run.runs.len() as u64).saturating_sub(reported));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
            for (i, reported) in running.iter_mut() {
                let finished = self
                    .target
                    .finished_in(&vm_dir(self.work, *i))
                    .min(batches[*i].len() as u64);
                if finished > *reported {
                    self.events.progress(finished - *reported);
                    *reported = finished;
                }
            }
        }
    }

    /// Names a finished batch's conflicts and keeps them in the work directory (for resume).
    fn scan_batch(&self, i: usize, run: &BatchRun) -> Result<Vec<TestConflicts>, RunError> {
        let (kernel, user) = (self.symbols.kernel.as_ref(), self.symbols.user.as_ref());
        let started = std::time::Instant::now();
        let tests = scan_with(self.info.clone(), &run.runs, kernel, user).tests;
        let scan_seconds = started.elapsed().as_secs_f64();
        tracing::debug!(batch = i, scan_seconds, "batch scanned");
        let bytes = serde_json::to_vec(&tests).map_err(std::io::Error::other);
        let path = batch_file(self.work, i);
        write_atomic(&path, &bytes.map_err(io("writing", &path))?)?;
        Ok(tests)
    }

    /// Runs every batch not already done, `vms` at a time; returns all tests' conflicts.
    fn run_batches(
        &self,
        batches: &[&[&Item<T::Prepared>]],
        vms: usize,
    ) -> Result<Vec<TestConflicts>, RunError> {
        let mut done = Vec::new();
        let mut pending = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            match std::fs::read(batch_file(self.work, i))
                .ok()
                .and_then(|b| serde_json::from_slice::<Vec<TestConflicts>>(&b).ok())
            {
                Some(tests) => {
                    self.events.progress(batch.len() as u64);
                    done.extend(tests);
                }
                None => pending.push(i),
            }
        }
        let (send, receive) = mpsc::channel::<VmEvent>();
        let queue = Mutex::new(pending.clone().into_iter());
        // The VM threads see the target and the batches only (symbol tables stay here).
        let (target, work) = (self.target, self.work);
        std::thread::scope(|scope| -> Result<(), RunError> {
            for _ in 0..vms.min(pending.len()) {
                let send = send.clone();
                let queue = &queue;
                scope.spawn(move || {
                    while let Some(i) = queue.lock().ok().and_then(|mut q| q.next()) {
                        if send.send(VmEvent::Started(i)).is_err() {
                            return;
                        }
                        let run = run_one_batch(target, batches[i], &vm_dir(work, i), i);
                        if send.send(VmEvent::Finished(i, run)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(send);
            self.collect_batches(&receive, batches, &mut done)
        })?;
        Ok(done)
    }
}
