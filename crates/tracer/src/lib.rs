//! `commuter-tracer`: finds the memory locations that two concurrently tested system calls share.
//!
//! Built as a cdylib it is a QEMU TCG plugin (plugin API v4, QEMU 10.0) for
//! `qemu-system-x86_64`: the guest brackets each test and each call with marker instructions
//! ([`marker`]), the plugin records the kernel-mode memory accesses each vCPU makes inside a
//! call, and at the end of each test it computes the conflicts between the two calls
//! ([`conflict`]) and appends one JSON line ([`record`]) to its output file.
//!
//! As an rlib without the default `plugin` feature it is the shared vocabulary of the pipeline:
//! the marker protocol the guest emits and the record format the target driver reads.

pub mod config;
pub mod conflict;
pub mod marker;
pub mod record;
pub mod session;

// The plugin calls symbols that only exist inside a QEMU process, so it is left out of unit-test
// binaries (which are executables and would fail to link).
#[cfg(all(feature = "plugin", not(test)))]
mod plugin;
