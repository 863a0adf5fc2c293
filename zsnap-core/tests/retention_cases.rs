//! Edge cases of the retention rules, worked by hand: DST days, ISO week 53, equal
//! creation seconds, zrepl's own test tables (`fixtures/zrepl_pruning.toml`), sanoid
//! examples; and every user-facing parse error.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use zsnap_core::retention::{
    evaluate, evaluate_with, Candidate, Grid, KeepRule, NameRegex, Replicated, RetentionPolicy,
    SanoidCounts,
};
use zsnap_core::{Guid, ShortName};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .with_timezone(&Utc)
}

/// Snapshots `(creation, createtxg, label)` in slice order, named `s0`, `s1`, …
struct Set {
    names: Vec<ShortName>,
    snaps: Vec<(DateTime<Utc>, u64, Option<&'static str>)>,
}

impl Set {
    fn new(snaps: Vec<(DateTime<Utc>, u64, Option<&'static str>)>) -> Self {
        let names = (0..snaps.len())
            .map(|i| format!("s{i}").parse().unwrap())
            .collect();
        Set { names, snaps }
    }

    /// Times in slice order, createtxg increasing, one label for all.
    fn times(times: &[DateTime<Utc>], label: Option<&'static str>) -> Self {
        Set::new(
            times
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, i as u64 + 1, label))
                .collect(),
        )
    }

    fn candidates(&self) -> Vec<Candidate<'_>> {
        self.snaps
            .iter()
            .enumerate()
            .map(|(i, &(t, txg, label))| {
                Candidate::new(&self.names[i], Guid(i as u64 + 100), txg, t, label)
            })
            .collect()
    }

    /// `name: reason; reason` per kept snapshot, one per line.
    fn eval(&self, policy: &RetentionPolicy, now: DateTime<Utc>, tz: Tz) -> String {
        let kept = evaluate(policy, &self.candidates(), now, tz);
        let mut lines = Vec::new();
        for (i, reasons) in kept.iter().enumerate() {
            if !reasons.is_empty() {
                let r: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                lines.push(format!("s{i}: {}", r.join("; ")));
            }
        }
        lines.join("\n")
    }

    fn kept(&self, policy: &RetentionPolicy, now: DateTime<Utc>, tz: Tz) -> Vec<usize> {
        evaluate(policy, &self.candidates(), now, tz)
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect()
    }
}

fn rules(texts: &[&str]) -> RetentionPolicy {
    RetentionPolicy::new(texts.iter().map(|t| t.parse().unwrap()).collect())
}

fn every(start: &str, step: Duration, n: usize) -> Vec<DateTime<Utc>> {
    let t0 = utc(start);
    (0..n).map(|i| t0 + step * i as i32).collect()
}

const BERLIN: Tz = chrono_tz::Europe::Berlin;

#[test]
fn empty_candidates_give_an_empty_answer() {
    let p = rules(&["last 3"]).with_keep_oldest(true);
    assert!(evaluate(&p, &[], utc("2026-01-01T00:00:00Z"), chrono_tz::UTC).is_empty());
}

