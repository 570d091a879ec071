//! Symbolisation against an ELF image with DWARF: code addresses to functions, source lines and
//! inlined frames (gimli, through `addr2line`), physical data addresses to static symbols.
//!
//! # Physical to virtual (x86-64 Linux, booted with `nokaslr`)
//!
//! The tracer reports physical addresses (QEMU's `hwaddr`), so that the same memory seen
//! through two virtual mappings is one location. Turning one back into something named uses
//! two fixed mappings of the x86-64 kernel:
//!
//! - **The kernel image** (text, rodata, data, bss) is mapped at `__START_KERNEL_map`
//!   (`0xffffffff80000000`) + physical address. Without KASLR the decompressor puts the kernel
//!   at its link-time physical address (`CONFIG_PHYSICAL_START`, 16 MiB for Debian: `_text` =
//!   `0xffffffff81000000` at physical `0x1000000`), so the ELF program headers give the
//!   mapping exactly: in each `PT_LOAD` segment, `vaddr = phys - p_paddr + p_vaddr`. This
//!   module reads it from the headers rather than hard-coding the constant.
//! - **Everything else** the kernel allocates (slab objects, page-allocator pages, per-CPU
//!   areas) is reached through the direct map at `page_offset_base`, which is
//!   `0xffff888000000000` without KASLR and with 4-level paging (QEMU's default CPU has no
//!   LA57): `vaddr = phys + 0xffff888000000000`. Such an address has no static symbol.
//!
//! Parts of the image do not keep their static meaning at run time: the init sections between
//! `__init_begin` and `__init_end` are freed after boot and reused by the page allocator, so is
//! everything past `__end_of_kernel_reserve` (the unused part of `.brk` and the `.init.scratch`
//! of early boot, e.g. the 4 MiB `sme_workarea`), and the `.data..percpu` segment (linked at
//! virtual address 0) is only the template the per-CPU areas are copied from. None of them is
//! named after the image's symbols: such memory is classified by the virtual address the
//! tracer saw ([`Region`]), and a per-CPU location the tracer placed in a CPU's area is named
//! after the template's variable at that offset ([`Symbols::percpu`]).
//!
//! Which slab cache a heap object belongs to is recorded only in guest memory (its `struct
//! slab`), which no longer exists when the trace is scanned: the plugin reads it at test end
//! with the layout [`Symbols::slab_layout`] gives, and the scanner takes the name from the
//! record (see the crate docs).

use crate::layout::LayoutError;
use crate::schema::{CodeSite, Frame, Region, What};
use commuter_trace_format::percpu::PercpuLayout;
use commuter_trace_format::record::{Mode, PercpuPlace};
use commuter_trace_format::slab::SlabLayout;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SectionKind, SymbolKind};
use std::path::{Path, PathBuf};

/// Start of the kernel's direct map of physical memory on x86-64 without KASLR (4-level paging).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The image.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not an ELF image the reader understands.
    #[error("{} is not a readable ELF image: {message}", path.display())]
    Elf {
        /// The image.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A user binary is position-independent: where it was loaded is not recorded.
    #[error(
        "{} is position-independent (PIE): its load address is chosen at run time and the trace does not record it; build it non-PIE (for Rust: RUSTFLAGS=\"-C target-feature=+crt-static -C relocation-model=static\", as the guest is)",
        path.display()
    )]
    Pie {
        /// The binary.
        path: PathBuf,
    },
    /// A user binary has no symbol table.
    #[error("{} has no symbol table (fully stripped): use the unstripped binary", path.display())]
    NoSymbols {
        /// The binary.
        path: PathBuf,
    },
    /// The image has no DWARF line information.
    #[error(
        "{} has no DWARF debug information: use the debug image (for Linux: `scripts/install-linux-target --symbols`)",
        path.display()
    )]
    NoDebugInfo {
        /// The image.
        path: PathBuf,
    },
}

/// An ELF symbol with an address and a size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sym {
    pub(crate) addr: u64,
    pub(crate) size: u64,
    pub(crate) name: String,
    pub(crate) section: usize,
}

/// An allocated ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub(crate) addr: u64,
    pub(crate) size: u64,
    pub(crate) name: String,
}

/// A loaded part of the image: physical `[paddr, paddr + size)` is virtual `vaddr…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    paddr: u64,
    vaddr: u64,
    size: u64,
}

