//! Known answers of the toy models (after the original Commuter's models and the paper).

use commuter_analyzer::{AnalyzeOptions, CallSetReport, Commutes, analyze, select_model_call_sets};
use commuter_models::find_model;

mod common;
use common::{render, run, set};

fn commute_conditions(cs: &CallSetReport) -> Vec<String> {
    cs.path_list
        .iter()
        .filter(|p| p.commutes)
        .filter_map(|p| p.condition.clone())
        .collect()
}

#[test]
fn counter_known_answers() {
    let a = run("counter", None);
    assert_eq!(set(&a, "inc/inc").commutes, Commutes::Always);
    assert_eq!(set(&a, "iszero/iszero").commutes, Commutes::Always);
    assert_eq!(set(&a, "inc/dec").commutes, Commutes::Always);
    let inc_iszero = set(&a, "inc/iszero");
    assert_eq!(inc_iszero.commutes, Commutes::Sometimes);
    assert_eq!(commute_conditions(inc_iszero), ["s.counter != 0"]);
    // dec's precondition (a positive counter) is part of the condition; the invariant
    // (counter >= 0) is not.
    assert_eq!(
        commute_conditions(set(&a, "dec/iszero")),
        ["s.counter >= 2"]
    );
    assert_eq!(commute_conditions(set(&a, "dec/dec")), ["s.counter >= 2"]);
    let diverging = inc_iszero
        .path_list
        .iter()
        .find(|p| !p.commutes)
        .expect("a diverging path");
    assert_eq!(diverging.divergence, ["ab/b result"]);
    assert_eq!(a.total_unknowns(), 0);
    insta::assert_snapshot!(render(&a));
}

#[test]
fn getset_known_answers() {
    let a = run("getset", None);
    assert_eq!(set(&a, "get/get").commutes, Commutes::Always);
    assert_eq!(commute_conditions(set(&a, "set/set")), ["a.val == b.val"]);
    let set_get = set(&a, "set/get");
    assert_eq!(set_get.commutes, Commutes::Sometimes);
    assert_eq!(commute_conditions(set_get), ["a.val == s.val"]);
    insta::assert_snapshot!(render(&a));
}

#[test]
fn watermark_known_answers() {
    let a = run("watermark", None);
    assert_eq!(set(&a, "put/put").commutes, Commutes::Always);
    assert_eq!(set(&a, "max/max").commutes, Commutes::Always);
    let put_max = set(&a, "put/max");
    assert_eq!(put_max.commutes, Commutes::Sometimes);
    assert_eq!(commute_conditions(put_max), ["a.val <= s.val"]);
    insta::assert_snapshot!(render(&a));
}

#[test]
fn rename_known_answers() {
    let a = run("rename", None);
    let rr = set(&a, "rename/rename");
    assert_eq!(rr.commutes, Commutes::Sometimes);
    let conds = commute_conditions(rr);
    // Both sources absent.
    assert!(
        conds.contains(&"!s.dir.contains(a.src) && !s.dir.contains(b.src)".to_string()),
        "{conds:#?}"
    );
    // All four names distinct, both sources present, no destination present.
    assert!(
        conds.iter().any(|c| c.contains("a.src != b.src")
            && c.contains("a.dst != b.dst")
            && c.contains("!s.dir.contains(a.dst)")
            && c.contains("!s.dir.contains(b.dst)")),
        "{conds:#?}"
    );
    // Equal sources never commute (both present): a diverging path has `b.src == a.src`.
    for p in rr.path_list.iter().filter(|p| p.commutes) {
        let c = p.condition.as_deref().unwrap_or_default();
        assert!(
            !c.contains("a.src == b.src") || c.contains("b.dst == b.src"),
            "{c}"
        );
    }
    // Same destination: only when the two sources are links to the same inode.
    assert!(
        conds
            .iter()
            .any(|c| c.contains("s.dir[a.src] == s.dir[b.src]") && c.contains("a.dst == b.dst")),
        "{conds:#?}"
    );
    // One's destination is the other's source: a swap diverges on the final state.
    assert!(
        rr.path_list
            .iter()
            .any(|p| !p.commutes && p.divergence == ["ab/ba state"])
    );
    insta::assert_snapshot!(render(&a));
}

