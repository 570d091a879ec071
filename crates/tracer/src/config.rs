//! The plugin's arguments (`-plugin libcommuter_tracer.so,out=PATH,...`), parsed without QEMU.
//!
//! | argument | meaning |
//! |---|---|
//! | `out=PATH` | required: the JSON Lines file of per-test records ([`commuter_trace_format::record`]) |
//! | `raw=PATH` | optional: also write every kept access as a text line (large) |
//! | `max-accesses=N` | accesses kept per call (default 1048576); more are counted as dropped |
//! | `lazy=on\|off` | instrument memory only after the first begin-test (default on) |
//! | `slab=LAYOUT` | optional: the kernel's slab layout ([`SlabLayout`], from its DWARF), to name the slab cache of shared heap locations |
//! | `percpu=LAYOUT` | optional: where the kernel keeps its per-CPU areas ([`PercpuLayout`], from its symbols), to place shared locations in them |
//! | `calls=N` | calls per test, each on a vCPU of its own (default 2, at most [`MAX_CALLS`]); every pair of them is compared |
//! | `stacks=on\|off` | keep a shadow call stack per vCPU and report each side's call stack ([`crate::stack`]; default on) |
//! | `user=on\|off` | also record the memory accesses of user-mode code inside calls, each tagged with its mode (default off: kernel code only) |
//! | `mode=conflicts\|reftrace` | `conflicts` (default): per-test records of shared locations; `reftrace`: the reference trace of the workload between begin-test and end-test ([`crate::reftrace`]), streamed to `out=` |
//! | `reftrace=LAYOUT` | with `mode=reftrace`, required: the kernel layout it reads ([`RefTraceLayout`], from the vmlinux) |

use commuter_trace_format::MAX_CALLS;
use commuter_trace_format::percpu::PercpuLayout;
use commuter_trace_format::reftrace::RefTraceLayout;
use commuter_trace_format::slab::SlabLayout;
use std::path::PathBuf;

/// Default bound on the accesses kept per call: 24 MiB of buffer per vCPU.
pub const DEFAULT_MAX_ACCESSES: usize = 1 << 20;

/// Parsed plugin arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where the per-test records go.
    pub out: PathBuf,
    /// Where raw access lines go, if asked for.
    pub raw: Option<PathBuf>,
    /// Accesses kept per call.
    pub max_accesses: usize,
    /// Whether memory instrumentation waits for the first begin-test marker.
    pub lazy: bool,
    /// The kernel's slab layout; without it heap locations are not named.
    pub slab: Option<SlabLayout>,
    /// The kernel's per-CPU variables; without them per-CPU locations are not placed.
    pub percpu: Option<PercpuLayout>,
    /// Whether user-mode code's accesses are recorded too (decided per instruction when it is
    /// translated: off, user code gets no callback at all).
    pub user: bool,
    /// Calls per test (slots 0 to `calls - 1`).
    pub calls: usize,
    /// What the plugin records.
    pub mode: Mode,
    /// Whether kernel calls and returns are instrumented to keep call stacks.
    pub stacks: bool,
}

/// What the plugin records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Per test, the locations its calls share (the default).
    #[default]
    Conflicts,
    /// A workload's reference trace, with the kernel layout it reads.
    RefTrace(RefTraceLayout),
}

/// A bad plugin argument.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The argument has no `=`.
    #[error("plugin argument `{0}` is not of the form key=value")]
    NotKeyValue(String),
    /// The key is not known.
    #[error(
        "unknown plugin argument `{0}` (known: out, raw, max-accesses, lazy, slab, percpu, user, calls, stacks, mode, reftrace)"
    )]
    UnknownKey(String),
    /// The value does not parse.
    #[error("plugin argument `{key}` has a bad value `{value}`: {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// `mode=reftrace` without `reftrace=`.
    #[error(
        "plugin argument mode=reftrace needs reftrace=LAYOUT (the kernel layout, from the vmlinux)"
    )]
    MissingRefTraceLayout,
    /// `out=` is missing.
    #[error("plugin argument out=PATH is required (the JSON Lines file for the test records)")]
    MissingOut,
}

