//! Symbolisation against the real debug vmlinux of every supported kernel (Debian's 6.12 and
//! 6.1, which `scripts/setup` installs with their symbols; a missing one fails the test).
//! Expected values come from binutils (`nm`), not from the code under test.

use commuter_scan::Symbols;
use commuter_scan::schema::{Region, What};
use commuter_trace_format::record::PercpuPlace;
use std::path::Path;
use std::process::Command;

mod common;
use common::vmlinux;

/// `__START_KERNEL_map`: the kernel image's virtual base on x86-64.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// (address, size) of each named symbol according to binutils' nm.
fn nm(elf: &Path, names: &[&str]) -> Vec<(u64, u64)> {
    let out = Command::new("nm").arg("-S").arg(elf).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    names
        .iter()
        .map(|name| {
            text.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| f.len() == 4 && f[3] == *name)
                .map(|f| {
                    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
                    (hex(f[0]), hex(f[1]))
                })
                .unwrap_or_else(|| panic!("nm: no {name}"))
        })
        .collect()
}

fn names_kernel_code_and_data(series: &str) {
    let path = vmlinux(series);
    let start = std::time::Instant::now();
    let syms = Symbols::open(&path).unwrap();
    let found = nm(
        &path,
        &[
            "jiffies_64",
            "lockref_get_not_dead",
            "init_task",
            "runqueues",
        ],
    );
    let [
        (jiffies, _),
        (lockref, lockref_size),
        (init_task, _),
        (runqueues, _),
    ] = found[..]
    else {
        unreachable!()
    };

    // Static data, from its physical address (`jiffies` itself is a zero-sized linker alias).
    // (nokaslr: virtual = physical + the map base).
    let what = syms.data(jiffies - START_KERNEL_MAP, None);
    assert!(
        matches!(&what, What::Static { symbol, offset: 0, section, vaddr }
            if symbol == "jiffies_64" && section == ".data" && *vaddr == jiffies),
        "{what:?}"
    );
    assert_eq!(
        syms.data(init_task + 8 - START_KERNEL_MAP, None).label(),
        "init_task+0x8"
    );
    // Low physical memory is page-allocator memory, reached through the direct map.
    assert!(matches!(
        syms.data(0x10_0000, None),
        What::Dynamic {
            region: Region::DirectMap,
            ..
        }
    ));
    // A per-CPU place is named after the template's variable (linked at 0).
    let place = PercpuPlace {
        cpu: 2,
        offset: runqueues + 0x40,
    };
    assert_eq!(syms.percpu(place).label(), "percpu:runqueues+0x40");
    assert!(syms.percpu_layout().is_some(), "per-CPU variables found");

    // Code: function, source file relative to the kernel tree, and every pc of the function.
    for pc in (lockref..lockref + lockref_size).step_by(3) {
        let site = syms.code(pc);
        assert_eq!(site.symbol.as_deref(), Some("lockref_get_not_dead"));
        let outer = site
            .frames
            .last()
            .unwrap_or_else(|| panic!("{pc:#x}: no frames"));
        assert_eq!(outer.function.as_deref(), Some("lockref_get_not_dead"));
        assert_eq!(outer.file.as_deref(), Some("lib/lockref.c"), "{site:?}");
    }
    eprintln!(
        "real vmlinux {}: symbolised in {:.1} s",
        syms.name(),
        start.elapsed().as_secs_f64()
    );
}

/// Memory the kernel gives back after boot keeps no static name: the 4 MiB `sme_workarea` of
/// `.init.scratch` lies past `__end_of_kernel_reserve` and is page-allocator memory at run time.
fn freed_image_memory_is_not_named(series: &str) {
    let path = vmlinux(series);
    let syms = Symbols::open(&path).unwrap();
    let [(scratch, size)] = nm(&path, &["sme_workarea"])[..] else {
        unreachable!()
    };
    for offset in [0, 0x25_0000, size - 1] {
        let what = syms.data(scratch + offset - START_KERNEL_MAP, None);
        assert!(
            matches!(what, What::Dynamic { .. }),
            "{series}: sme_workarea+{offset:#x} named {what:?}"
        );
    }
}

#[test]
fn the_default_kernel_names_code_and_data() {
    names_kernel_code_and_data("default");
}

#[test]
fn the_6_1_kernel_names_code_and_data() {
    names_kernel_code_and_data("6.1");
}

#[test]
fn freed_image_memory_keeps_no_static_name() {
    freed_image_memory_is_not_named("6.1");
    freed_image_memory_is_not_named("default");
}
