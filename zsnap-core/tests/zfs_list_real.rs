//! The parsers against output captured from real OpenZFS 2.3.2 (`fixtures/real/`, see
//! its README for how each case was made). Guids and txgs below were read in the
//! captured files.

use zsnap_core::zfs_list::{parse_get, ObjectName, PropertySource};
use zsnap_core::{parse_list, render_list, DatasetKind, DatasetName, Inventory, SnapshotName};

const LIST: &str = include_str!("fixtures/real/list.tsv");

fn ds(s: &str) -> DatasetName {
    s.parse().expect("test dataset names are valid")
}

fn inv() -> Inventory {
    parse_list(LIST).expect("real zfs list output parses")
}

fn snap<'a>(inv: &'a Inventory, name: &str) -> &'a zsnap_core::Snapshot {
    let n: SnapshotName = name.parse().expect("valid");
    inv.snapshot(&n)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

#[test]
fn counts_and_validity() {
    let inv = inv();
    assert_eq!(inv.validate(), Ok(()));
    assert_eq!(inv.datasets.len(), 17);
    assert_eq!(inv.snapshot_count(), 24);
    let bookmarks: usize = inv.datasets.values().map(|d| d.bookmarks.len()).sum();
    assert_eq!(bookmarks, 2);
    assert_eq!(parse_list(&render_list(&inv)), Ok(inv));
}

#[test]
fn spaces_in_names() {
    let inv = inv();
    let d = inv.dataset(&ds("src/with space")).expect("listed");
    let names: Vec<_> = d.snapshots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["x", "snap with space"]);
    assert_eq!(d.props.mountpoint.as_deref(), Some("/src/with space"));
}

#[test]
fn one_atomic_call_shares_txg_and_second() {
    let inv = inv();
    let a = snap(&inv, "src/a@x");
    for other in ["src/b@x", "src/with space@x"] {
        let o = snap(&inv, other);
        assert_eq!((o.createtxg, o.creation), (a.createtxg, a.creation));
    }
    assert_eq!(a.createtxg, 12);
    assert_eq!(a.creation.timestamp(), 1_795_484_763);
    let (s1, s2) = (
        snap(&inv, "src/a@same_second_1"),
        snap(&inv, "src/a@same_second_2"),
    );
    assert_eq!(s1.creation, s2.creation);
    assert!(s1.createtxg < s2.createtxg);
}

#[test]
fn bookmarks() {
    let inv = inv();
    let a = inv.dataset(&ds("src/a")).expect("listed");
    let x = a.snapshot(&"x".parse().expect("valid")).expect("listed");
    assert_eq!(a.bookmarks.len(), 1);
    let bx = &a.bookmarks[0];
    assert_eq!(bx.name.as_str(), "x");
    assert_eq!((bx.guid.0, bx.createtxg), (487_517_544_132_174_763, 12));
    assert_eq!(
        (bx.guid, bx.createtxg, bx.creation),
        (x.guid, x.createtxg, x.creation)
    );
    let b = inv.dataset(&ds("src/b")).expect("listed");
    assert_eq!(b.bookmarks[0].name.as_str(), "gone");
    assert!(b.snapshot_by_guid(b.bookmarks[0].guid).is_none());
}

#[test]
fn holds_clones_and_origin() {
    let inv = inv();
    let held = snap(&inv, "src/a@held");
    assert_eq!(held.userrefs, 2);
    assert!(held.is_pinned());
    let x = snap(&inv, "src/a@x");
    assert_eq!(x.clones, [ds("src/a_clone")]);
    assert!(x.is_pinned());
    // zfs prints `-` for a snapshot without clones
    let s1 = snap(&inv, "src/a@same_second_1");
    assert!(s1.clones.is_empty() && s1.hidden_clones.is_empty() && !s1.is_pinned());
    let clone = inv.dataset(&ds("src/a_clone")).expect("listed");
    assert_eq!(clone.props.origin, Some("src/a@x".parse().expect("valid")));
}

#[test]
fn interrupted_receives() {
    let inv = inv();
    // the base of an interrupted incremental receive lists the hidden `%recv` clone
    let base = snap(&inv, "dst/incpartial@full");
    assert!(base.clones.is_empty());
    assert_eq!(base.hidden_clones, ["dst/incpartial/%recv"]);
    assert!(base.is_pinned());
    assert_eq!(base.guid, snap(&inv, "src/big@full").guid);
    for d in ["dst/partial", "dst/incpartial"] {
        let token = inv
            .dataset(&ds(d))
            .expect("listed")
            .props
            .receive_resume_token
            .clone();
        assert!(token.is_some_and(|t| t.starts_with("1-")), "{d}");
    }
    let partial = inv.dataset(&ds("dst/partial")).expect("listed");
    assert!(partial.snapshots.is_empty());
    assert_eq!(
        inv.dataset(&ds("src/a"))
            .expect("listed")
            .props
            .receive_resume_token,
        None
    );
}

