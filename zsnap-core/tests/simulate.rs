//! `Plan::simulate`: every refusal ZFS would make, and the effects of accepted steps.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::{
    AbortReceiveStep, Bookmark, BookmarkStep, Dataset, DatasetKind, DatasetName,
    DestroyBookmarkStep, DestroyStep, Guid, HoldStep, Inventory, Location, Plan, SendBase,
    SendSpec, Snapshot, SnapshotName, SnapshotRef, SnapshotStep, Step, TransferStep,
    MANAGED_PROPERTY,
};

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid dataset name in test")
}

fn sn(s: &str) -> SnapshotName {
    s.parse().expect("valid snapshot name in test")
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

fn snap(name: &str, guid: u64, txg: u64) -> Snapshot {
    Snapshot::new(name.parse().unwrap(), Guid(guid), txg, t(txg as i64))
}

fn r(name: &str, guid: u64) -> SnapshotRef {
    SnapshotRef::new(name.parse().unwrap(), Guid(guid))
}

fn local() -> Location {
    Location::local()
}

/// `tank/a@s1,s2,s3` (guids 11–13), `tank/b@b1` (21), `tank/b/c` (empty),
/// `backup` and `backup/a@s1` (guid 11), `tank/a#bm1` of s1.
fn inventory() -> Inventory {
    let mut inv = Inventory::new();
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(1));
    for s in [
        snap("s1", 11, 100),
        snap("s2", 12, 110),
        snap("s3", 13, 120),
    ] {
        a.insert_snapshot(s);
    }
    a.insert_bookmark(Bookmark::new("bm1".parse().unwrap(), Guid(11), 100, t(100)));
    inv.insert(a);
    let mut b = Dataset::new(ds("tank/b"), DatasetKind::Filesystem, Guid(2));
    b.insert_snapshot(snap("b1", 21, 105));
    inv.insert(b);
    inv.insert(Dataset::new(
        ds("tank/b/c"),
        DatasetKind::Filesystem,
        Guid(3),
    ));
    inv.insert(Dataset::new(ds("backup"), DatasetKind::Filesystem, Guid(4)));
    let mut ba = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(5));
    ba.insert_snapshot(snap("s1", 11, 7));
    inv.insert(ba);
    inv.validate().unwrap();
    inv
}

fn plan(steps: Vec<Step>) -> Plan {
    let mut p = Plan::new(t(1000));
    p.steps = steps;
    p
}

fn refused(steps: Vec<Step>) -> String {
    refused_on(&inventory(), steps)
}

fn refused_on(inv: &Inventory, steps: Vec<Step>) -> String {
    plan(steps).simulate(inv).unwrap_err().to_string()
}

fn ok(steps: Vec<Step>) -> Inventory {
    ok_on(&inventory(), steps)
}

fn ok_on(inv: &Inventory, steps: Vec<Step>) -> Inventory {
    let out = plan(steps).simulate(inv).unwrap();
    out.validate()
        .expect("a simulated inventory keeps its invariants");
    out
}

fn take(names: &[&str]) -> Step {
    let props = BTreeMap::from([(MANAGED_PROPERTY.to_owned(), "yes".to_owned())]);
    Step::Snapshot(SnapshotStep::new(
        local(),
        names.iter().map(|n| sn(n)).collect(),
        props,
        "hourly due",
    ))
}

fn destroy(dataset: &str, snaps: &[(&str, u64)]) -> Step {
    Step::Destroy(DestroyStep::new(
        local(),
        ds(dataset),
        snaps.iter().map(|(n, g)| r(n, *g)).collect(),
        "policy p",
    ))
}

fn hold(name: &str, guid: u64, tag: &str) -> Step {
    Step::Hold(HoldStep::new(local(), sn(name), Guid(guid), tag, "keep"))
}

fn release(name: &str, guid: u64, tag: &str) -> Step {
    Step::Release(HoldStep::new(local(), sn(name), Guid(guid), tag, "done"))
}

fn transfer(source: &str, target: &str, send: SendSpec) -> TransferStep {
    TransferStep::new(local(), local(), ds(source), ds(target), send, "replicate")
}

fn incremental(base: SendBase, snapshot: SnapshotRef, expected: Vec<SnapshotRef>) -> SendSpec {
    SendSpec::Incremental {
        intermediates: !expected.is_empty(),
        base,
        snapshot,
        expected,
    }
}

