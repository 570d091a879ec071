//! Concrete test values for the POSIX model (the design document's "Concrete test values"):
//! what TESTGEN writes for a target that runs the test on a real kernel.
//!
//! Namespaces and pools: file names `__f0..__f5`; inodes 0..5 (a target makes one file per
//! inode and links the names to it); fds 10..19 per process; pipes 0..4; pages 0..3 per
//! process; data values 1..16, and 0 for the zero page (a page whose bytes all equal the value; not part of a test's
//! class: which page holds which bytes does not change what the calls share); file offsets in
//! bytes. Every offset into a file (an fd's, a mapping's, an argument's through the fd it names)
//! and the file's length share one namespace per inode, so "same page", "different page" and
//! "at the end of the file" are classes wherever a branch compares them.
//!
//! The state is written in the shape of the guest plan's setup (`inodes`, `names`, `pipes`,
//! `procs` with `fds` and `maps`), and arguments with the guest's field names, so a target
//! needs no model to run a test. Only what the test's calls name is set up, as in the original.

use std::any::Any;

use commuter_engine::serde_json::{Map, Value as Json, json};
use commuter_engine::{Bool, Concrete, Concretizer, Int, Key, Pool, PoolExhausted, SymEq};

use super::fs::{
    FdArgs, LinkArgs, LseekArgs, NameArgs, OpenArgs, PreadArgs, PwriteArgs, RenameArgs, WriteArgs,
};
use super::pipe::PidArgs;
use super::state::{
    DataVal, FileName, Inum, PAGE, PROCESSES, Pages, PipeId, PosixState, Va, zero_page,
};
use super::vm::{MemwriteArgs, MmapArgs, MprotectArgs, VaArgs};

const NAMES: usize = 6;
const INODES: usize = 6;
const FDS_PER_PROCESS: usize = 10;
const FIRST_FD: i64 = 10;
const PIPES: usize = 5;
const PAGES_PER_PROCESS: usize = 4;
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

fn name(cx: &mut Concretizer, n: &FileName) -> Result<Json, PoolExhausted> {
    Ok(json!(format!("__f{}", cx.label("FileName", n)?)))
}

fn inode(cx: &mut Concretizer, i: &Inum) -> Result<usize, PoolExhausted> {
    cx.label("Inum", i)
}

fn data(cx: &mut Concretizer, d: &DataVal) -> Result<Json, PoolExhausted> {
    d.concrete(cx)
}

impl Concrete for DataVal {
    /// The byte every byte of the page equals: 0 for the zero page, else 1..=16.
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        if cx.incidental_bool(&self.sym_eq(&zero_page()), false) {
            return Ok(json!(0));
        }
        Ok(json!(cx.label("DataVal", self)? + 1))
    }
}

fn process(cx: &mut Concretizer, pid: &Int) -> usize {
    if cx.bool(&pid.eq(0)) { 0 } else { 1 }
}

fn fd(cx: &mut Concretizer, p: usize, fd: &Int) -> Result<Json, PoolExhausted> {
    Ok(json!(FIRST_FD + cx.label(&format!("fd{p}"), fd)? as i64))
}

fn page(cx: &mut Concretizer, p: usize, va: &Va) -> Result<Json, PoolExhausted> {
    Ok(json!(cx.label(&format!("va{p}"), va)?))
}

fn bytes(cx: &mut Concretizer, pages: &Int) -> i64 {
    cx.int(pages) * PAGE
}

