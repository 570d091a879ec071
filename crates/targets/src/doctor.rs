//! Whether a kernel can be used as a Linux target: one short boot that checks what every run
//! depends on, so that a user bringing their own kernel learns what is wrong before a long run
//! gives wrong answers.
//!
//! The boot runs two `stat` tests: of two different existing names (conflict-free on every
//! kernel we know) and of one name (conflicted on its dentry, a slab object). From it the
//! checks are: the guest runs, the tracer sees the guest's markers, the clocksource is the TSC,
//! the guest can drain the kernel's per-CPU LRU batches before each test,
//! the debug image matches the running kernel (same version banner), and the slab layout and
//! per-CPU variables found in the image's DWARF and symbols name real locations.

use crate::linux::{self, CLOCKSOURCE, LinuxConfig, LinuxRun};
use commuter_guest::plan::{Call, Expect, Inode, Name, Op, PLAN_VERSION, Plan, Ret, Setup, Test};
use commuter_scan::Symbols;
use commuter_scan::schema::{Target, What};

/// One thing checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `clocksource`.
    pub name: &'static str,
    /// Whether the kernel passed.
    pub ok: bool,
    /// What was found, and for a failure what to do.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

const SAME_NAME: usize = 0;
const DIFFERENT_NAMES: usize = 1;

/// Two files, `f0` and `f1`, of one page each.
pub fn two_files() -> Setup {
    Setup {
        inodes: vec![
            Inode {
                data: vec![1],
                nlink: None,
            },
            Inode {
                data: vec![2],
                nlink: None,
            },
        ],
        names: vec![
            Name {
                name: "f0".into(),
                inode: 0,
            },
            Name {
                name: "f1".into(),
                inode: 1,
            },
        ],
        ..Setup::default()
    }
}

/// The doctor's plan: stat of one name on both CPUs, then of two different names.
pub fn plan() -> Plan {
    let stat = |proc, name: &str| Call {
        proc,
        op: Op::Stat { name: name.into() },
        expect: Expect {
            ret: Ret::Ok(0),
            data: None,
            stat: None,
            fds: None,
        },
    };
    let setup = two_files();
    let test = |name: &str, b: &str| Test {
        name: name.into(),
        setup: setup.clone(),
        calls: vec![stat(0, "f0"), stat(1, b)],
    };
    // In the order of SAME_NAME and DIFFERENT_NAMES.
    let tests = vec![
        test("stat the same name", "f0"),
        test("stat different names", "f1"),
    ];
    Plan {
        version: PLAN_VERSION,
        cpus: vec![1, 2],
        tests,
    }
}

/// Boots the kernel of `cfg` once with [`plan`] and checks it. `symbols` is the debug image
/// runs would use, or why there is none. The layouts the plugin needs are taken from it here,
/// whatever `cfg` says.
pub fn examine(cfg: &LinuxConfig, symbols: Result<&Symbols, String>) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut cfg = cfg.clone();
    let symbols = match symbols {
        Ok(s) => {
            checks.push(Check::new("debug image", true, s.name()));
            Some(s)
        }
        Err(why) => {
            checks.push(Check::new("debug image", false, why));
            None
        }
    };
    if let Some(s) = symbols {
        match s.slab_layout() {
            Ok(l) => {
                cfg.slab = Some(l);
                checks.push(Check::new("slab layout", true, format!("found ({l})")));
            }
            Err(e) => checks.push(Check::new("slab layout", false, e.to_string())),
        }
        cfg.percpu = s.percpu_layout();
        checks.push(match cfg.percpu {
            Some(l) => Check::new("per-CPU layout", true, format!("found ({l})")),
            None => Check::new(
                "per-CPU layout",
                false,
                "no __per_cpu_offset, nr_cpu_ids or pcpu_unit_size in the image's symbols",
            ),
        });
    }
    match linux::run(&cfg, &plan()) {
        Ok(run) => checks.extend(examine_run(&run, symbols, cfg.slab.is_some())),
        Err(e) => checks.push(Check::new("boot", false, e.to_string())),
    }
    checks
}

