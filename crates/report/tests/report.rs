//! Snapshot tests of the terminal report and the heat map on a small synthetic conflicts file
//! (the real schema, made-up tests).

use commuter_report::{
    PairTests, diff, diff_terminal, heatmap_png, heatmap_svg, pairs_of, sarif, summarize, terminal,
    top_sites,
};
use commuter_scan::ConflictsFile;
use commuter_scan::schema::{
    Access, CONFLICTS_SCHEMA, CONFLICTS_VERSION, CodeSite, ErrorKind, Frame, Location, Mismatch,
    Status, Target, TestConflicts, TestError, What,
};
use commuter_trace_format::record::{Mode, Rw};

fn site(pc: u64, function: &str, file: &str, line: u32, inlined_into: Option<&str>) -> CodeSite {
    let frame = |f: &str, line| Frame {
        function: Some(f.into()),
        file: Some(file.into()),
        line: Some(line),
    };
    let mut frames = vec![frame(function, line)];
    if let Some(outer) = inlined_into {
        frames.push(frame(outer, line + 100));
    }
    CodeSite {
        pc,
        mode: Mode::Kernel,
        symbol: Some(inlined_into.unwrap_or(function).into()),
        offset: 0x10,
        frames,
    }
}

fn dentry_ref(addr: u64) -> Location {
    let get = site(
        0xffff_ffff_8137_a1c2,
        "lockref_get_not_dead",
        "lib/lockref.c",
        173,
        None,
    );
    let put = site(
        0xffff_ffff_8137_a2d0,
        "lockref_put_return",
        "lib/lockref.c",
        120,
        Some("dput"),
    );
    Location {
        addr,
        size: 8,
        slots: [0, 1],
        what: What::Slab {
            cache: "dentry".into(),
            vaddr: 0xffff_8880_0000_0000 + addr,
        },
        a: Access {
            mode: Mode::Kernel,
            rw: Rw::Rw,
            sites: vec![get.clone(), put.clone()],
            stack: vec![],
        },
        b: Access {
            mode: Mode::Kernel,
            rw: Rw::Rw,
            sites: vec![get, put],
            stack: vec![],
        },
    }
}

fn ctime() -> Location {
    let w = site(
        0xffff_ffff_8140_0010,
        "inode_set_ctime_current",
        "fs/inode.c",
        2630,
        None,
    );
    Location {
        addr: 0x2c0_79c0,
        size: 8,
        slots: [0, 1],
        what: What::Static {
            symbol: "jiffies_64".into(),
            offset: 0,
            section: ".data".into(),
            vaddr: 0xffff_ffff_82c0_79c0,
        },
        a: Access {
            mode: Mode::Kernel,
            rw: Rw::W,
            sites: vec![w.clone()],
            stack: vec![],
        },
        b: Access {
            mode: Mode::Kernel,
            rw: Rw::R,
            sites: vec![w],
            stack: vec![],
        },
    }
}

fn test(id: &str, calls: [&str; 2], status: Status, shared: Vec<Location>) -> TestConflicts {
    TestConflicts {
        id: id.into(),
        calls: calls.map(String::from).to_vec(),
        status,
        shared,
        false_sharing: vec![],
        mismatches: vec![],
        errors: vec![],
    }
}

