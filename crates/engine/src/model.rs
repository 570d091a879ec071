//! The model API: what an interface model declares, and its type-erased form that the analyzer
//! and the CLI work with.

use std::any::Any;
use std::fmt;

use serde_json::Value as Json;

use crate::concrete::{Concrete, Concretizer, Pool, PoolExhausted};
use crate::value::{Bool, Int, SymEq, Symbolic};

/// An interface model: a symbolic state and the calls that act on it.
///
/// ```ignore
/// struct Counter;
/// impl Model for Counter {
///     type State = CounterState;
///     fn name(&self) -> &'static str { "counter" }
///     fn description(&self) -> &'static str { "an integer counter" }
///     fn calls(&self) -> Vec<Call<CounterState>> {
///         vec![Call::new("inc", inc), Call::new("iszero", iszero)]
///     }
/// }
/// ```
pub trait Model: Send + Sync + 'static {
    /// The whole state; its [`SymEq`] is the model's notion of "indistinguishable states".
    type State: Symbolic + Concrete;
    /// Short identifier used on the command line.
    fn name(&self) -> &'static str;
    /// One line for `commuter models`.
    fn description(&self) -> &'static str;
    /// The calls, in a fixed order (the order of call sets in every report).
    fn calls(&self) -> Vec<Call<Self::State>>;
    /// Calls left out when the user does not select calls (e.g. POSIX's sync, fsync, reboot).
    fn excluded_by_default(&self) -> &'static [&'static str] {
        &[]
    }
    /// How many processes calls with a process argument can run in.
    fn processes(&self) -> usize {
        1
    }
    /// The symbolic initial state (by default: fresh, named `s`).
    fn initial_state(&self) -> Self::State {
        Self::State::fresh("s")
    }
    /// The initial state of a concrete test, in the model's own terms (called after the calls'
    /// arguments were concretized, so maps show the entries the test's arguments name).
    fn concrete_state(
        &self,
        state: &Self::State,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted> {
        state.concrete(cx)
    }
    /// A call's arguments in a concrete test, when the model maps them itself (e.g. to the
    /// concrete values a target uses); `None` shows them generically ([`Concrete`]). `state`
    /// is the test's initial state, for arguments whose class depends on what they name (an
    /// offset belongs to the file its fd is open on).
    fn concrete_args(
        &self,
        _call: &str,
        _args: &dyn Any,
        _state: &Self::State,
        _cx: &mut Concretizer,
    ) -> Option<Result<Json, PoolExhausted>> {
        None
    }
    /// A call's result in a concrete test, when the model maps it itself (e.g. to a typed
    /// schema a target reads); `None` shows it generically ([`Concrete`]). Read quietly: a
    /// result follows from the test's situation and makes no class.
    fn concrete_result(
        &self,
        _call: &str,
        _result: &dyn Any,
        _cx: &mut Concretizer,
    ) -> Option<Result<Json, PoolExhausted>> {
        None
    }
    /// How concrete tests use a namespace of values (by default: unbounded, enumerated).
    fn pool(&self, _namespace: &str) -> Pool {
        Pool::default()
    }
    /// The relative cost of analysing a call and generating its tests (1: typical). Used
    /// for scheduling only: call sets of costly calls start first, so the last set to finish
    /// on a few cores is a short one. Results never depend on it.
    fn cost_hint(&self, _call: &str) -> u32 {
        1
    }
}

type FreshArgs = Box<dyn Fn(&str) -> Box<dyn Any> + Send + Sync>;
type ConcreteArgs =
    Box<dyn Fn(&dyn Any, &mut Concretizer) -> Result<Json, PoolExhausted> + Send + Sync>;
type RunFn<S> = Box<dyn Fn(&mut S, &dyn Any) -> Box<dyn CallResult> + Send + Sync>;
type PidFn = Box<dyn Fn(&dyn Any) -> Int + Send + Sync>;

/// One call of a model: a name and a function from state and arguments to a result.
pub struct Call<S> {
    name: &'static str,
    fresh_args: FreshArgs,
    concrete_args: ConcreteArgs,
    run: RunFn<S>,
    pid: Option<PidFn>,
}

impl<S: 'static> Call<S> {
    /// A call whose arguments `A` are fresh symbolic values per call slot and whose result `R`
    /// compares with the model's equality.
    pub fn new<A, R>(name: &'static str, f: fn(&mut S, &A) -> R) -> Self
    where
        A: Symbolic + Concrete,
        R: SymEq + Concrete + fmt::Debug + 'static,
    {
        Call {
            name,
            fresh_args: Box::new(|prefix| Box::new(A::fresh(prefix))),
            concrete_args: Box::new(|args, cx| {
                args.downcast_ref::<A>()
                    .expect("arguments made by the same call")
                    .concrete(cx)
            }),
            run: Box::new(move |state, args| {
                let args = args
                    .downcast_ref::<A>()
                    .expect("arguments made by the same call");
                Box::new(f(state, args))
            }),
            pid: None,
        }
    }

    /// Declare that the call runs in a process chosen by its arguments.
    pub fn with_pid<A: Symbolic>(mut self, pid: fn(&A) -> Int) -> Self {
        self.pid = Some(Box::new(move |args| {
            pid(args
                .downcast_ref::<A>()
                .expect("arguments made by the same call"))
        }));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn takes_pid(&self) -> bool {
        self.pid.is_some()
    }
}

/// A call's result, type-erased.
pub trait CallResult: fmt::Debug {
    fn as_any(&self) -> &dyn Any;
    /// Model equality with another result of the same call (false for another type).
    fn same_as(&self, other: &dyn CallResult) -> Bool;
    /// The result in a concrete test.
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted>;
}

impl<R: SymEq + Concrete + fmt::Debug + 'static> CallResult for R {
    fn concrete(&self, cx: &mut Concretizer) -> Result<Json, PoolExhausted> {
        Concrete::concrete(self, cx)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same_as(&self, other: &dyn CallResult) -> Bool {
        match other.as_any().downcast_ref::<R>() {
            Some(o) => self.sym_eq(o),
            None => Bool::lit(false),
        }
    }
}

/// A model state, type-erased.
pub trait AnyState {
    fn clone_box(&self) -> Box<dyn AnyState>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Model equality with another state of the same model.
    fn same_as(&self, other: &dyn AnyState) -> Bool;
}

impl<S: Symbolic> AnyState for S {
    fn clone_box(&self) -> Box<dyn AnyState> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn same_as(&self, other: &dyn AnyState) -> Bool {
        match other.as_any().downcast_ref::<S>() {
            Some(o) => self.sym_eq(o),
            None => Bool::lit(false),
        }
    }
}

/// Facts about one call, for listings and argument checking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    pub name: &'static str,
    pub takes_pid: bool,
    pub default: bool,
    /// [`Model::cost_hint`].
    pub cost: u32,
}

