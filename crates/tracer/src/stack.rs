//! The per-vCPU shadow call stack: which kernel functions called the code that made an access.
//!
//! The stock kernel has no frame pointers, so the caller chain cannot be unwound from memory
//! afterwards; the plugin sees every instruction instead. At translation time it decodes each
//! kernel `call` and `ret` ([`crate::insn::decode`]) and gives them a memory callback: the
//! `call`'s push and the `ret`'s pop tell the stack slot of the return address (the access's virtual address) at
//! no cost of reading registers. [`ShadowStack`] keeps (return address, slot) frames.
//!
//! Keyed by slot, the stack needs no trust in call/ret pairing:
//! - A `ret` pops the frame whose slot it reads, and everything pushed after it: frames a
//!   context switch, `longjmp`-like code or a thunk that drops its own frame (`srso_safe_ret`)
//!   left behind go with it. Return thunks (`jmp __x86_return_thunk`) and retpolines need
//!   nothing special: their `ret` is an instruction like any other, and the slot it reads is the
//!   frame of the function that jumped to them.
//! - A `call` first drops frames of the same stack at or below its own slot (they returned
//!   unseen, e.g. while tracing was off), then pushes.
//! - Frames on another stack (an interrupt's, another task's) stay below until a `ret`
//!   matches deeper: interrupts nest above the interrupted code, and a context switch back
//!   returns to the switched-out task's frame. Tail calls (`jmp`) push nothing and the callee's
//!   `ret` returns to the caller's caller: the stack of return addresses stays right.
//! - Depth is capped ([`MAX_DEPTH`]; the oldest frame goes), the stack is emptied when a call
//!   starts recording (the traced thread is in user mode there: its kernel stack is empty).
//!
//! Accesses name their stack by a small id ([`ShadowStack::id`]): a node of the recorded call's
//! calling-context tree, built as calls happen, so an access costs one read; the innermost
//! [`STACK_DEPTH`] return addresses of each node are written out when the call ends.

use commuter_trace_format::record::STACK_DEPTH;
use std::collections::HashMap;

/// Frames kept; a deeper stack loses its oldest (outermost) frames.
pub const MAX_DEPTH: usize = 64;
/// A kernel stack's size (x86-64 `THREAD_SIZE`, also the IRQ stacks'): two slots closer than
/// this are on one stack.
const STACK_SIZE: u64 = 16 << 10;
/// The id of "no stack recorded" (an access made while stacks are off).
pub const NO_STACK: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    /// Where the call returns to.
    ret: u64,
    /// The stack address holding it.
    slot: u64,
    /// The calling context this frame opened (see [`ShadowStack`]).
    node: u32,
}

/// A calling context: the context it was called from, and the return address into it.
#[derive(Clone, Copy, Debug)]
struct Node {
    parent: u32,
    ret: u64,
}

/// The root context: no frame.
const ROOT: u32 = 0;
/// Contexts kept per recorded call; a call that would open more reuses its caller's context.
const MAX_NODES: usize = 1 << 20;

fn same_stack(a: u64, b: u64) -> bool {
    a.abs_diff(b) < STACK_SIZE
}

/// A multiplicative hash of the (context, return address) keys: SipHash's resistance to
/// chosen keys buys nothing here and costs on every traced call.
#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Children = HashMap<(u32, u64), u32, std::hash::BuildHasherDefault<KeyHasher>>;

/// One vCPU's shadow call stack. Besides the frames it keeps the calling-context tree of the
/// recorded call (each node a return address below its caller's node), so the id of the
/// current stack is the top frame's node: an access reads one number, and a `call` costs one
/// lookup of (caller's node, return address). The tree is turned into stacks once, at the end
/// of the call ([`ShadowStack::take_table`]).
#[derive(Debug, Default)]
pub struct ShadowStack {
    /// Outermost first.
    frames: Vec<Frame>,
    nodes: Vec<Node>,
    children: Children,
}

impl ShadowStack {
    /// An empty stack.
    pub fn new() -> Self {
        let mut s = ShadowStack {
            frames: Vec::with_capacity(MAX_DEPTH),
            ..ShadowStack::default()
        };
        s.reset();
        s
    }

    /// Forgets every frame and context (a call begins recording in user mode).
    pub fn reset(&mut self) {
        self.frames.clear();
        self.nodes.clear();
        self.nodes.push(Node {
            parent: ROOT,
            ret: 0,
        });
        self.children.clear();
    }

    /// A `call` pushed `ret` at stack address `slot`.
    #[inline]
    pub fn call(&mut self, ret: u64, slot: u64) {
        while let Some(top) = self.frames.last() {
            if same_stack(top.slot, slot) && top.slot <= slot {
                self.frames.pop();
            } else {
                break;
            }
        }
        if self.frames.len() == MAX_DEPTH {
            self.frames.remove(0);
        }
        let parent = self.id();
        let next = u32::try_from(self.nodes.len()).unwrap_or(ROOT);
        let node = if self.nodes.len() < MAX_NODES {
            *self.children.entry((parent, ret)).or_insert(next)
        } else {
            self.children.get(&(parent, ret)).copied().unwrap_or(parent)
        };
        if node == next {
            self.nodes.push(Node { parent, ret });
        }
        self.frames.push(Frame { ret, slot, node });
    }

    /// A `ret` popped its return address from stack address `slot`.
    #[inline]
    pub fn ret(&mut self, slot: u64) {
        if let Some(i) = self.frames.iter().rposition(|f| f.slot == slot) {
            self.frames.truncate(i);
        } else {
            // A frame we never saw pushed (tracing started inside it): frames of this stack
            // deeper than it are gone too.
            while let Some(top) = self.frames.last() {
                if same_stack(top.slot, slot) && top.slot < slot {
                    self.frames.pop();
                } else {
                    break;
                }
            }
        }
    }

