//! The `zfs list` parser against hand-written fixtures, its error messages, and its
//! round trip with `render_list` over generated inventories.

use std::error::Error;

use chrono::DateTime;
use proptest::prelude::*;
use zsnap_core::zfs_list::{parse_get, GetParseErrorKind, ObjectName, PropertySource};
use zsnap_core::{
    list_argv, parse_list, render_list, Bookmark, Dataset, DatasetKind, DatasetName, Guid,
    Inventory, ListParseErrorKind, ShortName, Snapshot, SnapshotName, LIST_COLUMNS,
};

const AWKWARD: &str = include_str!("fixtures/list-awkward.tsv");

fn ds(s: &str) -> DatasetName {
    s.parse().expect("test dataset names are valid")
}

fn snap_names(inv: &Inventory, d: &str) -> Vec<String> {
    inv.dataset(&ds(d))
        .unwrap_or_else(|| panic!("{d} is listed"))
        .snapshots
        .iter()
        .map(|s| s.name.to_string())
        .collect()
}

/// The error and its causes, as a CLI prints them.
fn chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// A dataset row with the given name and guid.
fn fs(name: &str, guid: u64) -> String {
    format!("{name}\tfilesystem\t{guid}\t5\t1795000000\t-\t-\t-\toff\t-\t-\t/{name}\t98304\t-\t-")
}

/// A snapshot (or bookmark, by its `#`) row.
fn sn(name: &str, guid: u64, txg: u64) -> String {
    if name.contains('#') {
        format!("{name}\tbookmark\t{guid}\t{txg}\t1795446000\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-")
    } else {
        format!("{name}\tsnapshot\t{guid}\t{txg}\t1795446000\t0\t\t-\toff\t-\t-\t-\t0\t-\t-")
    }
}

fn text(rows: &[String]) -> String {
    let mut t = rows.join("\n");
    t.push('\n');
    t
}

fn err(rows: &[String]) -> String {
    let e = parse_list(&text(rows)).expect_err("the listing is invalid");
    chain(&e)
}

#[test]
fn argv_lists_every_type_with_the_columns() {
    let argv = list_argv(&[ds("tank/with space"), ds("backup")]);
    let cols = LIST_COLUMNS.join(",");
    assert_eq!(
        argv,
        [
            "list",
            "-H",
            "-p",
            "-t",
            "filesystem,volume,snapshot,bookmark",
            "-o",
            cols.as_str(),
            "-r",
            "tank/with space",
            "backup"
        ]
    );
    insta::assert_snapshot!(cols, @"name,type,guid,createtxg,creation,userrefs,clones,origin,encryption,keystatus,receive_resume_token,mountpoint,used,zsnap:managed,zsnap:expires");
    assert_eq!(list_argv(&[]), argv[..7]);
}

