//! The `conflicts.json` schema: per test, whether its two calls were conflict-free, and if not,
//! every shared location with what it is and where each call touched it.
//!
//! Ordering is deterministic: tests by id (digit runs compared as numbers, so `t_2` < `t_10`),
//! locations by address, code sites in the tracer's order (writers first). Addresses are
//! `"0x…"` strings, like the tracer's records, because kernel addresses do not fit the 53-bit
//! integers many JSON readers use.
//!
//! Version 5 (written today) stores what many tests repeat once, in tables, and refers to it by
//! index: `frames` (function, file, line), code `sites` (pc, mode, symbol, offset and the
//! indices of their frames, innermost first) and `objects` (what a location is), each in order
//! of first use by the tests. A location's `what` is an index into `objects`, an access's
//! `sites` indices into `sites`. One table entry and one test per line:
//!
//! ```json
//! {"schema":"commuter.conflicts","version":5,
//! "target":{"name":"linux","version":"6.12.95+deb12-amd64","symbols":"vmlinux-6.12.95+deb12-amd64"},
//! "frames":[
//! {"function":"lockref_get_not_dead","file":"lib/lockref.c","line":137}
//! ],
//! "sites":[
//! {"pc":"0xffffffff8137a1c2","mode":"kernel","symbol":"lockref_get_not_dead","offset":"0x22","frames":[0]}
//! ],
//! "objects":[
//! {"kind":"slab","cache":"dentry","vaddr":"0xffff888002a4c1a8"}
//! ],
//! "tests":[
//! {"id":"stat_stat_0_0","calls":["stat","stat"],"status":"conflicted","shared":[{"addr":"0x2a4c1a8","size":4,"what":0,"a":{"rw":"rw","mode":"kernel","sites":[0]},"b":{"rw":"r","mode":"kernel","sites":[0]}}],"false_sharing":[],"mismatches":[],"errors":[]}
//! ]}
//! ```
//!
//! In memory every version is the same expanded structure ([`ConflictsFile`]: each access
//! holds its [`CodeSite`]s, each location its [`What`]); [`ConflictsFile::from_json`] reads
//! versions 3, 4 and 5 into it and [`ConflictsFile::to_json`] writes version 5. Version 4 is
//! the expanded structure as it is, in JSON:
//!
//! ```json
//! {"schema":"commuter.conflicts","version":4,
//!  "target":{"name":"linux","version":"6.12.95+deb12-amd64","symbols":"vmlinux-6.12.95+deb12-amd64"},
//!  "tests":[{"id":"stat_stat_0_0","calls":["stat","stat"],"status":"conflicted",
//!    "shared":[{"addr":"0x2a4c1a8","size":4,
//!      "what":{"kind":"slab","cache":"dentry","vaddr":"0xffff888002a4c1a8"},
//!      "a":{"rw":"rw","mode":"kernel","sites":[{"pc":"0xffffffff8137a1c2","mode":"kernel",
//!        "symbol":"lockref_get_not_dead",
//!        "offset":"0x22","frames":[{"function":"lockref_get_not_dead","file":"lib/lockref.c","line":137}]}]},
//!      "b":{...}}],
//!    "false_sharing":[],"mismatches":[],"errors":[]}]}
//! ```
//!
//! Version 2 added `what.kind` `"slab"` (a heap object in a named slab cache); version 1
//! readers, which refuse unknown kinds, would misread it, hence the bump. Version 3 added
//! `"percpu"` (a CPU's per-CPU area, with the static per-CPU variable when there is one) and the
//! `region` of `"dynamic"` memory (direct map, vmalloc space, the page array, ...), and stopped
//! naming memory the kernel gives back after boot after the image's symbols. Version 4 added
//! user-mode tracing: the required `mode` of every access and code site (`"kernel"` or
//! `"user"`, an access also `"both"`), `what.kind` `"user_static"` (a static object of the user
//! binary the guest ran) and the user regions `"heap"` and `"stack"` of `"dynamic"` memory;
//! user-mode code sites are symbolised against that binary. Version 5 moved frames, code sites
//! and objects into tables (a full POSIX run's file: 5.3 MB instead of 154 MB).
//! A version 3 file is read as version 4 with every access and site `kernel` (the tracer
//! recorded kernel-mode instructions only then).
//!
//! Version 6 is version 5 with tests of three calls (`commuter testgen -n 3`): `calls` names
//! each call, slot a first, and a location shared by two calls other than a and b names their
//! slots (`"slots":[0,2]`: calls a and c, on CPUs 1 and 3; left out for a and b). A triple's
//! conflicts are the pairs of its calls that shared memory, one location per pair. Only a file
//! with such a test is written as version 6: a file of pairs is version 5, byte for byte as
//! before, so every reader of version 5 still reads it.
//!
//! Version 7 adds call stacks: an access may carry the `stack` its representative (first)
//! site ran under, from the tracer's shadow call stack (record version 4): the callers' return
//! addresses, innermost first, each a code site whose frames are those of the call instruction
//! (symbolised at the return address minus one, so a call at a function's end is its caller's)
//! and whose `pc` is the return address. In the tables it is a list of indices into `sites`, so
//! a stack costs a few numbers per access. Left out when empty; only a file with some stack is
//! written as version 7, so a run without stacks keeps its version 5 or 6 bytes.
//!
//! A part of a sharded run carries `"shard":{"index":2,"count":4,"suite_digest":"…",
//! "suite_tests":13180}` after `target`; the field is optional, so it needed no version bump
//! (a whole run, and the merge of all parts, has none).

