//! `commuter-trace-format`: the two formats the tracer shares with the rest of the pipeline.
//!
//! - [`marker`]: the no-op instructions the guest executes to tell the tracer plugin where a
//!   test and each of its calls begin and end.
//! - [`record`]: the plugin's output, one JSON line per test with the shared locations of the
//!   two calls.
//! - [`slab`]: the kernel data layout the plugin needs to name the slab cache of heap memory.
//! - [`percpu`]: where the kernel keeps its per-CPU areas, for the plugin to place locations
//!   in them.
//! - [`reftrace`]: a workload's reference trace (`commuter trace`) as the plugin streams it,
//!   and the kernel layout its `mode=reftrace` reads.
//!
//! It is a crate of its own, with no features and no FFI, so that the static guest, the target
//! driver and the symboliser can use the formats without pulling in the QEMU plugin.

/// The most calls a test may run at once (each on a CPU of its own): the guest, the plugin and
/// the target accept 2 up to this many.
pub const MAX_CALLS: usize = 3;

pub mod marker;
pub mod percpu;
pub mod record;
pub mod reftrace;
pub mod slab;

/// Colon-separated `0x` numbers, the shape of the layouts handed to the plugin as one argument
/// (commas separate plugin arguments).
fn hex_fields(s: &str) -> Option<Vec<u64>> {
    s.split(':')
        .map(|f| {
            f.strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
        })
        .collect()
}
