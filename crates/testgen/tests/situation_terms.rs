//! A model can declare a value part of a path's situation without branching on it
//! (`situation_term`): test generation then tells tests apart by its equalities with the
//! other terms of its kind, as if a branch had compared them.

use commuter_analyzer::select_call_sets;
use commuter_engine::{Call, Int, Model, Symbolic, TotalMap, situation_term};
use commuter_testgen::{TestgenOptions, testgen};

commuter_engine::uninterpreted!(Object);

#[derive(Clone, Debug, Symbolic)]
struct Counters {
    count: TotalMap<Object, Int>,
}

#[derive(Clone, Debug, Symbolic)]
struct ReadArgs {
    object: Object,
}

/// Reads an object's count: no branch ever looks at which object, and every pair commutes.
fn read(s: &mut Counters, a: &ReadArgs) -> Int {
    s.count.get(&a.object)
}

/// The same, declaring the object part of the situation (one object both calls read, where
/// an implementation might share a lock or a reference count, or two).
fn read_declared(s: &mut Counters, a: &ReadArgs) -> Int {
    situation_term(&a.object);
    read(s, a)
}

struct Reads {
    declared: bool,
}

impl Model for Reads {
    type State = Counters;
    fn name(&self) -> &'static str {
        "reads"
    }
    fn description(&self) -> &'static str {
        "reads counts of objects"
    }
    fn calls(&self) -> Vec<Call<Counters>> {
        if self.declared {
            vec![Call::new("read", read_declared)]
        } else {
            vec![Call::new("read", read)]
        }
    }
}

/// The objects each test's two calls read, as (a, b) labels.
fn objects(model: &Reads) -> Vec<(String, String)> {
    let sets = select_call_sets(&["read"], &[true], None, 2).expect("sets");
    let suite = testgen(model, &sets, &TestgenOptions::default(), None, &|_| {})
        .expect("testgen")
        .0;
    let cs = &suite.call_sets[0];
    assert!(cs.errors.is_empty(), "{:?}", cs.errors);
    cs.tests
        .iter()
        .map(|t| {
            let object = |slot: usize| t.calls[slot].args["object"].to_string();
            (object(0), object(1))
        })
        .collect()
}

#[test]
fn an_undeclared_value_takes_one_canonical_value() {
    let tests = objects(&Reads { declared: false });
    assert_eq!(tests.len(), 1, "{tests:?}");
}

#[test]
fn a_declared_value_makes_a_class_of_each_equality() {
    let tests = objects(&Reads { declared: true });
    assert_eq!(tests.len(), 2, "{tests:?}");
    assert!(tests.iter().any(|(a, b)| a == b), "one object: {tests:?}");
    assert!(tests.iter().any(|(a, b)| a != b), "two objects: {tests:?}");
}
