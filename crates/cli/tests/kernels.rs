//! Every supported kernel end to end, through the real binary: Debian's 6.12 (the default) and
//! 6.1, both installed with their debug symbols by `./scripts/setup` (a missing one fails).
//!
//! - `commuter doctor` accepts each, and refuses symbols of another build and a platform clock;
//! - the four call pairs of the "any kernel" issue run on each with the results the kernel's
//!   own code explains: stat of two existing names conflict-free, of one name conflicted on its
//!   dentry; no conflict on a clocksource or another platform device; no static name past the
//!   end of its symbol;
//! - the platform check can fail: with the HPET as clocksource, 6.1 shows conflicts in
//!   `read_hpet` that it flags;
//! - a test shares the same memory whatever ran before it in the boot (the guest drains the
//!   kernel's per-CPU LRU batches before each traced run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod common;
use common::commuter;

use commuter_scan::ConflictsFile;
use commuter_scan::schema::{Location, Status, TestConflicts, What};
use commuter_testgen::{TestSuite, parse_suite};

/// A supported kernel: its series name and the image and debug image `scripts/setup` installs.
struct Kernel {
    series: &'static str,
    vmlinuz: PathBuf,
    vmlinux: PathBuf,
}

fn kernels() -> Vec<Kernel> {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/linux");
    ["default", "6.1"]
        .into_iter()
        .map(|series| {
            let dir = match series {
                "default" => cache.clone(),
                other => cache.join(other),
            };
            let k = Kernel {
                series,
                vmlinuz: dir.join("vmlinuz"),
                vmlinux: dir.join("vmlinux"),
            };
            assert!(
                k.vmlinuz.is_file() && k.vmlinux.is_file(),
                "the {series} kernel or its symbols are missing in {}: run ./scripts/setup",
                dir.display()
            );
            k
        })
        .collect()
}

fn kernel(series: &str) -> Kernel {
    kernels()
        .into_iter()
        .find(|k| k.series == series)
        .expect("a supported series")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn temp_dir(name: &str) -> common::TestDir {
    common::temp_dir("kernels", name)
}

fn doctor(k: &Kernel, vmlinux: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "doctor",
        "--kernel",
        k.vmlinuz.to_str().expect("utf-8 path"),
        "--vmlinux",
        vmlinux.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    commuter(&args, &std::env::temp_dir())
}

/// The checks a doctor run failed, by name.
fn failed_checks(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn doctor_accepts_every_supported_kernel() {
    for k in kernels() {
        let out = doctor(&k, &k.vmlinux, &[]);
        assert!(out.status.success(), "{}: {}", k.series, text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        for check in [
            "clocksource",
            "settle",
            "markers",
            "slab naming",
            "symbols match",
        ] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with("ok") && l.contains(check)),
                "{}: no passed `{check}` check:\n{stdout}",
                k.series
            );
        }
    }
}

