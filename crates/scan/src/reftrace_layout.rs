//! The kernel layout of `commuter trace`'s plugin mode ([`RefTraceLayout`]), from an image's
//! symbols and DWARF: where `__switch_to` starts (the plugin learns each vCPU's next task
//! there), the offsets of `pid` and `tgid` in `struct task_struct`, and of `mapping` and
//! `compound_head` in `struct page` with its size and the array's address (`vmemmap_base`).
//! Like [`crate::layout`], nothing comes from a copy of the headers.

use crate::layout::{LayoutError, R, member, name, udata};
use addr2line::gimli;
use commuter_trace_format::reftrace::RefTraceLayout;
use gimli::{EndianSlice, RunTimeEndian, Unit};
use object::{Object, ObjectSection, ObjectSymbol};
use std::borrow::Cow;
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
    let io = |source| LayoutError::Io {
        path: path.to_owned(),
        source,
    };
    let dwarf_err = |message: String| LayoutError::Dwarf {
        path: path.to_owned(),
        message,
    };
    let missing = |what: &str| LayoutError::Missing {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    let f = std::fs::File::open(path).map_err(io)?;
    // SAFETY: read-only, for the duration of this function (see `Symbols::open`).
    let data = unsafe { memmap2::Mmap::map(&f) }.map_err(io)?;
    let file = object::File::parse(&*data).map_err(|e| dwarf_err(e.to_string()))?;
    let symbol = |name: &str| {
        file.symbol_by_name(name)
            .map(|s| s.address())
            .ok_or_else(|| missing(&format!("symbol {name}")))
    };
    let switch_to = symbol("__switch_to")?;
    let vmemmap_base = symbol("vmemmap_base")?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let sections = gimli::DwarfSections::load(|id| -> Result<Cow<'_, [u8]>, object::Error> {
        match file.section_by_name(id.name()) {
            Some(s) => s.uncompressed_data(),
            None => Ok(Cow::Borrowed(&[])),
        }
    })
    .map_err(|e| dwarf_err(e.to_string()))?;
    let dwarf = sections.borrow(|s| EndianSlice::new(s, endian));
    let mut found = Found::default();
    // kernel/fork.c defines both types; every unit is searched only if it does not.
    for only_fork in [true, false] {
        search(&dwarf, &mut found, only_fork).map_err(|e| dwarf_err(e.to_string()))?;
        if found.page.is_some() && found.task.is_some() {
            break;
        }
    }
    let (page_size, page_mapping, compound_head) = found
        .page
        .ok_or_else(|| missing("DWARF struct page with members mapping and compound_head"))?;
    let (task_pid, task_tgid) = found
        .task
        .ok_or_else(|| missing("DWARF struct task_struct with members pid and tgid"))?;
    Ok(RefTraceLayout {
        switch_to,
        task_pid,
        task_tgid,
        vmemmap_base,
        page_size,
        page_mapping,
        compound_head,
    })
}

fn search(dwarf: &gimli::Dwarf<R<'_>>, found: &mut Found, only_fork: bool) -> gimli::Result<()> {
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        if found.page.is_some() && found.task.is_some() {
            break;
        }
        let unit = dwarf.unit(header)?;
        if only_fork {
            let name = unit.name.map(|n| n.slice()).unwrap_or_default();
            if !(name == b"kernel/fork.c" || name.ends_with(b"/kernel/fork.c")) {
                continue;
            }
        }
        search_unit(dwarf, &unit, found)?;
    }
    Ok(())
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
