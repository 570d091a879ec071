//! Concrete test values for the POSIX model (the design document's "Concrete test values"):
//! what TESTGEN writes for a target that runs the test on a real kernel.
//!
//! Namespaces and pools: file names `__f0..__f5`; inodes 0..5 (a target makes one file per
//! inode and links the names to it); fds 10..19 per process; pipes 0..4; pages 0..11 per
//! process; data values 1..16, and 0 for the zero page (a page whose bytes all equal the value; not part of a test's
//! class: which page holds which bytes does not change what the calls share); file offsets in
//! bytes. Every offset into a file (an fd's, a mapping's, an argument's through the fd it names)
//! and the file's length share one namespace per inode, so "same page", "different page" and
//! "at the end of the file" are classes wherever a branch compares them.
//!
//! The state and the arguments are built as the shared POSIX schema's types
//! (`commuter_posix_format`: [`Setup`], [`PosixCall`]) and written into `tests.json` as their
//! JSON, so a target needs no model to run a test: it reads them back with the same types.
//! Results are built as [`PosixResult`] from the model's result types (`concrete_result`).
//! Only what the test's calls name is set up, as in the original.

use std::any::Any;

use commuter_engine::serde_json::{Value as Json, json};
use commuter_engine::z3::ast::Dynamic;
use commuter_engine::{Bool, Concrete, Concretizer, Int, Key, Pool, PoolExhausted, SymEq};
use commuter_posix_format::{
    Backing, Fd, FdTarget, FormatError, Inode, Map, Maybe, Name, Outcome, Pipe, PosixCall,
    PosixResult, Proc, Setup, Stat, Whence,
};

use super::fs::{
    FdArgs, LinkArgs, LseekArgs, NameArgs, OpenArgs, PreadArgs, PwriteArgs, ReadResult, RenameArgs,
    StatResult, WriteArgs,
};
use super::pipe::{PidArgs, PipeFds};
use super::state::{
    DataVal, Errno, FileName, Inum, PAGE, PROCESSES, Pages, PipeId, PosixState, Va, zero_page,
};
use super::vm::{MemwriteArgs, MmapArgs, MprotectArgs, VaArgs};

const NAMES: usize = 6;
const INODES: usize = 6;
const FDS_PER_PROCESS: usize = 10;
const FIRST_FD: i32 = 10;
const PIPES: usize = 5;
/// Two calls' pages, the witnesses their regions need (one to split off, one to join, in each
/// order of the calls) and the mates of those: twelve (eight left some `mprotect` pairs
/// without a test).
const PAGES_PER_PROCESS: usize = 12;
const DATA_VALUES: usize = 16;

/// The pools of the namespaces below.
pub fn pool(namespace: &str) -> Pool {
    let capacity = match namespace {
        "FileName" => Some(NAMES),
        "Inum" => Some(INODES),
        "PipeId" => Some(PIPES),
        "DataVal" => Some(DATA_VALUES),
        ns if ns.starts_with("fd") => Some(FDS_PER_PROCESS),
        ns if ns.starts_with("va") => Some(PAGES_PER_PROCESS),
        _ => None,
    };
    Pool {
        capacity,
        enumerated: namespace != "DataVal",
    }
}

fn name(cx: &mut Concretizer, n: &FileName) -> Result<String, PoolExhausted> {
    Ok(format!("__f{}", cx.label("FileName", n)?))
}

fn inode(cx: &mut Concretizer, i: &Inum) -> Result<usize, PoolExhausted> {
    cx.label("Inum", i)
}

/// The byte every byte of the page equals: 0 for the zero page, else 1..=16.
fn data(cx: &mut Concretizer, d: &DataVal) -> Result<u8, PoolExhausted> {
    if cx.incidental_bool(&d.sym_eq(&zero_page()), false) {
        return Ok(0);
    }
    let label = cx.label("DataVal", d)?;
    // The pool holds DATA_VALUES (16) values, so the label is below 16.
    Ok(u8::try_from(label + 1).unwrap_or(u8::MAX))
}

impl Concrete for DataVal {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        Ok(json!(data(cx, self)?))
    }
}

fn process(cx: &mut Concretizer, pid: &Int) -> usize {
    if cx.bool(&pid.eq(0)) { 0 } else { 1 }
}

