//! A high-water mark: `put(v)` keeps the maximum, `max()` reads it.
//!
//! Known answers: `put`/`put` always commute (max is commutative); `max`/`max` always;
//! `max`/`put` only when the value put does not raise the mark.

use commuter_engine::{Call, Int, Model, Symbolic, symbolic};

#[derive(Clone, Debug, Symbolic)]
pub struct Watermark {
    pub val: Int,
}

#[derive(Clone, Debug, Symbolic)]
pub struct PutArgs {
    pub val: Int,
}

pub struct WatermarkModel;

impl Model for WatermarkModel {
    type State = Watermark;
    fn name(&self) -> &'static str {
        "watermark"
    }
    fn description(&self) -> &'static str {
        "a high-water mark: put(v) keeps the maximum, max() reads it"
    }
    fn calls(&self) -> Vec<Call<Watermark>> {
        vec![Call::new("put", put), Call::new("max", max)]
    }
}

#[symbolic]
fn put(s: &mut Watermark, a: &PutArgs) {
    if a.val.gt(&s.val) {
        s.val = a.val.clone();
    }
}

fn max(s: &mut Watermark, _: &()) -> Int {
    s.val.clone()
}
