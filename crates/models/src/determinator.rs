//! Determinator's kernel interface (Aviram et al., OSDI 2010): a parent space and its child
//! spaces, each child with registers, a small page-granular memory with permissions, a
//! snapshot of that memory, and whether it is running; the parent reaches its children
//! through `Put` and `Get`, a child stops itself with `Ret`.
//!
//! Each option of Table 2 of the paper is a call of its own (`put_copy` is `Put` with the
//! `Copy` option, and so on), with the option's operands as the call's arguments: a `Put` with
//! several options performs them one after the other (registers, memory, permissions, snapshot,
//! start), so what the analysis says of each option says what it takes for combined calls to
//! commute. `Tree` (subtree copies) and instruction limits are not modelled, and no child code
//! runs: a started child is just "started" until it calls `ret`. What a running child did to
//! its memory since its snapshot is part of the (symbolic) initial state.
//!
//! Memory: [`PAGES`] pages of [`PAGE_BYTES`] bytes (byte values are integers), per page one
//! permission value (0..=3: bit 0 read, bit 1 write). Copy and Zero work on whole pages at the
//! same address in parent and child (the page-aligned case Determinator makes cheap with
//! copy-on-write).
//!
//! Calls on a running child do not wait for it to stop (Determinator's `Put` and `Get` block
//! until the child calls `Ret`; the deterministic-Linux port offers the non-blocking form this
//! model uses): they fail with `"busy"` and change nothing.
//!
//! `get_merge` is the three-way merge: every byte the child changed since its snapshot is
//! copied into the parent, unless the parent changed that byte too (relative to the same
//! snapshot): then the merge fails with `"conflict"` and changes nothing. The snapshot is
//! kept (a second merge without a new `put_snap` compares with the same one).
//!
//! Known answers (`tests/determinator.rs`): calls on different children commute, except where
//! both reach the parent's memory and one of them writes it (`get_copy`, `get_merge` against
//! `put_copy`, `get_copy`, `get_merge`); there they commute when the bytes agree (`put_copy`
//! into one child and `get_copy` out of another: different pages, or the page already holds
//! the child's bytes; two merges: no byte changed by both). `put_start` commutes with no other
//! call on its stopped child; a child's `ret` commutes exactly with the calls on other children.
//!
//! Pages are one byte long: merge conditions enumerate bytes, and with two bytes per page the
//! merge's per-byte choices, split into cases when printed, make them unreadable.

use commuter_engine::{
    Bool, Call, Int, Model, SymEq, Symbolic, TotalMap, Value, assume, invariant, symbolic,
};

/// Pages of every space's memory.
pub const PAGES: usize = 2;
/// Bytes of every page.
pub const PAGE_BYTES: usize = 1;

commuter_engine::uninterpreted!(
    /// A child's number, chosen by the parent (Determinator has no global namespace of
    /// process ids): only equality matters.
    pub ChildId
);

/// One page's bytes.
#[derive(Clone, Debug, Symbolic, Value)]
pub struct Page {
    pub b0: Int,
}

/// A space's memory.
#[derive(Clone, Debug, Symbolic, Value)]
pub struct Mem {
    pub p0: Page,
    pub p1: Page,
}

/// A child's permission per page (0..=3: bit 0 read, bit 1 write).
#[derive(Clone, Debug, Symbolic, Value)]
pub struct Perms {
    pub p0: Int,
    pub p1: Int,
}

/// A child space.
#[derive(Clone, Debug, Symbolic, Value)]
pub struct Child {
    /// Its register state (one value stands for the whole set).
    pub regs: Int,
    /// Started by `put_start` and not stopped by `ret` yet.
    pub started: Bool,
    pub mem: Mem,
    pub perm: Perms,
    /// The memory at its last `put_snap`, the reference of `get_merge`.
    pub snap: Mem,
}

/// The parent's memory and its children.
#[derive(Clone, Debug, Symbolic)]
pub struct Space {
    pub mem: Mem,
    pub children: TotalMap<ChildId, Child>,
}

/// Arguments of a call that names a child only.
#[derive(Clone, Debug, Symbolic)]
pub struct ChildArgs {
    pub child: ChildId,
}

/// Arguments of a call on one page of a child (and of the parent).
#[derive(Clone, Debug, Symbolic)]
pub struct PageArgs {
    pub child: ChildId,
    pub page: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct RegsArgs {
    pub child: ChildId,
    pub regs: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct PermArgs {
    pub child: ChildId,
    pub page: Int,
    pub perm: Int,
}

/// A call's error, as tests show it.
pub type Error = &'static str;
/// The call named a running child.
pub const BUSY: Error = "busy";
/// `get_merge` met a byte both parent and child changed since the snapshot.
pub const CONFLICT: Error = "conflict";

pub struct DeterminatorModel;

impl Model for DeterminatorModel {
    type State = Space;
    fn name(&self) -> &'static str {
        "determinator"
    }
    fn description(&self) -> &'static str {
        "Determinator's kernel interface: Put/Get options (regs, copy, zero, perm, snap, start, merge) and Ret on child spaces"
    }
    fn calls(&self) -> Vec<Call<Space>> {
        vec![
            Call::new("put_regs", put_regs),
            Call::new("put_copy", put_copy),
            Call::new("put_zero", put_zero),
            Call::new("put_perm", put_perm),
            Call::new("put_snap", put_snap),
            Call::new("put_start", put_start),
            Call::new("get_regs", get_regs),
            Call::new("get_copy", get_copy),
            Call::new("get_merge", get_merge),
            Call::new("ret", ret),
        ]
    }
    fn cost_hint(&self, call: &str) -> u32 {
        // The merge compares every byte of three memories.
        if call == "get_merge" { 4 } else { 1 }
    }
}

