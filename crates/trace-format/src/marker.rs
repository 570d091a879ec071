//! The marker protocol between the guest and the tracer.
//!
//! A marker is the 9-byte no-op `nopw 0x4d54XXXX(%rax,%rax,1)`
//! (bytes `66 0f 1f 84 00` followed by the 32-bit displacement). The high half of the
//! displacement is the magic [`MAGIC`] ("MT"), the low half the [`Command`]; the command's
//! argument is in `%rdi`. The instruction does nothing on real hardware, so a guest built with
//! markers runs unchanged without the tracer.

/// First five bytes of every marker instruction.
pub const PREFIX: [u8; 5] = [0x66, 0x0f, 0x1f, 0x84, 0x00];
/// Length of a marker instruction in bytes.
pub const LEN: usize = 9;
/// High 16 bits of the displacement of every marker.
pub const MAGIC: u32 = 0x4d54_0000;

/// What a marker tells the tracer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Command {
    /// A test begins; argument: the test index.
    BeginTest = 1,
    /// The calling vCPU begins a call; argument: the call slot (0 = call A, 1 = call B).
    BeginCall = 2,
    /// The calling vCPU's call has returned; argument: the call slot.
    EndCall = 3,
    /// The test ends, both calls have returned; argument: the test index.
    EndTest = 4,
}

impl Command {
    /// All commands, for decoding.
    pub const ALL: [Command; 4] = [
        Command::BeginTest,
        Command::BeginCall,
        Command::EndCall,
        Command::EndTest,
    ];

    /// The full 32-bit displacement that encodes this command.
    pub const fn displacement(self) -> u32 {
        MAGIC | self as u32
    }

    /// Decodes a displacement; `None` if it is not a marker displacement.
    pub fn from_displacement(disp: u32) -> Option<Command> {
        if disp & 0xffff_0000 != MAGIC {
            return None;
        }
        Self::ALL.into_iter().find(|c| *c as u32 == disp & 0xffff)
    }
}

/// Displacements of the four markers, for [`emit`].
pub const BEGIN_TEST: u32 = Command::BeginTest.displacement();
pub const BEGIN_CALL: u32 = Command::BeginCall.displacement();
pub const END_CALL: u32 = Command::EndCall.displacement();
pub const END_TEST: u32 = Command::EndTest.displacement();

/// Emits the marker with displacement `DISP` (one of the constants above) and argument `arg`
/// in `%rdi`: what the POSIX guest and every harness runner execute, so both speak the exact
/// encoding [`decode`] reads.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn emit<const DISP: u32>(arg: u64) {
    // SAFETY: a 9-byte no-op; %rdi only carries the argument.
    unsafe {
        core::arch::asm!(
            ".byte {p0}, {p1}, {p2}, {p3}, {p4}",
            ".long {d}",
            p0 = const PREFIX[0],
            p1 = const PREFIX[1],
            p2 = const PREFIX[2],
            p3 = const PREFIX[3],
            p4 = const PREFIX[4],
            d = const DISP,
            in("rdi") arg,
            options(nostack, preserves_flags)
        )
    }
}

/// Decodes the bytes of one instruction; `None` unless it is a marker.
pub fn decode(insn: &[u8]) -> Option<Command> {
    if insn.len() != LEN || insn[..PREFIX.len()] != PREFIX {
        return None;
    }
    let disp = u32::from_le_bytes([insn[5], insn[6], insn[7], insn[8]]);
    Command::from_displacement(disp)
}

/// Encodes a marker instruction (what the guest's inline assembly emits).
pub fn encode(cmd: Command) -> [u8; LEN] {
    let d = cmd.displacement().to_le_bytes();
    [
        PREFIX[0], PREFIX[1], PREFIX[2], PREFIX[3], PREFIX[4], d[0], d[1], d[2], d[3],
    ]
}

#[cfg(test)]
mod tests {

    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn emits_begin_call() {
        emit::<BEGIN_CALL>(1);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_emitted_instruction_decodes_as_its_command() {
        // The function's own machine code holds the marker: find it and decode it.
        let code = emits_begin_call as *const () as *const u8;
        // SAFETY: reading the first bytes of a function of this test binary.
        let bytes = unsafe { std::slice::from_raw_parts(code, 64) };
        let at = bytes
            .windows(LEN)
            .position(|w| w[..PREFIX.len()] == PREFIX)
            .expect("a marker in the function");
        assert_eq!(decode(&bytes[at..at + LEN]), Some(Command::BeginCall));
    }

    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        for c in Command::ALL {
            assert_eq!(decode(&encode(c)), Some(c));
        }
    }

    #[test]
    fn ordinary_nops_are_not_markers() {
        // nopw 0x0(%rax,%rax,1), a common 9-byte padding no-op.
        assert_eq!(decode(&[0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0]), None);
        // Right magic, unknown command.
        let mut b = encode(Command::EndTest);
        b[5] = 0x77;
        assert_eq!(decode(&b), None);
        assert_eq!(decode(&b[..8]), None);
    }
}