fn conflicts() -> ConflictsFile {
    use Status::*;
    let mut tests = vec![
        test(
            "stat_stat_0_0",
            ["stat", "stat"],
            Conflicted,
            vec![dentry_ref(0x2a4c1a8)],
        ),
        test("stat_stat_0_1", ["stat", "stat"], ConflictFree, vec![]),
        test(
            "stat_stat_1_0",
            ["stat", "stat"],
            Conflicted,
            vec![dentry_ref(0x2a4d1a8)],
        ),
        test(
            "open_stat_0_0",
            ["open", "stat"],
            Conflicted,
            vec![dentry_ref(0x2a4e1a8), ctime()],
        ),
        test("open_stat_0_1", ["open", "stat"], ConflictFree, vec![]),
        test("open_stat_0_2", ["open", "stat"], ConflictFree, vec![]),
        test("open_open_0_0", ["open", "open"], ConflictFree, vec![]),
        test("open_open_0_1", ["open", "open"], Unknown, vec![]),
        test("getpid_open_0_0", ["getpid", "open"], ConflictFree, vec![]),
        test(
            "getpid_getpid_0_0",
            ["getpid", "getpid"],
            ConflictFree,
            vec![],
        ),
    ];
    tests[5].mismatches.push(Mismatch {
        slot: "b".into(),
        call: "stat".into(),
        details: vec!["ret: expected 0, got -1 (ENOENT)".into()],
    });
    tests[7].errors.push(TestError {
        kind: ErrorKind::Overflow,
        message: "trace buffer overflow: 12 accesses dropped".into(),
    });
    ConflictsFile {
        schema: CONFLICTS_SCHEMA.into(),
        version: CONFLICTS_VERSION,
        target: Target {
            name: "linux".into(),
            version: Some("6.12.95+deb12-amd64".into()),
            symbols: Some("vmlinux-6.12.95+deb12-amd64".into()),
        },
        shard: None,
        tests,
    }
}

fn pairs() -> Vec<PairTests> {
    let p = |a: &str, b: &str, tests| PairTests {
        calls: vec![a.into(), b.into()],
        tests,
    };
    vec![
        p("getpid", "getpid", 1),
        p("getpid", "open", 1),
        p("getpid", "stat", 0),
        p("open", "open", 2),
        p("open", "stat", 3),
        // One test of this pair is missing from the conflicts file: it counts as unknown.
        p("stat", "stat", 4),
    ]
}

#[test]
fn summary_counts_per_pair() {
    let s = summarize(&conflicts(), &pairs());
    let stat = &s[5];
    assert_eq!(
        (
            stat.tests,
            stat.conflict_free,
            stat.conflicted,
            stat.unknown
        ),
        (4, 1, 2, 1)
    );
    assert_eq!(s[4].mismatched, 1);
    assert_eq!(s[2].fraction(), None);
    let top = top_sites(&conflicts(), 10);
    assert_eq!(top[0].tests, 3);
    // The shared heap object is named by its slab cache.
    assert_eq!(top[0].what, "slab:dentry");
}

#[test]
fn terminal_report() {
    insta::assert_snapshot!(terminal(&conflicts(), &pairs(), 5, None));
}

#[test]
fn heatmap() {
    let svg = heatmap_svg(&conflicts(), &pairs());
    // Kept for looking at it (rendered to PNG by hand, never committed).
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("heatmap.svg");
    std::fs::write(&out, &svg).unwrap();
    assert!(
        svg.contains("Linux 6.12.95+deb12-amd64 (6 of 11 cases scale)"),
        "{svg}"
    );
    insta::assert_snapshot!(svg);
}

/// A suite of triples: one row per call set, which two of its calls shared in how many tests,
/// and the heat map lists the set under the (empty) grid of pairs.
#[test]
fn a_triple_is_one_row_with_its_pairs_of_calls() {
    let mut bc = dentry_ref(0x1000);
    bc.slots = [1, 2];
    let triple = |id: &str, status, shared| TestConflicts {
        calls: vec!["stat".into(); 3],
        ..test(id, ["stat", "stat"], status, shared)
    };
    let mut file = conflicts();
    file.tests = vec![
        triple(
            "stat_stat_stat_0_0",
            Status::Conflicted,
            vec![dentry_ref(0x1000), bc.clone()],
        ),
        triple("stat_stat_stat_0_1", Status::Conflicted, vec![bc]),
        triple("stat_stat_stat_1_0", Status::ConflictFree, vec![]),
    ];
    let sets = [PairTests {
        calls: vec!["stat".into(); 3],
        tests: 3,
    }];
    let text = terminal(&file, &sets, 5, None);
    assert!(text.starts_with("call set "), "{text}");
    let row: Vec<&str> = text
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        ["stat/stat/stat", "3", "1", "33.3", "2", "0", "0"],
        "{text}"
    );
    assert!(text.contains("stat/stat/stat: ab 1, ac 0, bc 2"), "{text}");
    assert!(
        text.contains("stat/stat/stat ab, stat/stat/stat bc"),
        "{text}"
    );
    let svg = heatmap_svg(&file, &sets);
    assert!(
        svg.contains("stat/stat/stat: 1 of 3 conflict-free; shared: ab 1, ac 0, bc 2"),
        "{svg}"
    );
    assert_eq!(svg, heatmap_svg(&file, &sets), "same input, same bytes");
}

