//! An unordered pipe over a bag of values: `write(v)` adds, `read()` takes any element (the
//! implementation's choice) or returns nothing when empty.
//!
//! Known answers: `write`/`write` always commute; `read`/`write` only on a non-empty pipe;
//! `read`/`read` only with at least two elements.

use commuter_engine::{Bag, Call, Model, Symbolic, symbolic};

commuter_engine::uninterpreted!(
    /// A value in the pipe: only equality matters.
    pub Elem
);

#[derive(Clone, Debug, Symbolic)]
pub struct Upipe {
    pub elems: Bag<Elem>,
}

#[derive(Clone, Debug, Symbolic)]
pub struct WriteArgs {
    pub val: Elem,
}

pub struct UpipeModel;

impl Model for UpipeModel {
    type State = Upipe;
    fn name(&self) -> &'static str {
        "upipe"
    }
    fn description(&self) -> &'static str {
        "an unordered pipe: write(v), read() takes any element"
    }
    fn calls(&self) -> Vec<Call<Upipe>> {
        vec![Call::new("write", write), Call::new("read", read)]
    }
}

fn write(s: &mut Upipe, a: &WriteArgs) {
    s.elems.add(&a.val);
}

#[symbolic]
fn read(s: &mut Upipe, _: &()) -> Option<Elem> {
    if s.elems.is_empty() {
        return None;
    }
    Some(s.elems.take_any("elem"))
}
