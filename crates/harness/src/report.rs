//! What the runner prints: one line per event on stdout (the console when it is `/init`),
//! `@@commuter-harness ` followed by a JSON object, so a driver can pick the lines out of
//! kernel messages. The prefix differs from the POSIX guest's `@@commuter `, so neither
//! driver mistakes the other's lines. See the crate documentation for every field.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Marks the runner's lines.
pub const PREFIX: &str = "@@commuter-harness ";
/// Version of this line format, announced in the start line.
pub const FORMAT_VERSION: u32 = 1;

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HarnessLine {
    /// The input was read and checked; tests follow.
    Start {
        /// [`FORMAT_VERSION`].
        format: u32,
        /// The model (`tests.json`'s `model`).
        model: String,
        /// The implementation ([`crate::Adapter::NAME`]).
        implementation: String,
        /// Number of tests selected.
        tests: usize,
        /// The CPUs of call A and call B when pinned; `null` when the calls run unpinned.
        cpus: Option<[u32; 2]>,
        /// Why the calls are not pinned, when they are not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unpinned: Option<String>,
    },
    /// One test's traced run.
    Test {
        /// Position among the selected tests: the argument of the test's begin-test and
        /// end-test markers.
        index: usize,
        /// The test's id in `tests.json`.
        id: String,
        /// `pass`, `mismatch` or `error`.
        outcome: Outcome,
        /// Call A and call B (empty when the test could not run).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        calls: Vec<CallReport>,
        /// What went wrong (outcome `error`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The run could not go on (or not start): nothing after this line.
    Fatal { message: String },
    /// Every selected test was attempted.
    Done {
        tests: usize,
        passed: usize,
        mismatched: usize,
        errors: usize,
    },
}

/// How a test went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Both calls returned what the model expects.
    Pass,
    /// At least one call returned something else.
    Mismatch,
    /// The test could not run (setup refused, a call panicked, a call ran on the wrong CPU).
    Error,
}

/// One call of a test's traced run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    /// `a` or `b`.
    pub slot: String,
    /// The call's name.
    pub call: String,
    /// The result matched one of `expected`.
    pub ok: bool,
    /// What the call returned, in the model's terms.
    pub actual: Json,
    /// What the model allows it to return (one value, unless the model has internal choices).
    pub expected: Vec<Json>,
    /// The CPU the call ran on.
    pub cpu: i32,
    /// Nanoseconds the call took (monotonic clock read inside the call markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ns: Option<u64>,
}

impl HarnessLine {
    /// The line, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising plain data cannot fail.
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Parses a console line: `None` if it is not a runner line.
    pub fn parse(line: &str) -> Option<Result<HarnessLine, serde_json::Error>> {
        let start = line.find(PREFIX)?;
        Some(serde_json::from_str(
            line[start + PREFIX.len()..].trim_end(),
        ))
    }
}

/// Prints one line on stdout, flushed (the console is the only channel in a VM).
pub fn emit(line: &HarnessLine) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // If stdout is gone there is nobody left to tell.
    let _ = writeln!(out, "{}", line.to_line());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_round_trip_after_console_noise_and_ignore_the_guests() {
        let l = HarnessLine::Test {
            index: 3,
            id: "get_len_0_0".into(),
            outcome: Outcome::Mismatch,
            calls: vec![CallReport {
                slot: "a".into(),
                call: "get".into(),
                ok: false,
                actual: json!("none"),
                expected: vec![json!({"some": "Value0"})],
                cpu: 1,
                elapsed_ns: Some(90),
            }],
            message: None,
        };
        let text = format!("[    2.5] random: crng init done\r{}\r", l.to_line());
        assert_eq!(HarnessLine::parse(&text).and_then(Result::ok), Some(l));
        // The POSIX guest's lines are not ours.
        assert!(HarnessLine::parse("@@commuter {\"event\":\"done\",\"tests\":3}").is_none());
        assert!(HarnessLine::parse("@@commuter-harness {broken").is_some_and(|r| r.is_err()));
    }
}
