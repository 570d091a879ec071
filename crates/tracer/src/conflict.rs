//! Conflict computation between the memory accesses of two calls, or of every pair of a test's
//! calls ([`analyze_calls`]): pure, no QEMU involved.
//!
//! Two calls conflict on a byte when both access it and at least one writes it (the
//! scalable commutativity rule's definition). Accesses are grouped per 64-byte cache line
//! with a bit mask of bytes read and of bytes written, which makes the byte-level overlap test
//! a few mask operations per line; lines that both sides touch with a write somewhere but with
//! no conflicting byte are reported separately as false sharing.

use commuter_trace_format::record::{FalseSharing, Mode, Rw, SharedLocation, Side};
use std::collections::HashMap;

/// Cache line size of the x86-64 machines the tests model.
pub const LINE: u64 = commuter_trace_format::record::CACHE_LINE;
/// Distinct (instruction, read/write) pairs kept per line and side for attribution; more are
/// still counted in the masks, just not named.
const MAX_TOUCHES: usize = 16;
/// Instructions listed per side of a reported location.
const MAX_PCS: usize = 8;

/// One memory access made by a traced call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Address accessed (physical in system mode).
    pub addr: u64,
    /// The virtual address the instruction used (tells what kind of memory it is: direct map,
    /// vmalloc space, the page array, user memory).
    pub vaddr: u64,
    /// Instruction that made the access.
    pub pc: u64,
    /// Access size in bytes (1 to 64).
    pub size: u8,
    /// True for a store.
    pub write: bool,
    /// True when user-mode code made the access (the plugin traces user mode only when asked).
    pub user: bool,
    /// The call stack the access ran under: an id into its call's stack table
    /// ([`crate::stack::ShadowStack::id`]), or [`NO_STACK`].
    pub stack: u32,
}

pub use crate::stack::NO_STACK;

/// Conflicts between two calls.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Conflicts {
    /// Shared byte ranges, in address order.
    pub shared: Vec<SharedLocation>,
    /// Falsely shared cache lines, in address order.
    pub false_sharing: Vec<FalseSharing>,
}

/// One instruction's use of part of a line.
#[derive(Clone, Copy, Debug)]
struct Touch {
    pc: u64,
    write: bool,
    mask: u64,
    /// The stack of the instruction's first access to the line.
    stack: u32,
}

/// One side's use of one cache line.
#[derive(Debug, Default)]
struct LineUse {
    read: u64,
    written: u64,
    /// Bytes user-mode code touched, and bytes kernel code touched: kept apart from `touches`,
    /// which are bounded, so that a side's mode is exact even when its PCs are not all named.
    user: u64,
    kernel: u64,
    touches: Vec<Touch>,
    /// Virtual address of the line's first byte, by the first access to it.
    vline: Option<u64>,
}

impl LineUse {
    fn any(&self) -> u64 {
        self.read | self.written
    }

    fn add(&mut self, pc: u64, write: bool, user: bool, mask: u64, stack: u32) {
        if write {
            self.written |= mask;
        } else {
            self.read |= mask;
        }
        if user {
            self.user |= mask;
        } else {
            self.kernel |= mask;
        }
        if let Some(t) = self
            .touches
            .iter_mut()
            .find(|t| t.pc == pc && t.write == write)
        {
            t.mask |= mask;
        } else if self.touches.len() < MAX_TOUCHES {
            self.touches.push(Touch {
                pc,
                write,
                mask,
                stack,
            });
        }
    }

