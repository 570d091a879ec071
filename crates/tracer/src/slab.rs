//! Naming the slab cache of shared locations: the walk of [`commuter_trace_format::slab`]
//! over guest memory, which the plugin reads at end-test while the objects still exist. Pure
//! apart from the [`GuestMemory`] it is given, so it is unit-tested on a synthetic memory.

use commuter_trace_format::record::TestRecord;
use commuter_trace_format::slab::{PAGE_SHIFT, SlabLayout};
use std::collections::HashMap;

/// Longest cache name read; Linux's are far shorter (`kmalloc-rcl-8k`, `shmem_inode_cache`).
const MAX_NAME: usize = 64;
/// Bytes of a name read at once (never across a page, which may be unmapped).
const NAME_CHUNK: u64 = 32;
const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// Reads guest kernel memory by virtual address.
pub trait GuestMemory {
    /// Fills `buf` from `vaddr`; false when the memory is not mapped.
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> bool;
}

/// `N` bytes of guest memory at `vaddr`; `None` when it is not mapped.
pub fn read_bytes<const N: usize>(mem: &mut dyn GuestMemory, vaddr: u64) -> Option<[u8; N]> {
    let mut b = [0u8; N];
    mem.read(vaddr, &mut b).then_some(b)
}

/// A little-endian `u64` of guest memory.
pub fn read_u64(mem: &mut dyn GuestMemory, vaddr: u64) -> Option<u64> {
    read_bytes(mem, vaddr).map(u64::from_le_bytes)
}

/// A little-endian `u32` of guest memory.
pub fn read_u32(mem: &mut dyn GuestMemory, vaddr: u64) -> Option<u32> {
    read_bytes(mem, vaddr).map(u32::from_le_bytes)
}

/// The `struct page` that holds frame `pfn`'s fields: its own, or for a tail page of a
/// compound page (bit 0 of `compound_head` set) its head's. `vmemmap` is the `struct page`
/// array, `page_size` its element size.
pub fn head_page(
    mem: &mut dyn GuestMemory,
    vmemmap: u64,
    page_size: u64,
    compound_head: u64,
    pfn: u64,
) -> Option<u64> {
    let page = vmemmap.checked_add(pfn.checked_mul(page_size)?)?;
    let head = read_u64(mem, page.checked_add(compound_head)?)?;
    Some(if head & 1 == 1 { head - 1 } else { page })
}

/// Sparse guest memory of 8-byte words, for unit tests of what reads pointers and fields.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Words(pub HashMap<u64, u64>);

#[cfg(test)]
impl GuestMemory for Words {
    fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> bool {
        let Some(w) = self.0.get(&vaddr) else {
            return false;
        };
        buf.copy_from_slice(&w.to_le_bytes()[..buf.len()]);
        true
    }
}

/// What naming one record found out, for the plugin's log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct NamingStats {
    /// Locations given a cache name.
    pub named: usize,
    /// The `struct page` array's address could not be read: nothing could be named.
    pub no_vmemmap: bool,
}

/// Sets `cache` on every shared location and falsely shared line of `rec` whose memory is in a
/// slab page.
pub fn name_record(
    layout: &SlabLayout,
    mem: &mut dyn GuestMemory,
    rec: &mut TestRecord,
) -> NamingStats {
    let mut stats = NamingStats::default();
    if rec.shared.is_empty() && rec.false_sharing.is_empty() {
        return stats;
    }
    let Some(vmemmap) = read_u64(mem, layout.vmemmap_base) else {
        stats.no_vmemmap = true;
        return stats;
    };
    let mut namer = Namer {
        layout,
        vmemmap,
        mem,
        pages: HashMap::new(),
        names: HashMap::new(),
    };
    for s in &mut rec.shared {
        s.cache = namer.cache_of(s.addr);
        stats.named += usize::from(s.cache.is_some());
    }
    for f in &mut rec.false_sharing {
        f.cache = namer.cache_of(f.line);
        stats.named += usize::from(f.cache.is_some());
    }
    stats
}