use commuter_trace_format::record::{Mode, Rw, hex};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Value of the `schema` field.
pub const CONFLICTS_SCHEMA: &str = "commuter.conflicts";
/// The newest version of the schema, written when an access carries a call stack; bumped on
/// incompatible changes.
pub const CONFLICTS_VERSION: u32 = 7;
/// The version a file with a test of more than two calls and no call stack is written as.
pub const CONFLICTS_TRIPLES_VERSION: u32 = 6;
/// The version a file of pairs only is written as (version 6 adds nothing a pair uses).
pub const CONFLICTS_PAIRS_VERSION: u32 = 5;
/// The oldest version read ([`ConflictsFile::from_json`] reads this one up to
/// [`CONFLICTS_VERSION`]).
pub const CONFLICTS_OLDEST_READ: u32 = 3;

/// A whole `conflicts.json`, in memory: every version reads into this expanded structure, and
/// its serde form is version 4's (version 5 is [`CompactFile`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictsFile {
    /// Always [`CONFLICTS_SCHEMA`].
    pub schema: String,
    /// [`CONFLICTS_VERSION`] once read or built: the in-memory structure is the same for every
    /// version, and [`ConflictsFile::to_json`] writes the current one.
    pub version: u32,
    /// What the tests ran on.
    pub target: Target,
    /// Set in the part of a sharded run (`commuter run --shard I/N`): which part of which
    /// suite this is. Absent in a whole run's file (and in the merge of all parts), so a
    /// version 4 file without it is read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// One entry per test, sorted by [`natural_cmp`] of the ids.
    pub tests: Vec<TestConflicts>,
}

/// Which part of a suite a partial `conflicts.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// The part, from 1 to `count`.
    pub index: u32,
    /// How many parts the suite was cut into.
    pub count: u32,
    /// The digest of the suite's `tests.json` (its bytes), so parts of different suites are
    /// never joined.
    pub suite_digest: String,
    /// Tests in the whole suite, so a merge can tell that every test is there.
    pub suite_tests: usize,
}

/// The implementation the tests ran on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Target kind, e.g. `linux`.
    pub name: String,
    /// Its version, e.g. the kernel ABI `6.12.95+deb12-amd64`.
    pub version: Option<String>,
    /// File name of the image symbols came from; `None` when not symbolised.
    pub symbols: Option<String>,
}

/// What a test showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The calls shared no byte, and the trace is complete.
    ConflictFree,
    /// The calls shared at least one byte, one of them writing.
    Conflicted,
    /// The test did not run cleanly enough to say (see its errors).
    Unknown,
}

/// One test's conflicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestConflicts {
    /// The test's id in `tests.json`.
    pub id: String,
    /// Call names of slot a, slot b (and slot c, in a call set of three).
    pub calls: Vec<String>,
    /// The verdict.
    pub status: Status,
    /// Byte ranges both calls touched, one writing (the rule's conflicts).
    pub shared: Vec<Location>,
    /// Cache lines both calls touched, one writing, with no byte in common (reported apart:
    /// they cost scalability too, but the rule does not count them).
    pub false_sharing: Vec<Location>,
    /// Calls whose result differed from the model's expectation.
    pub mismatches: Vec<Mismatch>,
    /// Why the verdict may be incomplete.
    pub errors: Vec<TestError>,
}

