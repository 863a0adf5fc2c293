//! `plan_prune` on hand-built fixture inventories: the rendered plans (insta file
//! snapshots), the safety rules one by one, notes, batching, simulation and convergence.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use zsnap_core::naming::Recognizer;
use zsnap_core::policy::{DatasetSelection, Policy};
use zsnap_core::retention::{KeepRule, RetentionPolicy};
use zsnap_core::{
    plan_prune, Dataset, DatasetKind, DatasetName, Guid, Inventory, KeptUntil, Location, Plan,
    PruneRequest, Snapshot, Step, Verdict,
};

fn ds(s: &str) -> DatasetName {
    s.parse().unwrap()
}

/// Builds datasets with unique guids and a pool-wide increasing createtxg.
struct Builder {
    inv: Inventory,
    next: u64,
}

impl Builder {
    fn new() -> Self {
        Builder {
            inv: Inventory::new(),
            next: 1000,
        }
    }

    fn dataset(&mut self, name: &str) -> &mut Self {
        self.next += 1;
        self.inv.insert(Dataset::new(
            ds(name),
            DatasetKind::Filesystem,
            Guid(self.next),
        ));
        self
    }

    /// Adds a snapshot; `managed` sets the zsnap property.
    fn snap(&mut self, dataset: &str, name: &str, at: DateTime<Utc>, managed: bool) -> Guid {
        self.next += 1;
        let mut s = Snapshot::new(name.parse().unwrap(), Guid(self.next), self.next, at);
        if managed {
            s.managed = Some("yes".to_owned());
        }
        self.inv
            .dataset_mut(&ds(dataset))
            .unwrap()
            .insert_snapshot(s);
        Guid(self.next)
    }

    fn zsnap(&mut self, dataset: &str, label: &str, at: DateTime<Utc>) -> Guid {
        let name = format!("zsnap_{label}_{}", at.format("%Y%m%dT%H%M%SZ"));
        self.snap(dataset, &name, at, true)
    }

    fn edit(&mut self, dataset: &str, name: &str, f: impl FnOnce(&mut Snapshot)) {
        let d = self.inv.dataset_mut(&ds(dataset)).unwrap();
        f(d.snapshots
            .iter_mut()
            .find(|s| s.name.as_str() == name)
            .unwrap());
    }

