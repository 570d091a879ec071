use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const CALLS: &[&str] = &["open", "stat", "close", "sync"];
const DEFAULT: &[bool] = &[true, true, true, false];

fn names(sets: &[CallSet]) -> Vec<String> {
    sets.iter()
        .map(|s| s.iter().map(|&i| CALLS[i]).collect::<Vec<_>>().join("/"))
        .collect()
}

fn sel(spec: Option<&str>, n: usize) -> Vec<String> {
    names(&select_call_sets(CALLS, DEFAULT, spec, n).expect("valid spec"))
}

fn err(spec: &str) -> SelectError {
    select_call_sets(CALLS, DEFAULT, Some(spec), 2).expect_err("a malformed spec")
}

#[test]
fn default_is_all_default_pairs() {
    assert_eq!(
        sel(None, 2),
        [
            "open/open",
            "open/stat",
            "open/close",
            "stat/stat",
            "stat/close",
            "close/close"
        ]
    );
}

#[test]
fn names_star_and_exclusions() {
    assert_eq!(
        sel(Some("open,stat"), 2),
        ["open/open", "open/stat", "stat/stat"]
    );
    assert_eq!(sel(Some("*,!open,!stat,!close"), 1), ["sync"]);
    assert_eq!(
        sel(Some("!open"), 2),
        ["stat/stat", "stat/close", "close/close"]
    );
    assert_eq!(sel(Some("*,!open/stat"), 2).len(), 9);
    assert_eq!(sel(Some("*,!{open,stat,close}"), 2), ["sync/sync"]);
}

#[test]
fn explicit_sets_keep_the_order_written() {
    assert_eq!(sel(Some("stat/open"), 2), ["stat/open"]);
    assert_eq!(sel(Some("stat/open,open/stat"), 2), ["stat/open"]);
    assert_eq!(sel(Some("open/stat,stat/open"), 2), ["open/stat"]);
    // A pool combination met again as an explicit set takes the written order.
    assert_eq!(
        sel(Some("open,stat,stat/open"), 2),
        ["open/open", "stat/open", "stat/stat"]
    );
    assert_eq!(
        sel(Some("{open,close}/stat"), 2),
        ["open/stat", "close/stat"]
    );
    assert_eq!(sel(Some("open/stat/close"), 2), ["open/stat/close"]);
    assert_eq!(sel(Some("stat,{open,close}/sync"), 2).len(), 3);
    assert_eq!(sel(Some("open"), 3), ["open/open/open"]);
}

#[test]
fn star_stands_wherever_a_call_name_may() {
    assert_eq!(
        sel(Some("open/*"), 2),
        ["open/open", "open/stat", "open/close", "open/sync"]
    );
    assert_eq!(
        sel(Some("*/open"), 2),
        ["open/open", "stat/open", "close/open", "sync/open"]
    );
    assert_eq!(sel(Some("{open,stat}/*"), 2).len(), 7);
    assert_eq!(sel(Some("*/*"), 2).len(), 10);
    assert_eq!(sel(Some("{*}"), 2).len(), 10);
    assert_eq!(sel(Some("{open,*}/sync"), 2).len(), 4);
    assert_eq!(sel(Some(" open / * , ! sync "), 2).len(), 3);
    assert_eq!(sel(Some("*/*,!*/sync"), 2).len(), 6);
}