#[test]
fn doctor_refuses_symbols_of_another_build_and_a_platform_clock() {
    let (new, old) = (kernel("default"), kernel("6.1"));
    let out = doctor(&new, &old.vmlinux, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        failed_checks(&out).contains(&"symbols".to_string()),
        "{}",
        text(&out)
    );
    let out = doctor(&old, &old.vmlinux, &["--kernel-arg", "clocksource=hpet"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed = failed_checks(&out);
    assert!(
        failed.contains(&"clocksource".to_string()),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("hpet"), "{}", text(&out));
}

/// The suite of the four pairs, generated once.
fn four_pairs() -> &'static (PathBuf, TestSuite) {
    // The directory lives as long as the test process (a static is never dropped): every
    // kernel's test reads the suite from it.
    static DIR: OnceLock<common::TestDir> = OnceLock::new();
    static SUITE: OnceLock<(PathBuf, TestSuite)> = OnceLock::new();
    SUITE.get_or_init(|| {
        let dir = DIR.get_or_init(|| {
            common::posix_suite(
                "kernels",
                "suite",
                "stat/stat,open/open,close/close,mmap/munmap",
            )
        });
        let path = dir.join("tests.json");
        let bytes = std::fs::read(&path).expect("tests.json");
        let suite = parse_suite("tests.json", &bytes).expect("a valid suite");
        (path, suite)
    })
}

fn run_on(k: &Kernel, name: &str, tests: &Path, extra: &[&str]) -> ConflictsFile {
    let dir = temp_dir(&format!("run-{}-{name}", k.series));
    let mut args = vec![
        "run",
        tests.to_str().expect("utf-8 path"),
        "-o",
        "conflicts.json",
        "--kernel",
        k.vmlinuz.to_str().expect("utf-8 path"),
        "--vmlinux",
        k.vmlinux.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = commuter(&args, &dir);
    assert!(out.status.success(), "{}: {}", k.series, text(&out));
    let json = std::fs::read_to_string(dir.join("conflicts.json")).expect("conflicts.json");
    ConflictsFile::from_json(&json).expect("a valid conflicts file")
}

/// Code and data of the virtual platform's devices rather than the kernel's own: the clock
/// sources a guest may read instead of the TSC. (The kernel's timekeeping, `tk_core` and
/// `clocksource_delta` in `timekeeping_advance`, is the kernel's own: a tick that lands on a
/// test CPU updates it.)
const PLATFORM: [&str; 5] = ["hpet", "acpi_pm", "pvclock", "kvm_clock", "pit_"];

fn platform_sharing(loc: &Location) -> Option<String> {
    let names = functions(loc).chain(match &loc.what {
        What::Static { symbol, .. } => Some(symbol.clone()),
        _ => None,
    });
    names
        .into_iter()
        .find(|n| PLATFORM.iter().any(|p| n.contains(p)))
}

/// Every call of `t` returned what the model expects.
fn assert_model_results(series: &str, t: &TestConflicts) {
    assert!(
        t.mismatches.is_empty(),
        "{series} {}: {:?}",
        t.id,
        t.mismatches
    );
}

/// The functions (inlined ones too) and symbols of every code site that touched `loc`.
fn functions(loc: &Location) -> impl Iterator<Item = String> + '_ {
    loc.a.sites.iter().chain(&loc.b.sites).flat_map(|s| {
        s.frames
            .iter()
            .filter_map(|f| f.function.clone())
            .chain(s.symbol.clone())
    })
}

/// The functions of both sides' code sites and of the call stacks recorded with them.
fn functions_and_callers(loc: &Location) -> impl Iterator<Item = String> + '_ {
    let callers = [&loc.a, &loc.b].into_iter().flat_map(|side| {
        side.stack
            .iter()
            .flat_map(|s| s.frames.iter().filter_map(|f| f.function.clone()))
    });
    functions(loc).chain(callers)
}

/// `(address, size)` of every sized symbol, by name, as binutils' nm sees the image.
fn symbol_sizes(vmlinux: &Path) -> HashMap<String, (u64, u64)> {
    let out = Command::new("nm")
        .arg("-S")
        .arg(vmlinux)
        .output()
        .expect("nm runs");
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| Some((f[3].to_string(), (hex(f[0])?, hex(f[1])?))))?
        })
        .collect()
}

/// Whether a stat/stat test names two different existing files (`same: false`) or one
/// existing file (`same: true`); `None` for other situations (missing names).
fn stat_situation(suite: &TestSuite, id: &str) -> Option<bool> {
    let t = suite
        .call_sets
        .iter()
        .filter(|cs| cs.calls == ["stat", "stat"])
        .flat_map(|cs| &cs.tests)
        .find(|t| t.id == id)?;
    let names: Vec<&str> = t
        .calls
        .iter()
        .filter_map(|c| c.args["name"].as_str())
        .collect();
    let existing = t.setup["names"].as_array()?;
    let exists = |n: &str| existing.iter().any(|e| e["name"] == n);
    (names.len() == 2 && names.iter().all(|n| exists(n))).then(|| names[0] == names[1])
}

#[test]
fn four_pairs_hold_on_every_kernel() {
    let (tests, suite) = four_pairs();
    for k in kernels() {
        let file = run_on(&k, "four-pairs", tests, &[]);
        let series = k.series;
        assert!(file.target.version.is_some(), "{series}: {:?}", file.target);
        let sizes = symbol_sizes(&k.vmlinux);
        let (mut same, mut different) = (0, 0);
        for t in &file.tests {
            assert_model_results(series, t);
            assert_ne!(
                t.status,
                Status::Unknown,
                "{series} {}: {:?}",
                t.id,
                t.errors
            );
            for loc in t.shared.iter().chain(&t.false_sharing) {
                assert_eq!(platform_sharing(loc), None, "{series} {}: {loc:?}", t.id);
                if let What::Static { symbol, offset, .. } = &loc.what {
                    let (_, size) = sizes[symbol];
                    assert!(
                        *offset < size,
                        "{series} {}: {symbol}+{offset:#x} is past its end ({size:#x})",
                        t.id
                    );
                }
            }
            match stat_situation(suite, &t.id) {
                Some(false) => {
                    different += 1;
                    assert_eq!(
                        t.status,
                        Status::ConflictFree,
                        "{series} {}: {:?}",
                        t.id,
                        t.shared
                    );
                }
                Some(true) => {
                    same += 1;
                    let dentry = t
                        .shared
                        .iter()
                        .any(|l| matches!(&l.what, What::Slab { cache, .. } if cache == "dentry"));
                    assert!(dentry, "{series} {}: {:?}", t.id, t.shared);
                }
                None => {}
            }
        }
        assert!(
            same > 0 && different > 0,
            "{series}: stat/stat has both situations"
        );
    }
}

