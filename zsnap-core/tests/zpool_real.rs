//! The `zpool list` and `zpool status` parsers against output captured from real
//! OpenZFS 2.3.2 (`fixtures/real/zpool/`, made by `testbed/capture-zpool.sh`; see the
//! README there), and their round trips.

use zsnap_core::zpool::{
    parse_pool_list, parse_pool_status, render_pool_list, render_pool_status, ConfigRow,
    DataErrors, Health, PoolListParseErrorKind, PoolStatus, PoolStatusParseErrorKind, Vdev,
    VdevErrors,
};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/real/zpool/", $name))
    };
}

fn status(text: &str) -> Vec<PoolStatus> {
    let pools = parse_pool_status(text).expect("real zpool status output parses");
    let printed = render_pool_status(&pools);
    assert_eq!(
        parse_pool_status(&printed).as_ref(),
        Ok(&pools),
        "printed:\n{printed}"
    );
    pools
}

fn one(text: &str) -> PoolStatus {
    let mut pools = status(text);
    assert_eq!(pools.len(), 1);
    pools.remove(0)
}

fn vdev<'a>(p: &'a PoolStatus, name: &str) -> &'a Vdev {
    p.vdevs()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("{name} is in the config"))
}

#[test]
fn list_rows() {
    let rows = parse_pool_list(fixture!("list.tsv")).expect("parses");
    assert_eq!(rows.len(), 8);
    let ck = rows
        .iter()
        .find(|r| r.name.as_str() == "fxck")
        .expect("listed");
    assert_eq!(
        (ck.size, ck.allocated, ck.free, ck.capacity),
        (
            Some(117_440_512),
            Some(16_970_240),
            Some(100_470_272),
            Some(14)
        )
    );
    let degraded: Vec<&str> = rows
        .iter()
        .filter(|r| r.health == Health::Degraded)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(degraded, ["fxdeg", "fxfault", "fxmiss"]);
    assert_eq!(parse_pool_list(&render_pool_list(&rows)), Ok(rows));
}

#[test]
fn healthy_pools() {
    let pools = status(fixture!("status-healthy.txt"));
    let names: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["dst", "src"]);
    for p in &pools {
        assert_eq!(p.state, Health::Online);
        assert_eq!(p.errors, Some(DataErrors::NoneKnown));
        assert_eq!((p.status.as_ref(), p.scan.as_ref()), (None, None));
        assert!(p
            .vdevs()
            .all(|v| v.state == Health::Online && v.errors == Some(VdevErrors::default())));
    }
    assert_eq!(
        pools[1].config,
        [
            ConfigRow::Vdev(Vdev::new("src", 0, Health::Online)),
            ConfigRow::Vdev(Vdev::new("vda", 1, Health::Online)),
        ]
    );
}

#[test]
fn offlined_side_of_a_mirror() {
    let p = one(fixture!("status-degraded-offline.txt"));
    assert_eq!(p.state, Health::Degraded);
    assert_eq!(vdev(&p, "mirror-0").state, Health::Degraded);
    assert_eq!(vdev(&p, "/tmp/zpfx/deg-b.img").state, Health::Offline);
    let status = p.status.as_deref().expect("a status: text");
    assert!(status.starts_with("One or more devices has been taken offline"));
    assert_eq!(status.lines().count(), 3, "continuation lines kept");
}

#[test]
fn faulted_vdev_with_note() {
    let p = one(fixture!("status-faulted-vdev.txt"));
    let b = vdev(&p, "/tmp/zpfx/fault-b.img");
    assert_eq!(b.state, Health::Faulted);
    assert_eq!(b.note.as_deref(), Some("external device fault"));
    assert_eq!(b.depth, 2);
}

#[test]
fn missing_device_shown_by_guid() {
    let p = one(fixture!("status-unavail-vdev.txt"));
    let v = vdev(&p, "11114445698520643838");
    assert_eq!(v.state, Health::Unavail);
    assert_eq!(v.note.as_deref(), Some("was /tmp/zpfx/miss-b.img"));
    assert_eq!(
        p.other,
        [(
            "see".to_owned(),
            "https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-2Q".to_owned()
        )]
    );
}

#[test]
fn checksum_errors_repaired_by_scrub() {
    let p = one(fixture!("status-cksum-repaired.txt"));
    assert_eq!(p.state, Health::Online);
    assert_eq!(
        vdev(&p, "/tmp/zpfx/ck-b.img").errors,
        Some(VdevErrors::new(0, 0, 145))
    );
    assert_eq!(p.errors, Some(DataErrors::NoneKnown));
    assert!(p
        .scan
        .as_deref()
        .is_some_and(|s| s.starts_with("scrub repaired 12.2M")
            && s.ends_with("with 0 errors on Mon Dec  7 22:54:28 2026")));
}

#[test]
fn permanent_data_errors() {
    let p = one(fixture!("status-data-errors.txt"));
    assert_eq!(p.errors, Some(DataErrors::Count(21)));
    assert_eq!(
        vdev(&p, "/tmp/zpfx/data-a.img").errors,
        Some(VdevErrors::new(0, 0, 81))
    );
}

