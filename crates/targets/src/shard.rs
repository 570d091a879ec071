//! Shards: a suite cut into `N` parts that run on different machines (a batch system's job
//! array), and the parts' `conflicts.json` joined back into the one a single run writes.
//!
//! **The rule.** The suite's tests, in the suite's order (call set by call set), are cut into
//! `N` contiguous runs of about equal *expected cost*: a test goes to the shard in which the
//! middle of its cost falls on the suite's cumulative cost scale, so every shard's cost is
//! within one test's cost of `total / N`. A test's cost ([`test_cost`]) is a fixed
//! [`TEST_BASE_COST`] (hand-off to two CPUs, warm-up and marked runs, the record's scan) plus
//! one unit per object its setup creates (every element of an array in the test's `setup`:
//! files, pages, names, pipes, descriptors, mappings, a map's entries), because the setup runs
//! on CPU 0 under the tracer's emulation before each test. The rule reads `tests.json` only
//! (not the target), so every machine cuts a suite the same way, and the same test is always
//! in the same shard of `N`.
//!
//! **Joining.** Each part names its shard and the suite's digest ([`Shard`]); [`merge`] refuses
//! parts of another suite, other shard counts, the same shard twice and missing shards, then
//! sorts the tests as a single run does. Per-test results are the kernel's, so a merge equals a
//! single run wherever the kernel repeats itself (see the README's "Sharding and clusters").

use std::fmt;
use std::str::FromStr;

use commuter_scan::schema::natural_cmp;
use commuter_scan::{CONFLICTS_SCHEMA, CONFLICTS_VERSION, ConflictsFile, Shard};
use commuter_tests_format::{TestCase, TestSuite};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use thiserror::Error;

/// The cost of a test whose setup creates nothing, in the units of one created object.
///
/// From the batch times of two full POSIX runs on this project's 2-core machine (33 boots of
/// 400 tests each): a boot costs 8 to 13 s, a test about 0.1 s, and the setup's size explains
/// a tenth to two fifths of the variation between batches; the suite's setups create 6 objects
/// on average (2 to 16). A rough estimate: recalibrate it when the run stage changes.
pub const TEST_BASE_COST: u64 = 10;

/// `I/N`: the `I`-th of `N` parts (1 ≤ I ≤ N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// From 1 to `count`.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

/// A malformed `--shard`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("--shard `{given}`: {why}; write I/N with 1 <= I <= N, e.g. --shard 2/4")]
pub struct ShardSpecError {
    given: String,
    why: &'static str,
}

