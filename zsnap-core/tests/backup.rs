//! Backups, the pure half: stream names, stores, sidecars, the catalog, and the backup,
//! prune, delete and restore decisions on hand-built stores (every user-facing error
//! message as an inline snapshot).

#[allow(
    dead_code,
    reason = "each test file uses a part of the shared builders"
)]
mod common {
    pub mod store;
}

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use common::store::{dsn, short, sidecar, t, Store};
use zsnap_core::backup::{
    backup_bookmark_name, parse_since, plan_backup, plan_backup_prune, resolve_restore,
    resolve_restore_with, BackupId, BackupMode, BackupPlan, BackupPlanError, BackupProtection,
    BackupRequest, BackupVerdict, Catalog, Compression, EntryState, Link, ObjectRole,
    RestoreTarget, Sha256, Sidecar, SidecarError, StoreObject, StoreUrl, StreamKind, StreamName,
};
use zsnap_core::retention::RetentionPolicy;
use zsnap_core::{
    Bookmark, Dataset, DatasetKind, Guid, Inventory, Location, Plan, SendBase, Snapshot, Step,
};

/// The message of an error and of all its causes, as a CLI prints it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

// ---------------------------------------------------------------------------------
// Stream names

#[test]
fn stream_names_round_trip_and_sort_by_time() {
    let mut keys = Vec::new();
    for (h, snap, kind, c) in [
        (
            0,
            "zsnap_daily_20261123T000000Z",
            StreamKind::Full,
            Compression::None,
        ),
        (
            1,
            "weird name: v1.2",
            StreamKind::Incremental {
                parent: short("zsnap_daily_20261123T000000Z"),
            },
            Compression::Zstd,
        ),
        (
            25,
            "a",
            StreamKind::Incremental {
                parent: short("weird name: v1.2"),
            },
            Compression::None,
        ),
    ] {
        let name = StreamName::new(dsn("tank/my data:x"), short(snap), t(h), kind, c).unwrap();
        let key = name.to_string();
        assert_eq!(key.parse::<StreamName>().unwrap(), name);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_%.-/".contains(&b)));
        assert_eq!(key.matches('/').count(), 1);
        assert!(key.starts_with(&StreamName::dataset_prefix(name.dataset())));
        keys.push(key);
    }
    insta::assert_snapshot!(keys.join("\n"), @r#"
        tank%2Fmy%20data%3Ax/20261123T000000Z_zsnap_daily_20261123T000000Z.full.zfs
        tank%2Fmy%20data%3Ax/20261123T010000Z_weird%20name%3A%20v1%2E2.inc-from-zsnap_daily_20261123T000000Z.zfs.zst
        tank%2Fmy%20data%3Ax/20261124T010000Z_a.inc-from-weird%20name%3A%20v1%2E2.zfs
        "#);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, keys, "keys of one dataset sort by time");
    // Fractions of a second are dropped, as ZFS's creation has none.
    let n = StreamName::new(
        dsn("tank"),
        short("a"),
        t(0) + TimeDelta::milliseconds(1500),
        StreamKind::Full,
        Compression::None,
    )
    .unwrap();
    assert_eq!(n.created(), t(0) + TimeDelta::seconds(1));
    // A child dataset's backups are under another prefix.
    assert_eq!(StreamName::dataset_prefix(&dsn("tank/a")), "tank%2Fa/");
    assert!(!"tank%2Fa%2Fb/x".starts_with("tank%2Fa/"));
}

#[test]
fn stream_name_errors() {
    let err = |s: &str| chain(&s.parse::<StreamName>().unwrap_err());
    insta::assert_snapshot!(err("tank"), @r#"invalid backup stream name "tank": expected DATASET/FILE with exactly one '/'"#);
    insta::assert_snapshot!(err("tank/a/20261123T150000Z_a.full.zfs"), @r#"invalid backup stream name "tank/a/20261123T150000Z_a.full.zfs": expected DATASET/FILE with exactly one '/'"#);
    insta::assert_snapshot!(err("tank/home/x"), @r#"invalid backup stream name "tank/home/x": expected DATASET/FILE with exactly one '/'"#);
    insta::assert_snapshot!(err("tank%2fhome/20261123T150000Z_a.full.zfs"), @r#"invalid backup stream name "tank%2fhome/20261123T150000Z_a.full.zfs": bad escape at byte 4: '%' must be followed by two uppercase hex digits of a character that is not written as itself"#);
    insta::assert_snapshot!(err("tank%41/20261123T150000Z_a.full.zfs"), @r#"invalid backup stream name "tank%41/20261123T150000Z_a.full.zfs": bad escape at byte 4: '%' must be followed by two uppercase hex digits of a character that is not written as itself"#);
    insta::assert_snapshot!(err("%2Ftank/20261123T150000Z_a.full.zfs"), @r#"invalid backup stream name "%2Ftank/20261123T150000Z_a.full.zfs": the dataset part is not a dataset name: invalid dataset name "/tank": empty component (at byte 0)"#);
    insta::assert_snapshot!(err("tank/20261323T150000Z_a.full.zfs"), @r#"invalid backup stream name "tank/20261323T150000Z_a.full.zfs": expected a UTC time like 20261123T150000Z at byte 5"#);
    insta::assert_snapshot!(err("tank/20261123T150000Za.full.zfs"), @r#"invalid backup stream name "tank/20261123T150000Za.full.zfs": expected '_' after the time at byte 21"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a.full.zst"), @r#"invalid backup stream name "tank/20261123T150000Z_a.full.zst": the name ends in neither .zfs nor .zfs.zst"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a.fool.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_a.fool.zfs": expected .full or .inc-from-PARENT after the snapshot name at byte 24"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a.b.full.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_a.b.full.zfs": expected .full or .inc-from-PARENT after the snapshot name at byte 24"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_.full.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_.full.zfs": the snapshot part is not a snapshot name: invalid snapshot name "": the name is empty (at byte 0)"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a.inc-from-.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_a.inc-from-.zfs": the parent part is not a snapshot name: invalid snapshot name "": the name is empty (at byte 0)"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a.inc-from-a.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_a.inc-from-a.zfs": an incremental stream cannot have its own snapshot as parent"#);
    insta::assert_snapshot!(err("tank/20261123T150000Z_a%40b.full.zfs"), @r#"invalid backup stream name "tank/20261123T150000Z_a%40b.full.zfs": the snapshot part is not a snapshot name: invalid snapshot name "a@b": character '@' is not allowed (at byte 1)"#);
    let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    let e = StreamName::new(
        dsn("tank"),
        short("a"),
        far,
        StreamKind::Full,
        Compression::None,
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @r#"invalid backup stream name "tank@a": the time +10000-01-01 00:00:00 UTC is outside the years 0000 to 9999"#);
    insta::assert_snapshot!(chain(&"lz4".parse::<Compression>().unwrap_err()), @r#"unknown compression "lz4": expected "none" or "zstd""#);
}

// ---------------------------------------------------------------------------------
// Stores

#[test]
fn store_urls_parse_and_print() {
    for (input, printed) in [
        ("dir:/mnt/usb/zsnap", "dir:/mnt/usb/zsnap"),
        ("dir:/mnt/usb/zsnap/", "dir:/mnt/usb/zsnap"),
        ("dir:/", "dir:/"),
        ("dir:/with space/ünïcode", "dir:/with space/ünïcode"),
        ("s3://bucket", "s3://bucket"),
        ("s3://bucket/", "s3://bucket"),
        ("s3://my.bucket-1/a/b=c/", "s3://my.bucket-1/a/b=c"),
    ] {
        let url: StoreUrl = input.parse().unwrap();
        assert_eq!(url.to_string(), printed);
        assert_eq!(printed.parse::<StoreUrl>().unwrap(), url);
        let json = serde_json::to_string(&url).unwrap();
        assert_eq!(serde_json::from_str::<StoreUrl>(&json).unwrap(), url);
    }
    let root: StoreUrl = "dir:/".parse().unwrap();
    assert_eq!(root.object_path("a/b"), "/a/b");
    let bucket: StoreUrl = "s3://bucket".parse().unwrap();
    assert_eq!(bucket.object_path("a/b"), "a/b");
    // The tag is stable: bookmarks made by earlier versions must still be recognized.
    assert_eq!(bucket.tag(), bucket.clone().tag());
    insta::assert_snapshot!(bucket.tag(), @"a11215e3");
    assert_ne!(bucket.tag(), root.tag());
}

#[test]
fn store_url_errors() {
    let err = |s: &str| chain(&s.parse::<StoreUrl>().unwrap_err());
    insta::assert_snapshot!(err("/mnt/backup"), @r#"invalid store "/mnt/backup": expected dir:/absolute/path or s3://bucket/prefix"#);
    insta::assert_snapshot!(err("file:///mnt/backup"), @r#"invalid store "file:///mnt/backup": expected dir:/absolute/path or s3://bucket/prefix"#);
    insta::assert_snapshot!(err("dir:mnt/backup"), @r#"invalid store "dir:mnt/backup": the path must be absolute (begin with '/')"#);
    insta::assert_snapshot!(err("dir:"), @r#"invalid store "dir:": the path must be absolute (begin with '/')"#);
    insta::assert_snapshot!(err("dir://mnt"), @r#"invalid store "dir://mnt": empty path component (at byte 5)"#);
    insta::assert_snapshot!(err("dir:/mnt//backup"), @r#"invalid store "dir:/mnt//backup": empty path component (at byte 9)"#);
    insta::assert_snapshot!(err("dir:/mnt/./backup"), @r#"invalid store "dir:/mnt/./backup": the path may not contain "." or ".." components (at byte 9)"#);
    insta::assert_snapshot!(err("dir:/mnt/backup/.."), @r#"invalid store "dir:/mnt/backup/..": the path may not contain "." or ".." components (at byte 16)"#);
    insta::assert_snapshot!(err("dir:/mnt/back\nup"), @r#"invalid store "dir:/mnt/back\nup": control character '\n' (at byte 13)"#);
    insta::assert_snapshot!(err("s3://bucket/pre\tfix"), @r#"invalid store "s3://bucket/pre\tfix": control character '\t' (at byte 15)"#);
    insta::assert_snapshot!(err("s3://"), @r#"invalid store "s3://": invalid bucket name "": a bucket name has 3 to 63 characters"#);
    insta::assert_snapshot!(err("s3://ab"), @r#"invalid store "s3://ab": invalid bucket name "ab": a bucket name has 3 to 63 characters"#);
    insta::assert_snapshot!(err("s3://My_Bucket"), @r#"invalid store "s3://My_Bucket": invalid bucket name "My_Bucket": a bucket name uses only a-z, 0-9, '.' and '-'"#);
    insta::assert_snapshot!(err("s3://-bucket"), @r#"invalid store "s3://-bucket": invalid bucket name "-bucket": a bucket name begins and ends with a letter or a digit"#);
    insta::assert_snapshot!(err("s3://my..bucket"), @r#"invalid store "s3://my..bucket": invalid bucket name "my..bucket": a bucket name has no two dots in a row"#);
    insta::assert_snapshot!(err("s3://192.168.1.10"), @r#"invalid store "s3://192.168.1.10": invalid bucket name "192.168.1.10": a bucket name is not an IP address"#);
    insta::assert_snapshot!(err("s3://bucket//prefix"), @r#"invalid store "s3://bucket//prefix": empty path component (at byte 12)"#);
    insta::assert_snapshot!(err("s3://bucket//"), @r#"invalid store "s3://bucket//": empty path component (at byte 12)"#);
    insta::assert_snapshot!(err("s3://bucket/a/../b"), @r#"invalid store "s3://bucket/a/../b": the path may not contain "." or ".." components (at byte 14)"#);
    insta::assert_snapshot!(err("s3://bucket/a b"), @r#"invalid store "s3://bucket/a b": character ' ' is not allowed in a prefix (at byte 13); use A-Z a-z 0-9 . _ = - and /"#);
}

// ---------------------------------------------------------------------------------
// Sidecars

#[test]
fn sidecar_json_round_trips_and_is_documented() {
    let sc = sidecar(
        "tank/home",
        "zsnap_hourly_20261123T030000Z",
        3,
        Some(("zsnap_daily_20261123T000000Z", 1)),
    );
    let json = sc.to_json();
    insta::assert_snapshot!(json, @r#"
        {
          "format": 1,
          "kind": "incremental",
          "dataset": "tank/home",
          "snapshot": "zsnap_hourly_20261123T030000Z",
          "guid": "3",
          "createtxg": 3,
          "created": "2026-11-23T03:00:00Z",
          "parent": {
            "snapshot": "zsnap_daily_20261123T000000Z",
            "guid": "1"
          },
          "raw": false,
          "compression": "none",
          "size": 1003,
          "sha256": "0303030303030303030303030303030303030303030303030303030303030303",
          "zsnap_version": "0.1.0"
        }
        "#);
    assert_eq!(Sidecar::parse(json.as_bytes()).unwrap(), sc);
    assert_eq!(
        serde_json::to_value(&sc).unwrap(),
        serde_json::from_str::<serde_json::Value>(&json).unwrap()
    );
    sc.check_stream(&sc.stream_name().unwrap()).unwrap();
    // A 64-bit guid survives as a string, where a double would round it.
    let mut big = sc.clone();
    big.guid = Guid(u64::MAX - 1);
    assert!(big.to_json().contains("\"18446744073709551614\""));
    assert_eq!(Sidecar::parse(big.to_json().as_bytes()).unwrap(), big);
}

fn sidecar_json_with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let sc = sidecar("tank/home", "b", 3, Some(("a", 1)));
    let mut v: serde_json::Value = serde_json::from_str(&sc.to_json()).unwrap();
    if value.is_null() {
        v.as_object_mut().unwrap().remove(field);
    } else {
        v[field] = value;
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn sidecar_errors() {
    use serde_json::json;
    let err = |b: &[u8]| chain(&Sidecar::parse(b).unwrap_err());
    insta::assert_snapshot!(err(b"not json"), @"the sidecar is not a JSON object of the expected fields: expected ident at line 1 column 2");
    insta::assert_snapshot!(err(b"[1, 2]"), @"the sidecar is not a JSON object");
    insta::assert_snapshot!(err(&vec![b' '; 70_000]), @"the sidecar is 70000 bytes, more than the 65536 a sidecar may have");
    insta::assert_snapshot!(err(&sidecar_json_with("format", json!(2))), @"sidecar format 2 is not supported (this zsnap reads format 1)");
    insta::assert_snapshot!(err(&sidecar_json_with("size", serde_json::Value::Null)), @"the sidecar is not a JSON object of the expected fields: missing field `size`");
    insta::assert_snapshot!(err(&sidecar_json_with("extra", json!(true))), @"the sidecar is not a JSON object of the expected fields: unknown field `extra`, expected one of `format`, `kind`, `dataset`, `snapshot`, `guid`, `createtxg`, `created`, `parent`, `raw`, `compression`, `size`, `sha256`, `zsnap_version`");
    insta::assert_snapshot!(err(&sidecar_json_with("size", json!(-1))), @"the sidecar is not a JSON object of the expected fields: invalid value: integer `-1`, expected u64");
    insta::assert_snapshot!(err(&sidecar_json_with("dataset", json!("tank/../etc"))), @r#"field "dataset" is not a dataset name: invalid dataset name "tank/../etc": component may not be "." or ".." (at byte 5)"#);
    insta::assert_snapshot!(err(&sidecar_json_with("snapshot", json!("x@y"))), @r#"field "snapshot" is not a snapshot name: invalid snapshot name "x@y": character '@' is not allowed (at byte 1)"#);
    insta::assert_snapshot!(err(&sidecar_json_with("guid", json!(3))), @"the sidecar is not a JSON object of the expected fields: invalid type: integer `3`, expected a string");
    insta::assert_snapshot!(err(&sidecar_json_with("guid", json!("03"))), @r#"field "guid" is "03", not a guid (a non-zero decimal number in a string)"#);
    insta::assert_snapshot!(err(&sidecar_json_with("guid", json!("18446744073709551616"))), @r#"field "guid" is "18446744073709551616", not a guid (a non-zero decimal number in a string)"#);
    insta::assert_snapshot!(err(&sidecar_json_with("created", json!("2026-11-23T03:00:00+01:00"))), @r#"field "created" is "2026-11-23T03:00:00+01:00", not a UTC time in whole seconds like "2026-11-23T15:00:00Z""#);
    insta::assert_snapshot!(err(&sidecar_json_with("created", json!("2026-11-23T03:00:00.5Z"))), @r#"field "created" is "2026-11-23T03:00:00.5Z", not a UTC time in whole seconds like "2026-11-23T15:00:00Z""#);
    insta::assert_snapshot!(err(&sidecar_json_with("kind", json!("differential"))), @r#"field "kind" is "differential", expected "full" or "incremental""#);
    insta::assert_snapshot!(err(&sidecar_json_with("kind", json!("full"))), @r#"a full backup has a "parent""#);
    insta::assert_snapshot!(err(&sidecar_json_with("parent", serde_json::Value::Null)), @r#"an incremental backup has no "parent""#);
    insta::assert_snapshot!(err(&sidecar_json_with("parent", json!({"snapshot": "b", "guid": "1"}))), @"the parent is the snapshot itself");
    insta::assert_snapshot!(err(&sidecar_json_with("parent", json!({"snapshot": "a", "guid": "3"}))), @"the parent is the snapshot itself");
    insta::assert_snapshot!(err(&sidecar_json_with("parent", json!({"snapshot": "a/b", "guid": "1"}))), @r#"field "parent.snapshot" is not a snapshot name: invalid snapshot name "a/b": character '/' is not allowed (at byte 1)"#);
    insta::assert_snapshot!(err(&sidecar_json_with("compression", json!("lz4"))), @r#"field "compression" is "lz4", expected "none" or "zstd""#);
    insta::assert_snapshot!(err(&sidecar_json_with("sha256", json!("ABCD"))), @r#"field "sha256" is "ABCD", not 64 lowercase hex digits"#);
    insta::assert_snapshot!(err(&sidecar_json_with("zsnap_version", json!("0.1.0 \u{1b}[31mred"))), @r#"field "zsnap_version" is "0.1.0 \u{1b}[31mred", expected 1 to 64 characters of A-Z a-z 0-9 . + -"#);
    insta::assert_snapshot!(err(&sidecar_json_with("kind", json!("x".repeat(100)))), @r#"field "kind" is "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…, expected "full" or "incremental""#);
    let mut full = sidecar("tank/home", "a", 1, None);
    let full_json = full
        .to_json()
        .replace("\"kind\": \"full\"", "\"kind\": \"incremental\"");
    insta::assert_snapshot!(err(full_json.as_bytes()), @r#"an incremental backup has no "parent""#);

    // The sidecar and the stream's name must agree.
    let name = full.stream_name().unwrap();
    let mismatch = |sc: &Sidecar| chain(&sc.check_stream(&name).unwrap_err());
    full.dataset = dsn("tank/other");
    insta::assert_snapshot!(mismatch(&full), @r#"the sidecar says dataset is "tank/other" but the stream's name says "tank/home""#);
    full = sidecar("tank/home", "a", 1, None);
    full.created = t(2);
    insta::assert_snapshot!(mismatch(&full), @r#"the sidecar says created is "2026-11-23T02:00:00Z" but the stream's name says "2026-11-23T01:00:00Z""#);
    let inc = sidecar("tank/home", "a", 1, Some(("z", 9)));
    insta::assert_snapshot!(mismatch(&inc), @r#"the sidecar says kind is "incremental" but the stream's name says "full""#);
    let zstd = StreamName::new(
        dsn("tank/home"),
        short("a"),
        t(1),
        StreamKind::Full,
        Compression::Zstd,
    )
    .unwrap();
    insta::assert_snapshot!(chain(&sidecar("tank/home", "a", 1, None).check_stream(&zstd).unwrap_err()), @r#"the sidecar says compression is "none" but the stream's name says "zstd""#);

    // What the executor may not write.
    let e = Sidecar::new(
        &name,
        Guid(1),
        1,
        Some(Guid(2)),
        false,
        1,
        Sha256::from_bytes([0; 32]),
        "0.1.0",
    )
    .unwrap_err();
    assert!(matches!(e, SidecarError::UnexpectedParent));
    let e = Sidecar::new(
        &name,
        Guid(0),
        1,
        None,
        false,
        1,
        Sha256::from_bytes([0; 32]),
        "0.1.0",
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @r#"field "guid" is "0", not a guid (a non-zero decimal number in a string)"#);
    insta::assert_snapshot!(chain(&"xyz".parse::<Sha256>().unwrap_err()), @r#""xyz" is not a SHA-256 digest (64 lowercase hex digits)"#);
}

// ---------------------------------------------------------------------------------
// Catalog

#[test]
fn catalog_classifies_links_and_chains_by_guid() {
    let mut s = Store::default();
    let f1 = s.put(&sidecar("tank/home", "s1", 1, None));
    let i2 = s.put(&sidecar("tank/home", "s2", 2, Some(("s1", 1))));
    // s3's parent is named s2 but has s1's guid: linking is by guid, not by name.
    let i3 = s.put(&sidecar("tank/home", "s3", 3, Some(("s2-renamed", 2))));
    // A second full of s3 makes a shorter chain for it, which s4 is then restored through.
    let f3 = s.put(&sidecar("tank/home", "s3", 3, None));
    let i4 = s.put(&sidecar("tank/home", "s4", 4, Some(("s3", 3))));
    // A broken chain: s6's parent (guid 5) was never backed up.
    let b6 = s.put(&sidecar("tank/home", "s6", 6, Some(("s5", 5))));
    let b7 = s.put(&sidecar("tank/home", "s7", 7, Some(("s6", 6))));
    // Unfinished, damaged in several ways, an orphan sidecar, foreign objects.
    let u8_ = s.put_unfinished(&sidecar("tank/home", "s8", 8, Some(("s4", 4))), t(100));
    let bad = sidecar("tank/home", "s9", 9, None).stream_name().unwrap();
    s.objects.push(StoreObject::new(bad.key(), 10, t(100)));
    s.put_raw(&bad.sidecar_key(), b"{\"format\": 1}");
    let wrong_size = s.put(&sidecar("tank/home", "s10", 10, None));
    s.objects
        .iter_mut()
        .find(|o| o.key == wrong_size.as_str())
        .unwrap()
        .size = 1;
    let unread = s.put(&sidecar("tank/home", "s11", 11, None));
    s.sidecars.remove(&format!("{unread}.json"));
    let gone = sidecar("tank/home", "s12", 12, None).stream_name().unwrap();
    s.put_raw(&gone.sidecar_key(), b"{}");
    s.put_raw("tank%2Fhome/notes.txt", b"hello");
    s.put_raw("README", b"hello");
    s.put(&sidecar("tank/other", "x", 20, None));

    let c = s.catalog();
    assert_eq!(c.foreign, ["README", "tank%2Fhome/notes.txt"]);
    // A sidecar without its stream is a lost backup, shown as missing (never dropped)…
    assert!(c.orphan_sidecars.is_empty());
    let missing = c.entry(&BackupId::from(&gone)).unwrap();
    assert_eq!(missing.state, EntryState::Missing);
    assert!(missing.sidecar_listed && !missing.is_restorable());
    assert!(c.keys().any(|k| k == gone.sidecar_key()));
    assert!(!c.keys().any(|k| k == gone.key()));
    // …unless an interrupted deletion records it: then the next prune finishes it.
    let mut interrupted = Store {
        objects: s.objects.clone(),
        sidecars: s.sidecars.clone(),
        ..Store::default()
    };
    interrupted.pending.insert(gone.sidecar_key());
    let ci = interrupted.catalog();
    assert_eq!(ci.orphan_sidecars, [gone.sidecar_key()]);
    assert!(ci.entry(&BackupId::from(&gone)).is_none());
    let home = c.dataset(&dsn("tank/home")).unwrap();
    let e = |id: &BackupId| c.entry(id).unwrap();
    assert_eq!(e(&f1).link, Some(Link::Full));
    assert_eq!(e(&i2).link, Some(Link::Parent { id: f1.clone() }));
    assert_eq!(e(&i3).link, Some(Link::Parent { id: i2.clone() }));
    assert_eq!(e(&i3).chain_len, Some(3));
    assert_eq!(e(&f3).chain_len, Some(1));
    assert_eq!(e(&i4).link, Some(Link::Parent { id: f3.clone() }));
    assert_eq!(
        e(&b6).link,
        Some(Link::Broken {
            parent: short("s5"),
            guid: Guid(5)
        })
    );
    assert!(matches!(e(&b7).link, Some(Link::Broken { .. })));
    assert_eq!(e(&u8_).state, EntryState::Unfinished);
    assert!(!e(&u8_).sidecar_listed);
    let problems: Vec<String> = home
        .entries
        .iter()
        .filter_map(|e| match &e.state {
            EntryState::Damaged { problem } => Some(format!("{}: {problem}", e.stream.snapshot())),
            _ => None,
        })
        .collect();
    insta::assert_snapshot!(problems.join("\n"), @r#"
        s9: unusable sidecar: the sidecar is not a JSON object of the expected fields: missing field `kind`
        s10: the stream object has 1 bytes but its sidecar says 1010
        s11: its sidecar is listed but was not read
        "#);
    let chains: Vec<String> = home
        .chains()
        .iter()
        .map(|ch| {
            let names: Vec<String> = ch
                .members
                .iter()
                .map(|id| {
                    let en = e(id);
                    format!(
                        "{}({})",
                        en.stream.snapshot(),
                        if en.stream.parent().is_some() {
                            "inc"
                        } else {
                            "full"
                        }
                    )
                })
                .collect();
            names.join(" → ")
        })
        .collect();
    insta::assert_snapshot!(chains.join("\n"), @r#"
        s1(full) → s2(inc) → s3(inc)
        s3(full) → s4(inc)
        "#);
    assert_eq!(home.broken().count(), 2);
    // Every key the store listed is known to the catalog.
    let mut known: Vec<String> = c.keys().collect();
    known.sort();
    let mut listed: Vec<String> = s.objects.iter().map(|o| o.key.clone()).collect();
    listed.sort();
    assert_eq!(known, listed);
    // Ids parse from user input; junk does not.
    assert_eq!(i2.as_str().parse::<BackupId>().unwrap(), i2);
    assert!("junk".parse::<BackupId>().is_err());
    assert_eq!(Catalog::sidecar_keys(&s.objects).len(), 12);
}

#[test]
fn newest_with_guid_in_prefers_newest_then_snapshots_over_bookmarks() {
    let mut s = Store::default();
    s.put(&sidecar("tank", "s1", 1, None));
    s.put(&sidecar("tank", "s2", 2, Some(("s1", 1))));
    s.put(&sidecar("tank", "s4", 4, Some(("s3", 3)))); // broken: not a base
    let c = s.catalog();
    let mut src = Dataset::new(dsn("tank"), DatasetKind::Filesystem, Guid(99));
    assert_eq!(c.newest_with_guid_in(&src), None);
    src.insert_bookmark(Bookmark::new(short("bm1"), Guid(1), 1, t(1)));
    src.insert_snapshot(Snapshot::new(short("s1"), Guid(1), 1, t(1)));
    let b = c.newest_with_guid_in(&src).unwrap();
    assert_eq!(
        b.base,
        SendBase::Snapshot {
            name: short("s1"),
            guid: Guid(1)
        }
    );
    src.insert_bookmark(Bookmark::new(short("bm2"), Guid(2), 2, t(2)));
    src.insert_snapshot(Snapshot::new(short("s4"), Guid(4), 4, t(4)));
    let b = c.newest_with_guid_in(&src).unwrap();
    assert_eq!(
        b.base,
        SendBase::Bookmark {
            name: short("bm2"),
            guid: Guid(2)
        }
    );
    assert_eq!(b.createtxg, 2);
}

// ---------------------------------------------------------------------------------
// Planning backups

fn source() -> Dataset {
    let mut d = Dataset::new(dsn("tank/home"), DatasetKind::Filesystem, Guid(500));
    for n in 1..=4 {
        d.insert_snapshot(Snapshot::new(
            short(&format!("s{n}")),
            Guid(n),
            n,
            t(n as i64),
        ));
    }
    d
}

fn store_url() -> StoreUrl {
    "s3://zsnap-backups/host1".parse().unwrap()
}

fn inv(d: &Dataset) -> BTreeMap<Location, Inventory> {
    let mut inv = Inventory::new();
    inv.insert(d.clone());
    BTreeMap::from([(Location::local(), inv)])
}

fn request(mode: BackupMode, snap: Option<&str>) -> BackupRequest {
    BackupRequest::new(dsn("tank/home"), store_url(), mode).with_snapshot(snap.map(short))
}

fn send_plan(p: BackupPlan) -> (Plan, StreamName) {
    match p {
        BackupPlan::Send { plan, stream } => (plan, stream),
        other => panic!("expected a send, got {other:?}"),
    }
}

#[test]
fn modes_and_their_priority() {
    assert_eq!(
        BackupMode::from_flags(Some(short("a")), true),
        BackupMode::Since(short("a"))
    );
    assert_eq!(
        BackupMode::from_flags(None, true),
        BackupMode::AutoIncremental
    );
    assert_eq!(BackupMode::from_flags(None, false), BackupMode::Full);
    let d = dsn("tank/home");
    assert_eq!(parse_since(&d, "@s1").unwrap(), short("s1"));
    let err = |s: &str| chain(&parse_since(&d, s).unwrap_err());
    insta::assert_snapshot!(err("tank/other@s1"), @r#"--since "tank/other@s1" names a snapshot of tank/other, but the backup is of tank/home; give the name of a snapshot of tank/home, without '@'"#);
    insta::assert_snapshot!(err("tank/home#s1"), @r#"--since "tank/home#s1" names a bookmark; give the name of a snapshot"#);
    insta::assert_snapshot!(err("tank/s1"), @r#"--since "tank/s1" is not a snapshot name: invalid snapshot name "tank/s1": character '/' is not allowed (at byte 4)"#);
    insta::assert_snapshot!(err(""), @r#"--since "" is not a snapshot name: invalid snapshot name "": the name is empty (at byte 0)"#);
}

#[test]
fn full_then_auto_incremental_then_since_with_bookmarks_and_simulation() {
    let mut src = source();
    let mut s = Store::default();
    // Full of s2: a backup step, then its bookmark.
    let (plan, stream) = send_plan(
        plan_backup(
            &request(BackupMode::Full, Some("s2")),
            &src,
            &s.catalog(),
            t(10),
        )
        .unwrap(),
    );
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-23T10:00:00Z: 2 steps

        steps:
          1  local  backup full  tank/home@s2 → s3://zsnap-backups/host1/tank%2Fhome/20261123T020000Z_s2.full.zfs  — full backup to s3://zsnap-backups/host1
          2  local  bookmark     tank/home@s2 → tank/home#zsnap-backup_0c2423a5_0000000000000002  — base of the next incremental backup to s3://zsnap-backups/host1
        "#);
    let after = plan.simulate_at(&inv(&src)).unwrap();
    src = after[&Location::local()]
        .dataset(&dsn("tank/home"))
        .unwrap()
        .clone();
    let Step::Backup(step) = &plan.steps[0] else {
        unreachable!()
    };
    let sc = step
        .sidecar(1000, Sha256::from_bytes([1; 32]), "0.1.0")
        .unwrap();
    assert_eq!(sc.stream_name().unwrap(), stream);
    s.put(&sc);
    // Local pruning removes s2; the bookmark still carries its guid.
    src.snapshots.retain(|x| x.name.as_str() != "s2");
    let (plan, stream) = send_plan(
        plan_backup(
            &request(BackupMode::AutoIncremental, Some("s4")),
            &src,
            &s.catalog(),
            t(11),
        )
        .unwrap(),
    );
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-23T11:00:00Z: 3 steps

        steps:
          1  local  backup incremental  tank/home@s4 → s3://zsnap-backups/host1/tank%2Fhome/20261123T040000Z_s4.inc-from-s2.zfs  — incremental backup to s3://zsnap-backups/host1 (auto, from bookmark zsnap-backup_0c2423a5_0000000000000002 of s2)
          2  local  bookmark            tank/home@s4 → tank/home#zsnap-backup_0c2423a5_0000000000000004  — base of the next incremental backup to s3://zsnap-backups/host1
          3  local  destroy bookmark    tank/home#zsnap-backup_0c2423a5_0000000000000002  — superseded by the bookmark of s4 for s3://zsnap-backups/host1
        "#);
    assert_eq!(stream.parent(), Some(&short("s2")));
    let after = plan.simulate_at(&inv(&src)).unwrap();
    src = after[&Location::local()]
        .dataset(&dsn("tank/home"))
        .unwrap()
        .clone();
    let bms: Vec<String> = src.bookmarks.iter().map(|b| b.name.to_string()).collect();
    assert_eq!(
        bms,
        [backup_bookmark_name(&store_url(), Guid(4)).to_string()]
    );
    let Step::Backup(step) = &plan.steps[0] else {
        unreachable!()
    };
    s.put(
        &step
            .sidecar(10, Sha256::from_bytes([2; 32]), "0.1.0")
            .unwrap(),
    );
    let c = s.catalog();
    assert_eq!(
        c.entry(&BackupId::from(&stream)).unwrap().chain_len,
        Some(2)
    );
    // Backing up s4 again automatically is refused; s3 since s1 is not restorable.
    let e = plan_backup(
        &request(BackupMode::AutoIncremental, Some("s4")),
        &src,
        &c,
        t(12),
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @"tank/home@s4 is backed up in s3://zsnap-backups/host1 already, as tank%2Fhome/20261123T040000Z_s4.inc-from-s2.zfs");
    let e = plan_backup(
        &request(BackupMode::Since(short("s1")), Some("s3")),
        &src,
        &c,
        t(12),
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @"the --since base tank/home@s1 has no restorable backup in s3://zsnap-backups/host1, so an incremental from it could never be restored; back it up first, or make a full backup");
    // An older snapshot since the newest: refused; s3 since s1 when s1 is backed up works
    // and leaves the newer bookmark alone.
    let e = plan_backup(
        &request(BackupMode::Since(short("s4")), Some("s3")),
        &src,
        &c,
        t(12),
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @"the --since base tank/home@s4 is not older than tank/home@s3");
    s.put(&sidecar("tank/home", "s1", 1, None));
    let (plan, _) = send_plan(
        plan_backup(
            &request(BackupMode::Since(short("s1")), Some("s3")),
            &src,
            &s.catalog(),
            t(12),
        )
        .unwrap(),
    );
    assert_eq!(plan.steps.len(), 1);
    insta::assert_snapshot!(plan.notes[0].message, @"bookmark zsnap-backup_0c2423a5_0000000000000004 of a newer backup stays the base for the next incremental to s3://zsnap-backups/host1");
    plan.simulate_at(&inv(&src)).unwrap();
}

#[test]
fn a_new_snapshot_is_taken_first_and_checked_before() {
    let src = source();
    let c = Store::default().catalog();
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap();
    let p = plan_backup(&request(BackupMode::AutoIncremental, None), &src, &c, now).unwrap();
    let BackupPlan::TakeSnapshot { plan, snapshot } = p else {
        panic!("{p:?}")
    };
    insta::assert_snapshot!(plan.render(), @r#"
        plan for 2026-11-24T03:00:00Z: 1 step

        steps:
          1  local  snapshot  tank/home@zsnap_backup_20261124T030000Z  — backup to s3://zsnap-backups/host1
        "#);
    let after = plan.simulate_at(&inv(&src)).unwrap();
    let src = after[&Location::local()]
        .dataset(&dsn("tank/home"))
        .unwrap();
    let again =
        request(BackupMode::AutoIncremental, None).with_snapshot(Some(snapshot.short().clone()));
    let (plan, stream) = send_plan(plan_backup(&again, src, &c, now).unwrap());
    assert_eq!(stream.snapshot(), snapshot.short());
    plan.simulate_at(&after).unwrap();
    // Problems are found before anything is taken.
    let later = now + TimeDelta::hours(1);
    let e = plan_backup(
        &request(BackupMode::Since(short("nope")), None),
        src,
        &c,
        later,
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @"the --since base tank/home@nope does not exist");
    let e = plan_backup(
        &request(BackupMode::Since(short("s1")), None),
        src,
        &c,
        later,
    )
    .unwrap_err();
    insta::assert_snapshot!(chain(&e), @"the --since base tank/home@s1 has no restorable backup in s3://zsnap-backups/host1, so an incremental from it could never be restored; back it up first, or make a full backup");
}

#[test]
fn encrypted_sources_are_sent_raw_and_compression_names_the_stream() {
    let mut src = source();
    src.props.encryption = Some("aes-256-gcm".to_owned());
    let req = request(BackupMode::Full, Some("s1")).with_compression(Compression::Zstd);
    let (plan, stream) =
        send_plan(plan_backup(&req, &src, &Store::default().catalog(), t(10)).unwrap());
    let Step::Backup(step) = &plan.steps[0] else {
        unreachable!()
    };
    assert!(step.raw);
    assert!(stream.key().ends_with(".full.zfs.zst"));
    assert!(
        step.sidecar(1, Sha256::from_bytes([0; 32]), "0.1.0")
            .unwrap()
            .raw
    );
    plan.simulate_at(&inv(&src)).unwrap();
    // The simulation refuses a backup step that is not raw for an encrypted source.
    let mut bad = plan.clone();
    let Step::Backup(step) = &mut bad.steps[0] else {
        unreachable!()
    };
    step.raw = false;
    insta::assert_snapshot!(chain(&bad.simulate_at(&inv(&src)).unwrap_err()), @"step 1 (backup at local): source tank/home is encrypted and the send is not raw (-w)");
}

#[test]
fn plan_backup_errors() {
    let src = source();
    let mut s = Store::default();
    s.put(&sidecar("tank/home", "s1", 1, None));
    let c = s.catalog();
    let err = |req: BackupRequest, src: &Dataset, c: &Catalog| {
        chain(&plan_backup(&req, src, c, t(10)).unwrap_err())
    };
    let other = BackupRequest::new(dsn("tank/other"), store_url(), BackupMode::Full);
    insta::assert_snapshot!(err(other, &src, &c), @"the backup is of tank/other but the listing given is of tank/home");
    insta::assert_snapshot!(err(request(BackupMode::Full, Some("nope")), &src, &c), @"snapshot tank/home@nope does not exist");
    insta::assert_snapshot!(err(request(BackupMode::Full, Some("s1")), &src, &c), @"tank/home@s1 is backed up in s3://zsnap-backups/host1 already, as tank%2Fhome/20261123T010000Z_s1.full.zfs");
    insta::assert_snapshot!(err(request(BackupMode::Since(short("s3")), Some("s2")), &src, &c), @"the --since base tank/home@s3 is not older than tank/home@s2");
    insta::assert_snapshot!(err(request(BackupMode::Since(short("nope")), Some("s2")), &src, &c), @"the --since base tank/home@nope does not exist");
    // A damaged backup under the same key.
    let mut d = Store::default();
    let name = sidecar("tank/home", "s1", 1, None).stream_name().unwrap();
    d.objects.push(StoreObject::new(name.key(), 10, t(100)));
    d.put_raw(&name.sidecar_key(), b"garbage");
    insta::assert_snapshot!(err(request(BackupMode::Full, Some("s1")), &src, &d.catalog()), @"s3://zsnap-backups/host1 holds a damaged backup under the same key, tank%2Fhome/20261123T010000Z_s1.full.zfs; look at it and delete it first");
    // Names that differ only in case.
    let mut src2 = src.clone();
    src2.insert_snapshot(Snapshot::new(short("S1"), Guid(77), 5, t(1)));
    insta::assert_snapshot!(err(request(BackupMode::Full, Some("S1")), &src2, &c), @"the key tank%2Fhome/20261123T010000Z_S1.full.zfs differs only in case from tank%2Fhome/20261123T010000Z_s1.full.zfs in s3://zsnap-backups/host1; they would be one file on a case-insensitive filesystem");
    // Keys too long for a file name.
    let long = "x".repeat(240);
    src2.insert_snapshot(Snapshot::new(short(&long), Guid(78), 6, t(6)));
    insta::assert_snapshot!(err(request(BackupMode::Full, Some(&long)), &src2, &c), @"the key tank%2Fhome/20261123T060000Z_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.full.zfs is too long: its sidecar's file name has 271 bytes, more than the 255 a file name may have");
    // A bookmark of the backup bookmark's name but another guid.
    let mut src3 = src.clone();
    src3.insert_bookmark(Bookmark::new(
        backup_bookmark_name(&store_url(), Guid(2)),
        Guid(9),
        2,
        t(2),
    ));
    insta::assert_snapshot!(err(request(BackupMode::Full, Some("s2")), &src3, &c), @"bookmark tank/home#zsnap-backup_0c2423a5_0000000000000002 exists with guid 9, not 2; zsnap will not replace it");
    // The new snapshot's name is taken.
    let mut src4 = src.clone();
    src4.insert_snapshot(Snapshot::new(
        short("zsnap_backup_20261123T100000Z"),
        Guid(80),
        8,
        t(8),
    ));
    insta::assert_snapshot!(err(request(BackupMode::Full, None), &src4, &c), @"snapshot tank/home@zsnap_backup_20261123T100000Z exists already; back it up with --snapshot zsnap_backup_20261123T100000Z");
    // An unfinished upload of the same key is replaced.
    let mut u = Store::default();
    u.put_unfinished(&sidecar("tank/home", "s1", 1, None), t(0));
    let (plan, _) = send_plan(
        plan_backup(
            &request(BackupMode::Full, Some("s1")),
            &src,
            &u.catalog(),
            t(10),
        )
        .unwrap(),
    );
    assert!(plan.notes[0]
        .message
        .starts_with("replaces the unfinished upload"));
    assert!(matches!(
        plan_backup(&request(BackupMode::Full, Some("s1")), &src, &c, t(10)),
        Err(BackupPlanError::AlreadyBackedUp { .. })
    ));
}

// ---------------------------------------------------------------------------------
// Retention, delete, restore

/// A store with two chains of dataset tank/home (fulls at hours 0 and 48, hourly
/// incrementals), a broken chain, an old and a fresh unfinished upload and an orphan
/// sidecar an interrupted deletion left.
fn history() -> Store {
    let mut s = Store::default();
    let mut prev: Option<(String, u64)> = None;
    for n in 1..=6u64 {
        let name = format!("zsnap_hourly_2026112{}T{:02}0000Z", 3 + (n - 1) / 3, n);
        let parent = if n == 4 { None } else { prev.clone() };
        s.put(&sidecar(
            "tank/home",
            &name,
            n,
            parent.as_ref().map(|(p, g)| (p.as_str(), *g)),
        ));
        prev = Some((name, n));
    }
    s.put(&sidecar("tank/home", "lost", 9, Some(("gone", 8))));
    s.put_unfinished(
        &sidecar(
            "tank/home",
            "zsnap_hourly_20261125T000000Z",
            10,
            Some(("x", 6)),
        ),
        t(0),
    );
    s.put_unfinished(
        &sidecar(
            "tank/home",
            "zsnap_hourly_20261125T010000Z",
            11,
            Some(("x", 6)),
        ),
        t(99) + TimeDelta::minutes(30),
    );
    let gone = sidecar("tank/home", "old", 12, None).stream_name().unwrap();
    s.put_raw(&gone.sidecar_key(), b"{}");
    s.pending.insert(gone.sidecar_key());
    s
}

#[test]
fn prune_keeps_chains_whole_and_deletes_children_first() {
    let s = history();
    let c = s.catalog();
    let policy = RetentionPolicy::new(vec!["last 2".parse().unwrap()]).with_keep_oldest(false);
    let plan = plan_backup_prune(&c, &policy, t(100), chrono_tz::UTC);
    let text: Vec<String> = plan
        .decisions
        .iter()
        .map(|d| {
            let v = match &d.verdict {
                BackupVerdict::Keep {
                    reasons,
                    needed_by,
                    protections,
                } => format!(
                    "keep{}{}{}",
                    reasons
                        .iter()
                        .map(|r| format!(" [{r}]"))
                        .collect::<String>(),
                    needed_by
                        .iter()
                        .map(|id| format!(" needed by {}", c.entry(id).unwrap().stream.snapshot()))
                        .collect::<String>(),
                    protections
                        .iter()
                        .map(|p| format!(" ({p})"))
                        .collect::<String>(),
                ),
                BackupVerdict::Delete { redundant_with } => format!(
                    "delete{}",
                    if redundant_with.is_some() {
                        " (redundant)"
                    } else {
                        ""
                    }
                ),
                BackupVerdict::CleanUp => "clean up".to_owned(),
                other => format!("{other:?}"),
            };
            format!("{}: {v}", d.snapshot)
        })
        .collect();
    insta::assert_snapshot!(text.join("\n"), @r#"
        zsnap_hourly_20261123T010000Z: delete
        zsnap_hourly_20261123T020000Z: delete
        zsnap_hourly_20261123T030000Z: delete
        zsnap_hourly_20261124T040000Z: keep needed by zsnap_hourly_20261124T050000Z needed by zsnap_hourly_20261124T060000Z
        zsnap_hourly_20261124T050000Z: keep [last 2 [#2 of 2]] needed by zsnap_hourly_20261124T060000Z
        zsnap_hourly_20261124T060000Z: keep [last 2 [#1 of 2]] (newest restorable backup of the dataset)
        lost: keep (broken chain (its parent is not in the store))
        zsnap_hourly_20261125T000000Z: clean up
        zsnap_hourly_20261125T010000Z: keep (unfinished upload that may still be running)
        "#);
    let dels: Vec<String> = plan
        .deletions
        .iter()
        .map(|d| format!("{:?} {} ({})", d.role, d.key, d.reason))
        .collect();
    insta::assert_snapshot!(dels.join("\n"), @r#"
        Stream tank%2Fhome/20261123T100000Z_zsnap_hourly_20261125T000000Z.inc-from-x.zfs (unfinished upload, last written 2026-11-23T00:00:00Z)
        Stream tank%2Fhome/20261123T030000Z_zsnap_hourly_20261123T030000Z.inc-from-zsnap_hourly_20261123T020000Z.zfs (no rule keeps its snapshot and no kept backup needs it)
        Sidecar tank%2Fhome/20261123T030000Z_zsnap_hourly_20261123T030000Z.inc-from-zsnap_hourly_20261123T020000Z.zfs.json (no rule keeps its snapshot and no kept backup needs it)
        Stream tank%2Fhome/20261123T020000Z_zsnap_hourly_20261123T020000Z.inc-from-zsnap_hourly_20261123T010000Z.zfs (no rule keeps its snapshot and no kept backup needs it)
        Sidecar tank%2Fhome/20261123T020000Z_zsnap_hourly_20261123T020000Z.inc-from-zsnap_hourly_20261123T010000Z.zfs.json (no rule keeps its snapshot and no kept backup needs it)
        Stream tank%2Fhome/20261123T010000Z_zsnap_hourly_20261123T010000Z.full.zfs (no rule keeps its snapshot and no kept backup needs it)
        Sidecar tank%2Fhome/20261123T010000Z_zsnap_hourly_20261123T010000Z.full.zfs.json (no rule keeps its snapshot and no kept backup needs it)
        Sidecar tank%2Fhome/20261123T120000Z_old.full.zfs.json (left by an interrupted deletion (its stream is gone): finishing it)
        "#);
    let notes: Vec<&str> = plan.notes.iter().map(|n| n.message.as_str()).collect();
    insta::assert_snapshot!(notes.join("\n"), @r"
    1 backup of tank/home: chain broken (a parent is missing from the store); kept, see `zsnap backups list` and `zsnap backups delete`
    an earlier prune or delete was interrupted: 1 of its sidecars are deleted now
    ");
    // Each stream goes before its own sidecar.
    for (i, d) in plan.deletions.iter().enumerate() {
        if d.role == ObjectRole::Sidecar && d.id.is_some() {
            assert!(plan.deletions[..i]
                .iter()
                .any(|x| x.role == ObjectRole::Stream && x.id == d.id));
        }
    }
    // After the deletions, the kept points restore.
    let mut after = s;
    for d in &plan.deletions {
        after.remove(&d.key);
    }
    let c2 = after.catalog();
    for n in [5u64, 6] {
        let name = format!("zsnap_hourly_20261124T{n:02}0000Z");
        let chain = resolve_restore(
            &c2,
            &dsn("tank/home"),
            &RestoreTarget::Snapshot(short(&name)),
        )
        .unwrap();
        assert_eq!(chain.len(), n as usize - 3);
    }
    assert!(plan_backup_prune(&c2, &policy, t(100), chrono_tz::UTC).is_empty());
}

#[test]
fn an_empty_policy_still_keeps_the_newest() {
    let c = history().catalog();
    let plan = plan_backup_prune(&c, &RetentionPolicy::default(), t(100), chrono_tz::UTC);
    let kept: Vec<String> = plan
        .decisions
        .iter()
        .filter(|d| matches!(&d.verdict, BackupVerdict::Keep { protections, .. } if !protections.contains(&BackupProtection::Damaged) && !protections.contains(&BackupProtection::Broken) && !protections.contains(&BackupProtection::UploadMayBeRunning)))
        .map(|d| d.snapshot.to_string())
        .collect();
    assert_eq!(
        kept,
        [
            "zsnap_hourly_20261124T040000Z",
            "zsnap_hourly_20261124T050000Z",
            "zsnap_hourly_20261124T060000Z"
        ]
    );
}

#[test]
fn restore_targets_and_errors() {
    let c = history().catalog();
    let home = dsn("tank/home");
    let names = |v: Vec<zsnap_core::backup::BackupEntry>| {
        v.iter()
            .map(|e| e.stream.snapshot().to_string())
            .collect::<Vec<_>>()
            .join(" → ")
    };
    // The store records `lost` (on a broken chain) after the newest restorable point:
    // the latest restore refuses to go back silently, and names it…
    insta::assert_snapshot!(chain(&resolve_restore(&c, &home, &RestoreTarget::Latest).unwrap_err()), @"the store records a newer backup of tank/home than the one that can be restored: tank%2Fhome/20261123T090000Z_lost.inc-from-gone.zfs (its chain is broken (no restorable backup of gone)); the newest restorable is zsnap_hourly_20261124T060000Z. Restore an earlier point explicitly (--snapshot zsnap_hourly_20261124T060000Z, or --allow-older), or repair the store (`zsnap backups verify`)");
    // …unless asked to.
    insta::assert_snapshot!(names(resolve_restore_with(&c, &home, &RestoreTarget::Latest, true).unwrap()), @"zsnap_hourly_20261124T040000Z → zsnap_hourly_20261124T050000Z → zsnap_hourly_20261124T060000Z");
    insta::assert_snapshot!(names(resolve_restore(&c, &home, &RestoreTarget::At(t(2) + TimeDelta::minutes(59))).unwrap()), @"zsnap_hourly_20261123T010000Z → zsnap_hourly_20261123T020000Z");
    insta::assert_snapshot!(names(resolve_restore(&c, &home, &RestoreTarget::At(t(5))).unwrap()), @"zsnap_hourly_20261124T040000Z → zsnap_hourly_20261124T050000Z");
    let err = |target: RestoreTarget| chain(&resolve_restore(&c, &home, &target).unwrap_err());
    insta::assert_snapshot!(err(RestoreTarget::At(t(0))), @"no restorable backup of tank/home was taken at or before 2026-11-23T00:00:00Z; the oldest is from 2026-11-23T01:00:00Z");
    insta::assert_snapshot!(err(RestoreTarget::Snapshot(short("lost"))), @"snapshot tank/home@lost cannot be restored: its chain needs gone (guid 8), which no restorable backup in the store recreates");
    insta::assert_snapshot!(err(RestoreTarget::Snapshot(short("zsnap_hourly_20261125T000000Z"))), @"snapshot tank/home@zsnap_hourly_20261125T000000Z has no complete backup, only unfinished or damaged ones");
    insta::assert_snapshot!(err(RestoreTarget::Snapshot(short("never"))), @"snapshot tank/home@never has no backup in the store");
    insta::assert_snapshot!(chain(&resolve_restore(&c, &dsn("tank/none"), &RestoreTarget::Latest).unwrap_err()), @"the store has no complete backup of tank/none");
    let mut only_broken = Store::default();
    only_broken.put(&sidecar("tank/home", "lost", 9, Some(("gone", 8))));
    only_broken.put_unfinished(&sidecar("tank/home", "u", 10, None), t(0));
    insta::assert_snapshot!(chain(&resolve_restore(&only_broken.catalog(), &home, &RestoreTarget::Latest).unwrap_err()), @"no backup of tank/home can be restored: every chain is broken");
    let mut only_unfinished = Store::default();
    only_unfinished.put_unfinished(&sidecar("tank/home", "u", 10, None), t(0));
    insta::assert_snapshot!(chain(&resolve_restore(&only_unfinished.catalog(), &home, &RestoreTarget::Latest).unwrap_err()), @"the store has no complete backup of tank/home (1 unfinished or damaged)");
}

#[test]
fn delete_refuses_to_orphan_unless_asked() {
    let s = history();
    let c = s.catalog();
    let home = c.dataset(&dsn("tank/home")).unwrap();
    let first = home.entries[0].id.clone();
    insta::assert_snapshot!(chain(&c.plan_delete(&first, false).unwrap_err()), @"deleting tank%2Fhome/20261123T010000Z_zsnap_hourly_20261123T010000Z.full.zfs would leave 2 backups that could no longer be restored (tank%2Fhome/20261123T020000Z_zsnap_hourly_20261123T020000Z.inc-from-zsnap_hourly_20261123T010000Z.zfs, tank%2Fhome/20261123T030000Z_zsnap_hourly_20261123T030000Z.inc-from-zsnap_hourly_20261123T020000Z.zfs); delete them too with --with-dependents");
    let plan = c.plan_delete(&first, true).unwrap();
    let removed: Vec<String> = plan
        .removed
        .iter()
        .map(|id| c.entry(id).unwrap().stream.snapshot().to_string())
        .collect();
    insta::assert_snapshot!(removed.join(", "), @"zsnap_hourly_20261123T030000Z, zsnap_hourly_20261123T020000Z, zsnap_hourly_20261123T010000Z");
    assert_eq!(plan.deletions.len(), 6);
    // The newest of a chain has no dependents.
    let newest = home
        .entries
        .iter()
        .find(|e| e.stream.snapshot().as_str() == "zsnap_hourly_20261124T060000Z")
        .unwrap();
    assert_eq!(
        c.plan_delete(&newest.id, false).unwrap().removed,
        std::slice::from_ref(&newest.id)
    );
    let unknown: BackupId = "tank/20261123T000000Z_a.full.zfs".parse().unwrap();
    insta::assert_snapshot!(chain(&c.plan_delete(&unknown, false).unwrap_err()), @"the store has no backup tank/20261123T000000Z_a.full.zfs");
}

#[test]
fn rarer_errors() {
    let e = "tank/20261123T150000Z_a b.full.zfs"
        .parse::<StreamName>()
        .unwrap_err();
    insta::assert_snapshot!(chain(&e), @r#"invalid backup stream name "tank/20261123T150000Z_a b.full.zfs": character ' ' at byte 23 must be escaped as %XX"#);
    let c = Store::default().catalog();
    // A new snapshot cannot be named after the year 9999.
    let far = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    let e = plan_backup(&request(BackupMode::Full, None), &source(), &c, far).unwrap_err();
    insta::assert_snapshot!(chain(&e), @"cannot name a new snapshot of tank/home: cannot name a snapshot taken at +10000-01-01 00:00:00 UTC: only the years 0000 to 9999 fit in a name");
    // Nor can a snapshot from after it be streamed.
    let mut src = source();
    src.insert_snapshot(Snapshot::new(short("future"), Guid(50), 50, far));
    let e = plan_backup(&request(BackupMode::Full, Some("future")), &src, &c, t(10)).unwrap_err();
    insta::assert_snapshot!(chain(&e), @r#"cannot name the stream of tank/home@future: invalid backup stream name "tank/home@future": the time +10000-01-01 00:00:00 UTC is outside the years 0000 to 9999"#);
    // A dataset name so long that the new snapshot's name does not fit.
    let long_ds = format!("tank/{}", "d".repeat(230));
    let ds = Dataset::new(dsn(&long_ds), DatasetKind::Filesystem, Guid(1));
    let req = BackupRequest::new(dsn(&long_ds), store_url(), BackupMode::Full);
    let e = plan_backup(&req, &ds, &c, t(10)).unwrap_err();
    insta::assert_snapshot!(chain(&e).replace(&"d".repeat(230), "d…"), @r#"cannot name a snapshot or bookmark of tank/d…: invalid snapshot name "tank/d…@zsnap_backup_20261123T100000Z": the name is longer than 255 bytes (at byte 255)"#);
    // A dataset whose escaped name is longer than a file name may be.
    let spaced = format!("tank/{}", " ".repeat(100));
    let mut ds = Dataset::new(dsn(&spaced), DatasetKind::Filesystem, Guid(1));
    ds.insert_snapshot(Snapshot::new(short("a"), Guid(2), 2, t(2)));
    let req = BackupRequest::new(dsn(&spaced), store_url(), BackupMode::Full)
        .with_snapshot(Some(short("a")));
    let e = plan_backup(&req, &ds, &c, t(10)).unwrap_err();
    insta::assert_snapshot!(chain(&e).replace(&"%20".repeat(100), "%20…"), @"the key tank%2F%20…/20261123T020000Z_a.full.zfs is too long: its dataset part has 307 bytes, more than the 255 a file name may have");
    // An S3 key longer than 1024 bytes, with a long prefix.
    let prefix = vec!["p".repeat(200); 4].join("/");
    let store: StoreUrl = format!("s3://bucket/{prefix}").parse().unwrap();
    let mut ds = Dataset::new(dsn("tank/home"), DatasetKind::Filesystem, Guid(1));
    ds.insert_snapshot(Snapshot::new(short(&"s".repeat(200)), Guid(2), 2, t(2)));
    let req = BackupRequest::new(dsn("tank/home"), store, BackupMode::Full)
        .with_snapshot(Some(short(&"s".repeat(200))));
    let e = plan_backup(&req, &ds, &c, t(10)).unwrap_err();
    insta::assert_snapshot!(chain(&e).replace(&"s".repeat(200), "s…"), @"the key tank%2Fhome/20261123T020000Z_s….full.zfs is too long: its sidecar's object key has 1047 bytes, more than the 1024 S3 allows");
    // Mismatched snapshot and parent names.
    let inc = sidecar("tank/home", "b", 3, Some(("a", 1)));
    let other_snap = sidecar("tank/home", "c", 3, Some(("a", 1)))
        .stream_name()
        .unwrap();
    insta::assert_snapshot!(chain(&inc.check_stream(&other_snap).unwrap_err()), @r#"the sidecar says snapshot is "b" but the stream's name says "c""#);
    let other_parent = sidecar("tank/home", "b", 3, Some(("z", 1)))
        .stream_name()
        .unwrap();
    insta::assert_snapshot!(chain(&inc.check_stream(&other_parent).unwrap_err()), @r#"the sidecar says parent is "a" but the stream's name says "z""#);
    // The simulation refuses a backup step that sends intermediates.
    let src = source();
    let (mut plan, _) =
        send_plan(plan_backup(&request(BackupMode::Full, Some("s2")), &src, &c, t(10)).unwrap());
    let Step::Backup(step) = &mut plan.steps[0] else {
        unreachable!()
    };
    step.send = zsnap_core::SendSpec::Incremental {
        base: SendBase::Snapshot {
            name: short("s1"),
            guid: Guid(1),
        },
        snapshot: zsnap_core::SnapshotRef::new(short("s2"), Guid(2)),
        intermediates: true,
        expected: Vec::new(),
    };
    insta::assert_snapshot!(chain(&plan.simulate_at(&inv(&src)).unwrap_err()), @"step 1 (backup at local): a backup of tank/home must be a full or a single incremental (-i) send");
}

#[test]
fn backup_plans_serialize() {
    let mut s = Store::default();
    s.put(&sidecar("tank/home", "s1", 1, None));
    let (plan, _) = send_plan(
        plan_backup(
            &request(BackupMode::AutoIncremental, Some("s3")).with_compression(Compression::Zstd),
            &source(),
            &s.catalog(),
            t(10),
        )
        .unwrap(),
    );
    let json = serde_json::to_string_pretty(&plan.steps[0]).unwrap();
    insta::assert_snapshot!(json, @r#"
        {
          "step": "backup",
          "location": "local",
          "dataset": "tank/home",
          "send": {
            "kind": "incremental",
            "base": {
              "kind": "snapshot",
              "name": "s1",
              "guid": 1
            },
            "snapshot": {
              "name": "s3",
              "guid": 3
            },
            "intermediates": false,
            "expected": []
          },
          "createtxg": 3,
          "raw": false,
          "store": "s3://zsnap-backups/host1",
          "stream": "tank%2Fhome/20261123T030000Z_s3.inc-from-s1.zfs.zst",
          "reason": "incremental backup to s3://zsnap-backups/host1 (auto, from s1)"
        }
        "#);
    let back: Step = serde_json::from_str(&json).unwrap();
    assert_eq!(back, plan.steps[0]);
    let back: Plan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
    assert_eq!(back, plan);
    // The catalog serializes for `--json` listings, sidecars in their own format.
    let c = s.catalog();
    let v = serde_json::to_value(&c).unwrap();
    let entry = &v["datasets"]["tank/home"]["entries"][0];
    assert_eq!(entry["state"]["state"], "complete");
    assert_eq!(entry["sidecar"]["guid"], "1");
    assert_eq!(entry["link"]["link"], "full");
}
