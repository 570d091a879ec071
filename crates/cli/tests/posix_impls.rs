//! The POSIX implementations of `impls/` (`posix-scalable`, `posix-naive`: the `scalefs`
//! library) end to end with the real binary: a representative POSIX suite natively (every
//! test must pass on both), and a small suite on the stock kernel under the tracer, where the
//! scalable one must be conflict-free on every test and the naive one (one global lock) must
//! conflict. Needs `./scripts/setup` (kernel, plugin); a missing piece fails the test. The full
//! suite is `bench/posix-impls`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

mod common;

/// Every one of the model's 18 calls, in call sets of a few dozen tests each.
const NATIVE_SETS: &str = "open/close,link/rename,unlink/stat,pipe/read,write/mprotect,\
pwrite/munmap,pread/memread,mmap/close,fstat/memwrite,lseek/pipe";

/// Call sets whose every test commutes without intrinsic sharing: lookups and link changes of
/// different names, two pipes, removals. (Not, e.g., `mprotect/mprotect`: two calls that set
/// one page to the same protection share it, the second reading what the first wrote: an
/// idempotent update the rule cannot remove.)
const TRACED_SETS: &str = "stat/stat,link/unlink,stat/close,pipe/pipe,unlink/unlink,fstat/fstat";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static runner `name`, built (when stale) exactly as the user target builds it.
fn runner(name: &str) -> PathBuf {
    commuter_targets::user::runner(&repo(), name)
        .unwrap_or_else(|e| panic!("building the runner {name}: {e}"))
}

#[test]
fn both_implementations_pass_every_test_of_every_call_natively() {
    let dir = common::posix_suite("posix-impls", "native", NATIVE_SETS);
    for name in ["posix-scalable", "posix-naive"] {
        let out = Command::new(runner(name))
            .arg("tests.json")
            .current_dir(&dir)
            .output()
            .expect("the runner runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let done = stdout
            .lines()
            .find(|l| l.contains("\"event\":\"done\""))
            .unwrap_or_else(|| panic!("{name}: no done line:\n{stdout}"));
        let done: Value =
            serde_json::from_str(done.trim_start_matches("@@commuter-harness ")).expect("JSON");
        assert_eq!(done["tests"], 1502, "{name}: the suite changed? {done}");
        assert_eq!(done["passed"], done["tests"], "{name}: {done}\n{stdout}");
        assert_eq!(out.status.code(), Some(0), "{name}");
    }
}

fn run_user(dir: &Path, implementation: &str) -> Vec<Value> {
    let (_, conflicts) = common::run_user(dir, implementation, &format!("{implementation}.json"));
    conflicts["tests"].as_array().expect("tests").clone()
}

#[test]
fn the_scalable_one_is_conflict_free_where_the_naive_one_conflicts() {
    let dir = common::posix_suite("posix-impls", "traced", TRACED_SETS);
    let scalable = run_user(&dir, "posix-scalable");
    let naive = run_user(&dir, "posix-naive");
    assert!(scalable.len() >= 40, "{} tests", scalable.len());
    assert_eq!(scalable.len(), naive.len());
    for t in scalable.iter().chain(&naive) {
        assert_eq!(t["mismatches"], Value::Array(vec![]), "{t:#}");
    }
    let conflicted: Vec<&Value> = scalable
        .iter()
        .filter(|t| t["status"] != "conflict_free")
        .collect();
    assert!(conflicted.is_empty(), "{:#}", conflicted[0]);
    // The global lock: every naive test shares it, in user mode, named down to a source line.
    for t in &naive {
        assert_eq!(t["status"], "conflicted", "{t:#}");
        let user = t["shared"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|loc| loc["a"]["mode"] == "user" && loc["b"]["mode"] == "user");
        assert!(user, "{t:#}");
    }
}