fn flag(cx: &mut Concretizer, b: &Bool) -> Json {
    json!(cx.bool(b))
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

/// A call's arguments, with the guest's field names and the process it runs in.
pub fn concrete_args(
    call: &str,
    args: &dyn Any,
    s: &PosixState,
    cx: &mut Concretizer,
) -> Option<Result<Json, PoolExhausted>> {
    macro_rules! with {
        ($t:ty, |$a:ident| $body:expr) => {
            args.downcast_ref::<$t>()
                .map(|$a| -> Result<Json, PoolExhausted> { $body })
        };
    }
    match call {
        "open" => with!(OpenArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(
                json!({"proc": p, "name": name(cx, &a.name)?, "creat": flag(cx, &a.creat),
                      "excl": flag(cx, &a.excl), "trunc": flag(cx, &a.trunc),
                      "anyfd": flag(cx, &a.anyfd)}),
            )
        }),
        "link" => with!(LinkArgs, |a| Ok(
            json!({"old": name(cx, &a.old)?, "new": name(cx, &a.new)?})
        )),
        "unlink" | "stat" => with!(NameArgs, |a| Ok(json!({"name": name(cx, &a.name)?}))),
        "rename" => with!(RenameArgs, |a| Ok(
            json!({"src": name(cx, &a.src)?, "dst": name(cx, &a.dst)?})
        )),
        "fstat" | "close" | "read" | "fsync" => with!(FdArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(json!({"proc": p, "fd": fd(cx, p, &a.fd)?}))
        }),
        "lseek" => with!(LseekArgs, |a| {
            let p = process(cx, &a.pid);
            let whence = if cx.bool(&a.whence_set) {
                "set"
            } else if cx.bool(&a.whence_cur) {
                "cur"
            } else if cx.bool(&a.whence_end) {
                "end"
            } else {
                "none"
            };
            let slot = fd(cx, p, &a.fd)?;
            let off = offset_arg(cx, s, p, &a.fd, &a.off)?;
            Ok(json!({"proc": p, "fd": slot, "off": off, "whence": whence}))
        }),
        "write" => with!(WriteArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(json!({"proc": p, "fd": fd(cx, p, &a.fd)?, "data": data(cx, &a.data)?}))
        }),
        "pread" => with!(PreadArgs, |a| {
            let p = process(cx, &a.pid);
            let slot = fd(cx, p, &a.fd)?;
            let off = offset_arg(cx, s, p, &a.fd, &a.off)?;
            Ok(json!({"proc": p, "fd": slot, "off": off}))
        }),
        "pwrite" => with!(PwriteArgs, |a| {
            let p = process(cx, &a.pid);
            let slot = fd(cx, p, &a.fd)?;
            let off = offset_arg(cx, s, p, &a.fd, &a.off)?;
            Ok(json!({"proc": p, "fd": slot, "off": off, "data": data(cx, &a.data)?}))
        }),
        "pipe" => with!(PidArgs, |a| Ok(json!({"proc": process(cx, &a.pid)}))),
        "mmap" => with!(MmapArgs, |a| mmap_args(cx, s, a)),
        "munmap" | "memread" => with!(VaArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(json!({"proc": p, "page": page(cx, p, &a.va)?}))
        }),
        "mprotect" => with!(MprotectArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(json!({"proc": p, "page": page(cx, p, &a.va)?, "writable": flag(cx, &a.writable)}))
        }),
        "memwrite" => with!(MemwriteArgs, |a| {
            let p = process(cx, &a.pid);
            Ok(json!({"proc": p, "page": page(cx, p, &a.va)?, "data": data(cx, &a.data)?}))
        }),
        _ => None,
    }
}

/// mmap reads only the arguments its kind uses: a fixed page, a file's fd and offset.
fn mmap_args(cx: &mut Concretizer, s: &PosixState, a: &MmapArgs) -> Result<Json, PoolExhausted> {
    let p = process(cx, &a.pid);
    let anon = cx.bool(&a.anon);
    let fixed = cx.bool(&a.fixed);
    let mut m = Map::new();
    m.insert("proc".into(), json!(p));
    m.insert("anon".into(), json!(anon));
    m.insert("writable".into(), flag(cx, &a.writable));
    m.insert("fixed".into(), json!(fixed));
    m.insert(
        "page".into(),
        if fixed { page(cx, p, &a.va)? } else { json!(0) },
    );
    if !anon {
        m.insert("fd".into(), fd(cx, p, &a.fd)?);
        m.insert("off".into(), json!(offset_arg(cx, s, p, &a.fd, &a.off)?));
    }
    Ok(Json::Object(m))
}

