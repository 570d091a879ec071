//! Turning symbolic values into concrete ones, for test generation.
//!
//! A [`Concretizer`] evaluates values in one Z3 model of a path condition and remembers what it
//! read: the boolean facts, and for each *namespace* (file names, inodes, per-process fds, ...)
//! which terms it met and which of them were equal. That record is the test's isomorphism
//! class: two tests with the same boolean facts and the same equality pattern in every
//! namespace exercise the same situation, whatever the concrete values.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use z3::ast::{Ast, Bool as ZBool, Dynamic};
use z3::{Model as ZModel, SatResult, Solver};

use crate::pretty::render;
use crate::value::{Bool, Int, Key};

/// A namespace ran out of concrete values (the test cannot be built; the run goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pool of {namespace} values has only {capacity}; this test needs more")]
pub struct PoolExhausted {
    pub namespace: String,
    pub capacity: usize,
}

/// How a model treats one namespace of concrete values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// How many distinct values a test may use (`None`: unbounded).
    pub capacity: Option<usize>,
    /// Whether the equality pattern of the namespace is part of a test's class. Data values
    /// usually are not: which page holds which bytes rarely changes what is shared.
    pub enumerated: bool,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            capacity: None,
            enumerated: true,
        }
    }
}

/// Integers tried for values that are not part of a test's class: 0..=8, then -1..=-8
/// (negative arguments: the EINVAL paths).
const SMALL_INTS: [i64; 17] = [0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8];

/// Makes the class a test gets independent of which model the solver happened to return:
/// every fact the test reads is decided in reading order, `false` (or "a new value") whenever
/// the facts decided before allow it. Z3's models differ between runs; these decisions do not.
///
/// The decisions live in a scope of their own on the enumeration's solver, asserted once each
/// as they are made ([`Canonical::open`] pushes it, [`Canonical::close`] pops it): a check
/// never re-asserts them, and the solver keeps what it learnt from one check to the next.
///
/// A decision against the model in use comes with a model of every decision so far (the check
/// that proved it possible found one): the build goes on in that model, since every value it
/// read before is pinned by a decision the new model keeps. Only after a read no decision pins
/// (an integer outside the small ones) is the build stale and started again.
pub struct Canonical {
    decided: Vec<(ZBool, bool)>,
    /// A decision contradicted the model in use: build the test again from a new model.
    stale: bool,
}

impl Canonical {
    /// Open the scope of one test's decisions on `solver` (which holds the path condition and
    /// the blocked classes): until [`Canonical::close`], nothing else may be asserted on it.
    pub fn open(solver: &Solver) -> Self {
        solver.push();
        Canonical {
            decided: Vec::new(),
            stale: false,
        }
    }

    /// Drop the decisions from `solver` (the one [`Canonical::open`] was given).
    pub fn close(self, solver: &Solver) {
        solver.pop(1);
    }

    /// Whether the last build read a fact against a decision (then call [`Canonical::model`]).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// A model of `solver`'s assertions (the path condition and blocked classes) and every
    /// decision so far.
    pub fn model(&mut self, solver: &Solver) -> Option<ZModel> {
        self.stale = false;
        match solver.check() {
            SatResult::Sat => solver.get_model(),
            _ => None,
        }
    }

    fn record(&mut self, solver: &Solver, atom: &ZBool, v: bool) {
        solver.assert(if v { atom.clone() } else { atom.not() });
        self.decided.push((atom.clone(), v));
    }

    /// Decide `atom`, which is `in_model` in the model in use; `prefer` wins where the
    /// decisions so far allow it. Returns the decision, and where it goes against the model in
    /// use and `may_switch`, a model of every decision to go on with.
    fn decide(
        &mut self,
        solver: &Solver,
        atom: &ZBool,
        in_model: bool,
        prefer: bool,
        may_switch: bool,
    ) -> (bool, Option<ZModel>) {
        if self.stale {
            // The model in use contradicts a decision: what it says decides nothing more.
            return (in_model, None);
        }
        if let Some((_, v)) = self.decided.iter().find(|(a, _)| a == atom) {
            self.stale |= *v != in_model;
            return (*v, None);
        }
        if in_model == prefer {
            self.record(solver, atom, prefer);
            return (prefer, None);
        }
        // The model disagrees: the preferred value wins if the decisions so far allow it.
        solver.push();
        solver.assert(if prefer { atom.clone() } else { atom.not() });
        let possible = solver.check() == SatResult::Sat;
        let switched = if possible && may_switch {
            solver.get_model()
        } else {
            None
        };
        solver.pop(1);
        self.record(solver, atom, if possible { prefer } else { in_model });
        self.stale |= possible && switched.is_none();
        (if possible { prefer } else { in_model }, switched)
    }
}

