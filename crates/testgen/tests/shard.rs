//! Test generation in parts: the cut is a partition balanced by cost, and the parts join into
//! the one generation's suite, byte for byte; parts that do not belong together are refused.

use commuter_analyzer::schedule::set_cost;
use commuter_analyzer::select_model_call_sets;
use commuter_models::find_model;
use commuter_testgen::shard::{MergeError, merge_parts, part_of, set_name};
use commuter_testgen::{SuitePart, TestSuite, TestgenOptions, testgen};

#[test]
fn parts_partition_the_posix_selection_within_one_call_set_of_balance() {
    let m = find_model("posix").expect("posix");
    let sets = select_model_call_sets(m.as_ref(), None, 2).expect("all pairs");
    let heaviest = sets
        .iter()
        .map(|s| set_cost(m.as_ref(), s))
        .max()
        .unwrap_or(0);
    for count in 1..=6u32 {
        let parts: Vec<_> = (1..=count)
            .map(|i| part_of(m.as_ref(), &sets, i, count))
            .collect();
        // Every set in exactly one part, each part in selection order.
        let mut joined: Vec<_> = parts.iter().flatten().cloned().collect();
        joined.sort_by_key(|s| sets.iter().position(|t| t == s));
        assert_eq!(joined, sets, "{count} parts");
        for p in &parts {
            let positions: Vec<_> = p.iter().map(|s| sets.iter().position(|t| t == s)).collect();
            assert!(
                positions.is_sorted(),
                "{count} parts: not in selection order"
            );
        }
        let loads: Vec<u64> = parts
            .iter()
            .map(|p| p.iter().map(|s| set_cost(m.as_ref(), s)).sum())
            .collect();
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(hi - lo <= heaviest, "{count} parts: loads {loads:?}");
    }
}

/// The `kv` suite generated whole, and in `count` parts (as `testgen --shard I/N` writes them).
fn kv(count: u32) -> (TestSuite, Vec<(String, TestSuite)>) {
    let m = find_model("kv").expect("kv");
    let sets = select_model_call_sets(m.as_ref(), None, 2).expect("all pairs");
    let opts = TestgenOptions::default();
    let whole = testgen(m.as_ref(), &sets, &opts, None, &|_| {})
        .expect("testgen")
        .0;
    let parts = (1..=count)
        .map(|index| {
            let mine = part_of(m.as_ref(), &sets, index, count);
            let mut part = testgen(m.as_ref(), &mine, &opts, None, &|_| {})
                .expect("testgen")
                .0;
            part.part = Some(SuitePart {
                index,
                count,
                selection: sets.iter().map(|s| set_name(m.as_ref(), s)).collect(),
                idempotence: true,
            });
            (format!("part{index}.json"), part)
        })
        .collect();
    (whole, parts)
}

#[test]
fn parts_join_into_the_whole_suite_in_any_order() {
    let (whole, mut parts) = kv(3);
    assert!(parts.iter().all(|(_, p)| !p.call_sets.is_empty()));
    parts.reverse();
    let merged = merge_parts(parts).expect("merge");
    assert_eq!(
        serde_json::to_string_pretty(&merged).expect("JSON"),
        serde_json::to_string_pretty(&whole).expect("JSON")
    );
}

#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let (whole, parts) = kv(3);
    let without = |i: usize| {
        let mut p = parts.clone();
        p.remove(i);
        p
    };
    assert_eq!(merge_parts(Vec::new()), Err(MergeError::NoParts));
    assert!(matches!(
        merge_parts(without(1)),
        Err(MergeError::Missing { ref missing, count: 3 }) if missing == "2"
    ));
    let mut twice = parts.clone();
    twice.push(parts[0].clone());
    assert!(matches!(
        merge_parts(twice),
        Err(MergeError::Duplicate { index: 1, .. })
    ));
    let mut whole_too = parts.clone();
    whole_too.push(("tests.json".into(), whole));
    assert!(matches!(
        merge_parts(whole_too),
        Err(MergeError::NotAPart { ref part }) if part == "tests.json"
    ));
    let mut other = parts.clone();
    if let Some(p) = other[2].1.part.as_mut() {
        p.idempotence = false;
    }
    let err = merge_parts(other).expect_err("mixed options");
    assert!(err.to_string().contains("--no-idempotence"), "{err}");
    let mut stray = parts.clone();
    let moved = stray[0].1.call_sets[0].clone();
    stray[1].1.call_sets.push(moved);
    assert!(matches!(
        merge_parts(stray),
        Err(MergeError::BadCallSet { why, .. }) if why.contains("another part")
    ));
}
