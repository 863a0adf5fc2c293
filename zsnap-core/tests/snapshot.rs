//! The snapshot planner on fixture inventories, its errors, and simulated runs under a
//! clock that jumps forward and back.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::naming::{Label, Recognizer};
use zsnap_core::policy::{DatasetSelection, Policy};
use zsnap_core::schedule::{LabelSchedule, Schedule};
use zsnap_core::snapshot::{plan_snapshot_on_demand, plan_snapshots};
use zsnap_core::{
    Dataset, DatasetKind, Guid, Inventory, Location, Plan, Snapshot, Step, EXPIRES_PROPERTY,
    MANAGED_PROPERTY,
};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn schedule(labels: &[(&str, &str)]) -> Schedule {
    Schedule::new(
        labels
            .iter()
            .map(|(l, p)| LabelSchedule::new(l.parse().unwrap(), p.parse().unwrap()))
            .collect(),
    )
    .unwrap()
}

fn policies() -> BTreeMap<String, Policy> {
    let berlin = chrono_tz::Europe::Berlin;
    BTreeMap::from([
        (
            "standard".to_owned(),
            Policy::new(
                schedule(&[("hourly", "hourly"), ("daily", "daily")]),
                Default::default(),
                berlin,
            )
            .with_adopt(vec![Recognizer::sanoid()]),
        ),
        (
            "db".to_owned(),
            Policy::new(
                schedule(&[("quarter", "15m"), ("hourly", "hourly"), ("daily", "daily")]),
                Default::default(),
                berlin,
            ),
        ),
    ])
}

fn selections() -> Vec<DatasetSelection> {
    vec![
        DatasetSelection::new("tank".parse().unwrap(), "standard").with_recursive(true),
        DatasetSelection::new("tank/db".parse().unwrap(), "db"),
        DatasetSelection::new("backup/x".parse().unwrap(), "standard"),
    ]
}

fn add(inv: &mut Inventory, ds: &str, name: &str, managed: bool, at: DateTime<Utc>) {
    let d = inv.dataset_mut(&ds.parse().unwrap()).unwrap();
    let txg = d.snapshots.last().map_or(1, |s| s.createtxg + 1);
    let mut s = Snapshot::new(name.parse().unwrap(), Guid(txg * 1000 + d.guid.0), txg, at);
    if managed {
        s.managed = Some("yes".into());
    }
    d.insert_snapshot(s);
}

fn fixture() -> Inventory {
    let mut inv = Inventory::new();
    for (i, (name, kind)) in [
        ("tank", DatasetKind::Filesystem),
        ("tank/home", DatasetKind::Filesystem),
        ("tank/db", DatasetKind::Filesystem),
        ("tank/vm", DatasetKind::Volume),
        ("backup", DatasetKind::Filesystem),
        ("backup/x", DatasetKind::Filesystem),
        ("other", DatasetKind::Filesystem),
    ]
    .into_iter()
    .enumerate()
    {
        inv.insert(Dataset::new(
            name.parse().unwrap(),
            kind,
            Guid(i as u64 + 1),
        ));
    }
    // tank/home has this hour's hourly already; tank/vm has today's daily from sanoid
    // (local time: 09:00 CET is 08:00 UTC).
    add(
        &mut inv,
        "tank/home",
        "zsnap_hourly_20261123T140500Z",
        true,
        utc(2026, 11, 23, 14, 5, 0),
    );
    add(
        &mut inv,
        "tank/vm",
        "autosnap_2026-11-23_09:00:00_daily",
        false,
        utc(2026, 11, 23, 8, 0, 0),
    );
    inv
}

