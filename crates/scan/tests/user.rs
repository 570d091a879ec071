//! User-mode symbolisation against a small static Rust program that the test compiles itself
//! with rustc (non-PIE, as the guest is built), checked against binutils' `nm` and `addr2line`.

use commuter_scan::schema::{Region, Status, Target, What};
use commuter_scan::user::STACK_LOW;
use commuter_scan::{ConflictsFile, SymbolsError, TestRun, UserBinary, scan, scan_with};
use commuter_trace_format::record::{Mode, RECORD_VERSION, Rw, SharedLocation, Side, TestRecord};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = r#"
use std::hint::black_box;

static mut COUNTER: u64 = 0;
static mut TABLE: [u64; 4] = [1, 2, 3, 4];

#[inline(never)]
fn bump(i: usize) -> u64 {
    // SAFETY: one thread.
    unsafe {
        let t = &raw mut TABLE;
        (*t)[i % 4] += 3; // BUMP
        let c = &raw mut COUNTER;
        *c += black_box(1); // COUNT
        *c
    }
}

fn main() {
    let n = std::env::args().count();
    std::process::exit(bump(black_box(n)) as i32);
}
"#;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dir() -> PathBuf {
    // One directory per test process (see elf.rs's `compiled`).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scan-user-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles the program once, static and non-PIE with DWARF (the flags the guest is built
/// with, plus `-g`).
fn compiled() -> &'static PathBuf {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| rustc("tiny", &["-C", "relocation-model=static"]))
}

fn rustc(name: &str, extra: &[&str]) -> PathBuf {
    let dir = dir();
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, SOURCE).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    run(Command::new(rustc)
        .current_dir(&dir)
        .args([
            "-g",
            "-C",
            "opt-level=1",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(extra)
        .args(["--crate-name", "tiny", "-o", name])
        .arg(&src));
    dir.join(name)
}

/// (address, size) of the symbol whose mangled name contains every part, per binutils' nm.
fn nm(elf: &Path, parts: &[&str]) -> (u64, u64) {
    let out = run(Command::new("nm").arg("-S").arg(elf));
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && parts.iter().all(|p| f[3].contains(p)))
        .map(|f| {
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            (hex(f[0]), hex(f[1]))
        })
        .unwrap_or_else(|| panic!("nm: no symbol with {parts:?}"))
}

fn source_line(marker: &str) -> u32 {
    let i = SOURCE.lines().position(|l| l.contains(marker)).unwrap();
    u32::try_from(i + 1).unwrap()
}

/// binutils' innermost (file name, line) at `pc`.
fn binutils_line(elf: &Path, pc: u64) -> (String, u32) {
    let out = run(Command::new("addr2line")
        .arg("-e")
        .arg(elf)
        .arg(format!("{pc:#x}")));
    let loc = out.lines().next().unwrap_or_default();
    let loc = loc.split(" (discriminator").next().unwrap_or_default();
    let (file, line) = loc.rsplit_once(':').unwrap_or((loc, "0"));
    let file = Path::new(file).file_name().unwrap_or_default();
    (
        file.to_string_lossy().into_owned(),
        line.parse().unwrap_or(0),
    )
}

#[test]
fn a_pc_in_a_function_is_named_with_its_demangled_name_file_and_line() {
    let elf = compiled();
    let user = UserBinary::open(elf).unwrap();
    assert!(user.has_debug_info());
    assert_eq!(user.name(), "tiny");
    let (bump, size) = nm(elf, &["4tiny", "4bump"]);
    let mut lines = Vec::new();
    for pc in bump..bump + size {
        let site = user.code(pc);
        assert_eq!(site.mode, Mode::User);
        assert_eq!(site.symbol.as_deref(), Some("tiny::bump"), "{pc:#x}");
        assert_eq!(site.offset, pc - bump);
        let Some(inner) = site.frames.first() else {
            continue;
        };
        let outer = site.frames.last().unwrap();
        assert_eq!(outer.function.as_deref(), Some("tiny::bump"), "{site:?}");
        let file = inner.file.as_deref().unwrap_or_default();
        let name = Path::new(file).file_name().unwrap_or_default();
        let (b_file, b_line) = binutils_line(elf, pc);
        if name.to_string_lossy() == "tiny.rs" {
            // Where our frames are in our source, binutils agrees on the innermost line.
            assert_eq!(
                (b_file.as_str(), inner.line),
                ("tiny.rs", Some(b_line)),
                "{pc:#x}"
            );
            lines.extend(inner.line);
        }
    }
    for marker in ["// BUMP", "// COUNT"] {
        assert!(
            lines.contains(&source_line(marker)),
            "no pc of bump on the {marker} line: {lines:?}"
        );
    }
    let label = user.code(bump).label();
    assert!(
        label.starts_with("user:tiny::bump (") && label.contains("tiny.rs:"),
        "{label}"
    );
}

