//! The kernel's slab layout ([`SlabLayout`]) read from an image's DWARF, for the tracer plugin
//! to name the slab cache of heap memory while the guest runs (see
//! [`commuter_trace_format::slab`] for the walk it drives).
//!
//! Nothing is taken from a copy of the kernel headers: sizes, member offsets (through the
//! anonymous unions and structs of `struct page` and `struct slab`) and the constants that mark
//! a slab page come from the image's own type information, and `vmemmap_base` from its symbol
//! table. The types are looked up in the compilation unit of `mm/slub.c` first, which defines
//! all of them, then in every unit.
//!
//! How a slab page is marked depends on the kernel version, and the image's enumerations say
//! which applies ([`SlabMark`]): `PGTY_slab` of `enum pagetype` (6.12 and later), else
//! `PG_slab` and `PAGE_TYPE_BASE` of `enum pagetype` (6.10, 6.11), else `PG_slab` of `enum
//! pageflags` (earlier kernels, e.g. Debian's 6.1).

use addr2line::gimli;
use commuter_trace_format::slab::{SlabLayout, SlabMark};
use gimli::{AttributeValue, DebuggingInformationEntry, EndianSlice, RunTimeEndian, Unit};
use object::{Object, ObjectSection, ObjectSymbol};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Why the layout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The image.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not an ELF image, or its DWARF does not parse.
    #[error("cannot read the DWARF of {}: {message}", path.display())]
    Dwarf {
        /// The image.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// Something the walk needs is not in the image (no debug info, another allocator).
    #[error("{} has no {what}", path.display())]
    Missing {
        /// The image.
        path: PathBuf,
        /// What is missing, e.g. `struct slab member slab_cache`.
        what: String,
    },
}

pub(crate) type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// A kernel image opened for a layout lookup: its symbols and its DWARF.
pub(crate) struct Image<'d> {
    path: &'d Path,
    file: object::File<'d>,
    dwarf: gimli::Dwarf<R<'d>>,
}

impl Image<'_> {
    /// Opens the image at `path` and hands it to `look`.
    pub fn with<T>(
        path: &Path,
        look: impl FnOnce(&Image<'_>) -> Result<T, LayoutError>,
    ) -> Result<T, LayoutError> {
        let io = |source| LayoutError::Io {
            path: path.to_owned(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only, for the duration of this function (see `Symbols::open`).
        let data = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
        let dwarf_err = |e: &dyn std::fmt::Display| dwarf_error(path, e);
        let file = object::File::parse(&*data).map_err(|e| dwarf_err(&e))?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, object::Error> {
            match file.section_by_name(id.name()) {
                Some(s) => s.uncompressed_data(),
                None => Ok(Cow::Borrowed(&[])),
            }
        })
        .map_err(|e| dwarf_err(&e))?;
        let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
        look(&Image { path, file, dwarf })
    }

    /// What the lookup needs and the image lacks, e.g. `symbol vmemmap_base`.
    pub fn missing(&self, what: &str) -> LayoutError {
        LayoutError::Missing {
            path: self.path.to_owned(),
            what: what.to_owned(),
        }
    }

    /// The address of symbol `name` (of `size` bytes, if given).
    pub fn symbol(&self, name: &str, size: Option<u64>) -> Result<u64, LayoutError> {
        self.file
            .symbol_by_name(name)
            .filter(|s| size.is_none_or(|n| s.size() == n))
            .map(|s| s.address())
            .ok_or_else(|| self.missing(&format!("symbol {name}")))
    }

    /// Visits the compilation units, first the one of the source file `defining` (which defines
    /// every type sought), then, if `done(found)` is still false, every unit, until it is.
    pub fn search<F>(
        &self,
        defining: &str,
        found: &mut F,
        done: impl Fn(&F) -> bool,
        mut visit: impl FnMut(&gimli::Dwarf<R<'_>>, &Unit<R<'_>>, &mut F) -> gimli::Result<()>,
    ) -> Result<(), LayoutError> {
        let suffix = format!("/{defining}");
        let in_defining = |unit: &Unit<R<'_>>| {
            let name = unit.name.map(|n| n.slice()).unwrap_or_default();
            name == defining.as_bytes() || name.ends_with(suffix.as_bytes())
        };
        for only_defining in [true, false] {
            let mut units = self.dwarf.units();
            while let Some(header) = units.next().map_err(|e| dwarf_error(self.path, &e))? {
                if done(found) {
                    return Ok(());
                }
                let unit = self
                    .dwarf
                    .unit(header)
                    .map_err(|e| dwarf_error(self.path, &e))?;
                if !only_defining || in_defining(&unit) {
                    visit(&self.dwarf, &unit, found).map_err(|e| dwarf_error(self.path, &e))?;
                }
            }
            if done(found) {
                break;
            }
        }
        Ok(())
    }
}

