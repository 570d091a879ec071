//! Printed conditions of POSIX call sets: pinned by snapshot, and the same text run after run
//! (Z3 numbers its terms differently in every context, and the text must not follow).

use commuter_analyzer::{Analysis, select_model_call_sets};
use commuter_models::find_model;

mod common;

fn run(functions: Option<&str>) -> Analysis {
    common::run("posix", functions)
}

/// What `--print-conds` shows of each call set (the preconditions, long here, left out).
fn render(a: &Analysis) -> String {
    common::render_with(a, false)
}

/// A few cheap pairs, each analysed twice in fresh contexts: same text, and pinned.
#[test]
fn chosen_pairs_print_the_same_conditions_twice() {
    let functions = Some("stat/stat,stat/close,close/close,fstat/close");
    let first = render(&run(functions));
    let second = render(&run(functions));
    assert_eq!(first, second);
    assert!(!first.contains("if "), "no nested if: {first}");
    insta::assert_snapshot!(first);
}

#[test]
#[ignore = "slow: every POSIX pair with conditions, twice (12 minutes on 2 cores); run with --ignored"]
fn whole_model_prints_the_same_conditions_twice() {
    let first = render(&run(None));
    let second = render(&run(None));
    assert_eq!(first, second);
}

/// `open/*`: open paired with every call of the model, open/open included, open first.
#[test]
fn open_with_every_call() {
    let m = find_model("posix").expect("built-in model");
    let sets = select_model_call_sets(m.as_ref(), Some("open/*"), 2).expect("valid selection");
    let calls = m.call_info();
    assert_eq!(sets.len(), calls.len());
    let open = calls.iter().position(|c| c.name == "open").expect("open");
    assert!(sets.iter().all(|s| s.len() == 2 && s[0] == open));
    assert!(sets.contains(&vec![open, open]));
    let both = select_model_call_sets(m.as_ref(), Some("{open,stat}/*"), 2).expect("valid");
    assert_eq!(both.len(), 2 * calls.len() - 1);
}
