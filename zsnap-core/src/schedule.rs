//! Schedules: which labels are due for a snapshot at an instant.
//!
//! A [`Schedule`] gives every label a [`Period`]. Time is cut into consecutive periods;
//! a label is **due** at `now` when no snapshot of that label lies in the period of
//! `now` *or in a later one*. Taking the due labels at `now` therefore gives:
//!
//! - **at most one snapshot per period and label**, however often zsnap runs, however
//!   late a run is, and even when the clock stepped back — a snapshot taken while the
//!   clock was ahead counts for its own (later) period, and no snapshot is taken for a
//!   period older than the newest one that has one (the failure sanoid issue #155
//!   describes: every run inside a DST-shifted hour took another daily snapshot);
//! - **after every run, a snapshot in the current period or a later one** for every
//!   label.
//!
//! The price of the second rule: after the clock was set far ahead and then corrected,
//! a label takes no snapshot until the clock reaches the period of the one taken in
//! "the future". sanoid behaves the same way (its pull request #651 proposed warning
//! about such snapshots); `zsnap check` should flag them, see [`next_due`].
//!
//! # Periods
//! - [`Period::Every`]: fixed spans of absolute time aligned to the Unix epoch (`15m`
//!   periods start at :00, :15, :30, :45 UTC), whatever the zone.
//! - [`Period::Hourly`]: one hour of absolute time, aligned to the zone's whole hours.
//!   When DST ends, the repeated hour (02:00–03:00 twice in Berlin) is two periods,
//!   since two real hours pass: two hourly snapshots are right. When DST begins, the
//!   skipped hour is simply absent.
//! - [`Period::Daily`], [`Period::Weekly`] (ISO weeks, Monday first),
//!   [`Period::Monthly`], [`Period::Yearly`]: the local calendar date in the policy's
//!   zone. A DST day has 23 or 25 hours but is one period.
//!
//! A label's [`At`] moves its period starts to a wall-clock time in the zone (sanoid's
//! `daily_hour`, `weekly_wday`, `monthly_mday`…): daily at 23:59 runs from 23:59 to
//! 23:59, monthly on day 31 from the last day of each month. An optional offset moves
//! them later still. A calendar period starts at the **first instant whose local
//! wall-clock time is its start time or later**: when that time does not exist
//! (spring forward), when the clock jumps past it; when it happens twice (fall back),
//! at the first occurrence — the second lies inside the period and starts nothing.
//! Calendar periods are therefore consecutive intervals of absolute time, one per
//! start, even in zones whose calendar runs backwards for a moment.
//!
//! # Example: the autumn DST change in Europe/Berlin
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use zsnap_core::schedule::{due, LabelSchedule, Period, Schedule};
//! let tz = chrono_tz::Europe::Berlin;
//! let schedule = Schedule::new(vec![
//!     LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly),
//!     LabelSchedule::new("daily".parse().unwrap(), Period::Daily),
//! ])
//! .unwrap();
//! // Run every 15 minutes through Sunday 2026-10-25, local midnight to midnight
//! // (22:00 UTC on Saturday to 23:00 UTC on Sunday: 25 hours).
//! let mut taken: Vec<(String, chrono::DateTime<Utc>)> = Vec::new();
//! let mut now = Utc.with_ymd_and_hms(2026, 10, 24, 22, 0, 0).unwrap();
//! while now < Utc.with_ymd_and_hms(2026, 10, 25, 23, 0, 0).unwrap() {
//!     for label in due(&schedule, tz, taken.iter().map(|(l, t)| (l.as_str(), *t)), now) {
//!         taken.push((label.to_string(), now));
//!     }
//!     now += TimeDelta::minutes(15);
//! }
//! assert_eq!(taken.iter().filter(|(l, _)| l == "hourly").count(), 25);
//! assert_eq!(taken.iter().filter(|(l, _)| l == "daily").count(), 1);
//! ```
//!
//! # Example: the clock stepped back
//! ```
//! use chrono::{TimeZone, Utc};
//! use zsnap_core::schedule::{due, LabelSchedule, Period, Schedule};
//! let schedule =
//!     Schedule::new(vec![LabelSchedule::new("daily".parse().unwrap(), Period::Daily)]).unwrap();
//! let tz = chrono_tz::UTC;
//! // A snapshot was taken while the clock read 2026-11-25 …
//! let ahead = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
//! // … then the clock was corrected to 2026-11-23: nothing is due until 2026-11-26.
//! let existing = [("daily", ahead)];
//! let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
//! assert!(due(&schedule, tz, existing, now).is_empty());
//! let later = Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 1).unwrap();
//! assert_eq!(due(&schedule, tz, existing, later).len(), 1);
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{Span, SpanError};
use crate::naming::Label;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// How often a label is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Period {
    /// Fixed spans of absolute time, aligned to the Unix epoch (`"15m"`).
    Every(Span),
    /// Each hour of absolute time, aligned to the zone's whole hours (`"hourly"`).
    Hourly,
    /// Each local calendar day (`"daily"`).
    Daily,
    /// Each ISO week, Monday to Sunday, in local time (`"weekly"`).
    Weekly,
    /// Each local calendar month (`"monthly"`).
    Monthly,
    /// Each local calendar year (`"yearly"`).
    Yearly,
}