/// The symbol and address tables of an image, plus its DWARF for code locations.
pub struct Symbols {
    name: String,
    /// The image, re-read for [`Symbols::slab_layout`].
    path: PathBuf,
    dwarf: addr2line::Loader,
    /// Sized symbols of the image's virtual address space, sorted by address.
    syms: Vec<Sym>,
    /// Sized symbols of the per-CPU template (`.data..percpu`, linked at 0), sorted by address.
    percpu_syms: Vec<Sym>,
    sections: Vec<Section>,
    segments: Vec<Segment>,
    /// Virtual ranges of the image that the kernel gives back after boot.
    freed: Freed,
    /// Build directory prefix stripped from DWARF paths (e.g. `/build/…/linux-6.12.95/`).
    prefix: Option<String>,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Symbols")
            .field("name", &self.name)
            .field("symbols", &self.syms.len())
            .finish_non_exhaustive()
    }
}

impl Symbols {
    /// Loads an ELF image with DWARF (for Linux, the `vmlinux` of the `-dbg` package).
    pub fn open(path: &Path) -> Result<Symbols, SymbolsError> {
        let io = |source| SymbolsError::Io {
            path: path.to_owned(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the image is only read, while this function runs; a vmlinux is 350 MB, so it
        // is mapped rather than copied. Truncating it meanwhile is the caller's problem, as for
        // every mmap-based reader (addr2line maps it too).
        let data = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
        let elf_err = |message: String| SymbolsError::Elf {
            path: path.to_owned(),
            message,
        };
        let file = object::File::parse(&*data).map_err(|e| elf_err(e.to_string()))?;
        if file.section_by_name(".debug_info").is_none() {
            return Err(SymbolsError::NoDebugInfo {
                path: path.to_owned(),
            });
        }
        let dwarf = addr2line::Loader::new(path).map_err(|e| elf_err(e.to_string()))?;
        let sections = sections(&file);
        let (percpu_syms, syms): (Vec<Sym>, Vec<Sym>) = symbols(&file).into_iter().partition(|s| {
            sections
                .get(s.section)
                .is_some_and(|sec| sec.name == ".data..percpu")
        });
        let segments = segments(&file);
        let freed = Freed::of(&file);
        drop(file);
        let mut me = Symbols {
            name: file_name(path),
            path: path.to_owned(),
            dwarf,
            syms,
            percpu_syms,
            sections,
            segments,
            freed,
            prefix: None,
        };
        me.prefix = me.build_prefix();
        Ok(me)
    }

    /// The kernel's slab layout from this image's DWARF, for the tracer plugin to name the slab
    /// cache of heap memory (see [`crate::layout`]).
    pub fn slab_layout(&self) -> Result<SlabLayout, LayoutError> {
        crate::layout::slab_layout(&self.path)
    }

    /// Where the kernel keeps its per-CPU areas (the addresses of `__per_cpu_offset`,
    /// `nr_cpu_ids` and `pcpu_unit_size`), for the tracer plugin to place locations in them;
    /// `None` when the image lacks one of them.
    pub fn percpu_layout(&self) -> Option<PercpuLayout> {
        let addr = |name: &str| self.syms.iter().find(|s| s.name == name).map(|s| s.addr);
        Some(PercpuLayout {
            offsets: addr("__per_cpu_offset")?,
            nr_cpu_ids: addr("nr_cpu_ids")?,
            unit_size: addr("pcpu_unit_size")?,
        })
    }

    /// Names a place in a CPU's per-CPU area after the template's variable at that offset.
    pub fn percpu(&self, place: PercpuPlace) -> What {
        match containing(&self.percpu_syms, place.offset) {
            Some(s) => What::Percpu {
                cpu: place.cpu,
                symbol: Some(s.name.clone()),
                offset: place.offset - s.addr,
            },
            None => What::Percpu {
                cpu: place.cpu,
                symbol: None,
                offset: place.offset,
            },
        }
    }

    /// The kernel's version banner (`linux_banner`, what `/proc/version` prints), read from the
    /// image's data: a running kernel whose `/proc/version` differs is another build, and its
    /// addresses would be named wrongly. `None` when the image has no banner.
    pub fn linux_banner(&self) -> Option<String> {
        let f = std::fs::File::open(&self.path).ok()?;
        // SAFETY: read-only, for the duration of this function (see `Symbols::open`).
        let data = unsafe { memmap2::Mmap::map(&f) }.ok()?;
        let file = object::File::parse(&*data).ok()?;
        let sym = file.symbol_by_name("linux_banner")?;
        let section = file.section_by_index(sym.section_index()?).ok()?;
        let bytes = section.data().ok()?;
        let start = usize::try_from(sym.address().checked_sub(section.address())?).ok()?;
        let text = bytes.get(start..)?;
        let end = text.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&text[..end]).trim().to_string())
    }