fn fd(cx: &mut Concretizer, p: usize, fd: &Int) -> Result<i32, PoolExhausted> {
    let label = cx.label(&format!("fd{p}"), fd)?;
    // The pool holds FDS_PER_PROCESS (10) fds per process.
    Ok(FIRST_FD + i32::try_from(label).unwrap_or(i32::MAX - FIRST_FD))
}

/// The page of process `p` that `va` names. Pages are laid out in the order test generation
/// meets them, each next to the one before, as the kernel would keep them apart or together
/// exactly as the model does: a page of the region of the page just placed goes right after
/// it (one mapping to the kernel), a page that joins a region (`alloc::joined_region`) right
/// next to that region's pages, and a gap goes before a page the kernel would merge with the
/// one before though the model has them in two regions (anonymous pages mapped alike, or
/// consecutive pages of one file). Other neighbours stay adjacent, as in every setup before
/// regions (a page mapped where the model has it join no region may still merge with a
/// neighbour: the kernel decides by adjacency, which only joining pages are laid out for).
/// A joining page goes right before the region it joins where it is met first
/// ([`meet_joined_region`]).
fn page(cx: &mut Concretizer, s: &PosixState, p: usize, va: &Va) -> Result<u32, PoolExhausted> {
    let namespace = format!("va{p}");
    if !cx.is_known(&namespace, va) {
        meet_joined_region(cx, s, p, va)?;
    }
    let label = cx.label(&namespace, va)?;
    label_region_mates(cx, s, p, va)?;
    let mut slot = 0;
    let mut previous: Option<Placed> = None;
    let mut last_of_region: Vec<(usize, u32)> = Vec::new();
    for other in known::<Va>(cx, &namespace).iter().take(label + 1) {
        let placed = placed(cx, s, p, other)?;
        let mate = placed
            .as_ref()
            .and_then(|m| last_of_region.iter().find(|(r, _)| *r == m.region))
            .is_some_and(|&(_, last)| last + 1 == slot);
        if !mate
            && previous
                .as_ref()
                .zip(placed.as_ref())
                .is_some_and(|(a, b)| a.merges_with(b))
        {
            slot += 1;
        }
        if let Some(m) = &placed {
            last_of_region.retain(|(r, _)| *r != m.region);
            last_of_region.push((m.region, slot));
        }
        previous = placed;
        slot += 1;
    }
    // The pool holds PAGES_PER_PROCESS (12) pages per process, gaps included below 24 (the
    // guest maps 64).
    Ok(slot - 1)
}

/// What the kernel merges a mapped page by, as labels: its region, and how it is mapped.
struct Placed {
    region: usize,
    writable: bool,
    /// `None` for an anonymous page, else the file's inode and the page's offset in it, in
    /// pages.
    file: Option<(usize, i64)>,
}

impl Placed {
    /// Whether the kernel would merge `next`, mapped right after this page, into its mapping
    /// (though they are in different regions).
    fn merges_with(&self, next: &Placed) -> bool {
        let alike = match (self.file, next.file) {
            (None, None) => true,
            (Some((inode, off)), Some((next_inode, next_off))) => {
                inode == next_inode && off + 1 == next_off
            }
            _ => false,
        };
        alike && self.writable == next.writable && self.region != next.region
    }
}

/// How process `p`'s page `va` is mapped in the initial state, if it is.
fn placed(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    va: &Va,
) -> Result<Option<Placed>, PoolExhausted> {
    let Some(region) = region(cx, s, p, va)? else {
        return Ok(None);
    };
    let vma = s.proc(p).va_map.get(va);
    let writable = cx.bool(&vma.writable);
    let file = if cx.bool(&vma.anon) {
        None
    } else {
        let ino = inode(cx, &vma.inum)?;
        Some((ino, cx.int_in(&offsets_of(ino), &vma.off)?))
    };
    Ok(Some(Placed {
        region,
        writable,
        file,
    }))
}

/// Meets the witness pages of `va`'s region (`alloc::region_shared`), so that they are laid
/// out next to it; the region's label, if `va` is mapped.
fn label_region_mates(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    va: &Va,
) -> Result<Option<usize>, PoolExhausted> {
    let Some(mine) = region(cx, s, p, va)? else {
        return Ok(None);
    };
    let prefix = format!("{}{p}", super::alloc::REGION_WITNESS);
    for tag in witness_tags(cx, &prefix, "va") {
        if let Some(witness) = witness_field(cx, &tag, "va").map(Va::from_key_ast)
            && region(cx, s, p, &witness)? == Some(mine)
        {
            cx.label(&format!("va{p}"), &witness)?;
        }
    }
    Ok(Some(mine))
}