    fn done(self) -> Inventory {
        self.inv.validate().unwrap();
        self.inv
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
}

fn policy(rules: &[&str], tz: chrono_tz::Tz) -> Policy {
    let rules = rules
        .iter()
        .map(|r| r.parse::<KeepRule>().unwrap())
        .collect();
    Policy::new(Default::default(), RetentionPolicy::new(rules), tz)
}

fn destroyed(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .flat_map(|s| match s {
            Step::Destroy(d) => d
                .snapshots
                .iter()
                .map(|r| format!("{}@{}", d.dataset, r.name))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The plan simulates cleanly and planning again on its result destroys nothing.
fn assert_converges(req: &PruneRequest<'_>, plan: &Plan, now: DateTime<Utc>) {
    let after = plan
        .simulate(req.inventory)
        .expect("the plan simulates cleanly");
    let again = PruneRequest::new(req.location.clone(), &after, req.selections, req.policies)
        .with_protected(req.protected)
        .with_failed(req.failed)
        .with_destroy_arg_budget(req.destroy_arg_budget);
    let second = plan_prune(&again, now);
    assert_eq!(destroyed(&second), Vec::<String>::new());
}

/// Hourly snapshots over three days of tank/home, with a held one, a cloned one, an
/// unmanaged one and an adopted sanoid one.
fn three_days() -> Inventory {
    let mut b = Builder::new();
    b.dataset("tank").dataset("tank/home");
    let start = utc(2026, 11, 21, 0);
    for h in 0..72 {
        let at = start + Duration::hours(h);
        b.zsnap("tank/home", "hourly", at);
        if h == 36 {
            // sanoid wrote local (Berlin) time: 13:00 CET is 12:00 UTC.
            b.snap(
                "tank/home",
                "autosnap_2026-11-22_13:00:00_daily",
                at + Duration::seconds(1),
                false,
            );
        }
        if h == 50 {
            b.snap(
                "tank/home",
                "manual-before-upgrade",
                at + Duration::minutes(5),
                false,
            );
        }
    }
    b.edit("tank/home", "zsnap_hourly_20261121T030000Z", |s| {
        s.userrefs = 1
    });
    b.edit("tank/home", "zsnap_hourly_20261121T100000Z", |s| {
        s.clones = vec![ds("tank/home-clone")]
    });
    b.done()
}

#[test]
fn three_days_of_hourlies() {
    let inv = three_days();
    let policies = BTreeMap::from([(
        "standard".to_owned(),
        policy(
            &["calendar hourly = 24, daily = 7"],
            chrono_tz::Europe::Berlin,
        )
        .with_adopt(vec![Recognizer::sanoid()]),
    )]);
    let selections = [DatasetSelection::new(ds("tank"), "standard").with_recursive(true)];
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
    let now = utc(2026, 11, 24, 0);
    let plan = plan_prune(&req, now);

    let gone = destroyed(&plan);
    assert!(
        !gone.contains(&"tank/home@zsnap_hourly_20261121T030000Z".to_owned()),
        "held"
    );
    assert!(
        !gone.contains(&"tank/home@zsnap_hourly_20261121T100000Z".to_owned()),
        "cloned"
    );
    assert!(
        !gone.iter().any(|g| g.contains("manual-before-upgrade")),
        "unmanaged"
    );
    // The adopted sanoid snapshot is judged like zsnap's own: it is not the newest of
    // its local day (2026-11-22 in Berlin ends at 23:00 UTC, so the 22:00 UTC hourly is),
    // nor in the newest 24 hours, so it goes.
    assert!(gone.contains(&"tank/home@autosnap_2026-11-22_13:00:00_daily".to_owned()));
    // 72 hourlies + 2 others, one decision each.
    assert_eq!(plan.decisions.len(), 74);
    assert_converges(&req, &plan, now);
    insta::assert_snapshot!("three_days_of_hourlies", plan.render());
}

/// Several datasets and selections: nested policies, an exclusion, a failed listing, a
/// missing root, an undefined policy, an ambiguous pair, a protected common snapshot.
fn estate() -> Inventory {
    let mut b = Builder::new();
    for d in [
        "tank",
        "tank/db",
        "tank/db/tmp",
        "tank/broken",
        "tank/broken/child",
        "tank/vm",
        "tank/odd",
    ] {
        b.dataset(d);
    }
    let start = utc(2026, 11, 20, 0);
    for d in [
        "tank",
        "tank/db",
        "tank/db/tmp",
        "tank/broken/child",
        "tank/vm",
        "tank/odd",
    ] {
        for i in 0..6 {
            b.zsnap(d, "daily", start + Duration::days(i));
        }
    }
    // tank/vm's newest snapshot is not zsnap's: all its zsnap snapshots are candidates.
    b.snap(
        "tank/vm",
        "before-upgrade",
        start + Duration::days(7),
        false,
    );
    b.done()
}

#[test]
fn an_estate_of_datasets() {
    let inv = estate();
    let policies = BTreeMap::from([
        ("standard".to_owned(), policy(&["last 2"], chrono_tz::UTC)),
        ("database".to_owned(), policy(&["last 4"], chrono_tz::UTC)),
        ("other".to_owned(), policy(&["last 1"], chrono_tz::UTC)),
    ]);
    let selections = [
        DatasetSelection::new(ds("tank"), "standard").with_recursive(true),
        DatasetSelection::new(ds("tank/db"), "database")
            .with_recursive(true)
            .with_exclude(vec![ds("tank/db/tmp")]),
        DatasetSelection::new(ds("tank/gone"), "standard"),
        DatasetSelection::new(ds("tank/vm"), "undefined"),
        DatasetSelection::new(ds("tank/odd"), "standard"),
        DatasetSelection::new(ds("tank/odd"), "other"),
    ];
    let db = inv.dataset(&ds("tank/db")).unwrap();
    // The newest common snapshot with the target is an old one: replication lags.
    let protected = BTreeMap::from([(
        ds("tank/db"),
        vec![("nas:backup/tank/db".to_owned(), db.snapshots[0].guid)],
    )]);
    let failed = BTreeSet::from([ds("tank/broken")]);
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies)
        .with_protected(&protected)
        .with_failed(&failed);
    let now = utc(2026, 11, 28, 0);
    let plan = plan_prune(&req, now);
    let gone = destroyed(&plan);
    assert!(!gone.iter().any(|g| g.starts_with("tank/broken")));
    assert!(
        !gone.iter().any(|g| g.starts_with("tank/vm@")),
        "undefined policy"
    );
    assert!(
        !gone.iter().any(|g| g.starts_with("tank/odd@")),
        "ambiguous"
    );
    assert!(!gone.contains(&"tank/db@zsnap_daily_20261120T000000Z".to_owned()));
    // tank/db/tmp falls back to the standard policy (last 2).
    assert_eq!(
        gone.iter()
            .filter(|g| g.starts_with("tank/db/tmp@"))
            .count(),
        4
    );
    assert_converges(&req, &plan, now);
    insta::assert_snapshot!("an_estate_of_datasets", plan.render());
}

#[test]
fn destroy_batches_respect_the_budget() {
    let mut b = Builder::new();
    b.dataset("tank/many");
    let start = utc(2026, 1, 1, 0);
    for h in 0..30 {
        b.zsnap("tank/many", "hourly", start + Duration::hours(h));
    }
    let inv = b.done();
    let policies = BTreeMap::from([("p".to_owned(), policy(&["last 1"], chrono_tz::UTC))]);
    let selections = [DatasetSelection::new(ds("tank/many"), "p")];
    // `tank/many@` is 10 bytes, each name 29: three names and two commas fit in 99.
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies)
        .with_destroy_arg_budget(99);
    let now = start + Duration::hours(30);
    let plan = plan_prune(&req, now);
    let batches: Vec<usize> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Destroy(d) => {
                let names: Vec<&str> = d.snapshots.iter().map(|r| r.name.as_str()).collect();
                let arg = format!("{}@{}", d.dataset, names.join(","));
                assert!(arg.len() <= 99, "{arg}");
                d.snapshots.len()
            }
            other => panic!("unexpected step {other:?}"),
        })
        .collect();
    assert_eq!(batches, [3, 3, 3, 3, 3, 3, 3, 3, 3, 2]);
    // Oldest first across the batches.
    let gone = destroyed(&plan);
    let mut sorted = gone.clone();
    sorted.sort();
    assert_eq!(gone, sorted);
    assert_converges(&req, &plan, now);
    insta::assert_snapshot!("destroy_batches", plan.render());
}

