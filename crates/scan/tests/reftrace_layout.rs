//! The reference-trace layout read from DWARF ([`commuter_scan::reftrace_layout`]) against gdb's
//! reading of the same debug vmlinux (an independent DWARF reader).

use commuter_scan::{LayoutError, reftrace_layout};
use commuter_trace_format::reftrace::RefTraceLayout;
use std::path::Path;
use std::process::Command;

mod common;
use common::vmlinux;

/// gdb's answer to `print/x <expr>` for each expression.
fn gdb(elf: &Path, exprs: &[&str]) -> Vec<u64> {
    let mut c = Command::new("gdb");
    c.args(["-batch", "-nx"]);
    for e in exprs {
        c.arg("-ex").arg(format!("print/x {e}"));
    }
    let out = c.arg(elf).output().expect("gdb runs (Debian package gdb)");
    let text = String::from_utf8_lossy(&out.stdout);
    let values: Vec<u64> = text
        .lines()
        .filter_map(|l| l.split_once(" = 0x"))
        .map(|(_, h)| u64::from_str_radix(h.trim(), 16).expect("hex"))
        .collect();
    assert_eq!(values.len(), exprs.len(), "gdb printed:\n{text}");
    values
}

fn check(path: &Path) {
    let v = gdb(
        path,
        &[
            "(long)&__switch_to",
            "(long)&((struct task_struct *)0)->pid",
            "(long)&((struct task_struct *)0)->tgid",
            "(long)&vmemmap_base",
            "sizeof(struct page)",
            "(long)&((struct page *)0)->mapping",
            "(long)&((struct page *)0)->compound_head",
        ],
    );
    assert_eq!(
        reftrace_layout(path).expect("layout"),
        RefTraceLayout {
            switch_to: v[0],
            task_pid: v[1],
            task_tgid: v[2],
            vmemmap_base: v[3],
            page_size: v[4],
            page_mapping: v[5],
            compound_head: v[6],
        }
    );
}

#[test]
#[ignore = "slow: gdb reads the whole vmlinux DWARF (both kernels: 340 s on 2 busy cores); the trace end-to-end test checks the layout in use"]
fn layout_of_the_default_kernel_matches_gdb() {
    check(&vmlinux("default"));
}

#[test]
#[ignore = "slow: gdb reads the whole vmlinux DWARF (both kernels: 340 s on 2 busy cores); the trace end-to-end test checks the layout in use"]
fn layout_of_the_6_1_kernel_matches_gdb() {
    check(&vmlinux("6.1"));
}

#[test]
fn an_image_without_the_kernel_says_what_is_missing() {
    let me = std::env::current_exe().expect("test binary");
    let err = reftrace_layout(&me).unwrap_err();
    assert!(matches!(err, LayoutError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("__switch_to"), "{err}");
}