impl Period {
    /// The longest a period can be, in seconds (DST days count 25 hours), used to
    /// bound offsets and to skip snapshots that are surely in older periods.
    fn max_len(self) -> i64 {
        match self {
            Period::Every(s) => i64::try_from(s.seconds()).unwrap_or(i64::MAX / 4),
            Period::Hourly => HOUR,
            Period::Daily => DAY + HOUR,
            Period::Weekly => 7 * DAY + HOUR,
            Period::Monthly => 31 * DAY + HOUR,
            Period::Yearly => 366 * DAY + HOUR,
        }
    }

    /// The shortest a period can be, in seconds: offsets must be shorter.
    fn min_len(self) -> i64 {
        match self {
            Period::Every(s) => i64::try_from(s.seconds()).unwrap_or(i64::MAX / 4),
            Period::Hourly => HOUR,
            Period::Daily => DAY,
            Period::Weekly => 7 * DAY,
            Period::Monthly => 28 * DAY,
            Period::Yearly => 365 * DAY,
        }
    }
}

/// Why a schedule is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Not a period keyword nor a duration.
    #[error("invalid period {input:?}: expected hourly, daily, weekly, monthly, yearly or a duration such as \"15m\"")]
    InvalidPeriod {
        /// The input, verbatim.
        input: String,
        /// Why it is not a duration either, when it looked like one.
        #[source]
        source: Option<SpanError>,
    },
    /// A period of zero seconds.
    #[error("invalid period {input:?}: a period must be at least one second long")]
    ZeroPeriod {
        /// The input, verbatim.
        input: String,
    },
    /// The offset is not shorter than the shortest period.
    #[error("label {label}: offset {offset} must be shorter than the period {period}")]
    OffsetTooLong {
        /// The label.
        label: Label,
        /// The offset.
        offset: Span,
        /// The period.
        period: Period,
    },
    /// A time-of-period field out of its range (minute 60, hour 24, day 0 or 32,
    /// month 13).
    #[error("{field} {value} is out of range; expected {range}")]
    AtOutOfRange {
        /// `minute`, `hour`, `day` or `month`.
        field: &'static str,
        /// The value given.
        value: u32,
        /// The allowed range, for the message (`0 to 59`).
        range: &'static str,
    },
    /// A time-of-period field the period has no use for (a weekday on a daily label).
    #[error("label {label}: a {period} label cannot be given a {field}")]
    AtNotApplicable {
        /// The label.
        label: Label,
        /// The period.
        period: Period,
        /// `minute`, `hour`, `weekday`, `day` or `month`.
        field: &'static str,
    },
    /// An unknown weekday name.
    #[error("invalid weekday {input:?}: expected monday, tuesday, wednesday, thursday, friday, saturday or sunday")]
    InvalidWeekday {
        /// The input, verbatim.
        input: String,
    },
    /// A label appears twice.
    #[error("label {label} is scheduled twice")]
    DuplicateLabel {
        /// The label.
        label: Label,
    },
}

impl FromStr for Period {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        Ok(match s {
            "hourly" => Period::Hourly,
            "daily" => Period::Daily,
            "weekly" => Period::Weekly,
            "monthly" => Period::Monthly,
            "yearly" => Period::Yearly,
            _ => {
                let looks_like_span = s.starts_with(|c: char| c.is_ascii_digit());
                let span = s
                    .parse::<Span>()
                    .map_err(|e| ScheduleError::InvalidPeriod {
                        input: s.to_owned(),
                        source: looks_like_span.then_some(e),
                    })?;
                if span.seconds() == 0 {
                    return Err(ScheduleError::ZeroPeriod {
                        input: s.to_owned(),
                    });
                }
                Period::Every(span)
            }
        })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Every(s) => write!(f, "{s}"),
            Period::Hourly => f.write_str("hourly"),
            Period::Daily => f.write_str("daily"),
            Period::Weekly => f.write_str("weekly"),
            Period::Monthly => f.write_str("monthly"),
            Period::Yearly => f.write_str("yearly"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The names of the weekdays, Monday first, as configs write them.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A weekday from its name: `monday`…`sunday` or `mon`…`sun`, in any case.
///
/// # Errors
/// [`ScheduleError::InvalidWeekday`] for anything else.
pub fn parse_weekday(s: &str) -> Result<Weekday, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|w| *w == lower || (lower.len() == 3 && w.starts_with(lower.as_str())))
        .and_then(|i| u8::try_from(i).ok())
        .and_then(|i| Weekday::try_from(i).ok())
        .ok_or_else(|| ScheduleError::InvalidWeekday {
            input: s.to_owned(),
        })
}

/// The config name of a weekday (`sunday`).
pub fn weekday_name(w: Weekday) -> &'static str {
    WEEKDAYS[w.num_days_from_monday() as usize]
}

/// Where in its period a label is due: the local wall-clock time at which each of its
/// periods begins (sanoid's `hourly_min`, `daily_hour`/`daily_min`, `weekly_wday`,
/// `monthly_mday`, `yearly_mon`/`yearly_mday`…).
///
/// The default, [`At::START`], is the natural boundary: minute 0 of the hour, 00:00,
/// Monday, day 1, January. Which fields a period uses:
///
/// | period | fields |
/// |---|---|
/// | hourly | minute |
/// | daily | hour, minute |
/// | weekly | weekday, hour, minute |
/// | monthly | day, hour, minute |
/// | yearly | month, day, hour, minute |
///
/// A day the month does not have (31 in April, 30 in February) means the month's last
/// day. (sanoid hands the day to Perl's `timelocal`, which refuses it, so sanoid stops
/// with an error in those months.)
///
/// # Example
/// ```
/// use chrono::Weekday;
/// use zsnap_core::schedule::At;
/// let at = At::START.with_time(23, 30).unwrap().with_weekday(Weekday::Sun);
/// assert_eq!((at.weekday(), at.hour(), at.minute()), (Weekday::Sun, 23, 30));
/// assert_eq!(
///     At::START.with_time(24, 0).unwrap_err().to_string(),
///     "hour 24 is out of range; expected 0 to 23"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct At {
    month: u32,
    day: u32,
    weekday: Weekday,
    hour: u32,
    minute: u32,
}