/// A memory location both calls touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Physical address of the first byte (of the line, for false sharing).
    #[serde(with = "hex")]
    pub addr: u64,
    /// Bytes (64 for a falsely shared line).
    pub size: u32,
    /// The two call slots that touched it, lower first: `[0, 1]` (calls a and b, left out of
    /// the file) for a pair; in a test of three calls also `[0, 2]` or `[1, 2]`.
    #[serde(default = "first_pair", skip_serializing_if = "is_first_pair")]
    pub slots: [u8; 2],
    /// What lives there.
    pub what: What,
    /// How call `slots[0]` touched it.
    pub a: Access,
    /// How call `slots[1]` touched it.
    pub b: Access,
}

/// The slots of calls a and b.
pub const FIRST_PAIR: [u8; 2] = [0, 1];

fn first_pair() -> [u8; 2] {
    FIRST_PAIR
}

/// Whether `slots` are calls a and b (serde: left out).
pub fn is_first_pair(slots: &[u8; 2]) -> bool {
    *slots == FIRST_PAIR
}

/// The letter of call slot `slot`: `a`, `b`, `c`, ...
pub fn slot_name(slot: usize) -> String {
    char::from(b'a'.saturating_add(u8::try_from(slot).unwrap_or(25).min(25))).to_string()
}

impl Location {
    /// The two calls that touched the location, as slot letters: `ab`, `ac`, `bc`.
    pub fn pair_name(&self) -> String {
        format!(
            "{}{}",
            slot_name(usize::from(self.slots[0])),
            slot_name(usize::from(self.slots[1]))
        )
    }
}

/// What a physical address holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum What {
    /// Inside a static object of the kernel image.
    Static {
        /// The ELF symbol.
        symbol: String,
        /// Byte offset into it.
        #[serde(with = "hex")]
        offset: u64,
        /// Its ELF section.
        section: String,
        /// The kernel virtual address.
        #[serde(with = "hex")]
        vaddr: u64,
    },
    /// In the kernel image, but in no sized symbol (padding, linker-generated tables).
    Section {
        /// The ELF section.
        section: String,
        /// Byte offset into it.
        #[serde(with = "hex")]
        offset: u64,
        /// The kernel virtual address.
        #[serde(with = "hex")]
        vaddr: u64,
    },
    /// An object of a slab cache (the tracer read the cache from the guest's `struct slab`
    /// while the test's objects existed).
    Slab {
        /// The cache's name, e.g. `dentry`, `shmem_inode_cache`, `kmalloc-64`.
        cache: String,
        /// The direct-map virtual address.
        #[serde(with = "hex")]
        vaddr: u64,
    },
    /// In one CPU's per-CPU area.
    Percpu {
        /// Whose area.
        cpu: u32,
        /// The static per-CPU variable (from the image's `.data..percpu`), or `None` in the
        /// area's dynamic part.
        symbol: Option<String>,
        /// Byte offset into the variable, or into the area when there is none.
        #[serde(with = "hex")]
        offset: u64,
    },
    /// Inside the user binary the guest ran (a static, non-PIE executable at its link
    /// address): one of its static objects (`.data`, `.bss`), or a section where no symbol
    /// covers the address.
    UserStatic {
        /// The ELF symbol (demangled), or `None` when only the section is known.
        symbol: Option<String>,
        /// Byte offset into the symbol, or into the section when there is none.
        #[serde(with = "hex")]
        offset: u64,
        /// Its ELF section.
        section: String,
        /// The user virtual address call A used.
        #[serde(with = "hex")]
        vaddr: u64,
    },
    /// Other dynamically allocated memory: no static object, no slab cache, no per-CPU area.
    Dynamic {
        /// Which part of the kernel's address space call A reached it through.
        region: Region,
        /// That virtual address (the direct-map address when the tracer did not say).
        #[serde(with = "hex")]
        vaddr: u64,
    },
    /// Not symbolised (no kernel image given).
    Unknown,
}

/// One call's accesses to a location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Read, written, or both.
    pub rw: Rw,
    /// Whether kernel-mode or user-mode instructions made them, or both (the tracer records
    /// user mode only when asked).
    pub mode: Mode,
    /// The instructions that touched it (writers first), symbolised.
    pub sites: Vec<CodeSite>,
    /// The call stack of the first site (version 7): the callers, innermost first, each the
    /// call instruction's site with the return address as `pc`; empty when not recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<CodeSite>,
}

