//! Thin wrappers over the system calls the guest needs, returning `io::Result`.

use std::ffi::CString;
use std::io;
use std::sync::atomic::AtomicU32;

/// Turns a -1 return into the thread's errno.
pub fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

pub fn mount(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let (s, t, f) = (cstr(source)?, cstr(target)?, cstr(fstype)?);
    std::fs::create_dir_all(target)?;
    // SAFETY: valid C strings; no mount data.
    let r = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    check(r.into()).map(drop)
}

/// Pins the calling thread to one CPU.
pub fn pin(cpu: u32) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it for cpu < 1024.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        let r = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        check(r.into()).map(drop)
    }
}

/// CLOCK_MONOTONIC in nanoseconds. Read through the vDSO (the guest kernel's clocksource is the
/// TSC), so it stays in user space and adds no kernel accesses to a traced call.
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

pub fn current_cpu() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::sched_getcpu() }
}

/// Blocks while `*word == current`, at most `timeout_ms` (None: forever). Shared futex: the
/// word lives in memory shared between processes.
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
            libc::FUTEX_WAIT,
            current,
            tsp,
        )
    };
}

pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid aligned u32.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Maps `len` bytes of zeroed memory shared with forked children.
pub fn shared_anon(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous mapping, no aliasing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p.cast())
}

pub fn fork() -> io::Result<libc::pid_t> {
    // SAFETY: the guest forks before creating threads in the parent.
    check(unsafe { libc::fork() }.into()).map(|p| p as libc::pid_t)
}

pub fn kill_and_reap(pid: libc::pid_t) {
    // SAFETY: plain syscalls on our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

pub fn dup2(from: i32, to: i32) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::dup2(from, to) }.into()).map(drop)
}

pub fn close(fd: i32) {
    // SAFETY: plain syscall; closing an unused fd is harmless.
    unsafe { libc::close(fd) };
}

pub fn power_off() -> ! {
    // SAFETY: plain syscalls; reboot does not return on success.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
        libc::_exit(1)
    }
}

/// A pidfd of process `pid` (pidfd_open, Linux 5.3).
pub fn pidfd_open(pid: libc::pid_t) -> io::Result<i32> {
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }).map(|fd| fd as i32)
}

/// A copy in this process of `fd` of the process `pidfd` refers to: the same open file, as
/// fork would have given (pidfd_getfd, Linux 5.6).
pub fn fd_from(pidfd: i32, fd: i32) -> io::Result<i32> {
    // SAFETY: plain syscall; a bad pidfd is an error, not undefined behaviour.
    check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) }).map(|c| c as i32)
}
