//! Symbolisation of user mode: the static binary the guest ran as its test runner, for the
//! code sites and data of user-mode accesses (the tracer records them with `user=on`).
//!
//! # Addresses
//!
//! The binary is a static, non-PIE executable (`ET_EXEC`), so it runs at its link addresses:
//! a user-mode PC is symbolised as is, and a user data address inside its image is one of its
//! static objects. A position-independent binary is refused ([`SymbolsError::Pie`]): its load
//! address is chosen at run time and the trace does not record it.
//!
//! Memory outside the image is classified by the x86-64 Linux user address-space layout
//! (4-level paging; `arch/x86/mm/mmap.c`, `fs/binfmt_elf.c`), since the trace keeps only
//! addresses, not the process's mappings:
//!
//! - **stack**: the main stack's top is `TASK_SIZE` (`0x7ffffffff000`) minus a random offset of
//!   at most 16 GiB (`stack_maxrandom_size`, 22 bits of pages), and it grows at most
//!   `RLIMIT_STACK` (8 MiB by default) below that. The mmap area starts below
//!   `TASK_SIZE - RLIMIT_STACK - stack_guard_gap - 16 GiB` whenever the stack is randomised
//!   (the kernel's default, `randomize_va_space` >= 1), so everything at or above
//!   [`STACK_LOW`] is stack. Threads' stacks are mappings, hence heap below.
//! - **heap**: between the end of the image (where brk starts) and the stack area: the brk
//!   heap and everything the program mapped (allocator arenas, thread stacks, file pages).
//! - **user**: below the image (nothing is mapped there by default).

use crate::schema::{CodeSite, Region, What};
use crate::symbols::{self, Section, Sym, SymbolsError, containing, in_range};
use commuter_trace_format::record::Mode;
use object::{Object, ObjectKind};
use std::path::Path;

/// `TASK_SIZE` of x86-64 with 4-level paging: the end of the user address space (one guard
/// page below 2^47).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// The largest random offset of the main stack's top (`stack_maxrandom_size`: 22 bits of 4 KiB
/// pages).
pub const STACK_RANDOM_MAX: u64 = 16 << 30;
/// The default `RLIMIT_STACK`: how far the main stack may grow below its top.
pub const STACK_LIMIT: u64 = 8 << 20;
/// The lowest address of the main stack area; see the module documentation.
pub const STACK_LOW: u64 = TASK_SIZE - STACK_RANDOM_MAX - STACK_LIMIT;
/// The highest user address (the lower canonical half).
const USER_END: u64 = 0x0000_7fff_ffff_ffff;

/// A static user binary's symbols, sections and (when present) DWARF.
pub struct UserBinary {
    name: String,
    /// DWARF, if the binary has any; without it code sites name the function only.
    dwarf: Option<addr2line::Loader>,
    /// Sized function and object symbols, demangled, sorted by address.
    syms: Vec<Sym>,
    sections: Vec<Section>,
    /// `[start, end)` of the loaded image (all `PT_LOAD` segments, `.bss` included).
    image: (u64, u64),
    /// Build directory prefix stripped from DWARF paths.
    prefix: Option<String>,
}

impl std::fmt::Debug for UserBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserBinary")
            .field("name", &self.name)
            .field("symbols", &self.syms.len())
            .field("dwarf", &self.dwarf.is_some())
            .finish_non_exhaustive()
    }
}