impl Default for At {
    fn default() -> Self {
        At::START
    }
}

fn in_range(
    field: &'static str,
    value: u32,
    lo: u32,
    hi: u32,
    range: &'static str,
) -> Result<u32, ScheduleError> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ScheduleError::AtOutOfRange {
            field,
            value,
            range,
        })
    }
}

impl At {
    /// The natural period boundary: minute 0, 00:00, Monday, day 1, January.
    pub const START: At = At {
        month: 1,
        day: 1,
        weekday: Weekday::Mon,
        hour: 0,
        minute: 0,
    };

    /// The same with this wall-clock time of day.
    ///
    /// # Errors
    /// [`ScheduleError::AtOutOfRange`] unless `hour` is 0–23 and `minute` 0–59.
    pub fn with_time(self, hour: u32, minute: u32) -> Result<At, ScheduleError> {
        Ok(At {
            hour: in_range("hour", hour, 0, 23, "0 to 23")?,
            minute: in_range("minute", minute, 0, 59, "0 to 59")?,
            ..self
        })
    }

    /// The same with this minute of the hour (for hourly labels).
    ///
    /// # Errors
    /// [`ScheduleError::AtOutOfRange`] unless `minute` is 0–59.
    pub fn with_minute(self, minute: u32) -> Result<At, ScheduleError> {
        self.with_time(self.hour, minute)
    }

    /// The same on this weekday (for weekly labels).
    #[must_use]
    pub fn with_weekday(self, weekday: Weekday) -> At {
        At { weekday, ..self }
    }

    /// The same on this day of the month, 1–31 (for monthly and yearly labels).
    ///
    /// # Errors
    /// [`ScheduleError::AtOutOfRange`] unless `day` is 1–31.
    pub fn with_day(self, day: u32) -> Result<At, ScheduleError> {
        Ok(At {
            day: in_range("day", day, 1, 31, "1 to 31")?,
            ..self
        })
    }

    /// The same in this month, 1–12 (for yearly labels).
    ///
    /// # Errors
    /// [`ScheduleError::AtOutOfRange`] unless `month` is 1–12.
    pub fn with_month(self, month: u32) -> Result<At, ScheduleError> {
        Ok(At {
            month: in_range("month", month, 1, 12, "1 to 12")?,
            ..self
        })
    }

    /// The month, 1–12.
    pub fn month(&self) -> u32 {
        self.month
    }

    /// The day of the month, 1–31.
    pub fn day(&self) -> u32 {
        self.day
    }

    /// The weekday.
    pub fn weekday(&self) -> Weekday {
        self.weekday
    }

    /// The hour, 0–23.
    pub fn hour(&self) -> u32 {
        self.hour
    }

    /// The minute, 0–59.
    pub fn minute(&self) -> u32 {
        self.minute
    }

    /// Whether this is [`At::START`].
    pub fn is_start(&self) -> bool {
        *self == At::START
    }

    /// The first field set away from [`At::START`] that `period` does not use.
    fn unused_field(&self, period: Period) -> Option<&'static str> {
        let (minute, hour, weekday, day, month) = match period {
            Period::Every(_) => (false, false, false, false, false),
            Period::Hourly => (true, false, false, false, false),
            Period::Daily => (true, true, false, false, false),
            Period::Weekly => (true, true, true, false, false),
            Period::Monthly => (true, true, false, true, false),
            Period::Yearly => (true, true, false, true, true),
        };
        let s = At::START;
        [
            (!minute && self.minute != s.minute, "minute"),
            (!hour && self.hour != s.hour, "hour"),
            (!weekday && self.weekday != s.weekday, "weekday"),
            (!day && self.day != s.day, "day"),
            (!month && self.month != s.month, "month"),
        ]
        .into_iter()
        .find(|(bad, _)| *bad)
        .map(|(_, f)| f)
    }

    /// Seconds after midnight.
    fn time_secs(&self) -> i64 {
        i64::from(self.hour) * HOUR + i64::from(self.minute) * 60
    }

    /// The day this month's anchor falls on: the configured day, or the month's last.
    fn day_in(&self, year: i32, month: u32) -> Option<NaiveDate> {
        let last = last_day(year, month)?;
        NaiveDate::from_ymd_opt(year, month, self.day.min(last))
    }
}

fn last_day(year: i32, month: u32) -> Option<u32> {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some(first_next.pred_opt()?.day())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AtRepr {
    #[serde(default = "one", skip_serializing_if = "is_one")]
    month: u32,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    day: u32,
    #[serde(default = "monday", skip_serializing_if = "is_monday")]
    weekday: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    hour: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    minute: u32,
}

fn one() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}
fn monday() -> String {
    "monday".to_owned()
}
fn is_monday(s: &String) -> bool {
    s == "monday"
}
fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl Serialize for At {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AtRepr {
            month: self.month,
            day: self.day,
            weekday: weekday_name(self.weekday).to_owned(),
            hour: self.hour,
            minute: self.minute,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = AtRepr::deserialize(d)?;
        let build = || -> Result<At, ScheduleError> {
            At::START
                .with_time(r.hour, r.minute)?
                .with_day(r.day)?
                .with_month(r.month)
                .and_then(|a| Ok(a.with_weekday(parse_weekday(&r.weekday)?)))
        };
        build().map_err(serde::de::Error::custom)
    }
}

