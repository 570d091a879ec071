//! End-to-end smoke test of the Linux target: the real tracer plugin in Debian's
//! qemu-system-x86_64 10, the real static guest, Debian's stock kernel.
//!
//! Prerequisite: `scripts/install-linux-target` (QEMU and the kernel image). The test builds
//! the plugin and the guest itself with cargo (incremental, so cheap once built) into
//! `target/tracer` and `target/guest`, then boots once for all cases (about 6 s of VM time).

use commuter_guest::plan::{Call, Expect, Op, PLAN_VERSION, Plan, Ret, Setup, StatExpect, Test};
use commuter_targets::doctor::two_files;
use commuter_targets::linux::{self, LinuxConfig, LinuxRun, TestOutcome};
mod common;

use common::{assert_calls_ran, build_guest, build_plugin, repo};
use std::path::PathBuf;
use std::sync::OnceLock;

fn call(proc: usize, op: Op, expect: Expect) -> Call {
    Call { proc, op, expect }
}

fn ok(ret: Ret, stat: Option<StatExpect>) -> Expect {
    Expect {
        ret,
        data: None,
        stat,
        fds: None,
    }
}

fn stat(name: &str, inode: usize) -> (Op, Expect) {
    let st = StatExpect {
        inode: Some(inode),
        size: Some(4096),
        nlink: Some(1),
        fifo: None,
    };
    (Op::Stat { name: name.into() }, ok(Ret::Ok(0), Some(st)))
}

fn test(name: &str, setup: Setup, a: (Op, Expect), b: (Op, Expect)) -> Test {
    Test {
        name: name.into(),
        setup,
        calls: vec![call(0, a.0, a.1), call(1, b.0, b.1)],
    }
}

fn creat(name: &str) -> (Op, Expect) {
    let op = Op::Open {
        name: name.into(),
        creat: true,
        excl: true,
        trunc: false,
    };
    (op, ok(Ret::AnyOk, None))
}

const GETPID: usize = 0;
const STAT_DIFFERENT: usize = 1;
const STAT_SAME: usize = 2;
const CREAT_SAME_DIR: usize = 3;

fn plan() -> Plan {
    let getpid = || (Op::Getpid, ok(Ret::AnyOk, None));
    let tests = vec![
        test("getpid", Setup::default(), getpid(), getpid()),
        test("stat-different", two_files(), stat("f0", 0), stat("f1", 1)),
        test("stat-same", two_files(), stat("f0", 0), stat("f0", 0)),
        test("creat-same-dir", Setup::default(), creat("n0"), creat("n1")),
    ];
    Plan {
        version: PLAN_VERSION,
        cpus: vec![1, 2],
        tests,
    }
}

fn boot() -> Result<LinuxRun, String> {
    let plugin = build_plugin()?;
    let guest = build_guest()?;
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("linux-smoke");
    let mut cfg = LinuxConfig::locate(&repo(), plugin, guest, work).map_err(|e| e.to_string())?;
    // With the debug vmlinux the plugin also names slab caches (as `commuter run` does).
    cfg.slab = Some(commuter_scan::slab_layout(&vmlinux()).map_err(|e| e.to_string())?);
    let run = linux::run(&cfg, &plan()).map_err(|e| e.to_string())?;
    eprintln!(
        "linux smoke boot: {:.1} s (outputs in {})",
        run.elapsed.as_secs_f64(),
        run.work_dir.display()
    );
    Ok(run)
}

/// The debug vmlinux that `scripts/setup` installs; its absence fails the test.
fn vmlinux() -> PathBuf {
    let path = repo().join(".cache/linux/vmlinux");
    assert!(
        path.is_file(),
        "no {}: run ./scripts/setup (it installs the kernels with their debug symbols)",
        path.display()
    );
    path
}

/// One boot shared by every test in this file.
fn outcome(index: usize) -> &'static TestOutcome {
    static RUN: OnceLock<Result<LinuxRun, String>> = OnceLock::new();
    match RUN.get_or_init(boot) {
        Ok(run) => &run.tests[index],
        Err(e) => panic!("{e}"),
    }
}

/// Checks what every test needs before its conflicts mean anything: both calls returned what
/// the plan expected, and the tracer saw both calls on the two test CPUs.
fn checked(index: usize) -> &'static TestOutcome {
    let t = outcome(index);
    assert_calls_ran(t);
    let trace = t
        .trace
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no trace record", t.name));
    assert!(
        trace.errors.is_empty(),
        "{}: tracer errors {:?}",
        t.name,
        trace.errors
    );
    let vcpus: Vec<u32> = trace.calls.iter().map(|c| c.vcpu).collect();
    assert_eq!(vcpus, [1, 2], "{}: calls ran on {vcpus:?}", t.name);
    t
}

fn accesses(t: &TestOutcome) -> Vec<u64> {
    t.trace
        .as_ref()
        .map(|r| r.calls.iter().map(|c| c.kept).collect())
        .unwrap_or_default()
}

