//! `commuter trace`: one workload (a static program, or a shell script run by a static busybox)
//! as the guest's child under the tracer's `mode=reftrace`, and its references in the order
//! they were made ([`commuter_trace_format::reftrace`]). The guest's side is
//! `commuter_guest::trace`; writing kVMTrace's formats is `commuter-reftrace`'s.

use crate::linux::{self, LinuxConfig, LinuxError, Payload};
use commuter_guest::trace::{SPEC_FILE, TRACE_VERSION, TraceLine, TraceSpec};
use commuter_trace_format::reftrace::{self, End, RefTraceLayout, Reference, StreamError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A static x86-64 program and its arguments.
    Program {
        /// The program on this machine.
        path: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A shell script run by `busybox sh` (every busybox applet is on its `PATH`).
    Script {
        /// A static busybox on this machine.
        busybox: PathBuf,
        /// The script on this machine.
        script: PathBuf,
        /// The script's arguments.
        args: Vec<String>,
    },
}

/// A traced workload.
#[derive(Debug)]
pub struct TraceRun {
    /// Every reference, in the order made.
    pub references: Vec<Reference>,
    /// How the recording went (the plugin's end record).
    pub end: End,
    /// The pid of the workload's process.
    pub pid: u32,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The serial console (the workload's output among the kernel's).
    pub console: String,
    /// Wall time of the boot.
    pub elapsed: Duration,
}

/// Why a workload could not be traced.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The VM could not be run.
    #[error(transparent)]
    Linux(#[from] LinuxError),
    /// A workload file cannot be used.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The guest could not run the workload.
    #[error("the guest could not run the workload: {0}")]
    Guest(String),
    /// The guest said nothing about the workload.
    #[error("the guest did not report the workload; last console lines:\n{0}")]
    NoReport(String),
    /// The plugin's stream is unusable.
    #[error("{}: {source}", path.display())]
    Stream {
        /// The plugin's output file.
        path: PathBuf,
        /// What is wrong with it.
        source: StreamError,
    },
}

/// Initramfs names of the workload's files.
const PROGRAM: &str = "workload";
const BUSYBOX: &str = "busybox";
const SCRIPT: &str = "script.sh";
/// Where the workload runs: the guest's tmpfs.
const CWD: &str = "/t";

/// Checks that `bytes` (the file at `path`) is a static x86-64 ELF program.
pub fn check_static(path: &Path, bytes: &[u8]) -> Result<(), TraceError> {
    let bad = |message: &str| TraceError::Input {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |i: usize| {
        bytes
            .get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) || bytes.get(4) != Some(&2) {
        return Err(bad(
            "not a 64-bit ELF program (for a shell script, use --script FILE)",
        ));
    }
    if u16_at(18) != Some(0x3e) {
        return Err(bad("not an x86-64 program: the guest is x86-64"));
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return Err(bad("truncated ELF header"));
    };
    for i in 0..u64::from(phnum) {
        let at = phoff.saturating_add(i * u64::from(phentsize));
        let Some(ty) = usize::try_from(at)
            .ok()
            .and_then(|at| bytes.get(at..at + 4))
        else {
            return Err(bad("truncated ELF program headers"));
        };
        // PT_INTERP: the program needs a dynamic loader, which the initramfs does not have.
        if u32::from_le_bytes([ty[0], ty[1], ty[2], ty[3]]) == 3 {
            return Err(bad(
                "a dynamically linked program: the guest has no shared libraries; link it statically (cc -static)",
            ));
        }
    }
    Ok(())
}

fn read_input(path: &Path) -> Result<Vec<u8>, TraceError> {
    std::fs::read(path).map_err(|e| TraceError::Input {
        path: path.to_owned(),
        message: format!("cannot read it: {e}"),
    })
}

/// Boots `cfg` (its plugin in `mode=reftrace` with `layout`) with `workload`, and returns its
/// references. `cfg.work_dir` keeps the console, logs and the plugin's stream.
pub fn trace(
    cfg: &LinuxConfig,
    layout: &RefTraceLayout,
    workload: &Workload,
) -> Result<TraceRun, TraceError> {
    let start = Instant::now();
    let (files, spec) = match workload {
        Workload::Program { path, args } => {
            let program = read_input(path)?;
            check_static(path, &program)?;
            let spec = TraceSpec {
                version: TRACE_VERSION,
                executables: vec![format!("/{PROGRAM}")],
                prepare: Vec::new(),
                argv: std::iter::once(format!("/{PROGRAM}"))
                    .chain(args.iter().cloned())
                    .collect(),
                cwd: CWD.into(),
            };
            (vec![(PROGRAM, program)], spec)
        }
        Workload::Script {
            busybox,
            script,
            args,
        } => {
            let bb = std::fs::read(busybox).map_err(|e| TraceError::Input {
                path: busybox.clone(),
                message: format!(
                    "cannot read the static busybox: {e}; install Debian's busybox-static (scripts/setup does) or give --busybox PATH"
                ),
            })?;
            check_static(busybox, &bb)?;
            let text = read_input(script)?;
            let bb_path = format!("/{BUSYBOX}");
            let spec = TraceSpec {
                version: TRACE_VERSION,
                executables: vec![bb_path.clone()],
                // Every applet as a command on PATH (/bin), as on a system with busybox.
                prepare: vec![
                    vec![bb_path.clone(), "mkdir".into(), "-p".into(), "/bin".into()],
                    vec![
                        bb_path.clone(),
                        "--install".into(),
                        "-s".into(),
                        "/bin".into(),
                    ],
                ],
                argv: [bb_path, "sh".into(), format!("/{SCRIPT}")]
                    .into_iter()
                    .chain(args.iter().cloned())
                    .collect(),
                cwd: CWD.into(),
            };
            (vec![(BUSYBOX, bb), (SCRIPT, text)], spec)
        }
    };
    let spec_json = serde_json::to_vec(&spec).unwrap_or_default();
    let mut payload_files: Vec<(&str, &[u8])> =
        files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    payload_files.push((SPEC_FILE, &spec_json));
    let payload = Payload {
        files: payload_files,
        cpus: Vec::new(),
        init_args: Vec::new(),
    };
    let args = ["mode=reftrace".to_string(), layout.plugin_arg()];
    let console = linux::boot_with(cfg, &payload, &args)?;
    let (pid, exit_code, signal) = match TraceLine::find(&console) {
        Some(Ok(TraceLine::Finished {
            pid,
            exit_code,
            signal,
        })) => (pid, exit_code, signal),
        Some(Ok(TraceLine::Error { message })) => return Err(TraceError::Guest(message)),
        Some(Err(e)) => return Err(TraceError::Guest(format!("unreadable report: {e}"))),
        None => return Err(TraceError::NoReport(linux::tail(&console, 20))),
    };
    let out = linux::plugin_output(cfg);
    let bytes = std::fs::read(&out).map_err(|e| {
        TraceError::Linux(LinuxError::Io {
            what: "read",
            path: out.clone(),
            source: e,
        })
    })?;
    let (references, end) =
        reftrace::decode_stream(&bytes).map_err(|source| TraceError::Stream {
            path: out.clone(),
            source,
        })?;
    Ok(TraceRun {
        references,
        end,
        pid,
        exit_code,
        signal,
        console,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_static_x86_64_programs_are_accepted() {
        let p = Path::new("prog");
        let msg = |b: &[u8]| check_static(p, b).unwrap_err().to_string();
        assert!(msg(b"#!/bin/sh\n").contains("--script"));
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[18] = 0x28; // ARM
        assert!(msg(&elf).contains("x86-64"));
        elf[18] = 0x3e;
        elf[0x20] = 64; // program headers right after the ELF header
        elf[0x36] = 56;
        elf[0x38] = 1;
        elf[64] = 1; // PT_LOAD
        assert!(check_static(p, &elf).is_ok());
        elf[64] = 3; // PT_INTERP
        assert!(msg(&elf).contains("cc -static"));
        elf.truncate(66);
        assert!(msg(&elf).contains("truncated"));
        // The test binary itself is dynamically linked (or static, as built): decided by its
        // own program headers, never a panic.
        let me = std::env::current_exe().unwrap();
        let _ = check_static(&me, &std::fs::read(&me).unwrap());
    }
}