#[test]
fn trackforget_known_answers() {
    let a = run("trackforget", None);
    assert_eq!(commute_conditions(set(&a, "track/track")), ["s.forgot"]);
    assert_eq!(commute_conditions(set(&a, "track/report")), ["s.forgot"]);
    assert_eq!(set(&a, "track/forget").commutes, Commutes::Always);
    assert_eq!(set(&a, "forget/forget").commutes, Commutes::Always);
    assert_eq!(set(&a, "report/report").commutes, Commutes::Always);
    let rf = commute_conditions(set(&a, "report/forget"));
    assert_eq!(rf, ["!s.forgot && s.events.len == 0", "s.forgot"]);
    insta::assert_snapshot!(render(&a));
}

#[test]
fn upipe_known_answers() {
    let a = run("upipe", None);
    assert_eq!(set(&a, "write/write").commutes, Commutes::Always);
    let wr = set(&a, "write/read");
    assert_eq!(wr.commutes, Commutes::Sometimes);
    let empty = wr
        .path_list
        .iter()
        .find(|p| !p.commutes)
        .expect("empty pipe diverges");
    assert!(
        empty
            .condition
            .as_deref()
            .is_some_and(|c| c.starts_with("s.elems.len == 0")),
        "{empty:?}"
    );
    let rr = set(&a, "read/read");
    let single = rr
        .path_list
        .iter()
        .find(|p| !p.commutes)
        .expect("one element diverges");
    assert!(
        single
            .condition
            .as_deref()
            .is_some_and(|c| c.starts_with("s.elems.len == 1")),
        "{single:?}"
    );
    assert_eq!(rr.commutative_paths, 2);
    assert_eq!(a.total_unknowns(), 0);
    // The element a read takes is the implementation's choice: "some element is there", not
    // an equation between two internal values.
    for cs in &a.call_sets {
        for p in &cs.path_list {
            let c = p.condition.as_deref().unwrap_or_default();
            assert!(!c.contains("internal_elem#2 == internal_elem#1"), "{c}");
        }
    }
    insta::assert_snapshot!(render(&a));
}

/// The Set benchmark of commutativity-condition tools: one merged condition per call set.
#[test]
fn set_known_answers() {
    let a = run("set", None);
    for reads in ["contains/contains", "contains/size", "size/size"] {
        assert_eq!(set(&a, reads).commutes, Commutes::Always, "{reads}");
        assert_eq!(set(&a, reads).commutes_iff.as_deref(), Some("true"));
    }
    let iff = |name: &str| set(&a, name).commutes_iff.clone().unwrap_or_default();
    assert_eq!(iff("add/size"), "s.elems.contains(a.v)");
    assert_eq!(iff("remove/size"), "!s.elems.contains(a.v)");
    assert_eq!(iff("add/remove"), "a.v != b.v");
    assert_eq!(a.total_unknowns(), 0);
    insta::assert_snapshot!(render(&a));
}

/// Tuples are call arguments like structs: element `i` of slot `a` reads `a.i`.
mod pairs {
    use commuter_engine::{Call, Model, PartialMap, Symbolic, symbolic};

    commuter_engine::uninterpreted!(pub Key);
    commuter_engine::uninterpreted!(pub Val);

    #[derive(Clone, Debug, Symbolic)]
    pub struct Table {
        pub map: PartialMap<Key, Val>,
    }

    pub struct PairsModel;

    impl Model for PairsModel {
        type State = Table;
        fn name(&self) -> &'static str {
            "pairs"
        }
        fn description(&self) -> &'static str {
            "a map whose put takes a (key, value) tuple"
        }
        fn calls(&self) -> Vec<Call<Table>> {
            vec![Call::new("put", put), Call::new("get", get)]
        }
    }

    #[symbolic]
    fn put(s: &mut Table, a: &(Key, Val)) {
        s.map.insert(&a.0, &a.1);
    }

    #[symbolic]
    fn get(s: &mut Table, a: &(Key,)) -> Option<Val> {
        if s.map.contains(&a.0) {
            return Some(s.map.get(&a.0));
        }
        None
    }
}

#[test]
fn tuples_are_call_arguments() {
    let m: Box<dyn commuter_engine::DynModel> = Box::new(pairs::PairsModel);
    let sets = select_model_call_sets(m.as_ref(), Some("put/put,put/get"), 2).expect("sets");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    let a = analyze(m.as_ref(), &sets, &opts, None, &|_| {}).expect("runs");
    assert_eq!(
        set(&a, "put/put").commutes_iff.as_deref(),
        Some("a.0 != b.0 || a.1 == b.1")
    );
    insta::assert_snapshot!(render(&a));
}