    /// The image's file name (recorded in `conflicts.json`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Symbolises an instruction address.
    pub fn code(&self, pc: u64) -> CodeSite {
        let (symbol, offset) = match self.containing(pc) {
            Some(s) => (Some(s.name.clone()), pc - s.addr),
            None => (None, 0),
        };
        CodeSite {
            pc,
            mode: Mode::of_pc(pc),
            symbol,
            offset,
            frames: self.frames(pc),
        }
    }

    /// Source frames at `pc`, innermost first; empty when DWARF does not cover it.
    fn frames(&self, pc: u64) -> Vec<Frame> {
        dwarf_frames(&self.dwarf, pc, self.prefix.as_deref())
    }

    /// The build directory: the longest directory prefix that most functions' source files
    /// share (Debian's vmlinux names them `debian/build/build_amd64_none_amd64/fs/namei.c`).
    /// Assembler files without a directory are the minority this tolerates.
    fn build_prefix(&self) -> Option<String> {
        build_prefix(&self.dwarf, &self.syms, &self.sections)
    }

    /// Names the memory at a physical address, which the tracer saw accessed through the
    /// virtual address `seen` (if it said): a static symbol only where the image keeps it and
    /// inside the symbol's extent, else the image section, else the region of `seen`.
    pub fn data(&self, phys: u64, seen: Option<u64>) -> What {
        let dynamic = || {
            let vaddr = seen.unwrap_or_else(|| DIRECT_MAP_BASE.wrapping_add(phys));
            What::Dynamic {
                region: Region::of(vaddr),
                vaddr,
            }
        };
        let Some(vaddr) = self.image_vaddr(phys) else {
            return dynamic();
        };
        if let Some(s) = self.containing(vaddr) {
            return What::Static {
                symbol: s.name.clone(),
                offset: vaddr - s.addr,
                section: self.section_name(s.section),
                vaddr,
            };
        }
        match self
            .sections
            .iter()
            .find(|s| in_range(vaddr, s.addr, s.size))
        {
            Some(s) => What::Section {
                section: s.name.clone(),
                offset: vaddr - s.addr,
                vaddr,
            },
            None => dynamic(),
        }
    }

    /// The image's virtual address for a physical one, if the image keeps it after boot.
    fn image_vaddr(&self, phys: u64) -> Option<u64> {
        image_vaddr(&self.segments, &self.freed, phys)
    }

    /// The sized symbol containing `addr`, the closest one when they nest; ties by name.
    fn containing(&self, addr: u64) -> Option<&Sym> {
        containing(&self.syms, addr)
    }

    fn section_name(&self, index: usize) -> String {
        self.sections
            .get(index)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }
}

/// The sized symbol of `syms` (sorted by address) containing `addr`, the closest one when they
/// nest; ties by name.
pub(crate) fn containing(syms: &[Sym], addr: u64) -> Option<&Sym> {
    let end = syms.partition_point(|s| s.addr <= addr);
    // A containing symbol is at most a few entries back unless a huge symbol spans many small
    // ones, which the window bounds.
    syms[..end]
        .iter()
        .rev()
        .take(256)
        .find(|s| in_range(addr, s.addr, s.size))
}

