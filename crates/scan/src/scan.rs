//! From what a run produced per test (the tracer's record, the guest's result checks, errors)
//! to the [`ConflictsFile`].

use crate::schema::Region;
use crate::schema::{
    Access, CONFLICTS_SCHEMA, CONFLICTS_VERSION, CodeSite, ConflictsFile, ErrorKind, Location,
    Mismatch, Status, Target, TestConflicts, TestError, What, natural_cmp, slot_name,
};
use crate::symbols::{DIRECT_MAP_BASE, Symbols};
use crate::user::UserBinary;
use commuter_trace_format::record::{Mode, PercpuPlace, Side, TestRecord};
use std::collections::HashMap;

/// Everything a run knows about one test; the input of [`scan`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestRun {
    /// The test's id in `tests.json`.
    pub id: String,
    /// Call names of slot a, slot b (and slot c).
    pub calls: Vec<String>,
    /// The tracer's record; `None` when it wrote none for this test.
    pub record: Option<TestRecord>,
    /// The guest's check of each call's result, slot a first; `None` when it reported none.
    pub results: Vec<Option<CallCheck>>,
    /// Errors from the guest or the VM (crash, timeout) that concern this test.
    pub errors: Vec<TestError>,
}

/// The guest's verdict on one call's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCheck {
    /// The result matched the model's expectation.
    pub ok: bool,
    /// How it did not.
    pub mismatches: Vec<String>,
}

/// Builds `conflicts.json` from the runs of a target, symbolising with `symbols` when given.
/// User-mode sites and user memory stay unnamed (see [`scan_with`]).
pub fn scan(target: Target, runs: &[TestRun], symbols: Option<&Symbols>) -> ConflictsFile {
    scan_with(target, runs, symbols, None)
}

/// Like [`scan`], also symbolising user-mode code sites and user memory against `user`, the
/// static binary that ran in the guest (for Linux, the guest runner that was `/init`).
pub fn scan_with(
    target: Target,
    runs: &[TestRun],
    symbols: Option<&Symbols>,
    user: Option<&UserBinary>,
) -> ConflictsFile {
    let target = Target {
        symbols: symbols.map(|s| s.name().to_string()),
        ..target
    };
    let mut namer = Namer::new(symbols, user);
    let mut tests: Vec<TestConflicts> = runs.iter().map(|r| scan_test(r, &mut namer)).collect();
    tests.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    ConflictsFile {
        schema: CONFLICTS_SCHEMA.into(),
        version: CONFLICTS_VERSION,
        target,
        shard: None,
        tests,
    }
}

fn scan_test(run: &TestRun, namer: &mut Namer<'_>) -> TestConflicts {
    let errors = errors(run);
    let (shared, false_sharing) = match &run.record {
        Some(rec) => locations(rec, namer),
        None => (Vec::new(), Vec::new()),
    };
    let status = if !shared.is_empty() {
        // Conflicts that were seen are real even when the trace is incomplete.
        Status::Conflicted
    } else if errors.is_empty() {
        Status::ConflictFree
    } else {
        Status::Unknown
    };
    TestConflicts {
        id: run.id.clone(),
        calls: run.calls.clone(),
        status,
        shared,
        false_sharing,
        mismatches: mismatches(run),
        errors,
    }
}

/// The run's own errors, plus what the record says is missing.
fn errors(run: &TestRun) -> Vec<TestError> {
    let mut out = run.errors.clone();
    let err = |kind, message: String| TestError { kind, message };
    match &run.record {
        None => out.push(err(
            ErrorKind::Tracer,
            "the tracer wrote no record for this test".into(),
        )),
        Some(rec) => {
            if rec.overflow {
                let dropped: u64 = rec.calls.iter().map(|c| c.dropped).sum();
                let msg = format!("trace buffer overflow: {dropped} accesses dropped");
                out.push(err(ErrorKind::Overflow, msg));
            }
            out.extend(rec.errors.iter().map(|e| err(ErrorKind::Tracer, e.clone())));
        }
    }
    for (slot, r) in run.results.iter().enumerate() {
        let slot = slot_name(slot);
        if r.is_none() && run.errors.is_empty() {
            let msg = format!("the guest reported no result for call {slot}");
            out.push(err(ErrorKind::Guest, msg));
        }
    }
    out
}

