//! Human-readable conditions: simplification with Z3 tactics, removal of conjuncts implied by
//! the model's assumptions, and rendering in a Rust-like syntax over the model's own names
//! (`s.root_dir.contains(a.name) && a.name != b.name`), never Z3 internals.

use z3::ast::{Ast, Bool as ZBool, Dynamic, Int as ZInt};
use z3::{AstKind, DeclKind, Goal, Params, SatResult, Solver, Tactic};

use crate::exec::{Constraint, ConstraintKind, side_solver};

/// Simplifies path conditions for display.
pub struct ConditionPrinter {
    tactic: Tactic,
}

impl Default for ConditionPrinter {
    fn default() -> Self {
        Self::new()
    }
}

impl ConditionPrinter {
    pub fn new() -> Self {
        let mut p = Params::new();
        p.set_bool("blast_select_store", true);
        p.set_bool("ite_extra_rules", true);
        let tactic = Tactic::new("simplify")
            .with(&p)
            .and_then(&Tactic::new("propagate-values"))
            .and_then(&Tactic::new("ctx-solver-simplify"))
            .and_then(&Tactic::new("simplify"));
        ConditionPrinter { tactic }
    }

    /// The conjuncts of the path condition, simplified, without those implied by the
    /// assumptions and the other conjuncts. Empty means "always (given the assumptions)".
    pub fn simplify(&self, constraints: &[Constraint]) -> Vec<ZBool> {
        let formulas: Vec<ZBool> = constraints.iter().map(|c| c.formula.clone()).collect();
        let assumptions = invariants(constraints);
        let assumptions: Vec<&ZBool> = assumptions.iter().collect();
        self.simplify_formulas(&formulas, &assumptions)
    }

    fn simplify_formulas(&self, formulas: &[ZBool], assumptions: &[&ZBool]) -> Vec<ZBool> {
        let goal = Goal::new(false, false, false);
        for f in formulas {
            goal.assert(f);
        }
        let mut conjuncts: Vec<ZBool> = match self.tactic.apply(&goal, None) {
            Ok(r) => r
                .list_subgoals()
                .flat_map(|g| g.get_formulas())
                .flat_map(|f| split_and(&f))
                .collect(),
            // The tactic failing is not fatal: show the unsimplified condition.
            Err(_) => formulas.iter().flat_map(split_and).collect(),
        };
        // The greedy passes below keep or drop a conjunct depending on those before it: they
        // run in the order of the printed text, not of Z3's term ids (which vary run to run).
        canonical_order(&mut conjuncts);
        fix_decided_atoms(&mut conjuncts, assumptions);
        collapse_to_atoms(&mut conjuncts, assumptions);
        minimize_boolean(&mut conjuncts, assumptions);
        canonical_order(&mut conjuncts);
        drop_implied(&mut conjuncts, assumptions);
        drop_impossible_disjuncts(&mut conjuncts, assumptions);
        tighten_bounds(&mut conjuncts);
        canonical_order(&mut conjuncts);
        conjuncts
    }

    /// The condition over the state and arguments, and separately what the path's internal
    /// values must satisfy given it: the path condition is `outer ∧ ∃ internals. inner`.
    pub fn simplify_with_internals(
        &self,
        constraints: &[Constraint],
        internals: &[Dynamic],
    ) -> (Vec<ZBool>, Vec<ZBool>) {
        let (inner, outer): (Vec<&Constraint>, Vec<&Constraint>) = constraints
            .iter()
            .partition(|c| mentions(&Dynamic::from_ast(&c.formula), internals));
        let outer: Vec<Constraint> = outer.into_iter().cloned().collect();
        let simplified_outer = self.simplify(&outer);
        if inner.is_empty() {
            return (simplified_outer, Vec::new());
        }
        // The inner part is simplified in the context of the outer one, and only what still
        // mentions internal values is kept (the rest is already said by the outer part).
        let mut context: Vec<&ZBool> = outer.iter().map(|c| &c.formula).collect();
        let mut formulas: Vec<ZBool> = context.iter().map(|f| (*f).clone()).collect();
        formulas.extend(inner.iter().map(|c| c.formula.clone()));
        context.extend(
            inner
                .iter()
                .filter(|c| c.kind == ConstraintKind::Invariant)
                .map(|c| &c.formula),
        );
        let simplified_inner = self
            .simplify_formulas(&formulas, &context)
            .into_iter()
            .filter(|c| mentions(&Dynamic::from_ast(c), internals))
            .collect();
        (simplified_outer, simplified_inner)
    }

    /// The path condition as readable cases (their disjunction): internal values eliminated
    /// where an equation names them (`x == t`, `x` internal: `t` replaces `x`), and every `if`
    /// inside a term split into the case where its condition holds and the one where it does
    /// not.
    fn cases(&self, constraints: &[Constraint], internals: &[Dynamic]) -> Vec<Case> {
        let (outer, inner) = self.simplify_with_internals(constraints, internals);
        let assumptions = invariants(constraints);
        let (outer, inner) = eliminate_internals(outer, inner, internals);
        let case = Case {
            outer,
            inner,
            internals: internals.to_vec(),
        };
        let mut out = Vec::new();
        self.split_ites(case, &assumptions, MAX_SPLITS, &mut out);
        out
    }