#[test]
fn static_data_is_named_by_its_symbol_and_other_memory_by_region() {
    let elf = compiled();
    let user = UserBinary::open(elf).unwrap();
    let (counter, _) = nm(elf, &["4tiny", "7COUNTER"]);
    match user.data(counter) {
        What::UserStatic {
            symbol: Some(s),
            offset: 0,
            section,
            vaddr,
        } => {
            assert!(s.starts_with("tiny::COUNTER"), "{s}");
            assert_eq!((section.as_str(), vaddr), (".bss", counter));
        }
        other => panic!("COUNTER at {counter:#x}: {other:?}"),
    }
    let (table, _) = nm(elf, &["4tiny", "5TABLE"]);
    let what = user.data(table + 8);
    assert_eq!(what.label(), "user:tiny::TABLE+0x8");
    assert!(
        matches!(&what, What::UserStatic { section, .. } if section == ".data"),
        "{what:?}"
    );
    // Above the image: the program's own allocations (the guest maps its test pages at 1 TiB).
    let heap = user.data(0x100_0000_0000);
    assert_eq!(
        heap,
        What::Dynamic {
            region: Region::Heap,
            vaddr: 0x100_0000_0000
        }
    );
    assert_eq!(user.data(0x7ffc_1234_5678).label(), "stack");
    assert_eq!(user.data(STACK_LOW).label(), "stack");
    assert_eq!(user.data(STACK_LOW - 1).label(), "heap");
    // Below the image nothing is mapped by default: undecided.
    assert_eq!(user.data(0x1000).label(), "user");
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

/// A test whose two calls share `COUNTER`: call A's user code writes it, call B's kernel code
/// reads it (the kernel copying from user memory).
fn user_run(elf: &Path) -> TestRun {
    let (bump, _) = nm(elf, &["4tiny", "4bump"]);
    let (counter, _) = nm(elf, &["4tiny", "7COUNTER"]);
    let shared = SharedLocation {
        // Physical addresses have nothing to do with the binary's: only vaddr names it.
        addr: 0x0345_6000 + (counter & 0xfff),
        size: 8,
        slots: [0, 1],
        a: side(bump + 4, Rw::W),
        b: side(0xffff_ffff_8150_0000, Rw::R),
        cache: None,
        vaddr: Some(counter),
        percpu: None,
    };
    let record = TestRecord {
        v: RECORD_VERSION,
        test: 0,
        calls: vec![],
        overflow: false,
        shared: vec![shared],
        false_sharing: vec![],
        errors: vec![],
    };
    TestRun {
        id: "memwrite_write_0_0".into(),
        calls: vec!["memwrite".into(), "write".into()],
        record: Some(record),
        results: vec![None, None],
        errors: vec![],
    }
}

#[test]
fn scan_names_user_sites_and_user_memory_with_the_user_binary() {
    let elf = compiled();
    let user = UserBinary::open(elf).unwrap();
    let runs = [user_run(elf)];
    let file = scan_with(Target::default(), &runs, None, Some(&user));
    let t = &file.tests[0];
    assert_eq!(t.status, Status::Conflicted);
    let loc = &t.shared[0];
    assert!(
        loc.what.label().starts_with("user:tiny::COUNTER"),
        "{:?}",
        loc.what
    );
    assert_eq!((loc.a.mode, loc.b.mode), (Mode::User, Mode::Kernel));
    let a = &loc.a.sites[0];
    assert_eq!(
        (a.mode, a.symbol.as_deref()),
        (Mode::User, Some("tiny::bump"))
    );
    // No kernel image given: the kernel site keeps its mode and stays unnamed.
    let b = &loc.b.sites[0];
    assert_eq!((b.mode, b.symbol.as_deref()), (Mode::Kernel, None));
    let json = file.to_json();
    assert!(json.contains("\"kind\":\"user_static\""), "{json}");
    assert!(json.contains("\"mode\":\"user\""), "{json}");
    assert_eq!(ConflictsFile::from_json(&json).unwrap(), file);
    // Without the binary, user memory is only "user" memory, and user code unnamed.
    let plain = scan(Target::default(), &runs, None);
    let loc = &plain.tests[0].shared[0];
    assert_eq!(loc.what, What::Unknown);
    assert_eq!(loc.a.sites[0].symbol, None);
    assert_eq!(loc.a.sites[0].mode, Mode::User);
}

#[test]
fn stripped_pie_and_foreign_files_are_refused_or_named_by_symbols_only() {
    let elf = compiled();
    let dir = dir();
    // Without DWARF (the guest's release profile strips it): functions, no lines.
    let nodebug = dir.join("tiny-nodebug");
    run(Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&nodebug)
        .arg(elf));
    let user = UserBinary::open(&nodebug).unwrap();
    assert!(!user.has_debug_info());
    let (bump, _) = nm(elf, &["4tiny", "4bump"]);
    let site = user.code(bump + 1);
    assert_eq!(site.symbol.as_deref(), Some("tiny::bump"));
    assert!(site.frames.is_empty());
    assert_eq!(site.label(), "user:tiny::bump+0x1");
    // Fully stripped: nothing to name anything with.
    let bare = dir.join("tiny-bare");
    run(Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&bare)
        .arg(elf));
    let e = UserBinary::open(&bare).unwrap_err();
    assert!(matches!(e, SymbolsError::NoSymbols { .. }), "{e}");
    // Static PIE (crt-static without relocation-model=static): refused, naming the fix.
    let pie = rustc("tiny-pie", &[]);
    let e = UserBinary::open(&pie).unwrap_err();
    assert!(matches!(e, SymbolsError::Pie { .. }), "{e}");
    assert!(e.to_string().contains("relocation-model=static"), "{e}");
    let e = UserBinary::open(&dir.join("tiny.rs")).unwrap_err();
    assert!(matches!(e, SymbolsError::Elf { .. }), "{e}");
    let e = UserBinary::open(&dir.join("missing")).unwrap_err();
    assert!(matches!(e, SymbolsError::Io { .. }), "{e}");
}
