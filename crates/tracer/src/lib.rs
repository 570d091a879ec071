//! `commuter-tracer`: finds the memory locations that two concurrently tested system calls share.
//!
//! Built as a cdylib it is a QEMU TCG plugin (plugin API v4, QEMU 10.0) for
//! `qemu-system-x86_64`: the guest brackets each test and each call with marker instructions
//! ([`commuter_trace_format::marker`]), the plugin records the kernel-mode memory accesses each
//! vCPU makes inside a call (and, with `user=on`, the user-mode ones too, each tagged with its
//! mode), and at the end of each test it computes the conflicts between the two calls
//! ([`conflict`]) and appends one JSON line ([`commuter_trace_format::record`]) to its output
//! file.
//!
//! With `mode=reftrace` it records instead a workload's reference trace in kVMTrace's terms
//! ([`reftrace`]; `commuter trace`).
//!
//! The formats live in `commuter-trace-format`, so that the guest and the target driver never
//! depend on this crate (and on QEMU's symbols); without the default `plugin` feature this
//! crate is the pure, unit-tested part of the plugin.

pub mod config;
pub mod conflict;
pub mod insn;
pub mod percpu;
pub mod reftrace;
pub mod session;
pub mod slab;
pub mod stack;

// The plugin calls symbols that only exist inside a QEMU process, so it is left out of unit-test
// binaries (which are executables and would fail to link).
#[cfg(all(feature = "plugin", not(test)))]
mod plugin;
#[cfg(all(feature = "plugin", not(test)))]
mod plugin_reftrace;
#[cfg(all(feature = "plugin", not(test)))]
mod qemu;