    /// Split `case` on the condition of its first `if` (in printed order), `depth` more times
    /// at most; impossible sides are dropped.
    fn split_ites(&self, case: Case, assumptions: &[ZBool], depth: usize, out: &mut Vec<Case>) {
        let Some(cond) = (depth > 0).then(|| first_ite_condition(&case)).flatten() else {
            out.push(case);
            return;
        };
        let a: Vec<&ZBool> = assumptions.iter().collect();
        for side in [true, false] {
            let literal = if side { cond.clone() } else { cond.not() };
            let fixed = ZBool::from_bool(side);
            let replace = |f: &ZBool| f.substitute(&[(&cond, &fixed)]).simplify();
            let mut outer: Vec<ZBool> = case.outer.iter().map(replace).collect();
            let mut inner: Vec<ZBool> = case.inner.iter().map(replace).collect();
            // A condition on internal values is part of what some choice must satisfy.
            if mentions(&Dynamic::from_ast(&literal), &case.internals) {
                inner.push(literal);
            } else {
                outer.push(literal);
            }
            let mut all = outer.clone();
            all.extend(inner.iter().cloned());
            if !satisfiable(&all, &a) {
                continue;
            }
            let outer = self.simplify_formulas(&outer, &a);
            let mut context: Vec<&ZBool> = a.clone();
            context.extend(outer.iter());
            let has_inner = !inner.is_empty();
            let mut formulas: Vec<ZBool> = outer.clone();
            formulas.extend(inner);
            let inner: Vec<ZBool> = if !has_inner {
                Vec::new()
            } else {
                self.simplify_formulas(&formulas, &context)
                    .into_iter()
                    .filter(|c| mentions(&Dynamic::from_ast(c), &case.internals))
                    .collect()
            };
            let (outer, inner) = eliminate_internals(outer, inner, &case.internals);
            let next = Case {
                outer,
                inner,
                internals: case.internals.clone(),
            };
            self.split_ites(next, assumptions, depth - 1, out);
        }
    }

    /// Simplified and rendered; `"true"` when nothing remains. Conjuncts that mention the
    /// path's internal values come last, under "for some": the condition holds when some
    /// choice of those values satisfies them. A path split into cases reads `(..) || (..)`.
    pub fn render(&self, constraints: &[Constraint], internals: &[Dynamic]) -> String {
        self.condition(constraints, internals).text()
    }

    /// A path's condition, simplified into readable cases: [`Condition::text`] prints it,
    /// [`ConditionPrinter::merge`] joins several.
    pub fn condition(&self, constraints: &[Constraint], internals: &[Dynamic]) -> Condition {
        let raw = internals.is_empty().then(|| {
            let parts: Vec<&ZBool> = constraints.iter().map(|c| &c.formula).collect();
            ZBool::and(&parts)
        });
        let mut cases = self.cases(constraints, internals);
        let assumptions = invariants(constraints);
        if cases.len() > 1 {
            // Cases split from one path can often be joined again more shortly.
            minimize_cases(&mut cases, &assumptions);
        }
        Condition {
            cases,
            assumptions,
            raw,
        }
    }

    /// One condition for several paths: their disjunction, as few and as short cases as the
    /// solver can show equivalent (literals no case needs dropped, cases others cover
    /// dropped), within `context` (other paths' conditions, e.g. every path of the call set:
    /// the calls' preconditions). `"true"` when the paths cover the whole context (or every
    /// state the assumptions allow), `"false"` when there is no path.
    pub fn merge(&self, conditions: &[&Condition], context: &[&Condition]) -> String {
        let mut assumptions: Vec<ZBool> = Vec::new();
        for c in conditions.iter().chain(context) {
            for a in &c.assumptions {
                if !assumptions.contains(a) {
                    assumptions.push(a.clone());
                }
            }
        }
        // The context as one formula, when every path of it is free of internal values.
        let within: Option<Vec<&ZBool>> = context.iter().map(|c| c.raw.as_ref()).collect();
        if let Some(within) = within.filter(|w| !w.is_empty()) {
            assumptions.push(ZBool::or(&within));
        }
        // The common answer first, on the unsimplified conditions: the paths cover every
        // state (paths without internal values suffice to show it).
        let raw: Vec<&ZBool> = conditions.iter().filter_map(|c| c.raw.as_ref()).collect();
        if !raw.is_empty() {
            let solver = solver_assuming(&assumptions);
            solver.assert(ZBool::or(&raw).not());
            if solver.check() == SatResult::Unsat {
                return "true".to_string();
            }
        }
        let mut cases: Vec<Case> = conditions.iter().flat_map(|c| c.cases.clone()).collect();
        minimize_cases(&mut cases, &assumptions);
        render_cases(&cases)
    }
}

/// A path condition as readable cases (see [`ConditionPrinter::condition`]); Z3 terms: it
/// stays on the thread that made it.
pub struct Condition {
    cases: Vec<Case>,
    assumptions: Vec<ZBool>,
    /// The whole path condition, when it has no internal values.
    raw: Option<ZBool>,
}

impl Condition {
    /// The condition in Rust-like syntax (`"true"`: always; cases joined by `||`).
    pub fn text(&self) -> String {
        render_cases(&self.cases)
    }
}

/// At most this many `if` conditions are split per path (2^n cases at worst); deeper ones stay.
const MAX_SPLITS: usize = 3;

/// One case of a condition: `outer ∧ ∃ internals. inner`.
#[derive(Clone)]
struct Case {
    outer: Vec<ZBool>,
    inner: Vec<ZBool>,
    internals: Vec<Dynamic>,
}

impl Case {
    fn formula(&self) -> ZBool {
        let parts: Vec<&ZBool> = self.outer.iter().chain(self.inner.iter()).collect();
        ZBool::and(&parts)
    }

    fn render(&self) -> String {
        let conjunct = |c: &ZBool| Renderer::default().expr(&Dynamic::from_ast(c), P_AND + 1);
        let mut text: Vec<String> = self.outer.iter().map(conjunct).collect();
        if !self.inner.is_empty() {
            let used: Vec<String> = self
                .internals
                .iter()
                .filter(|v| {
                    self.inner
                        .iter()
                        .any(|c| mentions(&Dynamic::from_ast(c), &[(*v).clone()]))
                })
                .map(render)
                .collect();
            let mut body: Vec<String> = self.inner.iter().map(conjunct).collect();
            body.sort();
            text.push(format!(
                "for some {}: ({})",
                used.join(", "),
                body.join(" && ")
            ));
        }
        if text.is_empty() {
            return "true".to_string();
        }
        text.join(" && ")
    }
}

