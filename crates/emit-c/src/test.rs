//! One test as a C function: its setup, its calls in order, the checks of each result, its
//! cleanup. The checks are the Linux target's (`crates/targets/src/posix.rs`): what the system
//! chooses is not checked.

use std::fmt::Write as _;

use commuter_posix_format::{
    Backing, ERRNOS, FdTarget, Maybe, Outcome, PAGE, PosixCall, PosixResult, SIGNALS, Setup, Stat,
    Whence,
};
use commuter_tests_format::TestCase;

use crate::c;
use crate::{
    MAX_FD, MAX_HIDDEN_LINKS, MAX_INODES, MAX_NAMES, MAX_PAGES, MAX_PIPES, MAX_PROCS, MIN_FD,
    NAME_MAX,
};

/// A test as C.
pub enum Emitted {
    /// The function's body (setup, calls and checks, cleanup).
    Function(String),
    /// Why no test program can run it.
    NotRun(String),
}

/// Processes every test has, as the Linux target's guest forks them.
const MIN_PROCS: usize = 2;

const PAGE_BYTES: i64 = PAGE as i64;

/// The test's function body, or why it is not run; an error for a test that is not a valid
/// POSIX test.
pub fn emit_test(t: &TestCase) -> Result<Emitted, String> {
    let setup = commuter_posix_format::Setup::from_json(&t.setup).map_err(|e| e.to_string())?;
    let mut calls = Vec::new();
    let mut order = String::new();
    for call in &t.calls {
        let posix = PosixCall::from_parts(&call.call, &call.args).map_err(|e| e.to_string())?;
        // Natively one order is run, the calls in slot order: each call's expected result is
        // the one of the order that runs the calls before it first.
        order.push_str(&call.slot);
        let expected = t
            .expected
            .iter()
            .find(|e| e.order == order && e.slot == call.slot)
            .ok_or_else(|| format!("no expected result of call {} in order {order}", call.slot))?;
        let result =
            PosixResult::from_parts(&call.call, &expected.result).map_err(|e| e.to_string())?;
        calls.push((call.slot.as_str(), posix, result));
    }
    if let Some((_, call, _)) = calls
        .iter()
        .find(|(_, c, _)| matches!(c, PosixCall::Reboot))
    {
        return Ok(Emitted::NotRun(format!(
            "{}: a crash and reboot (the model's durability extension) is not something a test program can do",
            call.name()
        )));
    }
    validate(&setup)?;
    let mut body = String::new();
    emit_setup(&mut body, &setup);
    let procs = calls
        .iter()
        .map(|(_, c, _)| c.proc() + 1)
        .chain([setup.procs.len(), MIN_PROCS])
        .max()
        .unwrap_or(MIN_PROCS);
    if procs > MAX_PROCS {
        return Err(format!("{procs} processes, at most {MAX_PROCS}"));
    }
    let _ = writeln!(body, "\tct_start(t, {procs});");
    for (slot, call, result) in &calls {
        let _ = writeln!(body, "\t/* call {} */", c::comment(slot));
        let _ = writeln!(body, "\t{}", emit_call(call)?);
        let _ = writeln!(body, "\t{}", expectation(call, result, setup.inodes.len())?);
    }
    body.push_str("\tct_end(t);\n");
    Ok(Emitted::Function(body))
}

/// The whole function: a comment with the test's id, path and class, then the body.
pub fn function(t: &TestCase, name: &str, body: &str) -> String {
    let mut s = format!("/* {} (path {})", c::comment(&t.id), c::comment(&t.path));
    for fact in &t.class {
        let _ = write!(s, "\n *   {}", c::comment(fact));
    }
    let _ = write!(s, " */\nstatic void {name}(struct ct *t)\n{{\n{body}}}\n\n");
    s
}

