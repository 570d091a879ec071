//! Which call sets to analyze: the `-f/--functions` grammar.
//!
//! ```text
//! spec   := item ("," item)*
//! item   := "!"? term
//! term   := "*" | name | set | "{" spec "}"
//! set    := name ("/" name)+          (an explicit call set; braces expand: {a,b}/c)
//! ```
//!
//! Names and `*` add calls to a pool; every combination (with repetition) of `n` pool calls is a
//! call set. Explicit sets are added as they are. `!` removes: `!name` every set containing the
//! call, `!a/b` that exact set. Without a spec the pool is the model's default calls.

use std::collections::BTreeSet;

use thiserror::Error;

/// A call set: indices into the model's calls, sorted (commutativity is symmetric).
pub type CallSet = Vec<usize>;

/// A malformed or unknown `-f` expression.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectError {
    #[error("unknown call `{name}` in `{spec}`; the model's calls are: {known}")]
    UnknownCall {
        name: String,
        spec: String,
        known: String,
    },
    #[error("malformed call selection `{spec}` at character {position}: {problem}")]
    Malformed {
        spec: String,
        position: usize,
        problem: String,
    },
    #[error("the call selection `{spec}` selects no call set; check the names and `!` exclusions")]
    Empty { spec: String },
    #[error("--ncomb must be at least 1 (got {0})")]
    BadSize(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    All,
    Names(Vec<String>),
    Sets(Vec<Vec<String>>),
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    negated: bool,
    term: Term,
}

struct Parser<'a> {
    spec: &'a str,
    chars: Vec<char>,
    pos: usize,
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
            position: self.pos + 1,
            problem: problem.into(),
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

    fn spec_list(&mut self) -> Result<Vec<Item>, SelectError> {
        let mut items = vec![self.item()?];
        loop {
            self.skip_spaces();
            if !self.eat(',') {
                return Ok(items);
            }
            items.push(self.item()?);
        }
    }

    fn item(&mut self) -> Result<Item, SelectError> {
        self.skip_spaces();
        let negated = self.eat('!');
        let term = self.term()?;
        Ok(Item { negated, term })
    }

    /// A term: `*`, or one or more `/`-joined alternatives (names or `{..}` groups).
    fn term(&mut self) -> Result<Term, SelectError> {
        self.skip_spaces();
        if self.eat('*') {
            return Ok(Term::All);
        }
        let mut parts = vec![self.alternatives()?];
        self.skip_spaces();
        while self.eat('/') {
            parts.push(self.alternatives()?);
            self.skip_spaces();
        }
        if parts.len() == 1 {
            let names = parts.pop().unwrap_or_default();
            return Ok(Term::Names(names));
        }
        Ok(Term::Sets(cartesian(&parts)))
    }

    /// A name, or `{spec}` standing for the names it lists.
    fn alternatives(&mut self) -> Result<Vec<String>, SelectError> {
        self.skip_spaces();
        if self.eat('{') {
            let items = self.spec_list()?;
            self.skip_spaces();
            if !self.eat('}') {
                return Err(self.error("expected `}` to close the group"));
            }
            let mut names = Vec::new();
            for item in items {
                match (item.negated, item.term) {
                    (false, Term::Names(n)) => names.extend(n),
                    _ => return Err(self.error("a `{..}` group may only list call names")),
                }
            }
            return Ok(names);
        }
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(match self.peek() {
                Some(c) => self.error(format!("expected a call name, `*` or `{{`, found `{c}`")),
                None => self.error("expected a call name, `*` or `{`, found the end"),
            });
        }
        Ok(vec![self.chars[start..self.pos].iter().collect()])
    }
}

fn cartesian(parts: &[Vec<String>]) -> Vec<Vec<String>> {
    parts.iter().fold(vec![Vec::new()], |acc, alts| {
        acc.iter()
            .flat_map(|prefix| {
                alts.iter().map(move |a| {
                    let mut v = prefix.clone();
                    v.push(a.clone());
                    v
                })
            })
            .collect()
    })
}

