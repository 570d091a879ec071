//! Known answers of the idempotence check (which calls of a commutative path can run twice
//! with the effect of once) and of the mover conditions (when a;b can be swapped to b;a).

use commuter_analyzer::{
    AnalyzeOptions, CallSetReport, Commutes, MoverReport, analyze_movers, select_model_call_sets,
};
use commuter_models::find_model;

mod common;
use common::{idempotence, run, set};

fn slots(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The same idempotent slots on every commutative path (and at least one such path).
fn assert_all(cs: &CallSetReport, expected: &[&str]) {
    let found = idempotence(cs);
    assert!(!found.is_empty(), "{}: no commutative path", cs.name());
    for (cond, idem) in &found {
        assert_eq!(idem, &slots(expected), "{} when {cond}", cs.name());
    }
    for p in cs.path_list.iter().filter(|p| !p.commutes) {
        assert!(p.idempotent.is_empty(), "diverging paths are not decided");
    }
}

#[test]
fn toy_idempotence_known_answers() {
    let getset = run("getset", None);
    // set(v) twice is set(v) once; get reads.
    assert_all(set(&getset, "set/set"), &["a", "b"]);
    assert_all(set(&getset, "set/get"), &["a", "b"]);
    assert_all(set(&getset, "get/get"), &["a", "b"]);

    let counter = run("counter", None);
    // Read-only calls are trivially idempotent; inc and dec change the count every time.
    assert_all(set(&counter, "iszero/iszero"), &["a", "b"]);
    assert_all(set(&counter, "inc/inc"), &[]);
    assert_all(set(&counter, "dec/dec"), &[]);
    assert_all(set(&counter, "inc/iszero"), &["b"]);

    let upipe = run("upipe", None);
    // A pipe write adds an element each time; a read takes one each time (its choice of
    // element is internal: still no choice repeats the state), except from an empty pipe.
    assert_all(set(&upipe, "write/write"), &[]);
    let reads = idempotence(set(&upipe, "read/read"));
    assert!(reads.len() >= 2, "{reads:?}");
    for (cond, idem) in &reads {
        let expected: &[&str] = if cond.starts_with("s.elems.len == 0") {
            &["a", "b"]
        } else {
            &[]
        };
        assert_eq!(idem, &slots(expected), "read/read when {cond}");
    }
    for a in [&getset, &counter, &upipe] {
        assert_eq!(a.total_unknowns(), 0);
    }
}

fn movers(model: &str, functions: &str) -> Vec<MoverReport> {
    let m = find_model(model).expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), Some(functions), 2).expect("valid selection");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    analyze_movers(m.as_ref(), &sets, &opts, &|_| {}).expect("movers run")
}

fn mover<'a>(all: &'a [MoverReport], name: &str) -> &'a MoverReport {
    all.iter().find(|m| m.name() == name).unwrap_or_else(|| {
        panic!(
            "{name} in {:?}",
            all.iter().map(|m| m.name()).collect::<Vec<_>>()
        )
    })
}

/// (movable, condition) of every path.
fn mover_paths(m: &MoverReport) -> Vec<(bool, String)> {
    m.path_list
        .iter()
        .map(|p| (p.commutes, p.condition.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn counter_movers_are_one_directional() {
    let all = movers("counter", "inc/dec");
    // dec needs a positive counter. inc;dec runs from 0 too, where dec;inc cannot: inc is a
    // right mover with respect to dec only when the counter is positive.
    let inc_dec = mover(&all, "inc;dec");
    assert_eq!(inc_dec.moves, Commutes::Sometimes);
    assert_eq!(
        mover_paths(inc_dec),
        [
            (false, "s.counter <= 0".to_string()),
            (true, "s.counter >= 1".to_string())
        ]
    );
    assert_eq!(inc_dec.path_list[0].divergence, ["ba precondition"]);
    // dec;inc runs only on a positive counter, and there inc;dec does the same.
    let dec_inc = mover(&all, "dec;inc");
    assert_eq!(dec_inc.moves, Commutes::Always);
    assert_eq!(mover_paths(dec_inc), [(true, "s.counter >= 1".to_string())]);

    // Without preconditions or internal choices, the two directions are the commutativity
    // condition: inc;iszero swaps with iszero;inc where the counter is not 0.
    let all = movers("counter", "inc/iszero");
    for name in ["inc;iszero", "iszero;inc"] {
        let m = mover(&all, name);
        assert_eq!(m.moves, Commutes::Sometimes, "{name}");
        let can: Vec<String> = mover_paths(m)
            .into_iter()
            .filter(|(ok, _)| *ok)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(can, ["s.counter != 0"], "{name}");
    }
}

#[test]
fn movers_refuse_call_sets_that_are_not_pairs() {
    let m = find_model("counter").expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), Some("inc/dec/iszero"), 3).expect("selection");
    let err = analyze_movers(m.as_ref(), &sets, &AnalyzeOptions::default(), &|_| {})
        .expect_err("triples have no mover condition");
    assert!(err.to_string().contains("-n 2"), "{err}");
}
