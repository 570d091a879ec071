//! The `commuter` binary: the command line with the built-in models.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Writing to a closed pipe (`commuter ... | head`) ends the program quietly, as other Unix
    // tools do, instead of panicking in `println!`.
    // SAFETY: restoring a signal's default disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    commuter::run(Vec::new(), std::env::args_os())
}