impl UserBinary {
    /// Loads a static, non-PIE user binary (the guest's test runner). DWARF is optional: with
    /// it code sites get source files, lines and inlined frames, without it only functions.
    pub fn open(path: &Path) -> Result<UserBinary, SymbolsError> {
        let io = |source| SymbolsError::Io {
            path: path.to_owned(),
            source,
        };
        let owned = || path.to_owned();
        let data = std::fs::read(path).map_err(io)?;
        let file = object::File::parse(&*data).map_err(|e| SymbolsError::Elf {
            path: owned(),
            message: e.to_string(),
        })?;
        match file.kind() {
            ObjectKind::Executable => {}
            ObjectKind::Dynamic => return Err(SymbolsError::Pie { path: owned() }),
            other => {
                return Err(SymbolsError::Elf {
                    path: owned(),
                    message: format!("not an executable ({other:?})"),
                });
            }
        }
        let mut syms = symbols::symbols(&file);
        if syms.is_empty() {
            return Err(SymbolsError::NoSymbols { path: owned() });
        }
        for s in &mut syms {
            // `{:#}` leaves out Rust's hash suffix; C names come back unchanged.
            s.name = format!("{:#}", rustc_demangle::demangle(&s.name));
        }
        let sections = symbols::sections(&file);
        let image = image(&file);
        let dwarf = match file.section_by_name(".debug_info") {
            Some(_) => Some(addr2line::Loader::new(path).map_err(|e| SymbolsError::Elf {
                path: owned(),
                message: e.to_string(),
            })?),
            None => None,
        };
        let prefix = dwarf
            .as_ref()
            .and_then(|d| symbols::build_prefix(d, &syms, &sections));
        Ok(UserBinary {
            name: symbols::file_name(path),
            dwarf,
            syms,
            sections,
            image,
            prefix,
        })
    }

    /// The binary's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the binary has DWARF (source lines and inlined frames).
    pub fn has_debug_info(&self) -> bool {
        self.dwarf.is_some()
    }

    /// Symbolises a user-mode instruction address.
    pub fn code(&self, pc: u64) -> CodeSite {
        let (symbol, offset) = match containing(&self.syms, pc) {
            Some(s) => (Some(s.name.clone()), pc - s.addr),
            None => (None, 0),
        };
        let frames = match &self.dwarf {
            Some(d) => symbols::dwarf_frames(d, pc, self.prefix.as_deref()),
            None => Vec::new(),
        };
        CodeSite {
            pc,
            mode: Mode::User,
            symbol,
            offset,
            frames,
        }
    }

    /// Names user memory at virtual address `vaddr`: a static object (or section) of the
    /// binary, else its region (heap, stack, user; see the module documentation).
    pub fn data(&self, vaddr: u64) -> What {
        let dynamic = |region| What::Dynamic { region, vaddr };
        if (self.image.0..self.image.1).contains(&vaddr) {
            if let Some(s) = containing(&self.syms, vaddr) {
                return What::UserStatic {
                    symbol: Some(s.name.clone()),
                    offset: vaddr - s.addr,
                    section: self.section_name(s.section),
                    vaddr,
                };
            }
            return match self
                .sections
                .iter()
                .find(|s| !s.name.is_empty() && in_range(vaddr, s.addr, s.size))
            {
                Some(s) => What::UserStatic {
                    symbol: None,
                    offset: vaddr - s.addr,
                    section: s.name.clone(),
                    vaddr,
                },
                None => dynamic(Region::User),
            };
        }
        match vaddr {
            STACK_LOW..=USER_END => dynamic(Region::Stack),
            v if v >= self.image.1 => dynamic(Region::Heap),
            _ => dynamic(Region::User),
        }
    }

    fn section_name(&self, index: usize) -> String {
        self.sections
            .get(index)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

/// The virtual range the loadable segments cover; `(0, 0)` when there is none.
fn image(file: &object::File<'_>) -> (u64, u64) {
    let object::File::Elf64(elf) = file else {
        return (0, 0);
    };
    use object::read::elf::ProgramHeader;
    let endian = elf.endian();
    let loads = elf
        .elf_program_headers()
        .iter()
        .filter(|h| h.p_type(endian) == object::elf::PT_LOAD && h.p_memsz(endian) > 0);
    let (mut lo, mut hi) = (u64::MAX, 0);
    for h in loads {
        let start = h.p_vaddr(endian);
        lo = lo.min(start);
        hi = hi.max(start.saturating_add(h.p_memsz(endian)));
    }
    if lo < hi { (lo, hi) } else { (0, 0) }
}