#[test]
fn a_tiny_budget_still_destroys_one_snapshot_per_batch() {
    let mut b = Builder::new();
    b.dataset("tank/a");
    for h in 0..3 {
        b.zsnap("tank/a", "hourly", utc(2026, 1, 1, h));
    }
    let inv = b.done();
    let policies = BTreeMap::from([("p".to_owned(), policy(&[], chrono_tz::UTC))]);
    let selections = [DatasetSelection::new(ds("tank/a"), "p")];
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies)
        .with_destroy_arg_budget(1);
    let plan = plan_prune(&req, utc(2026, 1, 2, 0));
    assert_eq!(
        plan.steps.len(),
        2,
        "the newest is protected, the two others one each"
    );
}

#[test]
fn every_safety_rule_alone_protects() {
    // A policy that keeps nothing: only the safety rules stand.
    let mut b = Builder::new();
    b.dataset("tank/a");
    for h in 0..8 {
        b.zsnap("tank/a", "hourly", utc(2026, 1, 1, h));
    }
    b.snap("tank/a", "mine", utc(2026, 1, 1, 8), false);
    b.zsnap("tank/a", "hourly", utc(2026, 1, 1, 9));
    b.edit("tank/a", "zsnap_hourly_20260101T010000Z", |s| {
        s.userrefs = 2
    });
    b.edit("tank/a", "zsnap_hourly_20260101T020000Z", |s| {
        s.clones = vec![ds("tank/c")]
    });
    b.edit("tank/a", "zsnap_hourly_20260101T030000Z", |s| {
        s.hidden_clones = vec!["tank/a/%recv".to_owned()]
    });
    let inv = b.done();
    let common = inv.dataset(&ds("tank/a")).unwrap().snapshots[4].guid;
    let protected = BTreeMap::from([(ds("tank/a"), vec![("t1".to_owned(), common)])]);
    let policies = BTreeMap::from([("p".to_owned(), policy(&[], chrono_tz::UTC))]);
    let selections = [DatasetSelection::new(ds("tank/a"), "p")];
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies)
        .with_protected(&protected);
    let plan = plan_prune(&req, utc(2026, 1, 2, 0));
    let verdicts: Vec<String> = plan
        .decisions
        .iter()
        .map(|d| {
            let v = match &d.verdict {
                Verdict::Destroy => "destroy".to_owned(),
                Verdict::Keep { .. } => "keep".to_owned(),
                Verdict::Protect { protections, .. } => protections
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                other => format!("{other:?}"),
            };
            format!("{} {v}", d.snapshot.short())
        })
        .collect();
    insta::assert_snapshot!(verdicts.join("\n"), @r"
    zsnap_hourly_20260101T000000Z destroy
    zsnap_hourly_20260101T010000Z held (2 holds)
    zsnap_hourly_20260101T020000Z has clones (tank/c)
    zsnap_hourly_20260101T030000Z pinned by hidden clones (tank/a/%recv)
    zsnap_hourly_20260101T040000Z newest snapshot in common with target t1
    zsnap_hourly_20260101T050000Z destroy
    zsnap_hourly_20260101T060000Z destroy
    zsnap_hourly_20260101T070000Z destroy
    mine not managed by zsnap
    zsnap_hourly_20260101T090000Z newest snapshot of the dataset
    ");
    assert_converges(&req, &plan, utc(2026, 1, 2, 0));
}

