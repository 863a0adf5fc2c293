//! `zsnap import znapzend`: `znapzendzetup export` output (alone and concatenated)
//! translates into configs zsnap accepts and that round-trip; plans become grids that
//! decide like znapzend's slots where the two agree.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use zsnap_core::config::{import_znapzend, Config, Imported};
use zsnap_core::retention::{evaluate, Candidate};
use zsnap_core::{Guid, ShortName};

/// The fixtures are read at compile time: the crate's lints forbid `std::fs`.
fn fixture(name: &str) -> &'static str {
    match name {
        "znapzend-home.txt" => include_str!("fixtures/import/znapzend-home.txt"),
        "znapzend-two.txt" => include_str!("fixtures/import/znapzend-two.txt"),
        other => panic!("no fixture {other}"),
    }
}

fn import(name: &str) -> Imported {
    let imported = import_znapzend(fixture(name), name).unwrap_or_else(|e| panic!("{e}"));
    let text = imported.to_toml(name);
    let again = Config::from_toml(&text, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, imported.config);
    imported
}

#[test]
fn one_set_with_two_destinations_and_commands() {
    let imported = import("znapzend-home.txt");
    assert_eq!(imported.config.targets.len(), 2);
    assert_eq!(imported.config.hooks.len(), 4);
    insta::assert_snapshot!(imported.to_toml("export.txt"));
}

#[test]
fn concatenated_exports() {
    let imported = import("znapzend-two.txt");
    assert_eq!(imported.config.datasets.len(), 2, "tank/old is disabled");
    insta::assert_snapshot!(imported.to_toml("export.txt"));
}

#[test]
fn years_and_months_are_znapzends_lengths() {
    let imported = import_znapzend(
        "src=tank/a\nsrc_plan=1day=>1hour,10years=>1year\n",
        "export.txt",
    )
    .unwrap();
    let grid = format!(
        "{:?}",
        imported.config.policies["tank-a"].retention.keep_rules
    );
    // 365.25 days a year: 10 years less a day, in years, rounded up.
    assert!(grid.contains("24x1h | 10x365d6h"), "{grid}");
    let text = imported.to_toml("export.txt");
    Config::from_toml(&text, "imported.toml").unwrap();
}

#[test]
fn errors_say_where() {
    let err = import_znapzend("src=tank/a\nsrc_plan=1day=>1fortnight\n", "export.txt").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"export.txt:2: src_plan: plan item "1day=>1fortnight": "1fortnight" is not a time such as 1hour"#);
    let err = import_znapzend(
        "src=tank/a\nsrc_plan=1day=>1hour\nrecursive=maybe\n",
        "export.txt",
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"export.txt:3: recursive=maybe: expected on or off");
    let err = import_znapzend("just text\n", "export.txt").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r#"export.txt:1: expected `key=value` as `znapzendzetup export` prints, found "just text""#);
    let err = import_znapzend("src_plan=1day=>1hour\n", "export.txt").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"export.txt:1: a backup set without `src` (the dataset)");
}

/// znapzend's `getSnapshotsToDestroy` (UTC, current version), restated: the kept
/// snapshots of `times` (oldest first) at `now` under `plan` (retention, interval).
fn znapzend_keeps(times: &[i64], plan: &[(i64, i64)], now: i64) -> BTreeSet<usize> {
    let mut slots: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut kept = BTreeSet::new();
    let max = plan.last().unwrap().0;
    for (i, &t) in times.iter().enumerate() {
        let age = now - t;
        let key = plan.iter().find(|(k, _)| *k >= age).map_or(max, |p| p.0);
        if age > key {
            continue;
        }
        let every = plan.iter().find(|(k, _)| *k == key).unwrap().1;
        if slots.insert((key, t.div_euclid(every))) || t == now {
            kept.insert(i);
        }
    }
    kept
}

#[test]
fn a_one_bracket_plan_decides_like_znapzend() {
    // One bracket, snapshots on znapzend's own schedule (every interval, aligned to
    // the epoch), `now` just after one: the grid from the newest snapshot and
    // znapzend's epoch slots cut at the same instants.
    let imported = import_znapzend("src=tank/a\nsrc_plan=2days=>1hour\n", "export.txt").unwrap();
    let policy = imported.config.policies["tank-a"].to_policy();
    let start = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let times: Vec<DateTime<Utc>> = (0..24 * 4).map(|h| start + Duration::hours(h)).collect();
    let now = *times.last().unwrap();
    let names: Vec<ShortName> = (0..times.len())
        .map(|i| format!("s{i:03}").parse().unwrap())
        .collect();
    let cands: Vec<Candidate> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Candidate::new(
                &names[i],
                Guid(i as u64 + 1),
                i as u64 + 1,
                *t,
                Some("periodic"),
            )
        })
        .collect();
    let got: BTreeSet<usize> = evaluate(&policy.retention, &cands, now, policy.timezone)
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty())
        .map(|(i, _)| i)
        .collect();
    let secs: Vec<i64> = times.iter().map(DateTime::timestamp).collect();
    let mut oracle = znapzend_keeps(&secs, &[(2 * 86_400, 3600)], now.timestamp());
    // The one difference the note states: znapzend keeps a snapshot exactly as old as
    // the retention (age <= 2 days); the grid's 48 hours end just after it.
    let boundary = secs
        .iter()
        .position(|t| now.timestamp() - t == 2 * 86_400)
        .unwrap();
    assert!(oracle.remove(&boundary));
    assert_eq!(got, oracle);
    assert!(got.len() < times.len());
}
