//! End-to-end check of user-mode tracing: the real tracer plugin with `user=on` in Debian's
//! qemu-system-x86_64, the real static guest, Debian's stock kernel. The guest's own stores
//! and loads (memwrite, memread) to one physical page become user-tagged shared locations,
//! whether two threads of one process share the page or two processes map one file page; with
//! user-mode tracing off, the same plan records nothing of user code.
//!
//! Same prerequisites as `linux_smoke` (`scripts/install-linux-target`; a missing kernel fails
//! the test); builds the plugin and the guest with cargo, then boots twice (user mode on and
//! off).

use commuter_guest::plan::{
    Backing, Call, Expect, Inode, MAP_BASE, Map, Op, PLAN_VERSION, Plan, Proc, Ret, Setup, Test,
};
use commuter_scan::schema::{Region, Target, What};
use commuter_scan::{UserBinary, scan_with};
use commuter_targets::linux::{self, LinuxConfig, LinuxRun, TestOutcome};
use commuter_trace_format::record::{Mode, Rw, SharedLocation};
mod common;

use common::{assert_calls_ran, build_guest, build_plugin, repo};
use std::path::PathBuf;
use std::sync::OnceLock;

fn ok() -> Expect {
    Expect {
        ret: Ret::Ok(0),
        data: None,
        stat: None,
        fds: None,
    }
}

fn call(proc: usize, op: Op) -> Call {
    Call {
        proc,
        op,
        expect: ok(),
    }
}

fn proc_mapping(backing: Backing) -> Proc {
    Proc {
        fds: vec![],
        maps: vec![Map {
            page: 0,
            backing,
            writable: true,
            populated: true,
        }],
    }
}

/// Both calls are threads of process 0, which has one private anonymous page.
const THREADS: usize = 0;
/// Process 0 and process 1 each map page 0 of one file, shared.
const PROCESSES: usize = 1;

fn plan() -> Plan {
    let threads = Test {
        name: "memwrite-memwrite-threads".into(),
        setup: Setup {
            procs: vec![proc_mapping(Backing::Anon { data: 5 })],
            ..Setup::default()
        },
        calls: vec![
            call(0, Op::Memwrite { page: 0, data: 9 }),
            call(0, Op::Memwrite { page: 0, data: 7 }),
        ],
    };
    let file = || proc_mapping(Backing::File { inode: 0, off: 0 });
    let processes = Test {
        name: "memread-memwrite-processes".into(),
        setup: Setup {
            inodes: vec![Inode {
                data: vec![3],
                nlink: None,
            }],
            procs: vec![file(), file()],
            ..Setup::default()
        },
        calls: vec![
            call(0, Op::Memread { page: 0 }),
            call(1, Op::Memwrite { page: 0, data: 8 }),
        ],
    };
    Plan {
        version: PLAN_VERSION,
        cpus: vec![1, 2],
        tests: vec![threads, processes],
    }
}

fn boot(user: bool) -> Result<(LinuxRun, PathBuf), String> {
    let plugin = build_plugin()?;
    let guest = build_guest()?;
    let name = if user {
        "linux-user-on"
    } else {
        "linux-user-off"
    };
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let mut cfg = LinuxConfig::locate(&repo(), plugin, guest, work).map_err(|e| e.to_string())?;
    cfg.user = user;
    let binary = cfg.user_binary().map(PathBuf::from);
    assert_eq!(binary.is_some(), user);
    let run = linux::run(&cfg, &plan()).map_err(|e| e.to_string())?;
    eprintln!(
        "linux user={user} boot: {:.1} s (outputs in {})",
        run.elapsed.as_secs_f64(),
        run.work_dir.display()
    );
    Ok((run, cfg.guest))
}

/// One boot per setting, shared by the tests of this file.
fn run(user: bool) -> &'static (LinuxRun, PathBuf) {
    static ON: OnceLock<Result<(LinuxRun, PathBuf), String>> = OnceLock::new();
    static OFF: OnceLock<Result<(LinuxRun, PathBuf), String>> = OnceLock::new();
    let cell = if user { &ON } else { &OFF };
    match cell.get_or_init(|| boot(user)) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// The test's outcome after checking that it ran cleanly: no guest error, both calls returned
