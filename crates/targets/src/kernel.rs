//! The Linux kernel as a target of POSIX-model tests: each test becomes a guest plan test
//! ([`posix`](crate::posix)), batches boot the stock kernel under the tracer
//! ([`linux`](crate::linux)), and conflicts are named with the kernel's debug image.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use commuter_guest::plan::{MAX_CALLS, PLAN_VERSION, Plan, Test};
use commuter_guest::report::Platform;
use commuter_scan::Symbols;
use commuter_scan::schema::Target as TargetInfo;
use commuter_tests_format::{TestCase, TestSuite};

use crate::linux::{self, LinuxConfig};
use crate::posix::{PosixTest, plan_test};
use crate::suite::{BatchRun, Events, Item, SuiteError, SymbolTables, Target};

/// Runs POSIX tests on a Linux kernel under the tracer.
pub struct LinuxKernel {
    cfg: LinuxConfig,
    symbols: KernelSymbols,
}

impl LinuxKernel {
    /// A kernel target booting `cfg` (its `work_dir` is replaced per batch) and naming what it
    /// finds with the debug image `vmlinux`; without a usable one, conflicts stay unnamed and
    /// the run says why.
    pub fn new(mut cfg: LinuxConfig, vmlinux: &Path) -> LinuxKernel {
        let symbols = KernelSymbols::open(&mut cfg, vmlinux);
        LinuxKernel { cfg, symbols }
    }
}

impl Target for LinuxKernel {
    type Prepared = Test;

    fn describe(&self) -> TargetInfo {
        TargetInfo {
            name: "linux".into(),
            version: kernel_version(&self.cfg.kernel),
            symbols: None,
        }
    }

    fn check_suite(&self, suite: &TestSuite) -> Result<(), SuiteError> {
        if suite.model != "posix" {
            return Err(SuiteError::Model {
                target: "linux".into(),
                expected: "posix".into(),
                found: suite.model.clone(),
            });
        }
        // One CPU per call: a boot runs one call count, so a suite mixes none.
        let mut counts: Vec<usize> = suite.call_sets.iter().map(|c| c.calls.len()).collect();
        counts.sort_unstable();
        counts.dedup();
        match counts.as_slice() {
            [] => Ok(()),
            [n] if (2..=MAX_CALLS).contains(n) => Ok(()),
            _ => {
                let odd = suite
                    .call_sets
                    .iter()
                    .find(|c| {
                        !(2..=MAX_CALLS).contains(&c.calls.len()) || c.calls.len() != counts[0]
                    })
                    .map(|c| c.name())
                    .unwrap_or_default();
                Err(SuiteError::Arity {
                    target: "linux".into(),
                    runs: format!(
                        "call sets of 2 to {MAX_CALLS} calls, all of one size (generate pairs and triples as separate suites)"
                    ),
                    call_set: odd,
                })
            }
        }
    }

    fn prepare(&self, test: &TestCase) -> Result<Test, String> {
        translate_test(test)
    }

    fn run_batch(&self, batch: &[&Item<Test>], work_dir: &Path) -> Result<BatchRun, String> {
        // Call slot i on CPU i + 1 (CPU 0 sets up); every test of a suite has as many calls.
        let calls = batch.first().map_or(2, |item| item.calls.len());
        let plan = Plan {
            version: PLAN_VERSION,
            cpus: (1..=calls as u32).collect(),
            tests: batch
                .iter()
                .filter_map(|item| item.test.as_ref().ok().cloned())
                .collect(),
        };
        let cfg = LinuxConfig {
            work_dir: work_dir.to_path_buf(),
            ..self.cfg.clone()
        };
        let run = linux::run(&cfg, &plan).map_err(|e| e.to_string())?;
        Ok(BatchRun {
            runs: batch
                .iter()
                .zip(&run.tests)
                .map(|(item, outcome)| outcome.to_scan(item.id.clone(), item.calls.clone()))
                .collect(),
            platform: run.platform,
        })
    }

    fn finished_in(&self, work_dir: &Path) -> u64 {
        linux::finished_tests(work_dir)
    }

    fn open_symbols(&self, events: &dyn Events) -> SymbolTables {
        SymbolTables {
            kernel: self.symbols.take(events),
            user: None,
        }
    }