    /// How this side touched the bytes in `mask`; `stacks` is the call's stack table.
    fn side(&self, mask: u64, stacks: &[Vec<u64>]) -> Side {
        let rw = match (self.read & mask != 0, self.written & mask != 0) {
            (true, true) => Rw::Rw,
            (false, true) => Rw::W,
            _ => Rw::R,
        };
        let mut pcs: Vec<u64> = Vec::new();
        let mut stack = NO_STACK;
        // Writers first: they are what makes a location conflict.
        for want_write in [true, false] {
            for t in &self.touches {
                if t.write == want_write && t.mask & mask != 0 && !pcs.contains(&t.pc) {
                    if pcs.is_empty() {
                        stack = t.stack;
                    }
                    pcs.push(t.pc);
                }
            }
        }
        pcs.truncate(MAX_PCS);
        let mode = match (self.user & mask != 0, self.kernel & mask != 0) {
            (true, true) => Mode::Both,
            (true, false) => Mode::User,
            _ => Mode::Kernel,
        };
        Side {
            pc: pcs.first().copied().unwrap_or(0),
            rw,
            mode,
            pcs,
            stack: stacks.get(stack as usize).cloned().unwrap_or_default(),
        }
    }
}

/// Byte mask of `[lo, hi)` within a line, `0 <= lo < hi <= 64`.
fn byte_mask(lo: u64, hi: u64) -> u64 {
    let len = hi - lo;
    if len >= 64 {
        u64::MAX
    } else {
        ((1u64 << len) - 1) << lo
    }
}

/// Groups accesses by cache line.
fn by_line(accesses: &[Access]) -> HashMap<u64, LineUse> {
    let mut lines: HashMap<u64, LineUse> = HashMap::new();
    for a in accesses {
        let size = u64::from(a.size.max(1));
        let end = a.addr.saturating_add(size);
        let mut at = a.addr;
        // An unaligned access can straddle two lines.
        while at < end {
            let line = at / LINE;
            let line_end = (line + 1).saturating_mul(LINE).min(end);
            let mask = byte_mask(at % LINE, line_end - line * LINE);
            let use_ = lines.entry(line).or_default();
            use_.add(a.pc, a.write, a.user, mask, a.stack);
            // A line never crosses a page, so the access's mapping covers the whole line.
            use_.vline
                .get_or_insert_with(|| a.vaddr.wrapping_add(line * LINE).wrapping_sub(a.addr));
            at = line_end;
        }
    }
    lines
}

/// Maximal runs of set bits in `mask`, as (first bit, length).
fn runs(mut mask: u64) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    while mask != 0 {
        let start = mask.trailing_zeros();
        let len = (mask >> start).trailing_ones();
        out.push((start, len));
        mask &= !byte_mask(u64::from(start), u64::from(start + len));
    }
    out
}

/// Computes the shared locations and falsely shared lines of every pair of `calls` (slot `i`
/// is `calls[i]`, with its call's stack table: each access's `stack` indexes it, and an empty
/// table names no stacks): pair by pair in slot order (0-1, 0-2, 1-2, ...), each in address
/// order, every location naming its two slots and each side the stack of its representative
/// instruction.
pub fn analyze_calls(calls: &[(&[Access], &[Vec<u64>])]) -> Conflicts {
    let lines: Vec<HashMap<u64, LineUse>> = calls.iter().map(|c| by_line(c.0)).collect();
    let mut out = Conflicts::default();
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            let stacks = [calls[i].1, calls[j].1];
            pair(&lines[i], &lines[j], stacks, [i as u64, j as u64], &mut out);
        }
    }
    out
}