fn examine_run(run: &LinuxRun, symbols: Option<&Symbols>, slab: bool) -> Vec<Check> {
    let mut checks = vec![Check::new(
        "boot",
        true,
        format!(
            "the guest ran the plan in {:.1} s",
            run.elapsed.as_secs_f64()
        ),
    )];
    let Some(platform) = &run.platform else {
        checks.push(Check::new(
            "guest",
            false,
            "the guest reported no platform: it is older than this driver (rebuild it: ./scripts/setup)",
        ));
        return checks;
    };
    checks.push(Check::new(
        "clocksource",
        platform.clocksource == CLOCKSOURCE,
        if platform.clocksource == CLOCKSOURCE {
            format!("{CLOCKSOURCE}: reading the time writes nothing shared")
        } else {
            format!(
                "`{}`, not {CLOCKSOURCE}: reading the time may share memory of the virtual platform \
                 in every test; the kernel needs CONFIG_X86_TSC and must accept clocksource=tsc tsc=reliable",
                platform.clocksource
            )
        },
    ));
    let unsettled = crate::kernel::settle_warning(platform);
    checks.push(Check::new(
        "settle",
        unsettled.is_none(),
        unsettled.unwrap_or_else(|| {
            "the guest drains every CPU's LRU batches before each test".to_string()
        }),
    ));
    if let Some(s) = symbols {
        checks.push(banner_check(s, &platform.version));
    }
    let traced = run.tests.iter().all(|t| t.trace.is_some());
    checks.push(Check::new(
        "markers",
        traced,
        if traced {
            "the tracer saw every test's markers".to_string()
        } else {
            "the tracer wrote no record for some tests: the guest's marker instructions did not reach the plugin".to_string()
        },
    ));
    let mismatched: Vec<String> = run
        .tests
        .iter()
        .flat_map(|t| t.calls.iter().flatten().flat_map(|c| c.mismatches.clone()))
        .chain(run.tests.iter().flat_map(|t| t.errors.clone()))
        .collect();
    checks.push(Check::new(
        "results",
        mismatched.is_empty(),
        if mismatched.is_empty() {
            "every call returned what the model expects".to_string()
        } else {
            mismatched.join("; ")
        },
    ));
    if let Some(t) = run.tests.get(SAME_NAME).and_then(|t| t.trace.as_ref()) {
        let named = t.shared.iter().filter_map(|s| s.cache.clone()).next();
        checks.push(Check::new(
            "slab naming",
            slab && named.is_some(),
            match named {
                Some(cache) => format!("a shared heap object was named: slab cache `{cache}`"),
                None if t.shared.is_empty() => {
                    "stat of one name on two CPUs shared nothing: cannot tell".to_string()
                }
                None => {
                    "no shared location of stat on one name was named by its slab cache".to_string()
                }
            },
        ));
    }
    if let Some(t) = run.tests.get(DIFFERENT_NAMES) {
        checks.push(baseline_check(t, symbols));
    }
    checks
}

fn banner_check(symbols: &Symbols, running: &str) -> Check {
    match symbols.linux_banner() {
        Some(banner) if banner == running => Check::new(
            "symbols match",
            true,
            "the debug image is the running kernel's",
        ),
        Some(banner) => Check::new(
            "symbols match",
            false,
            format!(
                "the debug image is of another build: it says `{banner}`, the kernel says `{running}`; pass the kernel's own vmlinux with --vmlinux"
            ),
        ),
        None => Check::new(
            "symbols match",
            false,
            "the debug image has no linux_banner: is it a Linux vmlinux?",
        ),
    }
}

/// Two stats of different names share nothing on the kernels we know; what they share here is
/// most likely the platform's (a clock, a device), named so the user can tell.
fn baseline_check(t: &crate::linux::TestOutcome, symbols: Option<&Symbols>) -> Check {
    let run = t.to_scan(t.name.clone(), vec!["stat".into(), "stat".into()]);
    let file = commuter_scan::scan(Target::default(), &[run], symbols);
    let shared: Vec<String> = file.tests[0]
        .shared
        .iter()
        .map(|l| {
            let site = l.a.sites.first().map(|s| s.label()).unwrap_or_default();
            let what = match &l.what {
                What::Unknown => format!("{:#x}", l.addr),
                w => w.label(),
            };
            format!("{what} ({site})")
        })
        .collect();
    Check::new(
        "baseline",
        shared.is_empty(),
        if shared.is_empty() {
            "stat of two different names is conflict-free".to_string()
        } else {
            format!(
                "stat of two different names shared {}: sharing the kernel adds to every test",
                shared.join(", ")
            )
        },
    )
}
