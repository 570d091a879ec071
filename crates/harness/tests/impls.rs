//! End to end on this host: the test generator `commuter testgen` runs writes the `kv` and
//! `counter` suites, the static runners of `impls/` (built as `scripts/setup` builds them) run every test
//! natively (the markers are no-ops; on a host without CPUs 1 and 2 the calls run unpinned),
//! and every result must match (`kv`, `counter`, `determinator`). A deliberately wrong map and a
//! merge that misses conflicts must be caught as mismatches.
//!
//! The test builds the runners with cargo itself (incremental, so cheap once built), like the
//! Linux target's end-to-end tests build the guest. It generates the suites with the library
//! rather than the CLI: building `commuter` alone (`cargo build -p commuter`) unifies its
//! dependencies' features differently from `cargo test --workspace`, so it would compile them
//! all a second time.

use commuter_harness::models::kv::KvAdapter;
use commuter_harness::{AdapterError, CallReport, HarnessLine, Outcome};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-gnu";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cargo(args: &[&str], rustflags: Option<&str>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(repo()).arg("build").args(args);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        c.env_remove(var);
    }
    if let Some(flags) = rustflags {
        c.env("RUSTFLAGS", flags);
    }
    let out = c.output().expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every runner of `impls/`, static, exactly as `scripts/setup` builds them.
fn runners() -> PathBuf {
    cargo(
        &[
            "--release",
            "--manifest-path",
            "impls/Cargo.toml",
            "--target-dir",
            "target/impls",
            "--target",
            TARGET,
        ],
        Some("-C target-feature=+crt-static -C relocation-model=static"),
    );
    repo().join("target/impls").join(TARGET).join("release")
}

/// `commuter testgen -m model` (every pair, the CLI's defaults) into directory `test` of this
/// test binary's.
fn testgen(model: &str, test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("harness-impls")
        .join(test);
    std::fs::create_dir_all(&dir).expect("test directory");
    let found = commuter_models::find_model(model).expect("a built-in model");
    let sets = commuter_analyzer::select_model_call_sets(found.as_ref(), None, 2).expect("pairs");
    let options = commuter_testgen::TestgenOptions::default();
    let (suite, _) = commuter_testgen::testgen(found.as_ref(), &sets, &options, None, &|_| {})
        .unwrap_or_else(|e| panic!("testgen -m {model}: {e}"));
    let file = dir.join(format!("{model}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&suite).expect("JSON")).expect("write suite");
    file
}

fn total_tests(suite: &Path) -> usize {
    let j: Json = serde_json::from_slice(&std::fs::read(suite).expect("suite")).expect("json");
    j["call_sets"]
        .as_array()
        .expect("call sets")
        .iter()
        .map(|c| c["tests"].as_array().map_or(0, Vec::len))
        .sum()
}

fn parse_lines(stdout: &str) -> Vec<HarnessLine> {
    stdout
        .lines()
        .filter_map(HarnessLine::parse)
        .map(|l| l.expect("a well-formed runner line"))
        .collect()
}

/// No `PT_INTERP` program header: the kernel runs it without a dynamic loader (as `/init`).
fn is_static(elf: &Path) -> bool {
    let b = std::fs::read(elf).expect("binary");
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    assert_eq!(&b[..4], b"\x7fELF");
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes")) != 3
    })
}