/// One line per step: reason, then the names.
fn steps(plan: &Plan) -> String {
    plan.steps
        .iter()
        .map(|s| match s {
            Step::Snapshot(s) => {
                let names: Vec<String> = s.names.iter().map(ToString::to_string).collect();
                format!("[{}] {}", s.reason, names.join(" "))
            }
            other => panic!("unexpected step {other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn one_step_per_round_and_pool() {
    let inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0);
    let plan = plan_snapshots(&inv, &selections(), &policies(), &Location::local(), now).unwrap();
    insta::assert_snapshot!(steps(&plan), @r"
    [due: hourly] backup/x@zsnap_hourly_20261123T143000Z
    [due: daily, hourly, quarter] tank@zsnap_hourly_20261123T143000Z tank/db@zsnap_quarter_20261123T143000Z tank/home@zsnap_daily_20261123T143000Z tank/vm@zsnap_hourly_20261123T143000Z
    [due: daily] backup/x@zsnap_daily_20261123T143000Z
    [due: daily, hourly] tank@zsnap_daily_20261123T143000Z tank/db@zsnap_hourly_20261123T143000Z
    [due: daily] tank/db@zsnap_daily_20261123T143000Z
    ");
    for step in &plan.steps {
        let Step::Snapshot(s) = step else {
            unreachable!()
        };
        assert_eq!(
            s.properties,
            BTreeMap::from([(MANAGED_PROPERTY.to_owned(), "yes".to_owned())])
        );
        assert_eq!(s.location, Location::local());
    }
    assert!(plan.notes.is_empty());
    // ZFS would accept every step, and afterwards nothing is due.
    let after = plan.simulate(&inv).unwrap();
    let again =
        plan_snapshots(&after, &selections(), &policies(), &Location::local(), now).unwrap();
    assert!(again.is_empty(), "{}", steps(&again));
    // At 14:44 nothing is due; at 14:45 the quarter-hour label of tank/db is.
    assert!(plan_snapshots(
        &after,
        &selections(),
        &policies(),
        &Location::local(),
        now + TimeDelta::minutes(14)
    )
    .unwrap()
    .is_empty());
    let later = now + TimeDelta::minutes(15);
    let plan = plan_snapshots(
        &after,
        &selections(),
        &policies(),
        &Location::local(),
        later,
    )
    .unwrap();
    insta::assert_snapshot!(steps(&plan), @"[due: quarter] tank/db@zsnap_quarter_20261123T144500Z");
}

#[test]
fn existing_unmanaged_name_is_not_taken_again() {
    let mut inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0);
    // Someone made zsnap's name by hand, without the managed property.
    add(
        &mut inv,
        "backup/x",
        "zsnap_hourly_20261123T143000Z",
        false,
        now,
    );
    let plan = plan_snapshots(&inv, &selections(), &policies(), &Location::local(), now).unwrap();
    let text = steps(&plan);
    assert!(!text.contains("backup/x@zsnap_hourly"), "{text}");
    assert!(
        text.contains("backup/x@zsnap_daily_20261123T143000Z"),
        "{text}"
    );
    assert_eq!(plan.notes.len(), 1);
    insta::assert_snapshot!(plan.notes[0].message, @"backup/x@zsnap_hourly_20261123T143000Z exists but does not count as a hourly snapshot (it lacks zsnap:managed=yes); not taking it again");
    plan.simulate(&inv).unwrap();
}

#[test]
fn names_longer_than_zfs_allows_are_skipped_with_a_note() {
    let long = format!("tank/{}", "d".repeat(230));
    let mut inv = Inventory::new();
    inv.insert(Dataset::new(
        "tank".parse().unwrap(),
        DatasetKind::Filesystem,
        Guid(1),
    ));
    inv.insert(Dataset::new(
        long.parse().unwrap(),
        DatasetKind::Filesystem,
        Guid(2),
    ));
    let sel = [DatasetSelection::new("tank".parse().unwrap(), "standard").with_recursive(true)];
    let plan = plan_snapshots(
        &inv,
        &sel,
        &policies(),
        &Location::local(),
        utc(2026, 11, 23, 9, 0, 0),
    )
    .unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert!(!steps(&plan).contains("ddd"));
    // A problem, not a note: the job fails naming the dataset (it goes unprotected).
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    assert_eq!(plan.problems.len(), 2);
    let m = &plan.problems[0].message;
    assert!(
        m.starts_with("no hourly snapshot can be taken: invalid snapshot name"),
        "{m}"
    );
    assert!(
        m.contains("the name is longer than 255 bytes (at byte 255)"),
        "{m}"
    );
    assert!(plan.render().contains("\nproblems:\n"), "{}", plan.render());
}

#[test]
fn on_demand_takes_the_label_everywhere() {
    let mut inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0);
    add(
        &mut inv,
        "tank/db",
        "zsnap_pre-upgrade_20261123T143000Z",
        false,
        now,
    );
    let label: Label = "pre-upgrade".parse().unwrap();
    let plan = plan_snapshot_on_demand(
        &inv,
        &selections(),
        &policies(),
        &Location::local(),
        &label,
        None,
        now,
    )
    .unwrap();
    insta::assert_snapshot!(steps(&plan), @r"
    [on demand: pre-upgrade] backup/x@zsnap_pre-upgrade_20261123T143000Z
    [on demand: pre-upgrade] tank@zsnap_pre-upgrade_20261123T143000Z tank/home@zsnap_pre-upgrade_20261123T143000Z tank/vm@zsnap_pre-upgrade_20261123T143000Z
    ");
    assert_eq!(plan.notes.len(), 1);
    for step in &plan.steps {
        let Step::Snapshot(s) = step else {
            panic!("only snapshot steps")
        };
        assert!(!s.properties.contains_key(EXPIRES_PROPERTY));
    }
    plan.simulate(&inv).unwrap();
}

/// `zsnap snapshot --label pre-upgrade --expire-in 16d`: every step sets the expiry,
/// to the second, and says so; the simulated snapshots carry it, as a listing would.
#[test]
fn on_demand_with_an_expiry() {
    let inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0) + TimeDelta::milliseconds(750);
    let label: Label = "pre-upgrade".parse().unwrap();
    let plan = plan_snapshot_on_demand(
        &inv,
        &selections(),
        &policies(),
        &Location::local(),
        &label,
        Some("16d".parse().unwrap()),
        now,
    )
    .unwrap();
    insta::assert_snapshot!(steps(&plan), @r"
    [on demand: pre-upgrade, kept until 2026-12-09T14:30:00Z] backup/x@zsnap_pre-upgrade_20261123T143000Z
    [on demand: pre-upgrade, kept until 2026-12-09T14:30:00Z] tank@zsnap_pre-upgrade_20261123T143000Z tank/db@zsnap_pre-upgrade_20261123T143000Z tank/home@zsnap_pre-upgrade_20261123T143000Z tank/vm@zsnap_pre-upgrade_20261123T143000Z
    ");
    for step in &plan.steps {
        let Step::Snapshot(s) = step else {
            panic!("only snapshot steps")
        };
        assert_eq!(s.properties[EXPIRES_PROPERTY], "2026-12-09T14:30:00Z");
        assert_eq!(s.properties[MANAGED_PROPERTY], "yes");
    }
    let after = plan.simulate(&inv).unwrap();
    let s = after
        .snapshot(
            &"tank/home@zsnap_pre-upgrade_20261123T143000Z"
                .parse()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(s.expiry(), Some(Ok(utc(2026, 12, 9, 14, 30, 0))));
}

/// An expiry is refused for a label a selected dataset's policy schedules (its keep
/// rules prune those), for zero, and past the year 9999; nothing is planned.
#[test]
fn on_demand_expiry_errors() {
    let inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0);
    let err = |label: &str, span: &str| {
        let label: Label = label.parse().unwrap();
        plan_snapshot_on_demand(
            &inv,
            &selections(),
            &policies(),
            &Location::local(),
            &label,
            Some(span.parse().unwrap()),
            now,
        )
        .unwrap_err()
        .to_string()
    };
    // `quarter` is scheduled only by the policy of tank/db.
    insta::assert_snapshot!(err("quarter", "2h"), @r#"cannot give the quarter snapshot of tank/db an expiry: policy "db" schedules label quarter, so its keep rules decide when those snapshots go and an expiry could only delay that; take it without an expiry, or with a label the policy does not schedule"#);
    insta::assert_snapshot!(err("pre-upgrade", "0s"), @"invalid expiry 0s from 2026-11-23T14:30:00Z: an expiry of 0 would let the next prune destroy the snapshot at once");
    insta::assert_snapshot!(err("pre-upgrade", "99999999w"), @"invalid expiry 699999993d from 2026-11-23T14:30:00Z: it ends past the year 9999");
    insta::assert_snapshot!(err("pre-upgrade", "18446744073709551615s"), @"invalid expiry 213503982334601d7h15s from 2026-11-23T14:30:00Z: it ends past the year 9999");
    // A policy that takes no snapshots cannot tell an on-demand label from another.
    let mut pols = policies();
    pols.insert(
        "prune-only".to_owned(),
        Policy::new(Default::default(), Default::default(), chrono_tz::UTC),
    );
    let sels = [DatasetSelection::new(
        "other".parse().unwrap(),
        "prune-only",
    )];
    let e = plan_snapshot_on_demand(
        &inv,
        &sels,
        &pols,
        &Location::local(),
        &"pre-upgrade".parse().unwrap(),
        Some("1d".parse().unwrap()),
        now,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"policy "prune-only" takes no snapshots of its own"#),
        "{e}"
    );
}

#[test]
fn errors() {
    let inv = fixture();
    let now = utc(2026, 11, 23, 14, 30, 0);
    let loc = Location::local();
    let err = |sels: &[DatasetSelection], now| {
        let e = plan_snapshots(&inv, sels, &policies(), &loc, now).unwrap_err();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    };
    insta::assert_snapshot!(
        err(&[DatasetSelection::new("tank/nope".parse().unwrap(), "standard")], now),
        @"invalid dataset selection at location local: selection root tank/nope is not in the inventory"
    );
    insta::assert_snapshot!(
        err(&[DatasetSelection::new("tank".parse().unwrap(), "weekly")], now),
        @r#"invalid dataset selection at location local: the selection of tank names policy "weekly", which is not defined"#
    );
    insta::assert_snapshot!(
        err(
            &[
                DatasetSelection::new("tank".parse().unwrap(), "standard"),
                DatasetSelection::new("tank".parse().unwrap(), "db"),
            ],
            now
        ),
        @r#"invalid dataset selection at location local: dataset tank is selected by two selections of tank with different policies ("standard" and "db")"#
    );
    let far = DateTime::from_timestamp(253_402_300_800, 0).unwrap();
    insta::assert_snapshot!(
        err(&[DatasetSelection::new("other".parse().unwrap(), "standard")], far),
        @"cannot name the hourly snapshot of other: cannot name a snapshot taken at +10000-01-01 00:00:00 UTC: only the years 0000 to 9999 fit in a name"
    );
}

#[derive(Debug, Clone, Copy)]
enum Clock {
    Forward(i64),
    Back(i64),
}

proptest! {
    /// zsnap run again and again under a clock that jumps forward and back, across DST
    /// changes: every plan is one ZFS would accept, no label of a dataset ever gets two
    /// snapshots in one period, and after every run each label has one in the current
    /// period or a later one.
    #[test]
    fn runs_keep_the_schedule_invariants(
        start in prop::sample::select(vec![
            utc(2026, 3, 29, 0, 0, 0),
            utc(2026, 10, 25, 0, 0, 0),
            utc(2026, 12, 31, 22, 0, 0),
        ]),
        jitter in -86_400i64..86_400,
        clock in prop::collection::vec(prop_oneof![
            6 => (1i64..=5400).prop_map(Clock::Forward),
            1 => (5400i64..=20 * 86_400).prop_map(Clock::Forward),
            2 => (1i64..=5400).prop_map(Clock::Back),
            1 => (5400i64..=20 * 86_400).prop_map(Clock::Back),
        ], 1..16),
    ) {
        let sels = selections();
        let pols = policies();
        let mut inv = fixture();
        let mut now = start + TimeDelta::seconds(jitter);
        for step in std::iter::once(Clock::Forward(0)).chain(clock) {
            now = match step {
                Clock::Forward(s) => now + TimeDelta::seconds(s),
                Clock::Back(s) => now - TimeDelta::seconds(s),
            };
            let plan = plan_snapshots(&inv, &sels, &pols, &Location::local(), now).unwrap();
            inv = plan.simulate(&inv).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (name, ds) in &inv.datasets {
                let Some(sel) = sels.iter().filter(|s| s.selects(name)).max_by_key(|s| s.root.as_str().len()) else {
                    continue;
                };
                let policy = &pols[&sel.policy];
                let counted: Vec<(String, DateTime<Utc>)> = policy.scheduled_snapshots(ds).collect();
                for ls in policy.schedule.labels() {
                    let mut periods: Vec<_> = counted
                        .iter()
                        .filter(|(l, _)| l == ls.label().as_str())
                        .map(|(_, t)| ls.period_of(policy.timezone, *t))
                        .collect();
                    let current = ls.period_of(policy.timezone, now);
                    prop_assert!(periods.iter().any(|p| *p >= current), "{name} {} missing at {now}", ls.label());
                    let n = periods.len();
                    periods.sort();
                    periods.dedup();
                    prop_assert_eq!(periods.len(), n, "{} {} has two snapshots in one period", name, ls.label());
                }
            }
        }
    }
}

#[test]
fn volumes_are_snapshotted_and_datasets_outside_selections_are_not() {
    let inv = fixture();
    let plan = plan_snapshots(
        &inv,
        &selections(),
        &policies(),
        &Location::local(),
        utc(2026, 11, 24, 10, 0, 0),
    )
    .unwrap();
    let text = steps(&plan);
    assert!(
        text.contains("tank/vm@zsnap_daily_20261124T100000Z"),
        "{text}"
    );
    assert!(!text.contains("other@"), "{text}");
    assert!(!text.contains("backup@"), "{text}");
}