/// Before process `p`'s page `va` is first met, where it joins the region of a page not met
/// yet (`alloc::joined_region`): meets `va`'s region's witnesses, then `va`, then that page
/// and its region's witnesses, so that `va` ends its run and the region it joins starts right
/// after it (the kernel merges neighbours only: here the mapping after `va`'s,
/// `can_vma_merge_right`). Where the page it joins was met first (typically the other call's
/// page, met just before), `va` simply comes next, after that page's run (the mapping before,
/// `can_vma_merge_left`), so a suite has both. `va` is labelled itself, not the witness's
/// `TAG.at` that equals it: a page's facts are read through the first term met for it, and only
/// facts over the calls' own terms make classes.
fn meet_joined_region(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    va: &Va,
) -> Result<(), PoolExhausted> {
    let namespace = format!("va{p}");
    let joined = joins(cx, p)
        .into_iter()
        .find(|(joiner, _)| cx.same_value(joiner, va));
    if let Some((_, witness)) = joined
        && !cx.is_known(&namespace, &witness)
    {
        if let Some(mine) = label_region_mates(cx, s, p, va)? {
            // The calls' pages in `va`'s region go first too, or they would come after the
            // region `va` joins, apart from `va`.
            for page in call_pages(cx) {
                if !cx.same_value(&page, va) && region(cx, s, p, &page)? == Some(mine) {
                    cx.label(&namespace, &page)?;
                }
            }
        }
        cx.label(&namespace, va)?;
        cx.label(&namespace, &witness)?;
        label_region_mates(cx, s, p, &witness)?;
    }
    Ok(())
}

/// The pages the calls name (`a.va`, `b.va`, ...: the engine names an argument's leaves after
/// its call's slot), where the path's model holds them.
fn call_pages(cx: &Concretizer) -> Vec<Va> {
    ('a'..='z')
        .filter_map(|slot| {
            let name = format!("{slot}.va");
            cx.constants_with_prefix(&name)
                .into_iter()
                .find(|c| c.to_string().trim_matches('|') == name)
        })
        .map(Va::from_key_ast)
        .collect()
}

/// The pages of process `p` that join another page's region on the path, with that page
/// (`alloc::joined_region`'s `TAG.at` and `TAG.va`).
fn joins(cx: &Concretizer, p: usize) -> Vec<(Va, Va)> {
    let prefix = format!("{}{p}", super::alloc::JOIN_WITNESS);
    witness_tags(cx, &prefix, "at")
        .iter()
        .filter_map(|tag| {
            let joiner = witness_field(cx, tag, "at")?;
            let witness = witness_field(cx, tag, "va")?;
            Some((Va::from_key_ast(joiner), Va::from_key_ast(witness)))
        })
        .collect()
}

/// The label of the region holding process `p`'s page `va` in the initial state, if mapped.
fn region(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    va: &Va,
) -> Result<Option<usize>, PoolExhausted> {
    let map = &s.proc(p).va_map;
    if !cx.bool(&map.contains(va)) {
        return Ok(None);
    }
    cx.label(&format!("region{p}"), &map.get(va).region)
        .map(Some)
}

fn bytes(cx: &mut Concretizer, pages: &Int) -> i64 {
    cx.int(pages) * PAGE
}

/// A setup's offset in pages, in bytes: the model assumes the offsets of the fds and mappings
/// a path reads are never negative (`fd_get`, `vma_at`), and a setup holds only those.
fn setup_offset(pages: i64) -> u64 {
    u64::try_from(pages * PAGE).unwrap_or(0)
}

fn flag(cx: &mut Concretizer, b: &Bool) -> bool {
    cx.bool(b)
}

/// A part of the schema as its `tests.json` JSON.
fn to_json(part: Result<Json, FormatError>) -> Json {
    // The schema is plain data (string keys, no custom serialisers): serialising it cannot fail.
    part.unwrap_or_else(|e| panic!("{e}"))
}

/// The namespace of offsets into inode `ino` (its fds', mappings' and arguments' offsets, and
/// its length).
fn offsets_of(ino: usize) -> String {
    format!("off{ino}")
}

