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

pub mod layout;
pub mod scan;
pub mod schema;
pub mod symbols;
pub mod user;

pub use layout::{LayoutError, slab_layout};
pub use scan::{CallCheck, TestRun, scan, scan_with};
pub use schema::{CONFLICTS_SCHEMA, CONFLICTS_VERSION, ConflictsFile, Shard};
pub use symbols::{Symbols, SymbolsError};
pub use user::UserBinary;

/// Why a `conflicts.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON of the expected shape.
    #[error("not a conflicts file: {0}")]
    Json(#[from] serde_json::Error),
    /// Some other file.
    #[error("its \"schema\" is {found:?}, expected {CONFLICTS_SCHEMA:?}")]
    Schema {
        /// The schema found.
        found: String,
    },
    /// Written by an incompatible version.
    #[error(
        "conflicts version {found} is not supported (this commuter reads version {CONFLICTS_VERSION}); {}",
        version_fix(*found)
    )]
    Version {
        /// The version found.
        found: u32,
    },
}

/// What to do about a `conflicts.json` of another version.
fn version_fix(found: u32) -> &'static str {
    if found < CONFLICTS_VERSION {
        // Version 4 added the kernel/user mode of every access and site, which an older file
        // cannot supply: only a new run has it.
        "it was written by an older commuter: rerun the tests (`commuter run`) to regenerate it"
    } else {
        "it was written by a newer commuter: read it with that version"
    }
}

impl ConflictsFile {
    /// Parses and checks the schema name and version.
    pub fn from_json(text: &str) -> Result<ConflictsFile, ReadError> {
        // Check the header first, so that a newer file gets a version error, not a field error.
        #[derive(serde::Deserialize)]
        struct Header {
            schema: String,
            version: u32,
        }
        let h: Header = serde_json::from_str(text)?;
        if h.schema != CONFLICTS_SCHEMA {
            return Err(ReadError::Schema { found: h.schema });
        }
        if h.version != CONFLICTS_VERSION {
            return Err(ReadError::Version { found: h.version });
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
