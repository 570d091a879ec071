//! `posix-scalable`: commuter's harness runner for the POSIX model on `scalefs::ScaleFs`, the
//! implementation designed by the scalable commutativity rule.

fn main() {
    commuter_harness::main::<scalefs::PosixAdapter<scalefs::ScaleFs>>()
}
