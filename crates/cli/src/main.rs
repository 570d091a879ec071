//! The `commuter` binary: the command line with the built-in models.

use std::process::ExitCode;

fn main() -> ExitCode {
    commuter::run(Vec::new(), std::env::args_os())
}