/// DejaVu Sans among the system's fonts (Debian's `fonts-dejavu-core`, which `scripts/setup`
/// installs), found as the CLI finds it.
fn dejavu_sans() -> Vec<u8> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let query = fontdb::Query {
        families: &[fontdb::Family::Name("DejaVu Sans")],
        ..fontdb::Query::default()
    };
    let id = db
        .query(&query)
        .expect("DejaVu Sans is installed (apt-get install fonts-dejavu-core; scripts/setup does)");
    db.with_face_data(id, |data, _| data.to_vec())
        .expect("font data")
}

/// A decoded RGBA picture drawn at scale 2.
struct Picture {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

impl Picture {
    fn decode(png: &[u8]) -> Picture {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .expect("a PNG");
        let mut rgba = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut rgba).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgba);
        Picture {
            width: info.width,
            height: info.height,
            rgba,
        }
    }

    /// The pixel at SVG coordinates (x, y).
    fn at(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * 2 * self.width + x * 2) * 4) as usize;
        [
            self.rgba[i],
            self.rgba[i + 1],
            self.rgba[i + 2],
            self.rgba[i + 3],
        ]
    }
}

#[test]
fn png_heatmap_draws_the_svg() {
    let (c, p) = (conflicts(), pairs());
    let font = dejavu_sans();
    let png = heatmap_png(&[(&c, &p)], std::slice::from_ref(&font), 2.0).expect("png");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("heatmap.png");
    std::fs::write(&out, &png).unwrap();
    let pic = Picture::decode(&png);
    // The SVG is 443 x 270 (see the heatmap snapshot), drawn at twice its size.
    assert_eq!((pic.width, pic.height), (886, 540));
    // Cells as in the SVG: stat/stat (1 of 4 conflict-free) at (150, 100), open/stat (2 of
    // 3) at (120, 100), getpid/stat (no tests) at (90, 100); white around.
    assert_eq!(pic.at(155, 105), [0xeb, 0x88, 0x59, 255]);
    assert_eq!(pic.at(125, 105), [0xb2, 0xc8, 0x77, 255]);
    assert_eq!(pic.at(95, 125), [0xdd, 0xdd, 0xdd, 255]);
    assert_eq!(pic.at(400, 100), [255, 255, 255, 255]);
    // The title's text is drawn: dark pixels in its band.
    let dark = (60..380)
        .flat_map(|x| (12..30).map(move |y| (x, y)))
        .filter(|&(x, y)| pic.at(x, y)[0] < 100)
        .count();
    assert!(dark > 50, "{dark} dark pixels in the title");
    assert_eq!(
        heatmap_png(&[(&c, &p)], &[font], 2.0).expect("again"),
        png,
        "same input, same bytes"
    );
    let e = heatmap_png(&[(&c, &p)], &[], 2.0).expect_err("no font");
    assert!(e.to_string().contains("fonts-dejavu-core"), "{e}");
}

/// The same suite after a "patch": one test became conflicted (on a new site), one
/// conflict-free, the mismatch was fixed, one test could no longer be judged.
fn patched() -> ConflictsFile {
    let mut f = conflicts();
    let by_id =
        |f: &mut ConflictsFile, id: &str| f.tests.iter().position(|t| t.id == id).expect("test");
    let i = by_id(&mut f, "stat_stat_0_1");
    f.tests[i].status = Status::Conflicted;
    f.tests[i].shared = vec![ctime()];
    let i = by_id(&mut f, "stat_stat_1_0");
    f.tests[i].status = Status::ConflictFree;
    f.tests[i].shared.clear();
    let i = by_id(&mut f, "open_stat_0_2");
    f.tests[i].mismatches.clear();
    let i = by_id(&mut f, "getpid_open_0_0");
    f.tests[i].status = Status::Unknown;
    f
}

