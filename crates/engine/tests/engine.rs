//! The engine's contracts: path exploration, assumptions, internal choices, collections.

use std::time::Duration;

use commuter_engine::{
    Bool, ExploreOptions, Int, PartialMap, SmallList, SymEq, Symbolic, TotalMap, Value, assume,
    branch_exists_internals, explore, symbolic, with_fresh_context,
};

commuter_engine::uninterpreted!(Name);

fn opts() -> ExploreOptions {
    ExploreOptions::default()
}

#[test]
fn every_feasible_path_once_in_canonical_order() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let x = Int::fresh("x");
            let a = x.gt(3).branch();
            let b = x.gt(5).branch(); // x > 5 implies x > 3: only three paths
            (a, b)
        })
        .expect("explores");
        let values: Vec<(bool, bool)> = e.paths.iter().map(|p| p.value).collect();
        assert_eq!(values, [(false, false), (true, false), (true, true)]);
        let decisions: Vec<Vec<bool>> = e.paths.iter().map(|p| p.decisions.clone()).collect();
        let mut sorted = decisions.clone();
        sorted.sort();
        assert_eq!(decisions, sorted);
    });
}

#[test]
fn constant_conditions_cost_no_branch() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let x = Int::fresh("x");
            (x.clone() + 1).gt(&x).branch()
        })
        .expect("explores");
        assert_eq!(e.paths.len(), 1);
        assert!(e.paths[0].value);
        assert_eq!(e.stats.solver_checks, 0);
        assert_eq!(e.stats.constant_branches, 1);
    });
}

#[test]
fn infeasible_assumptions_drop_the_path() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let x = Int::fresh("x");
            assume(&x.ge(0));
            if x.lt(0).branch() {
                unreachable!("x >= 0 was assumed");
            }
            assume(&x.eq(5));
        })
        .expect("explores");
        assert_eq!(e.paths.len(), 1);
    });
}

#[test]
fn a_model_panic_is_an_error_not_a_crash() {
    with_fresh_context(|| {
        let result = explore(&opts(), || {
            if Int::fresh("x").gt(0).branch() {
                panic!("bug in the model");
            }
        });
        let e = result.err().expect("an error");
        assert!(e.to_string().contains("bug in the model"), "{e}");
    });
}

#[test]
fn internal_choices_are_existential() {
    with_fresh_context(|| {
        // Two orders each pick a free slot: they agree for some choice, so no divergence.
        let e = explore(&opts(), || {
            let used = Int::fresh("used");
            let pick_ab = Int::internal("slot");
            let pick_ba = Int::internal("slot");
            assume(&pick_ab.ne(&used));
            assume(&pick_ba.ne(&used));
            branch_exists_internals(&pick_ab.eq(&pick_ba))
        })
        .expect("explores");
        let values: Vec<bool> = e.paths.iter().map(|p| p.value).collect();
        assert_eq!(values, [true]);
        // Without an internal choice the same question has a diverging side.
        let e = explore(&opts(), || {
            let a = Int::fresh("a");
            let b = Int::fresh("b");
            branch_exists_internals(&a.eq(&b))
        })
        .expect("explores");
        assert_eq!(e.paths.len(), 2);
    });
}

#[test]
fn internal_choices_that_cannot_agree_diverge() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let x = Int::fresh("x");
            let pick = Int::internal("p");
            assume(&pick.gt(&x));
            // No choice of p makes p < x: the path diverges for every x.
            branch_exists_internals(&pick.lt(&x))
        })
        .expect("explores");
        let values: Vec<bool> = e.paths.iter().map(|p| p.value).collect();
        assert_eq!(values, [false]);
    });
}

#[test]
fn solver_unknowns_are_recorded_and_exploration_goes_on() {
    with_fresh_context(|| {
        let o = ExploreOptions {
            solver_timeout: Some(Duration::from_millis(50)),
            ..ExploreOptions::default()
        };
        let e = explore(&o, || {
            let (x, y, z) = (Int::fresh("x"), Int::fresh("y"), Int::fresh("z"));
            assume(&(x.gt(0) & y.gt(0) & z.gt(0)));
            let cube = |v: &Int| v.clone() * v.clone() * v.clone();
            // Fermat for n = 3: no solution exists, and the solver cannot prove it.
            (cube(&x) + cube(&y)).eq(cube(&z)).branch()
        })
        .expect("explores");
        assert!(
            e.paths.iter().any(|p| !p.unknowns.is_empty()),
            "an unknown was recorded"
        );
        assert!(
            e.paths.iter().any(|p| !p.value),
            "the provable side is explored too"
        );
    });
}

#[test]
fn maps_compare_at_written_keys_without_quantifiers() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let m: PartialMap<Name, Int> = PartialMap::fresh("m");
            let (k1, k2) = (Name::fresh("k1"), Name::fresh("k2"));
            let (mut ab, mut ba) = (m.clone(), m.clone());
            ab.insert(&k1, &Int::lit(1));
            ab.insert(&k2, &Int::lit(2));
            ba.insert(&k2, &Int::lit(2));
            ba.insert(&k1, &Int::lit(1));
            let eq = ab.sym_eq(&ba);
            assert!(!format!("{:?}", eq.0).contains("forall"), "quantifier-free");
            eq.branch()
        })
        .expect("explores");
        let values: Vec<bool> = e.paths.iter().map(|p| p.value).collect();
        // Different orders of the same writes are equal unless k1 == k2 (then 1 vs 2 wins).
        assert_eq!(values, [false, true]);
    });
}