fn base(name: &str, guid: u64) -> SendBase {
    SendBase::Snapshot {
        name: name.parse().unwrap(),
        guid: Guid(guid),
    }
}

fn names(inv: &Inventory, dataset: &str) -> Vec<(String, u64, u64)> {
    inv.dataset(&ds(dataset))
        .unwrap()
        .snapshots
        .iter()
        .map(|s| (s.name.to_string(), s.guid.0, s.createtxg))
        .collect()
}

// ---- snapshot steps ----

#[test]
fn snapshot_step_is_one_txg_above_the_whole_inventory_and_dated_now() {
    let out = ok(vec![take(&["tank/a@n", "tank/b@n"])]);
    let a = out
        .dataset(&ds("tank/a"))
        .unwrap()
        .newest()
        .unwrap()
        .clone();
    let b = out
        .dataset(&ds("tank/b"))
        .unwrap()
        .newest()
        .unwrap()
        .clone();
    assert_eq!((a.name.as_str(), a.createtxg), ("n", 121));
    assert_eq!(b.createtxg, 121, "one atomic call is one txg");
    assert_eq!(a.creation, t(1000));
    assert_eq!(a.managed.as_deref(), Some("yes"));
    assert_ne!(a.guid, b.guid);
    // A second step gets the next txg.
    let out = ok(vec![take(&["tank/a@n"]), take(&["tank/a@m"])]);
    assert_eq!(names(&out, "tank/a").last().unwrap().2, 122);
}