fn render_cases(cases: &[Case]) -> String {
    match cases {
        [] => "false".to_string(),
        [one] => one.render(),
        many => {
            // A case of one literal needs no parentheses.
            let mut texts: Vec<(String, bool)> = many
                .iter()
                .map(|c| (c.render(), c.outer.len() > 1 || !c.inner.is_empty()))
                .collect();
            texts.sort();
            texts.dedup();
            if texts.len() == 1 {
                return texts.remove(0).0;
            }
            texts
                .iter()
                .map(|(t, compound)| {
                    if *compound {
                        format!("({t})")
                    } else {
                        t.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" || ")
        }
    }
}

fn invariants(constraints: &[Constraint]) -> Vec<ZBool> {
    constraints
        .iter()
        .filter(|c| c.kind == ConstraintKind::Invariant)
        .map(|c| c.formula.clone())
        .collect()
}

/// A side solver (see [`side_solver`]) holding `assumptions`.
fn solver_assuming<'a>(assumptions: impl IntoIterator<Item = &'a ZBool>) -> Solver {
    let solver = side_solver();
    for a in assumptions {
        solver.assert(a);
    }
    solver
}

fn satisfiable(formulas: &[ZBool], assumptions: &[&ZBool]) -> bool {
    let solver = solver_assuming(assumptions.iter().copied());
    for f in formulas {
        solver.assert(f);
    }
    solver.check() != SatResult::Unsat
}

/// Order conjuncts by their printed text (ties: Z3's own text).
fn canonical_order(conjuncts: &mut Vec<ZBool>) {
    let mut keyed: Vec<(String, String, ZBool)> = conjuncts
        .drain(..)
        .map(|c| (render(&c), c.to_string(), c))
        .collect();
    keyed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    keyed.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    conjuncts.extend(keyed.into_iter().map(|(_, _, c)| c));
}

/// The one-point rule: an inner conjunct `x == t` with `x` internal and `t` free of `x` says
/// which value `x` is; `t` replaces `x` everywhere and the equation goes. What then mentions
/// no internal value joins the outer part.
fn eliminate_internals(
    mut outer: Vec<ZBool>,
    mut inner: Vec<ZBool>,
    internals: &[Dynamic],
) -> (Vec<ZBool>, Vec<ZBool>) {
    loop {
        let found = inner.iter().enumerate().find_map(|(i, c)| {
            let d = Dynamic::from_ast(c);
            if !(d.is_app() && d.decl().kind() == DeclKind::Eq && d.num_children() == 2) {
                return None;
            }
            let ch = d.children();
            [(0, 1), (1, 0)].into_iter().find_map(|(x, t)| {
                let (x, t) = (&ch[x], &ch[t]);
                (internals.contains(x) && !mentions(t, std::slice::from_ref(x)))
                    .then(|| (i, x.clone(), t.clone()))
            })
        });
        let Some((i, x, t)) = found else { break };
        inner.remove(i);
        let rest: Vec<ZBool> = inner
            .drain(..)
            .map(|c| c.substitute(&[(&x, &t)]).simplify())
            .filter(|c| c.as_bool() != Some(true))
            .collect();
        for c in rest {
            if mentions(&Dynamic::from_ast(&c), internals) {
                inner.push(c);
            } else if !outer.contains(&c) {
                outer.push(c);
            }
        }
    }
    canonical_order(&mut outer);
    canonical_order(&mut inner);
    (outer, inner)
}

/// The condition of the first `if` inside a term (not a connective) of the case, in printed
/// order; `None` when there is none.
fn first_ite_condition(case: &Case) -> Option<ZBool> {
    fn find(d: &Dynamic) -> Option<ZBool> {
        if d.kind() != AstKind::App {
            return None;
        }
        if d.decl().kind() == DeclKind::Ite {
            // The innermost condition first: it does not contain another `if`.
            return d
                .children()
                .first()
                .and_then(find)
                .or_else(|| d.children().first().and_then(|c| c.as_bool()));
        }
        d.children().iter().find_map(find)
    }
    case.outer
        .iter()
        .chain(case.inner.iter())
        .find_map(|c| find(&Dynamic::from_ast(c)))
}
/// Whether `d` mentions any of `consts`.
fn mentions(d: &Dynamic, consts: &[Dynamic]) -> bool {
    if consts.is_empty() {
        return false;
    }
    if consts.contains(d) {
        return true;
    }
    d.kind() == AstKind::App && d.children().iter().any(|c| mentions(c, consts))
}

fn split_and(f: &ZBool) -> Vec<ZBool> {
    if f.is_app() && f.decl().kind() == DeclKind::And {
        f.children()
            .iter()
            .filter_map(|c| c.as_bool())
            .flat_map(|c| split_and(&c))
            .collect()
    } else if f.as_bool() == Some(true) {
        Vec::new()
    } else {
        vec![f.clone()]
    }
}

/// Greedily drop each conjunct implied by the assumptions and the conjuncts kept so far.
fn drop_implied(conjuncts: &mut Vec<ZBool>, assumptions: &[&ZBool]) {
    let solver = solver_assuming(assumptions.iter().copied());
    let mut i = 0;
    while i < conjuncts.len() {
        solver.push();
        for (j, other) in conjuncts.iter().enumerate() {
            if j != i {
                solver.assert(other);
            }
        }
        solver.assert(conjuncts[i].not());
        let implied = solver.check() == SatResult::Unsat;
        solver.pop(1);
        if implied {
            conjuncts.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Replace atoms inside a conjunct that the rest of the condition decides by `true`/`false`
/// (`(n == -1) != (n == 0)` given `n >= 0` becomes `n == 0`).
fn fix_decided_atoms(conjuncts: &mut Vec<ZBool>, assumptions: &[&ZBool]) {
    let solver = solver_assuming(assumptions.iter().copied());
    for i in 0..conjuncts.len() {
        let mut atoms = Vec::new();
        collect_atoms(&Dynamic::from_ast(&conjuncts[i]), &mut atoms);
        if atoms.len() < 2 {
            continue;
        }
        solver.push();
        for (j, other) in conjuncts.iter().enumerate() {
            if j != i {
                solver.assert(other);
            }
        }
        let mut fixed: Vec<(ZBool, ZBool)> = Vec::new();
        for atom in atoms {
            for value in [true, false] {
                solver.push();
                solver.assert(if value { atom.not() } else { atom.clone() });
                let decided = solver.check() == SatResult::Unsat;
                solver.pop(1);
                if decided {
                    fixed.push((atom.clone(), ZBool::from_bool(value)));
                    break;
                }
            }
        }
        solver.pop(1);
        if !fixed.is_empty() {
            let pairs: Vec<(&ZBool, &ZBool)> = fixed.iter().map(|(a, b)| (a, b)).collect();
            conjuncts[i] = conjuncts[i].substitute(&pairs).simplify();
        }
    }
    conjuncts.retain(|c| c.as_bool() != Some(true));
}

/// Replace a compound conjunct by one of its atoms (or the atom's negation) when the rest of
/// the condition makes them equivalent: `(if x == y { n - 1 } else { m }) == m - 1` given
/// `n == m` reads `x == y`.
fn collapse_to_atoms(conjuncts: &mut [ZBool], assumptions: &[&ZBool]) {
    let solver = solver_assuming(assumptions.iter().copied());
    for i in 0..conjuncts.len() {
        let mut atoms = Vec::new();
        collect_nested_atoms(&Dynamic::from_ast(&conjuncts[i]), &mut atoms);
        atoms.retain(|a| *a != conjuncts[i] && a.not() != conjuncts[i]);
        if atoms.is_empty() {
            continue;
        }
        solver.push();
        for (j, other) in conjuncts.iter().enumerate() {
            if j != i {
                solver.assert(other);
            }
        }
        let target = conjuncts[i].clone();
        let replacement = atoms
            .iter()
            .flat_map(|a| [a.clone(), a.not()])
            .find(|candidate| {
                solver.push();
                solver.assert(target.eq(candidate).not());
                let equivalent = solver.check() == SatResult::Unsat;
                solver.pop(1);
                equivalent
            });
        solver.pop(1);
        if let Some(r) = replacement {
            conjuncts[i] = r.simplify();
        }
    }
}

/// Every comparison (or boolean constant) anywhere inside a term, including `if` conditions.
fn collect_nested_atoms(d: &Dynamic, out: &mut Vec<ZBool>) {
    if d.kind() != AstKind::App {
        return;
    }
    if let Some(b) = d.as_bool()
        && b.as_bool().is_none()
        && is_atom(d)
        && !out.contains(&b)
    {
        out.push(b);
    }
    for c in d.children() {
        collect_nested_atoms(&c, out);
    }
}

fn is_atom(d: &Dynamic) -> bool {
    match d.decl().kind() {
        DeclKind::And | DeclKind::Or | DeclKind::Not | DeclKind::Implies | DeclKind::Ite => false,
        DeclKind::Eq | DeclKind::Iff => d.children().first().is_none_or(|c| c.as_bool().is_none()),
        _ => true,
    }
}

/// Boolean leaves of a formula: comparisons and boolean constants under the connectives.
fn collect_atoms(d: &Dynamic, out: &mut Vec<ZBool>) {
    let Some(b) = d.as_bool() else { return };
    if b.as_bool().is_some() {
        return;
    }
    let connective = d.is_app()
        && matches!(
            d.decl().kind(),
            DeclKind::And | DeclKind::Or | DeclKind::Not | DeclKind::Implies | DeclKind::Ite
        )
        || (d.is_app()
            && matches!(d.decl().kind(), DeclKind::Eq | DeclKind::Iff)
            && d.children().first().is_some_and(|c| c.as_bool().is_some()));
    if connective {
        for c in d.children() {
            collect_atoms(&c, out);
        }
    } else if !out.contains(&b) {
        out.push(b);
    }
}

/// In each disjunctive conjunct, drop the disjuncts that contradict the rest of the condition.
fn drop_impossible_disjuncts(conjuncts: &mut [ZBool], assumptions: &[&ZBool]) {
    let solver = solver_assuming(assumptions.iter().copied());
    for i in 0..conjuncts.len() {
        let c = &conjuncts[i];
        if !(c.is_app() && c.decl().kind() == DeclKind::Or) {
            continue;
        }
        solver.push();
        for (j, other) in conjuncts.iter().enumerate() {
            if j != i {
                solver.assert(other);
            }
        }
        let kept: Vec<ZBool> = c
            .children()
            .iter()
            .filter_map(|d| d.as_bool())
            .filter(|d| {
                solver.push();
                solver.assert(d);
                let possible = solver.check() != SatResult::Unsat;
                solver.pop(1);
                possible
            })
            .collect();
        solver.pop(1);
        if kept.len() < c.num_children() && !kept.is_empty() {
            conjuncts[i] = ZBool::or(&kept);
        }
    }
}

/// Rewrite each compound boolean conjunct over at most [`MAX_TABLE_ATOMS`] atoms (`(p || q) !=
/// q`, `if c { p } else { q }`) as its shortest sum of products, from its truth table over the
/// assignments the rest of the condition allows: one product becomes separate conjuncts
/// (`p && !q`), several a disjunction of conjunctions.
fn minimize_boolean(conjuncts: &mut Vec<ZBool>, assumptions: &[&ZBool]) {
    let solver = solver_assuming(assumptions.iter().copied());
    let mut i = 0;
    while i < conjuncts.len() {
        let c = conjuncts[i].clone();
        let d = Dynamic::from_ast(&c);
        let compound = d.is_app()
            && (matches!(
                d.decl().kind(),
                DeclKind::Or | DeclKind::Implies | DeclKind::Ite | DeclKind::Xor | DeclKind::Iff
            ) || (matches!(
                d.decl().kind(),
                DeclKind::Eq | DeclKind::Distinct | DeclKind::Not
            ) && !is_atom(&d)
                && !is_literal(&d)));
        let mut atoms = Vec::new();
        collect_atoms(&d, &mut atoms);
        if !compound || atoms.is_empty() || atoms.len() > MAX_TABLE_ATOMS {
            i += 1;
            continue;
        }
        canonical_order(&mut atoms);
        solver.push();
        for (j, other) in conjuncts.iter().enumerate() {
            if j != i {
                solver.assert(other);
            }
        }
        // Per assignment of the atoms: impossible (None), or the conjunct's value (None when
        // it does not reduce to a constant).
        let n = atoms.len();
        let mut table: Vec<Option<Option<bool>>> = Vec::with_capacity(1 << n);
        for m in 0..(1u32 << n) {
            let values: Vec<ZBool> = (0..n)
                .map(|k| ZBool::from_bool(m & (1 << k) != 0))
                .collect();
            let pairs: Vec<(&ZBool, &ZBool)> = atoms.iter().zip(values.iter()).collect();
            let value = c.substitute(&pairs).simplify().as_bool();
            solver.push();
            for (k, atom) in atoms.iter().enumerate() {
                solver.assert(if m & (1 << k) != 0 {
                    atom.clone()
                } else {
                    atom.not()
                });
            }
            let possible = solver.check() != SatResult::Unsat;
            solver.pop(1);
            table.push(if possible { Some(value) } else { None });
        }
        solver.pop(1);
        if table.contains(&Some(None)) {
            i += 1;
            continue;
        }
        let table: Vec<Option<bool>> = table.into_iter().map(Option::flatten).collect();
        let Some(products) = shortest_cover(&table, n) else {
            i += 1;
            continue;
        };
        let literal = |k: usize, positive: bool| {
            if positive {
                atoms[k].clone()
            } else {
                atoms[k].not()
            }
        };
        let terms: Vec<Vec<ZBool>> = products
            .iter()
            .map(|cube| cube.iter().map(|&(k, v)| literal(k, v)).collect())
            .collect();
        conjuncts.remove(i);
        match terms.as_slice() {
            [] => conjuncts.insert(i, ZBool::from_bool(false)),
            [one] => {
                for (k, l) in one.iter().enumerate() {
                    conjuncts.insert(i + k, l.clone());
                }
                i += one.len();
            }
            many => {
                let ands: Vec<ZBool> = many.iter().map(|t| ZBool::and(t)).collect();
                conjuncts.insert(i, ZBool::or(&ands));
                i += 1;
            }
        }
    }
    conjuncts.retain(|c| c.as_bool() != Some(true));
}

/// Truth tables of compound conjuncts are built over at most this many atoms (2^n solver calls).
const MAX_TABLE_ATOMS: usize = 4;

/// A product of literals (atom index, value) and the true rows of the table it covers.
type Cube = (Vec<(usize, bool)>, Vec<u32>);

/// A shortest sum of products (cubes: (atom, value) lists) covering every true row of `table`
/// and no false one (`None` rows are impossible: free).
fn shortest_cover(table: &[Option<bool>], n: usize) -> Option<Vec<Vec<(usize, bool)>>> {
    let rows: Vec<(u32, Option<bool>)> =
        (0..table.len() as u32).zip(table.iter().copied()).collect();
    let on: Vec<u32> = rows
        .iter()
        .filter(|r| r.1 == Some(true))
        .map(|r| r.0)
        .collect();
    if on.is_empty() {
        return Some(Vec::new());
    }
    // Every cube: per atom absent, true or false (3^n), with the rows it covers.
    let mut cubes: Vec<Cube> = Vec::new();
    for code in 0..3usize.pow(n as u32) {
        let mut cube = Vec::new();
        let mut c = code;
        for k in 0..n {
            match c % 3 {
                1 => cube.push((k, true)),
                2 => cube.push((k, false)),
                _ => {}
            }
            c /= 3;
        }
        let covers = |m: u32| cube.iter().all(|&(k, v)| (m & (1 << k) != 0) == v);
        if rows.iter().any(|&(m, v)| covers(m) && v == Some(false)) {
            continue;
        }
        let covered: Vec<u32> = on.iter().copied().filter(|&m| covers(m)).collect();
        if !covered.is_empty() {
            cubes.push((cube, covered));
        }
    }
    // Shortest cover by increasing size, then fewest literals; ties by cube order.
    for size in 1..=on.len() {
        let mut best: Option<(usize, Vec<usize>)> = None;
        let mut pick = Vec::new();
        choose(&cubes, &on, size, 0, &mut pick, &mut best);
        if let Some((_, chosen)) = best {
            return Some(chosen.into_iter().map(|i| cubes[i].0.clone()).collect());
        }
    }
    None
}

fn choose(
    cubes: &[Cube],
    on: &[u32],
    size: usize,
    from: usize,
    pick: &mut Vec<usize>,
    best: &mut Option<(usize, Vec<usize>)>,
) {
    if pick.len() == size {
        let covers_all = on
            .iter()
            .all(|m| pick.iter().any(|&i| cubes[i].1.contains(m)));
        let literals: usize = pick.iter().map(|&i| cubes[i].0.len()).sum();
        if covers_all && best.as_ref().is_none_or(|(l, _)| literals < *l) {
            *best = Some((literals, pick.clone()));
        }
        return;
    }
    for i in from..cubes.len() {
        pick.push(i);
        choose(cubes, on, size, i + 1, pick, best);
        pick.pop();
    }
}

/// A bound of an integer term against a constant, as the conjunct says it.
enum Bound {
    AtLeast(i64),
    AtMost(i64),
    Is(i64),
    IsNot(i64),
}

/// `t op k` (or its negation) with `k` a numeral: the term and the bound.
fn as_bound(c: &ZBool) -> Option<(Dynamic, Bound)> {
    let d = Dynamic::from_ast(c);
    if !d.is_app() {
        return None;
    }
    let (d, negated) = if d.decl().kind() == DeclKind::Not {
        (d.children().first()?.clone(), true)
    } else {
        (d, false)
    };
    if !d.is_app() || d.num_children() != 2 {
        return None;
    }
    let ch = d.children();
    let numeral = |x: &Dynamic| {
        (x.kind() == AstKind::Numeral)
            .then(|| x.as_int().and_then(|i| i.as_i64()))
            .flatten()
    };
    let (term, k, flipped) = match (numeral(&ch[0]), numeral(&ch[1])) {
        (None, Some(k)) if ch[0].as_int().is_some() => (ch[0].clone(), k, false),
        (Some(k), None) if ch[1].as_int().is_some() => (ch[1].clone(), k, true),
        _ => return None,
    };
    use DeclKind::*;
    // The relation as `term R k`.
    let kind = match (d.decl().kind(), flipped) {
        (Eq, _) => Eq,
        (Distinct, _) => Distinct,
        (Le, false) | (Ge, true) => Le,
        (Ge, false) | (Le, true) => Ge,
        (Lt, false) | (Gt, true) => Lt,
        (Gt, false) | (Lt, true) => Gt,
        _ => return None,
    };
    let bound = match (kind, negated) {
        (Eq, false) | (Distinct, true) => Bound::Is(k),
        (Eq, true) | (Distinct, false) => Bound::IsNot(k),
        (Le, false) | (Gt, true) => Bound::AtMost(k),
        (Ge, false) | (Lt, true) => Bound::AtLeast(k),
        (Lt, false) | (Ge, true) => Bound::AtMost(k.checked_sub(1)?),
        (Gt, false) | (Le, true) => Bound::AtLeast(k.checked_add(1)?),
        _ => return None,
    };
    Some((term, bound))
}

/// Per integer term, its bounds against constants in one canonical form: `x >= 1 && x != 1`
/// reads `x >= 2`, `x >= 3 && x <= 3` reads `x == 3`, `x > 0` reads `x >= 1`.
fn tighten_bounds(conjuncts: &mut Vec<ZBool>) {
    let mut terms: Vec<Dynamic> = Vec::new();
    for c in conjuncts.iter() {
        if let Some((t, _)) = as_bound(c)
            && !terms.contains(&t)
        {
            terms.push(t);
        }
    }
    for t in terms {
        let mut lo: Option<i64> = None;
        let mut hi: Option<i64> = None;
        let mut not: Vec<i64> = Vec::new();
        let mut count = 0;
        for c in conjuncts.iter() {
            let Some((term, bound)) = as_bound(c) else {
                continue;
            };
            if term != t {
                continue;
            }
            count += 1;
            match bound {
                Bound::AtLeast(k) => lo = Some(lo.map_or(k, |l| l.max(k))),
                Bound::AtMost(k) => hi = Some(hi.map_or(k, |h| h.min(k))),
                Bound::Is(k) => {
                    lo = Some(lo.map_or(k, |l| l.max(k)));
                    hi = Some(hi.map_or(k, |h| h.min(k)));
                }
                Bound::IsNot(k) => not.push(k),
            }
        }
        if count == 0 {
            continue;
        }
        while let Some(l) = lo.filter(|l| not.contains(l)) {
            lo = l.checked_add(1);
        }
        while let Some(h) = hi.filter(|h| not.contains(h)) {
            hi = h.checked_sub(1);
        }
        if let (Some(l), Some(h)) = (lo, hi)
            && l > h
        {
            // Contradictory: leave the conjuncts as they are (the path is infeasible anyway).
            continue;
        }
        not.retain(|k| lo.is_none_or(|l| *k > l) && hi.is_none_or(|h| *k < h));
        not.sort_unstable();
        not.dedup();
        let Some(x) = t.as_int() else { continue };
        let mut replacement = interval_literals(&x, lo, hi);
        replacement.extend(not.iter().map(|k| x.eq(ZInt::from_i64(*k)).not()));
        conjuncts.retain(|c| as_bound(c).is_none_or(|(term, _)| term != t));
        conjuncts.extend(replacement);
    }
}

/// `x` in `lo..=hi` as conjuncts: `x == k` for one value, else `x >= lo` and `x <= hi` for
/// the ends there are (none: no conjunct).
fn interval_literals(x: &ZInt, lo: Option<i64>, hi: Option<i64>) -> Vec<ZBool> {
    match (lo, hi) {
        (Some(l), Some(h)) if l == h => vec![x.eq(ZInt::from_i64(l))],
        _ => {
            let lo = lo.map(|l| x.ge(ZInt::from_i64(l)));
            let hi = hi.map(|h| x.le(ZInt::from_i64(h)));
            lo.into_iter().chain(hi).collect()
        }
    }
}

/// Shorten a disjunction of cases: a literal goes when the case without it still implies the
/// disjunction, a case goes when the others imply it, and a case that is `true` is all that is
/// left. Cases with internal values are kept whole (an implication into "for some" is not
/// decided here) but their outer literals are shortened alike.
fn minimize_cases(cases: &mut Vec<Case>, assumptions: &[ZBool]) {
    if cases.is_empty() {
        return;
    }
    // Canonical order first: the greedy passes then do not depend on term ids.
    cases.sort_by_cached_key(Case::render);
    let solver = solver_assuming(assumptions);
    let plain = |cases: &[Case], keep: usize| -> ZBool {
        let parts: Vec<ZBool> = cases
            .iter()
            .enumerate()
            .filter(|(j, c)| c.inner.is_empty() || *j == keep)
            .map(|(_, c)| c.formula())
            .collect();
        ZBool::or(&parts)
    };
    for i in 0..cases.len() {
        let mut k = 0;
        while k < cases[i].outer.len() {
            let whole = plain(cases, i);
            let mut shorter = cases[i].clone();
            shorter.outer.remove(k);
            solver.push();
            solver.assert(shorter.formula());
            solver.assert(whole.not());
            let implied = solver.check() == SatResult::Unsat;
            solver.pop(1);
            if implied {
                cases[i] = shorter;
            } else {
                k += 1;
            }
        }
        if cases[i].outer.is_empty() && cases[i].inner.is_empty() {
            cases.clear();
            cases.push(Case {
                outer: Vec::new(),
                inner: Vec::new(),
                internals: Vec::new(),
            });
            return;
        }
    }
    join_intervals(cases);
    let mut i = 0;
    while i < cases.len() {
        let others: Vec<ZBool> = cases
            .iter()
            .enumerate()
            .filter(|(j, c)| *j != i && c.inner.is_empty())
            .map(|(_, c)| c.formula())
            .collect();
        solver.push();
        solver.assert(cases[i].formula());
        solver.assert(ZBool::or(&others).not());
        let covered = solver.check() == SatResult::Unsat;
        solver.pop(1);
        if covered {
            cases.remove(i);
        } else {
            i += 1;
        }
    }
    cases.sort_by_cached_key(Case::render);
}

/// Join cases that each bound one integer term to adjacent or overlapping intervals:
/// `x == 1 || x >= 2` reads `x >= 1`.
fn join_intervals(cases: &mut Vec<Case>) {
    let interval = |c: &Case| -> Option<(Dynamic, Option<i64>, Option<i64>)> {
        let [only] = c.outer.as_slice() else {
            return None;
        };
        if !c.inner.is_empty() {
            return None;
        }
        match as_bound(only)? {
            (t, Bound::AtLeast(k)) => Some((t, Some(k), None)),
            (t, Bound::AtMost(k)) => Some((t, None, Some(k))),
            (t, Bound::Is(k)) => Some((t, Some(k), Some(k))),
            (_, Bound::IsNot(_)) => None,
        }
    };
    let mut i = 0;
    while i < cases.len() {
        let Some((t, lo, hi)) = interval(&cases[i]) else {
            i += 1;
            continue;
        };
        let joined = (0..cases.len()).filter(|&j| j != i).find_map(|j| {
            let (u, lo2, hi2) = interval(&cases[j])?;
            if u != t {
                return None;
            }
            // Adjacent or overlapping: neither lies wholly past the other's end plus one.
            let apart = |h: Option<i64>, l: Option<i64>| match (h, l) {
                (Some(h), Some(l)) => h.checked_add(1).is_some_and(|h1| h1 < l),
                _ => false,
            };
            if apart(hi, lo2) || apart(hi2, lo) {
                return None;
            }
            let lo = lo.zip(lo2).map(|(a, b)| a.min(b));
            let hi = hi.zip(hi2).map(|(a, b)| a.max(b));
            Some((j, lo, hi))
        });
        let Some((j, lo, hi)) = joined else {
            i += 1;
            continue;
        };
        let Some(x) = t.as_int() else {
            i += 1;
            continue;
        };
        let joined_case = Case {
            outer: interval_literals(&x, lo, hi),
            inner: Vec::new(),
            internals: Vec::new(),
        };
        cases[i] = joined_case;
        cases.remove(j);
        i = 0;
    }
}

fn is_literal(d: &Dynamic) -> bool {
    if d.is_app() && d.decl().kind() == DeclKind::Not {
        return d.children().first().is_some_and(is_atom);
    }
    is_atom(d)
}

/// Render a term in Rust-like syntax over the model's names.
pub fn render(term: &impl Ast) -> String {
    let d = Dynamic::from_ast(term);
    Renderer::default().expr(&d, 0)
}

/// Renders terms; `bound` names the variables of the quantifiers being rendered, innermost
/// last (Z3 refers to them by de Bruijn index).
#[derive(Default)]
struct Renderer {
    bound: std::cell::RefCell<Vec<String>>,
}

/// Binding strength: higher binds tighter.
const P_IMPLIES: u8 = 1;
const P_OR: u8 = 2;
const P_AND: u8 = 3;
const P_CMP: u8 = 4;
const P_ADD: u8 = 5;
const P_MUL: u8 = 6;
const P_UNARY: u8 = 7;

impl Renderer {
    fn expr(&self, d: &Dynamic, outer: u8) -> String {
        match d.kind() {
            AstKind::Numeral => match d.as_int().and_then(|i| i.as_i64()) {
                Some(i) => i.to_string(),
                None => d.to_string(),
            },
            AstKind::App => self.app(d, outer),
            AstKind::Quantifier => self.quantifier(d, outer),
            AstKind::Var => self.var(d),
            _ => squash(&d.to_string()),
        }
    }

    /// `for all x, y: (body)` (or `for some`), the body rendered like any term, so that its
    /// operands come in the canonical order too.
    fn quantifier(&self, d: &Dynamic, outer: u8) -> String {
        let ctx = d.get_ctx().get_z3_context();
        let ast = d.get_z3_ast();
        // SAFETY: `ast` is a live quantifier of this thread's context `ctx` (its kind was just
        // read); the body is wrapped (reference counted) before use, and symbols are read
        // into owned strings at once.
        let (forall, names, body) = unsafe {
            let forall = z3_sys::Z3_is_quantifier_forall(ctx, ast);
            let n = z3_sys::Z3_get_quantifier_num_bound(ctx, ast);
            let names: Vec<String> = (0..n)
                .map(|i| {
                    let raw = z3_sys::Z3_get_quantifier_bound_name(ctx, ast, i)
                        .map(|sym| z3_sys::Z3_get_symbol_string(ctx, sym))
                        .filter(|raw| !raw.is_null());
                    match raw {
                        Some(raw) => squash(&std::ffi::CStr::from_ptr(raw).to_string_lossy()),
                        None => format!("v{i}"),
                    }
                })
                .collect();
            let body = z3_sys::Z3_get_quantifier_body(ctx, ast)
                .map(|b| <Dynamic as Ast>::wrap(d.get_ctx(), b));
            (forall, names, body)
        };
        let Some(body) = body else {
            return squash(&d.to_string());
        };
        let len = names.len();
        self.bound.borrow_mut().extend(names.iter().cloned());
        let text = self.expr(&body, 0);
        let mut bound = self.bound.borrow_mut();
        let keep = bound.len().saturating_sub(len);
        bound.truncate(keep);
        let word = if forall { "for all" } else { "for some" };
        self.wrap(format!("{word} {}: ({text})", names.join(", ")), 0, outer)
    }

    /// A bound variable, by the name its quantifier gave it.
    fn var(&self, d: &Dynamic) -> String {
        let ctx = d.get_ctx().get_z3_context();
        // SAFETY: `d` is a live variable term of this thread's context.
        let index = unsafe { z3_sys::Z3_get_index_value(ctx, d.get_z3_ast()) } as usize;
        let bound = self.bound.borrow();
        match bound.len().checked_sub(index + 1) {
            Some(i) => bound[i].clone(),
            None => squash(&d.to_string()),
        }
    }

    fn wrap(&self, text: String, prec: u8, outer: u8) -> String {
        if prec < outer {
            format!("({text})")
        } else {
            text
        }
    }

    fn infix(&self, d: &Dynamic, op: &str, prec: u8, outer: u8) -> String {
        let parts: Vec<String> = d
            .children()
            .iter()
            .map(|c| self.expr(c, prec + 1))
            .collect();
        self.wrap(parts.join(op), prec, outer)
    }

    /// An operator whose operands may come in any order: they are printed in one canonical
    /// order (by text, constants last: `a.key != b.key`, `s.n + 1`), so that the text does
    /// not depend on Z3's term ids, which vary from run to run.
    fn commutative(&self, d: &Dynamic, op: &str, prec: u8, outer: u8) -> String {
        let mut parts: Vec<(bool, String)> = d
            .children()
            .iter()
            .map(|c| (c.kind() == AstKind::Numeral, self.expr(c, prec + 1)))
            .collect();
        parts.sort();
        let parts: Vec<String> = parts.into_iter().map(|(_, t)| t).collect();
        self.wrap(parts.join(op), prec, outer)
    }

    /// A comparison, its constant on the right (`x > 0`, not `0 < x`).
    fn comparison(&self, d: &Dynamic, op: &str, outer: u8) -> String {
        let ch = d.children();
        if ch.len() == 2 && ch[0].kind() == AstKind::Numeral && ch[1].kind() != AstKind::Numeral {
            let flipped = match op {
                " <= " => " >= ",
                " >= " => " <= ",
                " < " => " > ",
                " > " => " < ",
                other => other,
            };
            let text = format!(
                "{}{flipped}{}",
                self.expr(&ch[1], P_CMP + 1),
                self.expr(&ch[0], P_CMP + 1)
            );
            return self.wrap(text, P_CMP, outer);
        }
        self.infix(d, op, P_CMP, outer)
    }

    fn app(&self, d: &Dynamic, outer: u8) -> String {
        let decl = d.decl();
        let ch = d.children();
        match decl.kind() {
            DeclKind::True => "true".into(),
            DeclKind::False => "false".into(),
            DeclKind::And => self.commutative(d, " && ", P_AND, outer),
            DeclKind::Or => self.commutative(d, " || ", P_OR, outer),
            DeclKind::Implies => self.infix(d, " => ", P_IMPLIES, outer),
            DeclKind::Not => self.negation(&ch[0], outer),
            DeclKind::Eq | DeclKind::Iff => self.commutative(d, " == ", P_CMP, outer),
            DeclKind::Distinct if ch.len() == 2 => self.commutative(d, " != ", P_CMP, outer),
            DeclKind::Le => self.comparison(d, " <= ", outer),
            DeclKind::Ge => self.comparison(d, " >= ", outer),
            DeclKind::Lt => self.comparison(d, " < ", outer),
            DeclKind::Gt => self.comparison(d, " > ", outer),
            DeclKind::Add => self.commutative(d, " + ", P_ADD, outer),
            DeclKind::Sub => self.infix(d, " - ", P_ADD, outer),
            DeclKind::Mul => self.commutative(d, " * ", P_MUL, outer),
            DeclKind::Uminus => format!("-{}", self.expr(&ch[0], P_UNARY)),
            DeclKind::Ite => self.wrap(
                format!(
                    "if {} {{ {} }} else {{ {} }}",
                    self.expr(&ch[0], 0),
                    self.expr(&ch[1], 0),
                    self.expr(&ch[2], 0)
                ),
                0,
                outer,
            ),
            DeclKind::Select => self.select(&ch[0], &ch[1]),
            DeclKind::Store => format!(
                "{}.with({}, {})",
                self.expr(&ch[0], P_UNARY),
                self.expr(&ch[1], 0),
                self.expr(&ch[2], 0)
            ),
            DeclKind::DtAccessor => format!("{}.{}", self.expr(&ch[0], P_UNARY), decl.name()),
            _ if ch.is_empty() => squash(&decl.name()),
            _ => {
                let args: Vec<String> = ch.iter().map(|c| self.expr(c, 0)).collect();
                format!("{}({})", squash(&decl.name()), args.join(", "))
            }
        }
    }

    fn negation(&self, inner: &Dynamic, outer: u8) -> String {
        if inner.is_app() {
            match inner.decl().kind() {
                // `!!x` reads as `x` (a class line's false value of a negated fact).
                DeclKind::Not => return self.expr(&inner.children()[0], outer),
                DeclKind::Eq | DeclKind::Iff => {
                    return self.commutative(inner, " != ", P_CMP, outer);
                }
                DeclKind::Le => return self.comparison(inner, " > ", outer),
                DeclKind::Ge => return self.comparison(inner, " < ", outer),
                DeclKind::Lt => return self.comparison(inner, " >= ", outer),
                DeclKind::Gt => return self.comparison(inner, " <= ", outer),
                _ => {}
            }
        }
        format!("!{}", self.expr(inner, P_UNARY))
    }

    /// `m.present[k]` reads as `m.contains(k)`; a leaf array named `m[].f` as `m[k].f`;
    /// anything else as `a[k]`.
    fn select(&self, array: &Dynamic, key: &Dynamic) -> String {
        let k = self.expr(key, 0);
        let a = self.expr(array, P_UNARY);
        if let Some(map) = a.strip_suffix(".present") {
            return format!("{map}.contains({k})");
        }
        if a.contains("[]") {
            return a.replacen("[]", &format!("[{k}]"), 1);
        }
        format!("{a}[{k}]")
    }
}

/// Remove Z3's quoting and collapse whitespace.
fn squash(s: &str) -> String {
    let s = s.trim_matches('|');
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
