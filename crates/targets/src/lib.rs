//! `commuter-targets`: runs guest plans on real implementations and collects what happened.
//!
//! The Linux target ([`linux`]) packs the guest runner and a plan into an initramfs
//! ([`initramfs`]), boots Debian's stock kernel under `qemu-system-x86_64` with the tracer
//! plugin loaded (or without it, as the baseline of the plugin's overhead), and returns per
//! test the guest's result checks, call times and the tracer's conflict record. [`doctor`]
//! checks in one short boot whether a kernel can be used at all.

pub mod doctor;
pub mod initramfs;
pub mod linux;
pub mod posix;