/// An offset argument (in pages) given with `fd`, in bytes: in the namespace of the file the fd
/// is open on, where it is one, so its equality with the file's other offsets is a class.
fn offset_arg(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    fd: &Int,
    off: &Int,
) -> Result<i64, PoolExhausted> {
    let map = &s.proc(p).fd_map;
    if cx.bool(&map.contains(fd)) {
        let f = map.get(fd);
        if !cx.bool(&f.ispipe) {
            let ino = inode(cx, &f.inum)?;
            return Ok(cx.int_in(&offsets_of(ino), off)? * PAGE);
        }
    }
    Ok(bytes(cx, off))
}

/// A call's arguments in the shared schema ([`PosixCall`]), as its `tests.json` `args`.
pub fn concrete_args(
    call: &str,
    args: &dyn Any,
    s: &PosixState,
    cx: &mut Concretizer,
) -> Option<Result<Json, PoolExhausted>> {
    let call = concrete_call(call, args, s, cx)?;
    Some(call.map(|c| to_json(c.args_json())))
}

/// A call with concrete arguments. Arguments are read in the order their fields are written:
/// the order of reads decides a test's canonical values, so it must not change.
fn concrete_call(
    call: &str,
    args: &dyn Any,
    s: &PosixState,
    cx: &mut Concretizer,
) -> Option<Result<PosixCall, PoolExhausted>> {
    macro_rules! with {
        ($t:ty, |$a:ident| $body:expr) => {
            args.downcast_ref::<$t>()
                .map(|$a| -> Result<PosixCall, PoolExhausted> { $body })
        };
    }
    match call {
        "open" => with!(OpenArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Open {
                proc,
                name: name(cx, &a.name)?,
                creat: flag(cx, &a.creat),
                excl: flag(cx, &a.excl),
                trunc: flag(cx, &a.trunc),
                anyfd: flag(cx, &a.anyfd),
            })
        }),
        "link" => with!(LinkArgs, |a| Ok(PosixCall::Link {
            old: name(cx, &a.old)?,
            new: name(cx, &a.new)?,
        })),
        "unlink" => with!(NameArgs, |a| Ok(PosixCall::Unlink {
            name: name(cx, &a.name)?,
        })),
        "stat" => with!(NameArgs, |a| Ok(PosixCall::Stat {
            name: name(cx, &a.name)?,
        })),
        "rename" => with!(RenameArgs, |a| Ok(PosixCall::Rename {
            src: name(cx, &a.src)?,
            dst: name(cx, &a.dst)?,
        })),
        "fstat" | "close" | "read" | "fsync" => with!(FdArgs, |a| {
            let proc = process(cx, &a.pid);
            let fd = fd(cx, proc, &a.fd)?;
            Ok(match call {
                "fstat" => PosixCall::Fstat { proc, fd },
                "close" => PosixCall::Close { proc, fd },
                "read" => PosixCall::Read { proc, fd },
                _ => PosixCall::Fsync { proc, fd },
            })
        }),
        "lseek" => with!(LseekArgs, |a| {
            let proc = process(cx, &a.pid);
            let whence = if cx.bool(&a.whence_set) {
                Whence::Set
            } else if cx.bool(&a.whence_cur) {
                Whence::Cur
            } else if cx.bool(&a.whence_end) {
                Whence::End
            } else {
                Whence::None
            };
            let fd_number = fd(cx, proc, &a.fd)?;
            let off = offset_arg(cx, s, proc, &a.fd, &a.off)?;
            Ok(PosixCall::Lseek {
                proc,
                fd: fd_number,
                off,
                whence,
            })
        }),
        "write" => with!(WriteArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Write {
                proc,
                fd: fd(cx, proc, &a.fd)?,
                data: data(cx, &a.data)?,
            })
        }),
        "pread" => with!(PreadArgs, |a| {
            let proc = process(cx, &a.pid);
            let fd_number = fd(cx, proc, &a.fd)?;
            let off = offset_arg(cx, s, proc, &a.fd, &a.off)?;
            Ok(PosixCall::Pread {
                proc,
                fd: fd_number,
                off,
            })
        }),
        "pwrite" => with!(PwriteArgs, |a| {
            let proc = process(cx, &a.pid);
            let fd_number = fd(cx, proc, &a.fd)?;
            let off = offset_arg(cx, s, proc, &a.fd, &a.off)?;
            Ok(PosixCall::Pwrite {
                proc,
                fd: fd_number,
                off,
                data: data(cx, &a.data)?,
            })
        }),
        "pipe" => with!(PidArgs, |a| Ok(PosixCall::Pipe {
            proc: process(cx, &a.pid),
        })),
        "mmap" => with!(MmapArgs, |a| mmap_args(cx, s, a)),
        "munmap" => with!(VaArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Munmap {
                proc,
                page: page(cx, s, proc, &a.va)?,
            })
        }),
        "memread" => with!(VaArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Memread {
                proc,
                page: page(cx, s, proc, &a.va)?,
            })
        }),
        "mprotect" => with!(MprotectArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Mprotect {
                proc,
                page: page(cx, s, proc, &a.va)?,
                writable: flag(cx, &a.writable),
            })
        }),
        "memwrite" => with!(MemwriteArgs, |a| {
            let proc = process(cx, &a.pid);
            Ok(PosixCall::Memwrite {
                proc,
                page: page(cx, s, proc, &a.va)?,
                data: data(cx, &a.data)?,
            })
        }),
        "sync" => Some(Ok(PosixCall::Sync)),
        "reboot" => Some(Ok(PosixCall::Reboot)),
        _ => None,
    }
}

