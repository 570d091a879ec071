//! The tracer's marker instructions, emitted exactly as the POSIX guest emits them: both use
//! `commuter-trace-format`'s [`emit`](commuter_trace_format::marker::emit).

pub use commuter_trace_format::marker::{
    BEGIN_CALL, BEGIN_TEST, END_CALL, END_TEST, emit as marker,
};