/// what the plan expected, and the tracer saw both calls on the two test CPUs.
fn checked(user: bool, index: usize) -> &'static TestOutcome {
    let t = &run(user).0.tests[index];
    assert_calls_ran(t);
    let trace = t
        .trace
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no trace record", t.name));
    assert!(trace.errors.is_empty(), "{}: {:?}", t.name, trace.errors);
    let vcpus: Vec<u32> = trace.calls.iter().map(|c| c.vcpu).collect();
    assert_eq!(vcpus, [1, 2], "{}: calls ran on {vcpus:?}", t.name);
    t
}

/// The shared location at the first byte of test page 0, as call A reached it.
fn page_byte(t: &TestOutcome) -> Option<&SharedLocation> {
    let trace = t.trace.as_ref()?;
    trace.shared.iter().find(|s| s.vaddr == Some(MAP_BASE))
}

#[test]
fn two_threads_storing_to_one_page_share_it_in_user_mode() {
    let t = checked(true, THREADS);
    let trace = t.trace.as_ref().unwrap();
    assert!(
        trace.calls.iter().all(|c| c.user > 0),
        "user-mode accesses were counted: {:?}",
        trace.calls
    );
    let loc = page_byte(t).unwrap_or_else(|| panic!("page 0 not shared: {:#?}", trace.shared));
    assert_eq!(
        (loc.a.mode, loc.b.mode),
        (Mode::User, Mode::User),
        "{loc:?}"
    );
    assert_eq!((loc.a.rw, loc.b.rw), (Rw::W, Rw::W), "{loc:?}");
    assert!(loc.a.pcs.iter().chain(&loc.b.pcs).all(|pc| *pc < MAP_BASE));
}

#[test]
fn two_processes_sharing_a_file_page_share_its_physical_bytes() {
    let t = checked(true, PROCESSES);
    let trace = t.trace.as_ref().unwrap();
    // Two address spaces, one page-cache page: compared by physical address.
    let loc = page_byte(t).unwrap_or_else(|| panic!("page 0 not shared: {:#?}", trace.shared));
    assert_eq!((loc.a.mode, loc.a.rw), (Mode::User, Rw::R), "{loc:?}");
    assert_eq!((loc.b.mode, loc.b.rw), (Mode::User, Rw::W), "{loc:?}");
}

#[test]
fn without_user_mode_no_user_access_is_recorded() {
    for index in [THREADS, PROCESSES] {
        let t = checked(false, index);
        let trace = t.trace.as_ref().unwrap();
        assert!(
            trace.calls.iter().all(|c| c.user == 0),
            "{}: {:?}",
            t.name,
            trace.calls
        );
        let sides = trace
            .shared
            .iter()
            .flat_map(|s| [&s.a, &s.b])
            .chain(trace.false_sharing.iter().flat_map(|f| [&f.a, &f.b]));
        for side in sides {
            assert_eq!(side.mode, Mode::Kernel, "{}: {side:?}", t.name);
        }
        assert!(page_byte(t).is_none(), "{}: {:?}", t.name, trace.shared);
    }
}

/// What the driver does after such a run: scan with the guest binary as the user binary. Its
/// release build keeps the symbol table (not DWARF), so user sites name their function.
#[test]
fn user_sites_and_memory_are_named_with_the_guest_binary() {
    let (_, guest) = run(true);
    let t = checked(true, THREADS);
    let user = UserBinary::open(guest).unwrap_or_else(|e| panic!("{e}"));
    let scan = t.to_scan(t.name.clone(), vec!["memwrite".into(), "memwrite".into()]);
    let file = scan_with(Target::default(), &[scan], None, Some(&user));
    let test = &file.tests[0];
    let loc = test
        .shared
        .iter()
        .find(|l| {
            l.what
                == What::Dynamic {
                    region: Region::Heap,
                    vaddr: MAP_BASE,
                }
        })
        .unwrap_or_else(|| panic!("no shared page 0: {:#?}", test.shared));
    for site in loc.a.sites.iter().chain(&loc.b.sites) {
        assert_eq!(site.mode, Mode::User, "{site:?}");
        assert!(
            site.symbol.is_some(),
            "user pc not in the guest's symbols: {site:?}"
        );
        assert!(site.label().starts_with("user:"), "{}", site.label());
    }
    eprintln!(
        "page 0 written by {:?}",
        loc.a.sites.iter().map(|s| s.label()).collect::<Vec<_>>()
    );
}