/// Source frames at `pc` from `dwarf`, innermost first, with the build directory `prefix`
/// stripped from file names; empty when DWARF does not cover `pc`. Function names are
/// demangled by their DWARF language (Rust, C++), without Rust's hash suffix.
pub(crate) fn dwarf_frames(dwarf: &addr2line::Loader, pc: u64, prefix: Option<&str>) -> Vec<Frame> {
    let Ok(mut iter) = dwarf.find_frames(pc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // A malformed DWARF entry ends the walk; the frames found so far are still right.
    while let Ok(Some(f)) = iter.next() {
        let function = f
            .function
            .as_ref()
            .and_then(|n| n.demangle().ok().map(|s| s.into_owned()));
        let loc = f.location.as_ref();
        out.push(Frame {
            function,
            file: loc.and_then(|l| l.file).map(|p| relative(p, prefix)),
            line: loc.and_then(|l| l.line),
        });
    }
    out
}

/// Strips the build directory, so that paths read as in the source tree.
fn relative(path: &str, prefix: Option<&str>) -> String {
    let path = normalize(path);
    match prefix {
        Some(p) => path.strip_prefix(p).map(str::to_string).unwrap_or(path),
        None => path,
    }
}

/// The longest directory prefix that most functions' source files share (an even sample of 64
/// functions is enough, and cheap even for vmlinux).
pub(crate) fn build_prefix(
    dwarf: &addr2line::Loader,
    syms: &[Sym],
    sections: &[Section],
) -> Option<String> {
    let text: Vec<&Sym> = syms
        .iter()
        .filter(|s| {
            sections
                .get(s.section)
                .is_some_and(|sec| sec.name.starts_with(".text"))
        })
        .collect();
    let files: Vec<String> = text
        .iter()
        .step_by((text.len() / 64).max(1))
        .filter_map(|s| dwarf.find_location(s.addr).ok().flatten()?.file)
        .map(normalize)
        .collect();
    majority_dir(&files)
}

/// The parts of the image's virtual range that the kernel gives back to the page allocator
/// after boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Freed {
    /// `__init_begin..__init_end`, empty if either is missing (not Linux).
    init: (u64, u64),
    /// `__end_of_kernel_reserve`: the kernel reserves its image only up to here (Linux 5.4 and
    /// later); what follows (`.brk` beyond its used part, `.init.scratch`) is freed.
    reserved_end: Option<u64>,
}

impl Freed {
    fn of(file: &object::File<'_>) -> Freed {
        let addr = |name: &str| file.symbol_by_name(name).map(|s| s.address());
        let init = match (addr("__init_begin"), addr("__init_end")) {
            (Some(lo), Some(hi)) if lo < hi => (lo, hi),
            _ => (0, 0),
        };
        Freed {
            init,
            reserved_end: addr("__end_of_kernel_reserve"),
        }
    }

    fn contains(&self, vaddr: u64) -> bool {
        (self.init.0..self.init.1).contains(&vaddr) || self.reserved_end.is_some_and(|e| vaddr >= e)
    }
}

/// Maps a physical address into the image through its load segments. A segment linked at
/// virtual address 0 is Linux's per-CPU template (its live copies are dynamic), and `freed`
/// memory is given back to the page allocator after boot: neither keeps a static name.
fn image_vaddr(segments: &[Segment], freed: &Freed, phys: u64) -> Option<u64> {
    let seg = segments
        .iter()
        .filter(|s| s.vaddr != 0)
        .find(|s| in_range(phys, s.paddr, s.size))?;
    let vaddr = phys - seg.paddr + seg.vaddr;
    (!freed.contains(vaddr)).then_some(vaddr)
}

pub(crate) fn in_range(x: u64, start: u64, size: u64) -> bool {
    x >= start && x - start < size
}

/// The file name, through symlinks (`.cache/linux/vmlinux` names the versioned image).
pub(crate) fn file_name(path: &Path) -> String {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    real.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| real.display().to_string())
}