/// A model with its types erased: what the analyzer and the CLI use.
pub trait DynModel: Send + Sync {
    /// How concrete tests use a namespace of values.
    fn pool(&self, namespace: &str) -> Pool;
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn call_info(&self) -> Vec<CallInfo>;
    fn processes(&self) -> usize;
    /// Everything needed to execute calls on one thread (Z3 terms are per thread).
    fn instantiate(&self) -> Box<dyn Instance + '_>;
}

/// A model's calls, ready to run on the current thread.
pub trait Instance {
    fn initial_state(&self) -> Box<dyn AnyState>;
    fn fresh_args(&self, call: usize, prefix: &str) -> Box<dyn Any>;
    fn run(&self, call: usize, state: &mut dyn AnyState, args: &dyn Any) -> Box<dyn CallResult>;
    /// The process a call runs in, if the call takes one.
    fn pid(&self, call: usize, args: &dyn Any) -> Option<Int>;
    /// A call's arguments in a concrete test, from the test's initial state.
    fn concrete_args(
        &self,
        call: usize,
        args: &dyn Any,
        state: &dyn AnyState,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted>;
    /// The initial state of a concrete test (after the arguments were concretized).
    fn concrete_state(
        &self,
        state: &dyn AnyState,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted>;
    /// A call's result in a concrete test.
    fn concrete_result(
        &self,
        call: usize,
        result: &dyn CallResult,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted>;
}

struct ModelInstance<'m, M: Model> {
    model: &'m M,
    calls: Vec<Call<M::State>>,
}

impl<M: Model> DynModel for M {
    fn pool(&self, namespace: &str) -> Pool {
        Model::pool(self, namespace)
    }
    fn name(&self) -> &'static str {
        Model::name(self)
    }
    fn description(&self) -> &'static str {
        Model::description(self)
    }
    fn call_info(&self) -> Vec<CallInfo> {
        let excluded = self.excluded_by_default();
        self.calls()
            .iter()
            .map(|c| CallInfo {
                name: c.name,
                takes_pid: c.takes_pid(),
                default: !excluded.contains(&c.name),
                cost: self.cost_hint(c.name).max(1),
            })
            .collect()
    }
    fn processes(&self) -> usize {
        Model::processes(self)
    }
    fn instantiate(&self) -> Box<dyn Instance + '_> {
        Box::new(ModelInstance {
            model: self,
            calls: self.calls(),
        })
    }
}

impl<M: Model> Instance for ModelInstance<'_, M> {
    fn initial_state(&self) -> Box<dyn AnyState> {
        Box::new(self.model.initial_state())
    }
    fn fresh_args(&self, call: usize, prefix: &str) -> Box<dyn Any> {
        (self.calls[call].fresh_args)(prefix)
    }
    fn run(&self, call: usize, state: &mut dyn AnyState, args: &dyn Any) -> Box<dyn CallResult> {
        let state = state
            .as_any_mut()
            .downcast_mut::<M::State>()
            .expect("state made by the same model");
        (self.calls[call].run)(state, args)
    }
    fn pid(&self, call: usize, args: &dyn Any) -> Option<Int> {
        self.calls[call].pid.as_ref().map(|p| p(args))
    }
    fn concrete_args(
        &self,
        call: usize,
        args: &dyn Any,
        state: &dyn AnyState,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted> {
        let c = &self.calls[call];
        let state = state
            .as_any()
            .downcast_ref::<M::State>()
            .expect("state made by the same model");
        match self.model.concrete_args(c.name, args, state, cx) {
            Some(custom) => custom,
            None => (c.concrete_args)(args, cx),
        }
    }
    fn concrete_state(
        &self,
        state: &dyn AnyState,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted> {
        let state = state
            .as_any()
            .downcast_ref::<M::State>()
            .expect("state made by the same model");
        self.model.concrete_state(state, cx)
    }
    fn concrete_result(
        &self,
        call: usize,
        result: &dyn CallResult,
        cx: &mut Concretizer,
    ) -> Result<Json, PoolExhausted> {
        match self
            .model
            .concrete_result(self.calls[call].name, result.as_any(), cx)
        {
            Some(custom) => custom,
            None => result.concrete(cx),
        }
    }
}