/// One record's walk; the caches are per record because pages change owner between tests.
struct Namer<'a> {
    layout: &'a SlabLayout,
    vmemmap: u64,
    mem: &'a mut dyn GuestMemory,
    /// Page frame number to cache name (most locations of a test share a few pages).
    pages: HashMap<u64, Option<String>>,
    /// `struct kmem_cache` address to its name.
    names: HashMap<u64, Option<String>>,
}

impl Namer<'_> {
    fn cache_of(&mut self, phys: u64) -> Option<String> {
        let pfn = phys >> PAGE_SHIFT;
        if let Some(known) = self.pages.get(&pfn) {
            return known.clone();
        }
        let name = self.page_cache(pfn);
        self.pages.insert(pfn, name.clone());
        name
    }

    fn page_cache(&mut self, pfn: u64) -> Option<String> {
        let l = self.layout;
        // A tail page of a multi-page slab points at its head, which holds the slab fields.
        let page = head_page(self.mem, self.vmemmap, l.page_size, l.compound_head, pfn)?;
        let word = read_u64(self.mem, page.checked_add(l.mark.offset)?)?;
        if !l.mark.matches(word) {
            return None;
        }
        let cache = read_u64(self.mem, page.checked_add(l.slab_cache)?)?;
        if cache == 0 {
            return None;
        }
        if let Some(known) = self.names.get(&cache) {
            return known.clone();
        }
        let name = read_u64(self.mem, cache.checked_add(l.cache_name)?)
            .and_then(|p| read_c_string(self.mem, p));
        self.names.insert(cache, name.clone());
        name
    }
}

