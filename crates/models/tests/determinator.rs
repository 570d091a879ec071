//! Known answers of the `determinator` model (Determinator's Put/Get/Ret), from the whole
//! model's analysis (every pair of its ten calls: about ten seconds in a debug build).

use commuter_analyzer::select_model_call_sets;
use commuter_analyzer::{Analysis, AnalyzeOptions, CallSetReport, Commutes, analyze};
use commuter_models::find_model;

fn analysis() -> Analysis {
    let m = find_model("determinator").expect("a built-in model");
    let sets = select_model_call_sets(m.as_ref(), None, 2).expect("every pair");
    let opts = AnalyzeOptions {
        print_conds: true,
        ..Default::default()
    };
    analyze(m.as_ref(), &sets, &opts, None, &|_| {}).expect("the analysis runs")
}

fn set<'a>(a: &'a Analysis, name: &str) -> &'a CallSetReport {
    a.call_sets
        .iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no call set {name}"))
}

fn iff<'a>(a: &'a Analysis, name: &str) -> &'a str {
    set(a, name).commutes_iff.as_deref().unwrap_or("?")
}

/// Calls that write the parent's memory, and the calls that read it.
const PARENT_WRITERS: [&str; 2] = ["get_copy", "get_merge"];
const PARENT_READERS: [&str; 3] = ["put_copy", "get_copy", "get_merge"];

#[test]
fn determinator_known_answers() {
    let a = analysis();
    assert_eq!(a.call_sets.len(), 55, "ten calls, every pair once");
    assert_eq!(a.total_unknowns(), 0);

    // Calls on different children commute, except where both reach the parent's memory and
    // one of them writes it: every diverging path of every other pair names one child.
    for cs in &a.call_sets {
        let (x, y) = (cs.calls[0].as_str(), cs.calls[1].as_str());
        let parent_race = (PARENT_WRITERS.contains(&x) && PARENT_READERS.contains(&y))
            || (PARENT_WRITERS.contains(&y) && PARENT_READERS.contains(&x));
        if parent_race {
            continue;
        }
        for p in cs.path_list.iter().filter(|p| !p.commutes) {
            let cond = p.condition.as_deref().unwrap_or("?");
            assert!(
                cond.contains("a.child == b.child"),
                "{}: diverges on different children: {cond}",
                cs.name()
            );
        }
    }

    // Registers: two puts commute unless they give one stopped child different registers.
    assert_eq!(
        iff(&a, "put_regs/put_regs"),
        "a.child != b.child || a.regs == b.regs || s.children[b.child].started"
    );
    // Starting a child commutes with nothing else done to it while it is stopped.
    for other in ["put_regs", "put_snap", "get_regs", "get_copy", "get_merge"] {
        let name = format!("{}/{}", other.min("put_start"), other.max("put_start"));
        let name = if other.starts_with("put_") && other < "put_start" {
            format!("{other}/put_start")
        } else if other.starts_with("put_") {
            name
        } else {
            format!("put_start/{other}")
        };
        assert_eq!(
            iff(&a, &name),
            "a.child != b.child || s.children[b.child].started",
            "{name}"
        );
    }
    // Copies into children only read the parent: always commute; so do register reads.
    for name in [
        "put_copy/put_copy",
        "put_copy/get_regs",
        "get_regs/get_regs",
    ] {
        assert_eq!(set(&a, name).commutes, Commutes::Always, "{name}");
    }
    // Put/Copy into one child and Get/Copy out of another commute unless they name one page
    // whose bytes differ (the parent's page is read by one and written by the other).
    assert_eq!(
        iff(&a, "put_copy/get_copy"),
        "(a.page != 0 && b.page == 0) || (a.page == 0 && b.page != 0) || \
         (b.page != 0 && s.children[b.child].mem.p1.b0 == s.mem.p1.b0) || \
         (b.page == 0 && s.children[b.child].mem.p0.b0 == s.mem.p0.b0) || \
         s.children[a.child].started || s.children[b.child].started"
    );
    // Two merges diverge only when both children changed something since their snapshots.
    let mm = set(&a, "get_merge/get_merge");
    assert_eq!(mm.commutes, Commutes::Sometimes);
    for p in mm.path_list.iter().filter(|p| !p.commutes) {
        let cond = p.condition.as_deref().unwrap_or("?");
        for c in ["a", "b"] {
            let changed = [0, 1].map(|p| {
                format!("s.children[{c}.child].mem.p{p}.b0 != s.children[{c}.child].snap.p{p}.b0")
            });
            assert!(
                changed.iter().any(|ch| cond.contains(ch.as_str())),
                "a merge/merge divergence without a change by {c}: {cond}"
            );
        }
    }
    // A child's own Ret commutes with every call on other children, and with no call on it.
    for cs in a
        .call_sets
        .iter()
        .filter(|c| c.calls[1] == "ret" && c.calls[0] != "ret")
    {
        assert_eq!(
            cs.commutes_iff.as_deref(),
            Some("a.child != b.child"),
            "{}",
            cs.name()
        );
    }

    let merged: String = a
        .call_sets
        .iter()
        .map(|cs| {
            format!(
                "{} ({:?}, {} paths): {}\n",
                cs.name(),
                cs.commutes,
                cs.paths,
                cs.commutes_iff.as_deref().unwrap_or("?")
            )
        })
        .collect();
    insta::assert_snapshot!(merged);
}