impl FromStr for ShardSpec {
    type Err = ShardSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ShardSpecError {
            given: s.to_string(),
            why,
        };
        let (i, n) = s.split_once('/').ok_or_else(|| err("no `/`"))?;
        let index: u32 = i.trim().parse().map_err(|_| err("I is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| err("N is not a number"))?;
        if count == 0 {
            return Err(err("N is 0"));
        }
        if index == 0 || index > count {
            return Err(err("I is out of range"));
        }
        Ok(ShardSpec { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The expected cost of running one test (see the module's rule).
pub fn test_cost(test: &TestCase) -> u64 {
    fn objects(v: &Json) -> u64 {
        match v {
            Json::Array(items) => items.len() as u64 + items.iter().map(objects).sum::<u64>(),
            Json::Object(fields) => fields.values().map(objects).sum(),
            _ => 0,
        }
    }
    TEST_BASE_COST + objects(&test.setup)
}

/// The shard (1 to `count`) of every test of `suite`, in the suite's order.
pub fn partition(suite: &TestSuite, count: u32) -> Vec<u32> {
    let costs: Vec<u64> = tests(suite).map(test_cost).collect();
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    let count = count.max(1);
    let mut before: u128 = 0;
    costs
        .iter()
        .map(|&c| {
            // The middle of the test's cost, (before + c/2), scaled to [0, count): integers
            // only, so every machine cuts alike.
            let middle2 = 2 * before + u128::from(c);
            before += u128::from(c);
            let shard = (middle2 * u128::from(count)) / (2 * total).max(1);
            // `shard < count` as `middle2 < 2 * total`; the min guards the empty suite.
            (shard as u32).min(count - 1) + 1
        })
        .collect()
}

/// Whether each test of `suite` (in its order) belongs to `spec`.
pub fn select(suite: &TestSuite, spec: ShardSpec) -> Vec<bool> {
    partition(suite, spec.count)
        .into_iter()
        .map(|s| s == spec.index)
        .collect()
}

/// The suite's tests in its order.
pub fn tests(suite: &TestSuite) -> impl Iterator<Item = &TestCase> {
    suite.call_sets.iter().flat_map(|cs| cs.tests.iter())
}

/// The digest that names a suite: of its `tests.json` bytes.
pub fn suite_digest(bytes: &[u8]) -> String {
    // FNV-1a: enough to tell two suites apart (nobody forges a suite), no dependency.
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

/// Why parts cannot be joined; each message names the fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no parts given: pass every shard's conflicts.json")]
    NoParts,
    #[error(
        "`{part}` is not a shard's part (it has no \"shard\" field): merge only the files `commuter run --shard I/N` wrote"
    )]
    NotAShard { part: String },
    #[error(
        "`{part}` is a part of another suite (digest {found}) than `{first}` ({expected}): run every shard on the same tests.json"
    )]
    OtherSuite {
        part: String,
        first: String,
        found: String,
        expected: String,
    },
    #[error(
        "the parts are of another suite (digest {found}) than the tests.json given ({expected}): pass the suite the shards ran"
    )]
    NotThisSuite { found: String, expected: String },
    #[error(
        "`{part}` is shard {index}/{count} but `{first}` is of {expected} shards: run every shard with the same N"
    )]
    OtherCount {
        part: String,
        first: String,
        index: u32,
        count: u32,
        expected: u32,
    },
    #[error("`{first}` and `{second}` are both shard {index}/{count}: give each shard once")]
    Duplicate {
        first: String,
        second: String,
        index: u32,
        count: u32,
    },
    #[error(
        "shard{} {} of {count} missing: run `commuter run --shard I/{count}` for {} and pass {}",
        if missing.len() > 1 { "s" } else { "" },
        list(missing),
        if missing.len() > 1 { "each" } else { "it" },
        if missing.len() > 1 { "their conflicts.json files" } else { "its conflicts.json" }
    )]
    Missing { missing: Vec<u32>, count: u32 },
    #[error(
        "`{part}` ran on {found} but `{first}` on {expected}: run every shard on the same target (kernel, symbols)"
    )]
    OtherTarget {
        part: String,
        first: String,
        found: String,
        expected: String,
    },
    #[error(
        "test `{id}` is in two parts (`{first}`, `{second}`): the parts were cut by different commuter versions; rerun them with one"
    )]
    TestTwice {
        id: String,
        first: String,
        second: String,
    },
    #[error(
        "the parts hold {found} tests, the suite has {expected}: a part is incomplete or was cut by another commuter version; rerun the shards with one"
    )]
    Count { found: usize, expected: usize },
}

