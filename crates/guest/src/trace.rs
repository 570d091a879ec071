//! The guest's trace mode (`commuter trace`): instead of a plan, `/trace.json` ([`TraceSpec`])
//! names a workload. `/init` prepares it (makes its files executable, runs the preparation
//! commands), emits begin-test with its own pid (the tracer leaves `/init`'s accesses out),
//! waits for the plugin's instrumentation, emits begin-call, runs the workload as its child
//! (inheriting the console as stdin, stdout and stderr) and waits for it, emits end-call and
//! end-test, prints one [`TraceLine`] and powers off.

use serde::{Deserialize, Serialize};

/// Where the driver puts the spec in the initramfs (relative to its root).
pub const SPEC_FILE: &str = "trace.json";
/// Version of [`TraceSpec`].
pub const TRACE_VERSION: u32 = 1;
/// Prefix of the guest's trace-mode console line.
pub const LINE_PREFIX: &str = "@@commuter-trace ";

/// What the guest runs in trace mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSpec {
    /// [`TRACE_VERSION`].
    pub version: u32,
    /// Files of the initramfs to make executable (the initramfs stores files as 0644).
    pub executables: Vec<String>,
    /// Commands run, in order, before tracing starts (e.g. busybox installing its applet links).
    pub prepare: Vec<Vec<String>>,
    /// The workload: program and arguments.
    pub argv: Vec<String>,
    /// Its working directory (a tmpfs the guest mounts).
    pub cwd: String,
}

/// The guest's report of a traced workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum TraceLine {
    /// The workload ran.
    Finished {
        /// The pid of the workload's process.
        pid: u32,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },
    /// The workload could not be run.
    Error {
        /// Why.
        message: String,
    },
}

impl TraceLine {
    /// The console line.
    pub fn to_line(&self) -> String {
        format!(
            "{LINE_PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// The last trace line of a console, if any (`Err`: one that does not parse).
    pub fn find(console: &str) -> Option<Result<TraceLine, serde_json::Error>> {
        console
            .lines()
            .filter_map(|l| l.split_once(LINE_PREFIX).map(|(_, rest)| rest))
            .next_back()
            .map(serde_json::from_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_through_a_console() {
        let line = TraceLine::Finished {
            pid: 61,
            exit_code: Some(0),
            signal: None,
        };
        let console = format!(
            "[    1.0] kernel noise\n{}\nreboot: Power down\n",
            line.to_line()
        );
        assert_eq!(TraceLine::find(&console).unwrap().unwrap(), line);
        assert!(TraceLine::find("nothing").is_none());
        assert!(TraceLine::find("@@commuter-trace {").unwrap().is_err());
    }
}
