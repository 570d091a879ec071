//! Symbolic scalars (`Bool`, `Int`), uninterpreted sorts, and the traits every symbolic type
//! implements.

use std::any::TypeId;
use std::cell::RefCell;
use std::ops::{Add, BitAnd, BitOr, Mul, Neg, Not, Sub};

use z3::Sort;
use z3::ast::{Ast, Bool as ZBool, Dynamic, Int as ZInt};

use crate::exec;
use crate::stable::StableHashMap;

/// Equality as the model defines it (may differ from structural equality, e.g. a file
/// descriptor that compares only the fields of its kind).
pub trait SymEq {
    fn sym_eq(&self, other: &Self) -> Bool;
}

/// A symbolic type: it can be created fresh (unconstrained, named) and compared.
pub trait Symbolic: SymEq + Clone + 'static {
    /// A fresh value named `name`; the same name gives the same value on every re-execution.
    /// Invariants of the type (list bounds, ...) are assumed on the current path.
    fn fresh(name: &str) -> Self;
}

/// A symbolic type that can be stored in maps, lists and structs.
///
/// A value is a fixed tuple of Z3 terms, its *leaves* (a struct is the leaves of its fields, in
/// order). Containers keep one array per leaf, so a map of structs is a struct of arrays: that
/// keeps the solver in the array theory and conditions readable (`s.inodes[x].nlink`).
pub trait Value: Symbolic {
    /// Names and sorts of the leaves of a fresh value called `name`.
    fn layout(name: &str) -> Vec<(String, Sort)>;
    /// The leaves, in layout order.
    fn leaves(&self) -> Vec<Dynamic>;
    /// Rebuild from leaves in layout order, taking exactly as many as the layout has.
    /// Does not assume invariants.
    fn from_leaves(leaves: &mut dyn Iterator<Item = Dynamic>) -> Self;
    /// What every value of the type satisfies in any state the model can reach.
    fn invariant(&self) -> Bool {
        Bool::lit(true)
    }
    /// A fresh value that stands for an internal choice of the implementation (a new inode
    /// number, a free page): the analyzer quantifies over these existentially.
    fn internal(name: &str) -> Self {
        let full = exec::fresh_name(&format!("internal_{name}"));
        let consts = layout_consts(&Self::layout(&full));
        for c in &consts {
            exec::register_internal(c.clone());
        }
        let v = Self::from_leaves(&mut consts.into_iter());
        exec::invariant(&v.invariant());
        v
    }
}

/// A value of exactly one leaf that is not an array: usable as a map key or set element.
pub trait Key: Value {
    fn key_sort() -> Sort;
    fn key_ast(&self) -> Dynamic;
    fn from_key_ast(ast: Dynamic) -> Self;
}

/// Constants for a layout.
pub fn layout_consts(layout: &[(String, Sort)]) -> Vec<Dynamic> {
    layout
        .iter()
        .map(|(n, s)| Dynamic::new_const(n.as_str(), s))
        .collect()
}

/// Fresh value of any [`Value`] type named `name`, with its invariant assumed.
pub fn fresh_value<T: Value>(name: &str) -> T {
    let v = T::from_leaves(&mut layout_consts(&T::layout(name)).into_iter());
    if exec::exploring() {
        exec::invariant(&v.invariant());
    }
    v
}

/// Take the next leaf (derived and container code); a short iterator is a bug in a `Value` impl.
pub fn next_leaf(leaves: &mut dyn Iterator<Item = Dynamic>) -> Dynamic {
    leaves
        .next()
        .expect("a Value impl consumed more leaves than its layout has")
}

/// Implement `Value` and `Key` for a single-leaf type wrapping a Z3 term.
#[macro_export]
#[doc(hidden)]
macro_rules! __scalar_value {
    ($ty:ty, $sort:expr, |$ast:ident| $wrap:expr, |$v:ident| $unwrap:expr) => {
        impl $crate::Value for $ty {
            fn layout(name: &str) -> Vec<(String, $crate::z3::Sort)> {
                vec![(name.to_string(), $sort)]
            }
            fn leaves(&self) -> Vec<$crate::z3::ast::Dynamic> {
                let $v = self;
                vec![$unwrap]
            }
            fn from_leaves(leaves: &mut dyn Iterator<Item = $crate::z3::ast::Dynamic>) -> Self {
                let $ast = $crate::next_leaf(leaves);
                $wrap
            }
        }
        impl $crate::Key for $ty {
            fn key_sort() -> $crate::z3::Sort {
                $sort
            }
            fn key_ast(&self) -> $crate::z3::ast::Dynamic {
                let $v = self;
                $unwrap
            }
            fn from_key_ast($ast: $crate::z3::ast::Dynamic) -> Self {
                $wrap
            }
        }
    };
}

// ------------------------------------------------------------------------------------ Bool

