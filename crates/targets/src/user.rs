//! A user-space implementation as a target: any model's tests, run by the implementation's
//! static runner (built with `commuter-harness`) as the `/init` of the same Linux guest, with
//! the tracer recording user-mode accesses too. Conflicts in the runner's own code and memory
//! are named with its DWARF; those in the kernel (system calls, page faults) with vmlinux.

use std::path::{Path, PathBuf};

use commuter_harness::report::{CallReport, HarnessLine, Outcome};
use commuter_scan::schema::{ErrorKind, Target as TargetInfo, TestError};
use commuter_scan::{CallCheck, TestRun, UserBinary};
use commuter_tests_format::{CallSetTests, TESTS_SCHEMA, TESTS_VERSION, TestCase, TestSuite};

use crate::kernel::KernelSymbols;
use crate::linux::{self, LinuxConfig, Payload};
use crate::suite::{BatchRun, Events, Item, SuiteError, SymbolTables, Target, pairs_only};

/// The CPUs of call A and call B, as for the POSIX guest.
const CPUS: [u32; 2] = [1, 2];

/// Runs any model's tests on a user-space implementation's runner.
pub struct UserProgram {
    cfg: LinuxConfig,
    /// The implementation's name, as `conflicts.json` records it.
    name: String,
    kernel_symbols: KernelSymbols,
    /// The model the runner implements (each batch's `tests.json` names it for the runner).
    model: String,
}

impl UserProgram {
    /// A target booting `cfg` with `runner` (a static binary linked with `commuter-harness`,
    /// implementing `model`) as `/init`, tracing user-mode code too; kernel code is named with
    /// `vmlinux`.
    pub fn new(mut cfg: LinuxConfig, runner: &Path, model: &str, vmlinux: &Path) -> UserProgram {
        cfg.guest = runner.to_path_buf();
        cfg.user = true;
        let kernel_symbols = KernelSymbols::open(&mut cfg, vmlinux);
        let name = runner
            .file_name()
            .map_or_else(|| "user".into(), |n| n.to_string_lossy().into_owned());
        UserProgram {
            cfg,
            name,
            kernel_symbols,
            model: model.to_string(),
        }
    }
}

impl Target for UserProgram {
    type Prepared = TestCase;

    fn describe(&self) -> TargetInfo {
        TargetInfo {
            name: format!("user:{}", self.name),
            version: crate::kernel::kernel_version(&self.cfg.kernel).map(|k| format!("on {k}")),
            symbols: None,
        }
    }

    fn check_suite(&self, suite: &TestSuite) -> Result<(), SuiteError> {
        // The runner checks the model too (its first line says which it implements).
        if suite.model != self.model {
            return Err(SuiteError::Model {
                target: "user".into(),
                expected: self.model.clone(),
                found: suite.model.clone(),
            });
        }
        pairs_only("user", suite)
    }

    fn prepare(&self, test: &TestCase) -> Result<TestCase, String> {
        Ok(test.clone())
    }

    fn run_batch(&self, batch: &[&Item<TestCase>], work_dir: &Path) -> Result<BatchRun, String> {
        let tests: Vec<&TestCase> = batch.iter().filter_map(|i| i.test.as_ref().ok()).collect();
        let suite = batch_suite(&self.model, &tests);
        let json = serde_json::to_vec(&suite).map_err(|e| e.to_string())?;
        let cfg = LinuxConfig {
            work_dir: work_dir.to_path_buf(),
            ..self.cfg.clone()
        };
        let boot = linux::boot(
            &cfg,
            &Payload {
                files: vec![("tests.json", &json)],
                cpus: CPUS.to_vec(),
                init_args: Vec::new(),
            },
        )
        .map_err(|e| e.to_string())?;
        let mut runs: Vec<TestRun> = batch
            .iter()
            .map(|item| TestRun {
                id: item.id.clone(),
                calls: item.calls.clone(),
                results: vec![None; item.calls.len()],
                ..TestRun::default()
            })
            .collect();
        collect(&mut runs, &boot.console)?;
        for record in boot.trace {
            match usize::try_from(record.test)
                .ok()
                .and_then(|i| runs.get_mut(i))
            {
                Some(run) => run.record = Some(record),
                None => {
                    return Err(format!(
                        "the tracer recorded test {}, which the batch lacks",
                        record.test
                    ));
                }
            }
        }
        Ok(BatchRun {
            runs,
            platform: None,
        })
    }

    fn finished_in(&self, work_dir: &Path) -> u64 {
        linux::count_console_lines(work_dir, |line| {
            matches!(HarnessLine::parse(line), Some(Ok(HarnessLine::Test { .. })))
        })
    }

