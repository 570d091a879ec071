//! The slab layout read from DWARF ([`commuter_scan::slab_layout`]), checked against an
//! independent oracle: for a small C program the test compiles, the program's own `offsetof`
//! and `sizeof` output; for the real debug vmlinux (when present), gdb's reading of the same
//! DWARF.

use commuter_scan::{LayoutError, slab_layout};
use commuter_trace_format::slab::SlabLayout;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shapes that matter in Linux 6.12's definitions: members inside anonymous unions of
/// anonymous structs, a union member without a location, an enumeration constant.
const SOURCE: &str = r#"
#include <stddef.h>
#include <stdio.h>
struct list_head { struct list_head *next, *prev; };
struct page {
    unsigned long flags;
    union {
        struct { struct list_head lru; void *mapping; unsigned long index; };
        struct { unsigned long compound_head; };
        struct { void *pp; unsigned long dma[2]; };
    };
    union { unsigned int page_type; int _mapcount; };
    int _refcount;
    unsigned long memcg_data;
};
struct kmem_cache;
struct slab {
    unsigned long __page_flags;
    struct kmem_cache *slab_cache;
    union { struct { union { struct list_head slab_list; }; void *freelist; }; };
};
struct kmem_cache { void *cpu_slab; unsigned int flags; unsigned long min; unsigned int size, object_size; const char *name; };
enum pagetype { PGTY_buddy = 0xf0, PGTY_offline, PGTY_table, PGTY_guard, PGTY_hugetlb, PGTY_slab };
unsigned long vmemmap_base = 0xffffea0000000000UL;
int main(void)
{
    struct page p; struct slab s; struct kmem_cache k; enum pagetype t = PGTY_slab;
    (void)p; (void)s; (void)k;
    printf("%zu %zu %zu %d %zu %zu\n", sizeof(struct page), offsetof(struct page, compound_head),
           offsetof(struct page, page_type), (int)t, offsetof(struct slab, slab_cache),
           offsetof(struct kmem_cache, name));
    return 0;
}
"#;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nm_address(elf: &Path, name: &str) -> u64 {
    let text = run(Command::new("nm").arg(elf));
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 3 && f[2] == name)
        .and_then(|f| u64::from_str_radix(f[0], 16).ok())
        .unwrap_or_else(|| panic!("nm: no {name}"))
}

#[test]
fn layout_of_a_compiled_program_matches_its_offsetof() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scan-layout");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("slab.c"), SOURCE).unwrap();
    // Named like the kernel file, so that the mm/slub.c fast path is what finds the types.
    std::fs::create_dir_all(dir.join("mm")).unwrap();
    std::fs::write(dir.join("mm/slub.c"), SOURCE).unwrap();
    run(Command::new("gcc")
        .current_dir(&dir)
        .args(["-g", "-O0", "-o", "slab", "mm/slub.c"]));
    let elf = dir.join("slab");
    let printed: Vec<u64> = run(&mut Command::new(&elf))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let layout = slab_layout(&elf).unwrap();
    assert_eq!(
        layout,
        SlabLayout {
            vmemmap_base: nm_address(&elf, "vmemmap_base"),
            page_size: printed[0],
            compound_head: printed[1],
            page_type: printed[2],
            slab_type: u8::try_from(printed[3]).unwrap(),
            slab_cache: printed[4],
            cache_name: printed[5],
        }
    );
}

#[test]
fn an_image_without_the_types_says_what_is_missing() {
    // The test binary itself: an ELF with DWARF, but no kernel.
    let me = std::env::current_exe().unwrap();
    let err = slab_layout(&me).unwrap_err();
    assert!(matches!(err, LayoutError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("vmemmap_base"), "{err}");
    let err = slab_layout(Path::new("/nonexistent/vmlinux")).unwrap_err();
    assert!(matches!(err, LayoutError::Io { .. }), "{err}");
}

/// gdb's answer to `print <expr>` for each expression, as the integers it printed.
fn gdb(elf: &Path, exprs: &[&str]) -> Option<Vec<u64>> {
    let mut c = Command::new("gdb");
    c.args(["-batch", "-nx"]);
    for e in exprs {
        c.arg("-ex").arg(format!("print/x {e}"));
    }
    let out = c.arg(elf).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let values: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split_once(" = 0x"))
        .map(|(_, h)| u64::from_str_radix(h.trim(), 16).unwrap())
        .collect();
    assert_eq!(values.len(), exprs.len(), "gdb printed:\n{text}");
    Some(values)
}

#[test]
fn layout_of_the_real_vmlinux_matches_gdb() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/linux/vmlinux");
    if !path.is_file() {
        eprintln!(
            "SKIPPED: no {} (run scripts/install-linux-target --symbols)",
            path.display()
        );
        return;
    }
    let start = std::time::Instant::now();
    let layout = slab_layout(&path).unwrap();
    eprintln!(
        "slab layout of the real vmlinux in {:.1} s: {layout}",
        start.elapsed().as_secs_f64()
    );
    let exprs = [
        "(long)&vmemmap_base",
        "sizeof(struct page)",
        "(long)&((struct page *)0)->compound_head",
        "(long)&((struct page *)0)->page_type",
        "(int)PGTY_slab",
        "(long)&((struct slab *)0)->slab_cache",
        "(long)&((struct kmem_cache *)0)->name",
    ];
    let Some(v) = gdb(&path, &exprs) else {
        eprintln!("SKIPPED the gdb comparison: gdb is not installed");
        return;
    };
    assert_eq!(
        layout,
        SlabLayout {
            vmemmap_base: v[0],
            page_size: v[1],
            compound_head: v[2],
            page_type: v[3],
            slab_type: u8::try_from(v[4]).unwrap(),
            slab_cache: v[5],
            cache_name: v[6],
        }
    );
}
