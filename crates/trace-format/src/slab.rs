//! The kernel data layout the tracer needs to name the slab cache of a heap address, handed
//! from the symboliser (which reads it from the kernel's DWARF) to the plugin (which reads guest
//! memory while the VM runs) as one plugin argument, `slab=…`.
//!
//! The walk it enables, for a physical address `p` (x86-64, `CONFIG_SPARSEMEM_VMEMMAP`, SLUB):
//!
//! 1. `page = *vmemmap_base + (p >> PAGE_SHIFT) * page_size` (the `struct page` array);
//! 2. a tail page of a compound page has bit 0 of `page->compound_head` set and the rest
//!    pointing at the head page, which carries the type;
//! 3. the page is a slab page when the top byte of `page->page_type` is `slab_type`
//!    (`PGTY_slab` of `enum pagetype`, Linux 6.12 and later);
//! 4. `struct slab` overlays the head page: `cache = slab->slab_cache`, and the cache's name is
//!    the C string at `cache->name`.
//!
//! Every offset comes from DWARF, never from a copy of the kernel headers; only the page size
//! and the position of the type byte are architecture facts (see [`PAGE_SHIFT`]).

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
    /// `offsetof(struct page, page_type)`, a 32-bit field whose top byte is the page type.
    pub page_type: u64,
    /// `PGTY_slab`: the page type of slab pages.
    pub slab_type: u8,
    /// `offsetof(struct slab, slab_cache)`.
    pub slab_cache: u64,
    /// `offsetof(struct kmem_cache, name)`.
    pub cache_name: u64,
}

impl SlabLayout {
    /// The plugin argument carrying this layout: `slab=<value>` with the value of [`fmt::Display`].
    pub fn plugin_arg(&self) -> String {
        format!("slab={self}")
    }
}

/// Colon-separated hex fields in declaration order, e.g.
/// `0xffffffff825d4598:0x40:0x8:0x30:0xf5:0x8:0x60` (commas separate plugin arguments, so they
/// cannot appear here).
impl fmt::Display for SlabLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}:{:#x}",
            self.vmemmap_base,
            self.page_size,
            self.compound_head,
            self.page_type,
            self.slab_type,
            self.slab_cache,
            self.cache_name
        )
    }
}

/// A `slab=` value that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad slab layout `{0}`: expected 7 colon-separated 0x numbers (vmemmap_base:page_size:compound_head:page_type:slab_type:slab_cache:cache_name)"
)]
pub struct SlabLayoutError(pub String);

impl FromStr for SlabLayout {
    type Err = SlabLayoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || SlabLayoutError(s.to_owned());
        let fields = s
            .split(':')
            .map(|f| {
                f.strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(err)?;
        let [
            vmemmap_base,
            page_size,
            compound_head,
            page_type,
            slab_type,
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
            page_type,
            slab_type: u8::try_from(slab_type).map_err(|_| err())?,
            slab_cache,
            cache_name,
        };
        // A zero-sized page or a field outside it would make the walk read nonsense.
        let inside = |off: u64, len: u64| off.checked_add(len).is_some_and(|e| e <= page_size);
        if !inside(layout.compound_head, 8) || !inside(layout.page_type, 4) {
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
        let l = SlabLayout {
            vmemmap_base: 0xffff_ffff_8200_0000,
            page_size: 64,
            compound_head: 8,
            page_type: 48,
            slab_type: 0xf5,
            slab_cache: 8,
            cache_name: 96,
        };
        let arg = l.plugin_arg();
        assert!(!arg.contains(','), "{arg}");
        assert_eq!(arg.strip_prefix("slab=").unwrap().parse(), Ok(l));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "0x1:0x2",
            "1:2:3:4:5:6:7",
            "0x1:0x40:0x8:0x30:0x1f5:0x8:0x60",
        ] {
            assert!(bad.parse::<SlabLayout>().is_err(), "{bad}");
        }
        // page_type beyond the page.
        assert!(
            "0x1:0x40:0x8:0x3e:0xf5:0x8:0x60"
                .parse::<SlabLayout>()
                .is_err()
        );
    }
}
