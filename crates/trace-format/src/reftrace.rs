//! Reference traces (`commuter trace`): what the plugin's `mode=reftrace` records for a workload
//! and hands to the driver, which writes it in kVMTrace's four formats (`commuter-reftrace`).
//!
//! A [`Reference`] is one reference of the workload: its [`Kind`] (VM read, VM write, FS read,
//! FS write), its canonical page number (the guest-physical frame number: a page shared by two
//! mappings, two processes or the page cache and a mapping is one number wherever it is seen),
//! whether the page is anonymous or a file page ([`Backing`]), and the pid and tid of the task
//! that made it.
//!
//! # The plugin's stream (`out=` of `mode=reftrace`)
//!
//! Little-endian, no padding:
//!
//! | bytes | content |
//! |---|---|
//! | 16 | header: [`STREAM_MAGIC`] (8 bytes), version [`STREAM_VERSION`] (u32), 4 zero bytes |
//! | 18 each | a reference: kind (u8, [`Kind`]), backing (u8, [`Backing`]), pid (u32), tid (u32), page (u64) |
//! | 18 | the end record: [`END_TAG`] (u8), flags (u8, [`End`]), unresolved (u32), unknown task (u32), references (u64) |
//!
//! A stream without its end record was cut short (the VM died, or the workload never ended).
//!
//! # The plugin's layout argument
//!
//! `reftrace=` carries [`RefTraceLayout`]: where the plugin finds, in guest memory, the task a
//! vCPU runs (hooked at `__switch_to`) and the `struct page` of a frame (its `mapping` says
//! anonymous or file).

use std::fmt;
use std::str::FromStr;

/// First bytes of the plugin's stream.
pub const STREAM_MAGIC: [u8; 8] = *b"CMTRRAW\0";
/// Version of the plugin's stream.
pub const STREAM_VERSION: u32 = 1;
/// Bytes of the stream header.
pub const HEADER_LEN: usize = 16;
/// Bytes of a stream record (a reference or the end record).
pub const RECORD_LEN: usize = 18;
/// The kind byte of the end record.
pub const END_TAG: u8 = 0xff;
/// Pages are 4 KiB: a canonical page number is a physical address shifted right by this.
pub const PAGE_SHIFT: u32 = 12;
/// User addresses are below this (x86-64, 4-level paging: the lower canonical half).
pub const USER_TOP: u64 = 0x0000_8000_0000_0000;

/// What a reference does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A load by user-mode code.
    VmRead = 0,
    /// A store by user-mode code.
    VmWrite = 1,
    /// The kernel copied from a page-cache page to user memory (a read-family call).
    FsRead = 2,
    /// The kernel copied from user memory to a page-cache page (a write-family call).
    FsWrite = 3,
}

impl Kind {
    /// All kinds, in code order.
    pub const ALL: [Kind; 4] = [Kind::VmRead, Kind::VmWrite, Kind::FsRead, Kind::FsWrite];

    /// The kind of a code byte.
    pub fn from_code(code: u8) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| *k as u8 == code)
    }

    /// The short name used in text output: `R`, `W`, `FR`, `FW`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::VmRead => "R",
            Kind::VmWrite => "W",
            Kind::FsRead => "FR",
            Kind::FsWrite => "FW",
        }
    }
}

/// What backs a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Backing {
    /// Not a file page: `page->mapping` is null or has `PAGE_MAPPING_ANON` set (anonymous
    /// memory, the shared zero page, the vDSO).
    Anon = 0,
    /// A page-cache page: `page->mapping` is an `address_space` (low bits clear, non-null).
    File = 1,
}

impl Backing {
    /// The backing of a code byte.
    pub fn from_code(code: u8) -> Option<Backing> {
        match code {
            0 => Some(Backing::Anon),
            1 => Some(Backing::File),
            _ => None,
        }
    }

    /// `anon` or `file`.
    pub fn label(self) -> &'static str {
        match self {
            Backing::Anon => "anon",
            Backing::File => "file",
        }
    }

    /// The backing that `page->mapping`'s value says (the head page's, for a compound page).
    pub fn of_mapping(mapping: u64) -> Backing {
        // PAGE_MAPPING_ANON is bit 0, PAGE_MAPPING_MOVABLE bit 1 (KSM sets both): any of
        // them means the word is not an address_space pointer.
        if mapping == 0 || mapping & 3 != 0 {
            Backing::Anon
        } else {
            Backing::File
        }
    }
}

/// One reference of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// What it does.
    pub kind: Kind,
    /// Anonymous or file page.
    pub backing: Backing,
    /// The process (thread group) id.
    pub pid: u32,
    /// The thread id.
    pub tid: u32,
    /// The canonical page number: the guest-physical frame number.
    pub page: u64,
}

impl Reference {
    /// The stream encoding.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = self.kind as u8;
        b[1] = self.backing as u8;
        b[2..6].copy_from_slice(&self.pid.to_le_bytes());
        b[6..10].copy_from_slice(&self.tid.to_le_bytes());
        b[10..18].copy_from_slice(&self.page.to_le_bytes());
        b
    }
}

