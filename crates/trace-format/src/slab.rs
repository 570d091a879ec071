//! The kernel data layout the tracer needs to name the slab cache of a heap address, handed
//! from the symboliser (which reads it from the kernel's DWARF) to the plugin (which reads guest
//! memory while the VM runs) as one plugin argument, `slab=…`.
//!
//! The walk it enables, for a physical address `p` (x86-64, `CONFIG_SPARSEMEM_VMEMMAP`, SLUB):
//!
//! 1. `page = *vmemmap_base + (p >> PAGE_SHIFT) * page_size` (the `struct page` array);
//! 2. a tail page of a compound page has bit 0 of `page->compound_head` set and the rest
//!    pointing at the head page, which carries the type;
//! 3. the page is a slab page when the 64-bit word at `mark.offset` of the head page, masked
//!    with `mark.mask`, equals `mark.value` ([`SlabMark`]: how a kernel marks slab pages has
//!    changed twice);
//! 4. `struct slab` overlays the head page: `cache = slab->slab_cache`, and the cache's name is
//!    the C string at `cache->name`.
//!
//! Every offset and constant comes from DWARF, never from a copy of the kernel headers; only
//! the page size and the little-endian layout of the words are architecture facts (see
//! [`PAGE_SHIFT`]).

use std::fmt;
use std::str::FromStr;

/// x86-64 base page size (4 KiB), the unit of the `struct page` array.
pub const PAGE_SHIFT: u32 = 12;

/// Where the kernel keeps what identifies a slab page and its cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabLayout {
    /// Virtual address of the kernel variable `vmemmap_base` (the address of the `struct page`
    /// array; a variable because the memory layout may be randomised).
    pub vmemmap_base: u64,
    /// `sizeof(struct page)`.
    pub page_size: u64,
    /// `offsetof(struct page, compound_head)`.
    pub compound_head: u64,
    /// What tells a slab page.
    pub mark: SlabMark,
    /// `offsetof(struct slab, slab_cache)`.
    pub slab_cache: u64,
    /// `offsetof(struct kmem_cache, name)`.
    pub cache_name: u64,
}

/// How a head `struct page` says it is a slab page: `(word & mask) == value`, for the
/// little-endian 64-bit word at `offset`. The three ways Linux has marked slab pages:
///
/// - 6.12 and later: the top byte of the 32-bit `page_type` is `PGTY_slab` ([`SlabMark::page_type_byte`]);
/// - 6.10 and 6.11: `page_type` has `PAGE_TYPE_BASE` set and the `PG_slab` bit *clear*
///   ([`SlabMark::page_type_cleared_bit`]);
/// - before 6.10: bit `PG_slab` of `page->flags` is set ([`SlabMark::flag`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabMark {
    /// Offset of the word in `struct page`.
    pub offset: u64,
    /// Bits that decide.
    pub mask: u64,
    /// Their value on a slab page.
    pub value: u64,
}

impl SlabMark {
    /// The page type in the top byte of the 32-bit `page_type` at `offset` (6.12+).
    pub fn page_type_byte(offset: u64, pgty_slab: u8) -> SlabMark {
        SlabMark {
            offset,
            mask: 0xff00_0000,
            value: u64::from(pgty_slab) << 24,
        }
    }

    /// An inverted type bit of the 32-bit `page_type` at `offset`: a typed page has `base` set
    /// and its type's bit cleared (6.10, 6.11).
    pub fn page_type_cleared_bit(offset: u64, base: u32, pg_slab: u32) -> SlabMark {
        SlabMark {
            offset,
            mask: u64::from(base | pg_slab),
            value: u64::from(base),
        }
    }

    /// Bit `bit` of the page flags word at `offset` (before 6.10).
    pub fn flag(offset: u64, bit: u8) -> Option<SlabMark> {
        let m = 1u64.checked_shl(u32::from(bit))?;
        Some(SlabMark {
            offset,
            mask: m,
            value: m,
        })
    }

    /// Whether a page whose word at [`SlabMark::offset`] is `word` is a slab page.
    pub fn matches(&self, word: u64) -> bool {
        word & self.mask == self.value
    }
}

impl SlabLayout {
    /// The plugin argument carrying this layout: `slab=<value>` with the value of [`fmt::Display`].
    pub fn plugin_arg(&self) -> String {
        format!("slab={self}")
    }
}

