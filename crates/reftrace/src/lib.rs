//! `commuter-reftrace`: a workload's reference trace (`commuter trace`) in kVMTrace's four
//! output formats, gzip-compressed, and a reader of them.
//!
//! The references ([`Reference`]: kind, canonical page, anonymous or file page, pid, tid) come
//! from the tracer plugin's `mode=reftrace` stream ([`commuter_trace_format::reftrace`]), in the
//! order they were made. [`encode`] turns them into the files of a trace directory:
//!
//! | file | what | record |
//! |---|---|---|
//! | `basic.gz` | every reference, as scheduled | kind (u8), page (u64) |
//! | `basic-named.gz` | the same, with the backing | kind (u8), backing (u8), page (u64) |
//! | `per-process/<pid>.gz` | one process's references (its threads interleaved as they ran) | kind (u8), backing (u8), tid (u32), page (u64) |
//! | `per-thread/<pid>/<tid>.gz` | one thread's references, grouped by process | kind (u8), backing (u8), page (u64) |
//! | `summary.json` | counts per kind, per process and thread | JSON ([`Summary`]) |
//!
//! Every trace file is gzip (no name, mtime 0: same trace, same bytes) of a 16-byte header,
//! [`MAGIC`] (8 bytes), the version [`VERSION`] (u16), the [`Format`] (u8) and 5 zero bytes,
//! then the records, little-endian and unpadded. Kind: 0 VM read, 1 VM write, 2 FS read, 3 FS
//! write. Backing: 0 anonymous, 1 file. The page is the canonical page number: the
//! guest-physical frame number, one number for a page wherever it is mapped. As in kVMTrace,
//! every reference is a record: consecutive identical references are not coalesced.
//!
//! [`read`] reads any of the four back ([`TraceFile`]). Nothing here writes files: the CLI
//! writes [`encode`]'s files as one directory, atomically.

use commuter_trace_format::reftrace::{Backing, Kind, Reference};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every (decompressed) trace file.
pub const MAGIC: [u8; 8] = *b"CMREFTR\0";
/// Version of the record layouts.
pub const VERSION: u16 = 1;
/// Bytes of a file's header.
pub const HEADER_LEN: usize = 16;
/// Schema name of `summary.json`.
pub const SUMMARY_SCHEMA: &str = "commuter-reftrace-summary";

/// The four formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Format {
    /// Kind and page.
    Basic = 0,
    /// Kind, backing and page.
    BasicNamed = 1,
    /// One process: kind, backing, tid and page.
    PerProcess = 2,
    /// One thread: kind, backing and page.
    PerThread = 3,
}

impl Format {
    /// Bytes of one record.
    pub fn record_len(self) -> usize {
        match self {
            Format::Basic => 9,
            Format::BasicNamed | Format::PerThread => 10,
            Format::PerProcess => 14,
        }
    }

    fn from_code(code: u8) -> Option<Format> {
        [
            Format::Basic,
            Format::BasicNamed,
            Format::PerProcess,
            Format::PerThread,
        ]
        .into_iter()
        .find(|f| *f as u8 == code)
    }

    /// The format's name, as kVMTrace's merger calls it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Basic => "basic",
            Format::BasicNamed => "basic-named",
            Format::PerProcess => "per-process",
            Format::PerThread => "per-thread",
        }
    }
}

/// One record of a trace file: what its format holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// What the reference does.
    pub kind: Kind,
    /// Anonymous or file page (not in `basic`).
    pub backing: Option<Backing>,
    /// The thread (`per-process` only).
    pub tid: Option<u32>,
    /// The canonical page number.
    pub page: u64,
}

impl Record {
    /// One line of text: kind, backing, tid, page in hex (what is absent is left out).
    pub fn to_text(&self) -> String {
        let mut s = self.kind.label().to_string();
        if let Some(b) = self.backing {
            s.push(' ');
            s.push_str(b.label());
        }
        if let Some(t) = self.tid {
            s.push_str(&format!(" tid={t}"));
        }
        s.push_str(&format!(" {:#x}", self.page));
        s
    }
}

/// A decoded trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceFile {
    /// Its format.
    pub format: Format,
    /// Its records, in order.
    pub records: Vec<Record>,
}

/// Per process (and thread) counts of a trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// VM reads.
    pub vm_read: u64,
    /// VM writes.
    pub vm_write: u64,
    /// FS reads.
    pub fs_read: u64,
    /// FS writes.
    pub fs_write: u64,
    /// Distinct pages.
    pub pages: u64,
}

/// One process of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// Its pid.
    pub pid: u32,
    /// Its references.
    pub counts: Counts,
    /// Its threads, by tid.
    pub threads: BTreeMap<u32, Counts>,
}

/// `summary.json`: what the trace holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// [`SUMMARY_SCHEMA`].
    pub schema: String,
    /// [`VERSION`].
    pub version: u16,
    /// Every reference.
    pub total: Counts,
    /// Per process, by pid.
    pub processes: Vec<ProcessSummary>,
}