/// mmap reads only the arguments its kind uses: a fixed page, a file's fd and offset.
fn mmap_args(
    cx: &mut Concretizer,
    s: &PosixState,
    a: &MmapArgs,
) -> Result<PosixCall, PoolExhausted> {
    let proc = process(cx, &a.pid);
    let anon = cx.bool(&a.anon);
    let fixed = cx.bool(&a.fixed);
    let writable = flag(cx, &a.writable);
    let page = if fixed { page(cx, s, proc, &a.va)? } else { 0 };
    let (fd, off) = if anon {
        (None, None)
    } else {
        let fd_number = fd(cx, proc, &a.fd)?;
        (
            Some(fd_number),
            Some(offset_arg(cx, s, proc, &a.fd, &a.off)?),
        )
    };
    Ok(PosixCall::Mmap {
        proc,
        anon,
        writable,
        fixed,
        page,
        fd,
        off,
    })
}

/// A call's result in the shared schema ([`PosixResult`]), as its `tests.json` `result`.
pub fn concrete_result(
    call: &str,
    result: &dyn Any,
    cx: &mut Concretizer,
) -> Option<Result<Json, PoolExhausted>> {
    if !commuter_posix_format::CALLS.contains(&call) {
        return None;
    }
    // A call of the schema whose result has another type than the one read here is a bug in
    // this file, which every POSIX test generation (and `cargo test -p commuter-testgen`) hits.
    let result = concrete_posix_result(call, result, cx).unwrap_or_else(|| {
        panic!("the POSIX model's `{call}` result is not the type `concrete_result` reads")
    });
    Some(result.map(|r| to_json(r.result_json())))
}