/// Identifies one period of one label schedule. Later periods have larger ids; ids of
/// different schedules are not comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodId(i64);

/// One label and how often it is taken.
///
/// In JSON: `{ "label": "hourly", "every": "hourly" }`, with a time of period
/// `{ "label": "weekly", "every": "weekly", "at": { "weekday": "sunday", "hour": 23 } }`,
/// or with an offset `{ "label": "nightly", "every": "daily", "offset": "2h" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "LabelScheduleRepr", into = "LabelScheduleRepr")]
pub struct LabelSchedule {
    label: Label,
    every: Period,
    at: At,
    offset: Span,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelScheduleRepr {
    label: Label,
    every: Period,
    #[serde(default, skip_serializing_if = "At::is_start")]
    at: At,
    #[serde(default = "zero", skip_serializing_if = "is_zero")]
    offset: Span,
}

fn zero() -> Span {
    Span::from_secs(0)
}

fn is_zero(s: &Span) -> bool {
    s.seconds() == 0
}

impl TryFrom<LabelScheduleRepr> for LabelSchedule {
    type Error = ScheduleError;
    fn try_from(r: LabelScheduleRepr) -> Result<Self, ScheduleError> {
        LabelSchedule::new(r.label, r.every)
            .with_at(r.at)?
            .with_offset(r.offset)
    }
}

impl From<LabelSchedule> for LabelScheduleRepr {
    fn from(s: LabelSchedule) -> Self {
        LabelScheduleRepr {
            label: s.label,
            every: s.every,
            at: s.at,
            offset: s.offset,
        }
    }
}

/// The first instant whose wall-clock time in `tz` is `local` or later: the earlier
/// of two when `local` happened twice, the end of the gap when it never happened.
fn first_instant_from(tz: Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            // The offset rose across a transition T inside [local - after, local -
            // before], where `before` < `after` are the offsets either side of it.
            let zone = |u: chrono::NaiveDateTime| {
                i64::from(tz.offset_from_utc_datetime(&u).fix().local_minus_utc())
            };
            let day = TimeDelta::days(1);
            let before = zone(local.checked_sub_signed(day)?);
            let after = zone(local.checked_add_signed(day)?);
            let mut lo = local.checked_sub_signed(TimeDelta::seconds(after.max(before)))?;
            let mut hi = local.checked_sub_signed(TimeDelta::seconds(after.min(before)))?;
            if zone(hi) == zone(lo) {
                return Some(hi.and_utc());
            }
            // Whole seconds: halving a span of nanoseconds would land between them.
            let at_lo = zone(lo);
            while (hi - lo) > TimeDelta::seconds(1) {
                let mid = lo + TimeDelta::seconds((hi - lo).num_seconds() / 2);
                if zone(mid) == at_lo {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Some(hi.and_utc())
        }
    }
}

fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date")
}

impl LabelSchedule {
    /// A label taken once per `every`, periods starting at their natural boundary.
    pub fn new(label: Label, every: Period) -> Self {
        LabelSchedule {
            label,
            every,
            at: At::START,
            offset: Span::from_secs(0),
        }
    }

    /// The same schedule with periods starting at the wall-clock time `at` instead of
    /// their natural boundary: a daily label at 23:59 is due once a day from 23:59
    /// local time, a monthly one on day 31 from the last day of each month.
    ///
    /// Each period starts at the first instant whose local wall-clock time is `at` or
    /// later: on a day when DST begins and `at` does not exist (02:30 in Berlin on the
    /// last Sunday of March), when the clock jumps past it; on a day when DST ends and
    /// `at` happens twice, at the first of the two (the second starts nothing).
    /// Hourly periods stay hours of absolute time: their start is `at`'s minute of
    /// each hour, and the hour repeated when DST ends is two periods.
    ///
    /// # Errors
    /// [`ScheduleError::AtNotApplicable`] when `at` sets a field the period does not
    /// use (see [`At`]); [`ScheduleError::OffsetTooLong`] when an hourly label's minute
    /// and offset together reach an hour.
    ///
    /// # Example: 02:30 in Europe/Berlin around both DST changes
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::schedule::{At, LabelSchedule, Period};
    /// let tz = chrono_tz::Europe::Berlin;
    /// let at = At::START.with_time(2, 30).unwrap();
    /// let daily = LabelSchedule::new("daily".parse().unwrap(), Period::Daily).with_at(at).unwrap();
    /// // 2026-03-29: 02:30 never happens; the day's period starts at 03:00 CEST.
    /// let t = Utc.with_ymd_and_hms(2026, 3, 29, 12, 0, 0).unwrap();
    /// assert_eq!(daily.period_start(tz, t), Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
    /// // 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and at 01:30 UTC (CET); the
    /// // period starts at the first, and the second is inside it.
    /// let first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap();
    /// let second = Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap();
    /// assert_eq!(daily.period_start(tz, second), first);
    /// assert_eq!(daily.next_start(tz, first), Utc.with_ymd_and_hms(2026, 10, 26, 1, 30, 0).unwrap());
    /// ```
    pub fn with_at(mut self, at: At) -> Result<Self, ScheduleError> {
        if let Some(field) = at.unused_field(self.every) {
            return Err(ScheduleError::AtNotApplicable {
                label: self.label,
                period: self.every,
                field,
            });
        }
        if self.every == Period::Hourly && i64::from(at.minute) * 60 + self.offset_secs() >= HOUR {
            return Err(ScheduleError::OffsetTooLong {
                label: self.label,
                offset: Span::from_secs(u64::from(at.minute) * 60 + self.offset.seconds()),
                period: self.every,
            });
        }
        self.at = at;
        Ok(self)
    }

