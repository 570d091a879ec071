//! The POSIX test suite as portable C: what `commuter emit-c` (and `testgen --emit-c`) write.
//!
//! Each test of a POSIX `tests.json` becomes one C function: its initial state (files with
//! their pages and link counts, names, pipes with their contents, per-process fds at the
//! test's fd numbers, mappings at the test's pages), its calls in order, each followed by the
//! checks of the result the model expects for that order (call A alone, then B after A), and
//! its cleanup. A runtime (`commuter_posix.c`, hand-written C carried by this crate) builds the
//! state the way the Linux target's guest does (one forked process per process slot, every fd
//! not in the test closed), runs each call in its process and compares; its `main` runs all
//! tests or a selection (test ids, call sets) and prints a summary. Only C99 and POSIX.1-2008
//! headers are used, so any POSIX system's compiler builds it: `make`, or
//! `cc -std=c99 -Wall -Werror -o commuter-posix-tests *.c`.
//!
//! What is checked is what the Linux target checks (`crates/targets/src/posix.rs`): values the
//! system chooses (new fd numbers, a non-fixed mapping's address, times, the identity of an
//! inode a call created) are left unchecked. A test that no test program can run (one with
//! `reboot`) is still emitted, as "not run" with the reason, and counted in the summary.
//!
//! The translation matches every [`PosixCall`] and [`PosixResult`] exhaustively: a call added
//! to the schema does not compile until it is handled here. No IO: [`emit`] returns the files'
//! names and contents; the caller writes them.

mod c;
mod test;

use std::collections::BTreeSet;

use commuter_posix_format::{ERRNOS, PAGE, SIGNALS};
use commuter_tests_format::TestSuite;
use thiserror::Error;

/// Processes (slots) a test may use.
pub const MAX_PROCS: usize = 4;
/// Inodes a test may set up.
pub const MAX_INODES: usize = 64;
/// Names a test may set up.
pub const MAX_NAMES: usize = 64;
/// Pipes a test may set up.
pub const MAX_PIPES: usize = 16;
/// Lowest fd a test may set up (as the Linux target's guest: below are stdio and its own).
pub const MIN_FD: i32 = 10;
/// Highest fd a test may set up; the runtime keeps its own fds above it.
pub const MAX_FD: i32 = 63;
/// Pages of the test area each process maps its pages in.
pub const MAX_PAGES: u32 = 64;
/// Links an inode may have beyond its names (each one a file the runtime creates).
pub const MAX_HIDDEN_LINKS: u64 = 16;
/// Bytes in a file name.
pub const NAME_MAX: usize = 255;

/// The name of the program the Makefile builds.
pub const PROGRAM: &str = "commuter-posix-tests";

/// The runtime's source, with `@LIMITS@`, `@ERRNOS@` and `@SIGNALS@` filled in by [`emit`].
const RUNTIME_C: &str = include_str!("../c/commuter_posix.c");
const RUNTIME_H: &str = include_str!("../c/commuter_posix.h");

/// One file of the emitted suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// A plain file name (no directory).
    pub name: String,
    pub contents: String,
}

/// The emitted suite: its files and what they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSuite {
    /// The files, in a fixed order: the runtime, the suite table, one file per call set,
    /// the Makefile.
    pub files: Vec<File>,
    /// Tests emitted as functions.
    pub tests: usize,
    /// Tests emitted as "not run", with the reason.
    pub not_run: usize,
    /// Call sets with at least one test (one `.c` file each).
    pub call_sets: usize,
}

/// Why a suite cannot be written as C.
#[derive(Debug, Error)]
pub enum EmitError {
    #[error(
        "the suite is of the `{0}` model; only POSIX-model suites can be written as C (`commuter testgen -m posix`)"
    )]
    NotPosix(String),
    #[error("test {id}: {problem}")]
    Test { id: String, problem: String },
}

