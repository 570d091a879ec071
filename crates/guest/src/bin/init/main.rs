//! `/init` of the Linux target's initramfs: runs `/plan.json` (or, with `/trace.json`, one
//! workload for `commuter trace`) and powers off.
//!
//! CPU 0 coordinates and builds each test's state; call A runs pinned to `plan.cpus[0]`, call B
//! to `plan.cpus[1]`, a third call to `plan.cpus[2]` (the kernel command line isolates those
//! CPUs). Hand-offs use futexes, so
//! an idle vCPU halts instead of spinning against the busy ones on the host.

mod calls;
mod runner;
mod settle;
mod shared;
mod state;
mod sys;
mod tracemode;
mod worker;

use commuter_guest::plan::{PLAN_VERSION, Plan};
use commuter_guest::report::{GuestLine, Platform, REPORT_VERSION};
use runner::{Runner, emit};
use std::time::{Duration, Instant};

const PLAN_PATH: &str = "/plan.json";
/// The tmpfs where every test's state lives (the processes' working directory).
const WORK_DIR: &str = "/t";

fn main() {
    if let Err(message) = run() {
        emit(&GuestLine::Error {
            test: None,
            message,
        });
    }
    sys::power_off()
}

fn run() -> Result<(), String> {
    mount_all()?;
    let spec = format!("/{}", commuter_guest::trace::SPEC_FILE);
    if std::path::Path::new(&spec).exists() {
        // `commuter trace`: one workload instead of a plan.
        println!("{}", tracemode::run(&spec).to_line());
        return Ok(());
    }
    let text = std::fs::read_to_string(PLAN_PATH).map_err(|e| format!("read {PLAN_PATH}: {e}"))?;
    // The test processes, forked once, read the plan for the whole boot.
    let plan: &'static Plan =
        Box::leak(Box::new(Plan::from_json(&text).map_err(|e| e.to_string())?));
    check_cpus(plan)?;
    sys::pin(0).map_err(|e| format!("pin the coordinator to CPU 0: {e}"))?;
    std::env::set_current_dir(WORK_DIR).map_err(|e| format!("chdir {WORK_DIR}: {e}"))?;
    // The monotonic clock starts with the kernel.
    let boot_ns = sys::monotonic_ns().unwrap_or(0);
    let lru_drained = settle::probe();
    emit(&GuestLine::Start {
        version: PLAN_VERSION,
        report: REPORT_VERSION,
        tests: plan.tests.len(),
        platform: Some(platform(lru_drained)),
    });
    let shared = shared::Shared::map().map_err(|e| format!("map the shared page: {e}"))?;
    let mut runner = Runner::new(shared, plan)?;
    for (i, t) in plan.tests.iter().enumerate() {
        runner.run_test(i, t);
    }
    runner.timing.boot_ns = boot_ns;
    emit(&GuestLine::Done {
        tests: plan.tests.len(),
        timing: Some(runner.timing),
    });
    Ok(())
}

fn mount_all() -> Result<(), String> {
    let mounts = [
        ("proc", "/proc", "proc"),
        ("sysfs", "/sys", "sysfs"),
        ("devtmpfs", "/dev", "devtmpfs"),
        ("tmpfs", WORK_DIR, "tmpfs"),
    ];
    for (source, target, fstype) in mounts {
        sys::mount(source, target, fstype)
            .map_err(|e| format!("mount {fstype} on {target}: {e}"))?;
    }
    Ok(())
}

/// The running kernel, its clocksource and whether the guest can drain LRU batches; an
/// unreadable file leaves its field empty (the driver then says it could not tell), since the
/// tests can still run.
fn platform(lru_drained: bool) -> Platform {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    Platform {
        version: read("/proc/version"),
        clocksource: settled(
            || read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            CLOCKSOURCE_SETTLE,
        ),
        lru_drained: Some(lru_drained),
    }
}

/// How long the guest waits for the kernel to leave its early clocksource.
const CLOCKSOURCE_SETTLE: Duration = Duration::from_secs(5);

/// The clocksource the tests will run on. A kernel starts on `tsc-early` and moves to `tsc`
/// once a delayed work has refined the TSC's frequency, about a second after the initcalls in
/// guest time; on a quick host `/init` starts before that. Read then, the check would judge a
/// passing state, and the switch (timekeeping writes) would land in a test. Waits up to
/// `limit` for another answer; still early then, says so.
fn settled(mut read: impl FnMut() -> String, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let current = read();
        if current != "tsc-early" || Instant::now() >= deadline {
            return current;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_cpus(plan: &Plan) -> Result<(), String> {
    // Not available_parallelism(): that honours init's affinity, which isolcpus= narrows to CPU 0.
    // SAFETY: plain sysconf query.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    // The plan checked that its CPUs are distinct and other than 0.
    let needed = plan.cpus.iter().max().map_or(1, |m| *m as usize + 1);
    if online < needed {
        return Err(format!(
            "{online} CPUs online, the plan needs {needed} (qemu -smp {needed})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_early_tsc_is_waited_out() {
        let mut answers = ["tsc-early", "tsc-early", "tsc"].into_iter();
        let read = || answers.next().unwrap_or("none").to_string();
        assert_eq!(settled(read, Duration::from_secs(5)), "tsc");
    }

    #[test]
    fn a_kernel_that_stays_early_is_reported_as_it_is() {
        let started = Instant::now();
        let read = || "tsc-early".to_string();
        assert_eq!(settled(read, Duration::from_millis(60)), "tsc-early");
        assert!(started.elapsed() >= Duration::from_millis(60));
    }

    #[test]
    fn a_settled_clocksource_is_read_once() {
        let mut reads = 0;
        let read = || {
            reads += 1;
            "hpet".to_string()
        };
        assert_eq!(settled(read, Duration::from_secs(5)), "hpet");
        assert_eq!(reads, 1);
    }
}