    /// The same schedule with periods starting `offset` after their natural boundary
    /// (daily with `2h`: from 02:00 to 02:00).
    ///
    /// # Errors
    /// [`ScheduleError::OffsetTooLong`] unless `offset` is shorter than the shortest
    /// period (an hour, a day, 7 days, 28 days, 365 days, or the span).
    pub fn with_offset(mut self, offset: Span) -> Result<Self, ScheduleError> {
        let mut secs = i64::try_from(offset.seconds()).unwrap_or(i64::MAX);
        if self.every == Period::Hourly {
            secs = secs.saturating_add(i64::from(self.at.minute) * 60);
        }
        if secs >= self.every.min_len() {
            return Err(ScheduleError::OffsetTooLong {
                label: self.label,
                offset,
                period: self.every,
            });
        }
        self.offset = offset;
        Ok(self)
    }

    /// The label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The period.
    pub fn every(&self) -> Period {
        self.every
    }

    /// The offset of period starts.
    pub fn offset(&self) -> Span {
        self.offset
    }

    /// Where in its period the label is due ([`At::START`] unless set).
    pub fn at(&self) -> At {
        self.at
    }

    fn offset_secs(&self) -> i64 {
        i64::try_from(self.offset.seconds()).unwrap_or(0)
    }

    /// The period `t` falls in.
    pub fn period_of(&self, tz: Tz, t: DateTime<Utc>) -> PeriodId {
        PeriodId(self.id(tz, t))
    }