#[test]
fn a_platform_clock_is_caught() {
    // The HPET, which Debian's 6.1 picks under TCG unless told otherwise: reading it takes a
    // shared lock word, and the check above must see it.
    let dir = common::posix_suite("kernels", "hpet", "stat/stat");
    let file = run_on(
        &kernel("6.1"),
        "hpet",
        &dir.join("tests.json"),
        &["--kernel-arg", "clocksource=hpet"],
    );
    let flagged: Vec<String> = file
        .tests
        .iter()
        .flat_map(|t| t.shared.iter().filter_map(platform_sharing))
        .collect();
    assert!(
        flagged.iter().any(|n| n.contains("hpet")),
        "no conflict on the HPET was flagged: {flagged:?}"
    );
}

/// The guest drains every CPU's LRU batches before every traced run, so a test shares the
/// same memory whatever ran before it in the boot. The probe unmaps a populated anonymous page
/// in each of two processes: both pages are freed and taken off the LRU list of the one memory
/// cgroup, shared, but only if they had joined the list; left alone they may still wait in a
/// per-CPU batch, depending on how many pages the tests before allocated. The probe runs after
/// 0, 3, 10 and 31 other tests.
#[test]
fn a_test_shares_the_same_memory_whatever_ran_before() {
    let dir = common::posix_suite("kernels", "settle", "munmap/munmap");
    let path = dir.join("tests.json");
    let mut suite = common::json(&path);
    let tests = suite["call_sets"][0]["tests"]
        .as_array()
        .expect("munmap/munmap tests")
        .clone();
    let probe = tests
        .iter()
        .find(|t| unmaps_an_anonymous_page_in_each_process(t))
        .expect("a test unmapping an anonymous page in each of two processes");
    let mut fillers = tests.iter().filter(|t| t["id"] != probe["id"]);
    let mut order = Vec::new();
    for before in [0, 3, 10, 31] {
        order.extend(fillers.by_ref().take(before).cloned());
        let mut copy = probe.clone();
        copy["id"] = format!("probe_after_{before}").into();
        order.push(copy);
    }
    suite["call_sets"][0]["tests"] = order.into();
    std::fs::write(&path, suite.to_string()).expect("write tests.json");
    for k in kernels() {
        let series = k.series;
        let file = run_on(&k, "settle", &path, &["--vms", "1"]);
        let mut probes = 0;
        for t in &file.tests {
            assert_model_results(series, t);
            if t.id.starts_with("probe_after_") {
                probes += 1;
                // Taken off the list (`lruvec_del_folio`, inline or a caller of the shared
                // access): the lock and the counts are shared every time, the list's own
                // pointers only where the two pages' neighbours on it meet.
                let lru = t
                    .shared
                    .iter()
                    .flat_map(functions_and_callers)
                    .any(|f| f.contains("lru") && f.contains("del"));
                assert!(lru, "{series} {}: no shared LRU list: {:?}", t.id, t.shared);
            }
        }
        assert_eq!(probes, 4, "{series}: every probe ran");
    }
}

/// Each of the two processes has one anonymous page, and each call unmaps its process's.
fn unmaps_an_anonymous_page_in_each_process(t: &serde_json::Value) -> bool {
    let anon_page = |p: &serde_json::Value| {
        p["maps"]
            .as_array()
            .is_some_and(|m| m.len() == 1 && m[0].get("anon").is_some())
    };
    let procs = &t["setup"]["procs"];
    let calls: Vec<(i64, i64)> = t["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["args"]["proc"].as_i64()?, c["args"]["page"].as_i64()?)))
        .collect();
    anon_page(&procs[0])
        && anon_page(&procs[1])
        && procs[0]["maps"][0]["page"] == 0
        && procs[1]["maps"][0]["page"] == 0
        && calls == [(0, 0), (1, 0)]
}
