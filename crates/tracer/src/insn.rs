//! Just enough x86-64 instruction decoding for the plugin's translation-time decisions: which
//! instructions move the call stack ([`decode`], for [`crate::stack`]) and which touch no memory
//! but their own thread's stack slot ([`own_stack_only`], which need no memory callback).
//!
//! Legacy prefixes (segment, operand size, `lock`, `notrack`, `rep`/`bnd`) and one REX prefix
//! are skipped; anything not recognised is left to the general case (a callback on every
//! access), so a decoding gap costs time, never a missed access.

/// What an instruction does to the call stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// A near call (`call rel32`, or indirect `call r/m64`): pushes its return address.
    Call,
    /// A near return (`ret`, `ret imm16`): pops.
    Ret,
}

/// The opcode byte and the byte after it (the ModRM byte where there is one), past prefixes.
fn opcode(bytes: &[u8]) -> Option<(u8, Option<u8>)> {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3 => i += 1,
            _ => break,
        }
    }
    if let Some(0x40..=0x4f) = bytes.get(i) {
        i += 1;
    }
    Some((*bytes.get(i)?, bytes.get(i + 1).copied()))
}

/// The `reg` field of a ModRM byte (the opcode extension of group instructions).
fn modrm_reg(modrm: u8) -> u8 {
    (modrm >> 3) & 7
}

/// Whether a ModRM byte names a register, not memory.
fn modrm_is_register(modrm: u8) -> bool {
    modrm >> 6 == 3
}

/// Whether an instruction is a near `call` or `ret`. Far calls and returns (`FF /3`, `CB`,
/// `CA`), `iret` and `sysret` are not.
pub fn decode(bytes: &[u8]) -> Option<Flow> {
    match opcode(bytes)? {
        (0xe8, _) => Some(Flow::Call),
        (0xc3 | 0xc2, _) => Some(Flow::Ret),
        (0xff, Some(modrm)) => (modrm_reg(modrm) == 2).then_some(Flow::Call),
        _ => None,
    }
}

/// Whether the only memory an instruction touches is the slot at its own stack pointer:
/// `push`/`pop` of a register or an immediate, `pushf`/`popf`, `leave`, a direct or
/// register-indirect `call`, `ret`.
///
/// Such slots hold saved registers and return addresses of the thread running the code; no
/// other CPU reads or writes them while the call runs, so they can never be shared between two
/// calls, and leaving them without a callback saves a third of a kernel path's callbacks. A
/// `push`, `pop` or `call` through memory (`FF /6`, `8F /0`, `FF /2` with a memory operand)
/// also reads or writes that memory and keeps its callback.
pub fn own_stack_only(bytes: &[u8]) -> bool {
    match opcode(bytes) {
        Some((0x50..=0x5f | 0x68 | 0x6a | 0x9c | 0x9d | 0xc9 | 0xe8 | 0xc3 | 0xc2, _)) => true,
        Some((0xff, Some(modrm))) => matches!(modrm_reg(modrm), 2 | 6) && modrm_is_register(modrm),
        Some((0x8f, Some(modrm))) => modrm_reg(modrm) == 0 && modrm_is_register(modrm),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_calls_and_returns_with_prefixes() {
        assert_eq!(decode(&[0xe8, 1, 2, 3, 4]), Some(Flow::Call));
        // call *%rax (FF D0), call *0x8(%rbx) (FF 53 08), notrack call *%rax (3E FF D0),
        // call *%r11 (41 FF D3).
        assert_eq!(decode(&[0xff, 0xd0]), Some(Flow::Call));
        assert_eq!(decode(&[0xff, 0x53, 0x08]), Some(Flow::Call));
        assert_eq!(decode(&[0x3e, 0xff, 0xd0]), Some(Flow::Call));
        assert_eq!(decode(&[0x41, 0xff, 0xd3]), Some(Flow::Call));
        assert_eq!(decode(&[0xc3]), Some(Flow::Ret));
        assert_eq!(decode(&[0xf3, 0xc3]), Some(Flow::Ret), "rep ret");
        assert_eq!(decode(&[0xc2, 0x08, 0x00]), Some(Flow::Ret));
        // jmp *%rax (FF E0), far call (FF 1F), far ret (CB), iretq (48 CF), jmp rel32, push.
        assert_eq!(decode(&[0xff, 0xe0]), None);
        assert_eq!(decode(&[0xff, 0x1f]), None);
        assert_eq!(decode(&[0xcb]), None);
        assert_eq!(decode(&[0x48, 0xcf]), None);
        assert_eq!(decode(&[0xe9, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[0x50]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0xff]), None, "truncated");
    }

    #[test]
    fn register_saves_and_returns_touch_only_their_stack() {
        let own = [
            &[0x55][..],         // push %rbp
            &[0x41, 0x57],       // push %r15
            &[0x5d],             // pop %rbp
            &[0x41, 0x5c],       // pop %r12
            &[0x6a, 0x00],       // push $0
            &[0x68, 1, 2, 3, 4], // push $imm32
            &[0x9c],             // pushf
            &[0x9d],             // popf
            &[0xc9],             // leave
            &[0xe8, 1, 2, 3, 4], // call rel32
            &[0xff, 0xd0],       // call *%rax
            &[0x41, 0xff, 0xd3], // call *%r11
            &[0xc3],             // ret
            &[0xf3, 0xc3],       // rep ret
            &[0xc2, 8, 0],       // ret $8
            &[0xff, 0xf0],       // push %rax (FF /6, register form)
            &[0x8f, 0xc0],       // pop %rax (8F /0, register form)
        ];
        for bytes in own {
            assert!(
                own_stack_only(bytes),
                "{bytes:02x?} touches only its stack slot"
            );
        }
    }

    #[test]
    fn accesses_through_memory_operands_keep_their_callback() {
        let other = [
            &[0xff, 0x53, 0x08][..],   // call *0x8(%rbx): reads the function pointer
            &[0xff, 0x73, 0x08],       // push 0x8(%rbx): reads memory
            &[0x8f, 0x43, 0x08],       // pop 0x8(%rbx): writes memory
            &[0x48, 0x89, 0x04, 0x24], // mov %rax,(%rsp): a local, maybe shared by address
            &[0x48, 0x8b, 0x07],       // mov (%rdi),%rax
            &[0xff, 0xe0],             // jmp *%rax (no access)
            &[0xff, 0x1f],             // far call through memory
            &[0x48, 0xcf],             // iretq: pops a whole frame, left to the general case
            &[0xcb],                   // far ret
            &[],
            &[0xff], // truncated
        ];
        for bytes in other {
            assert!(
                !own_stack_only(bytes),
                "{bytes:02x?} may touch other memory"
            );
        }
    }
}
