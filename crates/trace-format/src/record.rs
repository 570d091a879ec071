//! The plugin's output: one JSON object per line ("JSON Lines"), one line per test.
//!
//! Addresses and PCs are hexadecimal strings (`"0xffffffff81234567"`), because kernel
//! addresses do not fit the 53-bit integers that many JSON readers use. A location is shared
//! by two calls: side `a` is call slot 0 and side `b` call slot 1, unless the location names
//! its two call slots (`"slots":[0,2]`, lower first: a test of three calls reports each pair of
//! calls that shared a location). Example (wrapped here):
//!
//! ```json
//! {"v":2,"test":2,"calls":[{"slot":0,"vcpu":1,"accesses":5210,"user":0,"kept":5210,
//!  "dropped":0,"unresolved":0,"io":0},{"slot":1,"vcpu":2,...}],"overflow":false,
//!  "shared":[{"addr":"0x2a4c1a8","size":4,"a":{"pc":"0xffffffff8137a1c2","rw":"w",
//!  "mode":"kernel","pcs":["0xffffffff8137a1c2"]},"b":{...}}],
//!  "false_sharing":[{"line":"0x2a4c1c0",...}],"errors":[]}
//! ```
//!
//! Version 2 added the required `mode` of each side ([`Mode`]: whether the side's accesses to
//! the location ran in kernel or user mode, or both), for the plugin's opt-in user-mode
//! tracing; a version 1 reader would take user-mode PCs for kernel ones, hence the bump. The
//! version is checked before the rest of the line, so a record of another version gets a
//! version error, not a missing-field error. Version 3 added tests of more than two calls:
//! `calls` lists every call, and a location of any pair but calls 0 and 1 names its `slots`; a
//! version 2 reader would take such a location for one of calls 0 and 1, hence the bump.
//! Version 2 records are still read (every location is calls 0 and 1 there). Version 4 added
//! the call `stack` of each side (the return addresses of the tracer's shadow call stack when
//! the side's representative instruction ran, innermost first, at most [`STACK_DEPTH`]); it is
//! left out when empty, and versions 2 and 3 are still read (no stacks). A version 3 reader
//! refuses version 4 records rather than silently dropping the stacks.
//!
//! A location in a slab object also names its cache (`"cache":"dentry"`) when the plugin was
//! given the kernel's slab layout ([`crate::slab`]); every location says which virtual address
//! call A used for it (`"vaddr"`: the direct map, vmalloc space, the page array, user memory),
//! and a location in a CPU's per-CPU area says which CPU's and where in it (`"percpu"`, when the
//! plugin was given the per-CPU layout, [`crate::percpu`]). These fields are optional in both
//! directions (left out when unknown, ignored by readers that predate them), so they did not
//! change [`RECORD_VERSION`].

use serde::{Deserialize, Serialize};

/// Cache line size the tracer groups accesses by (x86-64); a [`FalseSharing`] line is this long.
pub const CACHE_LINE: u64 = 64;

/// Version of the record format; bumped on incompatible changes.
pub const RECORD_VERSION: u32 = 4;
/// The oldest record version read ([`parse_jsonl`]).
pub const RECORD_OLDEST_READ: u32 = 2;

/// Return addresses kept per call stack ([`Side::stack`]): the innermost frames, which name the
/// callers that matter (the syscall entry is many frames further out).
pub const STACK_DEPTH: usize = 16;

/// The call slots of the first two calls, which a location names by leaving `slots` out.
pub const FIRST_PAIR: [u64; 2] = [0, 1];

/// Whether `slots` is [`FIRST_PAIR`] (serde: left out).
pub fn is_first_pair(slots: &[u64; 2]) -> bool {
    *slots == FIRST_PAIR
}

fn first_pair() -> [u64; 2] {
    FIRST_PAIR
}

/// The conflict report of one test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Record format version ([`RECORD_VERSION`]).
    pub v: u32,
    /// The test index the guest gave in its begin-test marker.
    pub test: u64,
    /// One entry per traced call, in slot order.
    pub calls: Vec<CallStats>,
    /// True when some call recorded more accesses than its buffer holds: conflicts may be missing.
    pub overflow: bool,
    /// Byte ranges two calls accessed, at least one of them writing: per pair of calls (in
    /// slot order: 0-1, 0-2, 1-2, ...), in address order.
    pub shared: Vec<SharedLocation>,
    /// Cache lines two calls accessed, at least one writing, without any shared byte (ordered
    /// as `shared`).
    pub false_sharing: Vec<FalseSharing>,
    /// Protocol or internal errors: the test's result cannot be trusted when this is not empty.
    pub errors: Vec<String>,
}

