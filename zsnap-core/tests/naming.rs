//! Naming: round trips, sort order, other tools' names written the way those tools
//! write them, and robustness on arbitrary input.

use chrono::{DateTime, LocalResult, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::naming::{recognize_any, Fold, Label, NameTime, NamingScheme, Recognizer};

/// 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, in seconds.
const MAX_SECS: i64 = 253_402_300_799;

fn label() -> impl Strategy<Value = Label> {
    "[a-z0-9][a-z0-9-]{0,20}".prop_map(|s| s.parse().unwrap())
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..=MAX_SECS).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #[test]
    fn name_then_parse_gives_back_label_and_time(
        prefix in "[A-Za-z0-9][A-Za-z0-9_.:-]{0,15}",
        label in label(),
        t in instant(),
    ) {
        let scheme = NamingScheme::new(prefix).unwrap();
        let name = scheme.name(&label, t).unwrap();
        prop_assert_eq!(scheme.parse_parts(name.as_str()), Some((label.clone(), t)));
        let r = scheme.parse(name.as_str()).unwrap();
        prop_assert_eq!(r.label.as_deref(), Some(label.as_str()));
        prop_assert_eq!(r.time, NameTime::Utc(t));
        // And the recognizer for received zsnap snapshots reads it the same way.
        let adopted = Recognizer::Zsnap { prefix: scheme.prefix().to_owned() }.recognize(name.as_str()).unwrap();
        prop_assert_eq!(adopted, r);
    }

    #[test]
    fn names_of_one_label_sort_by_time(label in label(), a in instant(), b in instant()) {
        let s = NamingScheme::default();
        let (na, nb) = (s.name(&label, a).unwrap(), s.name(&label, b).unwrap());
        prop_assert_eq!(na.as_str().cmp(nb.as_str()), a.cmp(&b));
    }

    #[test]
    fn fractions_of_a_second_are_dropped(t in instant(), nanos in 0u32..1_000_000_000) {
        let s = NamingScheme::default();
        let l: Label = "x".parse().unwrap();
        let precise = t + TimeDelta::nanoseconds(i64::from(nanos));
        prop_assert_eq!(s.name(&l, precise).unwrap(), s.name(&l, t).unwrap());
    }

    /// sanoid writes the host's local time and marks the second of two equal local
    /// times with `dst`; reading such a name back in the same zone gives the instant.
    #[test]
    fn sanoid_names_resolve_to_the_instant_they_were_taken(
        tz in prop::sample::select(vec![chrono_tz::Europe::Berlin, chrono_tz::America::New_York, chrono_tz::Australia::Lord_Howe]),
        anchor in prop::sample::select(vec![
            Utc.with_ymd_and_hms(2026, 10, 25, 1, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 4, 4, 15, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap(),
        ]),
        delta in -3 * 3600i64..3 * 3600,
        label in "(hourly|daily|frequently|monthly)",
    ) {
        let t = anchor + TimeDelta::seconds(delta);
        let local = t.with_timezone(&tz).naive_local();
        let later = match tz.from_local_datetime(&local) {
            LocalResult::Ambiguous(a, b) => t == a.max(b),
            _ => false,
        };
        let name = format!(
            "autosnap_{}{}_{label}",
            local.format("%Y-%m-%d_%H:%M:%S"),
            if later { "dst" } else { "" }
        );
        let r = Recognizer::sanoid().recognize(&name).unwrap();
        prop_assert_eq!(r.label.as_deref(), Some(label.as_str()));
        let fold = if later { Fold::Later } else { Fold::Earlier };
        prop_assert_eq!(r.time, NameTime::Local { time: local, fold });
        prop_assert_eq!(r.time.resolve(tz), Some(t));
    }

    /// zrepl's formats, as its Go layouts write them, read back to the instant.
    #[test]
    fn zrepl_names_round_trip(t in instant(), offset_min in -12 * 60i32..=14 * 60) {
        // Keep the shifted local time within four-digit years.
        let t = t.min(DateTime::from_timestamp(MAX_SECS - 86_400, 0).unwrap());
        let r = Recognizer::zrepl();
        let dense = format!("zrepl_{}", t.format("%Y%m%d_%H%M%S_000"));
        let human = format!("zrepl_{}", t.format("%Y-%m-%d_%H:%M:%S"));
        let iso_utc = format!("zrepl_{}", t.format("%Y-%m-%dT%H:%M:%S.000Z"));
        let fixed = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
        let shifted = t.with_timezone(&fixed);
        let off = shifted.format("%z").to_string().replacen('+', "_", 1);
        let iso_zone = format!("zrepl_{}{}", shifted.format("%Y-%m-%dT%H:%M:%S.000"), if offset_min == 0 { "Z".to_owned() } else { off });
        for name in [dense, human, iso_utc, iso_zone] {
            let got = r.recognize(&name);
            prop_assert_eq!(got.map(|g| g.time), Some(NameTime::Utc(t)), "{}", name);
        }
        if t.timestamp() < 1_000_000_000_000 {
            let unix = format!("zrepl_{}", t.timestamp());
            prop_assert_eq!(r.recognize(&unix).map(|g| g.time), Some(NameTime::Utc(t)));
        }
    }

    #[test]
    fn zfs_auto_snapshot_and_iso_names_round_trip(t in instant(), label in "(frequent|hourly|daily|weekly|monthly)") {
        let t = DateTime::from_timestamp(t.timestamp() / 60 * 60, 0).unwrap();
        let zas = format!("zfs-auto-snap_{label}-{}", t.format("%Y-%m-%d-%H%M"));
        let got = Recognizer::zfs_auto_snapshot().recognize(&zas).unwrap();
        prop_assert_eq!(got.label.as_deref(), Some(label.as_str()));
        prop_assert_eq!(got.time, NameTime::Utc(t));
        for iso in [t.format("%Y-%m-%dT%H:%M:%SZ"), t.format("%Y%m%dT%H%M%SZ"), t.format("%Y-%m-%dT%H%M%SZ")] {
            let iso = iso.to_string();
            prop_assert_eq!(recognize_any(&iso).map(|g| g.time), Some(NameTime::Utc(t)), "{}", iso);
        }
    }

    #[test]
    fn recognize_any_never_panics_on_any_text(s in "\\PC{0,64}") {
        let _ = recognize_any(&s);
    }

    #[test]
    fn recognize_any_never_panics_on_almost_valid_names(
        tool in prop::sample::select(vec![
            "zsnap_hourly_20261123T150000Z",
            "autosnap_2026-11-23_15:00:01_hourly",
            "autosnap_2026-10-25_02:00:00dst_hourly",
            "zfs-auto-snap_hourly-2026-11-23-1500",
            "zfs-auto-snap_frequent-2017-10-29-02h45",
            "zrepl_20261123_150000_000",
            "zrepl_2026-11-23T15:00:00.000_0100",
            "2026-11-23T15:00:00.123Z",
        ]),
        edits in prop::collection::vec((0usize..48, prop::sample::select(vec!['0', '9', '1', '3', '6', ':', '-', '_', 'T', 'Z', 'é', '\u{10FFFF}', ' ', 'h', '.'])), 1..4),
        cut in 0usize..48,
    ) {
        let mut chars: Vec<char> = tool.chars().collect();
        for (at, c) in edits {
            let at = at % (chars.len() + 1);
            if at < chars.len() { chars[at] = c; } else { chars.push(c); }
        }
        chars.truncate(cut.max(1) + chars.len() / 2);
        let s: String = chars.into_iter().collect();
        if let Some(r) = recognize_any(&s) {
            // Whatever is recognized is a real date: it resolves in any zone.
            prop_assert!(r.time.resolve(chrono_tz::Europe::Berlin).is_some());
        }
    }
}

#[test]
fn invalid_dates_are_not_recognized() {
    for s in [
        "zsnap_hourly_20261323T150000Z",      // month 13
        "zsnap_hourly_20260230T150000Z",      // February 30
        "zsnap_hourly_20250229T150000Z",      // not a leap year
        "zsnap_hourly_20261231T235960Z",      // leap second
        "zsnap_hourly_20261123T240000Z",      // hour 24
        "zsnap_hourly_020261123T150000Z",     // five-digit year
        "zsnap_hourly_2026112３T150000Z",     // a full-width digit
        "autosnap_2026-02-29_12:00:00_daily", // not a leap year
        "autosnap_2026-11-23_12:60:00_daily",
        "zfs-auto-snap_daily-2026-00-10-1200",
        "zrepl_20261123_156000_000",
        "2026-11-23T15:00:60Z",
        "+2026-11-23T15:00:00Z",
    ] {
        assert_eq!(recognize_any(s), None, "{s}");
    }
    assert!(recognize_any("zsnap_hourly_20240229T150000Z").is_some());
    assert!(recognize_any("zsnap_hourly_99991231T235959Z").is_some());
    assert!(recognize_any("zsnap_hourly_00000101T000000Z").is_some());
}

#[test]
fn each_tool_by_example() {
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
    let berlin = chrono_tz::Europe::Berlin;
    for (name, label, time) in [
        ("zsnap_hourly_20261123T150000Z", Some("hourly"), at),
        // sanoid: 16:00 in Berlin in November is 15:00 UTC.
        ("autosnap_2026-11-23_16:00:00_hourly", Some("hourly"), at),
        ("zfs-auto-snap_daily-2026-11-23-1500", Some("daily"), at),
        ("zrepl_20261123_150000_000", None, at),
        ("zrepl_2026-11-23_15:00:00", None, at),
        ("2026-11-23T15:00:00Z", None, at),
        ("20261123T150000Z", None, at),
    ] {
        let r = recognize_any(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(r.label.as_deref(), label, "{name}");
        assert_eq!(r.time.resolve(berlin), Some(time), "{name}");
    }
    let jail = Recognizer::Iso8601 {
        prefix: "backup-".into(),
    };
    assert_eq!(
        jail.recognize("backup-2026-11-23T150000Z").unwrap().time,
        NameTime::Utc(at)
    );
    assert_eq!(recognize_any("backup-2026-11-23T150000Z"), None);
}