/// The suite as C files. Same suite, same bytes.
pub fn emit(suite: &TestSuite) -> Result<CSuite, EmitError> {
    if suite.model != "posix" {
        return Err(EmitError::NotPosix(suite.model.clone()));
    }
    let mut idents = BTreeSet::new();
    let mut files = Vec::new();
    let mut sets = Vec::new();
    let (mut tests, mut not_run) = (0, 0);
    for cs in &suite.call_sets {
        if cs.tests.is_empty() {
            continue;
        }
        let name = cs.name();
        let base = c::unique(&mut idents, &c::ident(&cs.calls.join("_")));
        let mut body = String::new();
        let mut cases = String::new();
        for t in &cs.tests {
            let fn_name = c::unique(&mut idents, &format!("test_{}", c::ident(&t.id)));
            let emitted = test::emit_test(t).map_err(|problem| EmitError::Test {
                id: t.id.clone(),
                problem,
            })?;
            match emitted {
                test::Emitted::Function(f) => {
                    tests += 1;
                    body.push_str(&test::function(t, &fn_name, &f));
                    cases.push_str(&format!("\t{{{}, {fn_name}, NULL}},\n", c::string(&t.id)));
                }
                test::Emitted::NotRun(reason) => {
                    not_run += 1;
                    cases.push_str(&format!(
                        "\t{{{}, NULL, {}}},\n",
                        c::string(&t.id),
                        c::string(&reason)
                    ));
                }
            }
        }
        let file = format!("tests_{base}.c");
        let contents = format!(
            "/* The call set {}: {} tests (written by commuter emit-c). */\n\
             #include \"commuter_posix.h\"\n\n{body}\
             const struct ct_case ct_set_{base}[] = {{\n{cases}}};\n",
            c::comment(&name),
            cs.tests.len(),
        );
        files.push(File {
            name: file,
            contents,
        });
        sets.push((name, base, cs.tests.len()));
    }
    let mut all = vec![
        File {
            name: "commuter_posix.h".into(),
            contents: RUNTIME_H.replace("@LIMITS@", &limits()),
        },
        File {
            name: "commuter_posix.c".into(),
            contents: RUNTIME_C
                .replace("@ERRNOS@", &names_table(ERRNOS))
                .replace("@SIGNALS@", &names_table(SIGNALS)),
        },
        File {
            name: "suite.c".into(),
            contents: suite_table(&sets),
        },
    ];
    let call_sets = files.len();
    all.extend(files);
    all.push(File {
        name: "Makefile".into(),
        contents: makefile(&all),
    });
    Ok(CSuite {
        files: all,
        tests,
        not_run,
        call_sets,
    })
}

fn limits() -> String {
    [
        ("CT_PAGE", PAGE.to_string()),
        ("CT_MAX_PROCS", MAX_PROCS.to_string()),
        ("CT_MAX_INODES", MAX_INODES.to_string()),
        ("CT_MAX_NAMES", MAX_NAMES.to_string()),
        ("CT_MAX_PIPES", MAX_PIPES.to_string()),
        ("CT_MIN_FD", MIN_FD.to_string()),
        ("CT_MAX_FD", MAX_FD.to_string()),
        ("CT_MAX_PAGES", MAX_PAGES.to_string()),
        ("CT_NAME_MAX", NAME_MAX.to_string()),
    ]
    .iter()
    .map(|(k, v)| format!("#define {k} {v}\n"))
    .collect()
}

/// `{ENOENT, "ENOENT"},` lines: the names are the C library's, so the numbers are the
/// system's own (they differ between systems).
fn names_table(table: &[(&str, i32)]) -> String {
    table
        .iter()
        .map(|(name, _)| format!("\t{{{name}, \"{name}\"}},\n"))
        .collect()
}