impl TestRecord {
    /// `Some(true)` if the two calls share no byte, `Some(false)` if they do, and `None` if the
    /// record is incomplete (overflow or errors) and cannot say that the calls are conflict-free.
    pub fn conflict_free(&self) -> Option<bool> {
        if !self.shared.is_empty() {
            return Some(false);
        }
        if self.overflow || !self.errors.is_empty() {
            return None;
        }
        Some(true)
    }
}

/// Counters of one traced call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStats {
    /// Call slot from the begin-call marker (0 = call A, 1 = call B).
    pub slot: u64,
    /// The vCPU (= guest CPU number) that ran the call.
    pub vcpu: u32,
    /// Memory accesses seen during the call (kernel mode, plus user mode when the plugin
    /// traces it).
    pub accesses: u64,
    /// How many of `accesses` user-mode code made (0 unless the plugin traces user mode).
    #[serde(default)]
    pub user: u64,
    /// Accesses kept for the conflict computation.
    pub kept: u64,
    /// Accesses dropped because the call's buffer was full.
    pub dropped: u64,
    /// Accesses whose physical address QEMU could not resolve (left out).
    pub unresolved: u64,
    /// Accesses to memory-mapped I/O (left out: not memory).
    pub io: u64,
}

/// Whether one side read, wrote, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rw {
    /// Read only.
    R,
    /// Written only.
    W,
    /// Read and written.
    Rw,
}

/// The privilege level of the code that made accesses, decided by the instruction's address
/// (x86-64: kernel code lives in the upper canonical half). Kernel code copying to or from user
/// memory is `Kernel`: what counts is who executed the access, not whose memory it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Kernel-mode instructions only.
    Kernel,
    /// User-mode instructions only.
    User,
    /// Both (one side of a location touched by user code and by the kernel on its behalf).
    Both,
}

/// Lowest kernel-mode address on x86-64 (upper canonical half, 4- and 5-level paging).
pub const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;

impl Mode {
    /// The mode of the code at instruction address `pc`.
    pub fn of_pc(pc: u64) -> Mode {
        if pc >= KERNEL_BASE {
            Mode::Kernel
        } else {
            Mode::User
        }
    }

    /// The mode of accesses of either mode.
    pub fn join(self, other: Mode) -> Mode {
        if self == other { self } else { Mode::Both }
    }

    /// `kernel`, `user` or `both`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Kernel => "kernel",
            Mode::User => "user",
            Mode::Both => "both",
        }
    }
}

/// How one call touched a location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    /// The representative instruction (a writing one when the side wrote).
    #[serde(with = "hex")]
    pub pc: u64,
    /// Whether the side read, wrote, or both.
    pub rw: Rw,
    /// Whether kernel-mode or user-mode instructions (or both) made the side's accesses.
    pub mode: Mode,
    /// Every distinct instruction of this side that touched the location (bounded), writers first.
    #[serde(with = "hex_vec")]
    pub pcs: Vec<u64>,
    /// The call stack when `pc` first touched the location: return addresses, innermost first
    /// (at most [`STACK_DEPTH`]); empty when the tracer kept no stacks (version 3 and older, or
    /// `stacks=off`) or the access ran with no known caller.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_vec")]
    pub stack: Vec<u64>,
}

/// A byte range that both calls touched, at least one writing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedLocation {
    /// Physical address of the first shared byte.
    #[serde(with = "hex")]
    pub addr: u64,
    /// Number of contiguous shared bytes (within one cache line).
    pub size: u32,
    /// The two call slots that shared the range, lower first (left out: 0 and 1).
    #[serde(default = "first_pair", skip_serializing_if = "is_first_pair")]
    pub slots: [u64; 2],
    /// The accesses of call `slots[0]` to the range.
    pub a: Side,
    /// The accesses of call `slots[1]` to the range.
    pub b: Side,
    /// The slab cache of the object holding the range (`dentry`, `kmalloc-64`), read from
    /// guest memory at the end of the test; `None` when not slab memory or not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The virtual address through which call A touched the first byte.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub vaddr: Option<u64>,
    /// The per-CPU area the range lies in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu: Option<PercpuPlace>,
}

