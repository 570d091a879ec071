//! Symbolisation against a small ELF with DWARF that the test compiles itself with gcc, checked
//! against binutils' `addr2line` and `nm` (an independent DWARF and symbol-table reader).

use commuter_scan::schema::{ErrorKind, Region, Status, Target, What};
use commuter_scan::{
    CONFLICTS_PAIRS_VERSION, CallCheck, ConflictsFile, Symbols, SymbolsError, TestRun, UserBinary,
    scan, scan_with,
};
use commuter_trace_format::record::{
    Mode, PercpuPlace, RECORD_VERSION, Rw, SharedLocation, Side, TestRecord,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = r#"
struct pair { long x, y; };
struct pair table[4];
long counter = 5;

static inline __attribute__((always_inline)) void bump(long *p)
{
    *p += 3; /* BUMP */
}

__attribute__((noinline)) void work(int i)
{
    bump(&table[i].y);
    counter++; /* COUNT */
}

/* Assembly code with a size and no type, as the kernel's entry code has. */
__asm__(".text\n.globl untyped_entry\nuntyped_entry:\n\tnop\n\tnop\n\tret\n.size untyped_entry, 3\n");

int main(int argc, char **argv)
{
    (void)argv;
    work(argc);
    return (int)counter;
}
"#;

struct Built {
    dir: PathBuf,
    elf: PathBuf,
    /// `Symbols` is not `Sync` (addr2line parses lazily through cells): one per test.
    symbols: Symbols,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compiles the source once (non-PIE, so addresses are final and physical = virtual).
fn compiled() -> &'static (PathBuf, PathBuf) {
    static B: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    B.get_or_init(|| {
        // One directory per test process: nextest runs each test in its own process, and one
        // compiling over the binary another is reading fails that one.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("scan-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tiny.c"), SOURCE).unwrap();
        run(Command::new("gcc")
            .current_dir(&dir)
            .args(["-g", "-O2", "-fno-pie", "-no-pie", "-o", "tiny", "tiny.c"]));
        let elf = dir.join("tiny");
        (dir, elf)
    })
}

fn built() -> Built {
    let (dir, elf) = compiled().clone();
    let symbols = Symbols::open(&elf).unwrap();
    Built { dir, elf, symbols }
}

/// (address, size) of a symbol according to binutils' nm.
fn nm(elf: &Path, name: &str) -> (u64, u64) {
    let out = run(Command::new("nm").arg("-S").arg(elf));
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[3] == name)
        .map(|f| {
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            (hex(f[0]), hex(f[1]))
        })
        .unwrap_or_else(|| panic!("nm: no {name}"))
}

fn source_line(marker: &str) -> u32 {
    let i = SOURCE.lines().position(|l| l.contains(marker)).unwrap();
    u32::try_from(i + 1).unwrap()
}

/// binutils' frames for each pc: (function, file name, line), innermost first.
fn binutils_frames(elf: &Path, pcs: &[u64]) -> Vec<Vec<(String, String, u32)>> {
    let mut cmd = Command::new("addr2line");
    cmd.args(["-a", "-f", "-i", "-e"]).arg(elf);
    cmd.args(pcs.iter().map(|pc| format!("{pc:#x}")));
    let out = run(&mut cmd);
    let mut all: Vec<Vec<(String, String, u32)>> = Vec::new();
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("0x") {
            all.push(Vec::new());
            continue;
        }
        let loc = lines.next().unwrap_or_default();
        let loc = loc.split(" (discriminator").next().unwrap_or_default();
        let (file, line) = loc.rsplit_once(':').unwrap_or((loc, "0"));
        let file = Path::new(file).file_name().unwrap_or_default();
        let frame = (
            l.to_string(),
            file.to_string_lossy().into_owned(),
            line.parse().unwrap_or(0),
        );
        all.last_mut().unwrap().push(frame);
    }
    all
}