#[test]
fn static_runners_pass_every_kv_and_counter_test() {
    let bin = runners();
    let kv = testgen("kv", "runners");
    let counter = testgen("counter", "runners");
    let runs = [
        ("kv-mutex", &kv),
        ("kv-rwlock", &kv),
        ("kv-dashmap", &kv),
        ("kv-scalable", &kv),
        ("counter-atomic", &counter),
        ("counter-scalable", &counter),
    ];
    for (runner, suite) in runs {
        let exe = bin.join(runner);
        assert!(is_static(&exe), "{runner} is not static");
        let total = total_tests(suite);
        assert!(total > 0, "{suite:?} has tests");
        let out = Command::new(&exe).arg(suite).output().expect("run runner");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = parse_lines(&stdout);
        assert_eq!(out.status.code(), Some(0), "{runner}: {stdout}");
        match lines.first() {
            Some(HarnessLine::Start {
                implementation,
                tests,
                ..
            }) => assert_eq!((implementation.as_str(), *tests), (runner, total)),
            other => panic!("{runner}: no start line first: {other:?}"),
        }
        let passed = lines
            .iter()
            .filter(|l| {
                matches!(
                    l,
                    HarnessLine::Test {
                        outcome: Outcome::Pass,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(passed, total, "{runner}: {stdout}");
        assert_eq!(
            lines.last(),
            Some(&HarnessLine::Done {
                tests: total,
                passed: total,
                mismatched: 0,
                errors: 0
            }),
            "{runner}"
        );
    }
    // Bad input stops a runner before any test, with the fix, and exit code 2.
    let out = Command::new(bin.join("kv-mutex"))
        .arg(&counter)
        .output()
        .expect("run runner");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("commuter testgen -m kv"), "{stderr}");
}

/// A map whose `get` forgets every value (also the example runner the VM tests use).
#[path = "../examples/kv_forgetful_get/map.rs"]
mod forgetful;
use forgetful::ForgetfulGet;

#[test]
fn a_wrong_get_is_reported_as_mismatches() {
    // Exactly the tests in which a get should have found a value fail, at that call.
    let mismatched = mismatches_exactly_where::<KvAdapter<ForgetfulGet>>(
        &testgen("kv", "wrong-get"),
        |c| c.call == "get" && c.expected != [json!("none")],
        |c| c.actual == json!("none") && c.expected[0]["some"].is_string(),
    );
    assert!(mismatched > 0, "no kv test has a get of a present key");
}

/// Runs `suite` through adapter `A` in this process and checks that the run fails with
/// exactly the tests that have a call `wrong` picks as mismatches, each such call failed with
/// an outcome `as_expected` accepts, and the done line's count; returns that count.
fn mismatches_exactly_where<A: commuter_harness::Adapter + 'static>(
    suite: &Path,
    wrong: impl Fn(&CallReport) -> bool,
    as_expected: impl Fn(&CallReport) -> bool,
) -> usize {
    let args = vec![
        suite.to_string_lossy().into_owned(),
        "--pin".into(),
        "off".into(),
    ];
    let mut lines = Vec::new();
    let code =
        commuter_harness::cli::run_with::<A>(&args, &mut false, &mut |l| lines.push(l.clone()));
    assert_eq!(code, commuter_harness::cli::EXIT_FAILED);
    let mut mismatched = 0;
    for l in &lines {
        let HarnessLine::Test {
            id, outcome, calls, ..
        } = l
        else {
            continue;
        };
        let wrong: Vec<_> = calls.iter().filter(|c| wrong(c)).collect();
        if wrong.is_empty() {
            assert_eq!(*outcome, Outcome::Pass, "{id}: {l:?}");
            continue;
        }
        mismatched += 1;
        assert_eq!(*outcome, Outcome::Mismatch, "{id}: {l:?}");
        for c in wrong {
            assert!(!c.ok && as_expected(c), "{id}: {c:?}");
        }
    }
    match lines.last() {
        Some(HarnessLine::Done {
            mismatched: m,
            errors: 0,
            ..
        }) => assert_eq!(*m, mismatched),
        other => panic!("no done line last: {other:?}"),
    }
    mismatched
}

/// The `getset` model's register, adapted directly (no typed helpers): the runner is generic.
struct Register(std::sync::atomic::AtomicI64);

enum RegisterCall {
    Set(i64),
    Get,
}

impl commuter_harness::Adapter for Register {
    const MODEL: &'static str = "getset";
    const NAME: &'static str = "getset-atomic";
    type Call = RegisterCall;
    type Output = Option<i64>;
    fn setup(test: &commuter_harness::TestCase) -> Result<Self, AdapterError> {
        let v = test.setup["val"]
            .as_i64()
            .ok_or_else(|| AdapterError::setup(format!("no integer \"val\" in {}", test.setup)))?;
        Ok(Register(std::sync::atomic::AtomicI64::new(v)))
    }
    fn parse_call(call: &str, args: &Json) -> Result<RegisterCall, AdapterError> {
        match call {
            "set" => args["val"]
                .as_i64()
                .map(RegisterCall::Set)
                .ok_or_else(|| AdapterError::args(call, "no integer \"val\"")),
            "get" => Ok(RegisterCall::Get),
            _ => Err(AdapterError::unknown_call(call, &["set", "get"])),
        }
    }
    fn call(&self, call: &RegisterCall) -> Option<i64> {
        use std::sync::atomic::Ordering;
        match call {
            RegisterCall::Set(v) => {
                self.0.store(*v, Ordering::Release);
                None
            }
            RegisterCall::Get => Some(self.0.load(Ordering::Acquire)),
        }
    }
    fn result(out: &Option<i64>) -> Json {
        out.map_or(Json::Null, |v| json!(v))
    }
}

#[test]
fn any_model_runs_through_an_adapter_written_directly() {
    let suite = testgen("getset", "getset");
    let total = total_tests(&suite);
    let args = vec![
        suite.to_string_lossy().into_owned(),
        "--pin".into(),
        "off".into(),
    ];
    let mut lines = Vec::new();
    let code = commuter_harness::cli::run_with::<Register>(&args, &mut false, &mut |l| {
        lines.push(l.clone())
    });
    assert_eq!(code, commuter_harness::cli::EXIT_PASS, "{lines:?}");
    assert!(total > 0);
    assert_eq!(
        lines.last(),
        Some(&HarnessLine::Done {
            tests: total,
            passed: total,
            mismatched: 0,
            errors: 0
        })
    );
}

/// The `determinator` suite, generated once for the tests that run it (about 10 s).
fn determinator_suite() -> &'static Path {
    static SUITE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SUITE.get_or_init(|| testgen("determinator", "determinator"))
}

#[test]
fn determinator_cow_passes_every_determinator_test() {
    let suite = determinator_suite();
    let total = total_tests(suite);
    assert!(total > 0, "{suite:?} has tests");
    let exe = runners().join("determinator-cow");
    assert!(is_static(&exe), "determinator-cow is not static");
    let out = Command::new(&exe).arg(suite).output().expect("run runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        parse_lines(&stdout).last(),
        Some(&HarnessLine::Done {
            tests: total,
            passed: total,
            mismatched: 0,
            errors: 0
        }),
        "{stdout}"
    );
}

/// Determinator's spaces in one mutex, with the bug a hasty merge has: it copies every byte
/// the child changed and never reports a conflict.
mod merge_without_conflicts {
    use commuter_harness::AdapterError;
    use commuter_harness::models::determinator::{
        DetCall, DetError, DetOutput, DeterminatorImpl, Memory, PAGE_BYTES, PAGES, Setup,
    };
    use std::sync::Mutex;

    pub struct Careless(Mutex<Setup>);

    impl DeterminatorImpl for Careless {
        const NAME: &'static str = "determinator-careless-merge";
        fn new(setup: &Setup) -> Result<Self, AdapterError> {
            Ok(Careless(Mutex::new(setup.clone())))
        }
        fn call(&self, call: &DetCall) -> DetOutput {
            let mut s = self.0.lock().expect("not poisoned");
            let Setup { mem, children } = &mut *s;
            let c = children
                .iter_mut()
                .find(|c| c.id == call.child())
                .expect("the adapter checked the child");
            if let DetCall::Ret { .. } = call {
                c.started = false;
                return DetOutput::Ret;
            }
            if c.started {
                return match call {
                    DetCall::GetRegs { .. } => DetOutput::Regs(Err(DetError::Busy)),
                    _ => DetOutput::Done(Err(DetError::Busy)),
                };
            }
            match *call {
                DetCall::PutRegs { regs, .. } => c.regs = regs,
                DetCall::PutCopy { page, .. } => c.mem[page] = mem[page],
                DetCall::PutZero { page, .. } => c.mem[page] = [0; PAGE_BYTES],
                DetCall::PutPerm { page, perm, .. } => c.perm[page] = perm,
                DetCall::PutSnap { .. } => c.snap = c.mem,
                DetCall::PutStart { .. } => c.started = true,
                DetCall::GetRegs { .. } => return DetOutput::Regs(Ok(c.regs)),
                DetCall::GetCopy { page, .. } => mem[page] = c.mem[page],
                DetCall::GetMerge { .. } => merge(mem, &c.mem, &c.snap),
                DetCall::Ret { .. } => unreachable!("handled above"),
            }
            DetOutput::Done(Ok(()))
        }
    }

    fn merge(parent: &mut Memory, child: &Memory, snap: &Memory) {
        for p in 0..PAGES {
            for b in 0..PAGE_BYTES {
                if child[p][b] != snap[p][b] {
                    parent[p][b] = child[p][b];
                }
            }
        }
    }
}

#[test]
fn a_merge_that_misses_conflicts_is_reported_as_mismatches() {
    use commuter_harness::models::determinator::DeterminatorAdapter;
    // A test fails exactly when some call should have reported a conflict.
    let conflict = json!({"err": "conflict"});
    let mismatched =
        mismatches_exactly_where::<DeterminatorAdapter<merge_without_conflicts::Careless>>(
            determinator_suite(),
            |c| c.expected.contains(&conflict),
            |c| c.actual == json!({"ok": null}),
        );
    assert!(
        mismatched > 0,
        "no determinator test expects a merge conflict"
    );
}