impl Summary {
    /// Counts `refs`.
    pub fn of(refs: &[Reference]) -> Summary {
        let mut total = Tally::default();
        let mut procs: BTreeMap<u32, (Tally, BTreeMap<u32, Tally>)> = BTreeMap::new();
        for r in refs {
            total.add(r);
            let (p, threads) = procs.entry(r.pid).or_default();
            p.add(r);
            threads.entry(r.tid).or_default().add(r);
        }
        Summary {
            schema: SUMMARY_SCHEMA.into(),
            version: VERSION,
            total: total.counts(),
            processes: procs
                .into_iter()
                .map(|(pid, (p, threads))| ProcessSummary {
                    pid,
                    counts: p.counts(),
                    threads: threads.into_iter().map(|(t, c)| (t, c.counts())).collect(),
                })
                .collect(),
        }
    }
}

#[derive(Default)]
struct Tally {
    kinds: [u64; 4],
    pages: std::collections::HashSet<u64>,
}

impl Tally {
    fn add(&mut self, r: &Reference) {
        self.kinds[r.kind as usize] += 1;
        self.pages.insert(r.page);
    }

    fn counts(&self) -> Counts {
        Counts {
            vm_read: self.kinds[Kind::VmRead as usize],
            vm_write: self.kinds[Kind::VmWrite as usize],
            fs_read: self.kinds[Kind::FsRead as usize],
            fs_write: self.kinds[Kind::FsWrite as usize],
            pages: self.pages.len() as u64,
        }
    }
}

/// Why a trace could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a trace file of this version.
    #[error(
        "{} is not a commuter reference trace file of version {VERSION} (bad header): give one of the .gz files `commuter trace` writes",
        .0.display()
    )]
    Header(PathBuf),
    /// A record has an unknown kind or backing, or is cut short.
    #[error("{} has a malformed record at byte {offset} of its data", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// Offset of the record after the header.
        offset: usize,
    },
}

fn header(format: Format) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10] = format as u8;
    h
}

fn push(out: &mut Vec<u8>, format: Format, r: &Reference) {
    out.push(r.kind as u8);
    if format != Format::Basic {
        out.push(r.backing as u8);
    }
    if format == Format::PerProcess {
        out.extend_from_slice(&r.tid.to_le_bytes());
    }
    out.extend_from_slice(&r.page.to_le_bytes());
}

/// A trace file's uncompressed bytes so far: the header, then records as they are pushed.
fn started(format: Format) -> Vec<u8> {
    header(format).to_vec()
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    // GzEncoder writes no file name and mtime 0: the bytes depend on the data alone.
    let mut e = GzEncoder::new(Vec::new(), Compression::new(6));
    // Writing to a Vec cannot fail.
    let _ = e.write_all(raw);
    e.finish().unwrap_or_default()
}

/// The files of a trace directory for `refs` (in the order made): relative path and content,
/// in path order. `summary.json` included. One pass over the references fills every file.
pub fn encode(refs: &[Reference]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut basic = started(Format::Basic);
    let mut named = started(Format::BasicNamed);
    let mut processes: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut threads: BTreeMap<(u32, u32), Vec<u8>> = BTreeMap::new();
    for r in refs {
        push(&mut basic, Format::Basic, r);
        push(&mut named, Format::BasicNamed, r);
        let process = processes
            .entry(r.pid)
            .or_insert_with(|| started(Format::PerProcess));
        push(process, Format::PerProcess, r);
        let thread = threads
            .entry((r.pid, r.tid))
            .or_insert_with(|| started(Format::PerThread));
        push(thread, Format::PerThread, r);
    }
    let mut files = vec![
        (PathBuf::from("basic.gz"), gzip(&basic)),
        (PathBuf::from("basic-named.gz"), gzip(&named)),
    ];
    for (pid, raw) in &processes {
        files.push((PathBuf::from(format!("per-process/{pid}.gz")), gzip(raw)));
        for ((_, tid), raw) in threads.range((*pid, 0)..=(*pid, u32::MAX)) {
            files.push((
                PathBuf::from(format!("per-thread/{pid}/{tid}.gz")),
                gzip(raw),
            ));
        }
    }
    let summary = serde_json::to_string_pretty(&Summary::of(refs)).unwrap_or_default() + "\n";
    files.push((PathBuf::from("summary.json"), summary.into_bytes()));
    files
}