/// Evaluates values in a model of the path condition and records the test's isomorphism class.
pub struct Concretizer<'m> {
    model: InUse<'m>,
    /// A value read so far is the model's, not pinned by a decision (see [`Canonical`]).
    unpinned: bool,
    facts: Vec<(ZBool, bool)>,
    namespaces: BTreeMap<String, Namespace>,
    pool: &'m dyn Fn(&str) -> Pool,
    /// While set, nothing read counts for the class (see [`Concretizer::quietly`]).
    quiet: bool,
    canonical: Option<(&'m mut Canonical, &'m Solver)>,
}

/// The model a build reads: the one it started from, or one a decision switched to.
enum InUse<'m> {
    First(&'m ZModel),
    Switched(ZModel),
}

impl std::ops::Deref for InUse<'_> {
    type Target = ZModel;
    fn deref(&self) -> &ZModel {
        match self {
            InUse::First(m) => m,
            InUse::Switched(m) => m,
        }
    }
}

#[derive(Default)]
struct Namespace {
    enumerated: bool,
    /// Each distinct model value met, in order of first appearance, with the terms that had
    /// it (and whether each term counts for the class).
    classes: Vec<(Dynamic, Vec<(Dynamic, bool)>)>,
}

impl<'m> Concretizer<'m> {
    /// `pool(namespace)` says how the model treats each namespace.
    pub fn new(model: &'m ZModel, pool: &'m dyn Fn(&str) -> Pool) -> Self {
        Concretizer {
            model: InUse::First(model),
            unpinned: false,
            facts: Vec::new(),
            namespaces: BTreeMap::new(),
            pool,
            quiet: false,
            canonical: None,
        }
    }

    /// Like [`Concretizer::new`], deciding every fact through `canonical` on top of what
    /// `solver` holds.
    pub fn canonical(
        model: &'m ZModel,
        pool: &'m dyn Fn(&str) -> Pool,
        canonical: &'m mut Canonical,
        solver: &'m Solver,
    ) -> Self {
        Concretizer {
            canonical: Some((canonical, solver)),
            ..Concretizer::new(model, pool)
        }
    }

    /// Decide `atom` canonically (see [`Canonical`]); the value the build goes on with.
    fn decide(&mut self, atom: &ZBool, in_model: bool, prefer: bool) -> bool {
        let may_switch = !self.unpinned;
        let Some((c, solver)) = self.canonical.as_mut() else {
            return in_model;
        };
        let (value, switched) = c.decide(solver, atom, in_model, prefer, may_switch);
        if let Some(model) = switched {
            self.switch_to(model);
        }
        value
    }

    /// Go on in `model`, which keeps every decision: the values met so far are re-read in it
    /// (their equalities are decided, so each namespace keeps its classes).
    fn switch_to(&mut self, model: ZModel) {
        for ns in self.namespaces.values_mut() {
            for (value, terms) in &mut ns.classes {
                if let Some((term, _)) = terms.first() {
                    *value = model.eval(term, true).unwrap_or_else(|| term.clone());
                }
            }
        }
        self.model = InUse::Switched(model);
    }

    /// Whether a fact read so far contradicts a canonical decision (see [`Canonical`]).
    pub fn is_stale(&self) -> bool {
        self.canonical.as_ref().is_some_and(|(c, _)| c.is_stale())
    }