#[test]
fn snapshot_step_refusals() {
    insta::assert_snapshot!(refused(vec![take(&["tank/a@s2"])]), @"step 1 (snapshot at local): snapshot tank/a@s2 already exists");
    insta::assert_snapshot!(refused(vec![take(&["tank/a@n", "tank/x@n"])]), @"step 1 (snapshot at local): dataset tank/x does not exist");
    insta::assert_snapshot!(refused(vec![take(&["tank/a@n", "backup/a@n"])]), @"step 1 (snapshot at local): snapshots tank/a@n and backup/a@n are on different pools; one atomic `zfs snapshot` takes one pool");
    insta::assert_snapshot!(refused(vec![take(&["tank/a@n", "tank/a@m"])]), @"step 1 (snapshot at local): tank/a@n and tank/a@m are two snapshots of one dataset in one atomic `zfs snapshot`");
    insta::assert_snapshot!(refused(vec![take(&[])]), @"step 1 (snapshot at local): the step names no snapshot");
    let mut p = plan(vec![take(&["tank/a@n"])]);
    p.now = None;
    insta::assert_snapshot!(p.simulate(&inventory()).unwrap_err(), @"step 1 (snapshot at local): the plan has no `now`, so the new snapshots would have no creation time");
    let step = Step::Snapshot(SnapshotStep::new(
        local(),
        vec![sn("tank/a@n")],
        BTreeMap::from([("compression".to_owned(), "off".to_owned())]),
        "x",
    ));
    insta::assert_snapshot!(refused(vec![step]), @r#"step 1 (snapshot at local): property "compression" is not a user property (`module:name`), the only kind a snapshot takes at creation"#);
}

#[test]
fn snapshot_step_counts_a_repeated_name_once() {
    let out = ok(vec![take(&["tank/a@n", "tank/a@n"])]);
    assert_eq!(out.dataset(&ds("tank/a")).unwrap().snapshots.len(), 4);
}

#[test]
fn a_refused_atomic_snapshot_creates_nothing_and_names_its_step() {
    let err = plan(vec![take(&["tank/a@n"]), take(&["tank/a@n", "tank/b@n"])])
        .simulate(&inventory())
        .unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!(err.action, "snapshot");
    insta::assert_snapshot!(err, @"step 2 (snapshot at local): snapshot tank/a@n already exists");
}

// ---- destroy ----

#[test]
fn destroy_removes_the_batch() {
    let out = ok(vec![destroy("tank/a", &[("s1", 11), ("s2", 12)])]);
    assert_eq!(names(&out, "tank/a"), vec![("s3".to_owned(), 13, 120)]);
    // Other datasets are untouched.
    assert_eq!(
        out.dataset(&ds("backup/a")),
        inventory().dataset(&ds("backup/a"))
    );
}

#[test]
fn destroy_refusals() {
    let mut inv = inventory();
    let a = inv.dataset_mut(&ds("tank/a")).unwrap();
    a.snapshots[0].userrefs = 2;
    a.snapshots[1].clones = vec![ds("tank/clone1"), ds("tank/clone2")];
    insta::assert_snapshot!(refused_on(&inv, vec![destroy("tank/a", &[("s3", 13), ("s1", 11)])]), @"step 1 (destroy at local): snapshot tank/a@s1 is held (2 holds)");
    insta::assert_snapshot!(refused_on(&inv, vec![destroy("tank/a", &[("s2", 12)])]), @"step 1 (destroy at local): snapshot tank/a@s2 has clones (tank/clone1, tank/clone2)");
    insta::assert_snapshot!(refused(vec![destroy("tank/a", &[("s2", 12), ("gone", 99)])]), @"step 1 (destroy at local): snapshot tank/a@gone does not exist");
    insta::assert_snapshot!(refused(vec![destroy("tank/a", &[("s2", 99)])]), @"step 1 (destroy at local): snapshot tank/a@s2 has guid 12, not the planned 99");
    insta::assert_snapshot!(refused(vec![destroy("tank/x", &[("s2", 12)])]), @"step 1 (destroy at local): dataset tank/x does not exist");
    insta::assert_snapshot!(refused(vec![destroy("tank/a", &[])]), @"step 1 (destroy at local): the step names no snapshot");
}

#[test]
fn a_refused_destroy_batch_is_atomic() {
    // Twice the same batch: the second fails because the first destroyed them.
    let steps = vec![
        destroy("tank/a", &[("s1", 11)]),
        destroy("tank/a", &[("s2", 12), ("s1", 11)]),
    ];
    insta::assert_snapshot!(refused(steps), @"step 2 (destroy at local): snapshot tank/a@s1 does not exist");
}

// ---- holds ----

#[test]
fn holds_count_and_tags_placed_by_the_plan() {
    let out = ok(vec![hold("tank/a@s1", 11, "x"), hold("tank/a@s1", 11, "y")]);
    assert_eq!(out.snapshot(&sn("tank/a@s1")).unwrap().userrefs, 2);
    let out = ok(vec![
        hold("tank/a@s1", 11, "x"),
        release("tank/a@s1", 11, "x"),
        hold("tank/a@s1", 11, "x"),
    ]);
    assert_eq!(out.snapshot(&sn("tank/a@s1")).unwrap().userrefs, 1);
    // A held snapshot cannot be destroyed until released.
    insta::assert_snapshot!(refused(vec![hold("tank/a@s1", 11, "x"), destroy("tank/a", &[("s1", 11)])]), @"step 2 (destroy at local): snapshot tank/a@s1 is held (1 holds)");
    let out = ok(vec![
        hold("tank/a@s1", 11, "x"),
        release("tank/a@s1", 11, "x"),
        destroy("tank/a", &[("s1", 11)]),
    ]);
    assert!(out.snapshot(&sn("tank/a@s1")).is_none());
}

#[test]
fn a_release_may_match_a_hold_that_existed_before_the_plan() {
    let mut inv = inventory();
    inv.dataset_mut(&ds("tank/a")).unwrap().snapshots[0].userrefs = 1;
    let out = ok_on(&inv, vec![release("tank/a@s1", 11, "other-tool")]);
    assert_eq!(out.snapshot(&sn("tank/a@s1")).unwrap().userrefs, 0);
    // With one unknown hold and one placed by the plan under tag x, releasing two
    // unknown tags leaves nothing to account for the second.
    let steps = vec![
        hold("tank/a@s1", 11, "x"),
        release("tank/a@s1", 11, "a"),
        release("tank/a@s1", 11, "b"),
    ];
    insta::assert_snapshot!(refused_on(&inv, steps), @r#"step 3 (release at local): snapshot tank/a@s1 has no hold with tag "b""#);
}

#[test]
fn hold_refusals() {
    insta::assert_snapshot!(refused(vec![hold("tank/a@s1", 11, "x"), hold("tank/a@s1", 11, "x")]), @r#"step 2 (hold at local): snapshot tank/a@s1 already has a hold with tag "x""#);
    insta::assert_snapshot!(refused(vec![hold("tank/a@nope", 11, "x")]), @"step 1 (hold at local): snapshot tank/a@nope does not exist");
    insta::assert_snapshot!(refused(vec![hold("tank/a@s1", 12, "x")]), @"step 1 (hold at local): snapshot tank/a@s1 has guid 11, not the planned 12");
    insta::assert_snapshot!(refused(vec![hold("tank/zz@s1", 11, "x")]), @"step 1 (hold at local): dataset tank/zz does not exist");
    insta::assert_snapshot!(refused(vec![release("tank/a@s1", 11, "x")]), @r#"step 1 (release at local): snapshot tank/a@s1 has no hold with tag "x""#);
}

// ---- bookmarks ----

fn bookmark(snapshot: &str, guid: u64, bm: &str) -> Step {
    Step::Bookmark(BookmarkStep::new(
        local(),
        sn(snapshot),
        Guid(guid),
        bm.parse().unwrap(),
        "keep a base",
    ))
}

#[test]
fn bookmark_takes_the_snapshot_identity_and_outlives_it() {
    let out = ok(vec![
        bookmark("tank/a@s2", 12, "tank/a#b2"),
        destroy("tank/a", &[("s2", 12)]),
    ]);
    let a = out.dataset(&ds("tank/a")).unwrap();
    let b = a
        .bookmarks
        .iter()
        .find(|b| b.name.as_str() == "b2")
        .unwrap();
    assert_eq!((b.guid, b.createtxg, b.creation), (Guid(12), 110, t(110)));
    let out = ok(vec![Step::DestroyBookmark(DestroyBookmarkStep::new(
        local(),
        "tank/a#bm1".parse().unwrap(),
        Guid(11),
        "old",
    ))]);
    assert!(out.dataset(&ds("tank/a")).unwrap().bookmarks.is_empty());
}

#[test]
fn bookmark_refusals() {
    insta::assert_snapshot!(refused(vec![bookmark("tank/a@s1", 11, "tank/a#bm1")]), @"step 1 (bookmark at local): bookmark tank/a#bm1 already exists");
    insta::assert_snapshot!(refused(vec![bookmark("tank/a@s9", 11, "tank/a#b")]), @"step 1 (bookmark at local): snapshot tank/a@s9 does not exist");
    insta::assert_snapshot!(refused(vec![bookmark("tank/a@s1", 11, "tank/b#b")]), @"step 1 (bookmark at local): bookmark tank/b#b is not in the dataset of tank/a@s1");
    let destroy_bm = |name: &str, guid| {
        Step::DestroyBookmark(DestroyBookmarkStep::new(
            local(),
            name.parse().unwrap(),
            Guid(guid),
            "old",
        ))
    };
    insta::assert_snapshot!(refused(vec![destroy_bm("tank/a#nope", 11)]), @"step 1 (destroy bookmark at local): bookmark tank/a#nope does not exist");
    insta::assert_snapshot!(refused(vec![destroy_bm("tank/a#bm1", 12)]), @"step 1 (destroy bookmark at local): bookmark tank/a#bm1 has guid 11, not the planned 12");
}

// ---- transfers ----

#[test]
fn full_send_creates_the_target_with_the_source_identity() {
    let mut step = transfer(
        "tank/a",
        "backup/new",
        SendSpec::Full {
            snapshot: r("s2", 12),
        },
    );
    step.recv
        .set_props
        .insert(MANAGED_PROPERTY.to_owned(), "yes".to_owned());
    let out = ok(vec![Step::Transfer(step)]);
    let got = out.dataset(&ds("backup/new")).unwrap();
    let s = &got.snapshots[0];
    assert_eq!(
        (s.name.as_str(), s.guid, s.createtxg),
        ("s2", Guid(12), 121)
    );
    assert_eq!(
        s.creation,
        t(110),
        "a received snapshot keeps its creation time"
    );
    assert_eq!(s.managed.as_deref(), Some("yes"));
    assert_eq!(got.snapshots.len(), 1);
}

#[test]
fn full_send_refusals() {
    let full = |target: &str| {
        transfer(
            "tank/a",
            target,
            SendSpec::Full {
                snapshot: r("s1", 11),
            },
        )
    };
    insta::assert_snapshot!(refused(vec![Step::Transfer(full("backup/a"))]), @"step 1 (transfer at local → local): target backup/a exists; a full receive overwrites it only with force (-F)");
    let mut forced = full("backup/a");
    forced.recv.force = true;
    insta::assert_snapshot!(refused(vec![Step::Transfer(forced)]), @"step 1 (transfer at local → local): target backup/a has snapshots (e.g. s1); a full receive does not overwrite them, even with -F");
    insta::assert_snapshot!(refused(vec![Step::Transfer(full("backup/x/y"))]), @"step 1 (transfer at local → local): parent backup/x of target backup/x/y does not exist");
    insta::assert_snapshot!(refused(vec![Step::Transfer(full("newpool"))]), @"step 1 (transfer at local → local): target newpool is the root of a pool that does not exist");
    insta::assert_snapshot!(refused(vec![Step::Transfer(transfer("tank/a", "backup/n", SendSpec::Full { snapshot: r("s1", 12) }))]), @"step 1 (transfer at local → local): snapshot tank/a@s1 has guid 11, not the planned 12");
    insta::assert_snapshot!(refused(vec![Step::Transfer(transfer("tank/a", "backup/n", SendSpec::Full { snapshot: r("zz", 12) }))]), @"step 1 (transfer at local → local): snapshot tank/a@zz does not exist");
    insta::assert_snapshot!(refused(vec![Step::Transfer(transfer("tank/q", "backup/n", SendSpec::Full { snapshot: r("zz", 12) }))]), @"step 1 (transfer at local → local): dataset tank/q does not exist");

    let mut inv = inventory();
    let mut clone = Dataset::new(ds("backup/clone"), DatasetKind::Filesystem, Guid(9));
    clone.props.origin = Some(sn("backup/a@s1"));
    inv.insert(clone);
    let mut forced = full("backup/clone");
    forced.recv.force = true;
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(forced)]), @"step 1 (transfer at local → local): target backup/clone is a clone; a full receive cannot overwrite it");

    // A forced full receive into an existing empty dataset is accepted.
    let mut forced = full("backup");
    forced.recv.force = true;
    let out = ok(vec![Step::Transfer(forced)]);
    assert_eq!(names(&out, "backup"), vec![("s1".to_owned(), 11, 121)]);
}

#[test]
fn a_target_outside_the_listed_tree_is_not_second_guessed() {
    // No ancestor of elsewhere/deep/x is listed: the inventory says nothing about it.
    let full = |target: &str| {
        Step::Transfer(transfer(
            "tank/a",
            target,
            SendSpec::Full {
                snapshot: r("s1", 11),
            },
        ))
    };
    let out = ok(vec![full("elsewhere/deep/x"), full("backup/a/child")]);
    assert!(out.dataset(&ds("elsewhere/deep/x")).is_some());
    assert!(out.dataset(&ds("backup/a/child")).is_some());
}

#[test]
fn encrypted_sources_need_raw_sends() {
    let mut inv = inventory();
    inv.dataset_mut(&ds("tank/a")).unwrap().props.encryption = Some("aes-256-gcm".to_owned());
    let step = transfer(
        "tank/a",
        "backup/n",
        SendSpec::Full {
            snapshot: r("s1", 11),
        },
    );
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(step.clone())]), @"step 1 (transfer at local → local): source tank/a is encrypted and the send is not raw (-w)");
    let mut raw = step;
    raw.raw = true;
    let out = ok_on(&inv, vec![Step::Transfer(raw)]);
    assert!(out.dataset(&ds("backup/n")).unwrap().props.is_encrypted());
}

