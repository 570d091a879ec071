//! Where the kernel keeps its per-CPU areas, handed from the symboliser (which reads the
//! variables' addresses from the image's symbol table) to the plugin (which reads their values
//! from guest memory at the end of a test) as one plugin argument, `percpu=…`.
//!
//! On x86-64 the per-CPU template `.data..percpu` is linked at 0 and CPU `i`'s copy starts at
//! `__per_cpu_offset[i]` (a direct-map address: the first chunk is allocated from memblock and
//! reached through the direct map), `pcpu_unit_size` bytes long, for `i < nr_cpu_ids`. So a
//! kernel address `v` lies in CPU `i`'s area at offset `v - __per_cpu_offset[i]` when that is
//! below the unit size.

use std::fmt;
use std::str::FromStr;

/// Virtual addresses of the kernel variables that describe the per-CPU areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercpuLayout {
    /// `__per_cpu_offset`, an array of `unsigned long`, one per possible CPU.
    pub offsets: u64,
    /// `nr_cpu_ids`, an `unsigned int`.
    pub nr_cpu_ids: u64,
    /// `pcpu_unit_size`, an `int`: the bytes of each CPU's area.
    pub unit_size: u64,
}

impl PercpuLayout {
    /// The plugin argument carrying this layout: `percpu=<value>`.
    pub fn plugin_arg(&self) -> String {
        format!("percpu={self}")
    }
}

/// `offsets:nr_cpu_ids:unit_size`, colon-separated 0x numbers.
impl fmt::Display for PercpuLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}:{:#x}:{:#x}",
            self.offsets, self.nr_cpu_ids, self.unit_size
        )
    }
}

/// A `percpu=` value that does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad per-CPU layout `{0}`: expected 3 colon-separated 0x numbers (__per_cpu_offset:nr_cpu_ids:pcpu_unit_size)"
)]
pub struct PercpuLayoutError(pub String);

impl FromStr for PercpuLayout {
    type Err = PercpuLayoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PercpuLayoutError(s.to_owned());
        let fields = crate::hex_fields(s).ok_or_else(err)?;
        let [offsets, nr_cpu_ids, unit_size] = fields[..] else {
            return Err(err());
        };
        Ok(PercpuLayout {
            offsets,
            nr_cpu_ids,
            unit_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_plugin_argument() {
        let l = PercpuLayout {
            offsets: 0xffff_ffff_8241_cb60,
            nr_cpu_ids: 0xffff_ffff_82c3_ca10,
            unit_size: 0xffff_ffff_8242_e1d8,
        };
        let arg = l.plugin_arg();
        assert!(!arg.contains(','), "{arg}");
        assert_eq!(arg.strip_prefix("percpu=").unwrap().parse(), Ok(l));
        for bad in ["", "0x1:0x2", "1:2:3", "0x1:0x2:0x3:0x4"] {
            assert!(bad.parse::<PercpuLayout>().is_err(), "{bad}");
        }
    }
}