#[test]
fn awkward_fixture() {
    let inv = parse_list(AWKWARD).expect("the fixture is a valid listing");
    assert_eq!(inv.validate(), Ok(()));
    assert_eq!(inv.datasets.len(), 13);
    assert_eq!(inv.snapshot_count(), 12);

    // snapshots in createtxg order; two in one second keep their txg order
    assert_eq!(
        snap_names(&inv, "tank/a"),
        [
            "x",
            "same_second_1",
            "same_second_2",
            "held",
            "zsnap_hourly_20261123T150000Z"
        ]
    );
    let a = inv.dataset(&ds("tank/a")).expect("listed");
    assert_eq!(a.snapshots[1].creation, a.snapshots[2].creation);
    assert_eq!(a.snapshots[1].createtxg + 1, a.snapshots[2].createtxg);
    // two snapshots sharing one txg keep the listing's order (b before a)
    assert_eq!(snap_names(&inv, "tank/atomic"), ["b", "a"]);

    // one atomic `zfs snapshot` across datasets: same txg and second
    let x = |d: &str| {
        let s: SnapshotName = format!("{d}@x").parse().expect("valid");
        inv.snapshot(&s).expect("listed").clone()
    };
    assert_eq!(x("tank/a").createtxg, x("tank/b").createtxg);
    assert_eq!(x("tank/a").creation, x("tank/with space").creation);
    assert_eq!(
        x("tank/a").creation,
        DateTime::from_timestamp(1_795_446_000, 0).expect("in range")
    );

    // bookmark shares its snapshot's guid; one outlives its snapshot
    assert_eq!(a.bookmarks.len(), 1);
    assert_eq!(a.bookmarks[0].guid, a.snapshots[0].guid);
    assert_eq!(a.bookmarks[0].createtxg, a.snapshots[0].createtxg);
    let b = inv.dataset(&ds("tank/b")).expect("listed");
    assert_eq!(b.bookmarks[0].name.as_str(), "gone");
    assert!(b.snapshot_by_guid(b.bookmarks[0].guid).is_none());

    // holds, clones, origin, managed, expires, used
    assert_eq!(a.snapshots[3].userrefs, 2);
    assert!(a.snapshots[3].is_pinned());
    assert_eq!(a.snapshots[0].clones, [ds("tank/a_clone")]);
    assert_eq!(
        b.snapshots[0].clones,
        [ds("tank/clone one"), ds("tank/clone two")]
    );
    assert!(a.snapshots[1].clones.is_empty() && !a.snapshots[1].is_pinned());
    assert_eq!(
        inv.dataset(&ds("tank/a_clone"))
            .expect("listed")
            .props
            .origin,
        Some("tank/a@x".parse().expect("valid"))
    );
    assert_eq!(a.snapshots[4].managed.as_deref(), Some("yes"));
    assert_eq!(a.snapshots[0].managed, None);
    assert_eq!(
        a.snapshots[4].expires.as_deref(),
        Some("2026-12-23T15:00:00Z")
    );
    assert_eq!(
        a.snapshots[4].expiry(),
        Some(Ok(
            DateTime::from_timestamp(1_798_038_000, 0).expect("in range")
        ))
    );
    assert_eq!(a.snapshots[0].expires, None);
    assert_eq!(a.snapshots[3].used, Some(12288));
    assert_eq!(a.props.used, Some(524_288));

    // spaces in dataset and snapshot names
    assert_eq!(
        snap_names(&inv, "tank/with space"),
        ["x", "snap with space"]
    );
    let ws = inv.dataset(&ds("tank/with space")).expect("listed");
    assert_eq!(ws.props.mountpoint.as_deref(), Some("/tank/with space"));
    assert_eq!(ws.snapshots[1].userrefs, 1);

    // volume, encryption, resume token
    let vol = inv.dataset(&ds("tank/vol")).expect("listed");
    assert_eq!(vol.kind, DatasetKind::Volume);
    assert_eq!(vol.props.mountpoint, None);
    let enc = inv.dataset(&ds("tank/enc")).expect("listed");
    assert!(enc.props.is_encrypted());
    assert_eq!(enc.props.keystatus.as_deref(), Some("available"));
    let locked = inv.dataset(&ds("tank/enc_locked")).expect("listed");
    assert_eq!(locked.props.keystatus.as_deref(), Some("unavailable"));
    assert!(!a.props.is_encrypted());
    assert_eq!(a.props.keystatus, None);
    let partial = inv.dataset(&ds("backup/partial")).expect("listed");
    assert!(partial
        .props
        .receive_resume_token
        .as_deref()
        .is_some_and(|t| t.starts_with("1-e604ea4bf-e0-789c")));
    assert_eq!(a.props.receive_resume_token, None);
    assert_eq!(inv.dataset(&ds("tank")).expect("listed").guid, Guid(1001));
}

#[test]
fn fixture_round_trips_through_render() {
    let inv = parse_list(AWKWARD).expect("valid");
    assert_eq!(parse_list(&render_list(&inv)), Ok(inv));
}