/// A symbolic boolean.
#[derive(Clone, Debug)]
pub struct Bool(pub ZBool);

impl Bool {
    pub fn lit(b: bool) -> Bool {
        Bool(ZBool::from_bool(b))
    }
    /// Explore both feasible sides; returns the side of the current path.
    pub fn branch(&self) -> bool {
        exec::branch(&self.0)
    }
    pub fn implies(&self, o: &Bool) -> Bool {
        Bool(self.0.implies(&o.0))
    }
    pub fn iff(&self, o: &Bool) -> Bool {
        Bool(self.0.eq(&o.0))
    }
    /// Conjunction of any number of conditions (true when empty).
    pub fn all<I: IntoIterator<Item = Bool>>(items: I) -> Bool {
        let v: Vec<ZBool> = items.into_iter().map(|b| b.0).collect();
        Bool(ZBool::and(&v))
    }
    /// Disjunction of any number of conditions (false when empty).
    pub fn any<I: IntoIterator<Item = Bool>>(items: I) -> Bool {
        let v: Vec<ZBool> = items.into_iter().map(|b| b.0).collect();
        Bool(ZBool::or(&v))
    }
    /// The constant value, if the condition simplifies to one.
    pub fn as_const(&self) -> Option<bool> {
        simplified_bool(&self.0).as_bool()
    }
}

impl From<bool> for Bool {
    fn from(b: bool) -> Bool {
        Bool::lit(b)
    }
}

impl SymEq for Bool {
    fn sym_eq(&self, other: &Self) -> Bool {
        self.iff(other)
    }
}
impl Symbolic for Bool {
    fn fresh(name: &str) -> Self {
        fresh_value(name)
    }
}
crate::__scalar_value!(
    Bool,
    Sort::bool(),
    |ast| Bool(ast.as_bool().expect("leaf of sort Bool")),
    |v| Dynamic::from_ast(&v.0)
);

impl Not for Bool {
    type Output = Bool;
    fn not(self) -> Bool {
        Bool(self.0.not())
    }
}
impl Not for &Bool {
    type Output = Bool;
    fn not(self) -> Bool {
        Bool(ZBool::not(&self.0))
    }
}

macro_rules! bool_binop {
    ($tr:ident, $m:ident, $z:ident) => {
        impl $tr<Bool> for Bool {
            type Output = Bool;
            fn $m(self, o: Bool) -> Bool {
                Bool(ZBool::$z(&[&self.0, &o.0]))
            }
        }
        impl $tr<&Bool> for Bool {
            type Output = Bool;
            fn $m(self, o: &Bool) -> Bool {
                Bool(ZBool::$z(&[&self.0, &o.0]))
            }
        }
        impl $tr<Bool> for &Bool {
            type Output = Bool;
            fn $m(self, o: Bool) -> Bool {
                Bool(ZBool::$z(&[&self.0, &o.0]))
            }
        }
        impl $tr<&Bool> for &Bool {
            type Output = Bool;
            fn $m(self, o: &Bool) -> Bool {
                Bool(ZBool::$z(&[&self.0, &o.0]))
            }
        }
    };
}
bool_binop!(BitAnd, bitand, and);
bool_binop!(BitOr, bitor, or);

/// What an `if` condition in a `#[symbolic]` function turns into: plain `bool`s pass through,
/// symbolic ones branch.
pub trait Decide {
    fn decide(self) -> bool;
}
impl Decide for bool {
    fn decide(self) -> bool {
        self
    }
}
impl Decide for Bool {
    fn decide(self) -> bool {
        self.branch()
    }
}
impl Decide for &Bool {
    fn decide(self) -> bool {
        self.branch()
    }
}

// ------------------------------------------------------------------------------------ Int

/// A symbolic (mathematical) integer.
#[derive(Clone, Debug)]
pub struct Int(pub ZInt);

/// Anything usable where an [`Int`] is expected: `Int`, `&Int`, and integer literals.
pub trait IntoInt {
    fn into_int(self) -> Int;
}
impl IntoInt for Int {
    fn into_int(self) -> Int {
        self
    }
}
impl IntoInt for &Int {
    fn into_int(self) -> Int {
        self.clone()
    }
}
impl IntoInt for i64 {
    fn into_int(self) -> Int {
        Int::lit(self)
    }
}
impl IntoInt for i32 {
    fn into_int(self) -> Int {
        Int::lit(self.into())
    }
}
impl IntoInt for usize {
    fn into_int(self) -> Int {
        Int::lit(i64::try_from(self).expect("integer literal fits in i64"))
    }
}