/// A NUL-terminated printable ASCII name of at most [`MAX_NAME`] bytes; anything else means the
/// walk went astray (a page that changed type under it), and no name is better than garbage.
fn read_c_string(mem: &mut dyn GuestMemory, mut vaddr: u64) -> Option<String> {
    let mut out = Vec::new();
    while out.len() < MAX_NAME {
        let to_page_end = PAGE_SIZE - (vaddr & (PAGE_SIZE - 1));
        let n = NAME_CHUNK.min(to_page_end) as usize;
        let mut chunk = vec![0u8; n];
        if !mem.read(vaddr, &mut chunk) {
            return None;
        }
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            let ok = !out.is_empty() && out.len() <= MAX_NAME;
            let printable = out.iter().all(|b| b.is_ascii_graphic());
            return (ok && printable).then(|| String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
        vaddr = vaddr.checked_add(n as u64)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_trace_format::record::{RECORD_VERSION, Rw, SharedLocation, Side};
    use commuter_trace_format::slab::SlabMark;

    /// Sparse guest memory: mapped byte ranges.
    #[derive(Default)]
    struct Memory(Vec<(u64, Vec<u8>)>);

    impl Memory {
        fn put(&mut self, at: u64, bytes: &[u8]) {
            self.0.push((at, bytes.to_vec()));
        }
        fn byte(&self, a: u64) -> Option<u8> {
            self.0
                .iter()
                .rev()
                .find(|(s, b)| a >= *s && a - s < b.len() as u64)
                .map(|(s, b)| b[(a - s) as usize])
        }
    }

    impl GuestMemory for Memory {
        fn read(&mut self, vaddr: u64, buf: &mut [u8]) -> bool {
            for (i, out) in buf.iter_mut().enumerate() {
                match self.byte(vaddr + i as u64) {
                    Some(b) => *out = b,
                    None => return false,
                }
            }
            true
        }
    }

    const LAYOUT: SlabLayout = SlabLayout {
        vmemmap_base: 0x1000,
        page_size: 64,
        compound_head: 8,
        mark: SlabMark {
            offset: 48,
            mask: 0xff00_0000,
            value: 0xf500_0000,
        },
        slab_cache: 8,
        cache_name: 96,
    };
    const VMEMMAP: u64 = 0x10_0000;

    fn page(pfn: u64) -> u64 {
        VMEMMAP + pfn * 64
    }

    fn location(addr: u64) -> SharedLocation {
        let side = Side {
            pc: 1,
            rw: Rw::W,
            mode: commuter_trace_format::record::Mode::Kernel,
            pcs: vec![1],
            stack: vec![],
        };
        SharedLocation {
            addr,
            size: 8,
            slots: commuter_trace_format::record::FIRST_PAIR,
            a: side.clone(),
            b: side,
            cache: None,
            vaddr: None,
            percpu: None,
        }
    }

    fn record(addrs: &[u64]) -> TestRecord {
        TestRecord {
            v: RECORD_VERSION,
            test: 0,
            calls: vec![],
            overflow: false,
            shared: addrs.iter().map(|a| location(*a)).collect(),
            false_sharing: vec![],
            errors: vec![],
        }
    }

    /// Pfn 5: a slab head page of cache "dentry"; pfn 6 its tail; pfn 7 a non-slab page whose
    /// slab_cache word is not a cache; pfn 8 unmapped in the page array.
    fn memory() -> Memory {
        let mut m = Memory::default();
        m.put(LAYOUT.vmemmap_base, &VMEMMAP.to_le_bytes());
        for pfn in 5..8 {
            m.put(page(pfn), &[0; 64]);
        }
        let cache = 0x20_0000u64;
        m.put(page(5) + 8, &cache.to_le_bytes());
        m.put(page(5) + 48, &0xf500_0000u32.to_le_bytes());
        m.put(page(6) + 8, &(page(5) + 1).to_le_bytes());
        m.put(page(7) + 8, &cache.to_le_bytes());
        m.put(page(7) + 48, &0xf000_0000u32.to_le_bytes());
        m.put(cache + 96, &0x30_0ff0u64.to_le_bytes());
        // The name straddles a page boundary (both pages mapped, the second one fully).
        m.put(0x30_0ff0, &[0; 16 + 4096]);
        m.put(0x30_0ff0, b"dentry_with_a_long_name\0");
        m
    }

    #[test]
    fn slab_pages_and_their_tails_name_the_cache() {
        let mut rec = record(&[5 << 12 | 0x58, 6 << 12, 7 << 12, 8 << 12]);
        let stats = name_record(&LAYOUT, &mut memory(), &mut rec);
        let names: Vec<Option<&str>> = rec.shared.iter().map(|s| s.cache.as_deref()).collect();
        let dentry = Some("dentry_with_a_long_name");
        assert_eq!(names, [dentry, dentry, None, None]);
        assert_eq!(
            stats,
            NamingStats {
                named: 2,
                no_vmemmap: false
            }
        );
    }

    #[test]
    fn kernels_that_flag_slab_pages_name_them_too() {
        // Before 6.10: bit 9 (PG_slab) of the flags word at offset 0, page_type meaningless.
        let layout = SlabLayout {
            mark: SlabMark::flag(0, 9).unwrap(),
            ..LAYOUT
        };
        let mut m = memory();
        m.put(page(5), &0x200u64.to_le_bytes());
        let mut rec = record(&[5 << 12, 6 << 12, 7 << 12]);
        name_record(&layout, &mut m, &mut rec);
        let names: Vec<Option<&str>> = rec.shared.iter().map(|s| s.cache.as_deref()).collect();
        let dentry = Some("dentry_with_a_long_name");
        assert_eq!(names, [dentry, dentry, None]);
    }

    #[test]
    fn unreadable_memory_or_garbage_names_nothing() {
        let mut rec = record(&[5 << 12]);
        let stats = name_record(&LAYOUT, &mut Memory::default(), &mut rec);
        assert!(stats.no_vmemmap && rec.shared[0].cache.is_none());
        let mut m = memory();
        m.put(0x30_0ff0, b"den\ntry\0");
        name_record(&LAYOUT, &mut m, &mut rec);
        assert_eq!(rec.shared[0].cache, None);
    }
}
