//! Trace mode (`commuter_guest::trace`): one workload run as `/init`'s child under the
//! tracer's `mode=reftrace`.

use crate::sys;
use commuter_guest::trace::{TRACE_VERSION, TraceLine, TraceSpec};
use commuter_trace_format::marker::{self, BEGIN_CALL, BEGIN_TEST, END_CALL, END_TEST};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;

/// How long `/init` lets the plugin re-translate the guest's code with memory callbacks after
/// begin-test (the plugin's reset completes asynchronously; the plugin says when the workload
/// began before it had).
const INSTRUMENTATION_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs the spec at `path`; the line to print.
pub fn run(path: &str) -> TraceLine {
    match run_inner(path) {
        Ok(line) => line,
        Err(message) => TraceLine::Error { message },
    }
}

fn run_inner(path: &str) -> Result<TraceLine, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
    let spec: TraceSpec = serde_json::from_str(&text).map_err(|e| format!("parse {path}: {e}"))?;
    if spec.version != TRACE_VERSION {
        return Err(format!(
            "{path} is version {}, this guest reads {TRACE_VERSION}: rebuild the guest",
            spec.version
        ));
    }
    for file in &spec.executables {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {file}: {e}"))?;
    }
    if std::env::var_os("PATH").is_none() {
        // SAFETY: /init has no other thread.
        unsafe { std::env::set_var("PATH", "/bin:/usr/bin") };
    }
    std::env::set_current_dir(&spec.cwd).map_err(|e| format!("chdir {}: {e}", spec.cwd))?;
    for cmd in &spec.prepare {
        let (prog, args) = cmd.split_first().ok_or("an empty preparation command")?;
        let status = std::process::Command::new(prog)
            .args(args)
            .status()
            .map_err(|e| format!("run {cmd:?}: {e}"))?;
        if !status.success() {
            return Err(format!("{cmd:?} failed: {status}"));
        }
    }
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("workload argument: {e}"))?;
    if argv.is_empty() {
        return Err("no workload command".into());
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: plain syscall.
    let me = unsafe { libc::getpid() } as u64;
    marker::emit::<BEGIN_TEST>(me);
    std::thread::sleep(INSTRUMENTATION_WAIT);
    let child = sys::fork().map_err(|e| format!("fork: {e}"))?;
    if child == 0 {
        // The workload's references start here: only exec's wrapper runs before the program.
        marker::emit::<BEGIN_CALL>(0);
        // SAFETY: a NULL-terminated argv of valid C strings, kept alive by the parent's copy.
        unsafe {
            libc::execv(ptrs[0], ptrs.as_ptr());
            libc::_exit(127)
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let waited = unsafe { libc::waitpid(child, &mut status, 0) };
    marker::emit::<END_CALL>(0);
    marker::emit::<END_TEST>(child as u64);
    if waited != child {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    let exited = libc::WIFEXITED(status);
    if exited && libc::WEXITSTATUS(status) == 127 {
        return Err(format!(
            "cannot execute {}: not found, not executable or not a static program",
            spec.argv[0]
        ));
    }
    Ok(TraceLine::Finished {
        pid: child as u32,
        exit_code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
    })
}
