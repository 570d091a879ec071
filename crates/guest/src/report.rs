//! What the guest prints on the console: one line per event, `@@commuter ` followed by a JSON
//! object, so that the driver can pick them out of kernel messages.
//!
//! ```text
//! @@commuter {"event":"start","version":1,"report":2,"tests":3}
//! @@commuter {"event":"result","test":0,"call":0,"ok":true,"mismatches":[],"actual":{"ret":0,...},"elapsed_ns":81234}
//! @@commuter {"event":"error","test":2,"message":"setup: open __i0: ..."}
//! @@commuter {"event":"done","tests":3}
//! ```
//!
//! The format is versioned by [`REPORT_VERSION`], announced in the start line. Changes only add
//! optional fields, so a driver reads lines of every version: version 1 (no `report` field in
//! the start line) had no `elapsed_ns`; version 2 added it; version 3 added the start line's
//! `platform` (the running kernel and its clocksource, which decide whether a run's conflicts
//! are the kernel's own: see [`Platform`]); version 4 the done line's `timing` (where the
//! guest's time went: see [`Timing`]); version 5 the platform's `lru_drained` (whether the
//! guest drains every CPU's LRU batches before each traced run) and the timing's `settle_ns`.

use crate::plan::{Expect, Ret};
use serde::{Deserialize, Serialize};

/// Marks the guest's lines on the console.
pub const PREFIX: &str = "@@commuter ";
/// Version of the console format this guest writes (see the module documentation).
pub const REPORT_VERSION: u32 = 5;

/// The report version of a start line without one: guests from before the field existed.
fn report_v1() -> u32 {
    1
}

/// One console event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum GuestLine {
    /// The guest read its plan.
    Start {
        /// Plan version.
        version: u32,
        /// Console format version ([`REPORT_VERSION`] of the guest that wrote it).
        #[serde(default = "report_v1")]
        report: u32,
        /// Number of tests.
        tests: usize,
        /// What the guest found out about the kernel it runs on (report version 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        platform: Option<Platform>,
    },
    /// One call's result in the traced (second) run of a test.
    Result {
        /// Test index.
        test: usize,
        /// Call slot.
        call: usize,
        /// The result matched the expectation.
        ok: bool,
        /// How it did not.
        mismatches: Vec<String>,
        /// What the call did.
        actual: Actual,
        /// Nanoseconds the call took, by the guest's monotonic clock read right around the
        /// system call (inside the tracer's call markers, so a traced run includes the cost of
        /// recording it). Absent from report version 1 and for calls that faulted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elapsed_ns: Option<u64>,
    },
    /// A test (or the whole run, when `test` is absent) could not be run.
    Error {
        /// Test index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// Every test was attempted.
    Done {
        /// Number of tests.
        tests: usize,
        /// Where the guest's time went (report version 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timing: Option<Timing>,
    },
}

/// Where a guest's time went, by its monotonic clock (nanoseconds; under TCG the guest's clock
/// follows the host's, so these are wall times of the VM). Each test runs twice (a warm-up and
/// the traced run); the phases sum over both runs of every test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// From the kernel's start to the guest's start line: boot and reading the plan.
    pub boot_ns: u64,
    /// Building each test's files, names and pipes (CPU 0).
    pub setup_ns: u64,
    /// From the coordinator's setup command until every test process has set up its fds and
    /// mappings and every call thread has prepared its call on its CPU.
    pub processes_ns: u64,
    /// From releasing call A to call B's return (the calls and their hand-off).
    pub calls_ns: u64,
    /// The test processes dropping the run's fds and mappings, and removing the test's files.
    pub teardown_ns: u64,
    /// Checking results and printing them on the console.
    pub report_ns: u64,
    /// Draining CPU 0's LRU batches before each traced run (report version 5; the call CPUs
    /// drain theirs while their calls are prepared, in `processes_ns`).
    #[serde(default)]
    pub settle_ns: u64,
}

impl GuestLine {
    /// The console line, without the newline.
    pub fn to_line(&self) -> String {
        // Serialising plain data cannot fail.
        format!(
            "{PREFIX}{}",
            serde_json::to_string(self).unwrap_or_default()
        )
    }

    /// Parses a console line: `None` if it is not a guest line.
    pub fn parse(line: &str) -> Option<Result<GuestLine, serde_json::Error>> {
        let start = line.find(PREFIX)?;
        let json = line[start + PREFIX.len()..].trim_end();
        Some(serde_json::from_str(json))
    }
}