/// The checks the runtime relies on, as the Linux target's guest makes them.
fn validate(s: &Setup) -> Result<(), String> {
    let at_most = |what: &str, n: usize, max: usize| {
        if n > max {
            Err(format!("{n} {what}, at most {max}"))
        } else {
            Ok(())
        }
    };
    at_most("inodes", s.inodes.len(), MAX_INODES)?;
    at_most("names", s.names.len(), MAX_NAMES)?;
    at_most("pipes", s.pipes.len(), MAX_PIPES)?;
    at_most("processes", s.procs.len(), MAX_PROCS)?;
    for n in &s.names {
        check_name(&n.name)?;
        index("inode", n.inode, s.inodes.len())?;
    }
    for (i, inode) in s.inodes.iter().enumerate() {
        let names = s.names.iter().filter(|n| n.inode == i).count();
        if let Some(n) = inode.nlink
            && n < names as u64
        {
            return Err(format!(
                "inode {i} has {n} links but {names} names name it (a link count counts every name)"
            ));
        }
        let hidden = inode.hidden_links(names) as u64;
        if hidden > MAX_HIDDEN_LINKS {
            return Err(format!(
                "inode {i} has {hidden} links beyond its names, at most {MAX_HIDDEN_LINKS}"
            ));
        }
    }
    for (p, proc) in s.procs.iter().enumerate() {
        let mut seen = Vec::new();
        for f in &proc.fds {
            if !(MIN_FD..=MAX_FD).contains(&f.fd) {
                return Err(format!(
                    "process {p}: fd {} is outside {MIN_FD}..={MAX_FD}",
                    f.fd
                ));
            }
            if seen.contains(&f.fd) {
                return Err(format!("process {p}: fd {} is set up twice", f.fd));
            }
            seen.push(f.fd);
            match f.target {
                FdTarget::File { inode, off } => {
                    index("inode", inode, s.inodes.len())?;
                    offset(off)?;
                }
                FdTarget::Pipe { pipe, .. } => index("pipe", pipe, s.pipes.len())?,
            }
        }
        for m in &proc.maps {
            page(m.page)?;
            m.check().map_err(|e| format!("process {p}: {e}"))?;
            if let Backing::File { inode, off } = m.backing {
                index("inode", inode, s.inodes.len())?;
                offset(off)?;
            }
        }
    }
    Ok(())
}

fn index(what: &str, i: usize, len: usize) -> Result<(), String> {
    if i < len {
        Ok(())
    } else {
        Err(format!("{what} {i} does not exist (there are {len})"))
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && name.len() <= NAME_MAX;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad file name {name:?} (a name is 1 to {NAME_MAX} bytes, no `/` or NUL, not `.` or `..`)"
        ))
    }
}

fn page(page: u32) -> Result<(), String> {
    if page < MAX_PAGES {
        Ok(())
    } else {
        Err(format!("page {page} is not below {MAX_PAGES}"))
    }
}

fn offset(off: u64) -> Result<i64, String> {
    i64::try_from(off).map_err(|_| format!("offset {off} does not fit a file offset"))
}

fn bytes(data: &[u8]) -> String {
    if data.is_empty() {
        "NULL, 0".into()
    } else {
        let list: Vec<String> = data.iter().map(u8::to_string).collect();
        format!(
            "(const unsigned char[]){{{}}}, {}",
            list.join(", "),
            data.len()
        )
    }
}

fn emit_setup(out: &mut String, s: &Setup) {
    for (i, inode) in s.inodes.iter().enumerate() {
        let names = s.names.iter().filter(|n| n.inode == i).count();
        let _ = writeln!(
            out,
            "\tct_setup_inode(t, {i}, {}, {});",
            bytes(&inode.data),
            inode.hidden_links(names)
        );
    }
    for n in &s.names {
        let _ = writeln!(
            out,
            "\tct_setup_name(t, {}, {});",
            c::string(&n.name),
            n.inode
        );
    }
    for (i, pipe) in s.pipes.iter().enumerate() {
        let _ = writeln!(out, "\tct_setup_pipe(t, {i}, {});", bytes(&pipe.data));
    }
    for (p, proc) in s.procs.iter().enumerate() {
        for f in &proc.fds {
            let _ = match f.target {
                FdTarget::File { inode, off } => writeln!(
                    out,
                    "\tct_setup_fd_file(t, {p}, {}, {inode}, {});",
                    f.fd,
                    c::long_long(off as i64)
                ),
                FdTarget::Pipe { pipe, write } => writeln!(
                    out,
                    "\tct_setup_fd_pipe(t, {p}, {}, {pipe}, {});",
                    f.fd,
                    if write { "CT_WRITE_END" } else { "CT_READ_END" }
                ),
            };
        }
        for m in &proc.maps {
            let w = prot_flag(m.writable);
            let _ = match m.backing {
                Backing::Anon { data } => writeln!(
                    out,
                    "\tct_setup_map_anon(t, {p}, {}, {data}, {w}, {});",
                    m.page,
                    u8::from(m.populated)
                ),
                Backing::File { inode, off } => writeln!(
                    out,
                    "\tct_setup_map_file(t, {p}, {}, {inode}, {}, {w}, {});",
                    m.page,
                    c::long_long(off as i64),
                    u8::from(m.populated)
                ),
            };
        }
    }
}

