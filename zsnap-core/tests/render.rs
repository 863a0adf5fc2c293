//! `Plan::render` (the human table) and the JSON form of plans, on fixture plans.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::{
    AbortReceiveStep, BookmarkStep, Decision, DestroyBookmarkStep, DestroyStep, Guid, HoldStep,
    KeepReason, Location, Note, Plan, Protection, SendBase, SendSpec, SnapshotRef, SnapshotStep,
    Step, TransferStep, Verdict, MANAGED_PROPERTY,
};

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap()
}

fn r(name: &str, guid: u64) -> SnapshotRef {
    SnapshotRef::new(name.parse().unwrap(), Guid(guid))
}

fn decision(snapshot: &str, guid: u64, h: u32, verdict: Verdict) -> Decision {
    Decision::new(
        Location::local(),
        snapshot.parse().unwrap(),
        Guid(guid),
        at(h),
        verdict,
    )
}

fn keep(reasons: &[(&str, &str)]) -> Verdict {
    Verdict::Keep {
        reasons: reasons
            .iter()
            .map(|(rule, bucket)| KeepReason::new(*rule, *bucket))
            .collect(),
    }
}

/// One step of every kind, decisions for two datasets, and notes.
fn every_kind_of_step() -> Plan {
    let local = Location::local();
    let nas = Location("nas".to_owned());
    let mut p = Plan::new(at(15));
    p.steps.push(Step::Snapshot(SnapshotStep::new(
        local.clone(),
        vec![
            "tank/a@zsnap_hourly_20261123T150000Z".parse().unwrap(),
            "tank/b@zsnap_hourly_20261123T150000Z".parse().unwrap(),
        ],
        BTreeMap::from([(MANAGED_PROPERTY.to_owned(), "yes".to_owned())]),
        "hourly due",
    )));
    p.steps.push(Step::Destroy(DestroyStep::new(
        local.clone(),
        "tank/a".parse().unwrap(),
        vec![r("zsnap_hourly_20261123T100000Z", 10)],
        "policy \"default\" keeps them no longer",
    )));
    p.steps.push(Step::Hold(HoldStep::new(
        local.clone(),
        "tank/a@zsnap_hourly_20261123T140000Z".parse().unwrap(),
        Guid(14),
        "zsnap-replication",
        "pin the base for nas",
    )));
    p.steps.push(Step::Release(HoldStep::new(
        local.clone(),
        "tank/a@zsnap_hourly_20261123T110000Z".parse().unwrap(),
        Guid(11),
        "zsnap-replication",
        "no longer the base",
    )));
    p.steps.push(Step::Bookmark(BookmarkStep::new(
        local.clone(),
        "tank/a@zsnap_hourly_20261123T140000Z".parse().unwrap(),
        Guid(14),
        "tank/a#zsnap_hourly_20261123T140000Z".parse().unwrap(),
        "keep an incremental base",
    )));
    p.steps.push(Step::DestroyBookmark(DestroyBookmarkStep::new(
        local.clone(),
        "tank/a#old".parse().unwrap(),
        Guid(3),
        "superseded",
    )));
    let mut t = TransferStep::new(
        local.clone(),
        nas.clone(),
        "tank/a".parse().unwrap(),
        "backup/tank/a".parse().unwrap(),
        SendSpec::Incremental {
            base: SendBase::Snapshot {
                name: "zsnap_hourly_20261123T110000Z".parse().unwrap(),
                guid: Guid(11),
            },
            snapshot: r("zsnap_hourly_20261123T140000Z", 14),
            intermediates: true,
            expected: vec![
                r("zsnap_hourly_20261123T120000Z", 12),
                r("zsnap_hourly_20261123T130000Z", 13),
                r("zsnap_hourly_20261123T140000Z", 14),
            ],
        },
        "replicate to nas",
    );
    t.raw = true;
    t.estimated_bytes = Some(3 * 1024 * 1024 + 512 * 1024);
    p.steps.push(Step::Transfer(t));
    let mut t = TransferStep::new(
        local.clone(),
        local.clone(),
        "tank/b".parse().unwrap(),
        "tank/copy/b".parse().unwrap(),
        SendSpec::Full {
            snapshot: r("zsnap_hourly_20261123T140000Z", 24),
        },
        "first copy",
    );
    t.recv.force = true;
    p.steps.push(Step::Transfer(t));
    p.steps.push(Step::Transfer(TransferStep::new(
        local.clone(),
        nas.clone(),
        "tank/c".parse().unwrap(),
        "backup/tank/c".parse().unwrap(),
        SendSpec::Resume {
            token: "1-abc".to_owned(),
            snapshot: None,
        },
        "resume interrupted receive",
    )));
    p.steps.push(Step::Transfer(TransferStep::new(
        local.clone(),
        nas.clone(),
        "tank/c".parse().unwrap(),
        "backup/tank/c".parse().unwrap(),
        SendSpec::Incremental {
            base: SendBase::Bookmark {
                name: "b1".parse().unwrap(),
                guid: Guid(31),
            },
            snapshot: r("s2", 32),
            intermediates: false,
            expected: vec![],
        },
        "",
    )));
    p.steps.push(Step::AbortReceive(AbortReceiveStep::new(
        nas,
        "backup/tank/d".parse().unwrap(),
        "its base is gone",
    )));

    // Decisions, deliberately not sorted by dataset.
    p.decisions.push(decision(
        "tank/b@zsnap_hourly_20261123T140000Z",
        24,
        14,
        Verdict::Protect {
            protections: vec![Protection::Newest],
            reasons: vec![KeepReason::new("hourly = 24", "2026-11-23T15:00+01:00")],
        },
    ));
    p.decisions.push(decision(
        "tank/a@zsnap_hourly_20261123T100000Z",
        10,
        10,
        Verdict::Destroy,
    ));
    p.decisions.push(decision(
        "tank/a@autosnap_2026-11-23_11:00:00_hourly",
        11,
        11,
        Verdict::Protect {
            protections: vec![
                Protection::Held { userrefs: 1 },
                Protection::Cloned {
                    clones: vec!["tank/clone".parse().unwrap()],
                },
                Protection::CommonWithTarget {
                    target: "nas:backup/tank/a".to_owned(),
                },
            ],
            reasons: vec![],
        },
    ));
    p.decisions.push(decision(
        "tank/a@manual",
        12,
        12,
        Verdict::Protect {
            protections: vec![Protection::Unmanaged],
            reasons: vec![],
        },
    ));
    p.decisions.push(decision(
        "tank/a@zsnap_hourly_20261123T140000Z",
        14,
        14,
        keep(&[
            ("daily = 7", "2026-11-23"),
            ("hourly = 24", "2026-11-23T15:00+01:00"),
        ]),
    ));
    p.notes.push(Note::new(
        Some("tank/d".parse().unwrap()),
        "listing failed; not pruned",
    ));
    p.notes
        .push(Note::new(None, "2 datasets adopted sanoid snapshots"));
    p
}

