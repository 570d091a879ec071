//! Errors of the engine.

use thiserror::Error;

/// What can go wrong while exploring a model.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The model function panicked (a bug in the model, not an infeasible path).
    #[error("the model panicked: {message} (on the path with decisions {decisions:?})")]
    ModelPanicked {
        message: String,
        decisions: Vec<bool>,
    },
    /// `explore` was called from inside a model function.
    #[error("explore() was called from inside a model function; models must not nest explorations")]
    NestedExplore,
    /// Internal consistency failure: the executor state vanished during a run.
    #[error("internal error: the path executor disappeared during a run")]
    ExecutorLost,
}