/// The end record: how the recording went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct End {
    /// References written before it.
    pub references: u64,
    /// Accesses of the workload whose physical address QEMU could not give (not recorded).
    pub unresolved: u32,
    /// Accesses made while the plugin did not know the vCPU's task (not recorded).
    pub unknown_task: u32,
    /// The workload began before the plugin's memory instrumentation was active: its first
    /// references may be missing.
    pub late: bool,
    /// Some `struct page` could not be read (those pages were called anonymous).
    pub unreadable_pages: bool,
}

impl End {
    /// The stream encoding.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0] = END_TAG;
        b[1] = u8::from(self.late) | (u8::from(self.unreadable_pages) << 1);
        b[2..6].copy_from_slice(&self.unresolved.to_le_bytes());
        b[6..10].copy_from_slice(&self.unknown_task.to_le_bytes());
        b[10..18].copy_from_slice(&self.references.to_le_bytes());
        b
    }
}

/// The stream header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[..8].copy_from_slice(&STREAM_MAGIC);
    b[8..12].copy_from_slice(&STREAM_VERSION.to_le_bytes());
    b
}

/// A stream that does not decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Not a reference stream, or of another version.
    #[error(
        "not a reference stream of version {STREAM_VERSION} (bad header): was the plugin run with mode=reftrace, and is it from this build?"
    )]
    Header,
    /// A record has an unknown kind or backing.
    #[error("reference stream record {index} is malformed (kind {kind:#x}, backing {backing:#x})")]
    Record {
        /// Its index.
        index: u64,
        /// Its kind byte.
        kind: u8,
        /// Its backing byte.
        backing: u8,
    },
    /// No end record: the recording was cut short.
    #[error(
        "the reference stream ends after {0} references without its end record: the workload did not finish (or the VM stopped) before the end marker"
    )]
    Truncated(u64),
    /// The end record's count is not the number of references.
    #[error(
        "the reference stream's end record counts {counted} references, the stream has {found}"
    )]
    Count {
        /// The end record's count.
        counted: u64,
        /// References in the stream.
        found: u64,
    },
    /// Bytes after the end record.
    #[error("bytes after the reference stream's end record")]
    Trailing,
}

/// Decodes a whole stream: the references in order, and the end record.
pub fn decode_stream(bytes: &[u8]) -> Result<(Vec<Reference>, End), StreamError> {
    if bytes.len() < HEADER_LEN || bytes[..HEADER_LEN] != header() {
        return Err(StreamError::Header);
    }
    let body = &bytes[HEADER_LEN..];
    let mut refs = Vec::with_capacity(body.len() / RECORD_LEN);
    let mut chunks = body.chunks_exact(RECORD_LEN);
    for (index, r) in chunks.by_ref().enumerate() {
        let index = index as u64;
        if r[0] == END_TAG {
            let u32_at = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
            let mut count = [0u8; 8];
            count.copy_from_slice(&r[10..18]);
            let end = End {
                references: u64::from_le_bytes(count),
                unresolved: u32_at(2),
                unknown_task: u32_at(6),
                late: r[1] & 1 != 0,
                unreadable_pages: r[1] & 2 != 0,
            };
            if end.references != index {
                return Err(StreamError::Count {
                    counted: end.references,
                    found: index,
                });
            }
            let consumed = HEADER_LEN + (refs.len() + 1) * RECORD_LEN;
            if bytes.len() != consumed {
                return Err(StreamError::Trailing);
            }
            return Ok((refs, end));
        }
        let (Some(kind), Some(backing)) = (Kind::from_code(r[0]), Backing::from_code(r[1])) else {
            return Err(StreamError::Record {
                index,
                kind: r[0],
                backing: r[1],
            });
        };
        let mut page = [0u8; 8];
        page.copy_from_slice(&r[10..18]);
        refs.push(Reference {
            kind,
            backing,
            pid: u32::from_le_bytes([r[2], r[3], r[4], r[5]]),
            tid: u32::from_le_bytes([r[6], r[7], r[8], r[9]]),
            page: u64::from_le_bytes(page),
        });
    }
    Err(StreamError::Truncated(refs.len() as u64))
}

/// Where the plugin finds what it reads in guest memory, from the vmlinux (symbols and DWARF),
/// handed over as `reftrace=` (colon-separated 0x numbers, in field order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefTraceLayout {
    /// Address of `__switch_to(prev, next)`: at its first instruction `%rsi` is the task the
    /// vCPU runs next.
    pub switch_to: u64,
    /// Offset of `pid` (the thread id) in `struct task_struct`.
    pub task_pid: u64,
    /// Offset of `tgid` (the process id) in `struct task_struct`.
    pub task_tgid: u64,
    /// Address of the variable `vmemmap_base` (the `struct page` array).
    pub vmemmap_base: u64,
    /// `sizeof(struct page)`.
    pub page_size: u64,
    /// Offset of `mapping` in `struct page`.
    pub page_mapping: u64,
    /// Offset of `compound_head` in `struct page` (bit 0 set: a tail page, the rest points to
    /// the head).
    pub compound_head: u64,
}

