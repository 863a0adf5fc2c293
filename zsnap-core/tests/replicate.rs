//! `plan_replication`: scenarios, rendered plans and error messages. Every plan that is
//! not an error is simulated on both inventories, and planning again on the simulated
//! result must give an empty plan.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::replicate::{
    common_snapshots, newest_common, plan_replication, CommonBase, Cursor, DatasetMapping, RawMode,
    ReplicationError, ReplicationRequest, SnapshotFilter,
};
use zsnap_core::{
    Bookmark, Dataset, DatasetKind, DatasetName, Guid, Inventory, Location, Plan, SendBase,
    SendSpec, Snapshot, Step,
};

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid dataset name in test")
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

fn now() -> DateTime<Utc> {
    t(100_000)
}

fn snap(name: &str, guid: u64, txg: u64) -> Snapshot {
    Snapshot::new(name.parse().unwrap(), Guid(guid), txg, t(txg as i64))
}

fn src_loc() -> Location {
    Location("src".to_owned())
}

fn dst_loc() -> Location {
    Location("dst".to_owned())
}

/// A dataset with snapshots `(name, guid)`, createtxgs 10, 20, 30… in that order.
fn dataset(name: &str, snaps: &[(&str, u64)]) -> Dataset {
    let mut d = Dataset::new(ds(name), DatasetKind::Filesystem, Guid(1));
    for (i, (n, g)) in snaps.iter().enumerate() {
        d.insert_snapshot(snap(n, *g, 10 * (i as u64 + 1)));
    }
    d
}

fn inventory(datasets: Vec<Dataset>) -> Inventory {
    let mut inv = Inventory::new();
    for d in datasets {
        inv.insert(d);
    }
    inv.validate().unwrap();
    inv
}

/// `tank/a` with s1…s5 (guids 1…5).
fn source() -> Inventory {
    inventory(vec![dataset(
        "tank/a",
        &[("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4), ("s5", 5)],
    )])
}

/// The target `backup` (always present) plus `datasets`.
fn target(datasets: Vec<Dataset>) -> Inventory {
    let mut all = vec![dataset("backup", &[])];
    all.extend(datasets);
    inventory(all)
}

fn request<'a>(src: &'a Inventory, dst: &'a Inventory) -> ReplicationRequest<'a> {
    ReplicationRequest::new(
        src_loc(),
        src,
        dst_loc(),
        "offsite",
        dst,
        vec![DatasetMapping::new(ds("tank/a"), ds("backup/a"))],
    )
}

/// Plans, simulates the plan on both sides, and checks that planning again on the
/// result (with the cursor holds the plan placed, when they were known) is empty.
fn plan_and_converge(req: &ReplicationRequest<'_>) -> (Plan, Inventory, Inventory) {
    let plan = plan_replication(req, now()).expect("a plan");
    let invs = BTreeMap::from([
        (req.source_location.clone(), req.source.clone()),
        (req.target_location.clone(), req.target.clone()),
    ]);
    let after = plan
        .simulate_at(&invs)
        .unwrap_or_else(|e| panic!("the plan simulates: {e}\n{}", plan.render()));
    let src = after[&req.source_location].clone();
    let dst = after[&req.target_location].clone();
    let mut again = req.clone();
    again.source = &src;
    again.target = &dst;
    again.stale_tokens.clear();
    again.resume_guids.clear();
    if let Some(held) = &mut again.cursor_holds {
        for step in &plan.steps {
            match step {
                Step::Hold(h) => {
                    held.insert(h.guid);
                }
                Step::Release(h) => {
                    held.remove(&h.guid);
                }
                _ => {}
            }
        }
    }
    let second = plan_replication(&again, now()).expect("a second plan");
    assert!(
        second.is_empty(),
        "planning again is not empty:\n{}\nafter:\n{}",
        second.render(),
        plan.render()
    );
    (plan, src, dst)
}

fn transfers(plan: &Plan) -> Vec<&SendSpec> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(&t.send),
            _ => None,
        })
        .collect()
}

fn guids(inv: &Inventory, name: &str) -> Vec<u64> {
    inv.dataset(&ds(name))
        .map(|d| d.snapshots.iter().map(|s| s.guid.0).collect())
        .unwrap_or_default()
}

fn err(req: &ReplicationRequest<'_>) -> ReplicationError {
    plan_replication(req, now()).expect_err("an error")
}