fn mismatches(run: &TestRun) -> Vec<Mismatch> {
    run.results
        .iter()
        .enumerate()
        .zip(&run.calls)
        .filter_map(|((slot, r), call)| {
            let r = r.as_ref().filter(|r| !r.ok)?;
            Some(Mismatch {
                slot: slot_name(slot),
                call: call.clone(),
                details: r.mismatches.clone(),
            })
        })
        .collect()
}

fn locations(rec: &TestRecord, namer: &mut Namer<'_>) -> (Vec<Location>, Vec<Location>) {
    let mut shared: Vec<Location> = rec
        .shared
        .iter()
        .map(|s| {
            let seen = Seen {
                cache: s.cache.as_deref(),
                vaddr: s.vaddr,
                percpu: s.percpu,
            };
            namer.location(s.addr, s.size, s.slots, &s.a, &s.b, seen)
        })
        .collect();
    let line = u32::try_from(commuter_trace_format::record::CACHE_LINE).unwrap_or(64);
    let mut false_sharing: Vec<Location> = rec
        .false_sharing
        .iter()
        .map(|f| {
            let seen = Seen {
                cache: f.cache.as_deref(),
                vaddr: f.vaddr,
                percpu: f.percpu,
            };
            namer.location(f.line, line, f.slots, &f.a, &f.b, seen)
        })
        .collect();
    // A triple's pairs that share one location stay together, in slot order.
    shared.sort_by_key(|l| (l.addr, l.size, l.slots));
    false_sharing.sort_by_key(|l| (l.addr, l.slots));
    (shared, false_sharing)
}

/// What the tracer found out about a location while the guest ran.
struct Seen<'a> {
    cache: Option<&'a str>,
    vaddr: Option<u64>,
    percpu: Option<PercpuPlace>,
}

/// Symbolises with a cache: tests of one run share most instructions and locations.
struct Namer<'a> {
    symbols: Option<&'a Symbols>,
    user: Option<&'a UserBinary>,
    code: HashMap<u64, CodeSite>,
}

impl<'a> Namer<'a> {
    fn new(symbols: Option<&'a Symbols>, user: Option<&'a UserBinary>) -> Self {
        Namer {
            symbols,
            user,
            code: HashMap::new(),
        }
    }

    fn location(
        &mut self,
        addr: u64,
        size: u32,
        slots: [u64; 2],
        a: &Side,
        b: &Side,
        seen: Seen<'_>,
    ) -> Location {
        // Call A reached it through a user address: the user binary names it (the kernel
        // image cannot: user pages are never in it).
        let user = seen
            .vaddr
            .filter(|v| Region::of(*v) == Region::User)
            .zip(self.user);
        let what = match (seen.cache, seen.percpu, user, self.symbols) {
            // The tracer found a slab page there: heap memory, whatever else is known. Slab
            // pages come from the page allocator, so they are always in the direct map.
            (Some(cache), ..) => What::Slab {
                cache: cache.to_owned(),
                vaddr: DIRECT_MAP_BASE.wrapping_add(addr),
            },
            (None, Some(place), _, Some(s)) => s.percpu(place),
            (None, Some(place), _, None) => What::Percpu {
                cpu: place.cpu,
                symbol: None,
                offset: place.offset,
            },
            (None, None, Some((vaddr, u)), _) => u.data(vaddr),
            (None, None, None, Some(s)) => s.data(addr, seen.vaddr),
            (None, None, None, None) => What::Unknown,
        };
        // The tracer's slots are below MAX_CALLS; anything larger is kept recognisably wrong.
        let slot = |s: u64| u8::try_from(s).unwrap_or(u8::MAX);
        Location {
            addr,
            size,
            slots: [slot(slots[0]), slot(slots[1])],
            what,
            a: self.access(a),
            b: self.access(b),
        }
    }

    fn access(&mut self, side: &Side) -> Access {
        let mut pcs = side.pcs.clone();
        if pcs.is_empty() {
            pcs.push(side.pc);
        }
        Access {
            rw: side.rw,
            mode: side.mode,
            sites: pcs.into_iter().map(|pc| self.site(pc)).collect(),
            stack: side.stack.iter().map(|&ret| self.caller(ret)).collect(),
        }
    }