/// A call's result from the model's result type. Values are read in the order of their fields
/// (as the engine reads a struct), which decides the canonical values of what no branch fixed.
fn concrete_posix_result(
    call: &str,
    result: &dyn Any,
    cx: &mut Concretizer,
) -> Option<Result<PosixResult, PoolExhausted>> {
    macro_rules! with {
        ($t:ty, |$r:ident| $body:expr) => {
            result
                .downcast_ref::<$t>()
                .map(|$r| -> Result<PosixResult, PoolExhausted> { $body })
        };
    }
    let int = |cx: &mut Concretizer, v: &Int| Ok(cx.int(v));
    let nothing = |_: &mut Concretizer, _: &()| Ok(());
    match call {
        "open" => with!(Result<Int, Errno>, |r| Ok(PosixResult::Open(outcome(r, cx, int)?))),
        "lseek" => with!(Result<Int, Errno>, |r| Ok(PosixResult::Lseek(outcome(r, cx, int)?))),
        "link" | "unlink" | "rename" | "close" | "munmap" | "mprotect" | "memwrite" | "fsync" => {
            with!(Result<(), Errno>, |r| {
                let o = outcome(r, cx, nothing)?;
                Ok(match call {
                    "link" => PosixResult::Link(o),
                    "unlink" => PosixResult::Unlink(o),
                    "rename" => PosixResult::Rename(o),
                    "close" => PosixResult::Close(o),
                    "munmap" => PosixResult::Munmap(o),
                    "mprotect" => PosixResult::Mprotect(o),
                    "memwrite" => PosixResult::Memwrite(o),
                    _ => PosixResult::Fsync(o),
                })
            })
        }
        "stat" => with!(Result<StatResult, Errno>, |r| Ok(PosixResult::Stat(
            outcome(r, cx, stat)?
        ))),
        "fstat" => with!(Result<Option<StatResult>, Errno>, |r| Ok(
            PosixResult::Fstat(outcome(r, cx, |cx, st| maybe(st.as_ref(), cx, stat))?)
        )),
        "read" | "pread" => with!(ReadResult, |r| {
            let o = outcome(r, cx, |cx, d| maybe(d.as_ref(), cx, data))?;
            Ok(if call == "read" {
                PosixResult::Read(o)
            } else {
                PosixResult::Pread(o)
            })
        }),
        "write" | "pwrite" => with!(Result<i64, Errno>, |r| {
            let o = outcome(r, cx, |_, &bytes| Ok(bytes))?;
            Ok(if call == "write" {
                PosixResult::Write(o)
            } else {
                PosixResult::Pwrite(o)
            })
        }),
        "pipe" => with!(PipeFds, |r| Ok(PosixResult::Pipe(
            commuter_posix_format::PipeFds {
                read: cx.int(&r.read),
                write: cx.int(&r.write),
            }
        ))),
        "mmap" => with!(Result<Va, Errno>, |r| Ok(PosixResult::Mmap(outcome(
            r,
            cx,
            |cx, va| Ok(format!("Va{}", cx.label("Va", va)?))
        )?))),
        "memread" => with!(Result<DataVal, Errno>, |r| Ok(PosixResult::Memread(
            outcome(r, cx, data)?
        ))),
        "sync" => with!((), |_r| Ok(PosixResult::Sync(()))),
        "reboot" => with!((), |_r| Ok(PosixResult::Reboot(()))),
        _ => None,
    }
}

/// A result that may fail with an errno.
fn outcome<T, U>(
    result: &Result<T, Errno>,
    cx: &mut Concretizer,
    ok: impl FnOnce(&mut Concretizer, &T) -> Result<U, PoolExhausted>,
) -> Result<Outcome<U>, PoolExhausted> {
    Ok(match result {
        Ok(v) => Outcome::Ok(ok(cx, v)?),
        // The model's errnos are the schema's i32 constants widened (`state::errno`).
        Err(e) => Outcome::Err(i32::try_from(*e).unwrap_or(i32::MAX)),
    })
}

fn maybe<T, U>(
    value: Option<&T>,
    cx: &mut Concretizer,
    some: impl FnOnce(&mut Concretizer, &T) -> Result<U, PoolExhausted>,
) -> Result<Maybe<U>, PoolExhausted> {
    Ok(match value {
        Some(v) => Maybe::Some(some(cx, v)?),
        None => Maybe::None,
    })
}

/// What stat returns; the inode is labelled in the namespace of the setup's inodes, so
/// `Inum<i>` is the setup's `inodes[i]`.
fn stat(cx: &mut Concretizer, st: &StatResult) -> Result<Stat, PoolExhausted> {
    Ok(Stat {
        inum: format!("Inum{}", inode(cx, &st.inum)?),
        size: cx.int(&st.size),
        nlink: cx.int(&st.nlink),
        atime: cx.int(&st.atime),
        mtime: cx.int(&st.mtime),
        ctime: cx.int(&st.ctime),
    })
}

/// The initial state the test's calls see, as the shared schema's [`Setup`].
pub fn concrete_state(s: &PosixState, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
    Ok(to_json(concrete_setup(s, cx)?.to_json()))
}

