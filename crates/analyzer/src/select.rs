//! Which call sets to analyze: the `-f/--functions` grammar.
//!
//! ```text
//! spec   := item ("," item)*
//! item   := "!"? term
//! term   := alt ("/" alt)*          (one alt: calls for the pool; several: explicit call sets)
//! alt    := "*" | name | "{" group "}"
//! group  := alt ("," alt)*           (the calls it lists: names, `*`, nested groups)
//! ```
//!
//! `*` stands for every call of the model (those left out by default too) wherever a call name
//! may stand. A term of one alternative adds its calls to a pool; every combination (with
//! repetition) of `n` pool calls is a call set. A term of several alternatives joined by `/`
//! is the explicit call sets of their product, one call from each, in the order written
//! (`open/*` is open with every call, `{open,stat}/close` is open/close and stat/close). `!`
//! removes: `!name` (or `!{..}`, `!*`) every set containing one of the calls, `!a/b` those exact
//! sets. Without a positive item the pool is the model's default calls.
//!
//! A call set is a multiset: `open/stat` and `stat/open` are one set, analysed once, in the
//! order the first explicit mention wrote it (pool combinations: the model's call order).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

/// A call set: indices into the model's calls, in the order the user wrote them (pool
/// combinations: the model's order). The order names the slots (`a`, `b`, ...) only:
/// commutativity is symmetric.
pub type CallSet = Vec<usize>;

/// A malformed or unknown `-f` expression.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectError {
    #[error(
        "unknown call `{name}` at column {column} of the call selection `{spec}`; the model's \
         calls are: {known}\n{}",
        caret(spec, *column)
    )]
    UnknownCall {
        name: String,
        spec: String,
        /// 1-based, in characters.
        column: usize,
        known: String,
    },
    #[error(
        "malformed call selection `{spec}` at column {column}: {problem}\n{}",
        caret(spec, *column)
    )]
    Malformed {
        spec: String,
        /// 1-based, in characters.
        column: usize,
        problem: String,
    },
    #[error("the call selection `{spec}` selects no call set; check the names and `!` exclusions")]
    Empty { spec: String },
    #[error("--ncomb must be at least 1 (got {0})")]
    BadSize(usize),
}

/// The spec on one line and a caret under `column` on the next.
fn caret(spec: &str, column: usize) -> String {
    format!("  {spec}\n  {}^", " ".repeat(column.saturating_sub(1)))
}

/// One call name as written, or `*`.
#[derive(Debug, Clone, PartialEq)]
enum Name {
    All,
    Call { name: String, column: usize },
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    negated: bool,
    /// One alternative per `/`-joined position; each lists the calls it stands for.
    alts: Vec<Vec<Name>>,
}

struct Parser<'a> {
    spec: &'a str,
    chars: Vec<char>,
    pos: usize,
}

/// What may start an alternative, for messages.
const ALT_START: &str = "a call name, `*` or `{`";

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.'
}

impl<'a> Parser<'a> {
    fn new(spec: &'a str) -> Self {
        Parser {
            spec,
            chars: spec.chars().collect(),
            pos: 0,
        }
    }

    fn error(&self, problem: impl Into<String>) -> SelectError {
        SelectError::Malformed {
            spec: self.spec.to_string(),
            column: self.pos + 1,
            problem: problem.into(),
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("found `{c}`"),
            None => "found the end".to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// The whole spec, up to its end.
    fn spec(&mut self) -> Result<Vec<Item>, SelectError> {
        let mut items = vec![self.item()?];
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return Ok(items),
                Some(',') => {
                    self.pos += 1;
                    items.push(self.item()?);
                }
                Some('}') => {
                    return Err(self.error("unexpected `}`: no `{` group is open here; remove it"));
                }
                Some(c) => {
                    return Err(self.error(format!(
                        "unexpected `{c}` after a complete item; separate items with `,` and \
                         join the calls of a set with `/` (e.g. `open,stat` or `open/stat`)"
                    )));
                }
            }
        }
    }

    fn item(&mut self) -> Result<Item, SelectError> {
        self.skip_spaces();
        let starts_item = |c: char| is_name_char(c) || matches!(c, '*' | '{' | '!');
        if !self.peek().is_some_and(starts_item) {
            return Err(self.error(format!(
                "expected a call name, `*`, `{{` or `!` to start an item, {}",
                self.found()
            )));
        }
        let negated = self.eat('!');
        let mut alts = vec![self.alt("after `!`")?];
        self.skip_spaces();
        while self.eat('/') {
            alts.push(self.alt("after `/`")?);
            self.skip_spaces();
        }
        Ok(Item { negated, alts })
    }

    /// An alternative: `*`, a name or a `{..}` group; `context` says where it stands, for
    /// messages.
    fn alt(&mut self, context: &str) -> Result<Vec<Name>, SelectError> {
        self.skip_spaces();
        if self.eat('*') {
            return Ok(vec![Name::All]);
        }
        if self.eat('{') {
            return self.group();
        }
        let start = self.pos;
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        if start == self.pos {
            let extra = if self.peek() == Some('!') {
                " (`!` goes once, at the start of an item: `!open`, `!open/stat`)"
            } else {
                ""
            };
            return Err(self.error(format!(
                "expected {ALT_START} {context}, {}{extra}",
                self.found()
            )));
        }
        Ok(vec![Name::Call {
            name: self.chars[start..self.pos].iter().collect(),
            column: start + 1,
        }])
    }

