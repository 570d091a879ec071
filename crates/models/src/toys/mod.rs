//! Toy models with known answers (after the original Commuter's `models/`).

pub mod counter;
pub mod getset;
pub mod kv;
pub mod rename;
pub mod set;
pub mod trackforget;
pub mod upipe;
pub mod watermark;