#[derive(Clone, Debug, Symbolic, Value)]
struct Inode {
    nlink: Int,
    data: SmallList<Int, 3>,
}

#[test]
fn structs_and_lists_live_in_maps() {
    with_fresh_context(|| {
        let e = explore(&opts(), || {
            let mut inodes: TotalMap<Name, Inode> = TotalMap::fresh("inodes");
            let k = Name::fresh("k");
            let mut inode = inodes.get(&k);
            // The list invariant (0 <= len <= 3) holds for values read from the initial state.
            assert!(inode.data.len().lt(0).as_const() != Some(true));
            if inode.data.is_full().branch() {
                return 0;
            }
            inode.data.push(&Int::lit(7));
            inode.nlink = inode.nlink + 1;
            inodes.set(&k, &inode);
            let back = inodes.get(&k);
            let last = back.data.get(back.data.len() - 1);
            assert!(last.eq(7).as_const() != Some(false));
            if back.data.len().gt(3).branch() {
                unreachable!("the list bound holds");
            }
            1
        })
        .expect("explores");
        let values: Vec<i32> = e.paths.iter().map(|p| p.value).collect();
        assert_eq!(values, [1, 0]);
    });
}

#[symbolic]
fn classify(x: &Int) -> &'static str {
    if x.lt(0) {
        "negative"
    } else if x.eq(0) || !x.lt(10) {
        "zero or big"
    } else {
        "small"
    }
}

#[test]
fn symbolic_functions_branch_with_plain_if() {
    with_fresh_context(|| {
        let e = explore(&opts(), || classify(&Int::fresh("x"))).expect("explores");
        let mut values: Vec<&str> = e.paths.iter().map(|p| p.value).collect();
        values.sort_unstable();
        assert_eq!(values, ["negative", "small", "zero or big", "zero or big"]);
    });
}