#[test]
fn incremental_with_intermediates_creates_every_snapshot_after_the_base() {
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s3", 13), vec![r("s2", 12), r("s3", 13)]),
    );
    let out = ok(vec![Step::Transfer(step)]);
    assert_eq!(
        names(&out, "backup/a"),
        vec![
            ("s1".to_owned(), 11, 7),
            ("s2".to_owned(), 12, 121),
            ("s3".to_owned(), 13, 122)
        ]
    );
    // -i sends one snapshot.
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s3", 13), vec![]),
    );
    let out = ok(vec![Step::Transfer(step)]);
    assert_eq!(
        names(&out, "backup/a"),
        vec![("s1".to_owned(), 11, 7), ("s3".to_owned(), 13, 121)]
    );
}

#[test]
fn incremental_from_a_bookmark() {
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(
            SendBase::Bookmark {
                name: "bm1".parse().unwrap(),
                guid: Guid(11),
            },
            r("s2", 12),
            vec![],
        ),
    );
    let out = ok(vec![Step::Transfer(step)]);
    assert_eq!(names(&out, "backup/a").len(), 2);
}

#[test]
fn incremental_refusals() {
    let inc = |base_: SendBase, snap: SnapshotRef, expected: Vec<SnapshotRef>| {
        Step::Transfer(transfer(
            "tank/a",
            "backup/a",
            incremental(base_, snap, expected),
        ))
    };
    insta::assert_snapshot!(refused(vec![inc(base("s2", 12), r("s3", 13), vec![])]), @"step 1 (transfer at local → local): target backup/a has no snapshot with the base's guid 12");
    insta::assert_snapshot!(refused(vec![inc(base("s3", 13), r("s2", 12), vec![])]), @"step 1 (transfer at local → local): base tank/a@s3 is not earlier than tank/a@s2");
    insta::assert_snapshot!(refused(vec![inc(base("s1", 11), r("s3", 13), vec![r("s3", 13)])]), @"step 1 (transfer at local → local): `-I` into backup/a would create s2 as snapshot #1, but the step expects s3");
    insta::assert_snapshot!(refused(vec![inc(base("s1", 11), r("s3", 13), vec![r("s2", 12)])]), @"step 1 (transfer at local → local): `-I` into backup/a would create s3 as snapshot #2, but the step expects nothing");
    let bm = |guid| SendBase::Bookmark {
        name: "bm1".parse().unwrap(),
        guid: Guid(guid),
    };
    insta::assert_snapshot!(refused(vec![inc(bm(11), r("s3", 13), vec![r("s2", 12), r("s3", 13)])]), @"step 1 (transfer at local → local): `zfs send -I` cannot start from bookmark tank/a#bm1; only -i can");
    insta::assert_snapshot!(refused(vec![inc(bm(12), r("s3", 13), vec![])]), @"step 1 (transfer at local → local): bookmark tank/a#bm1 has guid 11, not the planned 12");
    let missing = SendBase::Bookmark {
        name: "nope".parse().unwrap(),
        guid: Guid(11),
    };
    insta::assert_snapshot!(refused(vec![inc(missing, r("s3", 13), vec![])]), @"step 1 (transfer at local → local): bookmark tank/a#nope does not exist");
    insta::assert_snapshot!(refused(vec![Step::Transfer(transfer("tank/a", "backup/zz", incremental(base("s1", 11), r("s3", 13), vec![])))]), @"step 1 (transfer at local → local): target backup/zz does not exist, and only a full stream creates a dataset");
}