    /// The id of the current stack in [`ShadowStack::take_table`]'s table.
    #[inline]
    pub fn id(&self) -> u32 {
        self.frames.last().map_or(ROOT, |f| f.node)
    }

    /// The stacks of every context since the last reset (index = id): the innermost
    /// [`STACK_DEPTH`] return addresses, innermost first. Leaves the tree empty.
    pub fn take_table(&mut self) -> Vec<Vec<u64>> {
        let table = (0..self.nodes.len())
            .map(|mut i| {
                let mut stack = Vec::new();
                while i != ROOT as usize && stack.len() < STACK_DEPTH {
                    let n = self.nodes[i];
                    stack.push(n.ret);
                    i = n.parent as usize;
                }
                stack
            })
            .collect();
        self.reset();
        table
    }

    /// Return addresses, innermost first (for tests and debugging).
    pub fn returns(&self) -> Vec<u64> {
        self.frames.iter().rev().map(|f| f.ret).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task stack's top, and an IRQ stack far from it.
    const TASK: u64 = 0xffff_c900_0001_4000;
    const IRQ: u64 = 0xffff_c900_0000_4000;

    #[test]
    fn calls_push_and_returns_pop() {
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x40);
        assert_eq!(s.returns(), vec![0x20, 0x10]);
        s.ret(TASK - 0x40);
        assert_eq!(s.returns(), vec![0x10]);
        s.ret(TASK - 8);
        assert!(s.returns().is_empty());
    }

    /// `srso_return_thunk` calls `srso_safe_ret`, which drops that frame (`lea 8(%rsp),%rsp`)
    /// and returns from the function that jumped to the thunk: both frames go.
    #[test]
    fn a_return_to_a_deeper_slot_pops_what_was_pushed_after_it() {
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x40);
        s.call(0x30, TASK - 0x48); // the thunk's own call
        s.ret(TASK - 0x40);
        assert_eq!(s.returns(), vec![0x10]);
    }

    /// Retpoline: `call __x86_indirect_thunk_rax` pushes, the thunk calls its own label, writes
    /// the target over that return address and returns to it; the target's `ret` then pops the
    /// original frame.
    #[test]
    fn retpolines_and_tail_calls_keep_the_callers() {
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x10); // call __x86_indirect_thunk_rax
        s.call(0x21, TASK - 0x18); // the thunk's call .Ldo_rop
        s.ret(TASK - 0x18); // ret into the target
        assert_eq!(s.returns(), vec![0x20, 0x10], "inside the target");
        // The target tail-calls (jmp) another function, whose ret returns to the caller.
        s.ret(TASK - 0x10);
        assert_eq!(s.returns(), vec![0x10]);
    }

    #[test]
    fn interrupts_nest_on_their_own_stack() {
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x40);
        s.call(0x90, IRQ - 8); // an interrupt's handler on the IRQ stack
        assert_eq!(s.returns(), vec![0x90, 0x20, 0x10]);
        s.ret(IRQ - 8);
        assert_eq!(s.returns(), vec![0x20, 0x10]);
    }

    /// A context switch: the task leaves through `__switch_to_asm` (its frame stays), another
    /// task runs on its own stack, then the first one is switched back in and returns.
    #[test]
    fn a_context_switch_back_finds_the_tasks_frames() {
        let other = TASK + 0x10_0000;
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x100); // ... call __switch_to_asm
        s.ret(other - 0x200); // the other task returns from its switch (never seen pushed)
        s.call(0x50, other - 0x200);
        assert_eq!(s.returns(), vec![0x50, 0x20, 0x10]);
        s.ret(TASK - 0x100); // switched back: returns into our schedule()
        assert_eq!(s.returns(), vec![0x10]);
    }

    #[test]
    fn calls_drop_frames_that_returned_unseen_and_depth_is_capped() {
        let mut s = ShadowStack::new();
        s.call(0x10, TASK - 8);
        s.call(0x20, TASK - 0x40);
        // A new call at a slot above 0x20's: that frame is gone.
        s.call(0x30, TASK - 0x30);
        assert_eq!(s.returns(), vec![0x30, 0x10]);
        s.reset();
        for i in 0..MAX_DEPTH as u64 + 5 {
            s.call(i, TASK - 8 * (i + 1));
        }
        let r = s.returns();
        assert_eq!(r.len(), MAX_DEPTH);
        assert_eq!(r[0], MAX_DEPTH as u64 + 4);
        assert_eq!(*r.last().unwrap(), 5, "the oldest frames went");
    }

    #[test]
    fn ids_intern_the_innermost_frames() {
        let mut s = ShadowStack::new();
        let empty = s.id();
        s.call(0x10, TASK - 8);
        let one = s.id();
        assert_eq!(s.id(), one, "unchanged stack, same id");
        s.call(0x20, TASK - 0x40);
        let two = s.id();
        s.ret(TASK - 0x40);
        assert_eq!(s.id(), one, "the same stack again");
        for i in 0..40 {
            s.call(0x100 + i, TASK - 0x100 - 8 * i);
        }
        let deep = s.id();
        let table = s.take_table();
        assert_eq!(table[empty as usize], Vec::<u64>::new());
        assert_eq!(table[one as usize], vec![0x10]);
        assert_eq!(table[two as usize], vec![0x20, 0x10]);
        assert_eq!(table[deep as usize].len(), STACK_DEPTH);
        assert_eq!(table[deep as usize][0], 0x100 + 39);
        assert_eq!(table.len(), 3 + 40, "one context per distinct call path");
    }
}