#[test]
fn fresh_contexts_make_runs_reproducible() {
    let run = || {
        with_fresh_context(|| {
            let e = explore(&opts(), || {
                let x = Int::fresh("x");
                let y = Int::fresh("y");
                (x.gt(&y).branch(), (x + y).eq(4).branch())
            })
            .expect("explores");
            e.paths
                .iter()
                .map(|p| format!("{:?} {}", p.decisions, p.condition()))
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run(), run());
    let _ = Bool::lit(true);
}

#[test]
fn a_class_is_the_relevant_facts_and_every_pair_of_relevant_terms() {
    use commuter_engine::z3::ast::Dynamic;
    use commuter_engine::z3::{SatResult, Solver};
    use commuter_engine::{Concretizer, Pool};
    with_fresh_context(|| {
        let (x, y, z, w) = (
            Name::fresh("x"),
            Name::fresh("y"),
            Name::fresh("z"),
            Name::fresh("w"),
        );
        let (f, g) = (Bool::fresh("f"), Bool::fresh("g"));
        let solver = Solver::new();
        solver.assert(x.sym_eq(&y).0);
        solver.assert((!x.sym_eq(&z)).0);
        solver.assert(f.0.clone());
        assert_eq!(solver.check(), SatResult::Sat);
        let model = solver.get_model().expect("a model");
        let pool = |_: &str| Pool::default();
        let mut cx = Concretizer::new(&model, &pool);
        for n in [&x, &y, &z, &w] {
            cx.label("Name", n).expect("unbounded pool");
        }
        cx.bool(&f);
        cx.bool(&g);
        // `w` and `g` stand for what no branch mentions: no class lines, no constraint.
        let ignored: Vec<Dynamic> = vec![Dynamic::from_ast(&w.0), Dynamic::from_ast(&g.0)];
        let class = cx.class(&|d: &Dynamic| !ignored.contains(d));
        assert_eq!(class.description, ["f", "x == y", "x != z", "y != z"]);
        let formula = class.formula.to_string();
        assert!(
            !formula.contains('w') && !formula.contains('g'),
            "{formula}"
        );
    });
}

/// A quantifier prints its body like any term: in canonical order, whatever order Z3 keeps.
#[test]
fn quantifiers_print_their_body_in_canonical_order() {
    use commuter_engine::render;
    use commuter_engine::z3::ast::{Bool as ZBool, Int as ZInt, forall_const};
    with_fresh_context(|| {
        let x = ZInt::new_const("x");
        let y = ZInt::new_const("y");
        let zero = ZInt::from_i64(0);
        let one = ZBool::or(&[x.eq(&y), y.gt(&zero)]);
        let other = ZBool::or(&[y.gt(&zero), x.eq(&y)]);
        let first = forall_const(&[&x], &[], &one);
        let second = forall_const(&[&x], &[], &other);
        assert_eq!(render(&first), "for all x: (x == y || y > 0)");
        assert_eq!(render(&first), render(&second));
    });
}

/// A value first met in a quiet read (an expected result) and met again where it counts (the
/// state) gets the same label whichever model the solver returns first: the equality is a
/// canonical decision, not the model's accident. Both models below satisfy the (empty) path
/// condition; one puts the two terms equal, the other apart.
#[test]
fn quiet_reads_are_decided_whatever_model_comes_first() {
    use commuter_engine::z3::{Model, SatResult, Solver};
    use commuter_engine::{Canonical, Concretizer, Pool};
    with_fresh_context(|| {
        let (quiet, counted) = (Name::fresh("quiet"), Name::fresh("counted"));
        let model_where = |equal: bool| -> Model {
            let s = Solver::new();
            let eq = quiet.sym_eq(&counted);
            s.assert(if equal { eq.0 } else { (!eq).0 });
            assert_eq!(s.check(), SatResult::Sat);
            s.get_model().expect("a model")
        };
        // The path's solver: nothing constrains the two terms.
        let path = Solver::new();
        assert_eq!(path.check(), SatResult::Sat);
        for (enumerated, expected) in [(false, (0, 0)), (true, (0, 1))] {
            let pool = move |_: &str| Pool {
                capacity: None,
                enumerated,
            };
            let labels = |first: Model| -> (usize, usize) {
                let mut canonical = Canonical::open(&path);
                let mut model = first;
                for _ in 0..8 {
                    let mut cx = Concretizer::canonical(&model, &pool, &mut canonical, &path);
                    let q = cx
                        .quietly(|cx| cx.label("Data", &quiet))
                        .expect("unbounded pool");
                    let c = cx.label("Data", &counted).expect("unbounded pool");
                    if !cx.is_stale() {
                        drop(cx);
                        canonical.close(&path);
                        return (q, c);
                    }
                    drop(cx);
                    model = canonical.model(&path).expect("the decisions are possible");
                }
                panic!("the canonical build did not converge");
            };
            let (equal, apart) = (labels(model_where(true)), labels(model_where(false)));
            assert_eq!(
                (equal, apart),
                (expected, expected),
                "enumerated: {enumerated}"
            );
        }
    });
}

/// A canonical decision against the model in use goes on in the model its check found (every
/// value read before is pinned), unless a value read before is the model's own (an integer
/// outside the small ones): then the build is stale and starts over from a model of the
/// decisions.
#[test]
fn a_build_goes_on_in_the_deciding_model_unless_a_read_is_unpinned() {
    use commuter_engine::z3::{Model, SatResult, Solver};
    use commuter_engine::{Canonical, Concretizer, Pool};
    with_fresh_context(|| {
        let (big, flag) = (Int::fresh("big"), Bool::fresh("flag"));
        // The path's solver: `big` is large, `flag` free; the first model has `flag` true.
        let path = Solver::new();
        path.assert(&big.ge(101).0);
        assert_eq!(path.check(), SatResult::Sat);
        let first = || -> Model {
            let s = Solver::new();
            s.assert(&big.ge(101).0);
            s.assert(&flag.0);
            assert_eq!(s.check(), SatResult::Sat);
            s.get_model().expect("a model")
        };
        let pool = |_: &str| Pool::default();

        // Only `flag` read: decided false against the model, and the build goes on.
        let model = first();
        let mut canonical = Canonical::open(&path);
        let mut cx = Concretizer::canonical(&model, &pool, &mut canonical, &path);
        assert!(!cx.bool(&flag), "the preferred value wins");
        assert!(!cx.is_stale(), "the build goes on in the deciding model");
        drop(cx);
        canonical.close(&path);

        // `big` read first (no decision pins it), then `flag`: the build starts over.
        let model = first();
        let mut canonical = Canonical::open(&path);
        let mut cx = Concretizer::canonical(&model, &pool, &mut canonical, &path);
        assert!(cx.int(&big) > 100);
        cx.bool(&flag);
        assert!(cx.is_stale(), "an unpinned read makes the build stale");
        drop(cx);
        let again = canonical.model(&path).expect("the decisions are possible");
        let mut cx = Concretizer::canonical(&again, &pool, &mut canonical, &path);
        assert!(cx.int(&big) > 100);
        assert!(!cx.bool(&flag));
        assert!(!cx.is_stale(), "the rebuild agrees with every decision");
        drop(cx);
        canonical.close(&path);
    });
}

/// A negated negation prints as the atom (a class line's false value of a negated fact).
#[test]
fn a_double_negation_prints_as_its_atom() {
    use commuter_engine::render;
    use commuter_engine::z3::ast::{Bool as ZBool, Int as ZInt};
    with_fresh_context(|| {
        let untouched = ZBool::new_const("untouched");
        assert_eq!(render(&untouched.not().not()), "untouched");
        let x = ZInt::new_const("x");
        assert_eq!(render(&x.eq(ZInt::from_i64(1)).not().not()), "x == 1");
        assert_eq!(render(&untouched.not()), "!untouched");
    });
}
