//! The state a POSIX test starts from, in concrete terms: what the model's concretization
//! writes as a test's `setup` and what the guest creates before the calls.
//!
//! Conventions: names are plain file names in one directory. An inode is a regular file
//! holding one [`PAGE`](crate::PAGE)-byte page per data value, every byte of a page equal to
//! its data value (0 is the zero page). `inodes[i]` is reachable only through the names linked
//! to it and the fds and mappings that refer to it. Offsets are in bytes; a mapping's `page` is
//! a page index in the process's test area.

use serde::{Deserialize, Serialize};

/// The state the calls start from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// Inodes (regular files) by index.
    #[serde(default)]
    pub inodes: Vec<Inode>,
    /// Directory entries.
    #[serde(default)]
    pub names: Vec<Name>,
    /// Pipes by index.
    #[serde(default)]
    pub pipes: Vec<Pipe>,
    /// Per-process state, indexed by process slot.
    #[serde(default)]
    pub procs: Vec<Proc>,
}

/// A regular file's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inode {
    /// One data value per page.
    #[serde(default)]
    pub data: Vec<u8>,
    /// Links in all: the setup's names plus links from a directory no call sees (absent: as
    /// many as its names). A model with link counts gives them, so that removing the last
    /// link is what it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nlink: Option<u64>,
}

impl Inode {
    /// Links from outside the test's directory that the setup must create.
    pub fn hidden_links(&self, names: usize) -> usize {
        self.nlink.map_or(0, |n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .saturating_sub(names)
        })
    }
}

/// A directory entry naming an inode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    /// File name (no `/`).
    pub name: String,
    /// Index into `setup.inodes`.
    pub inode: usize,
}

/// A pipe's buffered contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipe {
    /// One data value per page-sized chunk, oldest first.
    #[serde(default)]
    pub data: Vec<u8>,
}

/// One process's fds and mappings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// Open file descriptions at fixed fd numbers.
    #[serde(default)]
    pub fds: Vec<Fd>,
    /// Memory mappings at fixed pages.
    #[serde(default)]
    pub maps: Vec<Map>,
}

/// An fd slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fd {
    /// The fd number.
    pub fd: i32,
    /// What it refers to.
    #[serde(flatten)]
    pub target: FdTarget,
}

/// What an fd refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdTarget {
    /// A file opened read-write at byte offset `off`.
    File {
        /// Index into `setup.inodes`.
        inode: usize,
        /// Byte offset.
        #[serde(default)]
        off: u64,
    },
    /// One end of a pipe (non-blocking).
    Pipe {
        /// Index into `setup.pipes`.
        pipe: usize,
        /// True for the write end.
        write: bool,
    },
}

/// A mapping of one page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Map {
    /// Page index in the process's test area.
    pub page: u32,
    /// Anonymous or file-backed.
    #[serde(flatten)]
    pub backing: Backing,
    /// Whether the page is writable.
    pub writable: bool,
    /// Whether the setup touches the page after mapping it, so that it is in the page tables
    /// when the calls start (an anonymous page is written, a file page inside its file read).
    /// An untouched page is left for the first call that touches it; an untouched anonymous
    /// page holds zeros. Written only where false: suites from before the field touched every
    /// page they could.
    #[serde(default = "touched_by_default", skip_serializing_if = "is_touched")]
    pub populated: bool,
}

fn touched_by_default() -> bool {
    true
}

fn is_touched(populated: &bool) -> bool {
    *populated
}

impl Map {
    /// What a setup can make of the mapping alone: a page-aligned file offset, and zeros in an
    /// anonymous page it does not touch (the page is the kernel's zero page until written).
    pub fn check(&self) -> Result<(), String> {
        match self.backing {
            Backing::File { off, .. } if off % crate::PAGE != 0 => Err(format!(
                "page {}: mapping offset {off} is not page aligned",
                self.page
            )),
            Backing::Anon { data } if !self.populated && data != 0 => Err(format!(
                "page {}: an unpopulated anonymous page holds zeros, not data {data} \
                 (set \"populated\": true, or data 0)",
                self.page
            )),
            _ => Ok(()),
        }
    }
}

/// What backs a mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backing {
    /// Private anonymous memory whose bytes all equal `data`.
    Anon {
        /// Data value.
        data: u8,
    },
    /// A shared mapping of an inode at a page-aligned byte offset.
    File {
        /// Index into `setup.inodes`.
        inode: usize,
        /// Byte offset (a multiple of [`PAGE`](crate::PAGE)).
        off: u64,
    },
}