#[test]
fn missing_target_gets_a_full_send_then_one_range() {
    let src = source();
    let dst = target(vec![]);
    let req = request(&src, &dst);
    let (plan, src_after, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 3 steps

        steps:
          1  src → dst  transfer full  tank/a@s1 → backup/a  — backup/a does not exist: full send of @s1, the oldest snapshot the target wants
          2  src → dst  transfer -I    tank/a@s1 .. @s5 → backup/a (4 snapshots)  — incremental from @s1 up to @s5, every snapshot between them wanted
          3  src        hold           tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
    assert_eq!(
        src_after
            .snapshot(&"tank/a@s5".parse().unwrap())
            .unwrap()
            .userrefs,
        1
    );
    let Step::Transfer(first) = &plan.steps[0] else {
        panic!("a transfer first")
    };
    assert!(first.recv.unmounted && first.recv.resumable && !first.recv.force);
    assert_eq!(first.recv.exclude_props, ["mountpoint"]);
    assert!(!first.raw);
}

#[test]
fn common_base_gives_one_range_or_one_incremental() {
    let src = source();
    let dst = target(vec![dataset(
        "backup/a",
        &[("s1", 1), ("s2", 2), ("s3", 3)],
    )]);
    let (plan, _, dst_after) = plan_and_converge(&request(&src, &dst));
    let sends = transfers(&plan);
    assert_eq!(sends.len(), 1);
    let SendSpec::Incremental {
        base,
        snapshot,
        intermediates,
        expected,
    } = sends[0]
    else {
        panic!("an incremental")
    };
    assert_eq!(base.guid(), Guid(3));
    assert_eq!(snapshot.guid, Guid(5));
    assert!(intermediates);
    assert_eq!(
        expected.iter().map(|r| r.guid.0).collect::<Vec<_>>(),
        [4, 5]
    );
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);

    let dst = target(vec![dataset(
        "backup/a",
        &[("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4)],
    )]);
    let (plan, _, _) = plan_and_converge(&request(&src, &dst));
    let sends = transfers(&plan);
    assert!(matches!(
        sends[..],
        [SendSpec::Incremental { intermediates: false, ref expected, .. }] if expected.is_empty()
    ));
}

#[test]
fn up_to_date_target_only_gets_its_cursor() {
    let src = source();
    let dst = target(vec![dataset(
        "backup/a",
        &[("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4), ("s5", 5)],
    )]);
    let (plan, _, _) = plan_and_converge(&request(&src, &dst));
    assert!(transfers(&plan).is_empty());
    assert!(matches!(&plan.steps[..], [Step::Hold(h)] if h.guid == Guid(5)));
}

fn odd_only(_: &Dataset, s: &Snapshot) -> bool {
    s.guid.0 % 2 == 1
}

#[test]
fn a_filtered_target_gets_only_what_it_wants_by_i_steps() {
    let src = source();
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.filter = Some(SnapshotFilter(&odd_only));
    let (plan, _, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 4 steps

        steps:
          1  src → dst  transfer full  tank/a@s1 → backup/a  — backup/a does not exist: full send of @s1, the oldest snapshot the target wants
          2  src → dst  transfer -i    tank/a@s1 .. @s3 → backup/a  — incremental from @s1 to @s3, skipping 1 snapshot the target does not want
          3  src → dst  transfer -i    tank/a@s3 .. @s5 → backup/a  — incremental from @s3 to @s5, skipping 1 snapshot the target does not want
          4  src        hold           tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 3, 5]);
}

#[test]
fn wanted_runs_are_ranges_and_gaps_are_single_steps() {
    // s1..s8; the target wants all but s4: -I s1 s3 (from the base s1), -i s3 s5, -I s5 s8
    let names: Vec<(String, u64)> = (1..=8).map(|i| (format!("s{i}"), i)).collect();
    let refs: Vec<(&str, u64)> = names.iter().map(|(n, g)| (n.as_str(), *g)).collect();
    let src = inventory(vec![dataset("tank/a", &refs)]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1)])]);
    let mut req = request(&src, &dst);
    let not_s4 = |_: &Dataset, s: &Snapshot| s.guid != Guid(4);
    req.filter = Some(SnapshotFilter(&not_s4));
    let (plan, _, dst_after) = plan_and_converge(&req);
    let shape: Vec<(u64, u64, bool)> = transfers(&plan)
        .iter()
        .map(|s| match s {
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates,
                ..
            } => (base.guid().0, snapshot.guid.0, *intermediates),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(shape, [(1, 3, true), (3, 5, false), (5, 8, true)]);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 5, 6, 7, 8]);
}

#[test]
fn nothing_older_than_the_common_base_is_sent() {
    // The target has s3 only; s1 and s2 are wanted but older: never sent.
    let src = source();
    let dst = target(vec![dataset("backup/a", &[("s3", 3)])]);
    let (plan, _, dst_after) = plan_and_converge(&request(&src, &dst));
    assert_eq!(guids(&dst_after, "backup/a"), [3, 4, 5]);
    assert_eq!(transfers(&plan).len(), 1);
}

#[test]
fn a_pruned_base_is_sent_from_its_bookmark() {
    let mut a = dataset("tank/a", &[("s4", 4), ("s5", 5), ("s6", 6)]);
    a.snapshots[0].createtxg = 40;
    a.snapshots[1].createtxg = 50;
    a.snapshots[2].createtxg = 60;
    a.insert_bookmark(Bookmark::new("s3".parse().unwrap(), Guid(3), 30, t(30)));
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s2", 2), ("s3", 3)])]);
    let mut req = request(&src, &dst);
    req.options.cursor = Cursor::Bookmark;
    let (plan, src_after, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 3 steps

        steps:
          1  src → dst  transfer -i  tank/a#s3 .. @s4 → backup/a  — incremental from bookmark #s3 (the snapshot is gone on the source) to @s4
          2  src → dst  transfer -I  tank/a@s4 .. @s6 → backup/a (2 snapshots)  — incremental from @s4 up to @s6, every snapshot between them wanted
          3  src        bookmark     tank/a@s6 → tank/a#zsnap_offsite_cursor_6  — mark @s6, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [2, 3, 4, 5, 6]);
    let bms: Vec<_> = src_after
        .dataset(&ds("tank/a"))
        .unwrap()
        .bookmarks
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(bms, ["s3", "zsnap_offsite_cursor_6"]);
}

#[test]
fn bookmark_cursor_replaces_the_previous_one_and_survives_pruning() {
    let mut a = dataset("tank/a", &[("s1", 1), ("s2", 2)]);
    a.insert_bookmark(Bookmark::new(
        "zsnap_offsite_cursor_1".parse().unwrap(),
        Guid(1),
        10,
        t(10),
    ));
    // another target's cursor and a user bookmark are left alone
    a.insert_bookmark(Bookmark::new(
        "zsnap_other_cursor_1".parse().unwrap(),
        Guid(1),
        10,
        t(10),
    ));
    a.insert_bookmark(Bookmark::new("mine".parse().unwrap(), Guid(1), 10, t(10)));
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1)])]);
    let mut req = request(&src, &dst);
    req.options.cursor = Cursor::Bookmark;
    let (plan, src_after, _) = plan_and_converge(&req);
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Transfer(_) => "transfer",
            Step::Bookmark(_) => "bookmark",
            Step::DestroyBookmark(_) => "destroy bookmark",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["transfer", "bookmark", "destroy bookmark"]);
    let bms: Vec<_> = src_after
        .dataset(&ds("tank/a"))
        .unwrap()
        .bookmarks
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(
        bms,
        ["zsnap_other_cursor_1", "mine", "zsnap_offsite_cursor_2"]
    );

    // the source prunes s2 (the cursor bookmark keeps the base), takes s3: -i #cursor s3
    let mut a = src_after.dataset(&ds("tank/a")).unwrap().clone();
    a.snapshots.retain(|s| s.guid != Guid(2));
    a.insert_snapshot(snap("s3", 3, 1_000));
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1), ("s2", 2)])]);
    let mut req = request(&src, &dst);
    req.options.cursor = Cursor::Bookmark;
    let (plan, _, dst_after) = plan_and_converge(&req);
    assert!(matches!(
        transfers(&plan)[..],
        [SendSpec::Incremental {
            base: SendBase::Bookmark { .. },
            ..
        }]
    ));
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3]);
}