/// Colon-separated hex fields in declaration order, the mark's three in place of `mark`, e.g.
/// `0xffffffff825d4598:0x40:0x8:0x30:0xff000000:0xf5000000:0x8:0x60` (commas separate plugin
/// arguments, so they cannot appear here).
impl fmt::Display for SlabLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}",
            self.vmemmap_base,
            self.page_size,
            self.compound_head,
            self.mark.offset,
            self.mark.mask,
            self.mark.value,
            self.slab_cache,
            self.cache_name
        )
    }
}

/// A `slab=` value that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad slab layout `{0}`: expected 8 colon-separated 0x numbers (vmemmap_base:page_size:compound_head:mark_offset:mark_mask:mark_value:slab_cache:cache_name); the plugin and the driver must come from one build"
)]
pub struct SlabLayoutError(pub String);

impl FromStr for SlabLayout {
    type Err = SlabLayoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SlabLayoutError(s.to_owned());
        let fields = crate::hex_fields(s).ok_or_else(err)?;
        let [
            vmemmap_base,
            page_size,
            compound_head,
            offset,
            mask,
            value,
            slab_cache,
            cache_name,
        ] = fields[..]
        else {
            return Err(err());
        };
        let layout = SlabLayout {
            vmemmap_base,
            page_size,
            compound_head,
            mark: SlabMark {
                offset,
                mask,
                value,
            },
            slab_cache,
            cache_name,
        };
        // A zero-sized page or a word outside it would make the walk read nonsense, and a mark
        // whose value has bits outside its mask matches no page.
        let inside = |off: u64| off.checked_add(8).is_some_and(|e| e <= page_size);
        if !inside(compound_head) || !inside(offset) || mask == 0 || value & !mask != 0 {
            return Err(err());
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_plugin_argument() {
        for mark in [
            SlabMark::page_type_byte(48, 0xf5),
            SlabMark::page_type_cleared_bit(48, 0x8000_0000, 0x0200_0000),
            SlabMark::flag(0, 9).unwrap(),
        ] {
            let l = SlabLayout {
                vmemmap_base: 0xffff_ffff_8200_0000,
                page_size: 64,
                compound_head: 8,
                mark,
                slab_cache: 8,
                cache_name: 96,
            };
            let arg = l.plugin_arg();
            assert!(!arg.contains(','), "{arg}");
            assert_eq!(arg.strip_prefix("slab=").unwrap().parse(), Ok(l));
        }
    }

    #[test]
    fn each_mark_tells_slab_pages_as_its_kernel_does() {
        // 6.12: type byte 0xf5 in the top byte of page_type (the low half of the word).
        let typed = SlabMark::page_type_byte(48, 0xf5);
        assert!(typed.matches(0x0000_0001_f500_0000));
        assert!(!typed.matches(0xf000_0000) && !typed.matches(0xffff_ffff));
        // 6.10: base bit set, PG_slab cleared; an untyped page is all ones.
        let cleared = SlabMark::page_type_cleared_bit(48, 0x8000_0000, 0x0200_0000);
        assert!(cleared.matches(0xfdff_ffff));
        assert!(!cleared.matches(0xffff_ffff) && !cleared.matches(0x0000_0003));
        // 6.1: PG_slab is bit 9 of flags.
        let flag = SlabMark::flag(0, 9).unwrap();
        assert!(flag.matches(0x0017_ffff_c000_0200) && !flag.matches(0x0017_ffff_c000_0000));
        assert_eq!(SlabMark::flag(0, 64), None);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "0x1:0x2",
            "1:2:3:4:5:6:7:8",
            // The 7-field format of older builds.
            "0x1:0x40:0x8:0x30:0xf5:0x8:0x60",
            // A value outside its mask.
            "0x1:0x40:0x8:0x30:0xff000000:0x1f5000000:0x8:0x60",
        ] {
            assert!(bad.parse::<SlabLayout>().is_err(), "{bad}");
        }
        // The mark's word beyond the page.
        assert!(
            "0x1:0x40:0x8:0x3c:0xff000000:0xf5000000:0x8:0x60"
                .parse::<SlabLayout>()
                .is_err()
        );
    }
}