#[test]
fn order_of_rows_does_not_matter_except_among_equal_txgs() {
    let mut lines: Vec<&str> = AWKWARD.lines().collect();
    let expected = parse_list(AWKWARD).expect("valid");
    lines.reverse();
    // reversing swaps the two snapshots that share a txg: swap them back
    let i = lines
        .iter()
        .position(|l| l.starts_with("tank/atomic@a"))
        .expect("in the fixture");
    lines.swap(i, i + 1);
    let reversed = lines.join("\n");
    assert_eq!(parse_list(&reversed), Ok(expected));
}

#[test]
fn empty_and_trailing_newline() {
    assert_eq!(parse_list(""), Ok(Inventory::new()));
    assert_eq!(parse_list("\n"), Ok(Inventory::new()));
    let one = fs("tank", 1);
    assert_eq!(parse_list(&one), parse_list(&format!("{one}\n")));
    assert_eq!(
        parse_list(&format!("{one}\n")).map(|i| i.datasets.len()),
        Ok(1)
    );
}

#[test]
fn unsorted_snapshots_are_sorted_stably() {
    let rows = [
        fs("tank", 1),
        sn("tank@c", 3, 30),
        sn("tank@a", 1, 10),
        sn("tank@b2", 22, 20),
        sn("tank@b1", 21, 20),
        sn("tank#late", 3, 30),
        sn("tank#early", 1, 10),
    ];
    let inv = parse_list(&text(&rows)).expect("valid");
    assert_eq!(snap_names(&inv, "tank"), ["a", "b2", "b1", "c"]);
    let books: Vec<_> = inv.datasets[&ds("tank")]
        .bookmarks
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(books, ["early", "late"]);
}

#[test]
fn rows_before_their_dataset_keep_listing_order() {
    // tank@x is listed before tank, tank@y after; both share txg 7
    let rows = [
        sn("tank@x", 1, 7),
        sn("tank#x", 1, 7),
        fs("tank", 9),
        sn("tank@y", 2, 7),
    ];
    let inv = parse_list(&text(&rows)).expect("valid");
    assert_eq!(snap_names(&inv, "tank"), ["x", "y"]);
    assert_eq!(inv.datasets[&ds("tank")].bookmarks.len(), 1);
}