/// Sized function and object symbols, sorted by address then name; `section` indexes the
/// table [`sections`] returns. Assembly code's symbols often have no type (the kernel's
/// `entry_SYSCALL_64`, where every system call's stack ends): a sized one in a code section
/// counts as a function.
pub(crate) fn symbols(file: &object::File<'_>) -> Vec<Sym> {
    let in_code = |s: &object::Symbol<'_, '_>| {
        s.section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .is_some_and(|section| section.kind() == SectionKind::Text)
    };
    let mut out: Vec<Sym> = file
        .symbols()
        .filter(|s| match s.kind() {
            SymbolKind::Text | SymbolKind::Data => true,
            SymbolKind::Unknown => in_code(s),
            _ => false,
        })
        .filter(|s| s.size() > 0 && s.is_definition())
        .filter_map(|s| {
            Some(Sym {
                addr: s.address(),
                size: s.size(),
                name: s.name().ok()?.to_string(),
                section: s.section_index()?.0,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.addr, &a.name).cmp(&(b.addr, &b.name)));
    out.dedup_by(|a, b| a.addr == b.addr && a.name == b.name);
    out
}

/// Allocated sections, indexed by ELF section index (unallocated ones are left empty).
pub(crate) fn sections(file: &object::File<'_>) -> Vec<Section> {
    let mut out = Vec::new();
    for s in file.sections() {
        let i = s.index().0;
        if out.len() <= i {
            out.resize(
                i + 1,
                Section {
                    addr: 0,
                    size: 0,
                    name: String::new(),
                },
            );
        }
        if allocated(s.flags()) {
            out[i] = Section {
                addr: s.address(),
                size: s.size(),
                name: s.name().unwrap_or_default().to_string(),
            };
        }
    }
    out
}

fn allocated(flags: SectionFlags) -> bool {
    const SHF_ALLOC: u64 = 2;
    matches!(flags, SectionFlags::Elf { sh_flags } if sh_flags & SHF_ALLOC != 0)
}

fn segments(file: &object::File<'_>) -> Vec<Segment> {
    let object::File::Elf64(elf) = file else {
        return Vec::new();
    };
    let endian = elf.endian();
    elf.segments()
        .map(|s| {
            use object::read::elf::ProgramHeader;
            let h = s.elf_program_header();
            Segment {
                paddr: h.p_paddr(endian),
                vaddr: h.p_vaddr(endian),
                size: h.p_memsz(endian),
            }
        })
        .filter(|s| s.size > 0)
        .collect()
}

/// Removes `.` components and folds `dir/..` (DWARF keeps the compiler's spelling, e.g.
/// `arch/x86/mm/../include/asm/trace/./exceptions.h`).
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "." => {}
            ".." if out.last().is_some_and(|l| !l.is_empty() && *l != "..") => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    out.join("/")
}

/// The longest directory prefix (ending in `/`) shared by at least 80% of `paths` (and by two
/// or more of them).
fn majority_dir(paths: &[String]) -> Option<String> {
    let need = (paths.len() * 4).div_ceil(5).max(2);
    let mut best: Option<&str> = None;
    for p in paths {
        for (i, _) in p.match_indices('/') {
            let dir = &p[..=i];
            if best.is_some_and(|b| b.len() >= dir.len()) {
                continue;
            }
            if paths.iter().filter(|q| q.starts_with(dir)).count() >= need {
                best = Some(dir);
            }
        }
    }
    best.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load segments of Debian's 6.1.0-57 vmlinux (`readelf -l`), and its freed ranges
    /// (`nm`: `__init_begin`, `__init_end`, `__end_of_kernel_reserve`).
    fn vmlinux() -> (Vec<Segment>, Freed) {
        let seg = |vaddr, paddr, size| Segment { paddr, vaddr, size };
        let segs = vec![
            seg(0xffff_ffff_8100_0000, 0x100_0000, 0x18e_acdc),
            seg(0xffff_ffff_82a0_0000, 0x2a0_0000, 0x64_4000),
            seg(0, 0x304_4000, 0x3_5000),
            seg(0xffff_ffff_8307_9000, 0x307_9000, 0x198_7000),
        ];
        let freed = Freed {
            init: (0xffff_ffff_8304_4000, 0xffff_ffff_8330_6000),
            reserved_end: Some(0xffff_ffff_8440_0000),
        };
        (segs, freed)
    }

    #[test]
    fn kernel_image_maps_at_start_kernel_map() {
        let (segs, freed) = vmlinux();
        // .data.
        assert_eq!(
            image_vaddr(&segs, &freed, 0x2a0_79c0),
            Some(0xffff_ffff_82a0_79c0)
        );
        // .bss lies after the init sections in the same segment.
        assert_eq!(
            image_vaddr(&segs, &freed, 0x372_f000),
            Some(0xffff_ffff_8372_f000)
        );
    }

    #[test]
    fn percpu_template_freed_memory_and_heap_are_not_static() {
        let (segs, freed) = vmlinux();
        // The per-CPU template, init memory, the heap.
        assert_eq!(image_vaddr(&segs, &freed, 0x305_0000), None);
        assert_eq!(image_vaddr(&segs, &freed, 0x310_0000), None);
        assert_eq!(image_vaddr(&segs, &freed, 0x1000_0000), None);
        // `sme_workarea` in .init.scratch, past the reserved end: page-allocator memory now.
        assert_eq!(image_vaddr(&segs, &freed, 0x462_5000), None);
        assert!(image_vaddr(&segs, &freed, 0x43f_ffff).is_some());
    }

    #[test]
    fn paths_lose_dot_components_and_the_build_directory() {
        assert_eq!(
            normalize("b/arch/x86/mm/../include/asm/./x.h"),
            "b/arch/x86/include/asm/x.h"
        );
        let paths: Vec<String> = ["d/b/fs/a.c", "d/b/mm/b.c", "d/b/fs/c.c", "d/b/k/x.c", "x.S"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(majority_dir(&paths).as_deref(), Some("d/b/"));
        assert_eq!(majority_dir(&paths[4..]), None);
    }
}