#[test]
fn errors_say_what_where_and_how_to_fix() {
    let e = select_call_sets(CALLS, DEFAULT, Some("open,bogus"), 2).unwrap_err();
    assert!(
        matches!(&e, SelectError::UnknownCall { name, column: 6, .. } if name == "bogus"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("unknown call `bogus` at column 6"), "{text}");
    assert!(text.contains("open, stat, close, sync"), "{text}");
    assert!(text.ends_with("  open,bogus\n       ^"), "{text}");
    assert_eq!(
        err("open/"),
        SelectError::Malformed {
            spec: "open/".into(),
            column: 6,
            problem: "expected a call name, `*` or `{` after `/`, found the end".into()
        }
    );
    assert!(err("{open,stat").to_string().contains("expected `}`"));
    let cases = [
        ("open/{stat/close}", 11, "put the `/` outside it"),
        ("{open,!stat}", 7, "exclude outside it"),
        ("open stat", 6, "separate items with `,`"),
        ("open}", 5, "no `{` group is open"),
        ("!!open", 2, "`!` goes once"),
        ("open,,stat", 6, "to start an item, found `,`"),
        ("", 1, "to start an item, found the end"),
        ("{}", 2, "inside the `{..}` group, found `}`"),
        ("open/@", 6, "after `/`, found `@`"),
    ];
    for (spec, column, text) in cases {
        let e = err(spec);
        match &e {
            SelectError::Malformed { column: c, .. } => assert_eq!(*c, column, "{spec}: {e}"),
            other => panic!("{spec}: {other:?}"),
        }
        assert!(e.to_string().contains(text), "{spec}: {e}");
    }
    let e = select_call_sets(CALLS, DEFAULT, Some("open,!open"), 2).unwrap_err();
    assert!(matches!(e, SelectError::Empty { .. }));
    assert_eq!(
        select_call_sets(CALLS, DEFAULT, None, 0).unwrap_err(),
        SelectError::BadSize(0)
    );
}

/// An alternative of a generated expression.
#[derive(Debug, Clone)]
enum Alt {
    Star,
    /// An index into [`NAMES`] (the last is no call of the model).
    Name(usize),
    Group(Vec<Alt>),
}

/// Names a generated expression uses: the model's calls and one unknown name.
const NAMES: &[&str] = &["open", "stat", "close", "sync", "bogus"];

#[derive(Debug, Clone)]
struct GenItem {
    negated: bool,
    alts: Vec<Alt>,
}

fn alt() -> impl Strategy<Value = Alt> {
    let leaf = prop_oneof![
        1 => Just(Alt::Star),
        6 => (0..NAMES.len()).prop_map(Alt::Name),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 1..4).prop_map(Alt::Group)
    })
}

fn items() -> impl Strategy<Value = Vec<GenItem>> {
    let item = (
        prop::bool::weighted(0.25),
        prop::collection::vec(alt(), 1..4),
    )
        .prop_map(|(negated, alts)| GenItem { negated, alts });
    prop::collection::vec(item, 1..5)
}

fn render_alt(a: &Alt, space: &str) -> String {
    match a {
        Alt::Star => "*".into(),
        Alt::Name(i) => NAMES[*i].into(),
        Alt::Group(g) => {
            let parts: Vec<String> = g.iter().map(|a| render_alt(a, space)).collect();
            format!("{{{space}{}{space}}}", parts.join(&format!(",{space}")))
        }
    }
}

fn render(items: &[GenItem], space: &str) -> String {
    items
        .iter()
        .map(|i| {
            let alts: Vec<String> = i.alts.iter().map(|a| render_alt(a, space)).collect();
            let bang = if i.negated { "!" } else { "" };
            format!("{bang}{}", alts.join(&format!("{space}/{space}")))
        })
        .collect::<Vec<_>>()
        .join(&format!("{space},{space}"))
}

/// The calls an alternative stands for, in the order written, each once.
fn expand(a: &Alt, out: &mut Vec<usize>) {
    match a {
        Alt::Star => (0..CALLS.len()).for_each(|i| {
            if !out.contains(&i) {
                out.push(i)
            }
        }),
        Alt::Name(i) => {
            if !out.contains(i) {
                out.push(*i)
            }
        }
        Alt::Group(g) => g.iter().for_each(|a| expand(a, out)),
    }
}

/// The reference expansion, written from the grammar's definition: sets keyed by their sorted
/// calls, each in the order its first explicit mention wrote it.
fn reference(items: &[GenItem], n: usize) -> Option<BTreeMap<Vec<usize>, Vec<usize>>> {
    let mut pool = BTreeSet::new();
    let mut banned = BTreeSet::new();
    let mut banned_sets = BTreeSet::new();
    let mut sets: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    if items.iter().all(|i| i.negated) {
        pool.extend((0..CALLS.len()).filter(|&i| DEFAULT[i]));
    }
    for item in items {
        let alts: Vec<Vec<usize>> = item
            .alts
            .iter()
            .map(|a| {
                let mut v = Vec::new();
                expand(a, &mut v);
                v
            })
            .collect();
        if alts.len() == 1 {
            if item.negated {
                banned.extend(alts[0].iter().copied());
            } else {
                pool.extend(alts[0].iter().copied());
            }
            continue;
        }
        // Every choice of one call per position, the first position varying slowest.
        let mut product: Vec<Vec<usize>> = vec![Vec::new()];
        for alt in &alts {
            product = product
                .into_iter()
                .flat_map(|p| {
                    alt.iter().map(move |c| {
                        let mut p = p.clone();
                        p.push(*c);
                        p
                    })
                })
                .collect();
        }
        for set in product {
            let mut key = set.clone();
            key.sort();
            if item.negated {
                banned_sets.insert(key);
            } else {
                sets.entry(key).or_insert(set);
            }
        }
    }
    // Every multiset of n pool calls: all n-tuples, sorted, deduplicated.
    let pool: Vec<usize> = pool.into_iter().collect();
    let mut tuples: Vec<Vec<usize>> = vec![Vec::new()];
    for _ in 0..n {
        tuples = tuples
            .into_iter()
            .flat_map(|t| {
                pool.iter().map(move |c| {
                    let mut t = t.clone();
                    t.push(*c);
                    t
                })
            })
            .collect();
    }
    for mut t in tuples {
        t.sort();
        sets.entry(t.clone()).or_insert(t);
    }
    sets.retain(|k, _| !banned_sets.contains(k) && !k.iter().any(|c| banned.contains(c)));
    (!sets.is_empty()).then_some(sets)
}