#[test]
fn every_kind_of_step_renders() {
    insta::assert_snapshot!("every_kind_of_step", every_kind_of_step().render());
}

#[test]
fn long_destroy_lists_are_summarised() {
    let mut p = Plan::new(at(15));
    let snaps: Vec<SnapshotRef> = (0..40)
        .map(|i| r(&format!("zsnap_hourly_202611{:02}T000000Z", i % 30 + 1), i))
        .collect();
    p.steps.push(Step::Destroy(DestroyStep::new(
        Location::local(),
        "tank/with space".parse().unwrap(),
        snaps,
        "policy \"default\" keeps them no longer",
    )));
    p.steps.push(Step::Snapshot(SnapshotStep::new(
        Location::local(),
        (0..7)
            .map(|i| format!("tank/d{i}@n").parse().unwrap())
            .collect(),
        BTreeMap::new(),
        "daily due",
    )));
    let text = p.render();
    assert!(text.contains("… and 35 more"), "{text}");
    assert!(text.contains("… and 2 more"), "{text}");
    insta::assert_snapshot!("long_destroy_lists", text);
}

#[test]
fn a_plan_with_nothing_to_do_says_so() {
    let mut p = Plan::new(at(15));
    p.decisions.push(decision(
        "tank/a@only",
        1,
        3,
        Verdict::Protect {
            protections: vec![Protection::Newest],
            reasons: vec![],
        },
    ));
    insta::assert_snapshot!(p.render(), @r"
    plan for 2026-11-23T15:00:00Z: nothing to do

    decisions:
      tank/a (at local): 0 kept, 1 protected, 0 destroyed
        protect  only  2026-11-23T03:00:00Z  protected: newest snapshot of the dataset
    ");
    let mut p = Plan::default();
    p.notes.push(Note::new(None, "no dataset selected"));
    insta::assert_snapshot!(p.render(), @r"
    plan for an unknown time: nothing to do

    notes:
      no dataset selected
    ");
}

#[test]
fn rendering_is_deterministic() {
    let p = every_kind_of_step();
    assert_eq!(p.render(), p.clone().render());
    // Decisions are grouped by dataset whatever their order in the plan.
    let mut q = p.clone();
    q.decisions.rotate_left(1);
    let text = q.render();
    let a = text.find("tank/a (at local)").unwrap();
    let b = text.find("tank/b (at local)").unwrap();
    assert!(a < b);
}

#[test]
fn plan_json_is_serde_of_the_plan() {
    let mut p = Plan::new(at(15));
    p.steps.push(Step::Destroy(DestroyStep::new(
        Location::local(),
        "tank/a".parse().unwrap(),
        vec![r("zsnap_hourly_20261123T100000Z", 10)],
        "policy \"default\" keeps it no longer",
    )));
    p.decisions.push(decision(
        "tank/a@zsnap_hourly_20261123T100000Z",
        10,
        10,
        Verdict::Destroy,
    ));
    p.decisions.push(decision(
        "tank/a@zsnap_hourly_20261123T140000Z",
        14,
        14,
        Verdict::Protect {
            protections: vec![Protection::Newest, Protection::Held { userrefs: 2 }],
            reasons: vec![KeepReason::new("hourly = 24", "2026-11-23T15:00+01:00")],
        },
    ));
    p.notes.push(Note::new(
        Some("tank/b".parse().unwrap()),
        "listing failed; not pruned",
    ));
    insta::assert_json_snapshot!("small_plan_json", p);
    let back: Plan = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}