    /// Run `f` with reads that do not count for the test's class: values that follow from the
    /// situation (expected results, internal choices) must not split it into more tests. Labels
    /// stay consistent, and values met here still appear in later state descriptions. With
    /// canonical decisions, quiet reads are decided like the others (only the class ignores
    /// them), so what a test shows never depends on the solver's model.
    pub fn quietly<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let was = std::mem::replace(&mut self.quiet, true);
        let out = f(self);
        self.quiet = was;
        out
    }

    /// The value of a condition; the fact is part of the test's class.
    pub fn bool(&mut self, b: &Bool) -> bool {
        let v = self
            .model
            .eval(&b.0, true)
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if b.0.as_bool().is_none() {
            // Quiet facts are decided too (they do not count for the class): otherwise the
            // value a test shows would be whatever the solver's model says.
            let v = self.decide(&b.0, v, false);
            if !self.quiet {
                self.facts.push((b.0.clone(), v));
            }
            return v;
        }
        v
    }

    /// The value of a condition that is not part of the class (a data page being the zero
    /// page), decided canonically (`prefer` where the decisions allow it).
    pub fn incidental_bool(&mut self, b: &Bool, prefer: bool) -> bool {
        let in_model = self
            .model
            .eval(&b.0, true)
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if b.0.as_bool().is_none() {
            return self.decide(&b.0, in_model, prefer);
        }
        in_model
    }

    /// The value of an integer, not part of the class (data, lengths, times). With canonical
    /// decisions the first of 0..=8, -1..=-8 the decisions allow is taken, so incidental
    /// values do not depend on the solver's model either (a larger value stays as the model
    /// has it).
    pub fn int(&mut self, i: &Int) -> i64 {
        if i.as_const().is_none() && self.canonical.is_some() {
            let mut pinned = false;
            for candidate in SMALL_INTS {
                let in_model = self.model_int(i) == candidate;
                let atom = i.eq(candidate).0;
                self.decide(&atom, in_model, true);
                if self.is_decided(&atom) {
                    pinned = true;
                    break;
                }
            }
            self.unpinned |= !pinned;
        }
        self.model_int(i)
    }

    fn model_int(&self, i: &Int) -> i64 {
        self.model
            .eval(&i.0, true)
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }

    /// Whether `atom` was decided true (or the canonical build went stale).
    fn is_decided(&self, atom: &ZBool) -> bool {
        match &self.canonical {
            Some((c, _)) => c.stale || c.decided.iter().any(|(a, v)| a == atom && *v),
            None => true,
        }
    }

    /// The index of `term`'s value among the distinct values met in `namespace` (0, 1, ...):
    /// the equality pattern, not the value, is part of the class.
    pub fn label<K: Key>(&mut self, namespace: &str, v: &K) -> Result<usize, PoolExhausted> {
        let term = v.key_ast();
        let pool = (self.pool)(namespace);
        let counts = !self.quiet;
        let (index, value) = loop {
            let value = self.model.eval(&term, true).unwrap_or_else(|| term.clone());
            let ns = self
                .namespaces
                .entry(namespace.to_string())
                .or_insert_with(|| Namespace {
                    enumerated: pool.enumerated,
                    classes: Vec::new(),
                });
            let index = ns
                .classes
                .iter()
                .position(|(val, _)| *val == value)
                .unwrap_or(ns.classes.len());
            let met = ns
                .classes
                .get(index)
                .is_some_and(|(_, terms)| terms.iter().any(|(t, _)| *t == term));
            if met || !self.decide_class(namespace, &term, index) {
                break (index, value);
            }
            // A decision switched the model: find the term's class again in the new one.
        };
        let ns = self
            .namespaces
            .get_mut(namespace)
            .expect("namespace inserted above");
        if index == ns.classes.len() {
            ns.classes.push((value, Vec::new()));
        }
        let terms = &mut ns.classes[index].1;
        match terms.iter_mut().find(|(t, _)| *t == term) {
            Some(entry) => entry.1 |= counts,
            None => terms.push((term, counts)),
        }
        if let Some(cap) = pool.capacity
            && index >= cap
        {
            return Err(PoolExhausted {
                namespace: namespace.to_string(),
                capacity: cap,
            });
        }
        Ok(index)
    }

    /// Decide "equal to the k-th value met" in order, up to `index`, the class the model puts
    /// `term` in: a new value where the namespace counts for classes (more situations), an
    /// old one where it does not (fewer pool values: data pages). Quiet reads (expected
    /// results) are decided as well, and every value met is a candidate, quiet or not: a page
    /// no branch reads equals the data a result returned only where a decision says so, not
    /// where one solver model happened to put it. Whether a decision switched the model.
    fn decide_class(&mut self, namespace: &str, term: &Dynamic, index: usize) -> bool {
        let ns = &self.namespaces[namespace];
        let prefer_equal = !ns.enumerated;
        let reps: Vec<(usize, Dynamic)> = ns
            .classes
            .iter()
            .take(index + 1)
            .enumerate()
            .filter_map(|(k, (_, terms))| terms.first().map(|(t, _)| (k, t.clone())))
            .collect();
        for (k, rep) in &reps {
            let in_model = *k == index;
            let equal = self.decide(&Ast::eq(term, rep), in_model, prefer_equal);
            if equal != in_model && !self.is_stale() {
                return true;
            }
            if in_model {
                break;
            }
        }
        false
    }

    /// An integer whose equality pattern within `namespace` matters but whose value is kept
    /// (offsets within one file): returns the value.
    pub fn int_in(&mut self, namespace: &str, i: &Int) -> Result<i64, PoolExhausted> {
        self.label(namespace, i)?;
        Ok(self.int(i))
    }

    /// The constants of the path's model whose names start with `prefix`, in name order: how a
    /// model finds the witnesses it named for "there is some ..." (e.g. an open pipe end)
    /// so that the test's setup can create them.
    pub fn constants_with_prefix(&self, prefix: &str) -> Vec<Dynamic> {
        let mut found: Vec<(String, Dynamic)> = self
            .model
            .iter()
            .filter(|decl| decl.arity() == 0)
            .map(|decl| (decl.name(), decl.apply(&[])))
            .filter(|(name, _)| name.starts_with(prefix))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(|(_, c)| c).collect()
    }

    /// Whether `v`'s value is one already met in `namespace`. Read only: nothing is decided
    /// or recorded, so a model can ask it to choose what to label next.
    pub fn is_known<K: Key>(&self, namespace: &str, v: &K) -> bool {
        let value = self.model.eval(&v.key_ast(), true);
        self.namespaces.get(namespace).is_some_and(|ns| {
            ns.classes
                .iter()
                .any(|(known, _)| Some(known) == value.as_ref())
        })
    }

    /// Whether `a` and `b` have the same value in the path's model. Read only, like
    /// [`Concretizer::is_known`].
    pub fn same_value<K: Key>(&self, a: &K, b: &K) -> bool {
        let value = |k: &K| self.model.eval(&k.key_ast(), true);
        value(a).is_some_and(|v| Some(v) == value(b))
    }

    /// Every term met in `namespace`, grouped by value, the groups in order of first
    /// appearance (the first term of each is [`Concretizer::known`]'s).
    pub fn known_terms(&self, namespace: &str) -> Vec<Vec<Dynamic>> {
        self.namespaces
            .get(namespace)
            .map(|ns| {
                ns.classes
                    .iter()
                    .map(|(_, terms)| terms.iter().map(|(t, _)| t.clone()).collect())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One term per distinct value met in `namespace`, in order of first appearance.
    pub fn known(&self, namespace: &str) -> Vec<Dynamic> {
        self.namespaces
            .get(namespace)
            .map(|ns| {
                ns.classes
                    .iter()
                    .filter_map(|(_, terms)| terms.first().map(|(t, _)| t.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The class of the test built so far, restricted to the facts and terms `relevant` keeps
    /// (those the path's branch conditions mention): a formula that holds exactly for tests of
    /// the same class, and its readable description.
    pub fn class(&self, relevant: &dyn Fn(&Dynamic) -> bool) -> Class {
        let mut parts: Vec<ZBool> = Vec::new();
        let mut description: Vec<String> = Vec::new();
        let mut seen_facts: Vec<&ZBool> = Vec::new();
        for (fact, v) in &self.facts {
            if seen_facts.contains(&fact) || !relevant(&Dynamic::from_ast(fact)) {
                continue;
            }
            seen_facts.push(fact);
            let part = if *v { fact.clone() } else { fact.not() };
            description.push(render(&part));
            parts.push(part);
        }
        for ns in self.namespaces.values().filter(|ns| ns.enumerated) {
            let groups: Vec<Vec<&Dynamic>> = ns
                .classes
                .iter()
                .map(|(_, terms)| {
                    terms
                        .iter()
                        .filter(|(t, counts)| *counts && relevant(t))
                        .map(|(t, _)| t)
                        .collect::<Vec<_>>()
                })
                .filter(|g| !g.is_empty())
                .collect();
            for g in &groups {
                for pair in g.windows(2) {
                    parts.push(Ast::eq(pair[0], pair[1]));
                }
            }
            for (i, a) in groups.iter().enumerate() {
                for b in &groups[i + 1..] {
                    parts.push(Ast::ne(a[0], b[0]));
                }
            }
            description.extend(pattern_description(&groups));
        }
        Class {
            formula: ZBool::and(&parts),
            description,
        }
    }
}

/// A test's isomorphism class: the formula that blocks it, and the facts and equalities that
/// define it in readable form (every pair of terms of a namespace, so two classes of one path
/// always differ in some line with opposite truth).
pub struct Class {
    pub formula: ZBool,
    pub description: Vec<String>,
}

/// Every pair of relevant terms of one namespace, equal or not (sides in text order).
fn pattern_description(groups: &[Vec<&Dynamic>]) -> Vec<String> {
    let terms: Vec<(usize, String)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, ts)| ts.iter().map(move |t| (g, render(*t))))
        .collect();
    let mut out = Vec::new();
    for (i, (ga, a)) in terms.iter().enumerate() {
        for (gb, b) in &terms[i + 1..] {
            let (x, y) = if a <= b { (a, b) } else { (b, a) };
            let op = if ga == gb { "==" } else { "!=" };
            out.push(format!("{x} {op} {y}"));
        }
    }
    out
}

/// Values that can be shown concretely in a test (arguments, results, states).
pub trait Concrete {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted>;
}

impl Concrete for Bool {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        Ok(json!(cx.bool(self)))
    }
}

impl Concrete for Int {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        Ok(json!(cx.int(self)))
    }
}

impl Concrete for () {
    fn concrete(&self, _: &mut Concretizer) -> Result<Json, PoolExhausted> {
        Ok(Json::Null)
    }
}

macro_rules! concrete_plain {
    ($($t:ty),*) => {$(
        impl Concrete for $t {
            fn concrete(&self, _: &mut Concretizer) -> Result<Json, PoolExhausted> {
                Ok(json!(self))
            }
        }
    )*};
}
concrete_plain!(bool, i32, i64, u32, u64, usize, &'static str, String);

impl<T: Concrete> Concrete for Option<T> {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        match self {
            Some(v) => Ok(json!({ "some": v.concrete(cx)? })),
            None => Ok(json!("none")),
        }
    }
}

impl<T: Concrete, E: Concrete> Concrete for Result<T, E> {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        match self {
            Ok(v) => Ok(json!({ "ok": v.concrete(cx)? })),
            Err(e) => Ok(json!({ "err": e.concrete(cx)? })),
        }
    }
}

impl<T: Concrete> Concrete for Vec<T> {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        self.iter()
            .map(|v| v.concrete(cx))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array)
    }
}

/// The labels of an uninterpreted sort: its namespace is the sort's name.
pub fn concrete_label<K: Key>(
    namespace: &str,
    v: &K,
    cx: &mut Concretizer,
) -> Result<Json, PoolExhausted> {
    Ok(json!(format!("{namespace}{}", cx.label(namespace, v)?)))
}

macro_rules! concrete_tuple {
    ($($n:tt $t:ident),+) => {
        /// A tuple shows as a JSON array of its elements.
        impl<$($t: Concrete),+> Concrete for ($($t,)+) {
            fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
                Ok(Json::Array(vec![$(self.$n.concrete(cx)?),+]))
            }
        }
    };
}
concrete_tuple!(0 A);
concrete_tuple!(0 A, 1 B);
concrete_tuple!(0 A, 1 B, 2 C);
concrete_tuple!(0 A, 1 B, 2 C, 3 D);
