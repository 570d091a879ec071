//! Hash containers that iterate, and drop their contents, in the same order in every run.
//!
//! Z3 gives a new term the id of a freed one, so the order in which terms are released decides
//! the ids of the terms made after, and term ids steer Z3's search (argument order, variable
//! order, which instantiation comes first): with std's per-process random hash seeds, dropping
//! a set of terms made one run of `open/open/open` explore in 28 s and another hang in a
//! quantifier instantiation loop. Any hash container that holds terms, or values holding terms,
//! is one of these.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher};

/// A hasher with fixed keys (the same for every container of one build).
pub type StableHasher = BuildHasherDefault<DefaultHasher>;
/// A `HashMap` whose order depends only on its keys' hashes and history.
pub type StableHashMap<K, V> = HashMap<K, V, StableHasher>;
/// A `HashSet` whose order depends only on its elements' hashes and history.
pub type StableHashSet<T> = HashSet<T, StableHasher>;