impl RefTraceLayout {
    /// The plugin argument carrying this layout: `reftrace=<value>`.
    pub fn plugin_arg(&self) -> String {
        format!("reftrace={self}")
    }
}

impl fmt::Display for RefTraceLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}",
            self.switch_to,
            self.task_pid,
            self.task_tgid,
            self.vmemmap_base,
            self.page_size,
            self.page_mapping,
            self.compound_head
        )
    }
}

/// A `reftrace=` value that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad reference-trace layout `{0}`: expected 7 colon-separated 0x numbers (__switch_to:task.pid:task.tgid:vmemmap_base:sizeof(page):page.mapping:page.compound_head)"
)]
pub struct RefTraceLayoutError(pub String);

impl FromStr for RefTraceLayout {
    type Err = RefTraceLayoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RefTraceLayoutError(s.to_owned());
        let fields = crate::hex_fields(s).ok_or_else(err)?;
        let [
            switch_to,
            task_pid,
            task_tgid,
            vmemmap_base,
            page_size,
            page_mapping,
            compound_head,
        ] = fields[..]
        else {
            return Err(err());
        };
        if page_size == 0 {
            return Err(err());
        }
        Ok(RefTraceLayout {
            switch_to,
            task_pid,
            task_tgid,
            vmemmap_base,
            page_size,
            page_mapping,
            compound_head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: Kind, backing: Backing, pid: u32, tid: u32, page: u64) -> Reference {
        Reference {
            kind,
            backing,
            pid,
            tid,
            page,
        }
    }

    fn stream(refs: &[Reference], end: Option<End>) -> Vec<u8> {
        let mut b = header().to_vec();
        for x in refs {
            b.extend_from_slice(&x.encode());
        }
        if let Some(e) = end {
            b.extend_from_slice(&e.encode());
        }
        b
    }

    #[test]
    fn a_stream_round_trips() {
        let refs = [
            r(Kind::VmWrite, Backing::Anon, 60, 60, 0x1_2345),
            r(Kind::FsRead, Backing::File, 60, 61, u64::MAX >> 12),
            r(Kind::FsWrite, Backing::File, u32::MAX, 7, 0),
            r(Kind::VmRead, Backing::File, 1, 2, 3),
        ];
        let end = End {
            references: 4,
            unresolved: 3,
            unknown_task: 9,
            late: true,
            unreadable_pages: false,
        };
        assert_eq!(
            decode_stream(&stream(&refs, Some(end))),
            Ok((refs.to_vec(), end))
        );
        let empty = End::default();
        assert_eq!(
            decode_stream(&stream(&[], Some(empty))),
            Ok((vec![], empty))
        );
    }

    #[test]
    fn bad_streams_say_what_is_wrong() {
        let one = [r(Kind::VmRead, Backing::Anon, 1, 1, 1)];
        assert_eq!(decode_stream(b"nope"), Err(StreamError::Header));
        assert_eq!(
            decode_stream(&stream(&one, None)),
            Err(StreamError::Truncated(1))
        );
        let wrong_count = End {
            references: 2,
            ..End::default()
        };
        assert_eq!(
            decode_stream(&stream(&one, Some(wrong_count))),
            Err(StreamError::Count {
                counted: 2,
                found: 1
            })
        );
        let mut b = stream(
            &one,
            Some(End {
                references: 1,
                ..End::default()
            }),
        );
        b.push(0);
        assert_eq!(decode_stream(&b), Err(StreamError::Trailing));
        let mut b = stream(&one, None);
        b[HEADER_LEN] = 9;
        assert!(matches!(
            decode_stream(&b),
            Err(StreamError::Record {
                index: 0,
                kind: 9,
                ..
            })
        ));
    }

    #[test]
    fn mapping_words_tell_anonymous_from_file_pages() {
        assert_eq!(Backing::of_mapping(0), Backing::Anon);
        assert_eq!(
            Backing::of_mapping(0xffff_8880_0123_4001),
            Backing::Anon,
            "PAGE_MAPPING_ANON"
        );
        assert_eq!(
            Backing::of_mapping(0xffff_8880_0123_4003),
            Backing::Anon,
            "KSM"
        );
        assert_eq!(Backing::of_mapping(0xffff_8880_0123_4560), Backing::File);
    }

    #[test]
    fn the_layout_round_trips_through_the_plugin_argument() {
        let l = RefTraceLayout {
            switch_to: 0xffff_ffff_8100_1230,
            task_pid: 0x9a8,
            task_tgid: 0x9ac,
            vmemmap_base: 0xffff_ffff_8260_0000,
            page_size: 0x40,
            page_mapping: 0x18,
            compound_head: 0x8,
        };
        let arg = l.plugin_arg();
        assert!(!arg.contains(','), "{arg}");
        assert_eq!(arg.strip_prefix("reftrace=").unwrap().parse(), Ok(l));
        for bad in [
            "",
            "0x1:0x2",
            "0x1:0x2:0x3:0x4:0x0:0x6:0x7",
            "1:2:3:4:5:6:7",
        ] {
            assert!(bad.parse::<RefTraceLayout>().is_err(), "{bad}");
        }
    }
}
