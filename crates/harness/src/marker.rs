//! The tracer's marker instructions, emitted exactly as the POSIX guest emits them (the
//! encoding is `commuter-trace-format`'s): a 9-byte no-op, so the binary runs unchanged
//! without the tracer.

use commuter_trace_format::marker::Command;

/// Emits a marker with argument `arg` in `%rdi`.
#[inline(always)]
pub fn marker<const DISP: u32>(arg: u64) {
    // SAFETY: a 9-byte no-op; %rdi only carries the argument.
    unsafe {
        core::arch::asm!(
            ".byte 0x66, 0x0f, 0x1f, 0x84, 0x00",
            ".long {d}",
            d = const DISP,
            in("rdi") arg,
            options(nostack, preserves_flags)
        )
    }
}

pub const BEGIN_TEST: u32 = Command::BeginTest.displacement();
pub const BEGIN_CALL: u32 = Command::BeginCall.displacement();
pub const END_CALL: u32 = Command::EndCall.displacement();
pub const END_TEST: u32 = Command::EndTest.displacement();