    /// A caller on a call stack, by its return address: the call instruction's source (at the
    /// address before, so a call that ends a function names that function, not the next one),
    /// with the return address as its `pc`.
    fn caller(&mut self, ret: u64) -> CodeSite {
        let mut site = self.site(ret.wrapping_sub(1));
        site.pc = ret;
        if site.symbol.is_some() {
            site.offset += 1;
        }
        site
    }

    /// A kernel PC is named by the kernel image, a user PC by the user binary.
    fn site(&mut self, pc: u64) -> CodeSite {
        let (symbols, user) = (self.symbols, self.user);
        self.code
            .entry(pc)
            .or_insert_with(|| match (Mode::of_pc(pc), symbols, user) {
                (Mode::User, _, Some(u)) => u.code(pc),
                (Mode::Kernel, Some(s), _) => s.code(pc),
                (mode, _, _) => CodeSite {
                    pc,
                    mode,
                    symbol: None,
                    offset: 0,
                    frames: Vec::new(),
                },
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_trace_format::record::{
        CallStats, FalseSharing, RECORD_VERSION, Rw, SharedLocation,
    };

    fn side(pc: u64) -> Side {
        Side {
            pc,
            rw: Rw::W,
            mode: Mode::Kernel,
            pcs: vec![pc],
            stack: vec![],
        }
    }

    fn shared(addr: u64, slots: [u64; 2]) -> SharedLocation {
        SharedLocation {
            addr,
            size: 8,
            slots,
            a: side(0x10),
            b: side(0x20),
            cache: None,
            vaddr: None,
            percpu: None,
        }
    }

    /// A test of three calls: each pair that shared a location is kept with its two slots,
    /// the pairs of one location together in slot order, and a mismatch names slot c.
    #[test]
    fn a_triple_keeps_the_pair_of_calls_of_each_location() {
        let calls = |n: u64| {
            (0..n)
                .map(|slot| CallStats {
                    slot,
                    vcpu: slot as u32 + 1,
                    ..CallStats::default()
                })
                .collect()
        };
        let record = TestRecord {
            v: RECORD_VERSION,
            test: 0,
            calls: calls(3),
            overflow: false,
            shared: vec![
                shared(0x2000, [0, 2]),
                shared(0x1000, [1, 2]),
                shared(0x1000, [0, 1]),
            ],
            false_sharing: vec![FalseSharing {
                line: 0x3000,
                slots: [0, 2],
                a: side(0x10),
                b: side(0x20),
                cache: None,
                vaddr: None,
                percpu: None,
            }],
            errors: vec![],
        };
        let ok = Some(CallCheck {
            ok: true,
            mismatches: vec![],
        });
        let run = TestRun {
            id: "open_open_open_0_0".into(),
            calls: vec!["open".into(); 3],
            record: Some(record.clone()),
            results: vec![
                ok.clone(),
                ok,
                Some(CallCheck {
                    ok: false,
                    mismatches: vec!["ret 3, expected ENOENT".into()],
                }),
            ],
            errors: vec![],
        };
        let file = scan(Target::default(), &[run], None);
        let t = &file.tests[0];
        assert_eq!(t.status, Status::Conflicted);
        let got: Vec<(u64, String)> = t.shared.iter().map(|l| (l.addr, l.pair_name())).collect();
        assert_eq!(
            got,
            vec![
                (0x1000, "ab".to_string()),
                (0x1000, "bc".to_string()),
                (0x2000, "ac".to_string())
            ]
        );
        assert_eq!(t.false_sharing[0].slots, [0, 2]);
        assert_eq!(t.mismatches.len(), 1);
        assert_eq!((t.mismatches[0].slot.as_str(), t.errors.len()), ("c", 0));
        // A missing result names its slot too.
        let mut missing = TestRun {
            calls: vec!["stat".into(); 3],
            results: vec![None; 3],
            ..TestRun::default()
        };
        missing.record = Some(TestRecord {
            shared: vec![],
            false_sharing: vec![],
            ..record
        });
        let t = scan(Target::default(), &[missing], None).tests.remove(0);
        let messages: Vec<&str> = t.errors.iter().map(|e| e.message.as_str()).collect();
        assert!(
            messages.contains(&"the guest reported no result for call c"),
            "{messages:?}"
        );
    }
}