/// Decodes the bytes of a trace file (gzip-compressed); `path` names it in errors.
pub fn decode(gz: &[u8], path: &Path) -> Result<TraceFile, Error> {
    let mut raw = Vec::new();
    GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .map_err(|source| Error::Io {
            what: "decompress",
            path: path.to_owned(),
            source,
        })?;
    let bad_header = || Error::Header(path.to_owned());
    if raw.len() < HEADER_LEN || raw[..8] != MAGIC || raw[8..10] != VERSION.to_le_bytes() {
        return Err(bad_header());
    }
    let format = Format::from_code(raw[10]).ok_or_else(bad_header)?;
    let len = format.record_len();
    let body = &raw[HEADER_LEN..];
    let bad = |offset| Error::Record {
        path: path.to_owned(),
        offset,
    };
    if body.len() % len != 0 {
        return Err(bad(body.len() - body.len() % len));
    }
    let mut records = Vec::with_capacity(body.len() / len);
    for (i, r) in body.chunks_exact(len).enumerate() {
        let kind = Kind::from_code(r[0]).ok_or_else(|| bad(i * len))?;
        let (backing, rest) = if format == Format::Basic {
            (None, &r[1..])
        } else {
            (
                Some(Backing::from_code(r[1]).ok_or_else(|| bad(i * len))?),
                &r[2..],
            )
        };
        let (tid, rest) = if format == Format::PerProcess {
            (
                Some(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]])),
                &rest[4..],
            )
        } else {
            (None, rest)
        };
        let mut page = [0u8; 8];
        page.copy_from_slice(rest);
        records.push(Record {
            kind,
            backing,
            tid,
            page: u64::from_le_bytes(page),
        });
    }
    Ok(TraceFile { format, records })
}

/// Reads a trace file.
pub fn read(path: &Path) -> Result<TraceFile, Error> {
    let gz = std::fs::read(path).map_err(|source| Error::Io {
        what: "read",
        path: path.to_owned(),
        source,
    })?;
    decode(&gz, path)
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

    /// Two processes, the first with two threads, interleaved; a repeated reference.
    fn sample() -> Vec<Reference> {
        use {Backing::*, Kind::*};
        vec![
            r(VmWrite, Anon, 60, 60, 0x1000),
            r(VmWrite, Anon, 60, 60, 0x1000),
            r(FsRead, File, 60, 61, 0x2345),
            r(VmRead, File, 70, 70, 0x2345),
            r(FsWrite, File, 60, 61, u64::MAX),
            r(VmRead, Anon, 60, 60, 0),
        ]
    }

    fn decoded(files: &[(PathBuf, Vec<u8>)], name: &str) -> TraceFile {
        let (path, bytes) = files
            .iter()
            .find(|(p, _)| p == Path::new(name))
            .unwrap_or_else(|| panic!("no {name}"));
        decode(bytes, path).unwrap()
    }

    #[test]
    fn every_format_round_trips_without_coalescing() {
        let refs = sample();
        let files = encode(&refs);
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "basic.gz",
                "basic-named.gz",
                "per-process/60.gz",
                "per-thread/60/60.gz",
                "per-thread/60/61.gz",
                "per-process/70.gz",
                "per-thread/70/70.gz",
                "summary.json"
            ]
        );
        let basic = decoded(&files, "basic.gz");
        assert_eq!(basic.format, Format::Basic);
        let want: Vec<Record> = refs
            .iter()
            .map(|x| Record {
                kind: x.kind,
                backing: None,
                tid: None,
                page: x.page,
            })
            .collect();
        assert_eq!(basic.records, want, "both identical writes are kept");
        let named = decoded(&files, "basic-named.gz");
        assert_eq!(
            named.records.iter().map(|x| x.backing).collect::<Vec<_>>(),
            refs.iter().map(|x| Some(x.backing)).collect::<Vec<_>>()
        );
        let p60 = decoded(&files, "per-process/60.gz");
        assert_eq!(p60.format, Format::PerProcess);
        assert_eq!(
            p60.records
                .iter()
                .map(|x| (x.tid, x.page))
                .collect::<Vec<_>>(),
            [
                (Some(60), 0x1000),
                (Some(60), 0x1000),
                (Some(61), 0x2345),
                (Some(61), u64::MAX),
                (Some(60), 0)
            ]
        );
        let t61 = decoded(&files, "per-thread/60/61.gz");
        assert_eq!(
            t61.records,
            [
                Record {
                    kind: Kind::FsRead,
                    backing: Some(Backing::File),
                    tid: None,
                    page: 0x2345
                },
                Record {
                    kind: Kind::FsWrite,
                    backing: Some(Backing::File),
                    tid: None,
                    page: u64::MAX
                }
            ]
        );
        assert_eq!(encode(&refs), files, "same references, same bytes");
    }

    #[test]
    fn the_summary_counts_per_process_and_thread() {
        let s = Summary::of(&sample());
        assert_eq!(
            (s.total.vm_write, s.total.fs_read, s.total.pages),
            (2, 1, 4)
        );
        assert_eq!(
            s.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [60, 70]
        );
        assert_eq!(s.processes[0].threads[&61].fs_write, 1);
        assert_eq!(s.processes[1].counts.vm_read, 1);
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let p = Path::new("x.gz");
        assert!(matches!(decode(b"not gzip", p), Err(Error::Io { .. })));
        assert!(matches!(
            decode(&gzip(b"CMREFTR"), p),
            Err(Error::Header(_))
        ));
        let mut raw = header(Format::Basic).to_vec();
        raw.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0, 0]);
        let err = decode(&gzip(&raw), p).unwrap_err();
        assert!(matches!(err, Error::Record { offset: 0, .. }), "{err}");
        let mut raw = header(Format::BasicNamed).to_vec();
        raw.extend_from_slice(&[1, 0, 0]);
        assert!(matches!(decode(&gzip(&raw), p), Err(Error::Record { .. })));
    }
}
