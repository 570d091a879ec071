//! Placing shared locations in the per-CPU areas: the kernel variables of
//! [`commuter_trace_format::percpu`] read from guest memory at end-test. Pure apart from the
//! [`GuestMemory`] it is given, so it is unit-tested on a synthetic memory.

use crate::slab::{GuestMemory, read_bytes};
use commuter_trace_format::percpu::PercpuLayout;
use commuter_trace_format::record::{PercpuPlace, TestRecord};

/// More CPUs than any guest of ours has; a larger `nr_cpu_ids` means the read went astray.
const MAX_CPUS: u32 = 4096;

/// The per-CPU areas of a running kernel: `(start, cpu)` sorted by start, and their size.
#[derive(Debug, PartialEq, Eq)]
pub struct Areas {
    starts: Vec<(u64, u32)>,
    unit: u64,
}

impl Areas {
    /// Reads the areas; `None` when the variables cannot be read or make no sense.
    pub fn read(layout: &PercpuLayout, mem: &mut dyn GuestMemory) -> Option<Areas> {
        let nr = u32::from_le_bytes(read_bytes(mem, layout.nr_cpu_ids)?);
        let unit = i32::from_le_bytes(read_bytes(mem, layout.unit_size)?);
        if nr == 0 || nr > MAX_CPUS || unit <= 0 {
            return None;
        }
        let mut starts = Vec::new();
        for cpu in 0..nr {
            let at = layout.offsets.checked_add(u64::from(cpu) * 8)?;
            starts.push((u64::from_le_bytes(read_bytes(mem, at)?), cpu));
        }
        starts.sort_unstable();
        Some(Areas {
            starts,
            unit: u64::try_from(unit).ok()?,
        })
    }

    /// The CPU area holding the virtual address `vaddr`, and the offset into it.
    pub fn place(&self, vaddr: u64) -> Option<PercpuPlace> {
        let i = self.starts.partition_point(|(s, _)| *s <= vaddr);
        let (start, cpu) = *self.starts.get(i.checked_sub(1)?)?;
        let offset = vaddr - start;
        (offset < self.unit).then_some(PercpuPlace { cpu, offset })
    }
}

/// Sets `percpu` on every shared location and falsely shared line of `rec` that lies in a
/// per-CPU area (by the virtual address call A used, which for per-CPU data is its direct-map
/// address). False when the areas could not be read.
pub fn place_record(
    layout: &PercpuLayout,
    mem: &mut dyn GuestMemory,
    rec: &mut TestRecord,
) -> bool {
    if rec.shared.is_empty() && rec.false_sharing.is_empty() {
        return true;
    }
    let Some(areas) = Areas::read(layout, mem) else {
        return false;
    };
    for s in &mut rec.shared {
        s.percpu = s.vaddr.and_then(|v| areas.place(v));
    }
    for f in &mut rec.false_sharing {
        f.percpu = f.vaddr.and_then(|v| areas.place(v));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::slab::Words;

    const LAYOUT: PercpuLayout = PercpuLayout {
        offsets: 0x1000,
        nr_cpu_ids: 0x2000,
        unit_size: 0x3000,
    };
    const BASE: u64 = 0xffff_8880_0340_0000;

    /// Three CPUs with 0x40000-byte units, CPU 1's area first in memory.
    fn memory() -> Words {
        let mut m = Words::default();
        m.0.insert(0x2000, 3);
        m.0.insert(0x3000, 0x4_0000);
        m.0.insert(0x1000, BASE + 0x4_0000);
        m.0.insert(0x1008, BASE);
        m.0.insert(0x1010, BASE + 0x8_0000);
        m
    }

    #[test]
    fn addresses_are_placed_in_their_cpus_area() {
        let areas = Areas::read(&LAYOUT, &mut memory()).unwrap();
        let place = |v| areas.place(v).map(|p| (p.cpu, p.offset));
        assert_eq!(place(BASE + 0x10), Some((1, 0x10)));
        assert_eq!(place(BASE + 0x4_2a40), Some((0, 0x2a40)));
        assert_eq!(place(BASE + 0xb_ffff), Some((2, 0x3_ffff)));
        assert_eq!(place(BASE + 0xc_0000), None, "past the last area");
        assert_eq!(place(BASE - 1), None, "before the first");
    }

    #[test]
    fn unreadable_or_absurd_variables_place_nothing() {
        assert_eq!(Areas::read(&LAYOUT, &mut Words::default()), None);
        let mut m = memory();
        m.0.insert(0x2000, 1 << 20);
        assert_eq!(Areas::read(&LAYOUT, &mut m), None);
        let mut m = memory();
        m.0.insert(0x3000, 0xffff_ffff);
        assert_eq!(Areas::read(&LAYOUT, &mut m), None, "a negative unit size");
    }
}
