//! Symbolic execution of interface models written in ordinary Rust, on the Z3 SMT solver.
//!
//! A model is plain Rust over symbolic values: [`Bool`], [`Int`], uninterpreted sorts
//! ([`uninterpreted!`]), structs (`#[derive(Symbolic)]`, `#[derive(Value)]`) and collections
//! ([`PartialMap`], [`TotalMap`], [`SmallList`], [`Set`], [`Bag`]). When the model branches on a
//! symbolic condition, [`explore`] runs it once for every feasible side, so a model function
//! yields the set of all its paths, each with its path condition.
//!
//! Functions marked `#[symbolic]` may write `if cond { .. }` with a symbolic `cond`; elsewhere
//! write `if cond.branch() { .. }`.
//!
//! Invariant: this crate does no IO. Z3 terms belong to the thread (context) that made them;
//! only plain data crosses threads.

mod collections;
mod concrete;
mod error;
mod exec;
mod model;
mod pretty;
mod stable;
mod value;

pub use collections::{Bag, PartialMap, Set, SmallList, TotalMap};
pub use commuter_engine_derive::{SymEq, Symbolic, Value, symbolic};
pub use concrete::{Canonical, Class, Concrete, Concretizer, Pool, PoolExhausted, concrete_label};
pub use error::EngineError;
pub use exec::{
    Constraint, ConstraintKind, Exploration, ExploreOptions, ExploreStats, Path, ScopedSolver,
    assume, branch_exists_internals, branch_exists_internals_since, current_thread, explore,
    explore_from, exploring, fresh_name, internals_mark, invariant, may_hold,
    preconditions_as_branches, set_current_thread, side_solver, situation_term, with_fresh_context,
};
pub use model::{AnyState, Call, CallInfo, CallResult, DynModel, Instance, Model};
pub use pretty::{Condition, ConditionPrinter, render};
/// JSON values, as concrete tests are written.
pub use serde_json;
pub use stable::{StableHashMap, StableHashSet};
pub use value::{
    Bool, Decide, Int, IntoInt, Key, SymEq, Symbolic, Value, fresh_value, layout_consts, next_leaf,
    uninterpreted_sort,
};
/// The Z3 bindings, for derived code and for users who need raw terms.
pub use z3;