#[test]
fn spring_forward_in_berlin_has_no_0200_hour_and_a_23_hour_day() {
    // 2026-03-29: 02:00 CET becomes 03:00 CEST. Every 30 min from 23:00 CET the day before.
    let set = Set::times(
        &every("2026-03-28T22:00:00Z", Duration::minutes(30), 10),
        None,
    );
    let now = utc("2026-03-29T03:00:00Z");
    insta::assert_snapshot!(set.eval(&rules(&["hourly = 10, daily = 3"]), now, BERLIN), @r"
    s1: hourly = 10 [2026-03-28T23:00+01:00]; daily = 3 [2026-03-28]
    s3: hourly = 10 [2026-03-29T00:00+01:00]
    s5: hourly = 10 [2026-03-29T01:00+01:00]
    s7: hourly = 10 [2026-03-29T03:00+02:00]
    s9: hourly = 10 [2026-03-29T04:00+02:00]; daily = 3 [2026-03-29]
    ");
}

#[test]
fn fall_back_in_berlin_has_one_0200_bucket_spanning_two_hours_and_a_25_hour_day() {
    // 2026-10-25: 03:00 CEST becomes 02:00 CET. Every 30 min from 23:00 CEST the day before.
    let set = Set::times(
        &every("2026-10-24T21:00:00Z", Duration::minutes(30), 12),
        None,
    );
    let now = utc("2026-10-25T03:00:00Z");
    insta::assert_snapshot!(set.eval(&rules(&["hourly = 10, daily = 3"]), now, BERLIN), @r"
    s1: hourly = 10 [2026-10-24T23:00+02:00]; daily = 3 [2026-10-24]
    s3: hourly = 10 [2026-10-25T00:00+02:00]
    s5: hourly = 10 [2026-10-25T01:00+02:00]
    s9: hourly = 10 [2026-10-25T02:00+01:00]
    s11: hourly = 10 [2026-10-25T03:00+01:00]; daily = 3 [2026-10-25]
    ");
    // The 25-hour day is one daily bucket: 00:30 CEST and 23:30 CET are 24 hours apart
    // in wall-clock time and 25 in real time.
    let day = Set::times(
        &[utc("2026-10-24T22:30:00Z"), utc("2026-10-25T22:30:00Z")],
        None,
    );
    assert_eq!(
        day.eval(&rules(&["daily = 5"]), now, BERLIN),
        "s1: daily = 5 [2026-10-25]"
    );
    // In UTC they are two days.
    assert_eq!(
        day.kept(&rules(&["daily = 5"]), now, chrono_tz::UTC),
        [0, 1]
    );
}

#[test]
fn lord_howe_shifts_by_half_an_hour() {
    // Australia/Lord_Howe leaves DST on 2026-04-05: 02:00 +11:00 becomes 01:30 +10:30,
    // so local 01:30–02:00 happens twice and the hour 01 lasts 90 minutes.
    let set = Set::times(
        &every("2026-04-04T14:00:00Z", Duration::minutes(15), 8),
        None,
    );
    let now = utc("2026-04-04T16:00:00Z");
    insta::assert_snapshot!(set.eval(&rules(&["hourly = 9"]), now, chrono_tz::Australia::Lord_Howe), @r"
    s5: hourly = 9 [2026-04-05T01:00+10:30]
    s7: hourly = 9 [2026-04-05T02:00+10:30]
    ");
}

#[test]
fn iso_week_53_and_years() {
    // 2026 has 53 ISO weeks: Mon 2026-12-28 .. Sun 2027-01-03 is 2026-W53.
    let set = Set::times(
        &[
            utc("2026-12-27T12:00:00Z"), // Sunday, 2026-W52
            utc("2026-12-28T12:00:00Z"), // Monday, 2026-W53
            utc("2026-12-31T12:00:00Z"), // Thursday, 2026-W53
            utc("2027-01-03T12:00:00Z"), // Sunday, 2026-W53 (but year 2027)
            utc("2027-01-04T12:00:00Z"), // Monday, 2027-W01
        ],
        None,
    );
    let now = utc("2027-01-05T00:00:00Z");
    insta::assert_snapshot!(set.eval(&rules(&["weekly = 10, monthly = 10, yearly = 10"]), now, chrono_tz::UTC), @r"
    s0: weekly = 10 [2026-W52]
    s2: monthly = 10 [2026-12]; yearly = 10 [2026]
    s3: weekly = 10 [2026-W53]
    s4: weekly = 10 [2027-W01]; monthly = 10 [2027-01]; yearly = 10 [2027]
    ");
    // New York is five hours behind: 2027-01-04T03:00Z is still Sunday 2027-01-03 there.
    let edge = Set::times(
        &[utc("2027-01-03T12:00:00Z"), utc("2027-01-04T03:00:00Z")],
        None,
    );
    assert_eq!(
        edge.eval(&rules(&["weekly = 1"]), now, chrono_tz::America::New_York),
        "s1: weekly = 1 [2026-W53]"
    );
    assert_eq!(
        edge.eval(&rules(&["weekly = 1"]), now, chrono_tz::UTC),
        "s1: weekly = 1 [2027-W01]"
    );
}

#[test]
fn calendar_counts_buckets_that_have_snapshots() {
    // Days without snapshots do not count: daily = 2 reaches back over the gap.
    let set = Set::times(
        &[
            utc("2026-11-01T10:00:00Z"),
            utc("2026-11-10T10:00:00Z"),
            utc("2026-11-20T10:00:00Z"),
        ],
        None,
    );
    let now = utc("2026-11-23T00:00:00Z");
    assert_eq!(
        set.kept(&rules(&["daily = 2"]), now, chrono_tz::UTC),
        [1, 2]
    );
}

#[test]
fn equal_creation_seconds_are_ordered_by_createtxg_then_position() {
    let t = utc("2026-11-23T14:00:00Z");
    // Listed out of createtxg order: s0 has the higher txg, so it is the newer.
    let set = Set::new(vec![(t, 20, Some("hourly")), (t, 10, Some("hourly"))]);
    let now = t;
    // `last N` ranks equal seconds by name, descending, as zrepl's last_n: s1 > s0.
    assert_eq!(
        set.eval(&rules(&["last 1", "hourly = 1"]), now, chrono_tz::UTC),
        "s0: hourly = 1 [2026-11-23T14:00+00:00]\ns1: last 1 [#1 of 1]"
    );
    // zrepl's grid keeps the *oldest* of an interval, and of equal seconds the one
    // listed later, which zrepl's createtxg-ordered listing puts after: the higher txg.
    assert_eq!(set.kept(&rules(&["grid 1x1h"]), now, chrono_tz::UTC), [0]);
    // The same with keep=2 of three: the two highest txgs.
    let three = Set::new(vec![(t, 10, None), (t, 30, None), (t, 20, None)]);
    assert_eq!(
        three.kept(&rules(&["grid 1x1h(keep=2)"]), now, chrono_tz::UTC),
        [1, 2]
    );
    // sanoid prunes the oldest first: with hourly = 1 and both beyond the age limit, the
    // lower txg goes.
    let later = t + Duration::hours(5);
    assert_eq!(
        set.eval(
            &rules(&["sanoid hourly = 1, daily = 0, monthly = 0"]),
            later,
            chrono_tz::UTC
        ),
        "s0: sanoid hourly = 1 [#1 of 1]"
    );
    // Same second and same txg (taken by one `zfs snapshot`): position decides.
    let same = Set::new(vec![(t, 7, None), (t, 7, None)]);
    assert_eq!(same.kept(&rules(&["last 1"]), now, chrono_tz::UTC), [1]);
}

fn secs(n: i64) -> DateTime<Utc> {
    utc("2026-01-01T00:00:00Z") + Duration::seconds(n)
}

/// One case of `fixtures/zrepl_pruning.toml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ZreplCase {
    zrepl: String,
    rules: Vec<String>,
    #[serde(default)]
    offsite_txg: Option<u64>,
    snapshots: Vec<ZreplSnap>,
    kept: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ZreplSnap {
    name: String,
    at: i64,
    #[serde(default)]
    txg: Option<u64>,
}

#[derive(serde::Deserialize)]
struct ZreplCases {
    case: Vec<ZreplCase>,
}

#[test]
fn zsnap_keeps_exactly_what_zrepls_own_tests_expect() {
    let text = include_str!("fixtures/zrepl_pruning.toml");
    let cases: ZreplCases = toml::from_str(text).unwrap();
    assert!(cases.case.len() >= 25, "the whole table is read");
    let mut failures = Vec::new();
    for case in &cases.case {
        let names: Vec<ShortName> = case
            .snapshots
            .iter()
            .map(|s| s.name.parse().unwrap())
            .collect();
        let cands: Vec<Candidate<'_>> = case
            .snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let txg = s.txg.unwrap_or(i as u64 + 1);
                Candidate::new(&names[i], Guid(i as u64 + 1), txg, secs(s.at), None)
            })
            .collect();
        let policy = rules(&case.rules.iter().map(String::as_str).collect::<Vec<_>>());
        let replicated = match case.offsite_txg {
            Some(txg) => Replicated::new().with_target("offsite", Some(txg)),
            None => Replicated::new(),
        };
        let verdicts = evaluate_with(&policy, &cands, secs(0), chrono_tz::UTC, &replicated);
        let mut kept: Vec<&str> = verdicts
            .iter()
            .zip(&case.snapshots)
            .filter(|(r, _)| !r.is_empty())
            .map(|(_, s)| s.name.as_str())
            .collect();
        let mut want: Vec<&str> = case.kept.iter().map(String::as_str).collect();
        kept.sort_unstable();
        want.sort_unstable();
        if kept != want {
            failures.push(format!(
                "{}: zsnap keeps {kept:?}, zrepl {want:?}",
                case.zrepl
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn zrepl_documentation_grid_on_sixty_days_of_hourlies() {
    // `1x1h(keep=all) | 24x1h | 35x1d | 6x30d` on hourly snapshots for 60 days: the
    // newest (first hour), 24 hourlies, 35 dailies, and the oldest in the first 30-day
    // interval (the rest of the grid is empty).
    let set = Set::times(
        &every("2026-09-01T00:00:00Z", Duration::hours(1), 60 * 24),
        None,
    );
    let p = rules(&["grid 1x1h(keep=all) | 24x1h | 35x1d | 6x30d"]);
    let now = utc("2026-12-01T00:00:00Z"); // ignored by the grid
    let kept = set.kept(&p, now, chrono_tz::UTC);
    assert_eq!(kept.len(), 1 + 24 + 35 + 1);
    assert_eq!(
        kept[0], 0,
        "the oldest is the one kept by the first 30-day interval"
    );
    let reasons = evaluate(&p, &set.candidates(), now, BERLIN);
    insta::assert_snapshot!(reasons[0][0].to_string(), @"grid 1x1h(keep=all) | 24x1h | 35x1d | 6x30d [#1 of 6x30d (2026-08-26T00:00:00+02:00, 2026-09-25T00:00:00+02:00]]");
    insta::assert_snapshot!(reasons[set.snaps.len() - 1][0].to_string(), @"grid 1x1h(keep=all) | 24x1h | 35x1d | 6x30d [#1 of 1x1h (2026-10-30T23:00:00+01:00, 2026-10-31T00:00:00+01:00]]");
    // The grid ignores `now`: the same answer a year later.
    assert_eq!(
        set.kept(&p, now + Duration::days(365), chrono_tz::UTC),
        kept
    );
}

#[test]
fn zrepl_grid_with_keep_one_first_interval_may_drop_the_newest() {
    // Exactly zrepl: the first interval keeps its oldest; the newest is dropped by the
    // grid (the planner's own safety rule keeps it anyway).
    let set = Set::times(&[secs(0), secs(600), secs(1200)], None);
    assert_eq!(
        set.kept(&rules(&["grid 1x1h"]), secs(1200), chrono_tz::UTC),
        [0]
    );
}

#[test]
fn sanoid_keeps_by_age_and_by_count() {
    // hourly = 24 on hourly-labelled snapshots every 15 minutes for two days: sanoid
    // keeps all that are at most 24 h old (97 of them), far more than 24.
    let times = every("2026-11-21T00:00:00Z", Duration::minutes(15), 192);
    let now = *times.last().unwrap();
    let set = Set::times(&times, Some("hourly"));
    let mut counts = SanoidCounts::zeros();
    counts.hourly = 24;
    let p = RetentionPolicy::new(vec![KeepRule::Sanoid(counts)]);
    let kept = set.kept(&p, now, chrono_tz::UTC);
    assert_eq!(kept.len(), 97);
    assert_eq!(kept[0], 192 - 97);

    // A backup server that stopped receiving: 5 dailies all older than 7 days are all
    // kept, because there are not more than 7 of them.
    let old = Set::times(
        &every("2026-01-01T00:00:00Z", Duration::days(1), 5),
        Some("daily"),
    );
    let p = rules(&["sanoid daily = 7, hourly = 0, monthly = 0"]);
    assert_eq!(
        old.kept(&p, utc("2026-11-01T00:00:00Z"), chrono_tz::UTC)
            .len(),
        5
    );
}

#[test]
fn sanoid_months_are_31_days_and_the_limit_is_inclusive() {
    // monthly = 2: the age limit is 62 days. Three monthlies, the oldest exactly 62 days
    // old: kept (sanoid prunes only `ctime < now - 62 d`). One second later: pruned.
    let now = utc("2026-11-23T00:00:00Z");
    let times = [now - Duration::days(62), now - Duration::days(40), now];
    let set = Set::times(&times, Some("monthly"));
    let p = rules(&["sanoid monthly = 2, hourly = 0, daily = 0"]);
    insta::assert_snapshot!(set.eval(&p, now, BERLIN), @r"
    s0: sanoid monthly = 2 [after 2026-09-22T02:00:00+02:00]
    s1: sanoid monthly = 2 [#2 of 2]
    s2: sanoid monthly = 2 [#1 of 2]
    ");
    assert_eq!(set.kept(&p, now + Duration::seconds(1), BERLIN), [1, 2]);
    // yearly = 1 is 365.25 days: 365 days and 6 hours.
    let y = Set::times(
        &[
            now - Duration::days(365) - Duration::hours(6),
            now - Duration::days(1),
            now,
        ],
        Some("yearly"),
    );
    let p = rules(&["sanoid yearly = 1, hourly = 0, daily = 0, monthly = 0"]);
    assert_eq!(y.kept(&p, now, chrono_tz::UTC), [0, 1, 2]);
    assert_eq!(
        y.kept(&p, now + Duration::seconds(1), chrono_tz::UTC),
        [1, 2]
    );
}

#[test]
fn sanoid_frequent_period_and_defaults() {
    // frequently = 4 with frequent_period = 15: one hour; and only `frequently` labels.
    let now = utc("2026-11-23T12:00:00Z");
    let mut snaps: Vec<(DateTime<Utc>, u64, Option<&'static str>)> = (0..8)
        .map(|i| {
            (
                now - Duration::minutes(15 * (7 - i)),
                i as u64 + 1,
                Some("frequently"),
            )
        })
        .collect();
    snaps.push((now, 100, Some("manual")));
    let set = Set::new(snaps);
    let p =
        rules(&["sanoid frequently = 4, frequent_period = 15, hourly = 0, daily = 0, monthly = 0"]);
    assert_eq!(set.kept(&p, now, chrono_tz::UTC), [3, 4, 5, 6, 7]);
    // sanoid's defaults for unnamed types: hourly 48, daily 90, monthly 6.
    let d = SanoidCounts::default();
    assert_eq!(
        (
            d.frequently,
            d.frequent_period_minutes,
            d.hourly,
            d.daily,
            d.weekly,
            d.monthly,
            d.yearly
        ),
        (0, 15, 48, 90, 0, 6, 0)
    );
    assert_eq!(
        "sanoid".parse::<KeepRule>().unwrap().to_string(),
        "sanoid frequently = 0, frequent_period = 15, hourly = 48, daily = 90, weekly = 0, monthly = 6, yearly = 0"
    );
}

#[test]
fn newer_than_excludes_the_cutoff_itself() {
    let now = utc("2026-11-23T12:00:00Z");
    let set = Set::times(
        &[
            now - Duration::days(7),
            now - Duration::days(7) + Duration::seconds(1),
            now + Duration::hours(1),
        ],
        None,
    );
    insta::assert_snapshot!(set.eval(&rules(&["newer than 7d"]), now, BERLIN), @r"
    s1: newer than 7d [after 2026-11-16T13:00:00+01:00]
    s2: newer than 7d [after 2026-11-16T13:00:00+01:00]
    ");
}

#[test]
fn regex_last_labels_and_keep_oldest_reasons() {
    let t = utc("2026-11-23T12:00:00Z");
    let set = Set::new(vec![
        (t, 1, Some("daily")),
        (t + Duration::hours(1), 2, Some("hourly")),
        (t + Duration::hours(2), 3, Some("daily")),
        (t + Duration::hours(3), 4, None),
    ]);
    let names = ["manual_x", "zsnap_hourly_1", "zsnap_daily_2", "manual_y"];
    let short: Vec<ShortName> = names.iter().map(|n| n.parse().unwrap()).collect();
    let cands: Vec<Candidate> = set
        .snaps
        .iter()
        .enumerate()
        .map(|(i, &(c, txg, l))| Candidate::new(&short[i], Guid(i as u64), txg, c, l))
        .collect();
    let p = rules(&[
        "regex ^manual_",
        "last 1 (label daily, regex ^zsnap_)",
        "labels daily = 1, hourly = 5",
    ])
    .with_keep_oldest(true);
    let out = evaluate(&p, &cands, t, chrono_tz::UTC);
    let text: Vec<String> = out
        .iter()
        .map(|r| {
            r.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .collect();
    insta::assert_snapshot!(text.join("\n"), @r"
    regex ^manual_ [name matches]; keep_oldest [oldest]
    labels hourly = 5 [#1 of 5]
    last 1 (label daily, regex ^zsnap_) [#1 of 1]; labels daily = 1 [#1 of 1]
    regex ^manual_ [name matches]
    ");
}

#[test]
fn display_forms() {
    let texts = [
        "last 0",
        "last 3 (label hourly)",
        "last 3 (regex ^a(b|c)$, )",
        "last 3 (label hourly, regex x,y)",
        "labels",
        "labels daily = 7, hourly = 24",
        "calendar",
        "calendar hourly = 24, daily = 7, weekly = 4, monthly = 12, yearly = 3",
        "grid 1x1h(keep=all) | 24x1h | 6x30d(keep=2)",
        "newer than 1d12h",
        "regex  leading blank and trailing ",
    ];
    for t in texts {
        let rule: KeepRule = t.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rule.to_string(), t);
    }
    // Lenient spellings, printed canonically.
    for (input, canonical) in [
        ("daily = 7, weekly = 4", "calendar daily = 7, weekly = 4"),
        ("  last   3", "last 3"),
        ("grid 24 x 1h|1x1w", "grid 24x1h | 1x7d"),
        ("newer than 2w", "newer than 14d"),
        ("labels hourly=24,daily=7", "labels daily = 7, hourly = 24"),
    ] {
        assert_eq!(input.parse::<KeepRule>().unwrap().to_string(), canonical);
    }
    let regex = "last 3 (regex ^a(b|c)$, )".parse::<KeepRule>().unwrap();
    let KeepRule::Last { regex: Some(p), .. } = regex else {
        panic!()
    };
    assert_eq!(p.as_str(), "^a(b|c)$, ");
}

#[test]
fn serde_forms() {
    let policy: RetentionPolicy = serde_json::from_str(
        r#"{"rules": [
            "last 3",
            {"last": {"count": 2, "label": "daily", "regex": "^zsnap_"}},
            {"labels": {"hourly": 24}},
            {"calendar": {"daily": 7}},
            {"grid": "1x1h(keep=all) | 24x1h"},
            {"sanoid": {"hourly": 36, "frequent_period": 5}},
            {"newer_than": "7d"},
            {"regex": "^manual_"}
        ]}"#,
    )
    .unwrap();
    let text: Vec<String> = policy.rules.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!(text.join("\n"), @r"
    last 3
    last 2 (label daily, regex ^zsnap_)
    labels hourly = 24
    calendar daily = 7
    grid 1x1h(keep=all) | 24x1h
    sanoid frequently = 0, frequent_period = 5, hourly = 36, daily = 90, weekly = 0, monthly = 6, yearly = 0
    newer than 7d
    regex ^manual_
    ");
    assert!(!policy.keep_oldest);
    let json = serde_json::to_string(&policy).unwrap();
    insta::assert_snapshot!(json, @r#"{"rules":[{"last":{"count":3}},{"last":{"count":2,"label":"daily","regex":"^zsnap_"}},{"labels":{"hourly":24}},{"calendar":{"hourly":0,"daily":7,"weekly":0,"monthly":0,"yearly":0}},{"grid":"1x1h(keep=all) | 24x1h"},{"sanoid":{"frequently":0,"frequent_period":5,"hourly":36,"daily":90,"weekly":0,"monthly":6,"yearly":0}},{"newer_than":"7d"},{"regex":"^manual_"}],"keep_oldest":false}"#);
    assert_eq!(
        serde_json::from_str::<RetentionPolicy>(&json).unwrap(),
        policy
    );

    let err = |s: &str| {
        serde_json::from_str::<RetentionPolicy>(s)
            .unwrap_err()
            .to_string()
    };
    insta::assert_snapshot!(err(r#"{"rules": [{"calendar": {"daily": 7, "fortnightly": 2}}]}"#), @"unknown field `fortnightly`, expected one of `hourly`, `daily`, `weekly`, `monthly`, `yearly` at line 1 column 50");
    insta::assert_snapshot!(err(r#"{"rules": [{"sanoid": {"hourly": 36, "quarterly": 1}}]}"#), @"unknown field `quarterly`, expected one of `frequently`, `frequent_period`, `frequent_period_minutes`, `hourly`, `daily`, `weekly`, `monthly`, `yearly` at line 1 column 48");
    insta::assert_snapshot!(err(r#"{"rules": [{"grid": "24x"}]}"#), @r#"invalid grid "24x": interval 1 of 1 ("24x"): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)` at line 1 column 26"#);
    insta::assert_snapshot!(err(r#"{"rules": ["keep 3"]}"#), @r#"invalid keep rule "keep 3": unknown rule; expected `last N`, `labels LABEL = N, …`, `calendar daily = N, …`, `grid SPEC`, `sanoid daily = N, …`, `newer than DURATION`, `regex PATTERN`, `not regex PATTERN` or `not replicated to TARGET` at line 1 column 19"#);
    insta::assert_snapshot!(err(r#"{"rules": [], "keep_newest": true}"#), @"unknown field `keep_newest`, expected `rules` or `keep_oldest` at line 1 column 27");
    insta::assert_snapshot!(err(r#"{"rules": [{"regex": "(("}]}"#), @r#"invalid regex "((": unclosed group (at column 2) at line 1 column 26"#);
}

#[test]
fn pattern_errors() {
    let e = |s: &str| s.parse::<NameRegex>().unwrap_err().to_string();
    insta::assert_snapshot!(e("zsnap_(hourly"), @r#"invalid regex "zsnap_(hourly": unclosed group (at column 7)"#);
    insta::assert_snapshot!(e("[z-a]"), @r#"invalid regex "[z-a]": invalid character class range, the start must be <= the end (at column 2)"#);
    insta::assert_snapshot!(e("*daily"), @r#"invalid regex "*daily": repetition operator missing expression (at column 1)"#);
    insta::assert_snapshot!(e("(?<=a)b"), @r#"invalid regex "(?<=a)b": look-around, including look-ahead and look-behind, is not supported (at column 1)"#);
    insta::assert_snapshot!(e("a{1000000}{1000000}"), @r#"invalid regex "a{1000000}{1000000}": it compiles to more than the size limit of 10485760 bytes"#);
    let p: NameRegex = "^a".parse().unwrap();
    assert_eq!(p, NameRegex::new("^a").unwrap());
    assert_ne!(p, NameRegex::new("^(?:a)").unwrap());
    assert_eq!(format!("{p:?}"), r#"NameRegex("^a")"#);
}

#[test]
fn grid_errors() {
    let e = |s: &str| s.parse::<Grid>().unwrap_err().to_string();
    insta::assert_snapshot!(e(""), @r#"invalid grid "": it is empty; expected intervals separated by `|`, e.g. `1x1h(keep=all) | 24x1h | 14x1d`"#);
    insta::assert_snapshot!(e("24x1h |"), @r#"invalid grid "24x1h |": interval 2 of 2 (""): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`"#);
    insta::assert_snapshot!(e("24h"), @r#"invalid grid "24h": interval 1 of 1 ("24h"): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`"#);
    insta::assert_snapshot!(e("0x1h"), @r#"invalid grid "0x1h": interval 1 of 1 ("0x1h"): the count must be at least 1"#);
    insta::assert_snapshot!(e("99999999999x1h"), @r#"invalid grid "99999999999x1h": interval 1 of 1 ("99999999999x1h"): the count is too large"#);
    insta::assert_snapshot!(e("1x1y"), @r#"invalid grid "1x1y": interval 1 of 1 ("1x1y"): invalid duration: unknown unit (use s, m, h, d or w)"#);
    insta::assert_snapshot!(e("1x0s"), @r#"invalid grid "1x0s": interval 1 of 1 ("1x0s"): the duration must be longer than 0s"#);
    insta::assert_snapshot!(e("1x1h(keep=1"), @r#"invalid grid "1x1h(keep=1": interval 1 of 1 ("1x1h(keep=1"): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`"#);
    insta::assert_snapshot!(e("1x1h(max=2)"), @r#"invalid grid "1x1h(max=2)": interval 1 of 1 ("1x1h(max=2)"): unknown parameter "max=2"; only keep=N and keep=all are supported"#);
    insta::assert_snapshot!(e("1x1h(keep=0)"), @r#"invalid grid "1x1h(keep=0)": interval 1 of 1 ("1x1h(keep=0)"): keep must be a whole number of at least 1, or `all` to keep every snapshot of the interval, not "0""#);
    insta::assert_snapshot!(e("1x1h(keep=-2)"), @r#"invalid grid "1x1h(keep=-2)": interval 1 of 1 ("1x1h(keep=-2)"): keep must be a whole number of at least 1, or `all` to keep every snapshot of the interval, not "-2""#);
    // zrepl's `keep=-1` is its "all", and prints as such.
    assert_eq!(
        "1x1h(keep=-1) | 24x1h".parse::<Grid>().unwrap().to_string(),
        "1x1h(keep=all) | 24x1h"
    );
    insta::assert_snapshot!(e("24x1h | 7x1d | 1x1h"), @r#"invalid grid "24x1h | 7x1d | 1x1h": interval 3 (1h) is shorter than interval 2 (1d); interval lengths must not decrease unless every earlier interval is keep=all"#);
    // A long keep=all lead is fine, as in zrepl.
    assert!("1x1d(keep=all) | 24x1h | 7x1d".parse::<Grid>().is_ok());
    assert!("1x1d(keep=all) | 1x2d(keep=all) | 24x1h"
        .parse::<Grid>()
        .is_ok());
    assert!("1x1d(keep=all) | 1x2d | 1x1h".parse::<Grid>().is_err());
}

#[test]
fn filtered_rules_text_round_trips() {
    for text in [
        "grid 1x1h(keep=all) | 24x1h (regex ^zrepl_)",
        "grid 24x1h (not regex ^manual_)",
        "last 3 (regex ^a) (regex _1$)",
        "last 3 (label hourly, regex ^a) (not regex _1$)",
        "last 3 (label hourly) (not regex _1$)",
        "last 3 (not regex _1$)",
        "calendar daily = 7 (regex x)",
        "sanoid frequently = 0, frequent_period = 15, hourly = 48, daily = 90, weekly = 0, monthly = 6, yearly = 0 (regex ^autosnap_)",
        "not replicated to offsite (not regex ^keep)",
        "not regex ^a (regex b)",
        "regex a (regex b)",
    ] {
        let rule: KeepRule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(rule.to_string(), text);
    }
    // `regex R` and `not regex R` run to the end: a filter after them is their pattern.
    assert_eq!(
        "regex a (regex b)".parse::<KeepRule>().unwrap(),
        KeepRule::Regex("a (regex b)".parse().unwrap())
    );
    let positive: KeepRule = "last 3 (regex ^a)".parse().unwrap();
    assert!(matches!(positive, KeepRule::Last { regex: Some(_), .. }));
    let e = |s: &str| s.parse::<KeepRule>().unwrap_err().to_string();
    insta::assert_snapshot!(e("grid 24x1h (regex ^a"), @r#"invalid keep rule "grid 24x1h (regex ^a": expected the filter `(regex R)` or `(not regex R)` at the end, not "(regex ^a""#);
    insta::assert_snapshot!(e("grid 24x1h (regex (a)\\1)"), @r#"invalid keep rule "grid 24x1h (regex (a)\\1)": invalid regex: backreferences are not supported (at column 4)"#);
    insta::assert_snapshot!(e("not replicated offsite"), @r#"invalid keep rule "not replicated offsite": expected `not replicated to TARGET`, with the name of a [targets.NAME] table"#);
}

#[test]
fn rule_errors() {
    let e = |s: &str| s.parse::<KeepRule>().unwrap_err().to_string();
    insta::assert_snapshot!(e("keep 3"), @r#"invalid keep rule "keep 3": unknown rule; expected `last N`, `labels LABEL = N, …`, `calendar daily = N, …`, `grid SPEC`, `sanoid daily = N, …`, `newer than DURATION`, `regex PATTERN`, `not regex PATTERN` or `not replicated to TARGET`"#);
    insta::assert_snapshot!(e("last"), @r#"invalid keep rule "last": "" is not a count (a whole number)"#);
    insta::assert_snapshot!(e("last -1"), @r#"invalid keep rule "last -1": "-1" is not a count (a whole number)"#);
    insta::assert_snapshot!(e("last 3 (hourly)"), @r#"invalid keep rule "last 3 (hourly)": expected `(label L)`, `(regex R)` or `(label L, regex R)` after the count, not "(hourly)""#);
    insta::assert_snapshot!(e("last 3 (label hourly"), @r#"invalid keep rule "last 3 (label hourly": expected `(label L)`, `(regex R)` or `(label L, regex R)` after the count, not "(label hourly""#);
    insta::assert_snapshot!(e("last 3 (regex [)"), @r#"invalid keep rule "last 3 (regex [)": invalid regex: unclosed character class (at column 1)"#);
    insta::assert_snapshot!(e("labels daily 7"), @r#"invalid keep rule "labels daily 7": expected `NAME = N`, not "daily 7""#);
    insta::assert_snapshot!(e("labels daily = 7, daily = 8"), @r#"invalid keep rule "labels daily = 7, daily = 8": "daily" is given twice"#);
    insta::assert_snapshot!(e("calendar fortnightly = 2"), @r#"invalid keep rule "calendar fortnightly = 2": unknown key "fortnightly"; expected one of hourly, daily, weekly, monthly, yearly"#);
    insta::assert_snapshot!(e("daily = seven"), @r#"invalid keep rule "daily = seven": "seven" is not a count (a whole number)"#);
    insta::assert_snapshot!(e("sanoid quarterly = 4"), @r#"invalid keep rule "sanoid quarterly = 4": unknown key "quarterly"; expected one of frequently, frequent_period, hourly, daily, weekly, monthly, yearly"#);
    insta::assert_snapshot!(e("grid 24x1h | 1x"), @r#"invalid keep rule "grid 24x1h | 1x": interval 2 of 2 ("1x"): expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`"#);
    insta::assert_snapshot!(e("newer than a week"), @r#"invalid keep rule "newer than a week": invalid duration: unknown unit (use s, m, h, d or w)"#);
    insta::assert_snapshot!(e("newer 7d"), @r#"invalid keep rule "newer 7d": unknown rule; expected `last N`, `labels LABEL = N, …`, `calendar daily = N, …`, `grid SPEC`, `sanoid daily = N, …`, `newer than DURATION`, `regex PATTERN`, `not regex PATTERN` or `not replicated to TARGET`"#);
    insta::assert_snapshot!(e("regex"), @r#"invalid keep rule "regex": unknown rule; expected `last N`, `labels LABEL = N, …`, `calendar daily = N, …`, `grid SPEC`, `sanoid daily = N, …`, `newer than DURATION`, `regex PATTERN`, `not regex PATTERN` or `not replicated to TARGET`"#);
    insta::assert_snapshot!(e("regex a)"), @r#"invalid keep rule "regex a)": invalid regex: unopened group (at column 2)"#);
}