fn suite_table(sets: &[(String, String, usize)]) -> String {
    let mut s = String::from(
        "/* Every call set of the suite, in the suite's order (written by commuter emit-c). */\n\
         #include \"commuter_posix.h\"\n\n",
    );
    for (_, base, n) in sets {
        s.push_str(&format!(
            "extern const struct ct_case ct_set_{base}[{n}];\n"
        ));
    }
    s.push_str("\nconst struct ct_set ct_sets[] = {\n");
    for (name, base, n) in sets {
        s.push_str(&format!("\t{{{}, ct_set_{base}, {n}}},\n", c::string(name)));
    }
    if sets.is_empty() {
        // C has no empty arrays.
        s.push_str("\t{\"\", NULL, 0},\n");
    }
    s.push_str("};\n\nconst size_t ct_nsets = sizeof ct_sets / sizeof ct_sets[0];\n");
    s
}

fn makefile(files: &[File]) -> String {
    let objs: Vec<String> = files
        .iter()
        .filter_map(|f| f.name.strip_suffix(".c"))
        .map(|stem| format!("{stem}.o"))
        .collect();
    format!(
        "# The commuter POSIX test suite as C (written by commuter emit-c).\n\
         # Build: make   (or: cc -std=c99 -Wall -Werror -o {PROGRAM} *.c)\n\
         # Run:   ./{PROGRAM} [-v] [-l] [-d DIR] [TEST-ID | CALL/SET ...]\n\
         \n\
         CC = cc\n\
         CFLAGS = -std=c99 -Wall -Werror\n\
         OBJS = \\\n\t{}\n\
         \n\
         {PROGRAM}: $(OBJS)\n\
         \t$(CC) $(CFLAGS) -o {PROGRAM} $(OBJS)\n\
         \n\
         $(OBJS): commuter_posix.h\n\
         \n\
         clean:\n\
         \trm -f {PROGRAM} $(OBJS)\n",
        objs.join(" \\\n\t")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_tests_format::{CallSetTests, Expectation, TestCall, TestCase};
    use serde_json::{Value as Json, json};

    fn suite<const N: usize>(
        model: &str,
        calls: [(&str, Json, Json); N],
        setup: Json,
    ) -> TestSuite {
        let names: Vec<String> = calls.iter().map(|c| c.0.to_string()).collect();
        TestSuite {
            schema: commuter_tests_format::TESTS_SCHEMA.into(),
            version: commuter_tests_format::TESTS_VERSION,
            model: model.into(),
            ncomb: N,
            functions: None,
            max_tests_per_path: 1,
            max_testcases: None,
            part: None,
            call_sets: vec![CallSetTests {
                calls: names,
                paths: 1,
                commutative_paths: 1,
                capped_paths: vec![],
                tests: vec![TestCase {
                    id: "t_0_0".into(),
                    path: "t_0".into(),
                    class: vec!["a.fd == b.fd */ x".into()],
                    idempotent: vec![],
                    setup,
                    calls: calls
                        .iter()
                        .zip(["a", "b", "c"])
                        .map(|((call, args, _), slot)| TestCall {
                            slot: slot.into(),
                            call: call.to_string(),
                            args: args.clone(),
                        })
                        .collect(),
                    expected: calls
                        .iter()
                        .zip([("a", "a"), ("ab", "b"), ("abc", "c")])
                        .map(|((_, _, result), (order, slot))| Expectation {
                            order: order.into(),
                            slot: slot.into(),
                            result: result.clone(),
                        })
                        .collect(),
                }],
                errors: vec![],
            }],
        }
    }

    fn file_setup(fd: i32) -> Json {
        json!({"inodes": [{"data": [3], "nlink": 3}], "names": [{"name": "__f0", "inode": 0}],
               "procs": [{"fds": [{"fd": fd, "file": {"inode": 0, "off": 0}}]}]})
    }

    fn test_file(c: &CSuite) -> &str {
        &c.files
            .iter()
            .find(|f| f.name.starts_with("tests_"))
            .expect("a call set file")
            .contents
    }

    #[test]
    fn a_test_becomes_one_function_with_its_checks() {
        let s = suite(
            "posix",
            [
                (
                    "stat",
                    json!({"name": "__f0"}),
                    json!({"ok": {"inum": "Inum0", "size": 1, "nlink": 3, "atime": 0, "mtime": 0, "ctime": 0}}),
                ),
                ("read", json!({"proc": 1, "fd": 10}), json!({"err": 9})),
            ],
            file_setup(10),
        );
        let c = emit(&s).expect("emitted");
        assert_eq!((c.tests, c.not_run, c.call_sets), (1, 0, 1));
        let body = test_file(&c);
        for line in [
            "/* t_0_0 (path t_0)\n *   a.fd == b.fd * / x */\nstatic void test_t_0_0(struct ct *t)",
            "\tct_setup_inode(t, 0, (const unsigned char[]){3}, 1, 2);\n",
            "\tct_setup_name(t, \"__f0\", 0);\n",
            "\tct_setup_fd_file(t, 0, 10, 0, 0LL);\n",
            "\tct_start(t, 2);\n",
            "\tct_stat(t, \"__f0\");\n\tct_expect_stat(t, 0, 4096LL, 3LL);\n",
            "\tct_read(t, 1, 10);\n\tct_expect_err(t, EBADF);\n",
            "\tct_end(t);\n",
            "\t{\"t_0_0\", test_t_0_0, NULL},\n",
        ] {
            assert!(body.contains(line), "{line:?} in\n{body}");
        }
    }

    #[test]
    fn three_calls_run_in_order_each_checked_after_the_ones_before() {
        let stat = |r: Json| ("stat", json!({"name": "__f0"}), r);
        let s = suite(
            "posix",
            [
                stat(json!({"err": 2})),
                (
                    "open",
                    json!({"proc": 1, "name": "__f0", "creat": true, "excl": false, "trunc": false, "anyfd": false}),
                    json!({"ok": 0}),
                ),
                stat(
                    json!({"ok": {"inum": "Inum1", "size": 0, "nlink": 1, "atime": 0, "mtime": 0, "ctime": 0}}),
                ),
            ],
            json!({}),
        );
        let c = emit(&s).expect("emitted");
        let body = test_file(&c);
        let calls = "\t/* call a */\n\tct_stat(t, \"__f0\");\n\tct_expect_err(t, ENOENT);\n\
                     \t/* call b */\n\tct_open(t, 1, \"__f0\", CT_CREAT);\n\
                     \tct_expect_any(t); /* the new fd: the system's choice */\n\
                     \t/* call c */\n\tct_stat(t, \"__f0\");\n\tct_expect_stat(t, -1, 0LL, 1LL);\n";
        assert!(body.contains(calls), "{body}");
    }

    #[test]
    fn reboot_is_not_run_and_says_why() {
        let s = suite(
            "posix",
            [
                ("reboot", json!(null), json!(null)),
                ("stat", json!({"name": "__f0"}), json!({"err": 2})),
            ],
            file_setup(10),
        );
        let c = emit(&s).expect("emitted");
        assert_eq!((c.tests, c.not_run), (0, 1));
        assert!(test_file(&c).contains("{\"t_0_0\", NULL, \"reboot: a crash and reboot"));
    }

    #[test]
    fn bad_tests_and_other_models_are_refused_with_the_reason() {
        let calls = || {
            [
                ("close", json!({"proc": 0, "fd": 10}), json!({"ok": null})),
                ("close", json!({"proc": 0, "fd": 10}), json!({"err": 9})),
            ]
        };
        let e = emit(&suite("posix", calls(), file_setup(3))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "test t_0_0: process 0: fd 3 is outside 10..=63"
        );
        let e = emit(&suite("counter", calls(), file_setup(10))).unwrap_err();
        assert!(matches!(e, EmitError::NotPosix(m) if m == "counter"));
        let mut s = suite("posix", calls(), file_setup(10));
        s.call_sets[0].tests[0].expected.pop();
        let e = emit(&s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "test t_0_0: no expected result of call b in order ab"
        );
    }
}