/// The initial state the test's calls see, in the guest plan's setup shape.
pub fn concrete_state(s: &PosixState, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
    label_pipe_end_witnesses(cx)?;
    let names = names(s, cx)?;
    let procs = (0..PROCESSES)
        .map(|p| -> Result<Json, PoolExhausted> {
            Ok(json!({"fds": fds(s, p, cx)?, "maps": maps(s, p, cx)?}))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Inodes and pipes last: every name, fd and mapping above has labelled the ones it uses.
    let inodes = known::<Inum>(cx, "Inum")
        .iter()
        .enumerate()
        .map(|(ino, i)| -> Result<Json, PoolExhausted> {
            let node = s.i_map.get(i);
            cx.int_in(&offsets_of(ino), &node.data.len())?;
            Ok(json!({"data": pages(&node.data, cx)?, "nlink": cx.int(&node.nlink)}))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pipes = known::<PipeId>(cx, "PipeId")
        .iter()
        .map(|id| -> Result<Json, PoolExhausted> {
            Ok(json!({"data": pages(&s.pipes.get(id).data, cx)?}))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"inodes": inodes, "names": names, "pipes": pipes, "procs": procs}))
}

/// Where the path says "some fd of either process is an end of this pipe", the model named a
/// witness fd (`alloc::pipe_end_open`): the setup must create it, or Linux would see no such end.
fn label_pipe_end_witnesses(cx: &mut Concretizer) -> Result<(), PoolExhausted> {
    for fd_term in cx.constants_with_prefix(super::alloc::PIPE_END_WITNESS) {
        let Some(tag) = fd_term
            .to_string()
            .trim_matches('|')
            .strip_suffix(".fd")
            .map(str::to_string)
        else {
            continue;
        };
        let in_proc0 = cx
            .constants_with_prefix(&format!("{tag}.in_proc0"))
            .first()
            .and_then(|c| c.as_bool())
            .map(Bool);
        let p = match in_proc0 {
            Some(b) if !cx.bool(&b) => 1,
            _ => 0,
        };
        cx.label(&format!("fd{p}"), &Int::from_key_ast(fd_term))?;
    }
    Ok(())
}

fn known<K: Key>(cx: &Concretizer, namespace: &str) -> Vec<K> {
    cx.known(namespace)
        .into_iter()
        .map(K::from_key_ast)
        .collect()
}

fn names(s: &PosixState, cx: &mut Concretizer) -> Result<Vec<Json>, PoolExhausted> {
    let mut out = Vec::new();
    for n in known::<FileName>(cx, "FileName") {
        if cx.bool(&s.root_dir.contains(&n)) {
            let label = name(cx, &n)?;
            out.push(json!({"name": label, "inode": inode(cx, &s.root_dir.get(&n))?}));
        }
    }
    Ok(out)
}

fn fds(s: &PosixState, p: usize, cx: &mut Concretizer) -> Result<Vec<Json>, PoolExhausted> {
    let map = &s.proc(p).fd_map;
    let mut out = Vec::new();
    for number in known::<Int>(cx, &format!("fd{p}")) {
        if !cx.bool(&map.contains(&number)) {
            continue;
        }
        let slot = fd(cx, p, &number)?;
        let f = map.get(&number);
        if cx.bool(&f.ispipe) {
            let pipe = cx.label("PipeId", &f.pipeid)?;
            out.push(json!({"fd": slot, "pipe": {"pipe": pipe, "write": cx.bool(&f.pipewriter)}}));
        } else {
            let ino = inode(cx, &f.inum)?;
            let off = cx.int_in(&offsets_of(ino), &f.off)? * PAGE;
            out.push(json!({"fd": slot, "file": {"inode": ino, "off": off}}));
        }
    }
    Ok(out)
}

fn maps(s: &PosixState, p: usize, cx: &mut Concretizer) -> Result<Vec<Json>, PoolExhausted> {
    let map = &s.proc(p).va_map;
    let mut out = Vec::new();
    for va in known::<Va>(cx, &format!("va{p}")) {
        if !cx.bool(&map.contains(&va)) {
            continue;
        }
        let index = page(cx, p, &va)?;
        let vma = map.get(&va);
        let writable = cx.bool(&vma.writable);
        if cx.bool(&vma.anon) {
            out.push(json!({"page": index, "writable": writable, "anon": {"data": data(cx, &vma.anondata)?}}));
        } else {
            let ino = inode(cx, &vma.inum)?;
            let off = cx.int_in(&offsets_of(ino), &vma.off)? * PAGE;
            out.push(
                json!({"page": index, "writable": writable, "file": {"inode": ino, "off": off}}),
            );
        }
    }
    Ok(out)
}

/// A file's or pipe's pages as data values (a file's length is labelled with its offsets).
fn pages(list: &Pages, cx: &mut Concretizer) -> Result<Vec<Json>, PoolExhausted> {
    let len = cx.int(&list.len()).clamp(0, super::state::MAX_PAGES as i64);
    (0..len).map(|i| data(cx, &list.get(i))).collect()
}