#[test]
fn every_pc_of_a_function_matches_binutils_including_inlined_frames() {
    let b = built();
    let (start, size) = nm(&b.elf, "work");
    let pcs: Vec<u64> = (start..start + size).collect();
    let expected = binutils_frames(&b.elf, &pcs);
    assert_eq!(expected.len(), pcs.len());
    let mut inlined = 0;
    for (pc, want) in pcs.iter().zip(&expected) {
        let site = b.symbols.code(*pc);
        assert_eq!(site.symbol.as_deref(), Some("work"), "{pc:#x}");
        assert_eq!(site.offset, pc - start);
        let got: Vec<(String, String, u32)> = site
            .frames
            .iter()
            .map(|f| {
                let file = f.file.clone().unwrap_or_default();
                (
                    f.function.clone().unwrap_or_default(),
                    file,
                    f.line.unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(&got, want, "frames at {pc:#x}");
        if got.len() == 2 && got[0].0 == "bump" {
            assert_eq!(got[0].2, source_line("BUMP"));
            assert_eq!(got[1].0, "work");
            inlined += 1;
        }
    }
    // Not vacuous: the always-inline helper shows up as its own frame.
    assert!(inlined > 0, "no pc of work() had bump() inlined");
}

#[test]
fn sized_assembly_code_without_a_type_is_named() {
    let b = built();
    let (start, size) = nm(&b.elf, "untyped_entry");
    assert_eq!(size, 3);
    let site = b.symbols.code(start + 2);
    assert_eq!(site.symbol.as_deref(), Some("untyped_entry"));
    assert_eq!(site.offset, 2);
}

#[test]
fn source_paths_are_relative_to_the_build_directory() {
    let b = built();
    let site = b.symbols.code(nm(&b.elf, "work").0);
    // gcc ran in b.dir, so the file is just its name once the directory is stripped.
    assert_eq!(site.frames.last().unwrap().file.as_deref(), Some("tiny.c"));
    assert!(b.dir.join("tiny.c").exists());
}

#[test]
fn static_data_resolves_to_symbol_and_offset() {
    let b = built();
    let (table, _) = nm(&b.elf, "table");
    let (counter, _) = nm(&b.elf, "counter");
    let what = b.symbols.data(table + 24, None);
    assert!(
        matches!(&what, What::Static { symbol, offset: 24, section, vaddr }
            if symbol == "table" && section == ".bss" && *vaddr == table + 24),
        "{what:?}"
    );
    assert_eq!(what.label(), "table+0x18");
    assert!(
        matches!(b.symbols.data(counter, None), What::Static { ref symbol, offset: 0, ref section, .. }
            if symbol == "counter" && section == ".data")
    );
    // Far from the image: allocated memory, in the region the tracer saw it through (the
    // direct map when it did not say).
    assert_eq!(
        b.symbols.data(0x7000_0000, None),
        What::Dynamic {
            region: Region::DirectMap,
            vaddr: 0xffff_8880_7000_0000
        }
    );
    assert_eq!(
        b.symbols.data(0x7000_0000, Some(0xffff_c900_0001_0000)),
        What::Dynamic {
            region: Region::Vmalloc,
            vaddr: 0xffff_c900_0001_0000
        }
    );
}

#[test]
fn images_without_debug_info_or_not_elf_are_refused_with_the_fix() {
    let b = built();
    let stripped = b.dir.join("tiny.stripped");
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&stripped)
        .arg(&b.elf));
    let e = Symbols::open(&stripped).unwrap_err();
    assert!(matches!(e, SymbolsError::NoDebugInfo { .. }), "{e}");
    assert!(e.to_string().contains("--symbols"), "{e}");
    let e = Symbols::open(&b.dir.join("tiny.c")).unwrap_err();
    assert!(matches!(e, SymbolsError::Elf { .. }), "{e}");
    let e = Symbols::open(&b.dir.join("missing")).unwrap_err();
    assert!(matches!(e, SymbolsError::Io { .. }), "{e}");
}

fn side(pc: u64, rw: Rw) -> Side {
    Side {
        pc,
        rw,
        mode: Mode::of_pc(pc),
        pcs: vec![pc],
        stack: vec![],
    }
}

fn record(test: u64, shared: Vec<SharedLocation>) -> TestRecord {
    TestRecord {
        v: RECORD_VERSION,
        test,
        calls: vec![],
        overflow: false,
        shared,
        false_sharing: vec![],
        errors: vec![],
    }
}

fn runs() -> Vec<TestRun> {
    let b = built();
    let (work, _) = nm(&b.elf, "work");
    let (counter, _) = nm(&b.elf, "counter");
    let loc = SharedLocation {
        addr: counter,
        size: 8,
        slots: [0, 1],
        a: side(work + 1, Rw::Rw),
        b: side(work + 1, Rw::R),
        cache: None,
        vaddr: None,
        percpu: None,
    };
    let ok = Some(CallCheck {
        ok: true,
        mismatches: vec![],
    });
    let bad = Some(CallCheck {
        ok: false,
        mismatches: vec!["ret: expected 0, got -1 (ENOENT)".into()],
    });
    let run = |id: &str, record, results| TestRun {
        id: id.into(),
        calls: vec!["open".into(), "stat".into()],
        record,
        results,
        errors: vec![],
    };
    let mut overflow = record(2, vec![]);
    overflow.overflow = true;
    vec![
        run(
            "open_stat_0_10",
            Some(record(0, vec![loc])),
            vec![ok.clone(), ok.clone()],
        ),
        run(
            "open_stat_0_2",
            Some(record(1, vec![])),
            vec![ok.clone(), bad],
        ),
        run(
            "open_stat_0_3",
            Some(overflow),
            vec![ok.clone(), ok.clone()],
        ),
        run("open_stat_0_4", None, vec![None, None]),
    ]
}

#[test]
fn scan_symbolises_sorts_and_round_trips() {
    let b = built();
    let target = Target {
        name: "test".into(),
        version: None,
        symbols: None,
    };
    // The program's PCs are user-mode addresses: scan names them with the program as the user
    // binary, and its data (the record gives no virtual address) with its image.
    let user = UserBinary::open(&b.elf).unwrap();
    let file = scan_with(target, &runs(), Some(&b.symbols), Some(&user));
    let ids: Vec<&str> = file.tests.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "open_stat_0_2",
            "open_stat_0_3",
            "open_stat_0_4",
            "open_stat_0_10"
        ]
    );
    let status: Vec<Status> = file.tests.iter().map(|t| t.status).collect();
    use Status::*;
    assert_eq!(status, [ConflictFree, Unknown, Unknown, Conflicted]);
    let conflicted = &file.tests[3];
    assert_eq!(conflicted.shared[0].what.label(), "counter");
    assert_eq!(
        conflicted.shared[0].a.sites[0].symbol.as_deref(),
        Some("work")
    );
    assert_eq!(file.tests[0].mismatches[0].slot, "b");
    assert_eq!(file.tests[1].errors[0].kind, ErrorKind::Overflow);
    assert_eq!(file.tests[2].errors[0].kind, ErrorKind::Tracer);
    assert_eq!(file.target.symbols.as_deref(), Some("tiny"));
    let json = file.to_json();
    assert_eq!(ConflictsFile::from_json(&json).unwrap(), file);
    // The same input in another order gives the same bytes.
    let mut reversed = runs();
    reversed.reverse();
    let again = scan_with(
        file.target.clone(),
        &reversed,
        Some(&b.symbols),
        Some(&user),
    );
    assert_eq!(again.to_json(), json);
}