    fn id(&self, tz: Tz, t: DateTime<Utc>) -> i64 {
        let ts = t.timestamp();
        let zone = || {
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        match self.every {
            Period::Every(_) => floor_div(ts - self.offset_secs(), self.every.min_len()),
            Period::Hourly => floor_div(ts + zone().rem_euclid(HOUR) - self.hourly_shift(), HOUR),
            _ => {
                let local = t.naive_utc().checked_add_signed(TimeDelta::seconds(zone()));
                // Out of chrono's range (±262,000 years) a coarse count will do.
                let Some(k) = local.and_then(|l| self.naive_period(l)) else {
                    return floor_div(ts, self.every.max_len());
                };
                // After DST ends the wall clock can read less than the next period's
                // start although it passed it once already: that period has begun.
                match k.checked_add(1).and_then(|n| self.start_of(tz, n)) {
                    Some(next) if next <= t => k + 1,
                    _ => k,
                }
            }
        }
    }

    /// How far hourly periods start after the zone's whole hours, in seconds.
    fn hourly_shift(&self) -> i64 {
        self.offset_secs() + i64::from(self.at.minute) * 60
    }

    /// The calendar period (daily and longer) whose local start is the last one at or
    /// before the wall-clock time `local`.
    fn naive_period(&self, local: NaiveDateTime) -> Option<i64> {
        let shift = self.at.time_secs() + self.offset_secs();
        let d = local.checked_sub_signed(TimeDelta::seconds(shift))?.date();
        let days = i64::from(i32::try_from(d.signed_duration_since(epoch_date()).num_days()).ok()?);
        Some(match self.every {
            Period::Daily => days,
            Period::Weekly => floor_div(
                days - i64::from(self.at.weekday.num_days_from_monday()) + 3,
                7,
            ),
            Period::Monthly => {
                let id = i64::from(d.year()) * 12 + i64::from(d.month0());
                if d < self.at.day_in(d.year(), d.month())? {
                    id - 1
                } else {
                    id
                }
            }
            Period::Yearly => {
                let y = i64::from(d.year());
                if d < self.at.day_in(d.year(), self.at.month)? {
                    y - 1
                } else {
                    y
                }
            }
            Period::Every(_) | Period::Hourly => return None,
        })
    }

    /// The local wall-clock time calendar period `id` starts at.
    fn local_start(&self, id: i64) -> Option<NaiveDateTime> {
        let date = match self.every {
            Period::Daily => epoch_date().checked_add_signed(TimeDelta::try_days(id)?)?,
            Period::Weekly => {
                let monday = NaiveDate::from_ymd_opt(1969, 12, 29)?;
                let days = id
                    .checked_mul(7)?
                    .checked_add(i64::from(self.at.weekday.num_days_from_monday()))?;
                monday.checked_add_signed(TimeDelta::try_days(days)?)?
            }
            Period::Monthly => {
                let year = i32::try_from(id.div_euclid(12)).ok()?;
                let month = u32::try_from(id.rem_euclid(12)).ok()? + 1;
                self.at.day_in(year, month)?
            }
            Period::Yearly => self.at.day_in(i32::try_from(id).ok()?, self.at.month)?,
            Period::Every(_) | Period::Hourly => return None,
        };
        date.and_hms_opt(0, 0, 0)?
            .checked_add_signed(TimeDelta::seconds(self.at.time_secs() + self.offset_secs()))
    }

    /// The first instant of period `id`, or `None` beyond chrono's range.
    fn start_of(&self, tz: Tz, id: i64) -> Option<DateTime<Utc>> {
        match self.every {
            Period::Every(_) => {
                let secs = id
                    .checked_mul(self.every.min_len())?
                    .checked_add(self.offset_secs())?;
                DateTime::from_timestamp(secs, 0)
            }
            Period::Hourly => {
                // The alignment depends on the offset in force at the start; two rounds
                // settle it (zones change their offset modulo an hour very rarely).
                let base = id.checked_mul(HOUR)?.checked_add(self.hourly_shift())?;
                let mut guess = DateTime::from_timestamp(base, 0)?;
                for _ in 0..2 {
                    let a = i64::from(
                        tz.offset_from_utc_datetime(&guess.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    )
                    .rem_euclid(HOUR);
                    guess = DateTime::from_timestamp(base.checked_sub(a)?, 0)?;
                }
                Some(guess)
            }
            _ => first_instant_from(tz, self.local_start(id)?),
        }
    }

    /// When the period of `t` began (never after `t`).
    ///
    /// # Example
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::schedule::{LabelSchedule, Period};
    /// let daily = LabelSchedule::new("daily".parse().unwrap(), Period::Daily);
    /// let tz = chrono_tz::America::New_York;
    /// // 2026-03-08 01:00 UTC is still 2026-03-07 (20:00 EST) in New York.
    /// let t = Utc.with_ymd_and_hms(2026, 3, 8, 1, 0, 0).unwrap();
    /// assert_eq!(daily.period_start(tz, t), Utc.with_ymd_and_hms(2026, 3, 7, 5, 0, 0).unwrap());
    /// ```
    pub fn period_start(&self, tz: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
        self.start_of(tz, self.id(tz, t)).map_or(t, |s| s.min(t))
    }

    /// When the period after the one of `t` begins (always after `t`).
    ///
    /// # Example: the spring DST change in Europe/Berlin
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::schedule::{LabelSchedule, Period};
    /// let hourly = LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly);
    /// let tz = chrono_tz::Europe::Berlin;
    /// // 01:30 CET; the next local hour is 03:00 CEST, one real hour later at 02:00 CET.
    /// let t = Utc.with_ymd_and_hms(2026, 3, 29, 0, 30, 0).unwrap();
    /// assert_eq!(hourly.next_start(tz, t), Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
    /// ```
    pub fn next_start(&self, tz: Tz, t: DateTime<Utc>) -> DateTime<Utc> {
        self.first_start_after(tz, self.id(tz, t), t)
    }

    /// The first instant after `t` whose period is later than `id`.
    fn first_start_after(&self, tz: Tz, id: i64, t: DateTime<Utc>) -> DateTime<Utc> {
        let next = id
            .checked_add(1)
            .and_then(|n| self.start_of(tz, n))
            .filter(|s| *s > t && self.id(tz, *s) > id);
        // Only a calendar running backwards for a moment (a DST end crossing the
        // period boundary), a zone whose offset jumps by a fraction of an hour, or the
        // end of chrono's range gets here: scan forward by minutes, then narrow down
        // to the second.
        next.unwrap_or_else(|| {
            let mut before = t;
            let Some(mut s) = t.checked_add_signed(TimeDelta::seconds(1)) else {
                return t;
            };
            for _ in 0..(400 * 24 * 60) {
                if self.id(tz, s) > id {
                    while s - before > TimeDelta::seconds(1) {
                        let mid = before + TimeDelta::seconds((s - before).num_seconds() / 2);
                        if self.id(tz, mid) > id {
                            s = mid;
                        } else {
                            before = mid;
                        }
                    }
                    return s;
                }
                before = s;
                match s.checked_add_signed(TimeDelta::minutes(1)) {
                    Some(n) => s = n,
                    None => return s,
                }
            }
            s
        })
    }
}

/// Every label of a policy with its period. Labels are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<LabelSchedule>", into = "Vec<LabelSchedule>")]
pub struct Schedule {
    labels: Vec<LabelSchedule>,
}

impl TryFrom<Vec<LabelSchedule>> for Schedule {
    type Error = ScheduleError;
    fn try_from(labels: Vec<LabelSchedule>) -> Result<Self, ScheduleError> {
        Schedule::new(labels)
    }
}

impl From<Schedule> for Vec<LabelSchedule> {
    fn from(s: Schedule) -> Self {
        s.labels
    }
}

impl Schedule {
    /// A schedule of these labels, in this order (the order [`due`] reports them in).
    ///
    /// # Errors
    /// [`ScheduleError::DuplicateLabel`] when a label appears twice.
    pub fn new(labels: Vec<LabelSchedule>) -> Result<Self, ScheduleError> {
        for (i, l) in labels.iter().enumerate() {
            if labels[..i].iter().any(|m| m.label == l.label) {
                return Err(ScheduleError::DuplicateLabel {
                    label: l.label.clone(),
                });
            }
        }
        Ok(Schedule { labels })
    }

    /// The labels, in order.
    pub fn labels(&self) -> &[LabelSchedule] {
        &self.labels
    }

    /// The schedule of one label.
    pub fn get(&self, label: &str) -> Option<&LabelSchedule> {
        self.labels.iter().find(|l| l.label.as_str() == label)
    }

    /// Whether no label is scheduled.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// For each label: the largest period id among its snapshots that are not surely in
/// an older period than `now`'s.
fn newest_ids<I, L>(
    schedule: &Schedule,
    tz: Tz,
    existing: I,
    now: DateTime<Utc>,
) -> Vec<Option<i64>>
where
    I: IntoIterator<Item = (L, DateTime<Utc>)>,
    L: AsRef<str>,
{
    let mut newest: Vec<Option<i64>> = vec![None; schedule.labels.len()];
    // A snapshot older than the longest period (plus a day for offset swings) is in
    // an older period: skip the zone lookups for it.
    let horizons: Vec<i64> = schedule
        .labels
        .iter()
        .map(|l| {
            l.every
                .max_len()
                .saturating_add(l.offset_secs())
                .saturating_add(2 * DAY)
        })
        .collect();
    let now_ts = now.timestamp();
    for (label, t) in existing {
        let label = label.as_ref();
        let Some(i) = schedule
            .labels
            .iter()
            .position(|l| l.label.as_str() == label)
        else {
            continue;
        };
        if t.timestamp() < now_ts.saturating_sub(horizons[i]) {
            continue;
        }
        let id = schedule.labels[i].id(tz, t);
        newest[i] = Some(newest[i].map_or(id, |n| n.max(id)));
    }
    newest
}

/// The labels due at `now`: those with no snapshot in the period of `now` or a later
/// one (see the module docs), in schedule order.
///
/// `existing` lists the dataset's snapshots that count, as (label, instant) — zsnap's
/// own and those the policy adopts; snapshots of labels not in the schedule are
/// ignored.
pub fn due<I, L>(schedule: &Schedule, tz: Tz, existing: I, now: DateTime<Utc>) -> Vec<Label>
where
    I: IntoIterator<Item = (L, DateTime<Utc>)>,
    L: AsRef<str>,
{
    let newest = newest_ids(schedule, tz, existing, now);
    schedule
        .labels
        .iter()
        .zip(newest)
        .filter(|(l, n)| n.is_none_or(|n| n < l.id(tz, now)))
        .map(|(l, _)| l.label.clone())
        .collect()
}

/// When each label will next be due, in schedule order: `now` for labels due now,
/// otherwise the start of the first period after the newest one that has a snapshot.
///
/// A time far after the label's next natural period means a snapshot was taken while
/// the clock was ahead.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::schedule::{next_due, LabelSchedule, Period, Schedule};
/// let schedule = Schedule::new(vec![
///     LabelSchedule::new("quarter".parse().unwrap(), Period::Every("15m".parse().unwrap())),
///     LabelSchedule::new("daily".parse().unwrap(), Period::Daily),
/// ])
/// .unwrap();
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 5, 0).unwrap();
/// let existing = [("quarter", Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap())];
/// let next = next_due(&schedule, chrono_tz::UTC, existing, now);
/// assert_eq!(next[0].1, Utc.with_ymd_and_hms(2026, 11, 23, 12, 15, 0).unwrap());
/// assert_eq!(next[1].1, now); // no daily snapshot yet
/// ```
pub fn next_due<I, L>(
    schedule: &Schedule,
    tz: Tz,
    existing: I,
    now: DateTime<Utc>,
) -> Vec<(Label, DateTime<Utc>)>
where
    I: IntoIterator<Item = (L, DateTime<Utc>)>,
    L: AsRef<str>,
{
    let newest = newest_ids(schedule, tz, existing, now);
    schedule
        .labels
        .iter()
        .zip(newest)
        .map(|(l, n)| {
            let now_id = l.id(tz, now);
            let when = match n {
                Some(n) if n >= now_id => l.first_start_after(tz, n, now),
                _ => now,
            };
            (l.label.clone(), when)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn ls(label: &str, every: &str) -> LabelSchedule {
        LabelSchedule::new(label.parse().unwrap(), every.parse().unwrap())
    }

    #[test]
    fn period_parse_and_print() {
        for s in [
            "hourly", "daily", "weekly", "monthly", "yearly", "15m", "1h30m", "7d",
        ] {
            assert_eq!(s.parse::<Period>().unwrap().to_string(), s);
        }
        let e = |s: &str| s.parse::<Period>().unwrap_err().to_string();
        insta::assert_snapshot!(e("hourley"), @r#"invalid period "hourley": expected hourly, daily, weekly, monthly, yearly or a duration such as "15m""#);
        insta::assert_snapshot!(e("0m"), @r#"invalid period "0m": a period must be at least one second long"#);
        let err = "15x".parse::<Period>().unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        insta::assert_snapshot!(source, @r#"invalid duration "15x": unknown unit (use s, m, h, d or w); expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        assert!(std::error::Error::source(&"hourley".parse::<Period>().unwrap_err()).is_none());
    }

    #[test]
    fn schedule_errors() {
        let e = Schedule::new(vec![ls("a", "hourly"), ls("a", "daily")]).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @"label a is scheduled twice");
        let e = ls("h", "hourly")
            .with_offset("1h".parse().unwrap())
            .unwrap_err();
        insta::assert_snapshot!(e.to_string(), @"label h: offset 1h must be shorter than the period hourly");
        assert!(ls("m", "monthly")
            .with_offset("27d23h".parse().unwrap())
            .is_ok());
        assert!(ls("m", "monthly")
            .with_offset("28d".parse().unwrap())
            .is_err());
        let json =
            r#"[{"label":"h","every":"hourly"},{"label":"d","every":"daily","offset":"2h"}]"#;
        let s: Schedule = serde_json::from_str(json).unwrap();
        assert_eq!(s.labels()[1].offset().seconds(), 7200);
        assert_eq!(serde_json::to_string(&s).unwrap(), json);
        let dup = r#"[{"label":"h","every":"hourly"},{"label":"h","every":"daily"}]"#;
        assert!(serde_json::from_str::<Schedule>(dup).is_err());
    }

    #[test]
    fn every_is_epoch_aligned_whatever_the_zone() {
        let q = ls("q", "15m");
        let tz = chrono_tz::Asia::Kolkata;
        let t = utc(2026, 11, 23, 12, 7, 0);
        assert_eq!(q.period_start(tz, t), utc(2026, 11, 23, 12, 0, 0));
        assert_eq!(q.next_start(tz, t), utc(2026, 11, 23, 12, 15, 0));
    }

    #[test]
    fn hourly_follows_local_whole_hours() {
        let h = ls("h", "hourly");
        // India is UTC+05:30: local hours start at :30 UTC.
        let tz = chrono_tz::Asia::Kolkata;
        let t = utc(2026, 11, 23, 12, 7, 0);
        assert_eq!(h.period_start(tz, t), utc(2026, 11, 23, 11, 30, 0));
        assert_eq!(h.next_start(tz, t), utc(2026, 11, 23, 12, 30, 0));
        // Berlin's repeated hour is two periods.
        let b = chrono_tz::Europe::Berlin;
        let first = h.period_of(b, utc(2026, 10, 25, 0, 30, 0));
        let second = h.period_of(b, utc(2026, 10, 25, 1, 30, 0));
        assert!(second > first);
    }

    #[test]
    fn calendar_periods_in_the_zone() {
        let tz = chrono_tz::Europe::Berlin;
        let d = ls("d", "daily");
        // 2026-10-25 is 25 hours long.
        let t = utc(2026, 10, 25, 12, 0, 0);
        assert_eq!(d.period_start(tz, t), utc(2026, 10, 24, 22, 0, 0));
        assert_eq!(d.next_start(tz, t), utc(2026, 10, 25, 23, 0, 0));
        // ISO week: 2026-11-23 is a Monday.
        let w = ls("w", "weekly");
        let t = utc(2026, 11, 25, 12, 0, 0);
        assert_eq!(w.period_start(tz, t), utc(2026, 11, 22, 23, 0, 0));
        assert_eq!(w.next_start(tz, t), utc(2026, 11, 29, 23, 0, 0));
        let m = ls("m", "monthly");
        assert_eq!(m.period_start(tz, t), utc(2026, 10, 31, 23, 0, 0));
        assert_eq!(m.next_start(tz, t), utc(2026, 11, 30, 23, 0, 0));
        let y = ls("y", "yearly");
        assert_eq!(y.period_start(tz, t), utc(2025, 12, 31, 23, 0, 0));
        assert_eq!(y.next_start(tz, t), utc(2026, 12, 31, 23, 0, 0));
    }

    #[test]
    fn offsets_move_period_starts() {
        let tz = chrono_tz::Europe::Berlin;
        let d = ls("d", "daily")
            .with_offset("2h30m".parse().unwrap())
            .unwrap();
        // 02:00 local on 2026-11-23 is still the period of 2026-11-22.
        let t = utc(2026, 11, 23, 1, 0, 0);
        assert_eq!(d.period_start(tz, t), utc(2026, 11, 22, 1, 30, 0));
        // 02:30 does not exist on 2026-03-29: the day starts when the clock jumps
        // past it, at 03:00 CEST (01:00 UTC).
        let t = utc(2026, 3, 29, 12, 0, 0);
        assert_eq!(d.period_start(tz, t), utc(2026, 3, 29, 1, 0, 0));
        assert_eq!(
            d.period_of(tz, utc(2026, 3, 29, 0, 59, 59)),
            d.period_of(tz, utc(2026, 3, 28, 12, 0, 0))
        );
        assert_eq!(
            d.period_of(tz, utc(2026, 3, 29, 1, 0, 0)),
            d.period_of(tz, t)
        );
        let q = ls("q", "15m").with_offset("5m".parse().unwrap()).unwrap();
        assert_eq!(
            q.period_start(tz, utc(2026, 1, 1, 0, 3, 0)),
            utc(2025, 12, 31, 23, 50, 0)
        );
    }

    #[test]
    fn due_and_next_due() {
        let s = Schedule::new(vec![ls("h", "hourly"), ls("d", "daily")]).unwrap();
        let tz = chrono_tz::UTC;
        let now = utc(2026, 11, 23, 12, 30, 0);
        let labels = |v: Vec<Label>| v.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(
            labels(due(&s, tz, Vec::<(&str, _)>::new(), now)),
            ["h", "d"]
        );
        let existing = [
            ("h", utc(2026, 11, 23, 12, 0, 0)),
            ("d", utc(2026, 11, 22, 23, 0, 0)),
        ];
        assert_eq!(labels(due(&s, tz, existing, now)), ["d"]);
        // Unknown labels and old snapshots do not count.
        let existing = [("x", now), ("h", utc(2026, 11, 20, 12, 0, 0))];
        assert_eq!(labels(due(&s, tz, existing, now)), ["h", "d"]);
        let existing = [
            ("h", utc(2026, 11, 23, 12, 0, 0)),
            ("d", utc(2026, 11, 23, 0, 0, 0)),
        ];
        let next = next_due(&s, tz, existing, now);
        assert_eq!(next[0].1, utc(2026, 11, 23, 13, 0, 0));
        assert_eq!(next[1].1, utc(2026, 11, 24, 0, 0, 0));
        // A snapshot from the future pushes the next one past its period.
        let existing = [("h", utc(2026, 11, 23, 18, 10, 0))];
        assert_eq!(
            next_due(&s, tz, existing, now)[0].1,
            utc(2026, 11, 23, 19, 0, 0)
        );
    }
}
