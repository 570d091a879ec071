//! A per-thread event log that can be forgotten: `track` appends the calling thread, `report`
//! returns the log (empty once forgotten), `forget` stops tracking. The state's equality
//! ignores the log once forgotten: no later call can observe it.
//!
//! Known answers: `track`/`track` commute only once forgotten; `report`/`track` likewise;
//! `forget`/`report` when already forgotten or the log is empty; `forget`/`track`,
//! `forget`/`forget` and `report`/`report` always.

use commuter_engine::{
    Bool, Call, Int, Model, SmallList, SymEq, Symbolic, current_thread, symbolic,
};

/// Longest log the model considers.
pub const MAX_EVENTS: usize = 4;

pub type Events = SmallList<Int, MAX_EVENTS>;

#[derive(Clone, Debug, Symbolic)]
#[symbolic(eq = tracker_eq)]
pub struct Tracker {
    pub events: Events,
    pub forgot: Bool,
}

fn tracker_eq(a: &Tracker, b: &Tracker) -> Bool {
    a.forgot.iff(&b.forgot) & (a.forgot.clone() | a.events.sym_eq(&b.events))
}

pub struct TrackForgetModel;

impl Model for TrackForgetModel {
    type State = Tracker;
    fn name(&self) -> &'static str {
        "trackforget"
    }
    fn description(&self) -> &'static str {
        "a per-thread event log: track, report, forget (custom state equality)"
    }
    fn calls(&self) -> Vec<Call<Tracker>> {
        vec![
            Call::new("track", track),
            Call::new("report", report),
            Call::new("forget", forget),
        ]
    }
}

fn track(s: &mut Tracker, _: &()) {
    s.events.push(&Int::from(current_thread() as i64));
}

#[symbolic]
fn report(s: &mut Tracker, _: &()) -> Events {
    if s.forgot.clone() {
        return Events::empty();
    }
    s.events.clone()
}

fn forget(s: &mut Tracker, _: &()) {
    s.forgot = Bool::lit(true);
}
