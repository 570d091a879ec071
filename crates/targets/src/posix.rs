//! From a POSIX-model test (as `commuter testgen` writes it in `tests.json`) to a guest plan
//! test: the setup is already in the guest's shape; arguments become guest operations; the
//! model's expected results become the checks the guest makes.
//!
//! Some expectations cannot be checked on a real kernel and are left out, as in the original
//! tool: the numbers of newly opened fds (the guest's processes hold other fds), the page a
//! non-fixed `mmap` picks, times (the model's clock is not Linux's), and the identity of inodes
//! a call created. Link counts are checked: the setup gives each inode the links the model
//! says it has, hidden ones included.

use commuter_guest::plan::{
    Call, Expect, Op, Ret, Setup, StatExpect, Test, errno_name, signal_name,
};
use serde_json::{Map, Value as Json, json};
use thiserror::Error;

/// One test in the model's terms: the three parts of a `tests.json` test the guest needs.
pub struct PosixTest<'a> {
    pub name: &'a str,
    pub setup: &'a Json,
    /// Call name and concrete arguments of call A and call B.
    pub calls: [(&'a str, &'a Json); 2],
    /// The model's result of call A run first, and of call B run after A.
    pub expected: [&'a Json; 2],
}

/// Why a test cannot be run on Linux.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("{call}: {problem}")]
    Call { call: String, problem: String },
    #[error("setup: {0}")]
    Setup(String),
}

/// Bytes in one data value (a page).
const PAGE: i64 = 4096;

pub fn plan_test(t: &PosixTest) -> Result<Test, TranslateError> {
    let setup: Setup = serde_json::from_value(t.setup.clone())
        .map_err(|e| TranslateError::Setup(e.to_string()))?;
    let inodes = setup.inodes.len();
    let call = |i: usize| -> Result<Call, TranslateError> {
        let (name, args) = t.calls[i];
        let fail = |problem: String| TranslateError::Call {
            call: name.to_string(),
            problem,
        };
        let proc = args.get("proc").and_then(Json::as_u64).unwrap_or(0) as usize;
        let op = operation(name, args).map_err(&fail)?;
        let expect = expectation(name, args, t.expected[i], inodes).map_err(&fail)?;
        Ok(Call { proc, op, expect })
    };
    let test = Test {
        name: t.name.to_string(),
        setup,
        calls: [call(0)?, call(1)?],
    };
    test.validate().map_err(TranslateError::Setup)?;
    Ok(test)
}

/// The guest operation: the arguments under the call's name, less what only the model uses.
fn operation(name: &str, args: &Json) -> Result<Op, String> {
    let mut fields: Map<String, Json> = args.as_object().cloned().unwrap_or_default();
    fields.remove("proc");
    fields.remove("anyfd");
    fields.insert("call".into(), json!(name));
    if name == "lseek" && fields.get("whence") == Some(&json!("none")) {
        fields.insert("whence".into(), json!("invalid"));
    }
    serde_json::from_value(Json::Object(fields)).map_err(|e| format!("no guest operation: {e}"))
}

fn expectation(name: &str, args: &Json, result: &Json, inodes: usize) -> Result<Expect, String> {
    let mut expect = Expect {
        ret: Ret::AnyOk,
        data: None,
        stat: None,
        fds: None,
    };
    let ok = match (result.get("ok"), result.get("err")) {
        (_, Some(err)) => {
            let n = err
                .as_i64()
                .ok_or_else(|| format!("error {err} is not a number"))? as i32;
            let memory = matches!(name, "memread" | "memwrite");
            expect.ret = Ret::Err(errno_name(n));
            if memory {
                expect.ret = Ret::Signal(signal_name(n));
            }
            return Ok(expect);
        }
        (Some(ok), None) => ok,
        // Calls that cannot fail return their value directly (pipe's fds).
        (None, None) => result,
    };
    match name {
        "open" | "pipe" => {}
        "link" | "unlink" | "rename" | "close" | "munmap" | "mprotect" | "memwrite" => {
            expect.ret = Ret::Ok(0)
        }
        "write" | "pwrite" => expect.ret = Ret::Ok(PAGE),
        "lseek" => expect.ret = Ret::Ok(number(ok)? * PAGE),
        "stat" | "fstat" => stat_expectation(&mut expect, ok, inodes)?,
        "read" | "pread" => match ok.get("some") {
            Some(d) => {
                expect.ret = Ret::Ok(PAGE);
                expect.data = Some(data_value(d)?);
            }
            None => expect.ret = Ret::Ok(0),
        },
        "memread" => {
            expect.ret = Ret::Ok(0);
            expect.data = Some(data_value(ok)?);
        }
        "mmap" => {
            if args.get("fixed") == Some(&json!(true)) {
                expect.ret = Ret::Ok(args.get("page").map(number).transpose()?.unwrap_or(0));
            }
        }
        other => return Err(format!("no Linux mapping for call `{other}`")),
    }
    Ok(expect)
}