fn list(xs: &[u32]) -> String {
    xs.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn describe(t: &commuter_scan::schema::Target) -> String {
    format!(
        "{} {} (symbols {})",
        t.name,
        t.version.as_deref().unwrap_or("of unknown version"),
        t.symbols.as_deref().unwrap_or("none")
    )
}

/// Joins the parts (each with the name it is reported by, e.g. its path) of one sharded run
/// into the `conflicts.json` a single run writes. `suite_digest`, when given, is the digest of
/// the `tests.json` the parts must come from.
pub fn merge(
    parts: Vec<(String, ConflictsFile)>,
    suite_digest: Option<&str>,
) -> Result<ConflictsFile, MergeError> {
    let mut shards: Vec<(String, Shard)> = Vec::with_capacity(parts.len());
    for (name, part) in &parts {
        let shard = part
            .shard
            .clone()
            .ok_or_else(|| MergeError::NotAShard { part: name.clone() })?;
        shards.push((name.clone(), shard));
    }
    let ((first, head), (_, first_file)) = match (shards.first(), parts.first()) {
        (Some(s), Some(p)) => (s, p),
        _ => return Err(MergeError::NoParts),
    };
    if let Some(expected) = suite_digest.filter(|&d| d != head.suite_digest) {
        return Err(MergeError::NotThisSuite {
            found: head.suite_digest.clone(),
            expected: expected.to_string(),
        });
    }
    let mut seen: Vec<Option<&str>> = vec![None; head.count as usize];
    for ((name, shard), (_, part)) in shards.iter().zip(&parts) {
        if shard.suite_digest != head.suite_digest || shard.suite_tests != head.suite_tests {
            return Err(MergeError::OtherSuite {
                part: name.clone(),
                first: first.clone(),
                found: shard.suite_digest.clone(),
                expected: head.suite_digest.clone(),
            });
        }
        if shard.count != head.count {
            return Err(MergeError::OtherCount {
                part: name.clone(),
                first: first.clone(),
                index: shard.index,
                count: shard.count,
                expected: head.count,
            });
        }
        if part.target != first_file.target {
            return Err(MergeError::OtherTarget {
                part: name.clone(),
                first: first.clone(),
                found: describe(&part.target),
                expected: describe(&first_file.target),
            });
        }
        // A part written by `run --shard` has 1 <= index <= count; a hand-edited one that
        // does not is missing its own shard, reported as such below.
        let Some(slot) = (shard.index as usize)
            .checked_sub(1)
            .and_then(|i| seen.get_mut(i))
        else {
            continue;
        };
        if let Some(other) = slot {
            return Err(MergeError::Duplicate {
                first: other.to_string(),
                second: name.clone(),
                index: shard.index,
                count: shard.count,
            });
        }
        *slot = Some(name);
    }
    let missing: Vec<u32> = (1..=head.count)
        .zip(&seen)
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing {
            missing,
            count: head.count,
        });
    }
    let expected_tests = head.suite_tests;
    let target = first_file.target.clone();
    let mut owner = std::collections::HashMap::new();
    let mut tests = Vec::with_capacity(expected_tests);
    for (name, part) in parts {
        for t in part.tests {
            if let Some(first) = owner.insert(t.id.clone(), name.clone()) {
                return Err(MergeError::TestTwice {
                    id: t.id,
                    first,
                    second: name,
                });
            }
            tests.push(t);
        }
    }
    if tests.len() != expected_tests {
        return Err(MergeError::Count {
            found: tests.len(),
            expected: expected_tests,
        });
    }
    tests.sort_by(|a, b| natural_cmp(&a.id, &b.id));
    Ok(ConflictsFile {
        schema: CONFLICTS_SCHEMA.into(),
        version: CONFLICTS_VERSION,
        target,
        shard: None,
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use commuter_scan::schema::{Status, Target as TargetInfo, TestConflicts};
    use commuter_tests_format::{CallSetTests, TestCall, TestSuite};
    use serde_json::json;

    /// A suite of call sets `(name, [setup objects of each test])`.
    fn suite(sets: &[(&str, &[usize])]) -> TestSuite {
        TestSuite {
            schema: commuter_tests_format::TESTS_SCHEMA.into(),
            version: commuter_tests_format::TESTS_VERSION,
            model: "posix".into(),
            ncomb: 2,
            functions: None,
            max_tests_per_path: 500,
            max_testcases: None,
            part: None,
            call_sets: sets
                .iter()
                .map(|(name, objects)| CallSetTests {
                    calls: vec![name.to_string(), name.to_string()],
                    paths: 1,
                    commutative_paths: 1,
                    capped_paths: vec![],
                    tests: objects
                        .iter()
                        .enumerate()
                        .map(|(i, &n)| TestCase {
                            id: format!("{name}_{name}_0_{i}"),
                            path: format!("{name}_{name}_0"),
                            class: vec![],
                            idempotent: vec![],
                            setup: json!({ "inodes": vec![json!({}); n] }),
                            calls: ["a", "b"]
                                .iter()
                                .map(|slot| TestCall {
                                    slot: slot.to_string(),
                                    call: name.to_string(),
                                    args: json!({}),
                                })
                                .collect(),
                            expected: vec![],
                        })
                        .collect(),
                    errors: vec![],
                })
                .collect(),
        }
    }

    fn uneven() -> TestSuite {
        let big: Vec<usize> = (0..40).map(|i| (i * 7) % 17).collect();
        let small = vec![0; 25];
        let mixed: Vec<usize> = (0..13).map(|i| if i % 3 == 0 { 60 } else { 1 }).collect();
        suite(&[("stat", &big), ("open", &small), ("mmap", &mixed)])
    }

    #[test]
    fn spec_parses_and_refuses_with_the_fix() {
        assert_eq!(
            "2/4".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 4 })
        );
        for bad in ["0/4", "5/4", "1/0", "2", "a/4", "2/b", ""] {
            let e = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(e.contains("e.g. --shard 2/4"), "{bad}: {e}");
        }
    }

    #[test]
    fn cost_counts_setup_objects() {
        let s = suite(&[("stat", &[0, 3])]);
        let costs: Vec<u64> = tests(&s).map(test_cost).collect();
        assert_eq!(costs, vec![TEST_BASE_COST, TEST_BASE_COST + 3]);
    }

    #[test]
    fn partition_is_complete_disjoint_contiguous_and_deterministic() {
        let s = uneven();
        for n in 1..=12 {
            let p = partition(&s, n);
            assert_eq!(p.len(), s.total_tests());
            assert_eq!(p, partition(&s, n), "same suite, same cut");
            // Contiguous and in order: shards never go back.
            assert!(p.windows(2).all(|w| w[0] <= w[1]), "{n}: {p:?}");
            assert!(p.iter().all(|&i| (1..=n).contains(&i)));
            // Every test is selected by exactly one shard.
            let mut owners = vec![0; p.len()];
            for i in 1..=n {
                for (o, mine) in owners
                    .iter_mut()
                    .zip(select(&s, ShardSpec { index: i, count: n }))
                {
                    *o += u32::from(mine);
                }
            }
            assert!(owners.iter().all(|&o| o == 1), "{n}: {owners:?}");
        }
    }

    #[test]
    fn partition_balances_cost_not_count() {
        let s = uneven();
        let costs: Vec<u64> = tests(&s).map(test_cost).collect();
        let total: u64 = costs.iter().sum();
        let largest = *costs.iter().max().unwrap();
        for n in 1..=8u32 {
            let p = partition(&s, n);
            let mut per = vec![0u64; n as usize];
            for (&shard, &c) in p.iter().zip(&costs) {
                per[shard as usize - 1] += c;
            }
            let ideal = total as f64 / f64::from(n);
            for (i, &c) in per.iter().enumerate() {
                assert!(
                    (c as f64 - ideal).abs() <= largest as f64,
                    "{n} shards: shard {} costs {c}, ideal {ideal:.1}, largest test {largest}",
                    i + 1
                );
            }
        }
        // Eight cheap tests (cost 10) and two of setups of 40 objects (cost 50): by cost, the
        // two expensive ones make a shard of their own.
        let s = suite(&[("stat", &[0; 8]), ("mmap", &[40, 40])]);
        assert_eq!(partition(&s, 2), [1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
    }

    #[test]
    fn more_shards_than_tests_leaves_some_empty() {
        let s = suite(&[("stat", &[1, 1])]);
        let p = partition(&s, 5);
        assert_eq!(p.len(), 2);
        assert_ne!(p[0], p[1]);
        assert!(partition(&suite(&[]), 3).is_empty());
    }

    fn part(index: u32, count: u32, digest: &str, ids: &[&str], total: usize) -> ConflictsFile {
        ConflictsFile {
            schema: CONFLICTS_SCHEMA.into(),
            version: CONFLICTS_VERSION,
            target: TargetInfo {
                name: "linux".into(),
                version: Some("6.12".into()),
                symbols: Some("vmlinux-6.12".into()),
            },
            shard: Some(Shard {
                index,
                count,
                suite_digest: digest.into(),
                suite_tests: total,
            }),
            tests: ids
                .iter()
                .map(|id| TestConflicts {
                    id: id.to_string(),
                    calls: vec!["stat".into(), "stat".into()],
                    status: Status::ConflictFree,
                    shared: vec![],
                    false_sharing: vec![],
                    mismatches: vec![],
                    errors: vec![],
                })
                .collect(),
        }
    }

    fn named(parts: Vec<ConflictsFile>) -> Vec<(String, ConflictsFile)> {
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("part{}.json", i + 1), p))
            .collect()
    }

    #[test]
    fn merge_joins_in_suite_order_without_the_shard_field() {
        let parts = named(vec![
            part(2, 2, "d", &["t_9", "t_10"], 4),
            part(1, 2, "d", &["t_1", "t_2"], 4),
        ]);
        let m = merge(parts, Some("d")).unwrap();
        let ids: Vec<&str> = m.tests.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["t_1", "t_2", "t_9", "t_10"]);
        assert_eq!(m.shard, None);
        assert!(!m.to_json().contains("shard"));
    }

    #[test]
    fn merge_refuses_what_a_single_run_would_not_give() {
        let err = |parts: Vec<ConflictsFile>, digest: Option<&str>| {
            merge(named(parts), digest).unwrap_err()
        };
        assert_eq!(merge(vec![], None).unwrap_err(), MergeError::NoParts);
        let mut whole = part(1, 1, "d", &["t_1"], 1);
        whole.shard = None;
        assert!(matches!(
            err(vec![whole], None),
            MergeError::NotAShard { part } if part == "part1.json"
        ));
        let e = err(
            vec![part(1, 2, "d", &["t_1"], 2), part(2, 2, "e", &["t_2"], 2)],
            None,
        );
        assert!(matches!(e, MergeError::OtherSuite { .. }), "{e}");
        assert!(e.to_string().contains("same tests.json"), "{e}");
        let e = err(vec![part(1, 1, "d", &["t_1"], 1)], Some("x"));
        assert!(matches!(e, MergeError::NotThisSuite { .. }), "{e}");
        let e = err(
            vec![part(1, 2, "d", &["t_1"], 2), part(2, 3, "d", &["t_2"], 2)],
            None,
        );
        assert!(matches!(e, MergeError::OtherCount { .. }), "{e}");
        let e = err(
            vec![part(1, 2, "d", &["t_1"], 2), part(1, 2, "d", &["t_1"], 2)],
            None,
        );
        assert_eq!(
            e.to_string(),
            "`part1.json` and `part2.json` are both shard 1/2: give each shard once"
        );
        let e = err(
            vec![part(2, 4, "d", &["t_2"], 4), part(4, 4, "d", &["t_4"], 4)],
            None,
        );
        assert_eq!(
            e.to_string(),
            "shards 1, 3 of 4 missing: run `commuter run --shard I/4` for each and pass their conflicts.json files"
        );
        let mut other = part(2, 2, "d", &["t_2"], 2);
        other.target.version = Some("6.1".into());
        let e = err(vec![part(1, 2, "d", &["t_1"], 2), other], None);
        assert!(matches!(e, MergeError::OtherTarget { .. }), "{e}");
        assert!(e.to_string().contains("linux 6.1"), "{e}");
        let e = err(
            vec![part(1, 2, "d", &["t_1"], 2), part(2, 2, "d", &["t_1"], 2)],
            None,
        );
        assert!(matches!(e, MergeError::TestTwice { .. }), "{e}");
        let e = err(
            vec![part(1, 2, "d", &["t_1"], 3), part(2, 2, "d", &["t_2"], 3)],
            None,
        );
        assert_eq!(
            e,
            MergeError::Count {
                found: 2,
                expected: 3
            }
        );
    }
}
