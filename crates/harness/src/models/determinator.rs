//! The `determinator` model: a parent space and child spaces, reached through one call per
//! `Put`/`Get` option and `Ret` (see the model's documentation in `commuter-models`).
//!
//! `setup`: `{"mem": MEM, "children": {"ChildId0": CHILD, ...}}` with `MEM` =
//! `{"p0": {"b0": n}, "p1": {"b0": n}}` (one field `bN` per byte) and `CHILD` = `{"regs": n, "started": bool, "mem":
//! MEM, "perm": {"p0": n, "p1": n}, "snap": MEM}`. Every child a call names is in the setup.
//!
//! Arguments: `{"child": "ChildId0"}`, plus `"page"` (`put_copy`, `put_zero`, `put_perm`,
//! `get_copy`), `"regs"` (`put_regs`), `"perm"` (`put_perm`). Results: `{"ok": null}` or
//! `{"err": "busy"}` / `{"err": "conflict"}`; `get_regs` `{"ok": n}`; `ret` `null`.
//!
//! Implement [`DeterminatorImpl`] and run `main::<DeterminatorAdapter<MySpaces>>()`.

use super::{arg, label_number};
use crate::{Adapter, AdapterError, TestCase};
use serde_json::{Value as Json, json};

/// The calls, in the model's order.
pub const CALLS: [&str; 10] = [
    "put_regs",
    "put_copy",
    "put_zero",
    "put_perm",
    "put_snap",
    "put_start",
    "get_regs",
    "get_copy",
    "get_merge",
    "ret",
];
/// Pages of a space (the model's `PAGES`).
pub const PAGES: usize = 2;
/// Bytes of a page (the model's `PAGE_BYTES`).
pub const PAGE_BYTES: usize = 1;
/// Children are numbered by their labels (`ChildId3`: 3); more than this is not a test.
pub const MAX_CHILDREN: u64 = 64;

const CHILD: &str = "ChildId";

/// A page's bytes (the model's byte values are integers).
pub type PageBytes = [i64; PAGE_BYTES];
/// A space's memory.
pub type Memory = [PageBytes; PAGES];

/// A child in the initial state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildState {
    /// The number of its label.
    pub id: u64,
    pub regs: i64,
    pub started: bool,
    pub mem: Memory,
    pub perm: [i64; PAGES],
    pub snap: Memory,
}

/// The initial state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    pub mem: Memory,
    /// In label order.
    pub children: Vec<ChildState>,
}

/// One call with its arguments; `child` is a label number, `page` is below [`PAGES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetCall {
    PutRegs { child: u64, regs: i64 },
    PutCopy { child: u64, page: usize },
    PutZero { child: u64, page: usize },
    PutPerm { child: u64, page: usize, perm: i64 },
    PutSnap { child: u64 },
    PutStart { child: u64 },
    GetRegs { child: u64 },
    GetCopy { child: u64, page: usize },
    GetMerge { child: u64 },
    Ret { child: u64 },
}

/// Why a `Put` or `Get` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetError {
    /// The child is running.
    Busy,
    /// A byte changed in both parent and child since the snapshot.
    Conflict,
}

/// A call's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetOutput {
    /// Every `Put` and `Get` but `get_regs`.
    Done(Result<(), DetError>),
    /// `get_regs`.
    Regs(Result<i64, DetError>),
    /// `ret` returns nothing.
    Ret,
}

/// An implementation of the interface.
pub trait DeterminatorImpl: Sync + Sized {
    /// For the start line.
    const NAME: &'static str;
    /// The spaces in state `setup`.
    fn new(setup: &Setup) -> Result<Self, AdapterError>;
    /// Performs one call (`ret` only on a running child: the model's precondition).
    fn call(&self, call: &DetCall) -> DetOutput;
}

fn int(v: Option<&Json>, what: &str) -> Result<i64, String> {
    v.and_then(Json::as_i64)
        .ok_or_else(|| format!("{what}: expected an integer, found {}", show(v)))
}

fn show(v: Option<&Json>) -> String {
    v.map_or_else(|| "nothing".to_string(), Json::to_string)
}

