//! One integer register: `set(v)`, `get()`.
//!
//! Known answers: `get`/`get` always commute; `set`/`set` only with equal values; `get`/`set`
//! only when the value set is the one already there.

use commuter_engine::{Call, Int, Model, Symbolic};

#[derive(Clone, Debug, Symbolic)]
pub struct Register {
    pub val: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct SetArgs {
    pub val: Int,
}

pub struct GetSetModel;

impl Model for GetSetModel {
    type State = Register;
    fn name(&self) -> &'static str {
        "getset"
    }
    fn description(&self) -> &'static str {
        "one integer register: set(v), get()"
    }
    fn calls(&self) -> Vec<Call<Register>> {
        vec![Call::new("set", set), Call::new("get", get)]
    }
}

fn set(s: &mut Register, a: &SetArgs) {
    s.val = a.val.clone();
}

fn get(s: &mut Register, _: &()) -> Int {
    s.val.clone()
}
