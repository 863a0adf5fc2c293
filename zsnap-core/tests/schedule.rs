//! Schedules against a naive oracle, and simulated runs under monotone and
//! non-monotone clocks, across DST changes.

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;
use proptest::prelude::*;
use zsnap_core::duration::Span;
use zsnap_core::schedule::{due, next_due, At, LabelSchedule, Period, Schedule};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The first instant whose wall clock in `tz` reads `local`, or the first second after
/// a gap that swallowed it: the obvious way, one second at a time through the gap.
fn naive_first_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut l = local;
    loop {
        if let Some(t) = tz.from_local_datetime(&l).earliest() {
            return t.with_timezone(&Utc);
        }
        l += TimeDelta::seconds(1);
    }
}

/// The day `day` of a month, or its last day when it has fewer.
fn clamped(y: i32, m: u32, day: u32) -> NaiveDate {
    (1..=day)
        .rev()
        .find_map(|d| NaiveDate::from_ymd_opt(y, m, d))
        .unwrap()
}

/// The period of `t` computed the obvious way with chrono's calendar accessors, as a
/// tuple that orders like time: an independent re-implementation of the module docs.
fn oracle_key(ls: &LabelSchedule, tz: Tz, t: DateTime<Utc>) -> (i64, i64, i64, i64) {
    let off = ls.offset().seconds() as i64;
    let at = ls.at();
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
            let off = off + i64::from(at.minute()) * 60;
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
        every => {
            // Every candidate period near `t`, with its local start; the last whose
            // start was reached by `t` is the one.
            let d = t.with_timezone(&tz).date_naive();
            let time =
                TimeDelta::seconds(i64::from(at.hour()) * 3600 + i64::from(at.minute()) * 60 + off);
            let mut candidates: Vec<((i64, i64, i64, i64), NaiveDate)> = Vec::new();
            match every {
                Period::Daily => {
                    for k in -3..=1 {
                        let day = d + TimeDelta::days(k);
                        candidates.push(((i64::from(day.num_days_from_ce()), 0, 0, 0), day));
                    }
                }
                Period::Weekly => {
                    for k in -4..=1 {
                        let w = (d + TimeDelta::weeks(k)).iso_week();
                        let day =
                            NaiveDate::from_isoywd_opt(w.year(), w.week(), at.weekday()).unwrap();
                        candidates.push(((i64::from(w.year()), i64::from(w.week()), 0, 0), day));
                    }
                }
                Period::Monthly => {
                    for k in -3..=1i32 {
                        let n = d.year() * 12 + d.month0() as i32 + k;
                        let (y, m) = (n.div_euclid(12), n.rem_euclid(12) as u32 + 1);
                        candidates
                            .push(((i64::from(y), i64::from(m), 0, 0), clamped(y, m, at.day())));
                    }
                }
                Period::Yearly => {
                    for y in d.year() - 2..=d.year() + 1 {
                        candidates
                            .push(((i64::from(y), 0, 0, 0), clamped(y, at.month(), at.day())));
                    }
                }
                other => panic!("unexpected period {other}"),
            }
            candidates
                .into_iter()
                .filter(|(_, day)| {
                    naive_first_instant(tz, day.and_hms_opt(0, 0, 0).unwrap() + time) <= t
                })
                .map(|(k, _)| k)
                .max()
                .expect("one of the candidates started before t")
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
    (period, any::<bool>(), 0u64..1_000_000, any::<bool>(), at()).prop_map(
        |(every, with_offset, raw, with_at, at)| {
            let mut ls = LabelSchedule::new("x".parse().unwrap(), every);
            if with_at {
                ls = ls.with_at(for_period(at, every)).unwrap();
            }
            let min = match every {
                Period::Every(s) => s.seconds(),
                Period::Hourly => 3600 - u64::from(ls.at().minute()) * 60,
                Period::Daily => 86_400,
                Period::Weekly => 7 * 86_400,
                Period::Monthly => 28 * 86_400,
                _ => 365 * 86_400,
            };
            let offset = if with_offset { raw % min } else { 0 };
            ls.with_offset(Span::from_secs(offset)).unwrap()
        },
    )
}

/// Any time of period, the DST hours more often.
fn at() -> impl Strategy<Value = At> {
    (
        1u32..=12,
        prop_oneof![1u32..=31, 28u32..=31],
        0u8..7,
        prop_oneof![0u32..24, 1u32..4],
        prop_oneof![0u32..60, Just(0u32), Just(30u32)],
    )
        .prop_map(|(month, day, wd, hour, minute)| {
            At::START
                .with_time(hour, minute)
                .unwrap()
                .with_day(day)
                .unwrap()
                .with_month(month)
                .unwrap()
                .with_weekday(Weekday::try_from(wd).unwrap())
        })
}

/// The fields of `at` that `every` uses, the rest left at their start.
fn for_period(at: At, every: Period) -> At {
    let s = At::START;
    match every {
        Period::Every(_) => s,
        Period::Hourly => s.with_minute(at.minute()).unwrap(),
        Period::Daily => s.with_time(at.hour(), at.minute()).unwrap(),
        Period::Weekly => s
            .with_time(at.hour(), at.minute())
            .unwrap()
            .with_weekday(at.weekday()),
        Period::Monthly => s
            .with_time(at.hour(), at.minute())
            .unwrap()
            .with_day(at.day())
            .unwrap(),
        _ => s
            .with_time(at.hour(), at.minute())
            .unwrap()
            .with_day(at.day())
            .unwrap()
            .with_month(at.month())
            .unwrap(),
    }
}

fn schedule() -> impl Strategy<Value = Schedule> {
    prop::collection::vec(label_schedule(), 1..4).prop_map(|v| {
        let named = v
            .into_iter()
            .enumerate()
            .map(|(i, ls)| {
                LabelSchedule::new(format!("l{i}").parse().unwrap(), ls.every())
                    .with_at(ls.at())
                    .unwrap()
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

/// Days on which DST begins or ends, and a quiet one, with their zone.
const DST_DAYS: [(Tz, i32, u32, u32); 5] = [
    (chrono_tz::Europe::Berlin, 2026, 3, 29),
    (chrono_tz::Europe::Berlin, 2026, 10, 25),
    (chrono_tz::America::New_York, 2026, 3, 8),
    (chrono_tz::America::New_York, 2026, 11, 1),
    (chrono_tz::Asia::Kolkata, 2026, 6, 15),
];

proptest! {
    /// Runs once a minute for two days around a DST change, with a label whose start
    /// falls on that day (often inside the skipped or repeated hour): a snapshot is
    /// taken exactly at each period start a minute-by-minute scan of the wall clock
    /// finds (the first minute it reads the start time or later), and nowhere else;
    /// `next_due` names the next of them at every minute.
    #[test]
    fn one_due_instant_per_period_minute_by_minute(
        day in 0..DST_DAYS.len(),
        every in prop::sample::select(vec![
            Period::Hourly, Period::Daily, Period::Weekly, Period::Monthly, Period::Yearly,
        ]),
        hour in prop_oneof![0u32..24, 0u32..4],
        minute in prop_oneof![0u32..60, Just(0u32), Just(30u32), Just(59u32)],
    ) {
        let (tz, y, m, d) = DST_DAYS[day];
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let timed = At::START.with_time(hour, minute).unwrap();
        let at = match every {
            Period::Hourly => At::START.with_minute(minute).unwrap(),
            Period::Daily => timed,
            Period::Weekly => timed.with_weekday(date.weekday()),
            Period::Monthly => timed.with_day(d).unwrap(),
            _ => timed.with_day(d).unwrap().with_month(m).unwrap(),
        };
        let ls = LabelSchedule::new("x".parse().unwrap(), every).with_at(at).unwrap();
        let schedule = Schedule::new(vec![ls.clone()]).unwrap();
        let noon_before = (date - TimeDelta::days(1)).and_hms_opt(12, 0, 0).unwrap();
        let start = naive_first_instant(tz, noon_before);
        let minutes: Vec<DateTime<Utc>> =
            (0..=48 * 60).map(|i| start + TimeDelta::minutes(i)).collect();
        let wall = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();

        // The oracle's period starts in the window.
        let mut starts: Vec<DateTime<Utc>> = match every {
            Period::Hourly => minutes
                .iter()
                .copied()
                .filter(|t| wall(*t).minute() == minute)
                .collect(),
            _ => {
                let days: Vec<NaiveDate> = if every == Period::Daily {
                    (-1..=1).map(|k| date + TimeDelta::days(k)).collect()
                } else {
                    vec![date]
                };
                days.into_iter()
                    .map(|day| day.and_hms_opt(hour, minute, 0).unwrap())
                    .filter(|a| *a > noon_before)
                    .filter_map(|a| minutes.iter().copied().find(|t| wall(*t) >= a))
                    .collect()
            }
        };
        // The first run finds no snapshot at all.
        if starts.first() != Some(&start) {
            starts.insert(0, start);
        }

        let mut taken: Option<DateTime<Utc>> = None;
        for now in &minutes {
            let now = *now;
            let existing: Vec<(&str, DateTime<Utc>)> = taken.iter().map(|t| ("x", *t)).collect();
            let expected = starts.contains(&now);
            let is_due = !due(&schedule, tz, existing.iter().copied(), now).is_empty();
            prop_assert_eq!(is_due, expected, "at {} (local {})", now, wall(now));
            let next = next_due(&schedule, tz, existing.iter().copied(), now)[0].1;
            if let Some(want) = starts.iter().find(|s| **s >= now) {
                prop_assert_eq!(next, *want, "next_due at {}", now);
            } else {
                prop_assert!(next > now);
            }
            if is_due {
                if let Some(prev) = taken {
                    prop_assert!(ls.period_of(tz, now) > ls.period_of(tz, prev));
                }
                taken = Some(now);
            }
        }
    }
}

#[test]
fn at_times_on_dst_days() {
    let berlin = chrono_tz::Europe::Berlin;
    let daily = |h, m| {
        LabelSchedule::new("daily".parse().unwrap(), Period::Daily)
            .with_at(At::START.with_time(h, m).unwrap())
            .unwrap()
    };
    // 02:30 does not exist on 2026-03-29: due from 03:00 CEST (01:00 UTC).
    let s = Schedule::new(vec![daily(2, 30)]).unwrap();
    let yesterday = [("daily", utc(2026, 3, 28, 1, 30, 0))];
    assert!(due(&s, berlin, yesterday, utc(2026, 3, 29, 0, 59, 0)).is_empty());
    assert_eq!(
        due(&s, berlin, yesterday, utc(2026, 3, 29, 1, 0, 0)).len(),
        1
    );
    assert_eq!(
        next_due(&s, berlin, yesterday, utc(2026, 3, 29, 0, 0, 0))[0].1,
        utc(2026, 3, 29, 1, 0, 0)
    );
    // 02:30 happens twice on 2026-10-25: due at the first (00:30 UTC), and a run at
    // the second takes nothing more.
    let yesterday = [("daily", utc(2026, 10, 24, 0, 30, 0))];
    assert_eq!(
        next_due(&s, berlin, yesterday, utc(2026, 10, 24, 12, 0, 0))[0].1,
        utc(2026, 10, 25, 0, 30, 0)
    );
    let first = [("daily", utc(2026, 10, 25, 0, 30, 0))];
    assert!(due(&s, berlin, first, utc(2026, 10, 25, 1, 30, 0)).is_empty());
    // A run that missed the first 02:30 and comes between the two takes it then.
    assert_eq!(
        due(&s, berlin, yesterday, utc(2026, 10, 25, 1, 10, 0)).len(),
        1
    );

    // Monthly on day 31: the last day of shorter months.
    let monthly = LabelSchedule::new("monthly".parse().unwrap(), Period::Monthly)
        .with_at(At::START.with_day(31).unwrap())
        .unwrap();
    let utc_tz = chrono_tz::UTC;
    let t = utc(2026, 4, 15, 0, 0, 0);
    assert_eq!(monthly.period_start(utc_tz, t), utc(2026, 3, 31, 0, 0, 0));
    assert_eq!(monthly.next_start(utc_tz, t), utc(2026, 4, 30, 0, 0, 0));
    assert_eq!(
        monthly.next_start(utc_tz, utc(2026, 2, 1, 0, 0, 0)),
        utc(2026, 2, 28, 0, 0, 0)
    );
    assert_eq!(
        monthly.next_start(utc_tz, utc(2028, 2, 1, 0, 0, 0)),
        utc(2028, 2, 29, 0, 0, 0)
    );
    // Yearly on February 29: February 28 in common years.
    let yearly = LabelSchedule::new("yearly".parse().unwrap(), Period::Yearly)
        .with_at(At::START.with_month(2).unwrap().with_day(29).unwrap())
        .unwrap();
    assert_eq!(
        yearly.next_start(utc_tz, utc(2026, 1, 1, 0, 0, 0)),
        utc(2026, 2, 28, 0, 0, 0)
    );
    assert_eq!(
        yearly.next_start(utc_tz, utc(2027, 3, 1, 0, 0, 0)),
        utc(2028, 2, 29, 0, 0, 0)
    );
    // Weekly on Sunday at 23:30, New York.
    let weekly = LabelSchedule::new("weekly".parse().unwrap(), Period::Weekly)
        .with_at(
            At::START
                .with_time(23, 30)
                .unwrap()
                .with_weekday(Weekday::Sun),
        )
        .unwrap();
    let ny = chrono_tz::America::New_York;
    // Wednesday 2026-11-25: the period began Sunday 2026-11-22 23:30 EST.
    assert_eq!(
        weekly.period_start(ny, utc(2026, 11, 25, 12, 0, 0)),
        utc(2026, 11, 23, 4, 30, 0)
    );
    // Hourly at :15.
    let hourly = LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly)
        .with_at(At::START.with_minute(15).unwrap())
        .unwrap();
    assert_eq!(
        hourly.next_start(berlin, utc(2026, 11, 23, 12, 20, 0)),
        utc(2026, 11, 23, 13, 15, 0)
    );
}

#[test]
fn at_errors() {
    let e = |r: Result<At, zsnap_core::schedule::ScheduleError>| r.unwrap_err().to_string();
    insta::assert_snapshot!(e(At::START.with_time(24, 0)), @"hour 24 is out of range; expected 0 to 23");
    insta::assert_snapshot!(e(At::START.with_minute(60)), @"minute 60 is out of range; expected 0 to 59");
    insta::assert_snapshot!(e(At::START.with_day(0)), @"day 0 is out of range; expected 1 to 31");
    insta::assert_snapshot!(e(At::START.with_day(32)), @"day 32 is out of range; expected 1 to 31");
    insta::assert_snapshot!(e(At::START.with_month(13)), @"month 13 is out of range; expected 1 to 12");
    let daily = LabelSchedule::new("daily".parse().unwrap(), Period::Daily);
    let sunday = At::START.with_weekday(Weekday::Sun);
    insta::assert_snapshot!(daily.clone().with_at(sunday).unwrap_err().to_string(), @"label daily: a daily label cannot be given a weekday");
    let hourly = LabelSchedule::new("h".parse().unwrap(), Period::Hourly)
        .with_offset("50m".parse().unwrap())
        .unwrap();
    insta::assert_snapshot!(hourly.with_at(At::START.with_minute(10).unwrap()).unwrap_err().to_string(), @"label h: offset 1h must be shorter than the period hourly");
    insta::assert_snapshot!(zsnap_core::schedule::parse_weekday("sundy").unwrap_err().to_string(), @r#"invalid weekday "sundy": expected monday, tuesday, wednesday, thursday, friday, saturday or sunday"#);
    assert_eq!(
        zsnap_core::schedule::parse_weekday("Sun").unwrap(),
        Weekday::Sun
    );
    // serde: only what differs from the start is written.
    let w = LabelSchedule::new("weekly".parse().unwrap(), Period::Weekly)
        .with_at(
            At::START
                .with_time(23, 30)
                .unwrap()
                .with_weekday(Weekday::Sun),
        )
        .unwrap();
    let j = serde_json::to_string(&w).unwrap();
    assert_eq!(
        j,
        r#"{"label":"weekly","every":"weekly","at":{"weekday":"sunday","hour":23,"minute":30}}"#
    );
    assert_eq!(serde_json::from_str::<LabelSchedule>(&j).unwrap(), w);
    assert!(serde_json::from_str::<LabelSchedule>(
        r#"{"label":"d","every":"daily","at":{"weekday":"sunday"}}"#
    )
    .is_err());
}