/// A symbolised instruction address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSite {
    /// The instruction address.
    #[serde(with = "hex")]
    pub pc: u64,
    /// `kernel` or `user` (by the address: kernel code is in the upper half); a user site is
    /// symbolised against the user binary, a kernel site against the kernel image.
    pub mode: Mode,
    /// The ELF function symbol containing it (demangled for user binaries).
    pub symbol: Option<String>,
    /// Offset of `pc` into `symbol`.
    #[serde(with = "hex")]
    pub offset: u64,
    /// Source frames, innermost (inlined) first; the last is the function the compiler emitted.
    pub frames: Vec<Frame>,
}

/// One source-level frame of a code site.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// Function name.
    pub function: Option<String>,
    /// Source file, relative to the source tree where the build directory is known.
    pub file: Option<String>,
    /// Line.
    pub line: Option<u32>,
}

/// A call whose result differed from the model's expectation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mismatch {
    /// `a`, `b` (or `c`).
    pub slot: String,
    /// The call's name.
    pub call: String,
    /// How it differed, as the guest reported.
    pub details: Vec<String>,
}

/// Why a test's verdict may be incomplete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestError {
    /// The category.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

/// Categories of [`TestError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A call's trace buffer overflowed: conflicts may be missing.
    Overflow,
    /// The tracer reported a protocol or internal error, or wrote no record for the test.
    Tracer,
    /// The guest could not set up or run the test.
    Guest,
    /// The VM crashed or timed out before the test finished.
    Vm,
}

impl CodeSite {
    /// A one-line label: innermost function and line, and the emitted function when the
    /// innermost one was inlined into it, e.g. `lockref_get (lib/lockref.c:52) in dget`; user
    /// sites start with `user:`.
    pub fn label(&self) -> String {
        let user = if self.mode == Mode::User { "user:" } else { "" };
        let Some(inner) = self.frames.first() else {
            return match &self.symbol {
                Some(s) => format!("{user}{s}+{:#x}", self.offset),
                None => format!("{user}{:#x}", self.pc),
            };
        };
        let mut s = String::from(user);
        s.push_str(inner.function.as_deref().unwrap_or("??"));
        if let (Some(file), Some(line)) = (&inner.file, inner.line) {
            s.push_str(&format!(" ({file}:{line})"));
        }
        let outer = self.frames.last().and_then(|f| f.function.as_ref());
        if let (true, Some(outer)) = (self.frames.len() > 1, outer) {
            s.push_str(&format!(" in {outer}"));
        }
        s
    }
}

/// The part of the x86-64 kernel address space (4-level paging, no KASLR) a dynamic location
/// was reached through; see the kernel's `Documentation/arch/x86/x86_64/mm.rst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// The direct map of all physical memory: page-allocator pages (page tables, page cache,
    /// pipe buffers), memory given back after boot, slab memory of unknown cache.
    DirectMap,
    /// vmalloc and ioremap space (vmalloc'ed buffers, kernel stacks, per-CPU chunks beyond the
    /// first).
    Vmalloc,
    /// The `struct page` array (vmemmap): page metadata such as reference counts.
    PageMap,
    /// The CPU entry area (per-CPU GDT, TSS and entry stacks).
    CpuEntryArea,
    /// Kernel modules.
    Modules,
    /// A user-space address not known to be heap or stack: without a user binary every user
    /// address, with one those below its image.
    User,
    /// User memory the program allocated: its brk heap and its mappings (anonymous or file
    /// pages it mapped), everything between the binary's image and the stack area. Decided
    /// only when the user binary is known.
    Heap,
    /// The user stack area (the top of the user address space where Linux randomises the
    /// main stack; see [`crate::user`]). Decided only when the user binary is known.
    Stack,
    /// An address outside every region above.
    Other,
}

impl Region {
    /// The region of a virtual address.
    pub fn of(vaddr: u64) -> Region {
        match vaddr {
            0..=0x0000_7fff_ffff_ffff => Region::User,
            0xffff_8880_0000_0000..=0xffff_c87f_ffff_ffff => Region::DirectMap,
            0xffff_c900_0000_0000..=0xffff_e8ff_ffff_ffff => Region::Vmalloc,
            0xffff_ea00_0000_0000..=0xffff_eaff_ffff_ffff => Region::PageMap,
            0xffff_fe00_0000_0000..=0xffff_fe7f_ffff_ffff => Region::CpuEntryArea,
            0xffff_ffff_a000_0000..=0xffff_ffff_feff_ffff => Region::Modules,
            _ => Region::Other,
        }
    }