#[test]
fn a_run_compared_with_itself_got_no_worse() {
    let d = diff(&conflicts(), &conflicts());
    assert!(!d.got_worse());
    assert!(d.became_conflicted.is_empty() && d.sites_appeared.is_empty());
    assert!(diff_terminal(&d, 10).ends_with("nothing got worse\n"));
}

#[test]
fn a_patch_that_adds_sharing_got_worse() {
    let d = diff(&conflicts(), &patched());
    assert!(d.got_worse());
    assert_eq!(d.became_conflicted[0].id, "stat_stat_0_1");
    assert_eq!(d.became_conflict_free[0].id, "stat_stat_1_0");
    assert_eq!(d.fixed_mismatches, ["open_stat_0_2"]);
    assert_eq!(d.new_unknown, ["getpid_open_0_0"]);
    // The back direction: the fix made nothing worse but the unknown test is judged again.
    assert!(diff(&patched(), &conflicts()).got_worse());
    insta::assert_snapshot!(diff_terminal(&d, 10));
}

#[test]
fn pairs_come_from_the_conflicts_file_when_there_is_no_suite() {
    let pairs = pairs_of(&conflicts());
    let stat = pairs
        .iter()
        .find(|p| p.calls == ["stat", "stat"])
        .expect("pair");
    assert_eq!(stat.tests, 3);
    assert_eq!(pairs[0].calls, ["stat", "stat"]);
}

/// The published SARIF 2.1.0 schema (OASIS; `Schemata/sarif-schema-2.1.0.json` of the
/// specification, as json.schemastore.org serves it).
const SARIF_SCHEMA: &str = include_str!("data/sarif-schema-2.1.0.json");

