//! Pipes: `pipe`, and `read`/`write` on pipe ends.

use commuter_engine::{Bool, Int, Symbolic};

use super::alloc::{fresh_pipe, lowest_free_fd, pipe_end_open};
use super::fs::ReadResult;
use super::state::errno::*;
use super::state::{DataVal, Errno, Fd, PAGE, Pages, Pipe, PosixState, proc_of};

#[derive(Clone, Debug, Symbolic)]
pub struct PidArgs {
    pub pid: Int,
}

/// The two fds `pipe` returns: read end, write end.
#[derive(Clone, Debug, Symbolic)]
pub struct PipeFds {
    pub read: Int,
    pub write: Int,
}

/// A fresh empty pipe; its read end, then its write end, get the lowest free fds.
pub fn pipe(s: &mut PosixState, a: &PidArgs) -> PipeFds {
    let p = proc_of(&a.pid);
    let id = fresh_pipe(s);
    s.pipes.set(
        &id,
        &Pipe {
            data: Pages::empty(),
        },
    );
    let read = lowest_free_fd(s, p);
    s.fd_insert(p, &read, &Fd::pipe_end(&id, false));
    let write = lowest_free_fd(s, p);
    s.fd_insert(p, &write, &Fd::pipe_end(&id, true));
    PipeFds { read, write }
}

/// Read one page from the pipe end `f`: `EAGAIN` when empty while a write end is open
/// (non-blocking), end of file when no write end is left.
pub fn pipe_read(s: &mut PosixState, f: &Fd) -> ReadResult {
    if f.pipewriter.branch() {
        return Err(EBADF);
    }
    let mut pipe = s.pipes.get(&f.pipeid);
    if pipe.data.is_empty().branch() {
        if pipe_end_open(s, &f.pipeid, &Bool::lit(true)) {
            return Err(EAGAIN);
        }
        return Ok(None);
    }
    let data = pipe.data.pop_front();
    s.pipes.set(&f.pipeid, &pipe);
    Ok(Some(data))
}

/// Append one page through the pipe end `f`: `EPIPE` when no read end is open. A full pipe is
/// outside the model's bounds.
pub fn pipe_write(s: &mut PosixState, f: &Fd, data: &DataVal) -> Result<i64, Errno> {
    if (!&f.pipewriter).branch() {
        return Err(EBADF);
    }
    if !pipe_end_open(s, &f.pipeid, &Bool::lit(false)) {
        return Err(EPIPE);
    }
    let mut pipe = s.pipes.get(&f.pipeid);
    pipe.data.push(data);
    s.pipes.set(&f.pipeid, &pipe);
    Ok(PAGE)
}

/// The pipe end `f` was closed. Every fd of one end of a pipe shares that end's open file
/// (pipes are opened once; fds of an end come from `dup` and `fork`), so whether another fd
/// still holds the end is a situation of its own, though no call can tell: Linux only drops
/// the file's count there, and releases the end when it was the last (`pipe_release`). Whether
/// the other end is gone too is another: then the pipe is freed (`put_pipe_info`). Which end
/// closed is no branch of its own (the same code, on the readers' or the writers' count); it
/// is a situation where the conditions relate it to another fd.
pub fn closed_pipe_end(s: &PosixState, f: &Fd) {
    if pipe_end_open(s, &f.pipeid, &f.pipewriter) {
        return;
    }
    let _freed = !pipe_end_open(s, &f.pipeid, &!&f.pipewriter);
}