fn concrete_setup(s: &PosixState, cx: &mut Concretizer) -> Result<Setup, PoolExhausted> {
    label_pipe_end_witnesses(cx)?;
    label_inode_ref_witnesses(cx)?;
    label_region_witnesses(cx)?;
    let names = names(s, cx)?;
    let procs = (0..PROCESSES)
        .map(|p| -> Result<Proc, PoolExhausted> {
            Ok(Proc {
                fds: fds(s, p, cx)?,
                maps: maps(s, p, cx)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Inodes and pipes last: every name, fd and mapping above has labelled the ones it uses.
    let inodes = known::<Inum>(cx, "Inum")
        .iter()
        .enumerate()
        .map(|(ino, i)| -> Result<Inode, PoolExhausted> {
            let node = s.i_map.get(i);
            cx.int_in(&offsets_of(ino), &node.data.len())?;
            Ok(Inode {
                data: pages(&node.data, cx)?,
                // Link counts are never negative in the model (`fs::assume_link_counts`).
                nlink: u64::try_from(cx.int(&node.nlink)).ok(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pipes = known::<PipeId>(cx, "PipeId")
        .iter()
        .map(|id| -> Result<Pipe, PoolExhausted> {
            Ok(Pipe {
                data: pages(&s.pipes.get(id).data, cx)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Setup {
        inodes,
        names,
        pipes,
        procs,
    })
}

/// Where the path says "some fd of either process is an end of this pipe", the model named a
/// witness fd (`alloc::pipe_end_open`): the setup must create it, or Linux would see no such end.
fn label_pipe_end_witnesses(cx: &mut Concretizer) -> Result<(), PoolExhausted> {
    for tag in witness_tags(cx, super::alloc::PIPE_END_WITNESS, "fd") {
        let p = witness_process(cx, &tag);
        if let Some(fd) = witness_field(cx, &tag, "fd") {
            cx.label(&format!("fd{p}"), &Int::from_key_ast(fd))?;
        }
    }
    Ok(())
}

/// Where the path says "some fd or mapping still refers to this file", the model named a
/// witness (`alloc::inode_referenced`): the setup must create it, or Linux would free the file.
fn label_inode_ref_witnesses(cx: &mut Concretizer) -> Result<(), PoolExhausted> {
    for tag in witness_tags(cx, super::alloc::INODE_REF_WITNESS, "by_fd") {
        let p = witness_process(cx, &tag);
        let by_fd = witness_field(cx, &tag, "by_fd")
            .and_then(|c| c.as_bool())
            .is_none_or(|b| cx.bool(&Bool(b)));
        if by_fd {
            if let Some(fd) = witness_field(cx, &tag, "fd") {
                cx.label(&format!("fd{p}"), &Int::from_key_ast(fd))?;
            }
        } else if let Some(va) = witness_field(cx, &tag, "va") {
            cx.label(&format!("va{p}"), &Va::from_key_ast(va))?;
        }
    }
    Ok(())
}

/// Where the path says "another page shares this page's region" or "this page joins another
/// page's region", the model named a witness page (`alloc::region_shared`,
/// `alloc::joined_region`, in the process its name ends with): the setup must map it, or Linux
/// would have nothing to split or merge with.
fn label_region_witnesses(cx: &mut Concretizer) -> Result<(), PoolExhausted> {
    for p in 0..PROCESSES {
        for kind in [super::alloc::REGION_WITNESS, super::alloc::JOIN_WITNESS] {
            let prefix = format!("{kind}{p}");
            for tag in witness_tags(cx, &prefix, "va") {
                if let Some(va) = witness_field(cx, &tag, "va") {
                    cx.label(&format!("va{p}"), &Va::from_key_ast(va))?;
                }
            }
        }
    }
    Ok(())
}

/// The tags of the witnesses named `PREFIX#n` that the path's model holds, found by their
/// constant `TAG.field`.
fn witness_tags(cx: &Concretizer, prefix: &str, field: &str) -> Vec<String> {
    let suffix = format!(".{field}");
    cx.constants_with_prefix(prefix)
        .iter()
        .filter_map(|c| {
            let name = c.to_string();
            name.trim_matches('|')
                .strip_suffix(&suffix)
                .map(str::to_string)
        })
        .collect()
}

/// The constant `TAG.field` of a witness, if the path's model holds it.
fn witness_field(cx: &Concretizer, tag: &str, field: &str) -> Option<Dynamic> {
    cx.constants_with_prefix(&format!("{tag}.{field}"))
        .into_iter()
        .next()
}

/// The process a witness is in (its `in_proc0`; process 0 where the model leaves it open).
fn witness_process(cx: &mut Concretizer, tag: &str) -> usize {
    let in_proc0 = witness_field(cx, tag, "in_proc0").and_then(|c| c.as_bool());
    match in_proc0.map(Bool) {
        Some(b) if !cx.bool(&b) => 1,
        _ => 0,
    }
}

fn known<K: Key>(cx: &Concretizer, namespace: &str) -> Vec<K> {
    cx.known(namespace)
        .into_iter()
        .map(K::from_key_ast)
        .collect()
}

fn names(s: &PosixState, cx: &mut Concretizer) -> Result<Vec<Name>, PoolExhausted> {
    let mut out = Vec::new();
    for n in known::<FileName>(cx, "FileName") {
        if cx.bool(&s.root_dir.contains(&n)) {
            let label = name(cx, &n)?;
            out.push(Name {
                name: label,
                inode: inode(cx, &s.root_dir.get(&n))?,
            });
        }
    }
    Ok(out)
}

fn fds(s: &PosixState, p: usize, cx: &mut Concretizer) -> Result<Vec<Fd>, PoolExhausted> {
    let map = &s.proc(p).fd_map;
    let mut out = Vec::new();
    for number in known::<Int>(cx, &format!("fd{p}")) {
        if !cx.bool(&map.contains(&number)) {
            continue;
        }
        let slot = fd(cx, p, &number)?;
        let f = map.get(&number);
        let target = if cx.bool(&f.ispipe) {
            FdTarget::Pipe {
                pipe: cx.label("PipeId", &f.pipeid)?,
                write: cx.bool(&f.pipewriter),
            }
        } else {
            let ino = inode(cx, &f.inum)?;
            FdTarget::File {
                inode: ino,
                off: setup_offset(cx.int_in(&offsets_of(ino), &f.off)?),
            }
        };
        out.push(Fd { fd: slot, target });
    }
    Ok(out)
}

fn maps(s: &PosixState, p: usize, cx: &mut Concretizer) -> Result<Vec<Map>, PoolExhausted> {
    let map = &s.proc(p).va_map;
    let mut out = Vec::new();
    for terms in cx.known_terms(&format!("va{p}")) {
        let mut terms = terms.into_iter().map(Va::from_key_ast);
        let Some(va) = terms.next() else { continue };
        for other in terms {
            read_through(cx, s, p, &other)?;
        }
        if !cx.bool(&map.contains(&va)) {
            continue;
        }
        let index = page(cx, s, p, &va)?;
        // How the page is mapped was read (and decided) to lay it out.
        let Some(placed) = placed(cx, s, p, &va)? else {
            continue;
        };
        let vma = map.get(&va);
        // Before the data: an untouched anonymous page holds zeros.
        let populated = !cx.bool(&vma.unpopulated());
        let backing = match placed.file {
            None => Backing::Anon {
                data: data(cx, &vma.anondata)?,
            },
            Some((inode, off)) => Backing::File {
                inode,
                off: setup_offset(off),
            },
        };
        out.push(Map {
            page: index,
            backing,
            writable: placed.writable,
            populated,
        });
    }
    Ok(out)
}

/// Reads what the setup says of a page through `va`, another term for a page met first
/// through a different one (a witness the layout met before a call's own page): the class is
/// made of facts over the terms a path's branches name, so a page's facts must be read through
/// each of its terms, or a call's page met first as a witness would lose its facts from the
/// class (two tests of one class, or a situation never tested).
fn read_through(
    cx: &mut Concretizer,
    s: &PosixState,
    p: usize,
    va: &Va,
) -> Result<(), PoolExhausted> {
    if placed(cx, s, p, va)?.is_some() {
        cx.bool(&s.proc(p).va_map.get(va).unpopulated());
    }
    Ok(())
}

/// A file's or pipe's pages as data values (a file's length is labelled with its offsets).
fn pages(list: &Pages, cx: &mut Concretizer) -> Result<Vec<u8>, PoolExhausted> {
    let len = cx.int(&list.len()).clamp(0, super::state::MAX_PAGES as i64);
    (0..len).map(|i| data(cx, &list.get(i))).collect()
}

#[cfg(test)]
mod tests {
    use commuter_engine::Model;

    use crate::posix::PosixModel;

    /// Every call the model registers has a variant in the shared schema, in the same order.
    #[test]
    fn every_model_call_has_a_schema() {
        let model = PosixModel::default();
        let names: Vec<&str> = model.calls().iter().map(|c| c.name()).collect();
        assert_eq!(names, commuter_posix_format::CALLS);
    }
}