fn page_of(mem: &Mem, page: &Int) -> Page {
    if page.eq(0).branch() {
        mem.p0.clone()
    } else {
        mem.p1.clone()
    }
}

fn set_page(mem: &mut Mem, page: &Int, v: Page) {
    if page.eq(0).branch() {
        mem.p0 = v;
    } else {
        mem.p1 = v;
    }
}

/// A page number in range: the calls take no others.
fn valid_page(page: &Int) {
    invariant(&(page.ge(0) & page.lt(PAGES as i64)));
}

/// The child, or `"busy"` when it is running.
#[symbolic]
fn stopped(s: &Space, child: &ChildId) -> Result<Child, Error> {
    let c = s.children.get(child);
    if c.started.clone() {
        return Err(BUSY);
    }
    Ok(c)
}

/// A `Put`: `change` applied to the stopped child (given the parent's memory), or `"busy"`.
fn change_stopped(
    s: &mut Space,
    child: &ChildId,
    change: impl FnOnce(&mut Child, &Mem),
) -> Result<(), Error> {
    let mut c = stopped(s, child)?;
    change(&mut c, &s.mem);
    s.children.set(child, &c);
    Ok(())
}

/// `Put` with `Regs`: the child's registers become `regs`.
fn put_regs(s: &mut Space, a: &RegsArgs) -> Result<(), Error> {
    change_stopped(s, &a.child, |c, _| c.regs = a.regs.clone())
}

/// `Put` with `Copy`: the parent's page `page` into the child's.
fn put_copy(s: &mut Space, a: &PageArgs) -> Result<(), Error> {
    valid_page(&a.page);
    change_stopped(s, &a.child, |c, parent| {
        set_page(&mut c.mem, &a.page, page_of(parent, &a.page));
    })
}

/// `Put` with `Zero`: the child's page `page` zero-filled.
fn put_zero(s: &mut Space, a: &PageArgs) -> Result<(), Error> {
    valid_page(&a.page);
    change_stopped(s, &a.child, |c, _| {
        set_page(&mut c.mem, &a.page, Page { b0: Int::lit(0) });
    })
}

/// `Put` with `Perm`: the child's permission on page `page`.
fn put_perm(s: &mut Space, a: &PermArgs) -> Result<(), Error> {
    valid_page(&a.page);
    invariant(&(a.perm.ge(0) & a.perm.le(3)));
    change_stopped(s, &a.child, |c, _| {
        if a.page.eq(0).branch() {
            c.perm.p0 = a.perm.clone();
        } else {
            c.perm.p1 = a.perm.clone();
        }
    })
}

/// `Put` with `Snap`: the child's memory becomes its merge reference.
fn put_snap(s: &mut Space, a: &ChildArgs) -> Result<(), Error> {
    change_stopped(s, &a.child, |c, _| c.snap = c.mem.clone())
}

/// `Put` with `Start`: the child runs (until its `ret`).
fn put_start(s: &mut Space, a: &ChildArgs) -> Result<(), Error> {
    change_stopped(s, &a.child, |c, _| c.started = Bool::lit(true))
}

/// `Get` with `Regs`: the child's registers.
fn get_regs(s: &mut Space, a: &ChildArgs) -> Result<Int, Error> {
    Ok(stopped(s, &a.child)?.regs)
}

/// `Get` with `Copy`: the child's page `page` into the parent's.
fn get_copy(s: &mut Space, a: &PageArgs) -> Result<(), Error> {
    valid_page(&a.page);
    let c = stopped(s, &a.child)?;
    set_page(&mut s.mem, &a.page, page_of(&c.mem, &a.page));
    Ok(())
}

/// One byte of the merge: (changed in both, the parent's new byte).
fn merge_byte(parent: &Int, child: &Int, snap: &Int) -> (Bool, Int) {
    let child_changed = !child.sym_eq(snap);
    let parent_changed = !parent.sym_eq(snap);
    let merged = Int(child_changed.0.ite(&child.0, &parent.0));
    (child_changed & parent_changed, merged)
}

fn merge_page(parent: &Page, child: &Page, snap: &Page) -> (Bool, Page) {
    let (c0, b0) = merge_byte(&parent.b0, &child.b0, &snap.b0);
    (c0, Page { b0 })
}

/// `Get` with `Merge`: the child's changes since its snapshot into the parent, all or nothing.
#[symbolic]
fn get_merge(s: &mut Space, a: &ChildArgs) -> Result<(), Error> {
    let c = stopped(s, &a.child)?;
    // Byte by byte without branching: one path per outcome (merged or conflict), not one per
    // byte, and the conditions name the bytes.
    let (c0, p0) = merge_page(&s.mem.p0, &c.mem.p0, &c.snap.p0);
    let (c1, p1) = merge_page(&s.mem.p1, &c.mem.p1, &c.snap.p1);
    if c0 | c1 {
        return Err(CONFLICT);
    }
    s.mem = Mem { p0, p1 };
    Ok(())
}

/// `Ret`, by the child: it stops. Only a running child runs code, so only it can call this.
fn ret(s: &mut Space, a: &ChildArgs) {
    let mut c = s.children.get(&a.child);
    assume(&c.started);
    c.started = Bool::lit(false);
    s.children.set(&a.child, &c);
}
