//! Test generation cut into parts (`commuter testgen --shard I/N` on several machines), and the
//! parts joined back into the `tests.json` one generation writes.
//!
//! **The rule.** Call sets are dealt to the `N` parts longest first (by
//! [`commuter_analyzer::schedule::set_cost`], ties in selection order), each to the part with
//! the least cost so far (ties to the lowest part): the parts' costs differ by at most one call
//! set's. Each part keeps its sets in selection order. The rule reads only the model and the
//! selection, so every machine cuts a generation the same way.
//!
//! **Joining.** Each part records its index, the count, the whole selection and the options a
//! suite does not otherwise record ([`SuitePart`]); [`merge_parts`] refuses parts of another
//! generation, the same part twice, missing parts and call sets outside the selection, then
//! writes the call sets in selection order: the same bytes as one generation (test generation
//! of a call set depends on nothing but the call set).

use std::collections::BTreeMap;

use commuter_analyzer::CallSet;
use commuter_analyzer::schedule::set_cost;
use commuter_engine::DynModel;
use thiserror::Error;

use crate::{CallSetTests, SuitePart, TestSuite};

/// The call sets of part `index` (1-based) of `count`, in selection order.
pub fn part_of(model: &dyn DynModel, sets: &[CallSet], index: u32, count: u32) -> Vec<CallSet> {
    let count = count.max(1) as usize;
    let costs: Vec<u64> = sets.iter().map(|s| set_cost(model, s)).collect();
    let mut order: Vec<usize> = (0..sets.len()).collect();
    // Stable: equal costs keep selection order.
    order.sort_by_key(|&i| std::cmp::Reverse(costs[i]));
    let mut load = vec![0u64; count];
    let mut owner = vec![0usize; sets.len()];
    for i in order {
        let lightest = (0..count).min_by_key(|&p| (load[p], p)).unwrap_or(0);
        load[lightest] += costs[i];
        owner[i] = lightest;
    }
    let wanted = (index as usize).saturating_sub(1);
    sets.iter()
        .zip(owner)
        .filter(|&(_, p)| p == wanted)
        .map(|(s, _)| s.clone())
        .collect()
}

/// A call set's name as its tests are filed under (`open/stat`).
pub fn set_name(model: &dyn DynModel, set: &CallSet) -> String {
    let info = model.call_info();
    let names: Vec<&str> = set.iter().map(|&c| info[c].name).collect();
    names.join("/")
}

/// Why parts cannot be joined; each message names the fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no parts given: pass every part's tests.json")]
    NoParts,
    #[error(
        "`{part}` is a whole suite, not a part: merge only the files `commuter testgen --shard I/N` wrote"
    )]
    NotAPart { part: String },
    #[error(
        "`{part}` is not of the same generation as `{first}` ({what} differs): generate every part with the same model, selection and options"
    )]
    OtherGeneration {
        part: String,
        first: String,
        what: &'static str,
    },
    #[error("part {index} of {count} is given twice (`{first}` and `{second}`)")]
    Duplicate {
        index: u32,
        count: u32,
        first: String,
        second: String,
    },
    #[error(
        "part {missing} of {count} is missing: generate it with `commuter testgen --shard {missing}/{count}` and pass it too"
    )]
    Missing { missing: String, count: u32 },
    #[error("`{part}` has call set {set}, which {why}")]
    BadCallSet {
        part: String,
        set: String,
        why: &'static str,
    },
}

/// Joins every part of one generation (each named by its file, for messages) into the suite a
/// single generation writes.
pub fn merge_parts(parts: Vec<(String, TestSuite)>) -> Result<TestSuite, MergeError> {
    let mut parts = parts.into_iter();
    let (first_name, first) = parts.next().ok_or(MergeError::NoParts)?;
    let header = first.part.clone().ok_or_else(|| MergeError::NotAPart {
        part: first_name.clone(),
    })?;
    let mut seen: BTreeMap<u32, String> = BTreeMap::new();
    let mut by_name: BTreeMap<String, (String, CallSetTests)> = BTreeMap::new();
    let mut whole = TestSuite {
        part: None,
        call_sets: Vec::new(),
        ..first.clone()
    };
    for (name, suite) in std::iter::once((first_name.clone(), first)).chain(parts) {
        let part = suite
            .part
            .clone()
            .ok_or_else(|| MergeError::NotAPart { part: name.clone() })?;
        if let Some(what) = difference(&whole, &header, &suite, &part) {
            return Err(MergeError::OtherGeneration {
                part: name,
                first: first_name,
                what,
            });
        }
        if let Some(earlier) = seen.insert(part.index, name.clone()) {
            return Err(MergeError::Duplicate {
                index: part.index,
                count: part.count,
                first: earlier,
                second: name,
            });
        }
        for set in suite.call_sets {
            let key = set.name();
            if !header.selection.contains(&key) {
                return Err(MergeError::BadCallSet {
                    part: name,
                    set: key,
                    why: "the generation did not select",
                });
            }
            if by_name.contains_key(&key) {
                return Err(MergeError::BadCallSet {
                    part: name,
                    set: key,
                    why: "another part has too",
                });
            }
            by_name.insert(key, (name.clone(), set));
        }
    }
    let missing: Vec<String> = (1..=header.count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing: missing.join(", "),
            count: header.count,
        });
    }
    for key in &header.selection {
        // Every part is present, so a set no part has was cut into none: a part written by
        // a different rule (another version of commuter).
        let (_, set) = by_name.remove(key).ok_or_else(|| MergeError::BadCallSet {
            part: first_name.clone(),
            set: key.clone(),
            why: "is selected but in no part (parts written by another version of commuter?)",
        })?;
        whole.call_sets.push(set);
    }
    Ok(whole)
}

/// The first field in which `suite` (with its `part`) is not of the generation of `whole`'s
/// header and `header`.
fn difference(
    whole: &TestSuite,
    header: &SuitePart,
    suite: &TestSuite,
    part: &SuitePart,
) -> Option<&'static str> {
    let fields = [
        (suite.model != whole.model, "the model"),
        (suite.ncomb != whole.ncomb, "the number of calls per set"),
        (suite.functions != whole.functions, "the selection (-f)"),
        (part.selection != header.selection, "the selection (-f)"),
        (part.count != header.count, "the number of parts"),
        (part.idempotence != header.idempotence, "--no-idempotence"),
        (
            suite.max_tests_per_path != whole.max_tests_per_path,
            "--max-tests-per-path",
        ),
        (
            suite.max_testcases != whole.max_testcases,
            "--max-testcases",
        ),
        (suite.version != whole.version, "the suite version"),
    ];
    fields.iter().find(|(differs, _)| *differs).map(|(_, w)| *w)
}
