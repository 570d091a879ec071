//! The kernel layout of `commuter trace`'s plugin mode ([`RefTraceLayout`]), from an image's
//! symbols and DWARF: where `__switch_to` starts (the plugin learns each vCPU's next task
//! there), the offsets of `pid` and `tgid` in `struct task_struct`, and of `mapping` and
//! `compound_head` in `struct page` with its size and the array's address (`vmemmap_base`).
//! Like [`crate::layout`], nothing comes from a copy of the headers.

use crate::layout::{Image, LayoutError, R, member, name, udata};
use addr2line::gimli;
use commuter_trace_format::reftrace::RefTraceLayout;
use gimli::Unit;
use std::path::Path;

#[derive(Debug, Default)]
struct Found {
    /// sizeof(struct page), mapping, compound_head.
    page: Option<(u64, u64, u64)>,
    /// pid, tgid.
    task: Option<(u64, u64)>,
}

/// Reads the reference-trace layout of the kernel image at `path`.
pub fn reftrace_layout(path: &Path) -> Result<RefTraceLayout, LayoutError> {
    Image::with(path, |image| {
        let switch_to = image.symbol("__switch_to", None)?;
        let vmemmap_base = image.symbol("vmemmap_base", None)?;
        let mut found = Found::default();
        // kernel/fork.c defines both types; every unit is searched only if it does not.
        let done = |f: &Found| f.page.is_some() && f.task.is_some();
        image.search("kernel/fork.c", &mut found, done, search_unit)?;
        let (page_size, page_mapping, compound_head) = found.page.ok_or_else(|| {
            image.missing("DWARF struct page with members mapping and compound_head")
        })?;
        let (task_pid, task_tgid) = found
            .task
            .ok_or_else(|| image.missing("DWARF struct task_struct with members pid and tgid"))?;
        Ok(RefTraceLayout {
            switch_to,
            task_pid,
            task_tgid,
            vmemmap_base,
            page_size,
            page_mapping,
            compound_head,
        })
    })
}

fn search_unit(
    dwarf: &gimli::Dwarf<R<'_>>,
    unit: &Unit<R<'_>>,
    found: &mut Found,
) -> gimli::Result<()> {
    let mut cursor = unit.entries();
    while let Some((_, entry)) = cursor.next_dfs()? {
        if entry.tag() != gimli::DW_TAG_structure_type
            || entry.attr_value(gimli::DW_AT_declaration)?.is_some()
        {
            continue;
        }
        let offset = entry.offset();
        match name(dwarf, unit, entry)?.as_deref() {
            Some(b"page") if found.page.is_none() => {
                let Some(size) = udata(entry.attr_value(gimli::DW_AT_byte_size)?) else {
                    continue;
                };
                let mapping = member(dwarf, unit, offset, b"mapping", 0)?;
                let head = member(dwarf, unit, offset, b"compound_head", 0)?;
                if let (Some(m), Some(h)) = (mapping, head) {
                    found.page = Some((size, m, h));
                }
            }
            Some(b"task_struct") if found.task.is_none() => {
                let pid = member(dwarf, unit, offset, b"pid", 0)?;
                let tgid = member(dwarf, unit, offset, b"tgid", 0)?;
                if let (Some(p), Some(t)) = (pid, tgid) {
                    found.task = Some((p, t));
                }
            }
            _ => {}
        }
        if found.page.is_some() && found.task.is_some() {
            break;
        }
    }
    Ok(())
}