/// The call's C statement.
fn emit_call(call: &PosixCall) -> Result<String, String> {
    let ll = |v: i64| c::long_long(v);
    let stmt = match call {
        PosixCall::Open {
            proc,
            name,
            creat,
            excl,
            trunc,
            // Any fd: the new fd's number is not checked anyway.
            anyfd: _,
        } => {
            let flags: Vec<&str> = [(creat, "CT_CREAT"), (excl, "CT_EXCL"), (trunc, "CT_TRUNC")]
                .iter()
                .filter(|(on, _)| **on)
                .map(|(_, f)| *f)
                .collect();
            let flags = if flags.is_empty() {
                "0".to_string()
            } else {
                flags.join(" | ")
            };
            format!("ct_open(t, {proc}, {}, {flags});", c::string(name))
        }
        PosixCall::Link { old, new } => {
            format!("ct_link(t, {}, {});", c::string(old), c::string(new))
        }
        PosixCall::Unlink { name } => format!("ct_unlink(t, {});", c::string(name)),
        PosixCall::Rename { src, dst } => {
            format!("ct_rename(t, {}, {});", c::string(src), c::string(dst))
        }
        PosixCall::Stat { name } => format!("ct_stat(t, {});", c::string(name)),
        PosixCall::Fstat { proc, fd } => format!("ct_fstat(t, {proc}, {fd});"),
        PosixCall::Lseek {
            proc,
            fd,
            off,
            whence,
        } => {
            let whence = match whence {
                Whence::Set => "CT_SEEK_SET",
                Whence::Cur => "CT_SEEK_CUR",
                Whence::End => "CT_SEEK_END",
                Whence::None => "CT_SEEK_INVALID",
            };
            format!("ct_lseek(t, {proc}, {fd}, {}, {whence});", ll(*off))
        }
        PosixCall::Close { proc, fd } => format!("ct_close(t, {proc}, {fd});"),
        PosixCall::Pipe { proc } => format!("ct_pipe(t, {proc});"),
        PosixCall::Read { proc, fd } => format!("ct_read(t, {proc}, {fd});"),
        PosixCall::Write { proc, fd, data } => format!("ct_write(t, {proc}, {fd}, {data});"),
        PosixCall::Pread { proc, fd, off } => format!("ct_pread(t, {proc}, {fd}, {});", ll(*off)),
        PosixCall::Pwrite {
            proc,
            fd,
            off,
            data,
        } => format!("ct_pwrite(t, {proc}, {fd}, {}, {data});", ll(*off)),
        PosixCall::Mmap {
            proc,
            anon,
            writable,
            fixed,
            page: p,
            fd,
            off,
        } => {
            page(*p)?;
            let w = prot_flag(*writable);
            let f = if *fixed { "CT_FIXED" } else { "CT_ANYWHERE" };
            if *anon {
                format!("ct_mmap_anon(t, {proc}, {w}, {f}, {p});")
            } else {
                let fd = fd.ok_or("a file mapping without an fd")?;
                let off = off.ok_or("a file mapping without an offset")?;
                format!("ct_mmap_file(t, {proc}, {w}, {f}, {p}, {fd}, {});", ll(off))
            }
        }
        PosixCall::Munmap { proc, page: p } => {
            page(*p)?;
            format!("ct_munmap(t, {proc}, {p});")
        }
        PosixCall::Mprotect {
            proc,
            page: p,
            writable,
        } => {
            page(*p)?;
            format!("ct_mprotect(t, {proc}, {p}, {});", prot_flag(*writable))
        }
        PosixCall::Memread { proc, page: p } => {
            page(*p)?;
            format!("ct_memread(t, {proc}, {p});")
        }
        PosixCall::Memwrite {
            proc,
            page: p,
            data,
        } => {
            page(*p)?;
            format!("ct_memwrite(t, {proc}, {p}, {data});")
        }
        PosixCall::Sync => "ct_sync(t);".into(),
        PosixCall::Fsync { proc, fd } => format!("ct_fsync(t, {proc}, {fd});"),
        PosixCall::Reboot => return Err("reboot cannot be run".into()),
    };
    for name in call_names(call) {
        check_name(name)?;
    }
    Ok(stmt)
}

fn prot_flag(w: bool) -> &'static str {
    if w { "CT_WRITABLE" } else { "CT_READONLY" }
}

fn call_names(call: &PosixCall) -> Vec<&str> {
    match call {
        PosixCall::Open { name, .. } | PosixCall::Unlink { name } | PosixCall::Stat { name } => {
            vec![name]
        }
        PosixCall::Link { old, new } => vec![old, new],
        PosixCall::Rename { src, dst } => vec![src, dst],
        _ => vec![],
    }
}