impl Config {
    /// Parses the `key=value` arguments QEMU passes to the plugin.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Config, ConfigError> {
        let mut out = None;
        let mut cfg = Config {
            out: PathBuf::new(),
            raw: None,
            max_accesses: DEFAULT_MAX_ACCESSES,
            lazy: true,
            slab: None,
            percpu: None,
            user: false,
            calls: 2,
            mode: Mode::Conflicts,
            stacks: true,
        };
        let mut reftrace = None;
        let mut reftrace_mode = false;
        for arg in args {
            let arg = arg.as_ref();
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| ConfigError::NotKeyValue(arg.to_owned()))?;
            match key {
                "out" if !value.is_empty() => out = Some(PathBuf::from(value)),
                "raw" if !value.is_empty() => cfg.raw = Some(PathBuf::from(value)),
                "out" | "raw" => return Err(bad(key, value, "a file path")),
                "max-accesses" => cfg.max_accesses = parse_count(key, value)?,
                "lazy" => cfg.lazy = parse_bool(key, value)?,
                "user" => cfg.user = parse_bool(key, value)?,
                "stacks" => cfg.stacks = parse_bool(key, value)?,
                "calls" => {
                    cfg.calls = match value.parse::<usize>() {
                        Ok(n) if (2..=MAX_CALLS).contains(&n) => n,
                        _ => return Err(bad(key, value, "a number of calls from 2 to 3")),
                    }
                }
                "slab" => {
                    let layout = value.parse().map_err(|_| {
                        bad(key, value, "the slab layout (8 colon-separated 0x numbers)")
                    })?;
                    cfg.slab = Some(layout);
                }
                "percpu" => {
                    let layout = value.parse().map_err(|_| {
                        bad(
                            key,
                            value,
                            "the per-CPU layout (3 colon-separated 0x numbers)",
                        )
                    })?;
                    cfg.percpu = Some(layout);
                }
                "mode" => {
                    reftrace_mode = match value {
                        "conflicts" => false,
                        "reftrace" => true,
                        _ => return Err(bad(key, value, "conflicts or reftrace")),
                    }
                }
                "reftrace" => {
                    reftrace = Some(value.parse().map_err(|_| {
                        bad(
                            key,
                            value,
                            "the reference-trace layout (7 colon-separated 0x numbers)",
                        )
                    })?);
                }
                _ => return Err(ConfigError::UnknownKey(key.to_owned())),
            }
        }
        if reftrace_mode {
            cfg.mode = Mode::RefTrace(reftrace.ok_or(ConfigError::MissingRefTraceLayout)?);
        }
        cfg.out = out.ok_or(ConfigError::MissingOut)?;
        Ok(cfg)
    }
}

fn bad(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

fn parse_count(key: &str, value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(key, value, "a positive integer")),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(bad(key, value, "on or off")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_keys() {
        let c = Config::parse(&[
            "out=t.jsonl",
            "raw=r.txt",
            "max-accesses=10",
            "lazy=off",
            "user=on",
        ])
        .unwrap();
        assert_eq!(c.out, PathBuf::from("t.jsonl"));
        assert_eq!(c.raw, Some(PathBuf::from("r.txt")));
        assert_eq!(
            (c.max_accesses, c.lazy, c.slab, c.user),
            (10, false, None, true)
        );
        let layout = "0xffffffff825d4598:0x40:0x8:0x30:0xff000000:0xf5000000:0x8:0x60";
        let c = Config::parse(&["out=t", &format!("slab={layout}")]).unwrap();
        assert_eq!(c.slab, Some(layout.parse().unwrap()));
        let percpu = "0xffffffff8241cb60:0xffffffff82c3ca10:0xffffffff8242e1d8";
        let c = Config::parse(&["out=t", &format!("percpu={percpu}")]).unwrap();
        assert_eq!(c.percpu, Some(percpu.parse().unwrap()));
    }

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse(&["out=x"]).unwrap();
        assert_eq!(
            (c.max_accesses, c.lazy, c.raw, c.user),
            (DEFAULT_MAX_ACCESSES, true, None, false)
        );
        assert!(matches!(
            Config::parse(&["out=x", "user=kernel"]),
            Err(ConfigError::BadValue { .. })
        ));
        assert_eq!(Config::parse::<&str>(&[]), Err(ConfigError::MissingOut));
        assert_eq!(
            Config::parse(&["out"]),
            Err(ConfigError::NotKeyValue("out".into()))
        );
        assert!(matches!(
            Config::parse(&["out=x", "max-accesses=0"]),
            Err(ConfigError::BadValue { .. })
        ));
        assert!(matches!(
            Config::parse(&["out=x", "slab=0x1:0x2"]),
            Err(ConfigError::BadValue { .. })
        ));
        assert_eq!(c.calls, 2);
        assert!(c.stacks, "stacks are on by default");
        assert!(!Config::parse(&["out=x", "stacks=off"]).unwrap().stacks);
        assert_eq!(Config::parse(&["out=x", "calls=3"]).unwrap().calls, 3);
        for bad in ["calls=1", "calls=9", "calls=two"] {
            assert!(matches!(
                Config::parse(&["out=x", bad]),
                Err(ConfigError::BadValue { .. })
            ));
        }
        assert!(matches!(
            Config::parse(&["out=x", "sink=mem"]),
            Err(ConfigError::UnknownKey(_))
        ));
    }

    #[test]
    fn reftrace_mode_needs_its_layout() {
        assert_eq!(Config::parse(&["out=x"]).unwrap().mode, Mode::Conflicts);
        let layout = "0xffffffff81001230:0x9a8:0x9ac:0xffffffff82600000:0x40:0x18:0x8";
        let c = Config::parse(&["out=x", "mode=reftrace", &format!("reftrace={layout}")]).unwrap();
        assert_eq!(c.mode, Mode::RefTrace(layout.parse().unwrap()));
        assert_eq!(
            Config::parse(&["out=x", "mode=reftrace"]),
            Err(ConfigError::MissingRefTraceLayout)
        );
        for bad in ["mode=trace", "reftrace=0x1"] {
            assert!(matches!(
                Config::parse(&["out=x", bad]),
                Err(ConfigError::BadValue { .. })
            ));
        }
    }
}