fn stat_expectation(expect: &mut Expect, ok: &Json, inodes: usize) -> Result<(), String> {
    expect.ret = Ret::Ok(0);
    let st = match ok.get("some") {
        Some(st) => st,
        None if ok == "none" => {
            expect.stat = Some(StatExpect {
                fifo: Some(true),
                ..StatExpect::default()
            });
            return Ok(());
        }
        None => ok,
    };
    let inode = st
        .get("inum")
        .and_then(Json::as_str)
        .and_then(|l| l.strip_prefix("Inum"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&i| i < inodes);
    let size = st.get("size").map(number).transpose()?;
    let nlink = st.get("nlink").map(number).transpose()?;
    expect.stat = Some(StatExpect {
        inode,
        size: size.map(|s| (s * PAGE) as u64),
        nlink: nlink.map(|n| n as u64),
        fifo: Some(false),
    });
    Ok(())
}

fn number(v: &Json) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{v} is not an integer"))
}

/// A data value is the byte every byte of its page equals.
fn data_value(v: &Json) -> Result<u8, String> {
    v.as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| format!("{v} is not a data value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(
        calls: [(&str, Json); 2],
        expected: [Json; 2],
        setup: Json,
    ) -> Result<Test, TranslateError> {
        plan_test(&PosixTest {
            name: "t",
            setup: &setup,
            calls: [(calls[0].0, &calls[0].1), (calls[1].0, &calls[1].1)],
            expected: [&expected[0], &expected[1]],
        })
    }

    fn setup_one_file() -> Json {
        json!({"inodes": [{"data": [3, 4]}], "names": [{"name": "__f0", "inode": 0}],
               "pipes": [], "procs": [{"fds": [{"fd": 10, "file": {"inode": 0, "off": 4096}}], "maps": []},
                                       {"fds": [], "maps": []}]})
    }

    #[test]
    fn stat_and_read_check_what_linux_can_show() {
        let t = test(
            [("stat", json!({"name": "__f0"})), ("read", json!({"proc": 0, "fd": 10}))],
            [
                json!({"ok": {"inum": "Inum0", "size": 2, "nlink": 7, "atime": 1, "mtime": 1, "ctime": 1}}),
                json!({"ok": {"some": 4}}),
            ],
            setup_one_file(),
        )
        .expect("translates");
        let stat = t.calls[0].expect.stat.clone().expect("stat checked");
        assert_eq!(
            (stat.inode, stat.size, stat.nlink),
            (Some(0), Some(8192), Some(7))
        );
        assert_eq!(t.calls[1].expect.ret, Ret::Ok(4096));
        assert_eq!(t.calls[1].expect.data, Some(4));
        assert_eq!(t.calls[1].op, Op::Read { fd: 10 });
    }

    #[test]
    fn errors_signals_and_unpredictable_values() {
        let t = test(
            [("open", json!({"proc": 1, "name": "__f1", "creat": true, "excl": false, "trunc": false, "anyfd": false})),
             ("memread", json!({"proc": 0, "page": 2}))],
            [json!({"ok": 0}), json!({"err": 11})],
            setup_one_file(),
        )
        .expect("translates");
        assert_eq!(t.calls[0].proc, 1);
        assert_eq!(t.calls[0].expect.ret, Ret::AnyOk);
        assert_eq!(t.calls[1].expect.ret, Ret::Signal("SIGSEGV".into()));
        let t = test(
            [
                ("unlink", json!({"name": "__f3"})),
                (
                    "lseek",
                    json!({"proc": 0, "fd": 10, "off": 0, "whence": "none"}),
                ),
            ],
            [json!({"err": 2}), json!({"err": 22})],
            setup_one_file(),
        )
        .expect("translates");
        assert_eq!(t.calls[0].expect.ret, Ret::Err("ENOENT".into()));
        assert_eq!(t.calls[1].expect.ret, Ret::Err("EINVAL".into()));
    }

    #[test]
    fn untranslatable_tests_say_why() {
        let e = test(
            [("sync", json!({})), ("stat", json!({"name": "__f0"}))],
            [json!(null), json!({"err": 2})],
            setup_one_file(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("sync:"), "{e}");
        let e = test(
            [
                ("stat", json!({"name": "__f0"})),
                ("stat", json!({"name": "__f0"})),
            ],
            [json!({"err": 2}), json!({"err": 2})],
            json!({"names": [{"name": "__f0", "inode": 4}]}),
        )
        .unwrap_err();
        assert!(matches!(e, TranslateError::Setup(_)), "{e}");
    }
}
