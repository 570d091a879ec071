//! Human-readable conditions: simplification with Z3 tactics, removal of conjuncts implied by
//! the model's assumptions, and rendering in a Rust-like syntax over the model's own names
//! (`s.root_dir.contains(a.name) && a.name != b.name`), never Z3 internals.

use z3::ast::{Ast, Bool as ZBool, Dynamic};
use z3::{AstKind, DeclKind, Goal, Params, SatResult, Solver, Tactic};

use crate::exec::{Constraint, ConstraintKind};

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
        let assumptions: Vec<&ZBool> = constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::Invariant)
            .map(|c| &c.formula)
            .collect();
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
        fix_decided_atoms(&mut conjuncts, assumptions);
        collapse_to_atoms(&mut conjuncts, assumptions);
        drop_implied(&mut conjuncts, assumptions);
        drop_impossible_disjuncts(&mut conjuncts, assumptions);
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

    /// Simplified and rendered; `"true"` when nothing remains. Conjuncts that mention the
    /// path's internal values come last, under "for some": the condition holds when some
    /// choice of those values satisfies them.
    pub fn render(&self, constraints: &[Constraint], internals: &[Dynamic]) -> String {
        let (outer, inner) = self.simplify_with_internals(constraints, internals);
        let mut text: Vec<String> = outer.iter().map(render).collect();
        if !inner.is_empty() {
            let used: Vec<String> = internals
                .iter()
                .filter(|v| {
                    inner
                        .iter()
                        .any(|c| mentions(&Dynamic::from_ast(c), &[(*v).clone()]))
                })
                .map(render)
                .collect();
            let body: Vec<String> = inner.iter().map(render).collect();
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
    let solver = Solver::new();
    for a in assumptions {
        solver.assert(*a);
    }
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
    let solver = Solver::new();
    for a in assumptions {
        solver.assert(*a);
    }
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
    let solver = Solver::new();
    for a in assumptions {
        solver.assert(*a);
    }
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
    let solver = Solver::new();
    for a in assumptions {
        solver.assert(*a);
    }
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

/// Render a term in Rust-like syntax over the model's names.
pub fn render(term: &impl Ast) -> String {
    let d = Dynamic::from_ast(term);
    Renderer.expr(&d, 0)
}

struct Renderer;

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
            _ => squash(&d.to_string()),
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

    fn app(&self, d: &Dynamic, outer: u8) -> String {
        let decl = d.decl();
        let ch = d.children();
        match decl.kind() {
            DeclKind::True => "true".into(),
            DeclKind::False => "false".into(),
            DeclKind::And => self.infix(d, " && ", P_AND, outer),
            DeclKind::Or => self.infix(d, " || ", P_OR, outer),
            DeclKind::Implies => self.infix(d, " => ", P_IMPLIES, outer),
            DeclKind::Not => self.negation(&ch[0], outer),
            DeclKind::Eq | DeclKind::Iff => self.infix(d, " == ", P_CMP, outer),
            DeclKind::Distinct if ch.len() == 2 => self.infix(d, " != ", P_CMP, outer),
            DeclKind::Le => self.infix(d, " <= ", P_CMP, outer),
            DeclKind::Ge => self.infix(d, " >= ", P_CMP, outer),
            DeclKind::Lt => self.infix(d, " < ", P_CMP, outer),
            DeclKind::Gt => self.infix(d, " > ", P_CMP, outer),
            DeclKind::Add => self.infix(d, " + ", P_ADD, outer),
            DeclKind::Sub => self.infix(d, " - ", P_ADD, outer),
            DeclKind::Mul => self.infix(d, " * ", P_MUL, outer),
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
            let flipped = match inner.decl().kind() {
                DeclKind::Eq | DeclKind::Iff => Some(" != "),
                DeclKind::Le => Some(" > "),
                DeclKind::Ge => Some(" < "),
                DeclKind::Lt => Some(" >= "),
                DeclKind::Gt => Some(" <= "),
                _ => None,
            };
            if let Some(op) = flipped {
                return self.infix(inner, op, P_CMP, outer);
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