#[test]
fn a_snapshot_with_the_property_but_a_foreign_name_is_unmanaged() {
    let mut b = Builder::new();
    b.dataset("tank/a");
    b.snap("tank/a", "renamed-by-hand", utc(2026, 1, 1, 0), true);
    b.zsnap("tank/a", "hourly", utc(2026, 1, 1, 1));
    let inv = b.done();
    let policies = BTreeMap::from([("p".to_owned(), policy(&[], chrono_tz::UTC))]);
    let selections = [DatasetSelection::new(ds("tank/a"), "p")];
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
    let plan = plan_prune(&req, utc(2026, 1, 2, 0));
    assert!(plan.steps.is_empty());
}

#[test]
fn a_failed_root_is_noted_and_left_alone() {
    let mut b = Builder::new();
    b.dataset("tank").dataset("tank/a");
    for h in 0..3 {
        b.zsnap("tank/a", "hourly", utc(2026, 1, 1, h));
    }
    let inv = b.done();
    let policies = BTreeMap::from([("p".to_owned(), policy(&[], chrono_tz::UTC))]);
    let selections = [
        DatasetSelection::new(ds("tank"), "p").with_recursive(true),
        DatasetSelection::new(ds("pool2/x"), "p"),
    ];
    let failed = BTreeSet::from([ds("tank"), ds("pool2")]);
    let req =
        PruneRequest::new(Location::local(), &inv, &selections, &policies).with_failed(&failed);
    let plan = plan_prune(&req, utc(2026, 1, 2, 0));
    assert!(plan.steps.is_empty() && plan.decisions.is_empty());
    insta::assert_snapshot!(plan.render(), @r"
    plan for 2026-01-02T00:00:00Z: nothing to do

    notes:
      pool2: its listing failed; nothing in it or below it is pruned
      tank: its listing failed; nothing in it or below it is pruned
      tank/a: the listing of tank failed; not pruned
    ");
}

/// A policy scheduling `hourly` with these keep rules.
fn hourly_policy(rules: &[&str]) -> Policy {
    use zsnap_core::schedule::{LabelSchedule, Period, Schedule};
    let schedule = Schedule::new(vec![LabelSchedule::new(
        "hourly".parse().unwrap(),
        Period::Hourly,
    )])
    .unwrap();
    let mut p = policy(rules, chrono_tz::UTC);
    p.schedule = schedule;
    p
}

/// The reasons of the decision on `name`, as text (empty when destroyed).
/// Until when each reason of the decision about `name` keeps it.
fn untils_of(plan: &Plan, name: &str) -> Vec<Option<KeptUntil>> {
    let d = plan
        .decisions
        .iter()
        .find(|d| d.snapshot.to_string() == name)
        .unwrap();
    match &d.verdict {
        Verdict::Keep { reasons } | Verdict::Protect { reasons, .. } => {
            reasons.iter().map(|r| r.until).collect()
        }
        _ => Vec::new(),
    }
}

fn reasons_of(plan: &Plan, name: &str) -> Vec<String> {
    let d = plan
        .decisions
        .iter()
        .find(|d| d.snapshot.to_string() == name)
        .unwrap();
    match &d.verdict {
        Verdict::Keep { reasons } | Verdict::Protect { reasons, .. } => {
            reasons.iter().map(ToString::to_string).collect()
        }
        _ => Vec::new(),
    }
}

/// Issue 12, item 1: `zsnap snapshot --label pre-upgrade` at 02:05 survived the timer's
/// prune at 02:15 on no policy: label-agnostic rules never destroy an on-demand
/// snapshot; it is kept, with the reason, until destroyed by hand or expired.
#[test]
fn an_on_demand_snapshot_survives_label_agnostic_rules() {
    let mut b = Builder::new();
    b.dataset("tank/home");
    for h in 0..2 {
        b.zsnap("tank/home", "hourly", utc(2026, 11, 23, h));
    }
    b.snap(
        "tank/home",
        "zsnap_pre-upgrade_20261123T020500Z",
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 5, 0).unwrap(),
        true,
    );
    b.zsnap(
        "tank/home",
        "hourly",
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 10, 0).unwrap(),
    );
    let inv = b.done();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 2, 15, 0).unwrap();
    let selections = [DatasetSelection::new(ds("tank/home"), "p")];
    for rules in [
        &["last 1"][..],
        &["calendar hourly = 1"],
        &["labels hourly = 1"],
        &["grid 1x1h(keep=all)"],
        &["newer than 1m"],
        &["regex ^zsnap_"],
    ] {
        let policies = BTreeMap::from([("p".to_owned(), hourly_policy(rules))]);
        let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
        let plan = plan_prune(&req, now);
        let gone = destroyed(&plan);
        assert!(
            !gone.iter().any(|n| n.contains("pre-upgrade")),
            "{rules:?} destroyed {gone:?}"
        );
        assert_eq!(
            reasons_of(&plan, "tank/home@zsnap_pre-upgrade_20261123T020500Z"),
            ["taken on demand (label \"pre-upgrade\" is not scheduled) [kept until destroyed by hand or expired]"],
            "{rules:?}"
        );
        assert_eq!(
            untils_of(&plan, "tank/home@zsnap_pre-upgrade_20261123T020500Z"),
            [Some(KeptUntil::NoExpiry)]
        );
        assert_converges(&req, &plan, now);
    }

    // A rule naming the label decides for it.
    let policies = BTreeMap::from([(
        "p".to_owned(),
        hourly_policy(&["labels hourly = 5, pre-upgrade = 0"]),
    )]);
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
    let plan = plan_prune(&req, now);
    assert_eq!(
        destroyed(&plan),
        ["tank/home@zsnap_pre-upgrade_20261123T020500Z"]
    );
}

