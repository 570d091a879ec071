//! A model in its own crate, run with commuter's command line:
//!
//! ```sh
//! cargo run --example custom_model -- analyze -m semaphore --check-conds --print-conds
//! ```

use std::process::ExitCode;

use commuter_engine::{Bool, Call, Int, Model, Symbolic, invariant, symbolic};

/// A counting semaphore: `up`, `down` (fails when zero), `value`.
#[derive(Clone, Debug, Symbolic)]
struct Semaphore {
    count: Int,
}

struct SemaphoreModel;

impl Model for SemaphoreModel {
    type State = Semaphore;
    fn name(&self) -> &'static str {
        "semaphore"
    }
    fn description(&self) -> &'static str {
        "a counting semaphore: up, down (fails when zero), value"
    }
    fn calls(&self) -> Vec<Call<Semaphore>> {
        vec![
            Call::new("up", up),
            Call::new("down", down),
            Call::new("value", value),
        ]
    }
    fn initial_state(&self) -> Semaphore {
        let s = Semaphore::fresh("s");
        invariant(&s.count.ge(0));
        s
    }
}

fn up(s: &mut Semaphore, _: &()) {
    s.count = &s.count + 1;
}

#[symbolic]
fn down(s: &mut Semaphore, _: &()) -> Bool {
    if s.count.eq(0) {
        return Bool::lit(false);
    }
    s.count = &s.count - 1;
    Bool::lit(true)
}

fn value(s: &mut Semaphore, _: &()) -> Int {
    s.count.clone()
}

fn main() -> ExitCode {
    commuter::run(vec![Box::new(SemaphoreModel)], std::env::args_os())
}