#[test]
fn conflicts_files_of_other_schemas_or_versions_are_refused() {
    let file = scan(Target::default(), &runs()[..1], None);
    assert_eq!(file.tests[0].shared[0].what, What::Unknown);
    let json = file.to_json();
    // A file of pairs is written as the pairs' version (a triple's file as the newest).
    let current = format!("\"version\":{CONFLICTS_PAIRS_VERSION}");
    assert!(json.contains(&current), "{json}");
    let newer = json.replace(&current, "\"version\":99");
    let e = ConflictsFile::from_json(&newer).unwrap_err().to_string();
    assert!(e.contains("version 99") && e.contains("newer"), "{e}");
    // A version 2 file (before per-CPU areas and regions) is refused before its fields,
    // naming the fix.
    let older = json.replace(&current, "\"version\":2");
    let e = ConflictsFile::from_json(&older).unwrap_err().to_string();
    assert!(
        e.contains("version 2") && e.contains("rerun the tests"),
        "{e}"
    );
    let other = json.replace("commuter.conflicts", "commuter.tests");
    assert!(ConflictsFile::from_json(&other).is_err());
}

#[test]
fn a_location_the_tracer_placed_in_a_per_cpu_area_is_named_by_it() {
    let mut runs = runs();
    let rec = runs[0].record.as_mut().unwrap();
    rec.shared[0].addr = 0x34_4040;
    rec.shared[0].percpu = Some(PercpuPlace {
        cpu: 2,
        offset: 0x40,
    });
    let file = scan(Target::default(), &runs[..1], None);
    let what = &file.tests[0].shared[0].what;
    assert_eq!(what.label(), "percpu+0x40");
    let json = file.to_json();
    assert!(json.contains("\"kind\":\"percpu\""), "{json}");
    assert_eq!(ConflictsFile::from_json(&json).unwrap(), file);
}

#[test]
fn a_location_the_tracer_found_in_a_slab_cache_is_named_by_it() {
    let mut runs = runs();
    let rec = runs[0].record.as_mut().unwrap();
    // A heap address (not in the image), as the plugin reports it after reading `struct slab`.
    rec.shared[0].addr = 0x2a4_c1a8;
    rec.shared[0].cache = Some("dentry".into());
    let b = built();
    for symbols in [Some(&b.symbols), None] {
        let file = scan(Target::default(), &runs[..1], symbols);
        let what = &file.tests[0].shared[0].what;
        assert_eq!(
            what,
            &What::Slab {
                cache: "dentry".into(),
                vaddr: 0xffff_8880_02a4_c1a8
            }
        );
        assert_eq!(what.label(), "slab:dentry");
        let json = file.to_json();
        assert!(json.contains("\"kind\":\"slab\""), "{json}");
        assert_eq!(ConflictsFile::from_json(&json).unwrap(), file);
    }
}
