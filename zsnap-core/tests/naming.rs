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

mod formats {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};
    use zsnap_core::naming::{FormatZone, NameFormat};

    fn naive(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    fn fmt(prefix: &str, format: &str, zone: FormatZone, label: Option<&str>) -> NameFormat {
        NameFormat::new(prefix, format, zone, label.map(|l| l.parse().unwrap()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Each tool's default names, as the tool writes them.
    #[test]
    fn names_of_other_tools() {
        let t = naive(2026, 11, 23, 15, 4, 5);
        let local = |time| NameTime::Local {
            time,
            fold: Fold::Earlier,
        };
        // (format, a name the tool writes, label, time)
        let cases: Vec<(NameFormat, &str, Option<&str>, NameTime)> = vec![
            // znapzend: tsformat %Y-%m-%d-%H%M%S, local time, no prefix.
            (
                fmt("", "%Y-%m-%d-%H%M%S", FormatZone::Local, None),
                "2026-11-23-150405",
                None,
                local(t),
            ),
            // zrepl with a custom prefix and its dense format, UTC.
            (
                fmt("zrepl_home_", "%Y%m%d_%H%M%S_000", FormatZone::Utc, None),
                "zrepl_home_20261123_150405_000",
                None,
                NameTime::Utc(t.and_utc()),
            ),
            // zfs-auto-snapshot: the label between prefix and time, UTC, to the minute.
            (
                fmt(
                    "zfs-auto-snap_",
                    "{label}-%Y-%m-%d-%H%M",
                    FormatZone::Utc,
                    None,
                ),
                "zfs-auto-snap_hourly-2026-11-23-1504",
                Some("hourly"),
                NameTime::Utc(naive(2026, 11, 23, 15, 4, 0).and_utc()),
            ),
            // pyznap: the label last, local time.
            (
                fmt(
                    "pyznap_",
                    "%Y-%m-%d_%H:%M:%S_{label}",
                    FormatZone::Local,
                    None,
                ),
                "pyznap_2026-11-23_15:04:05_frequent",
                Some("frequent"),
                local(t),
            ),
            // zfs_autobackup: <backupname>-%Y%m%d%H%M%S, local time.
            (
                fmt("offsite1-", "%Y%m%d%H%M%S", FormatZone::Local, None),
                "offsite1-20261123150405",
                None,
                local(t),
            ),
            // A jail manager writing auto-YYYY-MM-DD-HHMM, given a label by the policy.
            (
                fmt("auto-", "%Y-%m-%d-%H%M", FormatZone::Local, Some("daily")),
                "auto-2026-11-23-1504",
                Some("daily"),
                local(naive(2026, 11, 23, 15, 4, 0)),
            ),
            // A name in a named zone resolves to an instant.
            (
                fmt(
                    "ny-",
                    "%Y%m%d-%H%M",
                    FormatZone::Zone(chrono_tz::America::New_York),
                    None,
                ),
                "ny-20261123-1004",
                None,
                NameTime::Utc(naive(2026, 11, 23, 15, 4, 0).and_utc()),
            ),
            // ISO 8601 basic time with a literal Z.
            (
                fmt("snap-", "%Y-%m-%dT%H%M%SZ", FormatZone::Utc, None),
                "snap-2026-11-23T150405Z",
                None,
                NameTime::Utc(t.and_utc()),
            ),
        ];
        for (f, name, label, time) in cases {
            let r = f
                .recognize(name)
                .unwrap_or_else(|| panic!("{name} is not recognized by {}", f.format()));
            assert_eq!(r.label.as_deref(), label, "{name}");
            assert_eq!(r.time, time, "{name}");
        }
        let zas = fmt(
            "zfs-auto-snap_",
            "{label}-%Y-%m-%d-%H%M",
            FormatZone::Utc,
            None,
        );
        for bad in [
            "zfs-auto-snap_hourly-2026-11-23-150",
            "zfs-auto-snap_-2026-11-23-1500",
            "zfs-auto-snap_Hourly-2026-11-23-1500",
            "zfs-auto-snap_hourly-2026-13-23-1500",
            "zfs-auto-snap_hourly-2026-11-23-1500x",
            "zfs-auto-snaphourly-2026-11-23-1500",
            "autosnap_2026-11-23_15:00:00_hourly",
        ] {
            assert_eq!(zas.recognize(bad), None, "{bad}");
        }
        // A space-padded Unix time before the label (found by fuzzing: chrono pads
        // %_s to nine places, which the samples' times all fill).
        let padded = fmt("t", "%_s-{label}", FormatZone::Utc, None);
        let r = padded.recognize("t 53328423-hourly").unwrap();
        assert_eq!(
            r.time,
            NameTime::Utc(DateTime::from_timestamp(53_328_423, 0).unwrap())
        );
        // A label with hyphens and digits.
        assert_eq!(
            zas.recognize("zfs-auto-snap_every-15m-2026-11-23-1500")
                .unwrap()
                .label
                .as_deref(),
            Some("every-15m")
        );
    }

    #[test]
    fn formats_that_cannot_round_trip_are_refused() {
        let e = |prefix: &str, format: &str, label: Option<&str>| {
            NameFormat::new(
                prefix,
                format,
                FormatZone::Utc,
                label.map(|l| l.parse().unwrap()),
            )
            .unwrap_err()
            .to_string()
        };
        insta::assert_snapshot!(e("a-", "%Y-%m-%d", None), @r#"invalid snapshot name format "%Y-%m-%d": it does not write the time of day: give hours and minutes, e.g. "%Y-%m-%d-%H%M""#);
        insta::assert_snapshot!(e("a-", "%Y-%m-%d-%H", None), @r#"invalid snapshot name format "%Y-%m-%d-%H": it does not write enough to tell the instant (a year, month, day, hour and minute, or %s)"#);
        insta::assert_snapshot!(e("a-", "%Y-%m-%d %H:%M:%S %Q", None), @r#"invalid snapshot name format "%Y-%m-%d %H:%M:%S %Q": it has an unknown or unfinished % specifier"#);
        insta::assert_snapshot!(e("a-", "%Y/%m/%d-%H%M", None), @r#"invalid snapshot name format "%Y/%m/%d-%H%M": it writes '/', which ZFS does not allow in a snapshot name"#);
        insta::assert_snapshot!(e("a b/", "%Y%m%d%H%M", None), @r#"invalid snapshot name format "%Y%m%d%H%M": the prefix "a b/" has '/', which ZFS does not allow in a snapshot name"#);
        insta::assert_snapshot!(e("a-", "{label}-{label}-%Y%m%d%H%M", None), @r#"invalid snapshot name format "{label}-{label}-%Y%m%d%H%M": it holds {label} more than once"#);
        insta::assert_snapshot!(e("a-", "{label}-%Y%m%d%H%M", Some("daily")), @r#"invalid snapshot name format "{label}-%Y%m%d%H%M": it holds {label}, so a fixed label cannot be given too"#);
        insta::assert_snapshot!(e("a-", "", None), @r#"invalid snapshot name format "": it is empty"#);
        insta::assert_snapshot!(e("a-", "%Y%m%d%H%M%", None), @r#"invalid snapshot name format "%Y%m%d%H%M%": it has an unknown or unfinished % specifier"#);
        insta::assert_snapshot!(e("a-", "%d-%H%M", None), @r#"invalid snapshot name format "%d-%H%M": it does not write enough to tell the instant (a year, month, day, hour and minute, or %s)"#);
        insta::assert_snapshot!(e("a-", "2{label}61%s", None), @r#"invalid snapshot name format "2{label}61%s": {label} is followed by what a label may hold (a letter, digit, '-' or a field) and then by fields of varying width, so the label cannot be told apart; put '_' or '.' after {label}"#);
        insta::assert_snapshot!(e("a-", "%s{label}_", None), @r#"invalid snapshot name format "%s{label}_": {label} follows a number of varying width, so the label cannot be told apart; put a separator before {label}"#);
        insta::assert_snapshot!(e("a-", "%Y%m%d-%k%e%M", None), @r#"invalid snapshot name format "%Y%m%d-%k%e%M": a number of varying width (%s, or a field without zero padding such as %e, %k or %-d) is followed directly by another number, so names cannot be split; put a separator between them"#);
        insta::assert_snapshot!(e("a-", "%Y%m%dT%H%M%z", None), @r#"invalid snapshot name format "%Y%m%dT%H%M%z": it writes '+', which ZFS does not allow in a snapshot name"#);
        // Two-digit years, %s, %j, month names, 12-hour clocks and zone names (read
        // and ignored) are fine.
        for ok in [
            "%y%m%d%H%M",
            "%s",
            "%Y-%j-%H%M",
            "%d%b%Y-%I%M%p",
            "%F_%T",
            "%Y%m%d%H%M%Z",
        ] {
            NameFormat::new("p-", ok, FormatZone::Utc, None).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    fn tool_format() -> impl Strategy<Value = (&'static str, &'static str)> {
        prop::sample::select(vec![
            ("", "%Y-%m-%d-%H%M%S"),
            ("zrepl_", "%Y%m%d_%H%M%S_000"),
            ("zfs-auto-snap_", "{label}-%Y-%m-%d-%H%M"),
            ("pyznap_", "%Y-%m-%d_%H:%M:%S_{label}"),
            ("backup-", "%Y%m%d%H%M%S"),
            ("auto-", "%Y-%m-%d-%H%M"),
            ("x", "%y%m%d.%H:%M"),
            ("m-", "{label}_%F_%T"),
            ("u", "%s"),
        ])
    }

    proptest! {
        /// Whatever the pattern writes for an instant and a label, it reads back as
        /// that label and instant (to the minute when it writes no seconds).
        #[test]
        fn format_then_recognize(
            (prefix, format) in tool_format(),
            label in label(),
            secs in 0i64..3_124_137_599, // 1970 to 2068, for %y
        ) {
            let f = NameFormat::new(prefix, format, FormatZone::Utc, None).unwrap();
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let written = format!(
                "{prefix}{}",
                t.format(&format.replace("{label}", label.as_str()))
            );
            let r = f.recognize(&written).unwrap_or_else(|| panic!("{written}"));
            let want = if format.contains("%S") || format.contains("%T") || format.contains("%s") {
                t
            } else {
                t - TimeDelta::seconds(t.timestamp().rem_euclid(60))
            };
            prop_assert_eq!(r.time, NameTime::Utc(want), "{}", written);
            let want_label = format.contains("{label}").then(|| label.as_str().to_owned());
            prop_assert_eq!(r.label, want_label, "{}", written);
        }

        /// No format and name make the recognizer panic.
        #[test]
        fn any_format_any_name(format in "[%a-zA-Z{}_:. -]{0,16}", name in "\\PC{0,30}") {
            if let Ok(f) = NameFormat::new("", format, FormatZone::Local, None) {
                let _ = f.recognize(&name);
            }
        }
    }

    #[test]
    fn serde_and_recognizer() {
        let f = fmt(
            "pyznap_",
            "%Y-%m-%d_%H:%M:%S_{label}",
            FormatZone::Local,
            None,
        );
        let r = Recognizer::Format(f.clone());
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"format","prefix":"pyznap_","format":"%Y-%m-%d_%H:%M:%S_{label}","timezone":"local"}"#
        );
        assert_eq!(serde_json::from_str::<Recognizer>(&j).unwrap(), r);
        assert!(serde_json::from_str::<Recognizer>(r#"{"kind":"format","format":"%Y"}"#).is_err());
        assert_eq!(r.tool(), "format");
        assert!(r.recognize("pyznap_2026-11-23_15:04:05_hourly").is_some());
    }
}