    fn open_symbols(&self, events: &dyn Events) -> SymbolTables {
        let user = match UserBinary::open(&self.cfg.guest) {
            Ok(u) => Some(u),
            Err(e) => {
                events.warn(&format!(
                    "user-mode code is not named ({e}); build the runner static and non-PIE with debug info"
                ));
                None
            }
        };
        SymbolTables {
            kernel: self.kernel_symbols.take(events),
            user,
        }
    }
}

/// The tests of one batch as a `tests.json` the runner reads (its indices are the batch's).
fn batch_suite(model: &str, tests: &[&TestCase]) -> TestSuite {
    TestSuite {
        schema: TESTS_SCHEMA.into(),
        version: TESTS_VERSION,
        model: model.into(),
        ncomb: 2,
        functions: None,
        max_tests_per_path: 0,
        max_testcases: None,
        part: None,
        call_sets: tests
            .iter()
            .map(|t| CallSetTests {
                calls: t.calls.iter().map(|c| c.call.clone()).collect(),
                paths: 0,
                commutative_paths: 0,
                capped_paths: Vec::new(),
                tests: vec![(*t).clone()],
                errors: Vec::new(),
            })
            .collect(),
    }
}

/// Applies the runner's console lines to the batch's runs; an unfinished run is an error.
fn collect(runs: &mut [TestRun], console: &str) -> Result<(), String> {
    let mut done = false;
    for line in console.lines() {
        let Some(parsed) = HarnessLine::parse(line) else {
            continue;
        };
        match parsed.map_err(|e| format!("unreadable runner line {line:?}: {e}"))? {
            HarnessLine::Test {
                index,
                outcome,
                calls,
                message,
                ..
            } => {
                let run = runs.get_mut(index).ok_or_else(|| {
                    format!("the runner reported test {index}, which the batch lacks")
                })?;
                apply(run, outcome, &calls, message);
            }
            HarnessLine::Fatal { message } => return Err(format!("the runner stopped: {message}")),
            HarnessLine::Done { .. } => done = true,
            HarnessLine::Start { .. } => {}
        }
    }
    if done {
        Ok(())
    } else {
        let tail: Vec<&str> = console.lines().rev().take(20).collect();
        Err(format!(
            "the runner did not finish; console tail:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }
}

fn apply(run: &mut TestRun, outcome: Outcome, calls: &[CallReport], message: Option<String>) {
    for (slot, call) in calls.iter().enumerate().take(run.results.len()) {
        let mismatches = if call.ok {
            Vec::new()
        } else {
            vec![format!(
                "{}: expected {}, got {}",
                call.call,
                join(&call.expected),
                call.actual
            )]
        };
        run.results[slot] = Some(CallCheck {
            ok: call.ok,
            mismatches,
        });
    }
    if outcome == Outcome::Error {
        run.errors.push(TestError {
            kind: ErrorKind::Guest,
            message: message.unwrap_or_else(|| "the runner could not run the test".into()),
        });
    }
}

fn join(values: &[serde_json::Value]) -> String {
    let all: Vec<String> = values.iter().map(ToString::to_string).collect();
    all.join(" or ")
}

/// An implementation the repository carries (a crate of `impls/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Implementation {
    pub name: String,
    pub model: String,
    pub description: String,
}

/// Why an implementation cannot be found or built.
#[derive(Debug, thiserror::Error)]
pub enum ImplError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no `model = \"...\"` under [package.metadata.commuter]")]
    NoModel { path: PathBuf },
    #[error("no implementation `{name}` in impls/ (`commuter impls` lists them) and no such file")]
    Unknown { name: String },
    #[error("building `{name}` failed ({status}); the command was: {command}")]
    Build {
        name: String,
        status: String,
        command: String,
    },
}

/// The implementations of `repo/impls`, by name.
pub fn implementations(repo: &Path) -> Result<Vec<Implementation>, ImplError> {
    let dir = repo.join("impls");
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| ImplError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let entries = std::fs::read_dir(&dir).map_err(|source| ImplError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = read(&manifest)?;
        let model = metadata_model(&text).ok_or_else(|| ImplError::NoModel {
            path: manifest.clone(),
        })?;
        out.push(Implementation {
            name: entry.file_name().to_string_lossy().into_owned(),
            model,
            description: toml_string(&text, "description").unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `model = "..."` in the `[package.metadata.commuter]` table.
fn metadata_model(manifest: &str) -> Option<String> {
    let table = manifest.split("[package.metadata.commuter]").nth(1)?;
    let table = table.split("\n[").next().unwrap_or(table);
    toml_string(table, "model")
}

/// The string value of `key = "..."` at the start of a line (a manifest's simple keys).
fn toml_string(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The runner for `name_or_path`: a file, or an implementation of `impls/` built now (cargo
/// does nothing when it is up to date), static as `scripts/setup` builds it.
pub fn runner(repo: &Path, name_or_path: &str) -> Result<PathBuf, ImplError> {
    let path = Path::new(name_or_path);
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let known = implementations(repo)?;
    if !known.iter().any(|i| i.name == name_or_path) {
        return Err(ImplError::Unknown {
            name: name_or_path.into(),
        });
    }
    let mut cargo = std::process::Command::new("cargo");
    cargo
        .current_dir(repo)
        .args([
            "build",
            "--release",
            "-q",
            "--manifest-path",
            "impls/Cargo.toml",
        ])
        .args([
            "--target-dir",
            "target/impls",
            "--target",
            RUNNER_TARGET,
            "-p",
            name_or_path,
        ])
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env(
            "RUSTFLAGS",
            "-C target-feature=+crt-static -C relocation-model=static",
        );
    let command = format!("{cargo:?}");
    let status = cargo.status().map_err(|e| ImplError::Build {
        name: name_or_path.into(),
        status: e.to_string(),
        command: command.clone(),
    })?;
    if !status.success() {
        return Err(ImplError::Build {
            name: name_or_path.into(),
            status: status.to_string(),
            command,
        });
    }
    Ok(built_runner(repo, name_or_path))
}

/// Runners are static binaries for this target (see `scripts/setup`).
const RUNNER_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where `impls/` builds the runner named `name`.
pub fn built_runner(repo: &Path, name: &str) -> PathBuf {
    repo.join("target/impls")
        .join(RUNNER_TARGET)
        .join("release")
        .join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(n: usize) -> Vec<TestRun> {
        (0..n)
            .map(|i| TestRun {
                id: format!("t{i}"),
                // As `run_batch` makes them: one result slot per call of the pair.
                results: vec![None, None],
                ..TestRun::default()
            })
            .collect()
    }

    #[test]
    fn runner_lines_become_result_checks() {
        let console = "\
[ 0.5] booting\r
@@commuter-harness {\"event\":\"start\",\"format\":1,\"model\":\"kv\",\"implementation\":\"kv-mutex\",\"tests\":2,\"cpus\":[1,2]}\r
@@commuter-harness {\"event\":\"test\",\"index\":0,\"id\":\"t0\",\"outcome\":\"pass\",\"calls\":[{\"slot\":\"a\",\"call\":\"get\",\"ok\":true,\"actual\":\"none\",\"expected\":[\"none\"],\"cpu\":1},{\"slot\":\"b\",\"call\":\"get\",\"ok\":true,\"actual\":\"none\",\"expected\":[\"none\"],\"cpu\":2}]}\r
@@commuter-harness {\"event\":\"test\",\"index\":1,\"id\":\"t1\",\"outcome\":\"mismatch\",\"calls\":[{\"slot\":\"a\",\"call\":\"get\",\"ok\":false,\"actual\":\"none\",\"expected\":[{\"some\":\"Value0\"}],\"cpu\":1},{\"slot\":\"b\",\"call\":\"len\",\"ok\":true,\"actual\":1,\"expected\":[1],\"cpu\":2}]}\r
@@commuter-harness {\"event\":\"done\",\"tests\":2,\"passed\":1,\"mismatched\":1,\"errors\":0}\r\n";
        let mut r = runs(2);
        collect(&mut r, console).expect("a finished run");
        assert!(
            r[0].results
                .iter()
                .all(|c| c.as_ref().is_some_and(|c| c.ok))
        );
        let a = r[1].results[0].as_ref().expect("call a");
        assert_eq!(
            a.mismatches,
            ["get: expected {\"some\":\"Value0\"}, got \"none\""]
        );
    }

    #[test]
    fn the_model_of_an_implementation_is_its_manifest_metadata() {
        let manifest = "[package]\nname = \"kv-x\"\ndescription = \"a map\"\n\n[dependencies]\nx = 1\n\n[package.metadata.commuter]\nmodel = \"kv\"\n";
        assert_eq!(metadata_model(manifest).as_deref(), Some("kv"));
        assert_eq!(
            toml_string(manifest, "description").as_deref(),
            Some("a map")
        );
        assert_eq!(metadata_model("[package]\nmodel = \"kv\"\n"), None);
    }

    #[test]
    fn a_fatal_or_unfinished_runner_fails_the_batch() {
        let fatal =
            "@@commuter-harness {\"event\":\"fatal\",\"message\":\"model kv, tests of counter\"}\n";
        let err = collect(&mut runs(1), fatal).unwrap_err();
        assert!(err.contains("model kv, tests of counter"), "{err}");
        let err = collect(&mut runs(1), "Kernel panic\n").unwrap_err();
        assert!(
            err.contains("did not finish") && err.contains("Kernel panic"),
            "{err}"
        );
    }
}
