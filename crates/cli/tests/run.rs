//! `commuter run` through the real binary on the stock kernel: result checking, a hung VM, and
//! resuming a killed run. Needs `./scripts/setup`.

use serde_json::Value;

mod common;
use common::{commuter, json, ok};

/// A small stat/stat suite in a fresh directory.
fn suite(name: &str) -> common::TestDir {
    common::posix_suite("run", name, "stat/stat")
}

#[test]
fn a_wrong_expectation_is_reported_as_a_mismatch() {
    let dir = suite("mismatch");
    let mut tests = json(&dir.join("tests.json"));
    let victim = tests["call_sets"][0]["tests"][0].clone();
    let id = victim["id"].as_str().expect("id").to_string();
    // Claim that call A fails with EBADF, which stat never returns.
    for e in tests["call_sets"][0]["tests"][0]["expected"]
        .as_array_mut()
        .expect("expected")
    {
        if e["order"] == "a" {
            e["result"] = serde_json::json!({"err": 9});
        }
    }
    std::fs::write(dir.join("tests.json"), tests.to_string()).expect("write");
    let stdout = ok(&commuter(&["run", "tests.json"], &dir));
    assert!(stdout.contains("result mismatches"), "{stdout}");
    assert!(stdout.contains(&id), "{stdout}");
    let conflicts = json(&dir.join("conflicts.json"));
    let mismatched: Vec<&Value> = conflicts["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .filter(|t| t["mismatches"].as_array().is_some_and(|m| !m.is_empty()))
        .collect();
    assert_eq!(mismatched.len(), 1, "{mismatched:?}");
    assert_eq!(mismatched[0]["id"], id.as_str());
}

#[test]
fn bad_run_options_are_refused_before_any_vm_boots() {
    let dir = suite("options");
    for args in [
        ["run", "tests.json", "--jobs", "0"],
        ["run", "tests.json", "--batch", "0"],
    ] {
        let out = commuter(&args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("must be at least 1"));
    }
    assert!(!dir.join("conflicts.json").exists());
}

#[test]
fn a_hung_vm_marks_its_tests_and_the_run_goes_on() {
    let dir = suite("hung");
    let stdout = ok(&commuter(&["run", "tests.json", "--timeout", "1"], &dir));
    let conflicts = json(&dir.join("conflicts.json"));
    let tests = conflicts["tests"].as_array().expect("tests");
    assert!(!tests.is_empty());
    for t in tests {
        assert_eq!(t["status"], "unknown", "{t}");
        assert_eq!(t["errors"][0]["kind"], "vm", "{t}");
    }
    assert!(dir.join("heatmap.svg").is_file(), "{stdout}");
}

#[test]
fn a_killed_run_resumes_from_its_finished_batches() {
    let dir = suite("resume");
    ok(&commuter(&["run", "tests.json", "--batch", "3"], &dir));
    let work = dir.join("conflicts.json.work");
    let first = json(&dir.join("conflicts.json"));
    // Pretend the run was killed during the second batch.
    std::fs::remove_file(work.join("batch-00001.json")).expect("second batch saved");
    let kept = std::fs::metadata(work.join("batch-00000.json"))
        .and_then(|m| m.modified())
        .expect("first batch saved");
    ok(&commuter(
        &["run", "tests.json", "--batch", "3", "--resume"],
        &dir,
    ));
    let again = std::fs::metadata(work.join("batch-00000.json"))
        .and_then(|m| m.modified())
        .expect("first batch kept");
    assert_eq!(kept, again, "the finished batch was not run again");
    assert!(
        work.join("batch-00001.json").is_file(),
        "the missing batch ran"
    );
    let second = json(&dir.join("conflicts.json"));
    let ids = |c: &Value| -> Vec<Value> {
        c["tests"]
            .as_array()
            .expect("tests")
            .iter()
            .map(|t| t["id"].clone())
            .collect()
    };
    assert_eq!(ids(&first), ids(&second));
    // Another suite with the same work directory is refused rather than mixed in.
    let out = commuter(&["run", "tests.json", "--batch", "2", "--resume"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to another run"));
}

/// Processes whose command line mentions `needle` (from /proc).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

fn wait_until(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_driver_killed_with_sigkill_leaves_no_vm_running() {
    let dir = suite("sigkill");
    // An absolute work directory: QEMU's command line names it, and no other test's VM does.
    let work = dir.join("work");
    let mut driver = std::process::Command::new(env!("CARGO_BIN_EXE_commuter"))
        .args(["run", "tests.json", "--batch", "3", "--work-dir"])
        .arg(&work)
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the driver starts");
    // QEMU's command line names the batch's work directory.
    let needle = work.join("vm-00000").display().to_string();
    let vm_up = wait_until(120, || {
        processes_mentioning(&needle)
            .iter()
            .any(|&pid| pid != driver.id())
    });
    driver.kill().expect("SIGKILL the driver");
    let _ = driver.wait();
    assert!(vm_up, "no VM started for {needle}");
    assert!(
        wait_until(10, || processes_mentioning(&needle).is_empty()),
        "a VM outlived its driver: {:?}",
        processes_mentioning(&needle)
    );
}