#[test]
fn a_diverged_target_needs_force_and_unpinned_snapshots() {
    let mut inv = inventory();
    inv.dataset_mut(&ds("backup/a"))
        .unwrap()
        .insert_snapshot(snap("local-only", 99, 8));
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s2", 12), vec![]),
    );
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(step.clone())]), @"step 1 (transfer at local → local): target backup/a has 1 snapshot(s) newer than the base s1 (the first is local-only); only a forced receive (-F) rolls them back");
    let mut forced = step;
    forced.recv.force = true;
    let out = ok_on(&inv, vec![Step::Transfer(forced.clone())]);
    assert_eq!(
        names(&out, "backup/a"),
        vec![("s1".to_owned(), 11, 7), ("s2".to_owned(), 12, 121)]
    );
    inv.dataset_mut(&ds("backup/a")).unwrap().snapshots[1].userrefs = 1;
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(forced)]), @"step 1 (transfer at local → local): the forced rollback of the target would destroy backup/a@local-only, which is held or has clones");
}

#[test]
fn a_received_name_must_be_free_on_the_target() {
    let mut inv = inventory();
    inv.dataset_mut(&ds("backup/a"))
        .unwrap()
        .insert_snapshot(snap("s2", 55, 3));
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s2", 12), vec![]),
    );
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(step)]), @"step 1 (transfer at local → local): snapshot backup/a@s2 already exists");
}

