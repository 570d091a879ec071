//! A set of values, as in the Set benchmark of commutativity-condition tools: `add(v)` and
//! `remove(v)` return whether they changed the set, `contains(v)` whether `v` is in it,
//! `size()` how many values it holds.
//!
//! Known answers: `contains` and `size` commute with each other always; calls on different
//! values always commute; `add`/`add` (and `remove`/`remove`) of one value commute only when it
//! is already there (absent); `add`/`remove` of one value never do; `add`/`size` commute when
//! the value is there, `remove`/`size` when it is not; `add`/`contains` of one value when it is
//! there, `remove`/`contains` when it is not.
//!
//! The size is the initial set's size plus what the calls did. The initial size is a free
//! integer, bounded below by the number of distinct values the path finds in the initial set
//! (the `kv` model's ledger, for a set).

use std::cell::RefCell;

use commuter_engine::z3::ast::Dynamic;
use commuter_engine::{
    Bool, Call, Int, Key as _, Model, Set, StableHashSet, SymEq, Symbolic, exploring, invariant,
    symbolic,
};

commuter_engine::uninterpreted!(
    /// A value of the set: only equality matters.
    pub Elem
);

#[derive(Clone, Debug, Symbolic)]
pub struct SetState {
    pub elems: Set<Elem>,
    pub size: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct ElemArgs {
    pub v: Elem,
}

pub struct SetModel;

impl Model for SetModel {
    type State = SetState;
    fn name(&self) -> &'static str {
        "set"
    }
    fn description(&self) -> &'static str {
        "a set: add(v), remove(v) (whether they changed it), contains(v), size()"
    }
    fn calls(&self) -> Vec<Call<SetState>> {
        vec![
            Call::new("add", add),
            Call::new("remove", remove),
            Call::new("contains", contains),
            Call::new("size", size),
        ]
    }
    fn initial_state(&self) -> SetState {
        let s = SetState::fresh("s");
        invariant(&s.size.ge(0));
        Ledger::reset(&s);
        s
    }
}

/// The values of the initial set a run has touched, and that set.
struct Ledger {
    initial: Set<Elem>,
    initial_size: Int,
    touched: Vec<Elem>,
    seen: StableHashSet<Dynamic>,
}

thread_local! {
    // One run of the analyzer's walk at a time per thread; `initial_state` starts a run.
    static LEDGER: RefCell<Option<Ledger>> = const { RefCell::new(None) };
}

impl Ledger {
    fn reset(s: &SetState) {
        LEDGER.with(|l| {
            *l.borrow_mut() = Some(Ledger {
                initial: s.elems.clone(),
                initial_size: s.size.clone(),
                touched: Vec::new(),
                seen: StableHashSet::default(),
            })
        });
    }

    /// A value a call looks up: the initial size is at least the number of distinct touched
    /// values in the initial set (exact: untouched values are free, only the size counts them).
    fn touch(v: &Elem) {
        if !exploring() {
            return;
        }
        let bound = LEDGER.with(|l| {
            let mut l = l.borrow_mut();
            let l = l.as_mut()?;
            if !l.seen.insert(v.key_ast()) {
                return None;
            }
            l.touched.push(v.clone());
            // Value i counts when it is in the initial set and differs from every value before.
            let present = Int::count(l.touched.iter().enumerate().map(|(i, vi)| {
                let distinct = l.touched[..i].iter().map(|vj| !vj.sym_eq(vi));
                l.initial.contains(vi) & Bool::all(distinct)
            }));
            Some(l.initial_size.ge(&present))
        });
        if let Some(b) = bound {
            invariant(&b);
        }
    }
}

#[symbolic]
fn add(s: &mut SetState, a: &ElemArgs) -> Bool {
    Ledger::touch(&a.v);
    if s.elems.contains(&a.v) {
        return Bool::lit(false);
    }
    s.elems.insert(&a.v);
    s.size = &s.size + 1;
    Bool::lit(true)
}

#[symbolic]
fn remove(s: &mut SetState, a: &ElemArgs) -> Bool {
    Ledger::touch(&a.v);
    if !s.elems.contains(&a.v) {
        return Bool::lit(false);
    }
    s.elems.remove(&a.v);
    s.size = &s.size - 1;
    Bool::lit(true)
}

fn contains(s: &mut SetState, a: &ElemArgs) -> Bool {
    Ledger::touch(&a.v);
    s.elems.contains(&a.v)
}

fn size(s: &mut SetState, _: &()) -> Int {
    s.size.clone()
}