#[test]
fn volume_encryption_and_managed() {
    let inv = inv();
    let vol = inv.dataset(&ds("src/vol")).expect("listed");
    assert_eq!(vol.kind, DatasetKind::Volume);
    assert_eq!(vol.props.mountpoint, None);
    assert_eq!(vol.props.used, Some(18_931_712));
    for d in ["src/enc", "src/enc/child"] {
        let e = inv.dataset(&ds(d)).expect("listed");
        assert_eq!(e.props.encryption.as_deref(), Some("aes-256-gcm"));
        assert_eq!(e.props.keystatus.as_deref(), Some("available"));
    }
    let locked = inv.dataset(&ds("src/enc_locked")).expect("listed");
    assert!(locked.props.is_encrypted());
    assert_eq!(locked.props.keystatus.as_deref(), Some("unavailable"));
    let plain = inv.dataset(&ds("src/a")).expect("listed");
    assert_eq!(
        (
            plain.props.encryption.as_deref(),
            plain.props.keystatus.as_deref()
        ),
        (Some("off"), None)
    );

    let managed = snap(&inv, "src/a@zsnap_hourly_20261123T150000Z");
    assert_eq!(managed.managed.as_deref(), Some("yes"));
    assert_eq!(snap(&inv, "src/a@x").managed, None);
    // replicated with send -R: same guid, the property came along
    let (s, d) = (
        snap(&inv, "src/names@zsnap_hourly_20261123T150000Z"),
        snap(&inv, "dst/names@zsnap_hourly_20261123T150000Z"),
    );
    assert_eq!(s.guid, d.guid);
    assert_eq!(d.managed.as_deref(), Some("yes"));
    let names: Vec<_> = inv
        .dataset(&ds("dst/names"))
        .expect("listed")
        .snapshots
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "zsnap_hourly_20261123T150000Z",
            "autosnap_2026-11-23_15:00:01_hourly",
            "zfs-auto-snap_hourly-2026-11-23-1500",
            "zrepl_20261123_150000_000",
            "manual"
        ]
    );
}

#[test]
fn zfs_get_outputs() {
    let files = [
        include_str!("fixtures/real/get-bookmark.tsv"),
        include_str!("fixtures/real/get-clone.tsv"),
        include_str!("fixtures/real/get-encrypted-locked.tsv"),
        include_str!("fixtures/real/get-encrypted.tsv"),
        include_str!("fixtures/real/get-partial-full.tsv"),
        include_str!("fixtures/real/get-partial-incremental.tsv"),
        include_str!("fixtures/real/get-received.tsv"),
        include_str!("fixtures/real/get-snapshot-held.tsv"),
        include_str!("fixtures/real/get-snapshot-user-prop.tsv"),
        include_str!("fixtures/real/get-volume.tsv"),
        include_str!("fixtures/real/get-with-space.tsv"),
    ];
    let mut rows = 0;
    for f in files {
        let parsed = parse_get(f).expect("real zfs get output parses");
        assert_eq!(parsed.len(), f.lines().count());
        rows += parsed.len();
    }
    assert_eq!(rows, 650);

    let user = parse_get(include_str!("fixtures/real/get-snapshot-user-prop.tsv")).expect("valid");
    let managed = user
        .iter()
        .find(|r| r.property == "zsnap:managed")
        .expect("listed");
    assert_eq!(managed.value, "yes");
    assert_eq!(managed.source, PropertySource::Local);
    assert_eq!(
        managed.name,
        ObjectName::Snapshot(
            "src/a@zsnap_hourly_20261123T150000Z"
                .parse()
                .expect("valid")
        )
    );

    let ws = parse_get(include_str!("fixtures/real/get-with-space.tsv")).expect("valid");
    let mp = ws
        .iter()
        .find(|r| r.property == "mountpoint")
        .expect("listed");
    assert_eq!(mp.name, ObjectName::Dataset(ds("src/with space")));
    assert_eq!(mp.value, "/src/with space");
    assert_eq!(mp.source, PropertySource::Inherited(ds("src")));

    let held = parse_get(include_str!("fixtures/real/get-snapshot-held.tsv")).expect("valid");
    let refs = held
        .iter()
        .find(|r| r.property == "userrefs")
        .expect("listed");
    assert_eq!(
        (refs.value.as_str(), &refs.source),
        ("2", &PropertySource::None)
    );

    let bm = parse_get(include_str!("fixtures/real/get-bookmark.tsv")).expect("valid");
    assert!(bm.iter().all(|r| matches!(r.name, ObjectName::Bookmark(_))));
    let guid = bm.iter().find(|r| r.property == "guid").expect("listed");
    assert_eq!(guid.value, "487517544132174763");
}

/// `render_list` prints what real zfs printed, row for row, except a dataset's own
/// createtxg and creation (not kept: printed as `-`).
#[test]
fn render_matches_real_output() {
    use std::collections::BTreeMap;
    let rows = |t: &str| -> BTreeMap<String, Vec<String>> {
        t.lines()
            .map(|l| {
                let f: Vec<String> = l.split('\t').map(str::to_owned).collect();
                (f[0].clone(), f)
            })
            .collect()
    };
    let real = rows(LIST);
    let rendered = rows(&render_list(&inv()));
    assert_eq!(
        real.keys().collect::<Vec<_>>(),
        rendered.keys().collect::<Vec<_>>()
    );
    for (name, mut want) in real {
        if matches!(want[1].as_str(), "filesystem" | "volume") {
            want[3] = "-".into();
            want[4] = "-".into();
        }
        assert_eq!(rendered[&name], want, "{name}");
    }
}