#[test]
fn resume_state_blocks_everything_but_resume_and_abort() {
    let mut inv = inventory();
    inv.dataset_mut(&ds("backup/a"))
        .unwrap()
        .props
        .receive_resume_token = Some("1-abc".to_owned());
    let inc = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s2", 12), vec![]),
    );
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(inc.clone())]), @"step 1 (transfer at local → local): target backup/a holds the state of an interrupted receive; resume or abort it first");
    let mut forced_full = transfer(
        "tank/a",
        "backup/a",
        SendSpec::Full {
            snapshot: r("s1", 11),
        },
    );
    forced_full.recv.force = true;
    insta::assert_snapshot!(refused_on(&inv, vec![Step::Transfer(forced_full)]), @"step 1 (transfer at local → local): target backup/a holds the state of an interrupted receive; resume or abort it first");

    let resume = |token: &str| {
        Step::Transfer(transfer(
            "tank/a",
            "backup/a",
            SendSpec::Resume {
                token: token.to_owned(),
                snapshot: Some(r("s2", 12)),
            },
        ))
    };
    insta::assert_snapshot!(refused_on(&inv, vec![resume("1-other")]), @"step 1 (transfer at local → local): the resume token of the step is not the one backup/a holds");
    insta::assert_snapshot!(refused(vec![resume("1-abc")]), @"step 1 (transfer at local → local): backup/a holds no interrupted receive");
    let out = ok_on(
        &inv,
        vec![
            resume("1-abc"),
            Step::Transfer(transfer(
                "tank/a",
                "backup/a",
                incremental(base("s2", 12), r("s3", 13), vec![]),
            )),
        ],
    );
    let a = out.dataset(&ds("backup/a")).unwrap();
    assert_eq!(a.props.receive_resume_token, None);
    assert_eq!(names(&out, "backup/a").len(), 3);

    // Abort clears the token; then the incremental runs.
    let abort = Step::AbortReceive(AbortReceiveStep::new(local(), ds("backup/a"), "stale"));
    let out = ok_on(&inv, vec![abort.clone(), Step::Transfer(inc)]);
    assert_eq!(names(&out, "backup/a").len(), 2);
    insta::assert_snapshot!(refused(vec![abort]), @"step 1 (abort receive at local): backup/a holds no interrupted receive");
}