/// Issue 12, item 1: an on-demand snapshot with an expiry is kept until then and
/// destroyed after it (in a step saying so); a scheduled one is kept at least until
/// its expiry.
#[test]
fn expiries_keep_until_and_then_let_go() {
    let mut b = Builder::new();
    b.dataset("tank/home");
    let manual = "zsnap_pre-upgrade_20261123T020500Z";
    b.snap(
        "tank/home",
        manual,
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 5, 0).unwrap(),
        true,
    );
    b.edit("tank/home", manual, |s| {
        s.expires = Some("2026-12-23T02:05:00Z".to_owned());
    });
    b.zsnap("tank/home", "hourly", utc(2026, 11, 23, 3));
    b.edit("tank/home", "zsnap_hourly_20261123T030000Z", |s| {
        s.expires = Some("2026-11-30T00:00:00Z".to_owned());
    });
    b.zsnap("tank/home", "hourly", utc(2026, 11, 23, 4));
    let inv = b.done();
    let selections = [DatasetSelection::new(ds("tank/home"), "p")];
    let policies = BTreeMap::from([("p".to_owned(), hourly_policy(&["last 1"]))]);
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);

    let before = plan_prune(&req, utc(2026, 11, 24, 0));
    assert!(destroyed(&before).is_empty());
    assert_eq!(
        reasons_of(&before, &format!("tank/home@{manual}")),
        ["expiry set when taken [kept until 2026-12-23T02:05:00Z]"]
    );
    assert_eq!(
        reasons_of(&before, "tank/home@zsnap_hourly_20261123T030000Z"),
        ["expiry set when taken [kept until 2026-11-30T00:00:00Z]"]
    );
    // The time, for front-ends (`zsnap status`) that show until when.
    assert_eq!(
        untils_of(&before, &format!("tank/home@{manual}")),
        [Some(KeptUntil::Time {
            time: Utc.with_ymd_and_hms(2026, 12, 23, 2, 5, 0).unwrap()
        })]
    );
    assert_eq!(
        untils_of(&before, "tank/home@zsnap_hourly_20261123T030000Z"),
        [Some(KeptUntil::Time {
            time: utc(2026, 11, 30, 0)
        })]
    );

    let after = plan_prune(&req, utc(2026, 12, 24, 0));
    assert_eq!(
        destroyed(&after),
        [
            format!("tank/home@{manual}"),
            "tank/home@zsnap_hourly_20261123T030000Z".to_owned()
        ]
    );
    let Step::Destroy(first) = &after.steps[0] else {
        panic!("a destroy step")
    };
    assert_eq!(
        first.reason,
        "taken on demand (label \"pre-upgrade\" is not scheduled); expired at 2026-12-23T02:05:00Z"
    );
}