/// The kernel the guest runs on, as it sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `/proc/version`, trimmed: the release, builder and build date (the same text as the
    /// image's `linux_banner`, which is how a debug vmlinux is matched to the running kernel).
    pub version: String,
    /// The current clocksource (`/sys/devices/system/clocksource/clocksource0`): reading time
    /// through anything but the TSC writes or locks shared memory on some kernels (HPET), which
    /// would show up as conflicts of every test.
    pub clocksource: String,
    /// Whether the guest drains every CPU's batches of pages waiting to join the LRU lists
    /// before each traced run, with `madvise(MADV_COLD)` (Linux 5.4 and later) on each CPU
    /// (report version 5; `None` from older guests). Without it, whether a test's calls touch
    /// a shared LRU list depends on the tests before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lru_drained: Option<bool>,
}

/// What a call did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actual {
    /// The return value (-1 on error; mmap: page index or address).
    pub ret: i64,
    /// errno name when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// Signal name when a memory access faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// First byte of the data read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<u8>,
    /// stat/fstat fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<StatActual>,
    /// pipe's two fds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds: Option<[i32; 2]>,
}

/// stat/fstat fields as returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatActual {
    /// st_ino.
    pub ino: u64,
    /// Which setup inode has this st_ino, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<usize>,
    /// st_size.
    pub size: u64,
    /// st_nlink.
    pub nlink: u64,
    /// S_ISFIFO.
    pub fifo: bool,
}

/// Compares a call's outcome with the expectation; empty when they agree.
pub fn check(expect: &Expect, actual: &Actual) -> Vec<String> {
    let mut out = Vec::new();
    check_ret(&expect.ret, actual, &mut out);
    if let Some(d) = expect.data {
        if actual.data != Some(d) {
            out.push(format!("data: expected {d}, got {:?}", actual.data));
        }
    }
    if let Some(fds) = expect.fds {
        if actual.fds != Some(fds) {
            out.push(format!("fds: expected {fds:?}, got {:?}", actual.fds));
        }
    }
    if let Some(s) = &expect.stat {
        check_stat(s, actual.stat.as_ref(), &mut out);
    }
    out
}

fn check_ret(want: &Ret, a: &Actual, out: &mut Vec<String>) {
    let ok = a.errno.is_none() && a.signal.is_none();
    let matches = match want {
        Ret::Ok(v) => ok && a.ret == *v,
        Ret::AnyOk => ok && a.ret >= 0,
        Ret::Err(e) => a.errno.as_deref() == Some(e.as_str()),
        Ret::Signal(s) => a.signal.as_deref() == Some(s.as_str()),
    };
    if !matches {
        out.push(format!(
            "result: expected {}, got {}",
            describe_want(want),
            describe(a)
        ));
    }
}

fn describe_want(r: &Ret) -> String {
    match r {
        Ret::Ok(v) => v.to_string(),
        Ret::AnyOk => "any value >= 0".into(),
        Ret::Err(e) => format!("-1 {e}"),
        Ret::Signal(s) => s.clone(),
    }
}

fn describe(a: &Actual) -> String {
    match (&a.errno, &a.signal) {
        (_, Some(s)) => s.clone(),
        (Some(e), None) => format!("{} {e}", a.ret),
        (None, None) => a.ret.to_string(),
    }
}