fn first_unknown(items: &[GenItem]) -> bool {
    fn has(a: &Alt) -> bool {
        match a {
            Alt::Name(i) => *i >= CALLS.len(),
            Alt::Star => false,
            Alt::Group(g) => g.iter().any(has),
        }
    }
    items.iter().any(|i| i.alts.iter().any(has))
}

/// Whether `problem`, an "expected X, found `c`" message, names `c` among what it expected.
fn contradicts(problem: &str, found: char) -> bool {
    let Some((expected, _)) = problem.split_once(", found") else {
        return false;
    };
    let expected = expected.split(" to start").next().unwrap_or(expected);
    let expected = expected.split(" after ").next().unwrap_or(expected);
    let expected = expected.split(" inside ").next().unwrap_or(expected);
    (is_name_char(found) && expected.contains("a call name"))
        || expected.contains(&format!("`{found}`"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every expression the grammar generates selects what the reference expansion says.
    #[test]
    fn expressions_match_the_reference(items in items(), n in 1usize..4, spaced: bool) {
        let spec = render(&items, if spaced { " " } else { "" });
        let got = select_call_sets(CALLS, DEFAULT, Some(&spec), n);
        if first_unknown(&items) {
            let column = spec.find("bogus").map(|i| i + 1);
            prop_assert!(
                matches!(&got, Err(SelectError::UnknownCall { column: c, .. }) if Some(*c) == column),
                "{spec}: {got:?}"
            );
            return Ok(());
        }
        match reference(&items, n) {
            None => prop_assert!(matches!(got, Err(SelectError::Empty { .. })), "{spec}: {got:?}"),
            Some(want) => {
                let want: Vec<Vec<usize>> = want.into_values().collect();
                prop_assert_eq!(got, Ok(want), "{}", spec);
            }
        }
    }

    /// Any input is a selection or a clear error: never a panic, the column inside the input
    /// (or just past it), the character it says it found the one there, and never one it says
    /// it expected.
    #[test]
    fn malformed_input_is_a_clear_error(
        spec in prop::collection::vec(
            prop::sample::select(vec![
                "open", "stat", "sync", "bogus", "*", "/", ",", "{", "}", "!", " ", "@", "é",
            ]),
            0..12,
        ).prop_map(|parts| parts.concat()),
        n in 1usize..3,
    ) {
        match select_call_sets(CALLS, DEFAULT, Some(&spec), n) {
            Ok(sets) => {
                prop_assert!(!sets.is_empty());
                prop_assert!(sets.iter().all(|s| !s.is_empty() && s.iter().all(|&c| c < CALLS.len())));
            }
            Err(SelectError::Malformed { column, problem, .. }) => {
                let chars: Vec<char> = spec.chars().collect();
                prop_assert!(column >= 1 && column <= chars.len() + 1, "{spec}: {column}");
                match chars.get(column - 1) {
                    Some(&c) => {
                        prop_assert!(
                            !problem.contains("found") || problem.contains(&format!("found `{c}`")),
                            "{spec} at {column}: {problem}"
                        );
                        prop_assert!(!contradicts(&problem, c), "{spec} at {column}: {problem}");
                    }
                    None => prop_assert!(
                        !problem.contains("found `"),
                        "{spec} at the end: {problem}"
                    ),
                }
            }
            Err(SelectError::UnknownCall { name, column, .. }) => {
                let rest: String = spec.chars().skip(column - 1).collect();
                prop_assert!(rest.starts_with(&name), "{spec}: {name} at {column}");
            }
            Err(SelectError::Empty { .. }) => {}
            Err(SelectError::BadSize(_)) => prop_assert!(false, "n is at least 1"),
        }
    }
}