/// The call sets selected by `spec` (or the defaults), in canonical order.
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
        Some(s) => {
            let mut p = Parser::new(s);
            let items = p.spec_list()?;
            p.skip_spaces();
            if p.pos != p.chars.len() {
                return Err(p.error(format!("unexpected `{}`", p.chars[p.pos])));
            }
            items
        }
    };
    let lookup = |name: &str| {
        calls
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| SelectError::UnknownCall {
                name: name.to_string(),
                spec: spec.unwrap_or_default().to_string(),
                known: calls.join(", "),
            })
    };
    let mut pool = BTreeSet::new();
    let mut explicit = BTreeSet::new();
    let mut banned_calls = BTreeSet::new();
    let mut banned_sets = BTreeSet::new();
    let has_positive = items.iter().any(|i| !i.negated);
    if !has_positive {
        pool.extend((0..calls.len()).filter(|&i| default[i]));
    }
    for item in &items {
        match (&item.term, item.negated) {
            (Term::All, false) => pool.extend(0..calls.len()),
            (Term::All, true) => banned_calls.extend(0..calls.len()),
            (Term::Names(names), neg) => {
                for name in names {
                    let i = lookup(name)?;
                    if neg {
                        banned_calls.insert(i);
                    } else {
                        pool.insert(i);
                    }
                }
            }
            (Term::Sets(sets), neg) => {
                for set in sets {
                    let mut ids = set
                        .iter()
                        .map(|n| lookup(n))
                        .collect::<Result<Vec<_>, _>>()?;
                    ids.sort_unstable();
                    if neg {
                        banned_sets.insert(ids);
                    } else {
                        explicit.insert(ids);
                    }
                }
            }
        }
    }
    let pool: Vec<usize> = pool.into_iter().collect();
    let mut sets: BTreeSet<CallSet> = combinations_with_repetition(&pool, n).collect();
    sets.extend(explicit);
    let selected: Vec<CallSet> = sets
        .into_iter()
        .filter(|s| !banned_sets.contains(s) && !s.iter().any(|c| banned_calls.contains(c)))
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty {
            spec: spec.unwrap_or("(default)").to_string(),
        });
    }
    Ok(selected)
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
mod tests {
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
    }

    #[test]
    fn explicit_sets_and_groups() {
        assert_eq!(sel(Some("stat/open"), 2), ["open/stat"]);
        assert_eq!(
            sel(Some("{open,close}/stat"), 2),
            ["open/stat", "stat/close"]
        );
        assert_eq!(sel(Some("open/stat/close"), 2), ["open/stat/close"]);
        assert_eq!(sel(Some("stat,{open,close}/sync"), 2).len(), 3);
        assert_eq!(sel(Some("open"), 3), ["open/open/open"]);
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = select_call_sets(CALLS, DEFAULT, Some("open,bogus"), 2).unwrap_err();
        assert!(e.to_string().contains("unknown call `bogus`"), "{e}");
        assert!(e.to_string().contains("open, stat, close, sync"), "{e}");
        let e = select_call_sets(CALLS, DEFAULT, Some("open/"), 2).unwrap_err();
        assert_eq!(
            e,
            SelectError::Malformed {
                spec: "open/".into(),
                position: 6,
                problem: "expected a call name, `*` or `{`, found the end".into()
            }
        );
        let e = select_call_sets(CALLS, DEFAULT, Some("{open,stat"), 2).unwrap_err();
        assert!(e.to_string().contains("expected `}`"), "{e}");
        let e = select_call_sets(CALLS, DEFAULT, Some("open,!open"), 2).unwrap_err();
        assert!(matches!(e, SelectError::Empty { .. }));
        assert_eq!(
            select_call_sets(CALLS, DEFAULT, None, 0).unwrap_err(),
            SelectError::BadSize(0)
        );
    }
}
