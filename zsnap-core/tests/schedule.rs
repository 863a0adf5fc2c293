//! Schedules against a naive oracle, and simulated runs under monotone and
//! non-monotone clocks, across DST changes.

use chrono::{DateTime, Datelike, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use zsnap_core::duration::Span;
use zsnap_core::schedule::{due, next_due, LabelSchedule, Period, Schedule};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The period of `t` computed the obvious way with chrono's calendar accessors, as a
/// tuple that orders like time: an independent re-implementation of the module docs.
fn oracle_key(ls: &LabelSchedule, tz: Tz, t: DateTime<Utc>) -> (i64, i64, i64, i64) {
    let off = ls.offset().seconds() as i64;
    match ls.every() {
        Period::Every(s) => (
            (t.timestamp() - off).div_euclid(s.seconds() as i64),
            0,
            0,
            0,
        ),
        Period::Hourly => {
            // The local hour `off` earlier, told apart by the offset when it happens
            // twice (the summer-time occurrence, with the larger offset, comes first).
            let l = (t - TimeDelta::seconds(off)).with_timezone(&tz);
            let shifted = l.naive_local();
            let zone = i64::from(l.offset().fix().local_minus_utc());
            (
                i64::from(shifted.date().num_days_from_ce()),
                i64::from(shifted.hour()),
                -zone,
                0,
            )
        }
        _ => {
            let local = t.with_timezone(&tz).naive_local() - TimeDelta::seconds(off);
            let d = local.date();
            match ls.every() {
                Period::Daily => (i64::from(d.num_days_from_ce()), 0, 0, 0),
                Period::Weekly => (
                    i64::from(d.iso_week().year()),
                    i64::from(d.iso_week().week()),
                    0,
                    0,
                ),
                Period::Monthly => (i64::from(d.year()), i64::from(d.month()), 0, 0),
                Period::Yearly => (i64::from(d.year()), 0, 0, 0),
                other => panic!("unexpected period {other}"),
            }
        }
    }
}

fn oracle_due(
    schedule: &Schedule,
    tz: Tz,
    existing: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Vec<String> {
    schedule
        .labels()
        .iter()
        .filter(|ls| {
            let k = oracle_key(ls, tz, now);
            !existing
                .iter()
                .any(|(l, t)| l == ls.label().as_str() && oracle_key(ls, tz, *t) >= k)
        })
        .map(|ls| ls.label().to_string())
        .collect()
}

/// Instants around DST changes (and a quiet day) in the zones the tests use.
const ANCHORS: [(i32, u32, u32, u32); 7] = [
    (2026, 3, 29, 1),   // Europe/Berlin spring forward
    (2026, 10, 25, 1),  // Europe/Berlin fall back
    (2026, 3, 8, 7),    // America/New_York spring forward
    (2026, 11, 1, 6),   // America/New_York fall back
    (2026, 12, 31, 23), // a year end
    (2027, 1, 3, 12),   // an ISO week 53 (2026-W53 ends 2027-01-03)
    (2026, 6, 15, 12),  // nothing special
];

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::UTC,
        chrono_tz::Asia::Kolkata,
    ])
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0..ANCHORS.len(), -4 * 86_400i64..4 * 86_400).prop_map(|(i, delta)| {
        let (y, m, d, h) = ANCHORS[i];
        utc(y, m, d, h, 0, 0) + TimeDelta::seconds(delta)
    })
}

fn label_schedule() -> impl Strategy<Value = LabelSchedule> {
    let period = prop_oneof![
        Just(Period::Hourly),
        Just(Period::Daily),
        Just(Period::Weekly),
        Just(Period::Monthly),
        Just(Period::Yearly),
        (1u64..=3 * 86_400).prop_map(|s| Period::Every(Span::from_secs(s))),
        prop::sample::select(vec![900u64, 3600, 5400, 86_400])
            .prop_map(|s| Period::Every(Span::from_secs(s))),
    ];
    (period, any::<bool>(), 0u64..1_000_000).prop_map(|(every, with_offset, raw)| {
        let ls = LabelSchedule::new("x".parse().unwrap(), every);
        let min = match every {
            Period::Every(s) => s.seconds(),
            Period::Hourly => 3600,
            Period::Daily => 86_400,
            Period::Weekly => 7 * 86_400,
            Period::Monthly => 28 * 86_400,
            _ => 365 * 86_400,
        };
        let offset = if with_offset { raw % min } else { 0 };
        ls.with_offset(Span::from_secs(offset)).unwrap()
    })
}