    /// A short name: `direct-map`, `vmalloc`, `page-map`, ...
    pub fn name(self) -> &'static str {
        match self {
            Region::DirectMap => "direct-map",
            Region::Vmalloc => "vmalloc",
            Region::PageMap => "page-map",
            Region::CpuEntryArea => "cpu-entry-area",
            Region::Modules => "modules",
            Region::User => "user",
            Region::Heap => "heap",
            Region::Stack => "stack",
            Region::Other => "other",
        }
    }
}

impl What {
    /// A one-line label: `jiffies+0x8`, `.data+0x40`, `slab:dentry`, `percpu:runqueues+0x40`,
    /// `percpu+0x1f000`, `user:COUNTER+0x8`, `user:.bss+0x10`, `direct-map`, `heap`, `?`.
    pub fn label(&self) -> String {
        match self {
            What::Static { symbol, offset, .. } if *offset == 0 => symbol.clone(),
            What::Static { symbol, offset, .. } => format!("{symbol}+{offset:#x}"),
            What::Section {
                section, offset, ..
            } => format!("{section}+{offset:#x}"),
            What::Slab { cache, .. } => format!("slab:{cache}"),
            What::Percpu {
                symbol: Some(s),
                offset: 0,
                ..
            } => format!("percpu:{s}"),
            What::Percpu {
                symbol: Some(s),
                offset,
                ..
            } => format!("percpu:{s}+{offset:#x}"),
            What::Percpu { offset, .. } => format!("percpu+{offset:#x}"),
            What::UserStatic {
                symbol: Some(s),
                offset: 0,
                ..
            } => format!("user:{s}"),
            What::UserStatic {
                symbol: Some(s),
                offset,
                ..
            } => format!("user:{s}+{offset:#x}"),
            What::UserStatic {
                section, offset, ..
            } => format!("user:{section}+{offset:#x}"),
            What::Dynamic { region, .. } => region.name().into(),
            What::Unknown => "?".into(),
        }
    }
}

/// Version 5 on disk: [`ConflictsFile`] with its frames, code sites and objects stored once,
/// in tables, in order of first use (tests in order, then locations, shared before false
/// sharing, side a before b, sites in order, frames innermost first), and referred to by
/// index. Built by [`ConflictsFile::to_json`] and expanded by [`ConflictsFile::from_json`];
/// other code works on the expanded structure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactFile {
    /// Always [`CONFLICTS_SCHEMA`].
    pub schema: String,
    /// 5, 6 when a test has more than two calls, 7 when an access has a call stack.
    pub version: u32,
    /// What the tests ran on.
    pub target: Target,
    /// As [`ConflictsFile::shard`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Every distinct source frame.
    pub frames: Vec<Frame>,
    /// Every distinct code site.
    pub sites: Vec<CompactSite>,
    /// Every distinct object (what a location is).
    pub objects: Vec<What>,
    /// One entry per test, sorted by [`natural_cmp`] of the ids.
    pub tests: Vec<CompactTest>,
}

/// A [`CodeSite`] whose frames are indices into [`CompactFile::frames`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactSite {
    /// As [`CodeSite::pc`].
    #[serde(with = "hex")]
    pub pc: u64,
    /// As [`CodeSite::mode`].
    pub mode: Mode,
    /// As [`CodeSite::symbol`].
    pub symbol: Option<String>,
    /// As [`CodeSite::offset`].
    #[serde(with = "hex")]
    pub offset: u64,
    /// Indices into [`CompactFile::frames`], innermost (inlined) first.
    pub frames: Vec<u32>,
}

/// A [`TestConflicts`] whose locations refer to the tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactTest {
    /// As [`TestConflicts::id`].
    pub id: String,
    /// As [`TestConflicts::calls`].
    pub calls: Vec<String>,
    /// As [`TestConflicts::status`].
    pub status: Status,
    /// As [`TestConflicts::shared`].
    pub shared: Vec<CompactLocation>,
    /// As [`TestConflicts::false_sharing`].
    pub false_sharing: Vec<CompactLocation>,
    /// As [`TestConflicts::mismatches`].
    pub mismatches: Vec<Mismatch>,
    /// As [`TestConflicts::errors`].
    pub errors: Vec<TestError>,
}