#[test]
fn error_messages() {
    let good = fs("tank", 1);
    // line 7, as in the module docs
    let mut rows: Vec<String> = (1..=6).map(|i| sn(&format!("tank@s{i}"), i, i)).collect();
    rows.insert(0, good.clone());
    rows.push(fs("tank/a", 99).replace("\t99\t", "\t12x\t"));
    insta::assert_snapshot!(err(&rows), @r#"line 8: column "guid": "12x" is not a number"#);
    rows.remove(1);
    insta::assert_snapshot!(err(&rows), @r#"line 7: column "guid": "12x" is not a number"#);

    insta::assert_snapshot!(
        err(&[good.clone(), "tank filesystem 1 5 1795000000 - - - off - - /tank 98304 - -".into()]),
        @"line 2: expected 15 tab-separated fields, found 1"
    );
    insta::assert_snapshot!(err(&[good.clone(), String::new(), fs("tank/a", 2)]), @"line 2: expected 15 tab-separated fields, found 1");
    insta::assert_snapshot!(err(&[format!("{good}\tx")]), @"line 1: expected 15 tab-separated fields, found 16");
    insta::assert_snapshot!(err(&[format!("{good}\r")]), @"line 1: the row ends with a carriage return");
    insta::assert_snapshot!(err(&[fs("tank//x", 1)]), @r#"line 1: column "name" holds an invalid name: invalid dataset name "tank//x": empty component (at byte 5)"#);
    insta::assert_snapshot!(err(&[fs("tank@x", 1)]), @r#"line 1: column "name" holds an invalid name: invalid dataset name "tank@x": character '@' is not allowed (at byte 4)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid snapshot name "tank": missing the '@' separator (at byte 4)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a@b", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid snapshot name "tank@a@b": unexpected '@' (at byte 6)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a#b", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid bookmark name "tank@a#b": unexpected '@' (at byte 4)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("tank@a", "tank@a#b")]), @r#"line 2: column "name" holds an invalid name: invalid snapshot name "tank@a#b": unexpected '#' (at byte 6)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a/b", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid snapshot name "tank@a/b": character '/' is not allowed (at byte 6)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank#a@b", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid bookmark name "tank#a@b": unexpected '@' (at byte 6)"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("ta nk/x@a", 2, 3)]), @r#"line 2: snapshot "ta nk/x@a" belongs to dataset "ta nk/x", which is not listed"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("c0/x@a", 2, 3)]), @r#"line 2: column "name" holds an invalid name: invalid snapshot name "c0/x@a": the pool name is reserved (at byte 0)"#);
    let long = format!("tank@{}", "x".repeat(251));
    assert_eq!(
        err(&[good.clone(), sn(&long, 2, 3)]),
        format!(
            r#"line 2: column "name" holds an invalid name: invalid snapshot name "{long}": the name is longer than 255 bytes (at byte 255)"#
        )
    );
    assert!(parse_list(&text(&[good.clone(), sn(&long[..255], 2, 3)])).is_ok());
    insta::assert_snapshot!(
        err(&[good.clone(), sn("tank@a", 2, 3).replace("\t0\t\t", "\t0\ttank/ok,tank//bad\t")]),
        @r#"line 2: column "clones" holds an invalid name: invalid dataset name "tank//bad": empty component (at byte 5)"#
    );
    insta::assert_snapshot!(
        err(&[good.clone(), sn("tank@a", 2, 3).replace("\t0\t\t", "\t0\ttank/%recv/x\t")]),
        @r#"line 2: column "clones" holds an invalid name: invalid dataset name "tank/%recv/x": character '%' is not allowed (at byte 5)"#
    );
    insta::assert_snapshot!(
        err(&[good.clone(), sn("tank@a", 2, 3).replace("\t0\t\t", "\t0\ttank/%\t")]),
        @r#"line 2: column "clones" holds an invalid name: invalid dataset name "tank/%": character '%' is not allowed (at byte 5)"#
    );
    insta::assert_snapshot!(
        err(&[fs("tank", 1).replace("\t-\toff\t", "\ttank\toff\t")]),
        @r#"line 1: column "origin" holds an invalid name: invalid snapshot name "tank": missing the '@' separator (at byte 4)"#
    );
    insta::assert_snapshot!(err(&[good.clone().replace("filesystem", "snap")]), @r#"line 1: unknown type "snap""#);
    insta::assert_snapshot!(err(&[good.clone().replace("filesystem", "all")]), @r#"line 1: unknown type "all""#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("\t0\t\t", "\t-\t\t")]), @r#"line 2: column "userrefs": "-" is not a number"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("\t3\t", "\t+3\t")]), @r#"line 2: column "createtxg": "+3" is not a number"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("\t2\t", "\t18446744073709551616\t")]), @r#"line 2: column "guid": "18446744073709551616" is not a number"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("1795446000", "")]), @r#"line 2: column "creation": "" is not a number"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("1795446000", "99999999999999999")]), @r#"line 2: column "creation": "99999999999999999" is out of range"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank@a", 2, 3).replace("\t0\t-", "\t1k\t-")]), @r#"line 2: column "used": "1k" is not a number"#);
    insta::assert_snapshot!(err(&[fs("tank", 1).replace("98304", "96K")]), @r#"line 1: column "used": "96K" is not a number"#);
    insta::assert_snapshot!(err(&[fs("tank", 1).replace("\t5\t", "\tfive\t")]), @r#"line 1: column "createtxg": "five" is not a number"#);

    // found once every row is read
    insta::assert_snapshot!(err(&[good.clone(), sn("tank/a@x", 2, 3), fs("tank/b", 3)]), @r#"line 2: snapshot "tank/a@x" belongs to dataset "tank/a", which is not listed"#);
    insta::assert_snapshot!(err(&[good.clone(), sn("tank/a#x", 2, 3)]), @r#"line 2: bookmark "tank/a#x" belongs to dataset "tank/a", which is not listed"#);
    insta::assert_snapshot!(err(&[good.clone(), fs("tank/a", 2), fs("tank", 3)]), @r#"line 3: dataset "tank" is listed twice"#);
    insta::assert_snapshot!(
        err(&[sn("tank@a", 5, 1), good.clone(), sn("tank@b", 6, 2), sn("tank@c", 5, 3)]),
        @r#"line 4: snapshot "tank@c" has guid 5, like snapshot "tank@a" of the same dataset"#
    );
    insta::assert_snapshot!(
        err(&[good.clone(), sn("tank@a", 5, 1), fs("tank/x", 7), sn("tank/x@a", 5, 1), sn("tank@a", 6, 2)]),
        @r#"line 5: snapshot "tank@a" is listed twice"#
    );
    insta::assert_snapshot!(
        err(&[sn("tank#a", 5, 1), sn("tank#a", 6, 2), good.clone()]),
        @r#"line 2: bookmark "tank#a" is listed twice"#
    );
}

#[test]
fn hidden_clones_pin_their_snapshot() {
    let rows = [
        fs("tank/in", 1),
        sn("tank/in@base", 2, 3).replace("\t0\t\t", "\t0\ttank/in/%recv,tank/c\t"),
        fs("tank/c", 4),
    ];
    let inv = parse_list(&text(&rows)).expect("valid");
    let s = &inv.datasets[&ds("tank/in")].snapshots[0];
    assert_eq!(s.hidden_clones, ["tank/in/%recv"]);
    assert_eq!(s.clones, [ds("tank/c")]);
    assert!(s.is_pinned());
    assert_eq!(parse_list(&render_list(&inv)), Ok(inv));
}

#[test]
fn bookmarks_may_share_a_guid_with_each_other_and_their_snapshot() {
    let rows = [
        fs("tank", 1),
        sn("tank@a", 5, 1),
        sn("tank#a", 5, 1),
        sn("tank#a2", 5, 1),
    ];
    let inv = parse_list(&text(&rows)).expect("valid");
    assert_eq!(inv.datasets[&ds("tank")].bookmarks.len(), 2);
}

#[test]
fn error_kinds_are_matchable() {
    let e = parse_list(&text(&[
        fs("tank", 1),
        sn("tank@a", 2, 3).replace("\t0\t\t", "\tx\t\t"),
    ]))
    .expect_err("bad userrefs");
    assert_eq!(e.line, 2);
    assert_eq!(
        e.kind,
        ListParseErrorKind::BadNumber {
            column: "userrefs",
            value: "x".into()
        }
    );
    let e = parse_list(&fs("t//", 1)).expect_err("bad name");
    assert!(matches!(
        e.kind,
        ListParseErrorKind::BadName { column: "name", .. }
    ));
    assert!(e.source().is_some());
}

#[test]
fn zfs_get() {
    let text = "tank/a@s\tzsnap:managed\tyes\tinherited from tank\n\
                tank/a\tused\t98304\t-\n\
                tank/a\tcompression\tlz4\tlocal\n\
                tank/a\tatime\ton\tdefault\n\
                tank/a\tmountpoint\t/mnt\ttemporary\n\
                tank/a\tzsnap:note\ta\tb\treceived\n\
                tank#b\tguid\t5\t-\n";
    let rows = parse_get(text).expect("valid");
    assert_eq!(rows.len(), 7);
    assert_eq!(
        rows[0].name,
        ObjectName::Snapshot("tank/a@s".parse().expect("valid"))
    );
    assert_eq!(rows[0].source, PropertySource::Inherited(ds("tank")));
    assert_eq!(rows[1].source, PropertySource::None);
    assert_eq!(
        (rows[2].property.as_str(), rows[2].value.as_str()),
        ("compression", "lz4")
    );
    assert_eq!(rows[2].source, PropertySource::Local);
    assert_eq!(rows[3].source, PropertySource::Default);
    assert_eq!(rows[4].source, PropertySource::Temporary);
    assert_eq!(rows[5].value, "a\tb");
    assert_eq!(rows[5].source, PropertySource::Received);
    assert!(matches!(rows[6].name, ObjectName::Bookmark(_)));
    assert_eq!(rows[6].name.to_string(), "tank#b");
    assert_eq!(parse_get(""), Ok(vec![]));

    let e = |t: &str| chain(&parse_get(t).expect_err("invalid"));
    insta::assert_snapshot!(e("tank\tused\t1"), @"line 1: expected 4 tab-separated fields, found 3");
    insta::assert_snapshot!(e("tank\tused\t1\t-\nta//nk\tused\t1\t-"), @r#"line 2: column "name" holds an invalid name: invalid dataset name "ta//nk": empty component (at byte 3)"#);
    insta::assert_snapshot!(e("tank\t\t1\t-"), @"line 1: empty property name");
    insta::assert_snapshot!(e("tank\tused\t1\tinherited"), @r#"line 1: unknown source "inherited""#);
    insta::assert_snapshot!(e("tank\tused\t1\tinherited from t@x"), @r#"line 1: column "source" holds an invalid name: invalid dataset name "t@x": character '@' is not allowed (at byte 1)"#);
    let k = parse_get("tank\tx").expect_err("invalid").kind;
    assert_eq!(k, GetParseErrorKind::TooFewFields { found: 2 });
}

// ---- generated inventories

fn short() -> impl Strategy<Value = ShortName> {
    "[a-zA-Z0-9_.:-][a-zA-Z0-9_.: -]{0,10}".prop_filter_map("valid short name", |s| s.parse().ok())
}

fn dataset_name() -> impl Strategy<Value = DatasetName> {
    (
        "[a-z][a-z0-9]{0,4}",
        prop::collection::vec("[a-zA-Z0-9_.: -]{1,8}", 0..3),
    )
        .prop_filter_map("valid dataset name", |(pool, comps)| {
            let mut s = pool;
            for c in comps {
                s.push('/');
                s.push_str(&c);
            }
            s.parse().ok()
        })
}

/// A property value as zfs could print it: no tab or newline, and not `-`.
fn value() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9 /:,._-]{0,12}".prop_filter("not the unset marker", |s| s != "-"))
}

fn creation() -> impl Strategy<Value = chrono::DateTime<chrono::Utc>> {
    (0i64..1 << 35).prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

prop_compose! {
    fn snapshot()(
        name in short(), guid in any::<u64>(), creation in creation(),
        userrefs in prop_oneof![3 => Just(0u64), 1 => any::<u64>()],
        clones in prop::collection::vec(dataset_name(), 0..3),
        hidden in prop::collection::vec(dataset_name().prop_map(|d| format!("{d}/%recv")), 0..2),
        managed in value(), expires in value(), used in prop::option::of(any::<u64>()),
    ) -> Snapshot {
        let mut s = Snapshot::new(name, Guid(guid), 0, creation);
        s.userrefs = userrefs;
        s.clones = clones;
        s.hidden_clones = hidden;
        s.managed = managed;
        s.expires = expires;
        s.used = used;
        s
    }
}

prop_compose! {
    fn dataset(distinct_txgs: bool)(
        name in dataset_name(), volume in any::<bool>(), guid in any::<u64>(),
        snaps in prop::collection::vec((snapshot(), 0u64..3), 0..8),
        books in prop::collection::vec((short(), any::<u64>(), 0u64..3, creation()), 0..3),
        encryption in value(), keystatus in value(), token in value(), mountpoint in value(),
        used in prop::option::of(any::<u64>()),
        origin in prop::option::of((dataset_name(), short())),
    ) -> Dataset {
        let kind = if volume { DatasetKind::Volume } else { DatasetKind::Filesystem };
        let mut d = Dataset::new(name, kind, Guid(guid));
        d.props.encryption = encryption;
        d.props.keystatus = keystatus;
        d.props.receive_resume_token = token;
        d.props.mountpoint = mountpoint;
        d.props.used = used;
        d.props.origin = origin.and_then(|(ds, s)| SnapshotName::new(ds, s).ok());
        let mut txg = 0;
        for (mut s, step) in snaps {
            txg += if distinct_txgs { step + 1 } else { step };
            s.createtxg = txg;
            let clash = d.snapshots.iter().any(|x| x.guid == s.guid || x.name == s.name);
            if !clash && SnapshotName::new(d.name.clone(), s.name.clone()).is_ok() {
                d.snapshots.push(s);
            }
        }
        let mut txg = 0;
        for (name, guid, step, creation) in books {
            txg += if distinct_txgs { step + 1 } else { step };
            let fits = zsnap_core::BookmarkName::new(d.name.clone(), name.clone()).is_ok();
            if fits && !d.bookmarks.iter().any(|b| b.name == name) {
                d.bookmarks.push(Bookmark::new(name, Guid(guid), txg, creation));
            }
        }
        d
    }
}

fn inventory(distinct_txgs: bool, min: usize) -> impl Strategy<Value = Inventory> {
    prop::collection::vec(dataset(distinct_txgs), min..5).prop_map(|dss| {
        let mut inv = Inventory::new();
        for d in dss {
            inv.insert(d);
        }
        inv
    })
}

proptest! {
    #[test]
    fn render_then_parse_gives_back_the_inventory(inv in inventory(false, 0)) {
        prop_assert_eq!(inv.validate(), Ok(()));
        let text = render_list(&inv);
        prop_assert_eq!(text.lines().count(), inv.datasets.len() + inv.snapshot_count()
            + inv.datasets.values().map(|d| d.bookmarks.len()).sum::<usize>());
        prop_assert!(text.lines().all(|l| l.split('\t').count() == LIST_COLUMNS.len()));
        prop_assert_eq!(parse_list(&text), Ok(inv));
    }

    /// With distinct txgs, the order of the rows is irrelevant.
    #[test]
    fn any_row_order_gives_the_same_inventory(
        (inv, order) in inventory(true, 0).prop_flat_map(|inv| {
            let n = render_list(&inv).lines().count();
            (Just(inv), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
    ) {
        let text = render_list(&inv);
        let lines: Vec<&str> = text.lines().collect();
        let shuffled: Vec<&str> = order.iter().map(|&i| lines[i]).collect();
        prop_assert_eq!(parse_list(&shuffled.join("\n")), Ok(inv));
    }

    /// Dropping one dataset row orphans its snapshots and bookmarks, and nothing else.
    #[test]
    fn a_missing_dataset_is_reported(inv in inventory(false, 1), pick in any::<prop::sample::Index>()) {
        let names: Vec<&DatasetName> = inv.datasets.keys().collect();
        let gone = names[pick.index(names.len())];
        let d = &inv.datasets[gone];
        let text = render_list(&inv);
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| l.split('\t').next() != Some(gone.as_str()))
            .collect();
        let result = parse_list(&kept.join("\n"));
        if d.snapshots.is_empty() && d.bookmarks.is_empty() {
            let mut expected = inv.clone();
            expected.datasets.remove(gone);
            prop_assert_eq!(result, Ok(expected));
        } else {
            let e = result.expect_err("orphans");
            let orphan = match e.kind {
                ListParseErrorKind::OrphanSnapshot { snapshot } => snapshot.dataset().clone(),
                ListParseErrorKind::OrphanBookmark { bookmark } => bookmark.dataset().clone(),
                other => return Err(TestCaseError::fail(format!("{other}"))),
            };
            prop_assert_eq!(&orphan, gone);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "([a-z/@# ]{0,8}|[0-9-]{0,3}|snapshot|bookmark|filesystem)(\t|\n|[a-z/@# ]{0,8}|[0-9-]{0,3}|snapshot){0,40}") {
        if let Ok(inv) = parse_list(&s) {
            prop_assert_eq!(inv.validate(), Ok(()));
            prop_assert_eq!(parse_list(&render_list(&inv)), Ok(inv));
        }
    }
}