/// Appends the conflicts between two calls' lines, sides `a` (slot `slots[0]`) and `b`.
fn pair(
    la: &HashMap<u64, LineUse>,
    lb: &HashMap<u64, LineUse>,
    stacks: [&[Vec<u64>]; 2],
    slots: [u64; 2],
    out: &mut Conflicts,
) {
    let mut common: Vec<u64> = la.keys().filter(|l| lb.contains_key(l)).copied().collect();
    common.sort_unstable();
    for line in common {
        let (ua, ub) = (&la[&line], &lb[&line]);
        let bytes = (ua.written & ub.any()) | (ub.written & ua.any());
        if bytes != 0 {
            for (start, len) in runs(bytes) {
                let mask = byte_mask(u64::from(start), u64::from(start + len));
                out.shared.push(SharedLocation {
                    addr: line * LINE + u64::from(start),
                    size: len,
                    slots,
                    a: ua.side(mask, stacks[0]),
                    b: ub.side(mask, stacks[1]),
                    cache: None,
                    vaddr: ua.vline.map(|v| v.wrapping_add(u64::from(start))),
                    percpu: None,
                });
            }
        } else if (ua.written != 0 && ub.any() != 0) || (ub.written != 0 && ua.any() != 0) {
            out.false_sharing.push(FalseSharing {
                line: line * LINE,
                slots,
                a: ua.side(u64::MAX, stacks[0]),
                b: ub.side(u64::MAX, stacks[1]),
                cache: None,
                vaddr: ua.vline,
                percpu: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_trace_format::record::FIRST_PAIR;

    /// Calls A and B, without stacks, paired directly (what [`analyze_calls`] must agree with).
    fn analyze(a: &[Access], b: &[Access]) -> Conflicts {
        let mut out = Conflicts::default();
        pair(&by_line(a), &by_line(b), [&[], &[]], FIRST_PAIR, &mut out);
        out
    }

    /// [`analyze_calls`] of calls without stack tables.
    fn analyze_plain(calls: &[&[Access]]) -> Conflicts {
        let with: Vec<(&[Access], &[Vec<u64>])> = calls.iter().map(|c| (*c, &[][..])).collect();
        analyze_calls(&with)
    }

    /// The tests' accesses go through a direct map at this offset.
    const VOFF: u64 = 0xffff_8880_0000_0000;

    fn r(addr: u64, size: u8, pc: u64) -> Access {
        Access {
            addr,
            vaddr: addr.wrapping_add(VOFF),
            pc,
            size,
            write: false,
            user: false,
            stack: NO_STACK,
        }
    }

    /// A user-mode access through user virtual address `vaddr`.
    fn user(a: Access, vaddr: u64) -> Access {
        Access {
            user: true,
            vaddr,
            ..a
        }
    }

    fn w(addr: u64, size: u8, pc: u64) -> Access {
        Access {
            write: true,
            ..r(addr, size, pc)
        }
    }

    #[test]
    fn reads_never_conflict() {
        let c = analyze(&[r(0x1000, 8, 1)], &[r(0x1000, 8, 2)]);
        assert_eq!(c, Conflicts::default());
    }

    #[test]
    fn write_read_overlap_is_shared_with_exact_bytes() {
        // A writes bytes 4..12, B reads 8..16: bytes 8..12 are shared.
        let c = analyze(&[w(0x1004, 8, 0xa)], &[r(0x1008, 8, 0xb)]);
        assert_eq!(c.shared.len(), 1);
        let s = &c.shared[0];
        assert_eq!((s.addr, s.size), (0x1008, 4));
        assert_eq!(
            s.vaddr,
            Some(VOFF + 0x1008),
            "call A's virtual address of the first byte"
        );
        assert_eq!((s.a.pc, s.a.rw), (0xa, Rw::W));
        assert_eq!((s.b.pc, s.b.rw), (0xb, Rw::R));
        assert!(c.false_sharing.is_empty());
    }

    #[test]
    fn same_line_disjoint_bytes_is_false_sharing_only() {
        let c = analyze(&[w(0x1000, 8, 0xa)], &[r(0x1008, 8, 0xb)]);
        assert!(c.shared.is_empty());
        assert_eq!(c.false_sharing.len(), 1);
        assert_eq!(c.false_sharing[0].line, 0x1000);
    }

    #[test]
    fn different_lines_share_nothing() {
        let c = analyze(&[w(0x1000, 8, 1)], &[w(0x1040, 8, 2)]);
        assert_eq!(c, Conflicts::default());
    }

    #[test]
    fn read_only_line_is_not_false_sharing() {
        let c = analyze(&[r(0x1000, 8, 1)], &[r(0x1010, 8, 2)]);
        assert_eq!(c, Conflicts::default());
    }

    #[test]
    fn straddling_access_is_split_per_line() {
        // A writes 0x103c..0x1044 (two lines); B reads one byte in each line.
        let c = analyze(&[w(0x103c, 8, 1)], &[r(0x103f, 1, 2), r(0x1040, 1, 3)]);
        let got: Vec<(u64, u32)> = c.shared.iter().map(|s| (s.addr, s.size)).collect();
        assert_eq!(got, vec![(0x103f, 1), (0x1040, 1)]);
    }

    #[test]
    fn separate_runs_in_one_line_are_separate_locations() {
        let a = [w(0x2000, 4, 1), w(0x2010, 4, 1)];
        let b = [r(0x2000, 32, 2)];
        let got: Vec<(u64, u32)> = analyze(&a, &b)
            .shared
            .iter()
            .map(|s| (s.addr, s.size))
            .collect();
        assert_eq!(got, vec![(0x2000, 4), (0x2010, 4)]);
    }

    #[test]
    fn atomic_rmw_reports_both_and_lists_writer_first() {
        // QEMU reports a locked RMW as a read plus a write from the same PC.
        let a = [r(0x3000, 4, 0x10), w(0x3000, 4, 0x10), r(0x3000, 4, 0x20)];
        let b = [r(0x3000, 4, 0x30), w(0x3000, 4, 0x30)];
        let c = analyze(&a, &b);
        assert_eq!(c.shared.len(), 1);
        assert_eq!(c.shared[0].a.rw, Rw::Rw);
        assert_eq!(c.shared[0].a.pcs, vec![0x10, 0x20]);
        assert_eq!(c.shared[0].b.pc, 0x30);
    }

    #[test]
    fn full_line_access_and_runs_cover_all_bits() {
        assert_eq!(byte_mask(0, 64), u64::MAX);
        assert_eq!(runs(u64::MAX), vec![(0, 64)]);
        assert_eq!(runs(0b1011_0000), vec![(4, 2), (7, 1)]);
        let c = analyze(&[w(0x4000, 64, 1)], &[r(0x4020, 1, 2)]);
        assert_eq!((c.shared[0].addr, c.shared[0].size), (0x4020, 1));
    }

    #[test]
    fn user_user_sharing_is_tagged_user_on_both_sides() {
        // Two threads store to the first byte of one page through the same user address.
        let c = analyze(
            &[user(w(0x5000, 1, 0x40_1000), 0x100_0000_0000)],
            &[user(w(0x5000, 1, 0x40_1000), 0x100_0000_0000)],
        );
        assert_eq!(c.shared.len(), 1);
        let s = &c.shared[0];
        assert_eq!((s.a.mode, s.b.mode), (Mode::User, Mode::User));
        assert_eq!(s.vaddr, Some(0x100_0000_0000), "call A's user address");
    }

    #[test]
    fn user_and_kernel_share_one_physical_line_through_different_mappings() {
        // A's user code writes byte 0 of a page at its user address; B's kernel code reads the
        // same physical bytes through the direct map (as a write() from that page would), and
        // another line of the page only in the kernel: one shared location, compared by
        // physical address, one side user and one kernel.
        let a = [user(w(0x6000, 8, 0x40_2000), 0x7f00_0000_0000)];
        let b = [
            r(0x6004, 4, 0xffff_ffff_8150_0000),
            r(0x6040, 8, 0xffff_ffff_8150_0000),
        ];
        let c = analyze(&a, &b);
        assert_eq!(c.shared.len(), 1, "{c:?}");
        let s = &c.shared[0];
        assert_eq!((s.addr, s.size), (0x6004, 4));
        assert_eq!((s.a.mode, s.a.rw), (Mode::User, Rw::W));
        assert_eq!((s.b.mode, s.b.rw), (Mode::Kernel, Rw::R));
        assert_eq!(s.vaddr, Some(0x7f00_0000_0004));
        // False sharing of a line: the mode of each side over the whole line.
        let c = analyze(&a, &[r(0x6020, 4, 0xffff_ffff_8150_0000)]);
        assert!(c.shared.is_empty());
        let f = &c.false_sharing[0];
        assert_eq!((f.a.mode, f.b.mode), (Mode::User, Mode::Kernel));
    }

    #[test]
    fn a_side_touched_by_user_and_kernel_code_is_both() {
        // A side's mode comes from byte masks, not from its (bounded) list of PCs: more
        // distinct kernel instructions than are named still leave the user write counted.
        let mut a: Vec<Access> = (0..MAX_TOUCHES as u64 + 4)
            .map(|i| r(0x7000, 1, 0xffff_ffff_8100_0000 + i))
            .collect();
        a.push(user(w(0x7000, 1, 0x40_3000), 0x100_0000_0000));
        let c = analyze(&a, &[w(0x7000, 1, 0xffff_ffff_8100_1000)]);
        assert_eq!(c.shared[0].a.mode, Mode::Both);
        assert_eq!(c.shared[0].a.rw, Rw::Rw);
        assert_eq!(c.shared[0].b.mode, Mode::Kernel);
        // Kernel code alone, as before user-mode tracing.
        let c = analyze(&[w(0x8000, 4, 1)], &[r(0x8000, 4, 2)]);
        assert_eq!(
            (c.shared[0].a.mode, c.shared[0].b.mode),
            (Mode::Kernel, Mode::Kernel)
        );
    }

    #[test]
    fn three_calls_report_each_pair_that_shares() {
        // Calls 0 and 2 write one word, call 1 reads another line that call 2 also writes
        // next to (false sharing), call 0 touches nothing of call 1's.
        let c0 = [w(0x1000, 8, 0xa)];
        let c1 = [r(0x2008, 8, 0xb)];
        let c2 = [w(0x1000, 4, 0xc), w(0x2000, 8, 0xc)];
        let c = analyze_plain(&[&c0, &c1, &c2]);
        let shared: Vec<([u64; 2], u64, u32)> =
            c.shared.iter().map(|s| (s.slots, s.addr, s.size)).collect();
        assert_eq!(shared, vec![([0, 2], 0x1000, 4)]);
        assert_eq!((c.shared[0].a.pc, c.shared[0].b.pc), (0xa, 0xc));
        let lines: Vec<([u64; 2], u64)> =
            c.false_sharing.iter().map(|f| (f.slots, f.line)).collect();
        assert_eq!(lines, vec![([1, 2], 0x2000)]);
        // A location all three write is reported once per pair, in slot order.
        let all = [w(0x3000, 1, 0xd)];
        let c = analyze_plain(&[&all, &all, &all]);
        let pairs: Vec<[u64; 2]> = c.shared.iter().map(|s| s.slots).collect();
        assert_eq!(pairs, vec![[0, 1], [0, 2], [1, 2]]);
        // Two calls: the same as `analyze`.
        assert_eq!(analyze_plain(&[&c0, &c2]), analyze(&c0, &c2));
    }

    #[test]
    fn each_side_names_the_stack_of_its_representative_instruction() {
        let at = |a: Access, stack| Access { stack, ..a };
        // A reads under stack 0, then writes under stack 1: the writer is named first, with
        // its stack; B's only access ran with no stack recorded.
        let a = [at(r(0x1000, 8, 0xa), 0), at(w(0x1000, 8, 0xb), 1)];
        let b = [r(0x1000, 8, 0xc)];
        let stacks_a = vec![vec![0x100], vec![0x200, 0x100]];
        let c = analyze_calls(&[(&a, &stacks_a), (&b, &[])]);
        assert_eq!(c.shared[0].a.pcs, vec![0xb, 0xa]);
        assert_eq!(c.shared[0].a.stack, vec![0x200, 0x100]);
        assert!(c.shared[0].b.stack.is_empty());
        // Without stack tables, no stacks.
        assert!(analyze(&a, &b).shared[0].a.stack.is_empty());
    }

    #[test]
    fn access_at_top_of_address_space_does_not_overflow() {
        let c = analyze(&[w(u64::MAX - 3, 8, 1)], &[r(u64::MAX - 1, 1, 2)]);
        assert_eq!(c.shared.len(), 1);
    }
}
