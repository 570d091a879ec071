//! Turning symbolic values into concrete ones, for test generation.
//!
//! A [`Concretizer`] evaluates values in one Z3 model of a path condition and remembers what it
//! read: the boolean facts, and for each *namespace* (file names, inodes, per-process fds, ...)
//! which terms it met and which of them were equal. That record is the test's isomorphism
//! class: two tests with the same boolean facts and the same equality pattern in every
//! namespace exercise the same situation, whatever the concrete values.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use z3::Model as ZModel;
use z3::ast::{Ast, Bool as ZBool, Dynamic};

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

/// Evaluates values in a model of the path condition and records the test's isomorphism class.
pub struct Concretizer<'m> {
    model: &'m ZModel,
    facts: Vec<(ZBool, bool)>,
    namespaces: BTreeMap<String, Namespace>,
    pool: &'m dyn Fn(&str) -> Pool,
    /// While set, nothing read counts for the class (see [`Concretizer::quietly`]).
    quiet: bool,
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
            model,
            facts: Vec::new(),
            namespaces: BTreeMap::new(),
            pool,
            quiet: false,
        }
    }

    /// Run `f` with reads that do not count for the test's class: values that follow from the
    /// situation (expected results, internal choices) must not split it into more tests. Labels
    /// stay consistent, and values met here still appear in later state descriptions.
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
        if b.0.as_bool().is_none() && !self.quiet {
            self.facts.push((b.0.clone(), v));
        }
        v
    }

    /// The value of an integer, not part of the class (data, lengths, times).
    pub fn int(&mut self, i: &Int) -> i64 {
        self.model
            .eval(&i.0, true)
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
    }

    /// The index of `term`'s value among the distinct values met in `namespace` (0, 1, ...):
    /// the equality pattern, not the value, is part of the class.
    pub fn label<K: Key>(&mut self, namespace: &str, v: &K) -> Result<usize, PoolExhausted> {
        let term = v.key_ast();
        let value = self.model.eval(&term, true).unwrap_or_else(|| term.clone());
        let pool = (self.pool)(namespace);
        let ns = self
            .namespaces
            .entry(namespace.to_string())
            .or_insert_with(|| Namespace {
                enumerated: pool.enumerated,
                classes: Vec::new(),
            });
        let index = match ns.classes.iter().position(|(val, _)| *val == value) {
            Some(i) => i,
            None => {
                ns.classes.push((value, Vec::new()));
                ns.classes.len() - 1
            }
        };
        let counts = !self.quiet;
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

    /// The class of the test built so far, restricted to facts and terms that mention one of
    /// `relevant` (constants of the non-assumption part of the path condition): a formula that
    /// holds exactly for tests of the same class.
    pub fn class_formula(&self, relevant: &dyn Fn(&Dynamic) -> bool) -> ZBool {
        let mut parts: Vec<ZBool> = Vec::new();
        for (fact, v) in &self.facts {
            if relevant(&Dynamic::from_ast(fact)) {
                parts.push(if *v { fact.clone() } else { fact.not() });
            }
        }
        for ns in self.namespaces.values().filter(|ns| ns.enumerated) {
            let reps: Vec<&Dynamic> = ns
                .classes
                .iter()
                .filter_map(|(_, terms)| {
                    let kept: Vec<&Dynamic> = terms
                        .iter()
                        .filter(|(t, counts)| *counts && relevant(t))
                        .map(|(t, _)| t)
                        .collect();
                    for pair in kept.windows(2) {
                        parts.push(Ast::eq(pair[0], pair[1]));
                    }
                    kept.first().copied()
                })
                .collect();
            for (i, a) in reps.iter().enumerate() {
                for b in &reps[i + 1..] {
                    parts.push(Ast::ne(*a, *b));
                }
            }
        }
        ZBool::and(&parts)
    }
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