    /// A clocksource other than the TSC, per-CPU caches the guest could not empty, or debug
    /// symbols of another build: the kernel's results may then not be its own, or not the
    /// test's.
    fn platform_warnings(&self, platform: &Platform, symbols: Option<&Symbols>) -> Vec<String> {
        let mut warnings = Vec::new();
        if platform.clocksource != linux::CLOCKSOURCE {
            warnings.push(format!(
                "the guest's clocksource is `{}`, not {}: conflicts on the clock are the virtual platform's (see `commuter doctor`)",
                platform.clocksource,
                linux::CLOCKSOURCE
            ));
        }
        warnings.extend(settle_warning(platform));
        let banner = symbols.and_then(Symbols::linux_banner);
        if let Some(b) = banner.filter(|b| *b != platform.version) {
            warnings.push(format!(
                "the debug symbols are of another build ({b}) than the kernel ({}): locations may be named wrongly (see `commuter doctor`)",
                platform.version
            ));
        }
        warnings
    }
}

/// The kernel's debug image, opened once per target: the plugin's layouts are read from it
/// when the target is made, and the run takes it for scanning.
pub(crate) struct KernelSymbols {
    symbols: Mutex<Option<Symbols>>,
    /// Why conflicts will not be (fully) named, said when the run takes the symbols.
    problem: Option<String>,
}

impl KernelSymbols {
    /// Opens `vmlinux` and puts the plugin's layouts into `cfg` (the plugin names slab caches
    /// and places per-CPU data with them).
    pub(crate) fn open(cfg: &mut LinuxConfig, vmlinux: &Path) -> KernelSymbols {
        let symbols = match Symbols::open(vmlinux) {
            Ok(s) => s,
            Err(e) => {
                return KernelSymbols {
                    symbols: Mutex::new(None),
                    problem: Some(format!(
                        "conflicts are not symbolised ({e}); `COMMUTER_LINUX_SYMBOLS=1 ./scripts/setup` fetches the symbols"
                    )),
                };
            }
        };
        let mut problem = None;
        match symbols.slab_layout() {
            Ok(layout) => cfg.slab = Some(layout),
            Err(e) => problem = Some(format!("heap objects are not named by slab cache ({e})")),
        }
        cfg.percpu = symbols.percpu_layout();
        KernelSymbols {
            symbols: Mutex::new(Some(symbols)),
            problem,
        }
    }

    /// The symbols, for the run's scanning thread (once); says what is missing.
    pub(crate) fn take(&self, events: &dyn Events) -> Option<Symbols> {
        if let Some(problem) = &self.problem {
            events.warn(problem);
        }
        self.symbols.lock().ok()?.take()
    }
}

/// `6.12.95+deb12-amd64` from `vmlinuz-6.12.95+deb12-amd64` (following a symlink).
pub fn kernel_version(kernel: &Path) -> Option<String> {
    let real = std::fs::canonicalize(kernel).unwrap_or_else(|_| PathBuf::from(kernel));
    let name = real.file_name()?.to_string_lossy().into_owned();
    name.strip_prefix("vmlinuz-").map(str::to_string)
}

/// A `tests.json` test as a guest plan test.
fn translate_test(t: &TestCase) -> Result<Test, String> {
    PosixTest::from_case(t)
        .and_then(|posix| plan_test(&posix))
        .map_err(|e| e.to_string())
}

/// Why a test's LRU sharing may depend on the tests before it in the boot: the guest could not
/// drain the LRU batches before each traced run (see the guest's `settle` module).
pub(crate) fn settle_warning(platform: &Platform) -> Option<String> {
    match platform.lru_drained {
        Some(true) => None,
        Some(false) => Some(
            "the guest could not drain the kernel's per-CPU LRU batches (madvise(MADV_COLD) on each CPU needs Linux 5.4 or later): pages wait there before they join the LRU lists, so sites there depend on the tests before (see `commuter doctor`)".into(),
        ),
        None => Some(
            "the guest is older than this driver and does not drain the kernel's per-CPU LRU batches before each test: rebuild it (./scripts/setup)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(lru_drained: Option<bool>) -> Platform {
        Platform {
            version: "Linux version 6.12".into(),
            clocksource: linux::CLOCKSOURCE.into(),
            lru_drained,
        }
    }

    #[test]
    fn a_guest_that_drains_draws_no_warning() {
        assert_eq!(settle_warning(&platform(Some(true))), None);
    }

    #[test]
    fn a_kernel_that_refuses_the_drain_is_named_with_what_it_needs() {
        let w = settle_warning(&platform(Some(false))).expect("a warning");
        assert!(w.contains("MADV_COLD"), "{w}");
        assert!(w.contains("Linux 5.4"), "{w}");
    }

    #[test]
    fn an_older_guest_is_told_to_be_rebuilt() {
        let w = settle_warning(&platform(None)).expect("a warning");
        assert!(w.contains("./scripts/setup"), "{w}");
    }
}