#[test]
fn a_hidden_partial_receive_pins_its_base_until_aborted() {
    let mut inv = inventory();
    let a = inv.dataset_mut(&ds("backup/a")).unwrap();
    a.props.receive_resume_token = Some("1-abc".to_owned());
    a.snapshots[0].hidden_clones = vec!["backup/a/%recv".to_owned()];
    insta::assert_snapshot!(refused_on(&inv, vec![destroy("backup/a", &[("s1", 11)])]), @"step 1 (destroy at local): snapshot backup/a@s1 has clones (backup/a/%recv)");
    let abort = Step::AbortReceive(AbortReceiveStep::new(local(), ds("backup/a"), "stale"));
    let out = ok_on(&inv, vec![abort, destroy("backup/a", &[("s1", 11)])]);
    assert!(names(&out, "backup/a").is_empty());
}

#[test]
fn aborting_an_interrupted_full_receive_removes_the_partial_dataset() {
    let mut inv = inventory();
    let mut partial = Dataset::new(ds("backup/p"), DatasetKind::Filesystem, Guid(8));
    partial.props.receive_resume_token = Some("1-xyz".to_owned());
    inv.insert(partial);
    let abort = Step::AbortReceive(AbortReceiveStep::new(local(), ds("backup/p"), "stale"));
    let full = Step::Transfer(transfer(
        "tank/a",
        "backup/p",
        SendSpec::Full {
            snapshot: r("s1", 11),
        },
    ));
    let out = ok_on(&inv, vec![abort, full]);
    assert_eq!(names(&out, "backup/p"), vec![("s1".to_owned(), 11, 121)]);
}

// ---- locations ----

#[test]
fn simulate_covers_one_location() {
    let mut step = transfer(
        "tank/a",
        "backup/n",
        SendSpec::Full {
            snapshot: r("s1", 11),
        },
    );
    step.to = Location("nas".to_owned());
    insta::assert_snapshot!(refused(vec![take(&["tank/a@n"]), Step::Transfer(step)]), @"step 2 (transfer at local → nas): the plan also runs at nas, but this simulation covers only local (simulate every location at once)");
}

