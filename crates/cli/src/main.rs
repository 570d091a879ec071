//! The `commuter` binary: the command line with the built-in models.

use std::process::ExitCode;

/// jemalloc for the whole process, Z3 included (the crate's malloc symbols are unprefixed):
/// Z3 allocates and frees small objects at a high rate, and with glibc's allocator that was
/// about a fifth of test generation's time (`bench/testgen-speed`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Writing to a closed pipe (`commuter ... | head`) ends the program quietly, as other Unix
    // tools do, instead of panicking in `println!`.
    // SAFETY: restoring a signal's default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    commuter::run(Vec::new(), std::env::args_os())
}