/// The C library's name of `n` in `table` (`ERRNOS`, `SIGNALS`): the C suite spells every
/// errno and signal by name, so one without a name cannot be written.
fn c_name(table: &[(&'static str, i32)], n: i32, what: &str) -> Result<&'static str, String> {
    table
        .iter()
        .find(|&&(_, v)| v == n)
        .map(|&(name, _)| name)
        .ok_or_else(|| format!("{what} {n} has no name the C suite knows"))
}

fn errno(n: i32) -> Result<String, String> {
    c_name(ERRNOS, n, "errno").map(|name| format!("ct_expect_err(t, {name});"))
}

fn signal(n: i32) -> Result<String, String> {
    c_name(SIGNALS, n, "signal").map(|name| format!("ct_expect_signal(t, {name});"))
}

/// The checks of the model's result that a real system can show: what
/// `crates/targets/src/posix.rs` checks on Linux.
fn expectation(call: &PosixCall, result: &PosixResult, inodes: usize) -> Result<String, String> {
    fn errno_or<T>(
        o: &Outcome<T>,
        ok: impl FnOnce(&T) -> Result<String, String>,
    ) -> Result<String, String> {
        match o {
            Outcome::Ok(v) => ok(v),
            Outcome::Err(n) => errno(*n),
        }
    }
    fn signal_or<T>(o: &Outcome<T>, ok: impl FnOnce(&T) -> String) -> Result<String, String> {
        match o {
            Outcome::Ok(v) => Ok(ok(v)),
            Outcome::Err(n) => signal(*n),
        }
    }
    let ret = |v: i64| Ok(format!("ct_expect_ret(t, {});", c::long_long(v)));
    let check = match result {
        PosixResult::Open(o) => errno_or(o, |_| {
            Ok("ct_expect_any(t); /* the new fd: the system's choice */".into())
        })?,
        PosixResult::Link(o)
        | PosixResult::Unlink(o)
        | PosixResult::Rename(o)
        | PosixResult::Close(o)
        | PosixResult::Munmap(o)
        | PosixResult::Mprotect(o)
        | PosixResult::Fsync(o) => errno_or(o, |()| ret(0))?,
        PosixResult::Memwrite(o) => signal_or(o, |()| "ct_expect_ret(t, 0LL);".into())?,
        PosixResult::Write(o) | PosixResult::Pwrite(o) => errno_or(o, |&n| ret(n))?,
        // The model counts offsets in pages.
        PosixResult::Lseek(o) => errno_or(o, |&pages| {
            let bytes = pages
                .checked_mul(PAGE_BYTES)
                .ok_or_else(|| format!("offset of {pages} pages overflows"))?;
            ret(bytes)
        })?,
        PosixResult::Stat(o) => errno_or(o, |st| file_stat(st, inodes))?,
        PosixResult::Fstat(o) => errno_or(o, |m| match m {
            Maybe::Some(st) => file_stat(st, inodes),
            Maybe::None => Ok("ct_expect_fifo(t);".into()),
        })?,
        PosixResult::Read(o) | PosixResult::Pread(o) => errno_or(o, |m| match m {
            Maybe::Some(d) => Ok(format!("ct_expect_page(t, {d});")),
            Maybe::None => Ok("ct_expect_ret(t, 0LL); /* end of file */".into()),
        })?,
        PosixResult::Memread(o) => signal_or(o, |d| format!("ct_expect_byte(t, {d});"))?,
        PosixResult::Mmap(o) => errno_or(o, |_| match call {
            PosixCall::Mmap {
                fixed: true, page, ..
            } => Ok(format!("ct_expect_mapped_at(t, {page});")),
            _ => Ok("ct_expect_any(t); /* the address: the system's choice */".into()),
        })?,
        PosixResult::Pipe(_) => {
            "ct_expect_any(t); /* the two new fds: the system's choice */".into()
        }
        PosixResult::Sync(()) => "/* sync returns nothing */".into(),
        PosixResult::Reboot(()) => return Err("reboot cannot be run".into()),
    };
    Ok(check)
}

/// A file's stat: the inode where it is one of the setup's (else one a call created, which
/// is not checked), its size in bytes and its link count; times are the model's clock.
fn file_stat(st: &Stat, inodes: usize) -> Result<String, String> {
    let size = st
        .size
        .checked_mul(PAGE_BYTES)
        .filter(|s| *s >= 0)
        .ok_or_else(|| format!("the model's size {} is not a file size", st.size))?;
    if st.nlink < 0 {
        return Err(format!("the model's link count {} is negative", st.nlink));
    }
    let inode = st
        .setup_inode()
        .filter(|&i| i < inodes)
        .map_or(-1, |i| i as i64);
    Ok(format!(
        "ct_expect_stat(t, {inode}, {}, {});",
        c::long_long(size),
        c::long_long(st.nlink)
    ))
}