#[test]
fn simulate_at_moves_snapshots_between_locations() {
    let nas = Location("nas".to_owned());
    let mut target = Inventory::new();
    target.insert(Dataset::new(ds("backup"), DatasetKind::Filesystem, Guid(1)));
    // The target pool's txg counter is its own.
    let mut other = Dataset::new(ds("backup/other"), DatasetKind::Filesystem, Guid(2));
    other.insert_snapshot(snap("o", 5, 5000));
    target.insert(other);
    let invs = BTreeMap::from([(local(), inventory()), (nas.clone(), target)]);
    let mut full = transfer(
        "tank/a",
        "backup/a",
        SendSpec::Full {
            snapshot: r("s1", 11),
        },
    );
    full.to = nas.clone();
    let mut inc = transfer(
        "tank/a",
        "backup/a",
        incremental(base("s1", 11), r("s3", 13), vec![r("s2", 12), r("s3", 13)]),
    );
    inc.to = nas.clone();
    let p = plan(vec![
        take(&["tank/a@n"]),
        Step::Transfer(full),
        Step::Transfer(inc),
    ]);
    let out = p.simulate_at(&invs).unwrap();
    assert_eq!(
        names(&out[&nas], "backup/a"),
        vec![
            ("s1".to_owned(), 11, 5001),
            ("s2".to_owned(), 12, 5002),
            ("s3".to_owned(), 13, 5003)
        ]
    );
    assert_eq!(names(&out[&local()], "tank/a").len(), 4);
    let p = plan(vec![destroy("tank/a", &[("s1", 11)])]);
    let mut step = p.steps[0].clone();
    if let Step::Destroy(d) = &mut step {
        d.location = Location("elsewhere".to_owned());
    }
    insta::assert_snapshot!(plan(vec![step]).simulate_at(&invs).unwrap_err(), @"step 1 (destroy at elsewhere): no inventory for location elsewhere");
}

#[test]
fn an_empty_plan_changes_nothing() {
    assert_eq!(plan(vec![]).simulate(&inventory()).unwrap(), inventory());
}

/// A backup's incremental base is checked on the source as a transfer's is: present with
/// the planned guid (snapshot or bookmark) and strictly older than the sent snapshot.
#[test]
fn backup_base_refusals() {
    use zsnap_core::backup::{BackupStep, Compression, StreamKind, StreamName};
    let backup = |base_: SendBase, snap: SnapshotRef| {
        let stream = StreamName::new(
            ds("tank/a"),
            snap.name.clone(),
            t(0),
            StreamKind::Full,
            Compression::None,
        )
        .unwrap();
        let send = incremental(base_, snap, vec![]);
        Step::Backup(BackupStep::new(
            local(),
            ds("tank/a"),
            send,
            0,
            false,
            "dir:/srv/backup".parse().unwrap(),
            stream,
            "test",
        ))
    };
    let bm = |name: &str, guid| SendBase::Bookmark {
        name: name.parse().unwrap(),
        guid: Guid(guid),
    };
    assert_eq!(
        plan(vec![backup(base("s1", 11), r("s3", 13))]).simulate(&inventory()),
        Ok(inventory())
    );
    assert_eq!(
        plan(vec![backup(bm("bm1", 11), r("s2", 12))]).simulate(&inventory()),
        Ok(inventory())
    );
    insta::assert_snapshot!(refused(vec![backup(base("s3", 13), r("s2", 12))]), @"step 1 (backup at local): base tank/a@s3 is not earlier than tank/a@s2");
    insta::assert_snapshot!(refused(vec![backup(base("s9", 13), r("s2", 12))]), @"step 1 (backup at local): snapshot tank/a@s9 does not exist");
    insta::assert_snapshot!(refused(vec![backup(base("s1", 12), r("s2", 12))]), @"step 1 (backup at local): snapshot tank/a@s1 has guid 11, not the planned 12");
    insta::assert_snapshot!(refused(vec![backup(bm("bm1", 11), r("s1", 11))]), @"step 1 (backup at local): base tank/a#bm1 is not earlier than tank/a@s1");
    insta::assert_snapshot!(refused(vec![backup(bm("bm1", 12), r("s2", 12))]), @"step 1 (backup at local): bookmark tank/a#bm1 has guid 11, not the planned 12");
    insta::assert_snapshot!(refused(vec![backup(bm("nope", 11), r("s2", 12))]), @"step 1 (backup at local): bookmark tank/a#nope does not exist");
}

/// A bookmark as old as the sent snapshot is no base for it.
#[test]
fn incremental_from_a_bookmark_not_earlier() {
    let step = transfer(
        "tank/a",
        "backup/a",
        incremental(
            SendBase::Bookmark {
                name: "bm1".parse().unwrap(),
                guid: Guid(11),
            },
            r("s1", 11),
            vec![],
        ),
    );
    insta::assert_snapshot!(refused(vec![Step::Transfer(step)]), @"step 1 (transfer at local → local): base tank/a#bm1 is not earlier than tank/a@s1");
}