/// A [`Location`] whose object is an index into [`CompactFile::objects`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactLocation {
    /// As [`Location::addr`].
    #[serde(with = "hex")]
    pub addr: u64,
    /// As [`Location::size`].
    pub size: u32,
    /// As [`Location::slots`] (version 6; left out for calls a and b).
    #[serde(default = "first_pair", skip_serializing_if = "is_first_pair")]
    pub slots: [u8; 2],
    /// Index into [`CompactFile::objects`].
    pub what: u32,
    /// How call `slots[0]` touched it.
    pub a: CompactAccess,
    /// How call `slots[1]` touched it.
    pub b: CompactAccess,
}

/// An [`Access`] whose sites are indices into [`CompactFile::sites`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactAccess {
    /// As [`Access::rw`].
    pub rw: Rw,
    /// As [`Access::mode`].
    pub mode: Mode,
    /// Indices into [`CompactFile::sites`], writers first.
    pub sites: Vec<u32>,
    /// As [`Access::stack`]: indices into [`CompactFile::sites`], innermost caller first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<u32>,
}

/// Orders strings with runs of ASCII digits compared as numbers (`t_2` before `t_10`), then
/// bytewise, so that every string has one place.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ka, kb) = (natural_key(a), natural_key(b));
    ka.cmp(&kb).then_with(|| a.cmp(b))
}

/// Chunks of a string: digit runs as (length without leading zeros, digits), so that numeric
/// comparison needs no parsing and no overflow.
fn natural_key(s: &str) -> Vec<(bool, usize, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        let digit = c.is_ascii_digit();
        let end = rest
            .find(|ch: char| ch.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        if digit {
            let trimmed = chunk.trim_start_matches('0');
            out.push((true, trimmed.len(), trimmed));
        } else {
            out.push((false, 0, chunk));
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers() {
        let mut v = vec!["t_10", "t_2", "t_1_3", "s", "t_02"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["s", "t_1_3", "t_02", "t_2", "t_10"]);
    }

    #[test]
    fn regions_follow_the_x86_64_memory_map() {
        assert_eq!(Region::of(0x7fff_0000_0000), Region::User);
        assert_eq!(Region::of(0xffff_8880_0200_0000), Region::DirectMap);
        assert_eq!(Region::of(0xffff_c900_0001_0000), Region::Vmalloc);
        assert_eq!(Region::of(0xffff_ea00_0008_0040), Region::PageMap);
        assert_eq!(Region::of(0xffff_fe00_0000_1000), Region::CpuEntryArea);
        assert_eq!(Region::of(0xffff_ffff_c000_0000), Region::Modules);
        assert_eq!(
            Region::of(0xffff_8000_0000_0000),
            Region::Other,
            "the guard hole"
        );
        let percpu = What::Percpu {
            cpu: 1,
            symbol: Some("runqueues".into()),
            offset: 0x40,
        };
        assert_eq!(percpu.label(), "percpu:runqueues+0x40");
        let page = What::Dynamic {
            region: Region::PageMap,
            vaddr: 0xffff_ea00_0008_0040,
        };
        assert_eq!(page.label(), "page-map");
    }

    #[test]
    fn labels_name_inlining() {
        let frame = |f: &str, line| Frame {
            function: Some(f.into()),
            file: Some("lib/lockref.c".into()),
            line: Some(line),
        };
        let mut site = CodeSite {
            pc: 0x10,
            mode: Mode::Kernel,
            symbol: Some("dget".into()),
            offset: 4,
            frames: vec![frame("lockref_get", 52), frame("dget", 7)],
        };
        assert_eq!(site.label(), "lockref_get (lib/lockref.c:52) in dget");
        site.frames.truncate(1);
        assert_eq!(site.label(), "lockref_get (lib/lockref.c:52)");
        site.frames.clear();
        assert_eq!(site.label(), "dget+0x4");
        site.mode = Mode::User;
        assert_eq!(site.label(), "user:dget+0x4");
        let ustatic = What::UserStatic {
            symbol: Some("COUNTER".into()),
            offset: 8,
            section: ".bss".into(),
            vaddr: 0x4c_1008,
        };
        assert_eq!(ustatic.label(), "user:COUNTER+0x8");
        let heap = What::Dynamic {
            region: Region::Heap,
            vaddr: 0x100_0000_0000,
        };
        assert_eq!(heap.label(), "heap");
    }
}