/// A place in one CPU's per-CPU area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PercpuPlace {
    /// Whose area.
    pub cpu: u32,
    /// Offset into it: below the size of the image's `.data..percpu` this is the address of a
    /// static per-CPU variable (the template is linked at 0), above it dynamic per-CPU memory.
    #[serde(with = "hex")]
    pub offset: u64,
}

/// A cache line both calls touched, at least one writing, but with no byte in common.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalseSharing {
    /// Physical address of the cache line.
    #[serde(with = "hex")]
    pub line: u64,
    /// The two call slots that touched the line, lower first (left out: 0 and 1).
    #[serde(default = "first_pair", skip_serializing_if = "is_first_pair")]
    pub slots: [u64; 2],
    /// The accesses of call `slots[0]` to the line.
    pub a: Side,
    /// The accesses of call `slots[1]` to the line.
    pub b: Side,
    /// The slab cache of the line's memory, as for [`SharedLocation::cache`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The virtual address of the line as call A used it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_opt")]
    pub vaddr: Option<u64>,
    /// The per-CPU area the line lies in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percpu: Option<PercpuPlace>,
}

/// Parses a JSON Lines file of records; errors name the offending line.
pub fn parse_jsonl(text: &str) -> Result<Vec<TestRecord>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(i + 1, l))
        .collect()
}

fn parse_line(line: usize, text: &str) -> Result<TestRecord, ParseError> {
    // The version first, so that a record of another version gets a version error rather than
    // a field error (a version 1 record lacks `mode`).
    #[derive(Deserialize)]
    struct Header {
        v: u32,
    }
    let json = |source| ParseError::Json { line, source };
    let h: Header = serde_json::from_str(text).map_err(json)?;
    if !(RECORD_OLDEST_READ..=RECORD_VERSION).contains(&h.v) {
        return Err(ParseError::Version { line, found: h.v });
    }
    serde_json::from_str(text).map_err(json)
}

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A line is not a valid record.
    #[error("trace line {line} is not a valid test record: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A line was written by an incompatible tracer.
    #[error(
        "trace line {line} has record version {found}, but this commuter reads versions {RECORD_OLDEST_READ} to {RECORD_VERSION}: the tracer plugin is from another build; rebuild it (`cargo build --release --manifest-path crates/tracer/Cargo.toml --target-dir target/tracer`) and rerun the tests"
    )]
    Version {
        /// 1-based line number.
        line: usize,
        /// The version found.
        found: u32,
    },
}

/// Serde helpers for `u64` addresses as `"0x…"` strings (`#[serde(with = "hex")]`), for other
/// formats that carry addresses the same way.
pub mod hex {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `v` as a `0x` hex string.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    /// Reads a `0x` hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_hex(&s).ok_or_else(|| D::Error::custom(format!("not a 0x hex number: {s}")))
    }
}