    /// After `{`: alternatives separated by `,`, up to `}`.
    fn group(&mut self) -> Result<Vec<Name>, SelectError> {
        let mut names = Vec::new();
        loop {
            self.skip_spaces();
            if self.peek() == Some('!') {
                return Err(self.error(
                    "`!` cannot stand inside a `{..}` group; exclude outside it (e.g. `*,!open`)",
                ));
            }
            if self.peek().is_none() || self.peek() == Some('}') || self.peek() == Some(',') {
                return Err(self.error(format!(
                    "expected {ALT_START} inside the `{{..}}` group, {}",
                    self.found()
                )));
            }
            names.extend(self.alt("inside the `{..}` group")?);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    return Ok(names);
                }
                Some('/') => {
                    return Err(self.error(
                        "a `{..}` group lists alternatives for one call, not call sets; put the \
                         `/` outside it (e.g. `{open,stat}/close`)",
                    ));
                }
                None => {
                    return Err(self.error("expected `}` to close the group, found the end"));
                }
                Some(c) => {
                    return Err(self.error(format!(
                        "expected `,` or `}}` inside the `{{..}}` group, found `{c}`"
                    )));
                }
            }
        }
    }
}

/// The call sets selected by `spec` (or the defaults): ordered by their calls as a multiset in
/// the model's order, each in the order first written (see the module documentation).
///
/// `calls` are the model's call names in order; `default` says which are in the default pool.
pub fn select_call_sets(
    calls: &[&str],
    default: &[bool],
    spec: Option<&str>,
    n: usize,
) -> Result<Vec<CallSet>, SelectError> {
    if n == 0 {
        return Err(SelectError::BadSize(n));
    }
    let items = match spec {
        None => Vec::new(),
        Some(s) => Parser::new(s).spec()?,
    };
    let resolve = |names: &[Name]| -> Result<Vec<usize>, SelectError> {
        let mut ids = Vec::new();
        for name in names {
            match name {
                Name::All => ids.extend(0..calls.len()),
                Name::Call { name, column } => {
                    let i = calls.iter().position(|c| c == name).ok_or_else(|| {
                        SelectError::UnknownCall {
                            name: name.clone(),
                            spec: spec.unwrap_or_default().to_string(),
                            column: *column,
                            known: calls.join(", "),
                        }
                    })?;
                    ids.push(i);
                }
            }
        }
        // A group may list a call twice (`{open,*}`): it stands for it once.
        let mut seen = BTreeSet::new();
        ids.retain(|i| seen.insert(*i));
        Ok(ids)
    };
    let mut pool = BTreeSet::new();
    // Keyed by the sorted calls: a set is one multiset, kept in the order first written.
    let mut explicit: BTreeMap<CallSet, CallSet> = BTreeMap::new();
    let mut banned_calls = BTreeSet::new();
    let mut banned_sets = BTreeSet::new();
    let has_positive = items.iter().any(|i| !i.negated);
    if !has_positive {
        pool.extend((0..calls.len()).filter(|&i| default.get(i).copied().unwrap_or(false)));
    }
    for item in &items {
        let alts = item
            .alts
            .iter()
            .map(|a| resolve(a))
            .collect::<Result<Vec<_>, _>>()?;
        if let [only] = alts.as_slice() {
            if item.negated {
                banned_calls.extend(only.iter().copied());
            } else {
                pool.extend(only.iter().copied());
            }
            continue;
        }
        for set in cartesian(&alts) {
            let key = sorted(&set);
            if item.negated {
                banned_sets.insert(key);
            } else {
                explicit.entry(key).or_insert(set);
            }
        }
    }
    let pool: Vec<usize> = pool.into_iter().collect();
    let mut sets = explicit;
    for combo in combinations_with_repetition(&pool, n) {
        sets.entry(combo.clone()).or_insert(combo);
    }
    let selected: Vec<CallSet> = sets
        .into_iter()
        .filter(|(key, _)| {
            !banned_sets.contains(key) && !key.iter().any(|c| banned_calls.contains(c))
        })
        .map(|(_, set)| set)
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty {
            spec: spec.unwrap_or("(default)").to_string(),
        });
    }
    Ok(selected)
}

fn sorted(set: &[usize]) -> CallSet {
    let mut key = set.to_vec();
    key.sort_unstable();
    key
}

fn cartesian(parts: &[Vec<usize>]) -> Vec<CallSet> {
    parts.iter().fold(vec![Vec::new()], |acc, alts| {
        acc.iter()
            .flat_map(|prefix| {
                alts.iter().map(move |a| {
                    let mut v = prefix.clone();
                    v.push(*a);
                    v
                })
            })
            .collect()
    })
}

/// [`select_call_sets`] over a model's calls and default call set.
pub fn select_model_call_sets(
    model: &dyn commuter_engine::DynModel,
    spec: Option<&str>,
    n: usize,
) -> Result<Vec<CallSet>, SelectError> {
    let info = model.call_info();
    let names: Vec<&str> = info.iter().map(|c| c.name).collect();
    let defaults: Vec<bool> = info.iter().map(|c| c.default).collect();
    select_call_sets(&names, &defaults, spec, n)
}

/// Sorted multisets of size `n` drawn from `pool` (itself sorted), in lexicographic order.
fn combinations_with_repetition(pool: &[usize], n: usize) -> impl Iterator<Item = CallSet> + '_ {
    let mut idx = vec![0usize; n];
    let mut done = pool.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let out: CallSet = idx.iter().map(|&i| pool[i]).collect();
        // Advance: the rightmost index that can grow grows, those after it copy it.
        match (0..n).rev().find(|&k| idx[k] + 1 < pool.len()) {
            Some(k) => {
                let v = idx[k] + 1;
                idx[k..].iter_mut().for_each(|x| *x = v);
            }
            None => done = true,
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests;
