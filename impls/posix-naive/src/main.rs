//! `posix-naive`: commuter's harness runner for the POSIX model on `scalefs::NaiveFs`, the same
//! interface behind one global lock (the contrast to `posix-scalable`).

fn main() {
    commuter_harness::main::<scalefs::PosixAdapter<scalefs::NaiveFs>>()
}
