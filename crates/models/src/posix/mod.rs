//! The POSIX file-system and virtual-memory model of the paper "The Scalable Commutativity
//! Rule": 18 calls over one flat directory, inodes, pipes and two processes' fd tables and
//! memory maps; `sync`, `fsync` and `reboot` as an optional extension (not in the default call
//! set). The design document "posix-model" is the reference; where it is silent the model
//! follows Linux, and says so where it does.
//!
//! Encoding: no quantifier ever reaches the solver. Maps compare at their written keys (the
//! engine), and every statement over all keys of a map (fresh inode, fresh pipe, lowest free
//! fd, "is a pipe end still open") is instantiated at exactly the keys the path touches, by
//! the [`ledger`]; see `alloc` for each choice.

mod alloc;
pub mod concrete;
pub mod fs;
mod ledger;
pub mod pipe;
pub mod state;
pub mod vm;

use std::any::Any;

use commuter_engine::serde_json::Value as Json;
use commuter_engine::{Call, Concretizer, Int, Model, Pool, PoolExhausted, Symbolic};

use fs::{FdArgs, LseekArgs, OpenArgs, PreadArgs, PwriteArgs, WriteArgs};
use state::{PROCESSES, PosixState};
use vm::{MemwriteArgs, MmapArgs, MprotectArgs, VaArgs};

/// The POSIX model. `anyfd` offers `O_ANYFD` ("any unused fd will do") as an `open` argument;
/// off, as in the paper, `open` returns the lowest unused fd.
#[derive(Clone, Copy, Debug, Default)]
pub struct PosixModel {
    pub anyfd: bool,
}

fn pid_of_fd(a: &FdArgs) -> Int {
    a.pid.clone()
}

impl Model for PosixModel {
    type State = PosixState;

    fn name(&self) -> &'static str {
        "posix"
    }

    fn description(&self) -> &'static str {
        "the paper's POSIX file-system and virtual-memory model (18 calls; sync, fsync, reboot)"
    }

    fn calls(&self) -> Vec<Call<PosixState>> {
        let open = if self.anyfd { fs::open_anyfd } else { fs::open };
        vec![
            Call::new("open", open).with_pid(|a: &OpenArgs| a.pid.clone()),
            Call::new("link", fs::link),
            Call::new("unlink", fs::unlink),
            Call::new("rename", fs::rename),
            Call::new("stat", fs::stat),
            Call::new("fstat", fs::fstat).with_pid(pid_of_fd),
            Call::new("lseek", fs::lseek).with_pid(|a: &LseekArgs| a.pid.clone()),
            Call::new("close", fs::close).with_pid(pid_of_fd),
            Call::new("pipe", pipe::pipe).with_pid(|a: &pipe::PidArgs| a.pid.clone()),
            Call::new("read", fs::read).with_pid(pid_of_fd),
            Call::new("write", fs::write).with_pid(|a: &WriteArgs| a.pid.clone()),
            Call::new("pread", fs::pread).with_pid(|a: &PreadArgs| a.pid.clone()),
            Call::new("pwrite", fs::pwrite).with_pid(|a: &PwriteArgs| a.pid.clone()),
            Call::new("mmap", vm::mmap).with_pid(|a: &MmapArgs| a.pid.clone()),
            Call::new("munmap", vm::munmap).with_pid(|a: &VaArgs| a.pid.clone()),
            Call::new("mprotect", vm::mprotect).with_pid(|a: &MprotectArgs| a.pid.clone()),
            Call::new("memread", vm::memread).with_pid(|a: &VaArgs| a.pid.clone()),
            Call::new("memwrite", vm::memwrite).with_pid(|a: &MemwriteArgs| a.pid.clone()),
            Call::new("sync", fs::sync),
            Call::new("fsync", fs::fsync).with_pid(pid_of_fd),
            Call::new("reboot", fs::reboot),
        ]
    }

    fn excluded_by_default(&self) -> &'static [&'static str] {
        // Durability cannot be traced meaningfully on a RAM file system (as in the paper).
        &["sync", "fsync", "reboot"]
    }

    fn processes(&self) -> usize {
        PROCESSES
    }

    fn pool(&self, namespace: &str) -> Pool {
        concrete::pool(namespace)
    }

    /// Measured shape of the full suite's generation time: `mmap` paths multiply (fixed or
    /// not, anonymous or file, each page's mapping), so `mmap/mmap` alone is about a fifth
    /// of the whole; pairs of one `mmap` and a page or offset call come next.
    fn cost_hint(&self, call: &str) -> u32 {
        match call {
            "mmap" => 12,
            "pread" | "pwrite" | "munmap" | "memread" | "memwrite" => 2,
            _ => 1,
        }
    }

    fn concrete_args(
        &self,
        call: &str,
        args: &dyn Any,
        state: &PosixState,
        cx: &mut Concretizer,
    ) -> Option<Result<Json, PoolExhausted>> {
        concrete::concrete_args(call, args, state, cx)
    }

    fn concrete_result(
        &self,
        call: &str,
        result: &dyn Any,
        cx: &mut Concretizer,
    ) -> Option<Result<Json, PoolExhausted>> {
        concrete::concrete_result(call, result, cx)
    }

    fn concrete_state(&self, s: &PosixState, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        concrete::concrete_state(s, cx)
    }

    fn initial_state(&self) -> PosixState {
        ledger::reset();
        let s = PosixState::fresh("s");
        if commuter_engine::exploring() {
            alloc::name_initial_free_fds(&s);
            alloc::assume_vma_layout(&s);
            fs::assume_link_counts(&s);
        }
        s
    }
}