#[test]
fn hold_cursor_moves_and_releases_the_previous_hold() {
    let mut a = dataset("tank/a", &[("s1", 1), ("s2", 2), ("s3", 3)]);
    a.snapshots[0].userrefs = 1; // the cursor the last run left on s1
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1)])]);
    let (plan, src_after, _) = plan_and_converge(&request(&src, &dst));
    let holds: Vec<(&str, u64)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Hold(h) => Some(("hold", h.guid.0)),
            Step::Release(h) => Some(("release", h.guid.0)),
            _ => None,
        })
        .collect();
    assert_eq!(holds, [("hold", 3), ("release", 1)]);
    let refs: Vec<u64> = src_after
        .dataset(&ds("tank/a"))
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.userrefs)
        .collect();
    assert_eq!(refs, [0, 0, 1]);
}

#[test]
fn known_cursor_holds_are_released_wherever_they_are() {
    // A run that died after its transfers left the hold on s1, though s2 is common.
    let mut a = dataset("tank/a", &[("s1", 1), ("s2", 2), ("s3", 3)]);
    a.snapshots[0].userrefs = 1;
    a.snapshots[1].userrefs = 1; // someone else's hold
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1), ("s2", 2)])]);
    let mut req = request(&src, &dst);
    req.cursor_holds = Some(BTreeSet::from([Guid(1)]));
    let (plan, src_after, _) = plan_and_converge(&req);
    let releases: Vec<u64> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Release(h) => Some(h.guid.0),
            _ => None,
        })
        .collect();
    assert_eq!(releases, [1]);
    let refs: Vec<u64> = src_after
        .dataset(&ds("tank/a"))
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.userrefs)
        .collect();
    assert_eq!(refs, [0, 1, 1]);
}

#[test]
fn switching_to_bookmark_cursor_releases_known_holds() {
    let mut a = dataset("tank/a", &[("s1", 1), ("s2", 2)]);
    a.snapshots[1].userrefs = 1;
    let src = inventory(vec![a]);
    let dst = target(vec![dataset("backup/a", &[("s1", 1), ("s2", 2)])]);
    let mut req = request(&src, &dst);
    req.options.cursor = Cursor::Bookmark;
    req.cursor_holds = Some(BTreeSet::from([Guid(2)]));
    let (plan, _, _) = plan_and_converge(&req);
    assert!(
        matches!(&plan.steps[..], [Step::Bookmark(b), Step::Release(r)] if b.guid == Guid(2) && r.guid == Guid(2))
    );
}

#[test]
fn unknown_resume_is_planned_alone() {
    let src = source();
    let mut a = dataset("backup/a", &[("s1", 1)]);
    a.props.receive_resume_token = Some("1-abc-def".to_owned());
    let dst = target(vec![a]);
    let req = request(&src, &dst);
    let plan = plan_replication(&req, now()).unwrap();
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 1 step

        steps:
          1  src → dst  transfer resume  tank/a → backup/a  — resume the interrupted receive into backup/a

        notes:
          backup/a: only the interrupted receive is resumed: which snapshot it brings is unknown (no decoded resume token), so the rest of tank/a is planned on the next run
        "#);
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan.simulate_at(&invs).unwrap();
    assert_eq!(guids(&after[&dst_loc()], "backup/a"), [1]);
    assert!(after[&dst_loc()]
        .dataset(&ds("backup/a"))
        .unwrap()
        .props
        .receive_resume_token
        .is_none());
}