#[test]
fn classes_spares_and_scrubs() {
    let p = one(fixture!("status-layout.txt"));
    let classes: Vec<&str> = p
        .config
        .iter()
        .filter_map(|r| match r {
            ConfigRow::Class { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(classes, ["logs", "cache", "spares"]);
    let spare = vdev(&p, "/tmp/zpfx/cx-s.img");
    assert_eq!(
        (&spare.state, spare.errors, &spare.note),
        (&Health::Avail, None, &None)
    );
    assert_eq!(vdev(&p, "/tmp/zpfx/cx-l2.img").depth, 2);

    let running = one(fixture!("status-scrub-in-progress.txt"));
    let scan = running.scan.as_deref().expect("scan:");
    assert!(scan.starts_with("scrub in progress since"));
    assert_eq!(scan.lines().count(), 3);
    let paused = one(fixture!("status-scrub-paused.txt"));
    assert!(paused
        .scan
        .as_deref()
        .is_some_and(|s| s.starts_with("scrub paused since")));
}

#[test]
fn every_pool_at_once() {
    let pools = status(fixture!("status-all.txt"));
    let states: Vec<(&str, &str)> = pools
        .iter()
        .map(|p| (p.name.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            ("dst", "ONLINE"),
            ("fxck", "ONLINE"),
            ("fxcx", "ONLINE"),
            ("fxdata", "ONLINE"),
            ("fxdeg", "DEGRADED"),
            ("fxfault", "DEGRADED"),
            ("fxmiss", "DEGRADED"),
            ("src", "ONLINE"),
        ]
    );
}

#[test]
fn no_pools() {
    assert_eq!(parse_pool_status("no pools available\n"), Ok(vec![]));
    assert_eq!(parse_pool_status(""), Ok(vec![]));
    assert_eq!(parse_pool_list(""), Ok(vec![]));
}

#[test]
fn unknown_states_are_kept_verbatim() {
    let rows = parse_pool_list("tank\t-\t-\t-\t-\tWEIRD\n").expect("parses");
    assert_eq!(rows[0].health, Health::Other("WEIRD".to_owned()));
    let text = fixture!("status-healthy.txt").replace(" state: ONLINE", " state: WEIRD");
    let pools = status(&text);
    assert_eq!(pools[0].state, Health::Other("WEIRD".to_owned()));
}

#[test]
fn errors_name_their_line() {
    let e = parse_pool_list("tank\t1\t1\t0\t100\tONLINE\ntank/x\t1\t1\t0\t1\tONLINE\n")
        .expect_err("not a pool");
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, PoolListParseErrorKind::BadName("tank/x".to_owned()));
    let e = parse_pool_list("tank\t1\t1\t0\t14%\tONLINE\n").expect_err("not -p");
    assert_eq!(
        e.to_string(),
        "line 1: column \"capacity\": \"14%\" is not a number or -"
    );
    let e =
        parse_pool_list("tank\t1\t1\t0\t1\tONLINE\ntank\t1\t1\t0\t1\tONLINE\n").expect_err("twice");
    assert_eq!(e.kind, PoolListParseErrorKind::Duplicate("tank".to_owned()));

    let e = parse_pool_status(" state: ONLINE\n").expect_err("no pool");
    assert_eq!(e.line, 1);
    let e = parse_pool_status("  pool: tank\nconfig:\n\n\tNAME  STATE\n\ttank  ONLINE  0 0 0\n")
        .expect_err("no state");
    assert_eq!(e.kind, PoolStatusParseErrorKind::NoState("tank".to_owned()));
    let e = parse_pool_status(
        "  pool: tank\n state: ONLINE\nconfig:\n\n\tNAME  STATE\n\ttank_x ONLINE  0 0 0\n",
    )
    .expect_err("misaligned");
    assert_eq!(e.line, 6);
    assert!(matches!(e.kind, PoolStatusParseErrorKind::BadRow(_)));
    let e = parse_pool_status("  pool: tank\n state: ONLINE\nconfig:\n\n\tNAMES STATE\n")
        .expect_err("no header");
    assert_eq!(e.kind, PoolStatusParseErrorKind::NoHeader);
}

#[test]
fn names_with_spaces_line_up_with_the_header() {
    let text = "  pool: tank\n state: ONLINE\nconfig:\n\n\tNAME            STATE     READ WRITE CKSUM\n\ttank            ONLINE       0     0     0\n\t  /tmp/a b.img  ONLINE       0     0     7\n";
    let p = one(text);
    assert_eq!(
        vdev(&p, "/tmp/a b.img").errors,
        Some(VdevErrors::new(0, 0, 7))
    );
}

mod mutated {
    //! What the fuzz target checks, on the fixtures with random edits: the parsers never
    //! panic, and what they accept prints back to an equal value.
    use proptest::prelude::*;
    use zsnap_core::zpool::{
        parse_pool_list, parse_pool_status, render_pool_list, render_pool_status,
    };

    const TEXTS: [&str; 3] = [
        include_str!("fixtures/real/zpool/status-all.txt"),
        include_str!("fixtures/real/zpool/status-scrub-paused.txt"),
        include_str!("fixtures/real/zpool/list.tsv"),
    ];
    const BITS: [&str; 14] = [
        "\t",
        "\n",
        " ",
        "  ",
        "-",
        "0",
        "12",
        ":",
        "ONLINE",
        "\tlogs",
        "é",
        "\r",
        "errors: ",
        "  pool: x\n",
    ];

    proptest! {
        #[test]
        fn round_trip(text in 0..TEXTS.len(), edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..BITS.len() + 1), 1..6)) {
            let mut s = TEXTS[text].to_owned();
            for (at, bit) in edits {
                let mut i = at.index(s.len() + 1);
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                match BITS.get(bit) {
                    Some(b) => s.insert_str(i, b),
                    None => {
                        let mut j = (i + 1).min(s.len());
                        while !s.is_char_boundary(j) {
                            j += 1;
                        }
                        s.replace_range(i..j, "");
                    }
                }
            }
            if let Ok(rows) = parse_pool_list(&s) {
                prop_assert_eq!(parse_pool_list(&render_pool_list(&rows)), Ok(rows));
            }
            if let Ok(pools) = parse_pool_status(&s) {
                let printed = render_pool_status(&pools);
                prop_assert_eq!(parse_pool_status(&printed), Ok(pools), "{}", printed);
            }
        }
    }
}
