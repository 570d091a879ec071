//! A non-negative counter: `inc`, `dec` (only when positive), `iszero`.
//!
//! Known answers: two `inc` always commute; `inc`/`iszero` commute only when the counter is
//! non-zero before; `dec`/`iszero` only when it is at least 2.

use commuter_engine::{Bool, Call, Int, Model, Symbolic, assume, invariant, symbolic};

#[derive(Clone, Debug, Symbolic)]
pub struct Counter {
    pub counter: Int,
}

pub struct CounterModel;

impl Model for CounterModel {
    type State = Counter;
    fn name(&self) -> &'static str {
        "counter"
    }
    fn description(&self) -> &'static str {
        "a non-negative counter: inc, dec (when positive), iszero"
    }
    fn calls(&self) -> Vec<Call<Counter>> {
        vec![
            Call::new("inc", inc),
            Call::new("dec", dec),
            Call::new("iszero", iszero),
        ]
    }
    fn initial_state(&self) -> Counter {
        let s = Counter::fresh("s");
        invariant(&s.counter.ge(0));
        s
    }
}

fn inc(s: &mut Counter, _: &()) {
    s.counter = &s.counter + 1;
}

/// `dec` is only defined on a positive counter: other states are not paths at all.
#[symbolic]
fn dec(s: &mut Counter, _: &()) {
    assume(&s.counter.gt(0));
    s.counter = &s.counter - 1;
}

fn iszero(s: &mut Counter, _: &()) -> Bool {
    s.counter.eq(0)
}