impl Int {
    pub fn lit(i: i64) -> Int {
        Int(ZInt::from_i64(i))
    }
    pub fn eq(&self, o: impl IntoInt) -> Bool {
        Bool(self.0.eq(&o.into_int().0))
    }
    pub fn ne(&self, o: impl IntoInt) -> Bool {
        !self.eq(o)
    }
    pub fn lt(&self, o: impl IntoInt) -> Bool {
        Bool(self.0.lt(&o.into_int().0))
    }
    pub fn le(&self, o: impl IntoInt) -> Bool {
        Bool(self.0.le(&o.into_int().0))
    }
    pub fn gt(&self, o: impl IntoInt) -> Bool {
        Bool(self.0.gt(&o.into_int().0))
    }
    pub fn ge(&self, o: impl IntoInt) -> Bool {
        Bool(self.0.ge(&o.into_int().0))
    }
    /// The larger of two integers (a term, not a branch).
    pub fn max(&self, o: impl IntoInt) -> Int {
        let o = o.into_int();
        Int(self.ge(&o).0.ite(&self.0, &o.0))
    }
    /// How many of `conds` hold (a term, not a branch).
    pub fn count<I: IntoIterator<Item = Bool>>(conds: I) -> Int {
        let one = ZInt::from_i64(1);
        let zero = ZInt::from_i64(0);
        conds
            .into_iter()
            .map(|c| c.0.ite(&one, &zero))
            .fold(Int::lit(0), |sum, term| Int(sum.0 + term))
    }
    /// The constant value, if the term simplifies to one.
    pub fn as_const(&self) -> Option<i64> {
        simplified_int(&self.0).as_i64()
    }
}

impl From<i64> for Int {
    fn from(i: i64) -> Int {
        Int::lit(i)
    }
}

impl SymEq for Int {
    fn sym_eq(&self, other: &Self) -> Bool {
        self.eq(other)
    }
}
impl Symbolic for Int {
    fn fresh(name: &str) -> Self {
        fresh_value(name)
    }
}
crate::__scalar_value!(
    Int,
    Sort::int(),
    |ast| Int(ast.as_int().expect("leaf of sort Int")),
    |v| Dynamic::from_ast(&v.0)
);

macro_rules! int_binop {
    ($tr:ident, $m:ident) => {
        impl<T: IntoInt> $tr<T> for Int {
            type Output = Int;
            fn $m(self, o: T) -> Int {
                Int((&self.0).$m(&o.into_int().0))
            }
        }
        impl<T: IntoInt> $tr<T> for &Int {
            type Output = Int;
            fn $m(self, o: T) -> Int {
                Int((&self.0).$m(&o.into_int().0))
            }
        }
    };
}
int_binop!(Add, add);
int_binop!(Sub, sub);
int_binop!(Mul, mul);

impl Neg for Int {
    type Output = Int;
    fn neg(self) -> Int {
        Int(self.0.unary_minus())
    }
}

// ------------------------------------------------------------------ uninterpreted sorts

thread_local! {
    static CONTEXT_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Called whenever the thread switches Z3 context: cached sorts and terms belong to the old one.
pub(crate) fn new_context_generation() {
    CONTEXT_GENERATION.with(|g| g.set(g.get() + 1));
    // Let go of the old context's terms now, not when the thread next simplifies.
    SIMPLIFIED.with(|cell| *cell.borrow_mut() = ContextCache::default());
}

/// A thread's cache of what it made in its current Z3 context: emptied when the context changes
/// (see [`crate::with_fresh_context`]).
#[derive(Default)]
struct ContextCache<C> {
    generation: u64,
    cache: C,
}

fn with_context_cache<C: Default, T>(
    key: &'static std::thread::LocalKey<RefCell<ContextCache<C>>>,
    f: impl FnOnce(&mut C) -> T,
) -> T {
    key.with(|cell| {
        let mut c = cell.borrow_mut();
        let generation = CONTEXT_GENERATION.with(|g| g.get());
        if c.generation != generation {
            *c = ContextCache {
                generation,
                cache: C::default(),
            };
        }
        f(&mut c.cache)
    })
}

/// Z3's simplification of terms met in the current context. Exploration replays every path
/// from the start, so the model builds (and the executor simplifies) the same terms again and
/// again: Z3 hash-conses them, so a term met before is found by its identity.
#[derive(Default)]
struct Simplified {
    bools: StableHashMap<ZBool, ZBool>,
    ints: StableHashMap<ZInt, ZInt>,
}

thread_local! {
    static SIMPLIFIED: RefCell<ContextCache<Simplified>> = RefCell::new(ContextCache::default());
    /// Sorts and datatypes made in the current Z3 context, by Rust type.
    static SORTS: RefCell<ContextCache<StableHashMap<TypeId, Sort>>> =
        RefCell::new(ContextCache::default());
}

/// `b.simplify()`, computed once per term and context.
pub(crate) fn simplified_bool(b: &ZBool) -> ZBool {
    with_context_cache(&SIMPLIFIED, |c| {
        c.bools
            .entry(b.clone())
            .or_insert_with(|| b.simplify())
            .clone()
    })
}

/// `i.simplify()`, computed once per term and context.
fn simplified_int(i: &ZInt) -> ZInt {
    with_context_cache(&SIMPLIFIED, |c| {
        c.ints
            .entry(i.clone())
            .or_insert_with(|| i.simplify())
            .clone()
    })
}

/// The uninterpreted sort for Rust type `T`, named `name` (cached per context).
pub fn uninterpreted_sort<T: 'static>(name: &str) -> Sort {
    with_context_cache(&SORTS, |sorts| {
        sorts
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Sort::uninterpreted(z3::Symbol::String(name.to_string())))
            .clone()
    })
}