fn schedule() -> impl Strategy<Value = Schedule> {
    prop::collection::vec(label_schedule(), 1..4).prop_map(|v| {
        let named = v
            .into_iter()
            .enumerate()
            .map(|(i, ls)| {
                LabelSchedule::new(format!("l{i}").parse().unwrap(), ls.every())
                    .with_offset(ls.offset())
                    .unwrap()
            })
            .collect();
        Schedule::new(named).unwrap()
    })
}

/// One step of a clock between runs.
#[derive(Debug, Clone, Copy)]
enum Step {
    Forward(i64),
    Back(i64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        6 => (1i64..=7200).prop_map(Step::Forward),
        2 => (7200i64..=45 * 86_400).prop_map(Step::Forward),
        2 => (1i64..=7200).prop_map(Step::Back),
        1 => (7200i64..=45 * 86_400).prop_map(Step::Back),
    ];
    prop::collection::vec(step, 1..24)
}

proptest! {
    /// `due` agrees with the oracle on arbitrary snapshot sets.
    #[test]
    fn due_matches_the_oracle(
        schedule in schedule(),
        tz in zone(),
        now in instant(),
        existing in prop::collection::vec((0usize..4, instant()), 0..12),
    ) {
        let existing: Vec<(String, DateTime<Utc>)> =
            existing.into_iter().map(|(i, t)| (format!("l{i}"), t)).collect();
        let got: Vec<String> = due(&schedule, tz, existing.iter().map(|(l, t)| (l.as_str(), *t)), now)
            .into_iter()
            .map(|l| l.to_string())
            .collect();
        prop_assert_eq!(got, oracle_due(&schedule, tz, &existing, now));
    }

    /// Runs under a clock that jumps forward and back never take two snapshots of a
    /// label in one period, and always leave one in the current period or later.
    #[test]
    fn runs_never_duplicate_a_period(
        schedule in schedule(),
        tz in prop::sample::select(vec![chrono_tz::Europe::Berlin, chrono_tz::America::New_York]),
        start in instant(),
        steps in steps(),
    ) {
        let mut taken: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut now = start;
        for step in std::iter::once(Step::Forward(0)).chain(steps) {
            now = match step {
                Step::Forward(s) => now + TimeDelta::seconds(s),
                Step::Back(s) => now - TimeDelta::seconds(s),
            };
            for label in due(&schedule, tz, taken.iter().map(|(l, t)| (l.as_str(), *t)), now) {
                taken.push((label.to_string(), now));
            }
            for ls in schedule.labels() {
                let mine: Vec<_> = taken
                    .iter()
                    .filter(|(l, _)| l == ls.label().as_str())
                    .map(|(_, t)| oracle_key(ls, tz, *t))
                    .collect();
                let k = oracle_key(ls, tz, now);
                prop_assert!(mine.iter().any(|m| *m >= k), "{} has nothing in the period of {now}", ls.label());
                let mut sorted = mine.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), mine.len(), "{} took two snapshots in one period: {:?}", ls.label(), taken);
            }
        }
    }

    /// The same invariants with the module's own period ids, in zones with odd
    /// transitions (30-minute DST shifts, a skipped day, DST at midnight).
    #[test]
    fn runs_never_duplicate_a_period_in_odd_zones(
        schedule in schedule(),
        tz in prop::sample::select(vec![
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Pacific::Apia,
            chrono_tz::Pacific::Chatham,
        ]),
        start in prop::sample::select(vec![
            utc(2011, 12, 29, 0, 0, 0),  // Apia skips 2011-12-30
            utc(2018, 2, 18, 1, 0, 0),   // Sao Paulo leaves DST at midnight
            utc(2018, 11, 4, 2, 0, 0),   // Sao Paulo enters DST at midnight
            utc(2026, 4, 4, 14, 0, 0),   // Lord Howe leaves DST (30 minutes)
            utc(2026, 10, 3, 15, 0, 0),  // Lord Howe enters DST
            utc(2026, 4, 4, 12, 0, 0),   // Chatham (UTC+12:45) leaves DST
        ]),
        jitter in -2 * 86_400i64..2 * 86_400,
        steps in steps(),
    ) {
        let mut taken: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut now = start + TimeDelta::seconds(jitter);
        for step in std::iter::once(Step::Forward(0)).chain(steps) {
            now = match step {
                Step::Forward(s) => now + TimeDelta::seconds(s),
                Step::Back(s) => now - TimeDelta::seconds(s),
            };
            for label in due(&schedule, tz, taken.iter().map(|(l, t)| (l.as_str(), *t)), now) {
                taken.push((label.to_string(), now));
            }
            for ls in schedule.labels() {
                let mine: Vec<_> = taken
                    .iter()
                    .filter(|(l, _)| l == ls.label().as_str())
                    .map(|(_, t)| ls.period_of(tz, *t))
                    .collect();
                prop_assert!(mine.iter().any(|m| *m >= ls.period_of(tz, now)));
                let mut sorted = mine.clone();
                sorted.sort();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), mine.len());
            }
        }
    }

    /// `period_start` and `next_start` bracket `t`, and the period changes exactly at
    /// `next_start` (in zones whose offsets change by whole hours).
    #[test]
    fn period_bounds(ls in label_schedule(), tz in zone(), t in instant()) {
        let start = ls.period_start(tz, t);
        let next = ls.next_start(tz, t);
        prop_assert!(start <= t && t < next, "{start} <= {t} < {next}");
        prop_assert_eq!(ls.period_of(tz, start), ls.period_of(tz, t));
        prop_assert!(ls.period_of(tz, next) > ls.period_of(tz, t));
        prop_assert_eq!(ls.period_of(tz, next - TimeDelta::seconds(1)), ls.period_of(tz, t));
        prop_assert_eq!(oracle_key(&ls, tz, next - TimeDelta::seconds(1)), oracle_key(&ls, tz, t));
        prop_assert!(oracle_key(&ls, tz, next) > oracle_key(&ls, tz, t));
    }

    /// `next_due` is `now` exactly when a label is due, and otherwise the first
    /// instant at which it becomes due.
    #[test]
    fn next_due_is_when_due_turns_true(
        schedule in schedule(),
        tz in zone(),
        now in instant(),
        existing in prop::collection::vec((0usize..4, instant()), 0..8),
    ) {
        let existing: Vec<(String, DateTime<Utc>)> =
            existing.into_iter().map(|(i, t)| (format!("l{i}"), t)).collect();
        let view = || existing.iter().map(|(l, t)| (l.as_str(), *t));
        let due_now: Vec<String> = due(&schedule, tz, view(), now).iter().map(|l| l.to_string()).collect();
        for (label, when) in next_due(&schedule, tz, view(), now) {
            let label = label.to_string();
            if due_now.contains(&label) {
                prop_assert_eq!(when, now);
            } else {
                prop_assert!(when > now);
                let at = |t| due(&schedule, tz, view(), t).iter().any(|l| l.as_str() == label);
                prop_assert!(at(when), "{label} not due at {when}");
                prop_assert!(!at(when - TimeDelta::seconds(1)), "{label} due before {when}");
            }
        }
    }
}