fn dwarf_error(path: &Path, e: &dyn std::fmt::Display) -> LayoutError {
    LayoutError::Dwarf {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Reads the slab layout of the kernel image at `path`.
pub fn slab_layout(path: &Path) -> Result<SlabLayout, LayoutError> {
    Image::with(path, |image| {
        let vmemmap_base = image.symbol("vmemmap_base", Some(8))?;
        let mut found = Found::default();
        image.search("mm/slub.c", &mut found, Found::complete, search_unit)?;
        found.layout(image, vmemmap_base)
    })
}

impl Found {
    fn layout(&self, image: &Image<'_>, vmemmap_base: u64) -> Result<SlabLayout, LayoutError> {
        let missing = |what: &str| image.missing(what);
        let page = self.page.ok_or_else(|| missing("DWARF struct page"))?;
        let need = |v: Option<u64>, what: &str| v.ok_or_else(|| missing(what));
        Ok(SlabLayout {
            vmemmap_base,
            page_size: page.size,
            compound_head: need(page.compound_head, "struct page member compound_head")?,
            mark: self.mark().ok_or_else(|| {
                missing(
                    "way to tell slab pages (enumerator PGTY_slab or PG_slab of enum pagetype, \
                     or PG_slab of enum pageflags, with the struct page member it applies to)",
                )
            })?,
            slab_cache: need(self.slab_cache, "DWARF struct slab member slab_cache")?,
            cache_name: need(self.cache_name, "DWARF struct kmem_cache member name")?,
        })
    }
}

#[derive(Clone, Copy, Debug)]
struct Page {
    size: u64,
    compound_head: Option<u64>,
    page_type: Option<u64>,
    flags: Option<u64>,
}

#[derive(Debug, Default)]
struct Found {
    page: Option<Page>,
    /// `PGTY_slab` of `enum pagetype` (6.12+).
    pgty_slab: Option<u8>,
    /// `PAGE_TYPE_BASE` and `PG_slab` of `enum pagetype` (6.10, 6.11).
    type_bits: Option<(u32, u32)>,
    /// `PG_slab` of `enum pageflags` (before 6.10).
    flag_bit: Option<u8>,
    slab_cache: Option<u64>,
    cache_name: Option<u64>,
}

impl Found {
    fn complete(&self) -> bool {
        self.page.is_some_and(|p| p.compound_head.is_some())
            && self.mark().is_some()
            && self.slab_cache.is_some()
            && self.cache_name.is_some()
    }

    /// The newest marking the image knows: a kernel's headers define only the one it uses.
    fn mark(&self) -> Option<SlabMark> {
        let page = self.page?;
        if let (Some(t), Some(at)) = (self.pgty_slab, page.page_type) {
            return Some(SlabMark::page_type_byte(at, t));
        }
        if let (Some((base, bit)), Some(at)) = (self.type_bits, page.page_type) {
            return Some(SlabMark::page_type_cleared_bit(at, base, bit));
        }
        SlabMark::flag(page.flags?, self.flag_bit?)
    }
}

fn search_unit(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    found: &mut Found,
) -> gimli::Result<()> {
    let mut cursor = unit.entries();
    while let Some((_, entry)) = cursor.next_dfs()? {
        let tag = entry.tag();
        if tag != gimli::DW_TAG_structure_type && tag != gimli::DW_TAG_enumeration_type {
            continue;
        }
        if entry.attr_value(gimli::DW_AT_declaration)?.is_some() {
            continue;
        }
        let Some(name) = name(dwarf, unit, entry)? else {
            continue;
        };
        let offset = entry.offset();
        match (tag, name.as_slice()) {
            (gimli::DW_TAG_structure_type, b"page") if found.page.is_none() => {
                let Some(size) = udata(entry.attr_value(gimli::DW_AT_byte_size)?) else {
                    continue;
                };
                found.page = Some(Page {
                    size,
                    compound_head: member(dwarf, unit, offset, b"compound_head", 0)?,
                    page_type: member(dwarf, unit, offset, b"page_type", 0)?,
                    flags: member(dwarf, unit, offset, b"flags", 0)?,
                });
            }
            (gimli::DW_TAG_structure_type, b"slab") if found.slab_cache.is_none() => {
                found.slab_cache = member(dwarf, unit, offset, b"slab_cache", 0)?;
            }
            (gimli::DW_TAG_structure_type, b"kmem_cache") if found.cache_name.is_none() => {
                found.cache_name = member(dwarf, unit, offset, b"name", 0)?;
            }
            (gimli::DW_TAG_enumeration_type, b"pagetype") if found.pgty_slab.is_none() => {
                let value = |name: &[u8]| enumerator(dwarf, unit, offset, name);
                found.pgty_slab = value(b"PGTY_slab")?.and_then(|v| u8::try_from(v).ok());
                let bits = (value(b"PAGE_TYPE_BASE")?, value(b"PG_slab")?);
                if let (Some(base), Some(bit)) = bits {
                    found.type_bits = as_u32(base).zip(as_u32(bit));
                }
            }
            (gimli::DW_TAG_enumeration_type, b"pageflags") if found.flag_bit.is_none() => {
                found.flag_bit =
                    enumerator(dwarf, unit, offset, b"PG_slab")?.and_then(|v| u8::try_from(v).ok());
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn name(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    entry: &DebuggingInformationEntry<'_, '_, R<'_>>,
) -> gimli::Result<Option<Vec<u8>>> {
    match entry.attr_value(gimli::DW_AT_name)? {
        Some(v) => Ok(Some(dwarf.attr_string(unit, v)?.slice().to_vec())),
        None => Ok(None),
    }
}

pub(crate) fn udata(v: Option<AttributeValue<R<'_>>>) -> Option<u64> {
    match v? {
        AttributeValue::Udata(x) => Some(x),
        AttributeValue::Data1(x) => Some(x.into()),
        AttributeValue::Data2(x) => Some(x.into()),
        AttributeValue::Data4(x) => Some(x.into()),
        AttributeValue::Data8(x) => Some(x),
        AttributeValue::Sdata(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

/// Depth of anonymous struct/union nesting followed; `struct page` needs three.
const MAX_NESTING: u32 = 8;

/// Offset of member `want` in the struct or union at `offset`, also inside anonymous
/// members (C11 anonymous structs and unions, whose members belong to the enclosing type).
pub(crate) fn member(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    offset: gimli::UnitOffset,
    want: &[u8],
    depth: u32,
) -> gimli::Result<Option<u64>> {
    if depth > MAX_NESTING {
        return Ok(None);
    }
    let mut tree = unit.entries_tree(Some(offset))?;
    let root = tree.root()?;
    let mut children = root.children();
    while let Some(child) = children.next()? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        // Union members have no location: they start at the union's start.
        let at = udata(e.attr_value(gimli::DW_AT_data_member_location)?).unwrap_or(0);
        match name(dwarf, unit, e)? {
            Some(n) if n == want => return Ok(Some(at)),
            Some(_) => {}
            None => {
                let Some(AttributeValue::UnitRef(ty)) = e.attr_value(gimli::DW_AT_type)? else {
                    continue;
                };
                if let Some(inner) = member(dwarf, unit, ty, want, depth + 1)? {
                    return Ok(Some(at + inner));
                }
            }
        }
    }
    Ok(None)
}

/// A 32-bit enumerator's bits: `PAGE_TYPE_BASE` (`0x80000000`) is stored as a negative
/// number when the compiler gave the enumeration a signed type.
fn as_u32(v: i64) -> Option<u32> {
    u32::try_from(v)
        .ok()
        .or_else(|| i32::try_from(v).ok().map(|x| x as u32))
}

/// The value of enumerator `want` of the enumeration at `offset`.
fn enumerator(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    offset: gimli::UnitOffset,
    want: &[u8],
) -> gimli::Result<Option<i64>> {
    let mut tree = unit.entries_tree(Some(offset))?;
    let root = tree.root()?;
    let mut children = root.children();
    while let Some(child) = children.next()? {
        let e = child.entry();
        if e.tag() == gimli::DW_TAG_enumerator && name(dwarf, unit, e)?.as_deref() == Some(want) {
            return Ok(match e.attr_value(gimli::DW_AT_const_value)? {
                Some(AttributeValue::Sdata(x)) => Some(x),
                other => udata(other).and_then(|x| i64::try_from(x).ok()),
            });
        }
    }
    Ok(None)
}