#[test]
fn kv_known_answers() {
    let a = run("kv", None);
    // Readers commute with each other in every state.
    for reads in [
        "get/get",
        "get/contains",
        "get/len",
        "contains/contains",
        "contains/len",
        "len/len",
    ] {
        assert_eq!(set(&a, reads).commutes, Commutes::Always, "{reads}");
    }
    // Inserts of different new keys commute (and no path of the pair needs equal keys to).
    let ii = commute_conditions(set(&a, "insert/insert"));
    assert!(
        ii.contains(
            &"!s.map.contains(a.key) && !s.map.contains(b.key) && a.key != b.key".to_string()
        ),
        "{ii:#?}"
    );
    // An insert commutes with len exactly when it replaces a key that is there.
    assert_eq!(
        commute_conditions(set(&a, "insert/len")),
        ["s.map.contains(a.key)"]
    );
    // A remove commutes with len exactly when the key is absent.
    assert_eq!(
        commute_conditions(set(&a, "remove/len")),
        ["!s.map.contains(a.key)"]
    );
    // Replacing a present key's value commutes with contains of any key.
    let ic = commute_conditions(set(&a, "insert/contains"));
    assert!(ic.contains(&"s.map.contains(a.key)".to_string()), "{ic:#?}");
    // get of the key an insert writes commutes only when the value stays what it was.
    let ig = set(&a, "insert/get");
    assert_eq!(ig.commutes, Commutes::Sometimes);
    assert!(
        ig.path_list
            .iter()
            .any(|p| !p.commutes && p.divergence == ["ab/b result"]),
        "{ig:?}"
    );
    // Removing the same present key twice never commutes; different keys do.
    let rr = set(&a, "remove/remove");
    assert_eq!(rr.commutes, Commutes::Sometimes);
    assert_eq!(a.total_unknowns(), 0);
    insta::assert_snapshot!(render(&a));
}

#[test]
fn three_call_sets_walk_the_subset_lattice() {
    let m = find_model("counter").expect("counter");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    let sets = select_model_call_sets(m.as_ref(), Some("inc/inc/iszero"), 3).expect("set");
    let a = analyze(m.as_ref(), &sets, &opts, None, &|_| {}).expect("runs");
    let cs = &a.call_sets[0];
    assert_eq!(cs.calls, ["inc", "inc", "iszero"]);
    assert_eq!(commute_conditions(cs), ["s.counter != 0"]);
}

#[test]
fn output_is_deterministic() {
    let first = serde_json::to_string(&run("rename", None)).expect("json");
    let second = serde_json::to_string(&run("rename", None)).expect("json");
    assert_eq!(first, second);
}

/// A call set whose orders never all run: no path, and a merged condition that says so.
mod exclusive {
    use commuter_engine::{Call, Int, Model, Symbolic, assume, invariant};

    #[derive(Clone, Debug, Symbolic)]
    pub struct Count {
        pub n: Int,
    }

    pub struct ExclusiveModel;

    impl Model for ExclusiveModel {
        type State = Count;
        fn name(&self) -> &'static str {
            "exclusive"
        }
        fn description(&self) -> &'static str {
            "inc, and first, defined only on zero"
        }
        fn calls(&self) -> Vec<Call<Count>> {
            vec![Call::new("inc", inc), Call::new("first", first)]
        }
        fn initial_state(&self) -> Count {
            let s = Count::fresh("s");
            invariant(&s.n.ge(0));
            s
        }
    }

    fn inc(s: &mut Count, _: &()) {
        s.n = &s.n + 1;
    }

    /// Defined only on zero: after an `inc` it cannot run.
    fn first(s: &mut Count, _: &()) {
        assume(&s.n.eq(0));
    }
}

#[test]
fn orders_that_never_both_run_have_no_path() {
    let m: Box<dyn commuter_engine::DynModel> = Box::new(exclusive::ExclusiveModel);
    let sets = select_model_call_sets(m.as_ref(), Some("inc/first"), 2).expect("sets");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    let a = analyze(m.as_ref(), &sets, &opts, None, &|_| {}).expect("runs");
    let cs = set(&a, "inc/first");
    assert_eq!(cs.paths, 0);
    assert_eq!(cs.runs_iff.as_deref(), Some("false"));
    assert_eq!(cs.commutes_iff.as_deref(), Some("false"));
}
