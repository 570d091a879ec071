//! `commuter-guest`: the guest side of the Linux target.
//!
//! The binary (`src/bin/init`) is the `/init` of an initramfs: it reads a [`plan::Plan`] from
//! `/plan.json`, runs each test's two calls on two CPUs inside the tracer's markers, checks
//! their results, prints one [`report::GuestLine`] per event on the console and powers off.
//! This library holds the two formats it shares with the target driver: the plan it reads and
//! the console lines it writes.
//!
//! With `/trace.json` in the initramfs instead, it runs one workload under the tracer's
//! `mode=reftrace` ([`trace`]: `commuter trace`).

pub mod plan;
pub mod report;
pub mod trace;
