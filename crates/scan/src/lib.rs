//! `commuter-scan`: turns the tracer's per-test records into symbolised conflicts
//! (`conflicts.json`).
//!
//! Input: per test, what a run produced ([`TestRun`]: the tracer's record with physical
//! addresses and raw instruction addresses, the guest's check of each call's result, errors).
//! Output: a [`ConflictsFile`] in which every shared location says what it is (a static symbol
//! and offset, a section, or dynamic memory) and where each call touched it (function, file,
//! line and inlined frames), with false sharing, result mismatches and per-test errors as their
//! own categories. Symbols come from an ELF image with DWARF ([`Symbols`]; for Linux, the
//! `vmlinux` of Debian's `-dbg` package); without one the locations stay unnamed.
//!
//! Heap objects are named by their slab cache (`dentry`, `kmalloc-64`): the cache is recorded
//! only in guest memory (`struct slab`), so the tracer plugin reads it at the end of each test,
//! with the structure layout [`slab_layout`] reads from the image's DWARF, and carries it in the
//! record; the scanner turns such a location into [`schema::What::Slab`].
//!
//! User-mode accesses (the tracer records them with `user=on`) are symbolised against the
//! static user binary the guest ran, when given ([`UserBinary`], [`scan_with`]): code sites
//! with its symbols and DWARF, user data as its static objects or by region (heap, stack).
//!
//! `commuter trace` reads the layout its plugin mode needs (`__switch_to`, `struct task_struct`'s
//! pid and tgid, `struct page`'s mapping) with [`reftrace_layout`].
//!
//! The file is written as version 5 (code sites, frames and objects in tables, referred to by
//! index) and read from versions 3 to 5 into the same in-memory [`ConflictsFile`] ([`file`]).

pub mod file;
pub mod layout;
pub mod reftrace_layout;
pub mod scan;
pub mod schema;
pub mod symbols;
pub mod user;

pub use file::ReadError;
pub use layout::{LayoutError, slab_layout};
pub use reftrace_layout::reftrace_layout;
pub use scan::{CallCheck, TestRun, scan, scan_with};
pub use schema::{
    CONFLICTS_PAIRS_VERSION, CONFLICTS_SCHEMA, CONFLICTS_VERSION, CompactFile, ConflictsFile, Shard,
};
pub use symbols::{Symbols, SymbolsError};
pub use user::UserBinary;