#[test]
fn sarif_is_valid_against_the_published_schema() {
    let log: serde_json::Value = serde_json::from_str(&sarif(&conflicts(), None)).expect("JSON");
    let mut schema: serde_json::Value = serde_json::from_str(SARIF_SCHEMA).expect("schema");
    // The published `language` patterns have a lone `]`, a literal in legacy ECMAScript
    // regexes but an error in the Unicode mode the validator checks patterns in: escaped, they
    // mean the same.
    let lone = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    assert_eq!(
        escape_pattern(
            &mut schema,
            lone,
            r"^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\]?$"
        ),
        2
    );
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // An invalid log is caught: the check can fail.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "severe".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn sarif_has_one_result_per_code_site_and_kind() {
    let log: serde_json::Value = serde_json::from_str(&sarif(&conflicts(), None)).expect("JSON");
    let results = log["runs"][0]["results"].as_array().expect("results");
    // dentry: lockref_get_not_dead and lockref_put_return; jiffies_64: inode_set_ctime_current.
    assert_eq!(results.len(), 3, "{results:#?}");
    let ctime = results
        .iter()
        .find(|r| r["ruleId"] == "shared-static-variable")
        .expect("a static variable result");
    let loc = &ctime["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "fs/inode.c");
    assert_eq!(loc["region"]["startLine"], 2630);
    insta::assert_snapshot!(sarif(&conflicts(), None));
}

/// Replaces every `"pattern": from` in a schema; how many it replaced.
fn escape_pattern(schema: &mut serde_json::Value, from: &str, to: &str) -> usize {
    match schema {
        serde_json::Value::Object(map) => {
            let mut n = 0;
            for (k, v) in map.iter_mut() {
                if k == "pattern" && v == from {
                    *v = to.into();
                    n += 1;
                } else {
                    n += escape_pattern(v, from, to);
                }
            }
            n
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().map(|v| escape_pattern(v, from, to)).sum()
        }
        _ => 0,
    }
}

/// The JSON embedded in an HTML report (between its data element's tags), pretty-printed.
fn html_data(html: &str) -> serde_json::Value {
    let start = r#"<script id="data" type="application/json">"#;
    let from = html.find(start).expect("data element") + start.len();
    let len = html[from..].find("</script>").expect("end of data");
    serde_json::from_str(&html[from..from + len]).expect("data is JSON")
}

#[test]
fn html_report_data_is_compact_and_stable() {
    let html = commuter_report::report_html(&conflicts(), &pairs(), None);
    assert_eq!(
        html,
        commuter_report::report_html(&conflicts(), &pairs(), None)
    );
    // Self-contained: nothing is loaded from anywhere.
    for external in ["src=\"http", "href=\"http", "@import", "fetch("] {
        assert!(!html.contains(external), "{external}");
    }
    let data = html_data(&html);
    assert_eq!(data["format"], commuter_report::HTML_DATA_FORMAT);
    // Each code site is stored once, however many locations name it.
    let sites = data["sites"].as_array().expect("sites");
    let mut pcs: Vec<&str> = sites.iter().filter_map(|s| s[0].as_str()).collect();
    pcs.sort_unstable();
    pcs.dedup();
    assert_eq!(pcs.len(), sites.len());
    insta::assert_snapshot!(serde_json::to_string_pretty(&data).expect("JSON"));
}

#[test]
fn html_report_cannot_be_closed_by_its_data() {
    let mut c = conflicts();
    c.target.version = Some("</script><script>alert(1)</script> __DATA__".into());
    let html = commuter_report::report_html(&c, &pairs(), None);
    assert_eq!(
        html.matches("</script>").count(),
        3,
        "the data's, the suite's and the viewer's"
    );
    assert_eq!(
        html_data(&html)["runs"][0]["target"]["version"],
        "</script><script>alert(1)</script> __DATA__"
    );
}

#[test]
fn html_diff_holds_both_runs() {
    let html = commuter_report::diff_html(&conflicts(), &patched());
    let data = html_data(&html);
    assert_eq!(data["mode"], "diff");
    assert_eq!(data["runs"].as_array().map(Vec::len), Some(2));
}

/// A suite that says which tests of [`conflicts`] are on idempotent paths: both `stat`s of
/// `stat_stat_0_*` (two stats of one name read only), `a` of `open_stat_0_0`.
fn idempotence() -> commuter_report::Idempotence {
    let case = |id: &str, idem: &[&str]| {
        serde_json::json!({
            "id": id, "path": id.rsplit_once('_').map_or(id, |(p, _)| p),
            "idempotent": idem, "setup": {}, "calls": [], "expected": []
        })
    };
    let call_set = |calls: [&str; 2], tests: Vec<serde_json::Value>| {
        serde_json::json!({
            "calls": calls, "paths": 1, "commutative_paths": 1, "capped_paths": [],
            "tests": tests, "errors": []
        })
    };
    let suite: commuter_tests_format::TestSuite = serde_json::from_value(serde_json::json!({
        "schema": "commuter.tests", "version": 1, "model": "posix", "ncomb": 2,
        "functions": null, "max_tests_per_path": 500, "max_testcases": null,
        "call_sets": [
            call_set(["stat", "stat"], vec![
                case("stat_stat_0_0", &["a", "b"]),
                case("stat_stat_0_1", &["a", "b"]),
                case("stat_stat_1_0", &[]),
            ]),
            call_set(["open", "stat"], vec![case("open_stat_0_0", &["a"])]),
        ]
    }))
    .expect("suite");
    commuter_report::Idempotence::of_suite(&suite)
}

#[test]
fn conflicts_on_idempotent_paths_are_labelled_and_counted() {
    let idem = idempotence();
    assert_eq!(
        idem.label("stat_stat_0_0").as_deref(),
        Some("idempotent: a, b")
    );
    assert_eq!(idem.label("stat_stat_1_0"), None);
    // Without the suite's idempotence the summary is the plain one (`terminal_report`'s
    // snapshot): no column, no list.
    let plain = terminal(&conflicts(), &pairs(), 5, None);
    assert!(!plain.contains("idempotent"), "{plain}");
    let text = terminal(&conflicts(), &pairs(), 5, Some(&idem));
    // stat_stat_0_1 is idempotent but conflict-free: not counted.
    assert!(text.contains("conflicts on idempotent paths (2;"), "{text}");
    assert!(
        text.contains("stat_stat_0_0 (stat/stat): conflicted (idempotent: a, b)"),
        "{text}"
    );
    assert!(
        text.contains("open_stat_0_0 (open/stat): conflicted (idempotent: a)"),
        "{text}"
    );
    assert!(
        !text.contains("stat_stat_1_0 (stat/stat): conflicted (idem"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    let with = sarif(&conflicts(), Some(&idem));
    assert!(
        with.contains("2 of them conflicted on paths where a call is idempotent"),
        "{with}"
    );
    // Without it, the plain log (`sarif_has_one_result_per_code_site_and_kind`'s snapshot).
    let plain = sarif(&conflicts(), None);
    assert!(!plain.contains("idempotent"), "{plain}");
}

#[test]
fn a_real_run_reads_the_same_from_version_4_and_version_5() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/small-run-conflicts.json");
    let v4 = std::fs::read_to_string(path).expect("fixture");
    assert!(v4.starts_with("{\"schema\":\"commuter.conflicts\",\"version\":4,"));
    let file = ConflictsFile::from_json(&v4).expect("version 4 reads");
    let v5 = file.to_json();
    // 37 tests of a small run (the full run's file shrinks 29 times, see the README).
    assert!(
        v5.len() * 3 < v4.len(),
        "{} of {} bytes",
        v5.len(),
        v4.len()
    );
    assert_eq!(
        ConflictsFile::from_json(&v5).expect("version 5 reads"),
        file
    );
}

/// A caller on a stack: the call instruction's site, named by the function holding it.
fn caller(pc: u64, function: &str) -> CodeSite {
    site(pc, function, "mm/util.c", 575, None)
}

#[test]
fn code_sites_are_grouped_by_their_callers() {
    let mut c = conflicts();
    let mmap = [
        caller(0xffff_ffff_8130_0010, "vm_mmap_pgoff"),
        caller(0xffff_ffff_8130_0110, "ksys_mmap_pgoff"),
        caller(0xffff_ffff_8100_0010, "do_syscall_64"),
        caller(0xffff_ffff_8100_0020, "entry_SYSCALL_64"),
    ];
    let mprotect = [
        caller(0xffff_ffff_8131_0010, "do_mprotect_pkey"),
        caller(0xffff_ffff_8131_0110, "__x64_sys_mprotect"),
    ];
    // stat_stat_0_0 and _1_0 reach the dentry from one caller, open_stat_0_0 from another.
    for (i, stack) in [(0, &mmap[..]), (2, &mmap[..]), (3, &mprotect[..])] {
        c.tests[i].shared[0].a.stack = stack.to_vec();
        c.tests[i].shared[0].b.stack = stack.to_vec();
    }
    let top = top_sites(&c, 10);
    assert_eq!(
        top[0].callers,
        vec![
            (
                "vm_mmap_pgoff < ksys_mmap_pgoff < do_syscall_64".to_string(),
                2
            ),
            ("do_mprotect_pkey < __x64_sys_mprotect".to_string(), 1),
        ]
    );
    assert!(top[1].callers.is_empty(), "no stacks recorded there");
    let text = terminal(&c, &pairs(), 5, None);
    assert!(
        text.contains(
            "called from:\n                2 tests  vm_mmap_pgoff < ksys_mmap_pgoff < do_syscall_64\n                1 tests  do_mprotect_pkey"
        ),
        "{text}"
    );
    // Without stacks the summary is as before.
    assert!(!terminal(&conflicts(), &pairs(), 5, None).contains("called from"));
    // The report's test view gets each side's callers as site indices.
    let data = html_data(&commuter_report::report_html(&c, &pairs(), None));
    let access = &data["runs"][0]["tests"][0][3][0][5];
    let stack = access[3].as_array().expect("stack");
    assert_eq!(stack.len(), 4);
    let first = stack[0].as_u64().expect("index") as usize;
    assert_eq!(data["sites"][first][0], "0xffffffff81300010");
}
