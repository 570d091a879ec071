//! A model written outside the built-in registry, as a user would: pools bound namespaces and
//! can leave a namespace out of the isomorphism classes.

use commuter_analyzer::select_call_sets;
use commuter_engine::{Call, Model, PartialMap, Pool, Symbolic, symbolic};
use commuter_testgen::{TestgenOptions, testgen};

commuter_engine::uninterpreted!(Key);
commuter_engine::uninterpreted!(Data);

#[derive(Clone, Debug, Symbolic)]
struct Store {
    map: PartialMap<Key, Data>,
}

#[derive(Clone, Debug, Symbolic)]
struct PutArgs {
    key: Key,
    data: Data,
}

#[symbolic]
fn put(s: &mut Store, a: &PutArgs) -> i64 {
    if s.map.contains(&a.key) {
        return -1;
    }
    s.map.insert(&a.key, &a.data);
    0
}

struct KeyValue {
    keys: Option<usize>,
    data_enumerated: bool,
}

impl Model for KeyValue {
    type State = Store;
    fn name(&self) -> &'static str {
        "kv"
    }
    fn description(&self) -> &'static str {
        "insert-if-absent"
    }
    fn calls(&self) -> Vec<Call<Store>> {
        vec![Call::new("put", put)]
    }
    fn pool(&self, namespace: &str) -> Pool {
        match namespace {
            "Key" => Pool {
                capacity: self.keys,
                enumerated: true,
            },
            "Data" => Pool {
                capacity: None,
                enumerated: self.data_enumerated,
            },
            _ => Pool::default(),
        }
    }
}

fn run(model: &KeyValue) -> commuter_testgen::TestSuite {
    let sets = select_call_sets(&["put"], &[true], None, 2).expect("sets");
    testgen(model, &sets, &TestgenOptions::default(), None, &|_| {})
        .expect("testgen")
        .0
}

#[test]
fn a_namespace_left_out_of_classes_does_not_multiply_tests() {
    let with_data = run(&KeyValue {
        keys: None,
        data_enumerated: true,
    });
    let without = run(&KeyValue {
        keys: None,
        data_enumerated: false,
    });
    let (a, b) = (with_data.total_tests(), without.total_tests());
    assert!(b < a, "{b} tests without data patterns, {a} with");
    assert!(b > 0);
}

#[test]
fn running_out_of_a_pool_is_a_per_test_error() {
    let s = run(&KeyValue {
        keys: Some(1),
        data_enumerated: false,
    });
    let cs = &s.call_sets[0];
    assert!(
        !cs.errors.is_empty(),
        "two distinct keys need two pool values"
    );
    assert!(
        cs.errors
            .iter()
            .all(|e| e.error.contains("pool of Key values has only 1")),
        "{:?}",
        cs.errors
    );
    assert!(!cs.tests.is_empty(), "tests with one key are still built");
}
