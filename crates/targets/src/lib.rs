//! `commuter-targets`: runs test suites on real implementations and collects what happened.
//!
//! [`suite`] is the seam: a [`suite::Target`] prepares tests and runs batches of them, and
//! [`suite::run_suite`] does what every target needs (batches, VMs in parallel, resume,
//! scanning), [`shard`] cuts a suite into parts for several machines and joins their results.
//! [`kernel`] is the Linux kernel as a target of POSIX tests; [`user`] a user-space
//! implementation's runner (built with `commuter-harness`) as a target of any model's tests.
//!
//! The Linux target ([`linux`]) packs the guest runner and a plan into an initramfs
//! ([`initramfs`]), boots Debian's stock kernel under `qemu-system-x86_64` with the tracer
//! plugin loaded (or without it, as the baseline of the plugin's overhead), and returns per
//! test the guest's result checks, call times and the tracer's conflict record. [`doctor`]
//! checks in one short boot whether a kernel can be used at all. [`trace`] runs one workload
//! under the plugin's `mode=reftrace` (`commuter trace`) and returns its reference trace.

pub mod doctor;
pub mod initramfs;
pub mod kernel;
pub mod linux;
pub mod posix;
pub mod shard;
pub mod suite;
pub mod trace;
pub mod user;