fn check_stat(want: &crate::plan::StatExpect, got: Option<&StatActual>, out: &mut Vec<String>) {
    let Some(got) = got else {
        return out.push("stat: expected stat fields, the call returned none".into());
    };
    if want.inode.is_some() && want.inode != got.inode {
        out.push(format!(
            "stat: expected inode {:?}, got st_ino {} (inode {:?})",
            want.inode, got.ino, got.inode
        ));
    }
    let fields = [
        ("size", want.size, got.size),
        ("nlink", want.nlink, got.nlink),
    ];
    for (name, want, got) in fields {
        if let Some(w) = want.filter(|w| *w != got) {
            out.push(format!("stat: expected {name} {w}, got {got}"));
        }
    }
    if let Some(w) = want.fifo.filter(|w| *w != got.fifo) {
        out.push(format!("stat: expected fifo {w}, got {}", got.fifo));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StatExpect;

    fn expect(ret: Ret) -> Expect {
        Expect {
            ret,
            data: None,
            stat: None,
            fds: None,
        }
    }

    #[test]
    fn lines_round_trip_even_after_console_noise() {
        let l = GuestLine::Done {
            tests: 3,
            timing: None,
        };
        let text = format!("[    7.1] random: crng init done\r{}\r", l.to_line());
        assert_eq!(GuestLine::parse(&text).unwrap().unwrap(), l);
        assert!(GuestLine::parse("Run /init as init process").is_none());
        assert!(GuestLine::parse("@@commuter {broken").unwrap().is_err());
    }

    #[test]
    fn result_lines_carry_the_call_time_and_older_lines_still_parse() {
        let timed = "@@commuter {\"event\":\"result\",\"test\":1,\"call\":0,\"ok\":true,\
                     \"mismatches\":[],\"actual\":{\"ret\":0},\"elapsed_ns\":81234}";
        match GuestLine::parse(timed).unwrap().unwrap() {
            GuestLine::Result { elapsed_ns, .. } => assert_eq!(elapsed_ns, Some(81234)),
            other => panic!("not a result line: {other:?}"),
        }
        // Version 1 guests wrote neither the call time nor the report version.
        let v1 = "@@commuter {\"event\":\"result\",\"test\":1,\"call\":0,\"ok\":true,\
                  \"mismatches\":[],\"actual\":{\"ret\":0}}";
        match GuestLine::parse(v1).unwrap().unwrap() {
            GuestLine::Result { elapsed_ns, .. } => assert_eq!(elapsed_ns, None),
            other => panic!("not a result line: {other:?}"),
        }
        let start = "@@commuter {\"event\":\"start\",\"version\":1,\"tests\":3}";
        assert_eq!(
            GuestLine::parse(start).unwrap().unwrap(),
            GuestLine::Start {
                version: 1,
                report: 1,
                tests: 3,
                platform: None,
            }
        );
        let v3 = "@@commuter {\"event\":\"start\",\"version\":1,\"report\":3,\"tests\":3,\
                  \"platform\":{\"version\":\"Linux version 6.1.0\",\"clocksource\":\"tsc\"}}";
        match GuestLine::parse(v3).unwrap().unwrap() {
            GuestLine::Start {
                platform: Some(p), ..
            } => {
                assert_eq!(p.clocksource, "tsc");
                assert_eq!(p.lru_drained, None, "a version 3 guest drains nothing");
            }
            other => panic!("not a start line with a platform: {other:?}"),
        }
        let v5 = "@@commuter {\"event\":\"start\",\"version\":1,\"report\":5,\"tests\":3,\
                  \"platform\":{\"version\":\"Linux\",\"clocksource\":\"tsc\",\
                  \"lru_drained\":true}}";
        match GuestLine::parse(v5).unwrap().unwrap() {
            GuestLine::Start {
                platform: Some(p), ..
            } => assert_eq!(p.lru_drained, Some(true)),
            other => panic!("not a start line with a platform: {other:?}"),
        }
        let done = "@@commuter {\"event\":\"done\",\"tests\":3,\"timing\":{\"boot_ns\":1,\
                    \"setup_ns\":2,\"processes_ns\":3,\"calls_ns\":4,\"teardown_ns\":5,\"report_ns\":6}}";
        match GuestLine::parse(done).unwrap().unwrap() {
            GuestLine::Done {
                timing: Some(t), ..
            } => assert_eq!((t.report_ns, t.settle_ns), (6, 0)),
            other => panic!("not a done line with timing: {other:?}"),
        }
        // A result without a time (a faulted call) leaves the field out rather than writing null.
        let untimed = GuestLine::Result {
            test: 0,
            call: 1,
            ok: true,
            mismatches: vec![],
            actual: Actual::default(),
            elapsed_ns: None,
        };
        assert!(!untimed.to_line().contains("elapsed_ns"));
        assert_eq!(
            GuestLine::parse(&untimed.to_line()).unwrap().unwrap(),
            untimed
        );
    }

    #[test]
    fn return_values_errors_and_signals() {
        let ok = Actual {
            ret: 3,
            ..Actual::default()
        };
        let enoent = Actual {
            ret: -1,
            errno: Some("ENOENT".into()),
            ..Actual::default()
        };
        assert!(check(&expect(Ret::Ok(3)), &ok).is_empty());
        assert!(check(&expect(Ret::AnyOk), &ok).is_empty());
        assert!(check(&expect(Ret::Err("ENOENT".into())), &enoent).is_empty());
        assert_eq!(
            check(&expect(Ret::Ok(0)), &enoent),
            vec!["result: expected 0, got -1 ENOENT".to_string()]
        );
        assert_eq!(check(&expect(Ret::Signal("SIGSEGV".into())), &ok).len(), 1);
    }

    #[test]
    fn stat_fields_are_checked_only_when_given() {
        let got = Actual {
            stat: Some(StatActual {
                ino: 9,
                inode: Some(1),
                size: 4096,
                nlink: 2,
                fifo: false,
            }),
            ..Actual::default()
        };
        let mut e = expect(Ret::Ok(0));
        e.stat = Some(StatExpect {
            inode: Some(1),
            nlink: Some(2),
            ..StatExpect::default()
        });
        assert!(check(&e, &got).is_empty());
        e.stat = Some(StatExpect {
            inode: Some(0),
            size: Some(0),
            ..StatExpect::default()
        });
        assert_eq!(check(&e, &got).len(), 2);
    }
}
