//! Thin wrappers over the system calls the runner needs (after the POSIX guest's).

use std::ffi::CString;
use std::io;
use std::sync::atomic::AtomicU32;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Pins the calling thread to one CPU.
pub fn pin(cpu: u32) -> io::Result<()> {
    if cpu as usize >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the largest CPU set"),
        ));
    }
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it (checked above).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let r = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        check(r.into()).map(drop)
    }
}

/// Online CPUs. Not the affinity mask: as PID 1 under `isolcpus=` the mask is CPU 0 alone, yet
/// threads can still be pinned to the isolated CPUs.
pub fn online_cpus() -> usize {
    // SAFETY: plain sysconf query.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

pub fn current_cpu() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::sched_getcpu() }
}

/// CLOCK_MONOTONIC in nanoseconds (through the vDSO: no kernel entry inside a traced call).
pub fn monotonic_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    (r == 0).then(|| secs * 1_000_000_000 + nanos)
}

/// Blocks while `*word == current`, at most `timeout_ms` (None: forever). Private futex: the
/// runner's threads share one address space.
pub fn futex_wait(word: &AtomicU32, current: u32, timeout_ms: Option<u64>) {
    let ts = timeout_ms.map(|ms| libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid aligned u32; spurious wake-ups are handled by the callers.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            current,
            tsp,
        )
    };
}

pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid aligned u32.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// Mounts `fstype` on `target` (created if missing); an already mounted target is fine.
pub fn mount(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (s, t, f) = (cstr(source)?, cstr(target)?, cstr(fstype)?);
    std::fs::create_dir_all(target)?;
    // SAFETY: valid C strings; no mount data.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    match check(r.into()) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(()),
        other => other.map(drop),
    }
}

pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Powers the machine off (the end of a run as `/init`: PID 1 must never exit).
pub fn power_off() -> ! {
    // SAFETY: plain syscalls; reboot does not return on success.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
        libc::_exit(1)
    }
}