/// Serde helpers for optional `u64` addresses as `"0x…"` strings.
pub mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `Some(v)` as a `0x` hex string (`None` is skipped by the field attribute).
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{v:#x}")),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional `0x` hex string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_hex(&s)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("not a 0x hex number: {s}"))),
        }
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&format!("{x:#x}"))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| {
                super::parse_hex(s)
                    .ok_or_else(|| D::Error::custom(format!("not a 0x hex number: {s}")))
            })
            .collect()
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(pc: u64, rw: Rw) -> Side {
        Side {
            pc,
            rw,
            mode: Mode::of_pc(pc),
            pcs: vec![pc],
            stack: vec![],
        }
    }

    fn record() -> TestRecord {
        TestRecord {
            v: RECORD_VERSION,
            test: 7,
            calls: vec![],
            overflow: false,
            shared: vec![SharedLocation {
                addr: 0x1000,
                size: 8,
                slots: FIRST_PAIR,
                a: side(0xffff_ffff_8100_0000, Rw::W),
                b: side(0xffff_ffff_8100_0010, Rw::R),
                cache: None,
                vaddr: None,
                percpu: None,
            }],
            false_sharing: vec![],
            errors: vec![],
        }
    }

    #[test]
    fn round_trips_with_hex_addresses() {
        let line = serde_json::to_string(&record()).unwrap();
        assert!(line.contains("\"pc\":\"0xffffffff81000000\""), "{line}");
        assert_eq!(
            parse_jsonl(&format!("{line}\n\n{line}\n")).unwrap().len(),
            2
        );
        assert_eq!(parse_jsonl(&line).unwrap()[0], record());
    }

    #[test]
    fn rejects_other_versions_and_bad_lines() {
        let mut r = record();
        r.v = 99;
        let bad = serde_json::to_string(&r).unwrap();
        assert!(matches!(
            parse_jsonl(&bad),
            Err(ParseError::Version { line: 1, found: 99 })
        ));
        assert!(matches!(
            parse_jsonl("{}\n"),
            Err(ParseError::Json { line: 1, .. })
        ));
        // A version 1 record (no `mode`) is refused for its version, naming the fix.
        let old = serde_json::to_string(&record())
            .unwrap()
            .replace("\"v\":4", "\"v\":1")
            .replace("\"mode\":\"kernel\",", "");
        assert!(!old.contains("mode"), "{old}");
        let e = parse_jsonl(&old).unwrap_err();
        assert!(
            matches!(e, ParseError::Version { line: 1, found: 1 }),
            "{e}"
        );
        assert!(e.to_string().contains("rebuild"), "{e}");
    }

    #[test]
    fn slots_are_left_out_for_the_first_pair_and_version_2_is_read() {
        let mut r = record();
        let pair = serde_json::to_string(&r).unwrap();
        assert!(!pair.contains("slots"), "{pair}");
        // A version 2 record (no `slots`) is calls 0 and 1.
        let old = pair.replace("\"v\":4", "\"v\":2");
        assert_eq!(parse_jsonl(&old).unwrap()[0].shared[0].slots, [0, 1]);
        r.shared[0].slots = [1, 2];
        let triple = serde_json::to_string(&r).unwrap();
        assert!(triple.contains("\"slots\":[1,2]"), "{triple}");
        assert_eq!(parse_jsonl(&triple).unwrap()[0], r);
    }

    #[test]
    fn stacks_are_optional_and_version_3_is_read() {
        let mut r = record();
        let bare = serde_json::to_string(&r).unwrap();
        assert!(!bare.contains("stack"), "{bare}");
        let v3 = bare.replace("\"v\":4", "\"v\":3");
        assert!(parse_jsonl(&v3).unwrap()[0].shared[0].a.stack.is_empty());
        r.shared[0].a.stack = vec![0xffff_ffff_8120_0000, 0xffff_ffff_8130_0000];
        let line = serde_json::to_string(&r).unwrap();
        assert!(
            line.contains("\"stack\":[\"0xffffffff81200000\",\"0xffffffff81300000\"]"),
            "{line}"
        );
        assert_eq!(parse_jsonl(&line).unwrap()[0], r);
    }

    #[test]
    fn modes_follow_the_pc_and_join() {
        assert_eq!(Mode::of_pc(0xffff_ffff_8100_0000), Mode::Kernel);
        assert_eq!(Mode::of_pc(0x40_1000), Mode::User);
        assert_eq!(Mode::User.join(Mode::User), Mode::User);
        assert_eq!(Mode::User.join(Mode::Kernel), Mode::Both);
        assert_eq!(Mode::Both.join(Mode::Kernel), Mode::Both);
        let mut r = record();
        r.shared[0].a = side(0x40_1000, Rw::W);
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"mode\":\"user\""), "{line}");
        assert_eq!(parse_jsonl(&line).unwrap()[0], r);
    }

    #[test]
    fn the_cache_name_is_optional_both_ways() {
        let mut r = record();
        let plain = serde_json::to_string(&r).unwrap();
        assert!(!plain.contains("cache"), "{plain}");
        r.shared[0].cache = Some("dentry".into());
        let named = serde_json::to_string(&r).unwrap();
        assert!(named.contains("\"cache\":\"dentry\""), "{named}");
        assert_eq!(parse_jsonl(&named).unwrap()[0], r);
        assert_eq!(parse_jsonl(&plain).unwrap()[0].shared[0].cache, None);
        r.shared[0].vaddr = Some(0xffff_8880_0000_1000);
        r.shared[0].percpu = Some(PercpuPlace {
            cpu: 1,
            offset: 0x2a40,
        });
        let placed = serde_json::to_string(&r).unwrap();
        assert!(
            placed.contains("\"vaddr\":\"0xffff888000001000\""),
            "{placed}"
        );
        assert!(placed.contains("\"offset\":\"0x2a40\""), "{placed}");
        assert_eq!(parse_jsonl(&placed).unwrap()[0], r);
    }

    #[test]
    fn conflict_free_needs_a_complete_record() {
        let mut r = record();
        assert_eq!(r.conflict_free(), Some(false));
        r.shared.clear();
        assert_eq!(r.conflict_free(), Some(true));
        r.overflow = true;
        assert_eq!(r.conflict_free(), None);
    }
}