/// Issue 12, item 3: sanoid 2.x prunes only the types its config has settings for
/// (`prune_snapshots` walks the config's `*ly` keys), so an imported sanoid policy
/// keeps `autosnap_…_bogusly`.
#[test]
fn sanoid_mode_keeps_types_sanoid_has_no_settings_for() {
    let mut b = Builder::new();
    b.dataset("tank/ds");
    b.snap(
        "tank/ds",
        "autosnap_2025-04-28_00:00:10_bogusly",
        utc(2025, 4, 28, 0),
        false,
    );
    b.snap(
        "tank/ds",
        "autosnap_2025-04-28_00:00:11_daily",
        utc(2025, 4, 28, 1),
        false,
    );
    b.snap(
        "tank/ds",
        "autosnap_2025-04-29_00:00:11_daily",
        utc(2025, 4, 29, 0),
        false,
    );
    let inv = b.done();
    let selections = [DatasetSelection::new(ds("tank/ds"), "p")];
    let p = policy(
        &["sanoid daily = 1, hourly = 0, monthly = 0"],
        chrono_tz::UTC,
    )
    .with_adopt(vec![Recognizer::sanoid()]);
    let policies = BTreeMap::from([("p".to_owned(), p)]);
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
    let plan = plan_prune(&req, utc(2026, 1, 1, 0));
    assert_eq!(
        destroyed(&plan),
        ["tank/ds@autosnap_2025-04-28_00:00:11_daily"]
    );
    assert_eq!(
        reasons_of(&plan, "tank/ds@autosnap_2025-04-28_00:00:10_bogusly"),
        ["sanoid type \"bogusly\" [sanoid has no settings for it and never prunes it]"]
    );
}