#[test]
fn berlin_spring_day_has_23_hourly_snapshots() {
    let schedule = Schedule::new(vec![
        LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly),
        LabelSchedule::new("daily".parse().unwrap(), Period::Daily),
    ])
    .unwrap();
    let tz = chrono_tz::Europe::Berlin;
    let mut taken: Vec<(String, DateTime<Utc>)> = Vec::new();
    // 2026-03-29 00:00 CET is 2026-03-28 23:00 UTC; the day ends at 22:00 UTC.
    let mut now = utc(2026, 3, 28, 23, 0, 0);
    while now < utc(2026, 3, 29, 22, 0, 0) {
        for label in due(
            &schedule,
            tz,
            taken.iter().map(|(l, t)| (l.as_str(), *t)),
            now,
        ) {
            taken.push((label.to_string(), now));
        }
        now += TimeDelta::minutes(5);
    }
    assert_eq!(taken.iter().filter(|(l, _)| l == "hourly").count(), 23);
    assert_eq!(taken.iter().filter(|(l, _)| l == "daily").count(), 1);
}

#[test]
fn new_york_fall_back_takes_both_one_oclock_hours() {
    let schedule = Schedule::new(vec![LabelSchedule::new(
        "hourly".parse().unwrap(),
        Period::Hourly,
    )])
    .unwrap();
    let tz = chrono_tz::America::New_York;
    // 01:00 EDT (05:00 UTC) and 01:00 EST (06:00 UTC) on 2026-11-01.
    let first = utc(2026, 11, 1, 5, 10, 0);
    let second = utc(2026, 11, 1, 6, 10, 0);
    assert_eq!(due(&schedule, tz, [("hourly", first)], second).len(), 1);
    // A rerun within the second one takes nothing.
    let existing = [("hourly", first), ("hourly", second)];
    assert!(due(&schedule, tz, existing, second + TimeDelta::minutes(30)).is_empty());
}

#[test]
fn late_run_takes_one_snapshot_not_one_per_missed_period() {
    let schedule = Schedule::new(vec![LabelSchedule::new(
        "hourly".parse().unwrap(),
        Period::Hourly,
    )])
    .unwrap();
    let last = utc(2026, 11, 23, 3, 0, 0);
    let now = utc(2026, 11, 23, 15, 30, 0);
    let labels = due(&schedule, chrono_tz::UTC, [("hourly", last)], now);
    assert_eq!(labels.len(), 1);
}