#[test]
fn getpid_pair_is_conflict_free() {
    let t = checked(GETPID);
    assert_eq!(t.conflict_free(), Some(true), "{:?}", t.trace);
}

#[test]
fn stat_of_different_names_is_conflict_free() {
    let t = checked(STAT_DIFFERENT);
    // Not vacuous: path lookup touches many kernel structures on both CPUs.
    assert!(
        accesses(t).iter().all(|n| *n > 200),
        "too few accesses: {:?}",
        accesses(t)
    );
    assert_eq!(t.conflict_free(), Some(true), "{:?}", t.trace);
}

#[test]
fn stat_of_the_same_name_conflicts() {
    let t = checked(STAT_SAME);
    assert_eq!(t.conflict_free(), Some(false));
    // The shared dentry's reference count is written by both sides.
    let trace = t.trace.as_ref().unwrap();
    assert!(
        trace
            .shared
            .iter()
            .any(|s| s.a.rw != commuter_trace_format::record::Rw::R
                && s.b.rw != commuter_trace_format::record::Rw::R),
        "{:?}",
        trace.shared
    );
}

#[test]
fn creating_two_names_in_one_directory_conflicts() {
    let t = checked(CREAT_SAME_DIR);
    assert_eq!(t.conflict_free(), Some(false));
    assert!(t.trace.as_ref().unwrap().shared.len() > 1, "{:?}", t.trace);
}

/// The plain-TCG baseline of `bench/tracer-overhead`: the same plan boots without the plugin,
/// every call still returns what the plan expects and is timed, and nothing is recorded.
#[test]
fn the_plan_runs_without_the_plugin() {
    let guest = build_guest().unwrap_or_else(|e| panic!("{e}"));
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("linux-smoke-untraced");
    let cfg =
        LinuxConfig::locate_untraced(&repo(), None, guest, work).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.plugin.is_none());
    let run = linux::run(&cfg, &plan()).unwrap_or_else(|e| panic!("{e}"));
    for t in &run.tests {
        assert_calls_ran(t);
        assert_eq!(t.trace, None, "{}: a record without the plugin", t.name);
    }
}

/// With the debug vmlinux, the shared locations of
/// the real run are named: the spike found the dentry's lockref for stat of one name.
#[test]
fn conflicts_are_symbolised_against_the_debug_kernel() {
    use commuter_scan::schema::{Status, Target, What};
    let vmlinux = vmlinux();
    let t = checked(STAT_SAME);
    let run = t.to_scan("stat-same".into(), vec!["stat".into(), "stat".into()]);
    let syms = commuter_scan::Symbols::open(&vmlinux).unwrap();
    let target = Target {
        name: "linux".into(),
        ..Target::default()
    };
    let file = commuter_scan::scan(target, &[run], Some(&syms));
    let test = &file.tests[0];
    assert_eq!(test.status, Status::Conflicted);
    let sites: Vec<_> = test
        .shared
        .iter()
        .flat_map(|l| l.a.sites.iter().chain(&l.b.sites))
        .collect();
    // Every kernel pc has a function symbol and a source line.
    for s in &sites {
        assert!(s.symbol.is_some() && !s.frames.is_empty(), "{s:?}");
    }
    let labels: Vec<String> = sites.iter().map(|s| s.label()).collect();
    assert!(
        labels.iter().any(|l| l.contains("lockref")),
        "no lockref site among {labels:#?}"
    );
    // The lockref is in the dentry, and conflicts.json says so.
    assert!(
        test.shared.iter().any(|l| l.what
            == What::Slab {
                cache: "dentry".into(),
                vaddr: commuter_scan::symbols::DIRECT_MAP_BASE + l.addr
            }
            && l.a.sites.iter().any(|s| s.label().contains("lockref"))),
        "{:#?}",
        test.shared
    );
}

fn caches(t: &TestOutcome) -> Vec<&str> {
    let trace = t.trace.as_ref().unwrap();
    trace
        .shared
        .iter()
        .filter_map(|s| s.cache.as_deref())
        .collect()
}

/// With the slab layout from the debug vmlinux, the plugin names the slab cache of shared heap
/// memory: the one name two stats look up is a dentry, and two creations in one directory
/// share (at least) the directory's objects, which are slab objects too.
#[test]
fn shared_heap_objects_are_named_by_slab_cache() {
    let stat = checked(STAT_SAME);
    assert!(
        caches(stat).contains(&"dentry"),
        "stat-same: {:?}",
        caches(stat)
    );
    let creat = checked(CREAT_SAME_DIR);
    eprintln!(
        "slab caches shared: stat-same {:?}, creat-same-dir {:?}",
        caches(stat),
        caches(creat)
    );
    // The directory both creations write is a tmpfs inode.
    assert!(
        caches(creat).contains(&"shmem_inode_cache"),
        "creat-same-dir: {:?}",
        caches(creat)
    );
}
