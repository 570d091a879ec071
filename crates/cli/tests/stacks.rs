//! Call stacks of conflicting accesses through the real binary, tracer and stock kernel: the
//! shadow call stack the plugin keeps names who called the code that shared memory. Needs
//! `./scripts/setup`.

use serde_json::Value;

mod common;
use common::{commuter, json, ok};

/// Two tests of `commuter testgen -m posix -f mmap/mmap` (`mmap_mmap_209_0` and `_1`): both
/// calls map an anonymous page in one process, so both take that address space's lock. Kept as
/// a file because generating the pair's 1206 tests takes most of a minute.
const SUITE: &str = include_str!("data/mmap-same-process.json");

/// Whether a code site is in function `name` (its ELF symbol, or a frame inlined there).
fn names(site: &Value, name: &str) -> bool {
    site["symbol"] == name
        || site["frames"]
            .as_array()
            .is_some_and(|fs| fs.iter().any(|f| f["function"] == name))
}

/// `mmap`/`mmap` in one process take the address space's lock (`mm->mmap_lock`, in the
/// `mm_struct` slab object) for writing in `vm_mmap_pgoff`: that conflict's stack must pass
/// through it, though the access itself is in the rwsem code.
#[test]
fn the_mmap_lock_conflict_is_called_from_vm_mmap_pgoff() {
    let dir = common::temp_dir("stacks", "mmap");
    std::fs::write(dir.join("tests.json"), SUITE).expect("write");
    let stdout = ok(&commuter(&["run", "tests.json"], &dir));
    let text = std::fs::read_to_string(dir.join("conflicts.json")).expect("conflicts");
    assert!(text.contains("\"version\":7,"), "stacks need version 7");
    let conflicts = json(&dir.join("conflicts.json"));
    let mut lock_stacks = Vec::new();
    for t in conflicts["tests"].as_array().expect("tests") {
        for loc in t["shared"].as_array().expect("shared") {
            if loc["what"]["cache"] != "mm_struct" {
                continue;
            }
            for side in ["a", "b"] {
                let stack = loc[side]["stack"].as_array().cloned().unwrap_or_default();
                lock_stacks.push((t["id"].clone(), stack));
            }
        }
    }
    assert!(!lock_stacks.is_empty(), "no mm_struct conflict: {stdout}");
    let through = lock_stacks
        .iter()
        .filter(|(_, s)| s.iter().any(|site| names(site, "vm_mmap_pgoff")))
        .count();
    assert!(
        through > 0,
        "no mm_struct conflict's stack passes through vm_mmap_pgoff: {lock_stacks:#?}"
    );
    // Every caller is kernel code with a return address as its pc, and the summary groups
    // the code sites by their callers.
    for (_, stack) in &lock_stacks {
        for site in stack {
            assert_eq!(site["mode"], "kernel", "{site}");
        }
    }
    assert!(stdout.contains("called from:"), "{stdout}");
}
