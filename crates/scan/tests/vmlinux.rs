//! Symbolisation against the real debug vmlinux of the Linux target, when it is present
//! (`scripts/install-linux-target --symbols` puts it in `.cache/linux/`; a 1 GB download, so
//! this test says so and passes without it). Expected values come from binutils (`nm`), not
//! from the code under test.

use commuter_scan::Symbols;
use commuter_scan::schema::What;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `__START_KERNEL_map`: the kernel image's virtual base on x86-64.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

fn vmlinux() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/linux/vmlinux");
    if p.is_file() {
        return Some(p);
    }
    eprintln!(
        "SKIPPED: no {} (run scripts/install-linux-target --symbols to test against the real kernel)",
        p.display()
    );
    None
}

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

#[test]
fn real_vmlinux_names_kernel_code_and_data() {
    let Some(path) = vmlinux() else { return };
    let start = std::time::Instant::now();
    let syms = Symbols::open(&path).unwrap();
    let found = nm(&path, &["jiffies_64", "lockref_get_not_dead", "init_task"]);
    let [(jiffies, _), (lockref, lockref_size), (init_task, _)] = found[..] else {
        unreachable!()
    };

    // Static data, from its physical address (`jiffies` itself is a zero-sized linker alias).
    // (nokaslr: virtual = physical + the map base).
    let what = syms.data(jiffies - START_KERNEL_MAP);
    assert!(
        matches!(&what, What::Static { symbol, offset: 0, section, vaddr }
            if symbol == "jiffies_64" && section == ".data" && *vaddr == jiffies),
        "{what:?}"
    );
    assert_eq!(
        syms.data(init_task + 8 - START_KERNEL_MAP).label(),
        "init_task+0x8"
    );
    // Low physical memory is page-allocator memory.
    assert!(matches!(syms.data(0x10_0000), What::Dynamic { .. }));

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