/// Issue 12, item 1: a label declared with `on_demand = { pre-upgrade = "30d" }` expires
/// 30 days after its creation when the snapshot carries no expiry of its own.
#[test]
fn a_declared_on_demand_label_expires_after_its_span() {
    use zsnap_core::duration::Span;
    let mut b = Builder::new();
    b.dataset("tank/home");
    let manual = "zsnap_pre-upgrade_20261123T020500Z";
    b.snap(
        "tank/home",
        manual,
        Utc.with_ymd_and_hms(2026, 11, 23, 2, 5, 0).unwrap(),
        true,
    );
    b.zsnap("tank/home", "hourly", utc(2026, 11, 23, 4));
    let inv = b.done();
    let selections = [DatasetSelection::new(ds("tank/home"), "p")];
    let p = hourly_policy(&["last 1"]).with_on_demand(BTreeMap::from([(
        "pre-upgrade".parse().unwrap(),
        Some("30d".parse::<Span>().unwrap()),
    )]));
    let policies = BTreeMap::from([("p".to_owned(), p)]);
    let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
    let before = plan_prune(&req, utc(2026, 12, 1, 0));
    assert!(destroyed(&before).is_empty());
    assert_eq!(
        reasons_of(&before, &format!("tank/home@{manual}")),
        ["on_demand expiry of label \"pre-upgrade\" [kept until 2026-12-23T02:05:00Z]"]
    );
    let after = plan_prune(&req, utc(2026, 12, 24, 0));
    assert_eq!(destroyed(&after), [format!("tank/home@{manual}")]);
}

/// zrepl's `keep_sender: not_replicated`: what the target has not received stays, what
/// it has goes (but the newest common snapshot, which the safety rules protect).
#[test]
fn not_replicated_keeps_what_the_target_has_not_received() {
    use zsnap_core::replicate::{DatasetMapping, TargetProtection, TargetSide};
    let mut b = Builder::new();
    b.dataset("tank/a");
    let guids: Vec<Guid> = (0..5)
        .map(|h| b.zsnap("tank/a", "hourly", utc(2026, 1, 1, h)))
        .collect();
    let source = b.done();
    // The target received the first two (same guids).
    let mut t = Builder::new();
    t.dataset("bak/a");
    let mut target = t.done();
    for (i, g) in guids.iter().take(2).enumerate() {
        let src = &source.dataset(&ds("tank/a")).unwrap().snapshots[i];
        let s = Snapshot::new(src.name.clone(), *g, 10 + i as u64, src.creation);
        target.dataset_mut(&ds("bak/a")).unwrap().insert_snapshot(s);
    }
    let mapping = DatasetMapping::new(ds("tank/a"), ds("bak/a"));
    let protection = TargetProtection::of(
        &source,
        &[TargetSide::new("offsite", &mapping, Some(&target))],
    );
    let policies = BTreeMap::from([(
        "p".to_owned(),
        policy(&["not replicated to offsite"], chrono_tz::UTC),
    )]);
    let selections = [DatasetSelection::new(ds("tank/a"), "p")];
    let now = utc(2026, 1, 2, 0);
    let req = PruneRequest::new(Location::local(), &source, &selections, &policies)
        .with_protected(&protection.common)
        .with_received(&protection.received);
    let plan = plan_prune(&req, now);
    assert_eq!(destroyed(&plan), ["tank/a@zsnap_hourly_20260101T000000Z"]);
    insta::assert_snapshot!(reasons_of(&plan, "tank/a@zsnap_hourly_20260101T020000Z").join("\n"), @"not replicated to offsite [newer than the newest snapshot on offsite (createtxg 1003)]");
    // Without what the target received, the rule keeps nothing (only the newest and
    // the common snapshot stay).
    let bare = PruneRequest::new(Location::local(), &source, &selections, &policies)
        .with_protected(&protection.common);
    assert_eq!(destroyed(&plan_prune(&bare, now)).len(), 3);
    // A target that has nothing yet: everything stays.
    let empty = Inventory::new();
    let nothing = TargetProtection::of(
        &source,
        &[TargetSide::new("offsite", &mapping, Some(&empty))],
    );
    let req = PruneRequest::new(Location::local(), &source, &selections, &policies)
        .with_received(&nothing.received);
    assert!(destroyed(&plan_prune(&req, now)).is_empty());
    // A target that could not be listed: the dataset is not pruned at all.
    let unknown = TargetProtection::of(&source, &[TargetSide::new("offsite", &mapping, None)]);
    let req = PruneRequest::new(Location::local(), &source, &selections, &policies)
        .with_unknown_base(&unknown.unknown)
        .with_received(&unknown.received);
    assert!(destroyed(&plan_prune(&req, now)).is_empty());
}