fn memory(v: Option<&Json>, what: &str) -> Result<Memory, String> {
    let mut mem = [[0; PAGE_BYTES]; PAGES];
    for (p, page) in mem.iter_mut().enumerate() {
        let pv = v.and_then(|m| m.get(format!("p{p}")));
        for (b, byte) in page.iter_mut().enumerate() {
            *byte = int(
                pv.and_then(|x| x.get(format!("b{b}"))),
                &format!("{what}.p{p}.b{b}"),
            )?;
        }
    }
    Ok(mem)
}

/// The initial state of `test`, checked against the children its calls name.
pub fn setup(test: &TestCase) -> Result<Setup, AdapterError> {
    let bad = AdapterError::setup;
    let mem = memory(test.setup.get("mem"), "mem").map_err(bad)?;
    let entries = test
        .setup
        .get("children")
        .and_then(Json::as_object)
        .ok_or_else(|| {
            bad(format!(
                "expected \"children\": {{..}}, found {}",
                test.setup
            ))
        })?;
    let mut children = Vec::new();
    for (label, c) in entries {
        let at = |e: String| bad(format!("children.{label}: {e}"));
        let id = label_number(&json!(label), CHILD).map_err(at)?;
        if id >= MAX_CHILDREN {
            return Err(AdapterError::Unsupported(format!(
                "child {label}: at most {MAX_CHILDREN} children"
            )));
        }
        let started = c
            .get("started")
            .and_then(Json::as_bool)
            .ok_or_else(|| at(format!("started: expected a boolean, found {c}")))?;
        let mut perm = [0; PAGES];
        for (p, v) in perm.iter_mut().enumerate() {
            *v = int(c.get("perm").and_then(|x| x.get(format!("p{p}"))), "perm").map_err(at)?;
        }
        children.push(ChildState {
            id,
            regs: int(c.get("regs"), "regs").map_err(at)?,
            started,
            mem: memory(c.get("mem"), "mem").map_err(at)?,
            perm,
            snap: memory(c.get("snap"), "snap").map_err(at)?,
        });
    }
    children.sort_by_key(|c| c.id);
    for call in &test.calls {
        let named = parse_call(&call.call, &call.args)?.child();
        if !children.iter().any(|c| c.id == named) {
            return Err(bad(format!(
                "call {} names {CHILD}{named}, which \"children\" lacks",
                call.call
            )));
        }
    }
    Ok(Setup { mem, children })
}

impl DetCall {
    /// The child the call names.
    pub fn child(&self) -> u64 {
        match *self {
            DetCall::PutRegs { child, .. }
            | DetCall::PutCopy { child, .. }
            | DetCall::PutZero { child, .. }
            | DetCall::PutPerm { child, .. }
            | DetCall::PutSnap { child }
            | DetCall::PutStart { child }
            | DetCall::GetRegs { child }
            | DetCall::GetCopy { child, .. }
            | DetCall::GetMerge { child }
            | DetCall::Ret { child } => child,
        }
    }
}

pub fn parse_call(call: &str, args: &Json) -> Result<DetCall, AdapterError> {
    let child = || -> Result<u64, AdapterError> {
        let id = label_number(arg(call, args, "child")?, CHILD)
            .map_err(|e| AdapterError::args(call, e))?;
        if id >= MAX_CHILDREN {
            return Err(AdapterError::Unsupported(format!(
                "{call}: child {CHILD}{id}: at most {MAX_CHILDREN} children"
            )));
        }
        Ok(id)
    };
    let number = |field: &str| -> Result<i64, AdapterError> {
        int(Some(arg(call, args, field)?), field).map_err(|e| AdapterError::args(call, e))
    };
    let page = || -> Result<usize, AdapterError> {
        let p = number("page")?;
        usize::try_from(p)
            .ok()
            .filter(|p| *p < PAGES)
            .ok_or_else(|| AdapterError::args(call, format!("page {p} is not in 0..{PAGES}")))
    };
    Ok(match call {
        "put_regs" => DetCall::PutRegs {
            child: child()?,
            regs: number("regs")?,
        },
        "put_copy" => DetCall::PutCopy {
            child: child()?,
            page: page()?,
        },
        "put_zero" => DetCall::PutZero {
            child: child()?,
            page: page()?,
        },
        "put_perm" => DetCall::PutPerm {
            child: child()?,
            page: page()?,
            perm: number("perm")?,
        },
        "put_snap" => DetCall::PutSnap { child: child()? },
        "put_start" => DetCall::PutStart { child: child()? },
        "get_regs" => DetCall::GetRegs { child: child()? },
        "get_copy" => DetCall::GetCopy {
            child: child()?,
            page: page()?,
        },
        "get_merge" => DetCall::GetMerge { child: child()? },
        "ret" => DetCall::Ret { child: child()? },
        _ => return Err(AdapterError::unknown_call(call, &CALLS)),
    })
}