/// Declare an uninterpreted sort: a type whose values only compare for equality
/// (file names, inode numbers, data pages, ...).
///
/// ```ignore
/// commuter_engine::uninterpreted!(FileName);
/// ```
#[macro_export]
macro_rules! uninterpreted {
    ($(#[$meta:meta])* $vis:vis $name:ident) => {
        $crate::uninterpreted!($(#[$meta])* $vis $name, custom_concrete);
        impl $crate::Concrete for $name {
            fn concrete(
                &self,
                cx: &mut $crate::Concretizer,
            ) -> ::std::result::Result<$crate::serde_json::Value, $crate::PoolExhausted> {
                $crate::concrete_label(stringify!($name), self, cx)
            }
        }
    };
    // The model writes its own `Concrete` impl (how the values appear in concrete tests).
    ($(#[$meta:meta])* $vis:vis $name:ident, custom_concrete) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name(pub $crate::z3::ast::Dynamic);
        impl $crate::SymEq for $name {
            fn sym_eq(&self, other: &Self) -> $crate::Bool {
                $crate::Bool($crate::z3::ast::Ast::eq(&self.0, &other.0))
            }
        }
        impl $crate::Symbolic for $name {
            fn fresh(name: &str) -> Self {
                $crate::fresh_value(name)
            }
        }
        $crate::__scalar_value!(
            $name,
            $crate::uninterpreted_sort::<$name>(stringify!($name)),
            |ast| $name(ast),
            |v| v.0.clone()
        );
    };
}

// ---------------------------------------------------------------- results and plain data

macro_rules! concrete_eq {
    ($($t:ty),*) => {$(
        impl SymEq for $t {
            fn sym_eq(&self, other: &Self) -> Bool {
                Bool::lit(self == other)
            }
        }
    )*};
}
concrete_eq!((), bool, i32, i64, u32, u64, usize, &'static str, String);

impl<T: SymEq, E: PartialEq> SymEq for Result<T, E> {
    fn sym_eq(&self, other: &Self) -> Bool {
        match (self, other) {
            (Ok(a), Ok(b)) => a.sym_eq(b),
            (Err(a), Err(b)) => Bool::lit(a == b),
            _ => Bool::lit(false),
        }
    }
}

impl<T: SymEq> SymEq for Option<T> {
    fn sym_eq(&self, other: &Self) -> Bool {
        match (self, other) {
            (Some(a), Some(b)) => a.sym_eq(b),
            (None, None) => Bool::lit(true),
            _ => Bool::lit(false),
        }
    }
}

impl<T: SymEq> SymEq for Vec<T> {
    fn sym_eq(&self, other: &Self) -> Bool {
        if self.len() != other.len() {
            return Bool::lit(false);
        }
        Bool::all(self.iter().zip(other).map(|(a, b)| a.sym_eq(b)))
    }
}

macro_rules! tuple_eq {
    ($($n:tt $t:ident),+) => {
        impl<$($t: SymEq),+> SymEq for ($($t,)+) {
            fn sym_eq(&self, other: &Self) -> Bool {
                Bool::all([$(self.$n.sym_eq(&other.$n)),+])
            }
        }
    };
}
tuple_eq!(0 A);
tuple_eq!(0 A, 1 B);
tuple_eq!(0 A, 1 B, 2 C);
tuple_eq!(0 A, 1 B, 2 C, 3 D);

/// Tuples are symbolic element-wise (call arguments such as `(Key, Value)`): element `i` of a
/// tuple named `a` is named `a.i`, as a struct's field would be.
macro_rules! tuple_symbolic {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Symbolic),+> Symbolic for ($($t,)+) {
            fn fresh(name: &str) -> Self {
                ($($t::fresh(&format!("{name}.{}", $n)),)+)
            }
        }
    };
}
tuple_symbolic!(0 A);
tuple_symbolic!(0 A, 1 B);
tuple_symbolic!(0 A, 1 B, 2 C);
tuple_symbolic!(0 A, 1 B, 2 C, 3 D);

impl Symbolic for () {
    fn fresh(_: &str) -> Self {}
}