#[test]
fn known_resume_is_followed_by_the_rest() {
    let src = source();
    let mut a = dataset("backup/a", &[("s1", 1)]);
    a.props.receive_resume_token = Some("1-abc-def".to_owned());
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.resume_guids.insert(ds("backup/a"), Guid(2));
    let (plan, _, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 3 steps

        steps:
          1  src → dst  transfer resume  tank/a@s2 → backup/a  — resume the interrupted receive of @s2 into backup/a
          2  src → dst  transfer -I      tank/a@s2 .. @s5 → backup/a (3 snapshots)  — incremental from @s2 up to @s5, every snapshot between them wanted
          3  src        hold             tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
}

#[test]
fn resume_of_a_new_dataset() {
    let src = source();
    let mut a = dataset("backup/a", &[]);
    a.props.receive_resume_token = Some("1-abc-def".to_owned());
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.resume_guids.insert(ds("backup/a"), Guid(1));
    let (plan, _, dst_after) = plan_and_converge(&req);
    assert!(matches!(
        transfers(&plan)[..],
        [
            SendSpec::Resume {
                snapshot: Some(_),
                ..
            },
            SendSpec::Incremental { .. }
        ]
    ));
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
}

#[test]
fn stale_token_is_aborted_then_replanned() {
    let src = source();
    let mut a = dataset("backup/a", &[("s1", 1)]);
    a.props.receive_resume_token = Some("1-abc-def".to_owned());
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.stale_tokens.insert(ds("backup/a"));
    let (plan, _, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 3 steps

        steps:
          1  dst        abort receive  backup/a  — abort the interrupted receive into backup/a: an earlier resume of it failed, so its resume token is stale
          2  src → dst  transfer -I    tank/a@s1 .. @s5 → backup/a (4 snapshots)  — incremental from @s1 up to @s5, every snapshot between them wanted
          3  src        hold           tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send

        notes:
          backup/a: the interrupted receive is aborted and replication planned afresh: an earlier resume of it failed, so its resume token is stale
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);

    // a stale interrupted full receive: the abort removes the dataset; full send again
    let mut a = dataset("backup/a", &[]);
    a.props.receive_resume_token = Some("1-abc-def".to_owned());
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.resume_guids.insert(ds("backup/a"), Guid(99)); // gone on the source
    let (plan, _, dst_after) = plan_and_converge(&req);
    assert!(matches!(plan.steps[0], Step::AbortReceive(_)));
    assert!(matches!(transfers(&plan)[0], SendSpec::Full { .. }));
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
}

#[test]
fn diverged_target_is_an_error_naming_the_snapshots() {
    let src = source();
    let dst = target(vec![dataset(
        "backup/a",
        &[("s1", 1), ("s2", 2), ("local1", 91), ("local2", 92)],
    )]);
    let e = err(&request(&src, &dst));
    insta::assert_snapshot!(e, @r#"target backup/a has diverged from tank/a: after @s2, the newest snapshot they have in common, the target has 2 snapshots the source does not: @local1, @local2 (allow rollback for target "offsite" to destroy them)"#);
    assert!(matches!(
        e,
        ReplicationError::Diverged { common: Some(ref c), ref newer, .. }
            if c.as_str() == "s2" && newer.len() == 2
    ));

    let many: Vec<(String, u64)> = (0..8).map(|i| (format!("x{i}"), 100 + i)).collect();
    let refs: Vec<(&str, u64)> = many.iter().map(|(n, g)| (n.as_str(), *g)).collect();
    let dst = target(vec![dataset("backup/a", &refs)]);
    insta::assert_snapshot!(err(&request(&src, &dst)), @r#"target backup/a has nothing in common with tank/a but has 8 snapshots: @x0, @x1, @x2, @x3, @x4 and 3 more (allow rollback for target "offsite" to destroy them)"#);

    let dst = target(vec![dataset("backup/a", &[("s1", 1), ("local", 91)])]);
    insta::assert_snapshot!(err(&request(&src, &dst)), @r#"target backup/a has diverged from tank/a: after @s1, the newest snapshot they have in common, the target has 1 snapshot the source does not: @local (allow rollback for target "offsite" to destroy it)"#);
}

#[test]
fn allowed_rollback_forces_the_first_receive_only() {
    let src = source();
    let dst = target(vec![dataset(
        "backup/a",
        &[("s1", 1), ("s2", 2), ("local1", 91)],
    )]);
    let mut req = request(&src, &dst);
    req.filter = Some(SnapshotFilter(&odd_only));
    req.options.allow_rollback = true;
    let (plan, _, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 3 steps

        steps:
          1  src → dst  transfer -i  tank/a@s2 .. @s3 → backup/a [force (-F)]  — incremental from @s2 to @s3; rolls backup/a back to @s2, destroying @local1 (rollback allowed for target "offsite")
          2  src → dst  transfer -i  tank/a@s3 .. @s5 → backup/a  — incremental from @s3 to @s5, skipping 1 snapshot the target does not want
          3  src        hold         tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    let forced: Vec<bool> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(t.recv.force),
            _ => None,
        })
        .collect();
    assert_eq!(forced, [true, false]);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 5]);
}

#[test]
fn allowed_rollback_with_nothing_in_common_destroys_then_sends_in_full() {
    let src = source();
    let dst = target(vec![dataset("backup/a", &[("x", 91)])]);
    let mut req = request(&src, &dst);
    req.options.allow_rollback = true;
    let (plan, _, dst_after) = plan_and_converge(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-09-22T18:00:00Z: 4 steps

        steps:
          1  dst        destroy        backup/a@x  — backup/a has nothing in common with tank/a: destroy its snapshots so a full send can overwrite it (rollback allowed for target "offsite")
          2  src → dst  transfer full  tank/a@s1 → backup/a [force (-F)]  — full send of @s1, the oldest snapshot the target wants
          3  src → dst  transfer -I    tank/a@s1 .. @s5 → backup/a (4 snapshots)  — incremental from @s1 up to @s5, every snapshot between them wanted
          4  src        hold           tank/a@s5 (tag "zsnap:offsite")  — keep @s5, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
}

#[test]
fn rollback_of_a_held_snapshot_is_refused() {
    let src = source();
    let mut a = dataset("backup/a", &[("s1", 1), ("local", 91)]);
    a.snapshots[1].userrefs = 1;
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.options.allow_rollback = true;
    insta::assert_snapshot!(err(&req), @"target backup/a must be rolled back to receive tank/a, but its snapshot @local is held or has clones");
}

#[test]
fn existing_target_without_snapshots_needs_rollback() {
    let src = source();
    let dst = target(vec![dataset("backup/a", &[])]);
    let req = request(&src, &dst);
    insta::assert_snapshot!(err(&req), @r#"target backup/a exists but has no snapshots; receiving tank/a into it would overwrite it (allow rollback for target "offsite" to do so, or destroy it)"#);
    let mut req = request(&src, &dst);
    req.options.allow_rollback = true;
    let (plan, _, dst_after) = plan_and_converge(&req);
    assert!(
        matches!(&plan.steps[0], Step::Transfer(t) if t.recv.force && matches!(t.send, SendSpec::Full { .. }))
    );
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3, 4, 5]);
}

fn encrypted(mut d: Dataset) -> Dataset {
    d.props.encryption = Some("aes-256-gcm".to_owned());
    d
}

#[test]
fn encrypted_sources_are_sent_raw_and_never_decrypted() {
    let src = inventory(vec![encrypted(dataset("tank/a", &[("s1", 1), ("s2", 2)]))]);
    let dst = target(vec![]);
    let (plan, _, dst_after) = plan_and_converge(&request(&src, &dst));
    assert!(plan
        .steps
        .iter()
        .all(|s| !matches!(s, Step::Transfer(t) if !t.raw)));
    assert!(dst_after
        .dataset(&ds("backup/a"))
        .unwrap()
        .props
        .is_encrypted());

    let mut req = request(&src, &dst);
    req.options.raw = RawMode::Never;
    insta::assert_snapshot!(err(&req), @r#"source tank/a is encrypted and sends to target "offsite" are configured not raw; zsnap never sends an encrypted dataset decrypted (allow raw sends)"#);

    let mut plain = dataset("backup/a", &[("s1", 1)]);
    plain.props.encryption = Some("off".to_owned());
    let dst = target(vec![plain]);
    insta::assert_snapshot!(err(&request(&src, &dst)), @"source tank/a is encrypted but its copy backup/a is not; raw incremental streams cannot be received into it (replicate to a new target dataset)");

    let dst = target(vec![encrypted(dataset("backup/a", &[("x", 9)]))]);
    let mut req = request(&src, &dst);
    req.options.allow_rollback = true;
    insta::assert_snapshot!(err(&req), @"target backup/a would have to be overwritten by a full receive of tank/a, which ZFS refuses when either is encrypted (destroy backup/a first)");
}

#[test]
fn raw_always_sends_plain_datasets_raw() {
    let src = source();
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.options.raw = RawMode::Always;
    let (plan, _, _) = plan_and_converge(&req);
    assert!(plan
        .steps
        .iter()
        .all(|s| !matches!(s, Step::Transfer(t) if !t.raw)));
}

#[test]
fn volumes_are_not_given_filesystem_properties() {
    let mut v = dataset("tank/a", &[("s1", 1)]);
    v.kind = DatasetKind::Volume;
    let src = inventory(vec![v]);
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.options.exclude_props = vec!["mountpoint".to_owned(), "compression".to_owned()];
    req.options
        .set_props
        .insert("readonly".to_owned(), "on".to_owned());
    let plan = plan_replication(&req, now()).unwrap();
    let Step::Transfer(t) = &plan.steps[0] else {
        panic!("a transfer")
    };
    assert_eq!(t.recv.exclude_props, ["compression"]);
    assert_eq!(t.recv.set_props["readonly"], "on");
}

#[test]
fn recursive_mappings_go_parents_first_and_skip_exclusions() {
    let src = inventory(vec![
        dataset("tank", &[("r1", 1)]),
        dataset("tank/a", &[("a1", 2)]),
        dataset("tank/a/x", &[("x1", 3)]),
        dataset("tank/b", &[]),
        dataset("tank/b/c", &[("c1", 4)]),
        dataset("tank/skip", &[("k1", 5)]),
        dataset("tank/skip/deep", &[("d1", 6)]),
        dataset("tank/a b", &[("ab1", 7)]),
    ]);
    let dst = inventory(vec![dataset("backup", &[])]);
    let mut req = request(&src, &dst);
    req.mappings = vec![DatasetMapping::recursive(
        ds("tank"),
        ds("backup/tank"),
        vec![ds("tank/skip")],
    )];
    let (plan, _, dst_after) = plan_and_converge(&req);
    let targets: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(t.target.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            "backup/tank",
            "backup/tank/a",
            "backup/tank/a b",
            "backup/tank/a/x"
        ]
    );
    insta::assert_snapshot!(plan.notes.iter().map(|n| format!("{}: {}", n.dataset.as_ref().unwrap(), n.message)).collect::<Vec<_>>().join("\n"), @r#"
        backup/tank/b: not created: tank/b has no snapshot the target wants
        backup/tank/b/c: tank/b/c is not replicated: the parent backup/tank/b does not exist on the target and this plan does not create it
        "#);
    assert!(dst_after.dataset(&ds("backup/tank/skip")).is_none());
}

#[test]
fn mapping_errors() {
    let src = source();
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.mappings = vec![DatasetMapping::new(ds("tank/nope"), ds("backup/a"))];
    insta::assert_snapshot!(err(&req), @"source dataset tank/nope is not in the source inventory");
    req.mappings = vec![
        DatasetMapping::new(ds("tank/a"), ds("backup/a")),
        DatasetMapping::new(ds("tank/a"), ds("backup/b")),
    ];
    insta::assert_snapshot!(err(&req), @"source dataset tank/a is mapped twice, to backup/a and to backup/b");
    let two = inventory(vec![dataset("tank/a", &[]), dataset("tank/b", &[])]);
    let mut req = request(&two, &dst);
    req.mappings = vec![
        DatasetMapping::new(ds("tank/a"), ds("backup/x")),
        DatasetMapping::new(ds("tank/b"), ds("backup/x")),
    ];
    insta::assert_snapshot!(err(&req), @"source datasets tank/a and tank/b both map to target backup/x");
    let long = format!("backup/{}", "x".repeat(240));
    let src = inventory(vec![
        dataset("tank/a", &[]),
        dataset("tank/a/child-with-a-long-name", &[]),
    ]);
    let mut req = request(&src, &dst);
    req.mappings = vec![DatasetMapping::recursive(ds("tank/a"), ds(&long), vec![])];
    insta::assert_snapshot!(err(&req), @"source dataset tank/a/child-with-a-long-name cannot be received below backup/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

#[test]
fn bad_target_names_for_cursor_bookmarks() {
    let src = source();
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.target_name = "off/site".to_owned();
    req.options.cursor = Cursor::Bookmark;
    insta::assert_snapshot!(err(&req), @r#"the cursor bookmark of tank/a for target "off/site" would have an invalid name"#);
}

#[test]
fn same_location_pool_to_pool() {
    let mut inv = source();
    inv.insert(dataset("backup", &[]));
    let req = ReplicationRequest::new(
        Location::local(),
        &inv,
        Location::local(),
        "local-backup",
        &inv,
        vec![DatasetMapping::new(ds("tank/a"), ds("backup/a"))],
    );
    let plan = plan_replication(&req, now()).unwrap();
    let after = plan.simulate(&inv).unwrap();
    assert_eq!(guids(&after, "backup/a"), [1, 2, 3, 4, 5]);
    let mut again = req.clone();
    again.source = &after;
    again.target = &after;
    assert!(plan_replication(&again, now()).unwrap().is_empty());
}

#[test]
fn common_snapshots_and_newest_common_compare_guids() {
    let mut src = dataset("tank/a", &[("s1", 1), ("s2", 2), ("s3", 3)]);
    src.insert_bookmark(Bookmark::new("b4".parse().unwrap(), Guid(4), 35, t(35)));
    let dst = dataset(
        "backup/a",
        &[("s1", 1), ("renamed", 2), ("s4", 4), ("x", 9)],
    );
    let common: Vec<&str> = common_snapshots(&src, &dst)
        .iter()
        .map(|c| c.target.name.as_str())
        .collect();
    assert_eq!(common, ["s1", "renamed"]);
    let base = newest_common(&src, &dst).unwrap();
    assert!(matches!(base, CommonBase::Bookmark { source, .. } if source.name.as_str() == "b4"));
    assert_eq!(base.guid(), Guid(4));
    assert!(base.source_snapshot().is_none());
    let no_bm = dataset("tank/a", &[("s1", 1), ("s2", 2)]);
    let base = newest_common(&no_bm, &dst).unwrap();
    assert_eq!(base.source_snapshot().unwrap().name.as_str(), "s2");
    assert!(newest_common(&dataset("tank/a", &[("z", 77)]), &dst).is_none());
}

#[test]
fn planning_65k_snapshots_is_linear() {
    let n = 65_000u64;
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    a.snapshots = (1..=n)
        .map(|i| Snapshot::new(format!("s{i}").parse().unwrap(), Guid(i), i, t(i as i64)))
        .collect();
    let src = inventory(vec![a]);
    let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(2));
    b.snapshots = (1..=n / 2)
        .map(|i| Snapshot::new(format!("s{i}").parse().unwrap(), Guid(i), i, t(i as i64)))
        .collect();
    let dst = target(vec![b]);
    let req = request(&src, &dst);
    let plan = plan_replication(&req, now()).unwrap();
    let sends = transfers(&plan);
    assert_eq!(sends.len(), 1);
    assert!(matches!(sends[0], SendSpec::Incremental { expected, .. } if expected.len() == 32_500));
}

// ---------------------------------------------------------------------------------------
// Target and source policies

use zsnap_core::policy::Policy;
use zsnap_core::retention::{evaluate, Candidate, RetentionPolicy};

/// 2026-11-20T00:00:00Z plus `hours`.
fn hour(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + chrono::Duration::hours(hours)
}

/// A managed zsnap snapshot `zsnap_<label>_<time>`.
fn zsnap(label: &str, at: DateTime<Utc>, guid: u64, txg: u64) -> Snapshot {
    let name = format!("zsnap_{label}_{}", at.format("%Y%m%dT%H%M%SZ"));
    let mut s = Snapshot::new(name.parse().unwrap(), Guid(guid), txg, at);
    s.managed = Some("yes".to_owned());
    s
}

fn policy(rules: &[&str]) -> Policy {
    Policy::new(
        Default::default(),
        RetentionPolicy::new(rules.iter().map(|r| r.parse().unwrap()).collect()),
        chrono_tz::UTC,
    )
}

/// Hourly snapshots for 30 hours, and a daily one at each midnight (taken together
/// with that hour's hourly, one txg later).
fn hourly_and_daily() -> Inventory {
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    let mut guid = 0;
    for h in 0..30 {
        guid += 1;
        a.insert_snapshot(zsnap("hourly", hour(h), guid, 10 * guid));
        if h % 24 == 0 {
            guid += 1;
            a.insert_snapshot(zsnap("daily", hour(h), guid, 10 * guid));
        }
    }
    inventory(vec![a])
}

/// Whether `policy` keeps every snapshot of `name` whose guid is in `received`, on the
/// target as it is.
fn target_keeps(inv: &Inventory, name: &str, policy: &Policy, received: &[Guid]) -> bool {
    let d = inv.dataset(&ds(name)).unwrap();
    let owned: Vec<(&Snapshot, _)> = d
        .snapshots
        .iter()
        .map(|s| (s, policy.classify(s)))
        .filter(|(_, o)| o.is_owned())
        .collect();
    let cands: Vec<Candidate> = owned
        .iter()
        .map(|(s, o)| Candidate::new(&s.name, s.guid, s.createtxg, s.creation, o.label()))
        .collect();
    let kept = evaluate(&policy.retention, &cands, hour(30), policy.timezone);
    received.iter().all(|g| {
        owned
            .iter()
            .zip(&kept)
            .any(|((s, _), reasons)| s.guid == *g && !reasons.is_empty())
    })
}

fn plan_at_30h(req: &ReplicationRequest<'_>) -> Plan {
    plan_replication(req, hour(30)).unwrap()
}

#[test]
fn the_target_policy_decides_what_is_sent() {
    let src = hourly_and_daily();
    let dst = target(vec![]);
    let p = policy(&["labels daily = 7", "last 2 (label hourly)"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let plan = plan_at_30h(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-21T06:00:00Z: 5 steps

        steps:
          1  src → dst  transfer full  tank/a@zsnap_daily_20261120T000000Z → backup/a  — backup/a does not exist: full send of @zsnap_daily_20261120T000000Z, the oldest snapshot the target wants
          2  src → dst  transfer -i    tank/a@zsnap_daily_20261120T000000Z .. @zsnap_daily_20261121T000000Z → backup/a  — incremental from @zsnap_daily_20261120T000000Z to @zsnap_daily_20261121T000000Z, skipping 24 snapshots the target does not want
          3  src → dst  transfer -i    tank/a@zsnap_daily_20261121T000000Z .. @zsnap_hourly_20261121T040000Z → backup/a  — incremental from @zsnap_daily_20261121T000000Z to @zsnap_hourly_20261121T040000Z, skipping 3 snapshots the target does not want
          4  src → dst  transfer -i    tank/a@zsnap_hourly_20261121T040000Z .. @zsnap_hourly_20261121T050000Z → backup/a  — incremental from @zsnap_hourly_20261121T040000Z to @zsnap_hourly_20261121T050000Z
          5  src        hold           tank/a@zsnap_hourly_20261121T050000Z (tag "zsnap:offsite")  — keep @zsnap_hourly_20261121T050000Z, the newest snapshot in common with target "offsite", as the base of the next send
        "#);
    let Step::Transfer(first) = &plan.steps[0] else {
        panic!("a transfer")
    };
    assert_eq!(first.recv.set_props["zsnap:managed"], "yes");
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan.simulate_at(&invs).unwrap();
    let received: Vec<Guid> = after[&dst_loc()]
        .dataset(&ds("backup/a"))
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.guid)
        .collect();
    assert_eq!(received.len(), 4);
    assert!(target_keeps(&after[&dst_loc()], "backup/a", &p, &received));
    let mut again = req.clone();
    again.source = &after[&src_loc()];
    again.target = &after[&dst_loc()];
    assert!(plan_at_30h(&again).is_empty());
}

#[test]
fn the_target_policy_counts_what_the_target_already_has() {
    // The target has s1 and s2; "last 3" over s1…s6 as the target will hold them keeps
    // s4, s5, s6: -i s2 s4, then -I s4 s6.
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    for i in 1..=6 {
        a.insert_snapshot(zsnap("hourly", hour(i as i64), i, 10 * i));
    }
    let src = inventory(vec![a.clone()]);
    let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(2));
    for i in 1..=2 {
        b.insert_snapshot(zsnap("hourly", hour(i as i64), i, i));
    }
    let dst = target(vec![b]);
    let p = policy(&["last 3"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let plan = plan_at_30h(&req);
    let shape: Vec<(u64, u64, bool)> = transfers(&plan)
        .iter()
        .map(|s| match s {
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates,
                ..
            } => (base.guid().0, snapshot.guid.0, *intermediates),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(shape, [(2, 4, false), (4, 6, true)]);
}

#[test]
fn a_target_policy_never_gets_unmanaged_snapshots() {
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    a.insert_snapshot(zsnap("hourly", hour(1), 1, 10));
    a.insert_snapshot(snap("before-upgrade", 2, 20));
    a.insert_snapshot(zsnap("hourly", hour(3), 3, 30));
    let src = inventory(vec![a]);
    let dst = target(vec![]);
    let p = policy(&["last 10"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let plan = plan_at_30h(&req);
    let sent: Vec<u64> = transfers(&plan)
        .iter()
        .map(|s| match s {
            SendSpec::Full { snapshot } => snapshot.guid.0,
            SendSpec::Incremental { snapshot, .. } => snapshot.guid.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(sent, [1, 3]);

    // With only a source policy: what it owns, so not the manual snapshot either.
    let mut req = request(&src, &dst);
    req.source_policy = Some(&p);
    let (_, _, dst_after) = plan_and_converge(&req);
    assert_eq!(guids(&dst_after, "backup/a"), [1, 3]);
    // Without policies: everything.
    let (_, _, dst_after) = plan_and_converge(&request(&src, &dst));
    assert_eq!(guids(&dst_after, "backup/a"), [1, 2, 3]);
}

#[test]
fn a_target_policy_that_never_prunes_and_has_no_rule_wants_everything_it_owns() {
    // `prune = false` without a keep rule: the target keeps all it gets, so it wants
    // every snapshot its policy owns (not the unmanaged one), not nothing.
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    a.insert_snapshot(zsnap("hourly", hour(1), 1, 10));
    a.insert_snapshot(snap("before-upgrade", 2, 20));
    a.insert_snapshot(zsnap("daily", hour(3), 3, 30));
    a.insert_snapshot(zsnap("hourly", hour(4), 4, 40));
    let src = inventory(vec![a]);
    let dst = target(vec![]);
    let p = policy(&[]).with_prune(false);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let (plan, _, dst_after) = plan_and_converge(&req);
    assert!(!plan.is_empty());
    assert_eq!(guids(&dst_after, "backup/a"), [1, 3, 4]);
    // With a rule, the rule still decides what is sent.
    let p = policy(&["last 1"]).with_prune(false);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let (_, _, dst_after) = plan_and_converge(&req);
    assert_eq!(guids(&dst_after, "backup/a"), [4]);
}

#[test]
fn a_target_policy_that_keeps_nothing_new_sends_nothing() {
    let src = hourly_and_daily();
    let dst = target(vec![]);
    let p = policy(&["labels weekly = 4"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let plan = plan_at_30h(&req);
    assert!(plan.is_empty());
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-21T06:00:00Z: nothing to do

        notes:
          backup/a: not created: tank/a has no snapshot the target wants
        "#);
}

#[test]
fn the_target_is_pruned_by_its_policy_in_the_same_plan() {
    // The target holds s1…s4 (s1 and s2 pruned on the source long ago, s3 and s4
    // common); the source has s3…s8; "last 3" keeps s6, s7, s8 once they are there.
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    for i in 3..=8 {
        a.insert_snapshot(zsnap("hourly", hour(i as i64), i, 10 * i));
    }
    let src = inventory(vec![a]);
    let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(2));
    for i in 1..=4 {
        b.insert_snapshot(zsnap("hourly", hour(i as i64), i, i));
    }
    let dst = target(vec![b]);
    let p = policy(&["last 3"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    req.options.prune_target = true;
    let plan = plan_at_30h(&req);
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-21T06:00:00Z: 4 steps

        steps:
          1  src → dst  transfer -i  tank/a@zsnap_hourly_20261120T040000Z .. @zsnap_hourly_20261120T060000Z → backup/a  — incremental from @zsnap_hourly_20261120T040000Z to @zsnap_hourly_20261120T060000Z, skipping 1 snapshot the target does not want
          2  src → dst  transfer -I  tank/a@zsnap_hourly_20261120T060000Z .. @zsnap_hourly_20261120T080000Z → backup/a (2 snapshots)  — incremental from @zsnap_hourly_20261120T060000Z up to @zsnap_hourly_20261120T080000Z, every snapshot between them wanted
          3  src        hold         tank/a@zsnap_hourly_20261120T080000Z (tag "zsnap:offsite")  — keep @zsnap_hourly_20261120T080000Z, the newest snapshot in common with target "offsite", as the base of the next send
          4  dst        destroy      backup/a@zsnap_hourly_20261120T010000Z, @zsnap_hourly_20261120T020000Z, @zsnap_hourly_20261120T030000Z, @zsnap_hourly_20261120T040000Z  — no rule of policy "offsite" keeps them

        decisions:
          backup/a (at dst): 2 kept, 1 protected, 4 destroyed
            destroy  zsnap_hourly_20261120T010000Z  2026-11-20T01:00:00Z
            destroy  zsnap_hourly_20261120T020000Z  2026-11-20T02:00:00Z
            destroy  zsnap_hourly_20261120T030000Z  2026-11-20T03:00:00Z
            destroy  zsnap_hourly_20261120T040000Z  2026-11-20T04:00:00Z
            keep     zsnap_hourly_20261120T060000Z  2026-11-20T06:00:00Z  kept: last 3 [#3 of 3]
            keep     zsnap_hourly_20261120T070000Z  2026-11-20T07:00:00Z  kept: last 3 [#2 of 3]
            protect  zsnap_hourly_20261120T080000Z  2026-11-20T08:00:00Z  protected: newest snapshot of the dataset, newest snapshot in common with the source at src; kept: last 3 [#1 of 3]
        "#);
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan.simulate_at(&invs).unwrap();
    assert_eq!(guids(&after[&dst_loc()], "backup/a"), [6, 7, 8]);
    let mut again = req.clone();
    again.source = &after[&src_loc()];
    again.target = &after[&dst_loc()];
    let second = plan_at_30h(&again);
    assert!(second.is_empty(), "{}", second.render());
}

#[test]
fn target_pruning_keeps_the_newest_common_snapshot() {
    // Nothing new is wanted ("last 1" keeps s4, which the target has); s4 is the newest
    // common snapshot and stays; the older target snapshots go.
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    a.insert_snapshot(zsnap("hourly", hour(4), 4, 40));
    let src = inventory(vec![a]);
    let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(2));
    for i in 1..=4 {
        b.insert_snapshot(zsnap("hourly", hour(i as i64), i, i));
    }
    let dst = target(vec![b]);
    let p = policy(&["regex nothing-matches-this"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    req.target_policy_name = Some("archive".to_owned());
    req.options.prune_target = true;
    let plan = plan_at_30h(&req);
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan.simulate_at(&invs).unwrap();
    assert_eq!(guids(&after[&dst_loc()], "backup/a"), [4]);
    // On the target, the other side of the common snapshot is the source, and the
    // reasons name the target's policy (not the target).
    assert!(plan.decisions.iter().any(|d| d.guid == Guid(4)
        && matches!(&d.verdict, zsnap_core::Verdict::Protect { protections, .. }
            if protections.iter().any(|p| matches!(p, zsnap_core::Protection::CommonWithSource { .. })))));
    let destroys: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| matches!(s, zsnap_core::Step::Destroy(_)))
        .map(|s| s.reason())
        .collect();
    assert_eq!(destroys, [r#"no rule of policy "archive" keeps them"#]);
}

#[test]
fn pruning_a_target_needs_its_policy() {
    let src = source();
    let dst = target(vec![]);
    let mut req = request(&src, &dst);
    req.options.prune_target = true;
    insta::assert_snapshot!(err(&req), @r#"target "offsite" is to be pruned but has no policy"#);
}

#[test]
fn the_target_judges_snapshots_as_it_will_hold_them() {
    // zsnap names without the managed marker on the source (taken before zsnap set it):
    // the receive marks them managed on the target, so its policy owns and wants them.
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    for i in 1..=3 {
        let mut s = zsnap("hourly", hour(i as i64), i, 10 * i);
        s.managed = None;
        a.insert_snapshot(s);
    }
    let src = inventory(vec![a]);
    let dst = target(vec![]);
    let p = policy(&["last 2"]);
    let mut req = request(&src, &dst);
    req.target_policy = Some(&p);
    let plan = plan_at_30h(&req);
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan.simulate_at(&invs).unwrap();
    assert_eq!(guids(&after[&dst_loc()], "backup/a"), [2, 3]);
}

#[test]
fn a_clone_target_is_never_overwritten() {
    let src = source();
    let mut a = dataset("backup/a", &[("x", 91)]);
    a.props.origin = Some("backup/base@golden".parse().unwrap());
    let dst = target(vec![a]);
    let mut req = request(&src, &dst);
    req.options.allow_rollback = true;
    insta::assert_snapshot!(err(&req), @"target backup/a would have to be overwritten by a full receive of tank/a, but it is a clone of backup/base@golden (destroy or promote it first)");
}