fn error(e: DetError) -> Json {
    match e {
        DetError::Busy => json!({"err": "busy"}),
        DetError::Conflict => json!({"err": "conflict"}),
    }
}

pub fn result(out: &DetOutput) -> Json {
    match *out {
        DetOutput::Done(Ok(())) => json!({"ok": null}),
        DetOutput::Regs(Ok(r)) => json!({"ok": r}),
        DetOutput::Done(Err(e)) | DetOutput::Regs(Err(e)) => error(e),
        DetOutput::Ret => Json::Null,
    }
}

/// The adapter for any [`DeterminatorImpl`].
pub struct DeterminatorAdapter<D>(pub D);

impl<D: DeterminatorImpl> Adapter for DeterminatorAdapter<D> {
    const MODEL: &'static str = "determinator";
    const NAME: &'static str = D::NAME;
    type Call = DetCall;
    type Output = DetOutput;

    fn setup(test: &TestCase) -> Result<Self, AdapterError> {
        D::new(&setup(test)?).map(DeterminatorAdapter)
    }
    fn parse_call(call: &str, args: &Json) -> Result<DetCall, AdapterError> {
        parse_call(call, args)
    }
    #[inline]
    fn call(&self, call: &DetCall) -> DetOutput {
        self.0.call(call)
    }
    fn result(out: &DetOutput) -> Json {
        result(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_case as test;

    fn mem(base: i64) -> Json {
        json!({"p0": {"b0": base}, "p1": {"b0": base + 1}})
    }

    #[test]
    fn setup_calls_and_results() {
        let child = json!({"regs": 7, "started": false, "mem": mem(10), "perm": {"p0": 3, "p1": 0}, "snap": mem(20)});
        let setup_json = json!({"mem": mem(0), "children": {"ChildId1": child}});
        let t = test(
            setup_json.clone(),
            &[("get_copy", json!({"child": "ChildId1", "page": 1}))],
        );
        let s = setup(&t).expect("a good setup");
        assert_eq!(s.mem, [[0], [1]]);
        assert_eq!(s.children.len(), 1);
        assert_eq!(s.children[0].id, 1);
        assert_eq!(s.children[0].mem, [[10], [11]]);
        assert_eq!(s.children[0].snap, [[20], [21]]);
        assert_eq!(s.children[0].perm, [3, 0]);
        // A call naming a child the setup lacks is a bad test, said so.
        let t = test(setup_json, &[("ret", json!({"child": "ChildId0"}))]);
        let err = setup(&t).expect_err("child 0 is missing").to_string();
        assert!(err.contains("ChildId0"), "{err}");
        assert!(setup(&test(json!({"mem": mem(0)}), &[])).is_err());

        assert_eq!(
            parse_call(
                "put_perm",
                &json!({"child": "ChildId2", "page": 0, "perm": 3})
            ),
            Ok(DetCall::PutPerm {
                child: 2,
                page: 0,
                perm: 3
            })
        );
        assert!(parse_call("put_copy", &json!({"child": "ChildId0", "page": 2})).is_err());
        assert!(parse_call("put_copy", &json!({"child": "Key0", "page": 0})).is_err());
        assert!(parse_call("fork", &json!({})).is_err());
        assert_eq!(result(&DetOutput::Done(Ok(()))), json!({"ok": null}));
        assert_eq!(result(&DetOutput::Regs(Ok(4))), json!({"ok": 4}));
        assert_eq!(
            result(&DetOutput::Done(Err(DetError::Conflict))),
            json!({"err": "conflict"})
        );
        assert_eq!(result(&DetOutput::Ret), Json::Null);
    }
}
