//! Snapshot naming: how zsnap names the snapshots it takes, and how it recognizes the
//! snapshots of other tools when a policy adopts them.
//!
//! zsnap's own names are `<prefix>_<label>_<UTC timestamp>`, for example
//! `zsnap_hourly_20261123T150000Z`: an ISO 8601 basic timestamp in UTC, so names of one
//! label sort by time and never collide across a DST change or a change of time zone.
//! Labels never contain `_`, which is what keeps every such name parseable
//! ([`NamingScheme::parse`] inverts [`NamingScheme::name`] for every instant of the years
//! 0000–9999, at second precision).
//!
//! Other tools' names are recognized by a [`Recognizer`]:
//!
//! | tool | example | time in the name |
//! |---|---|---|
//! | zsnap | `zsnap_hourly_20261123T150000Z` | UTC |
//! | sanoid | `autosnap_2026-11-23_15:00:01_hourly` | **local** time of the host |
//! | zfs-auto-snapshot | `zfs-auto-snap_hourly-2026-11-23-1500` | UTC (its default since 2013), local with `utc = false` |
//! | zrepl | `zrepl_20261123_150000_000` | UTC (formats `dense`, `human`, `iso-8601`, `unix-seconds`) |
//! | ISO 8601 names | `2026-11-23T15:00:00Z`, `backup-2026-11-23T150000Z` | UTC |
//! | any tool, by prefix and `strftime` format ([`NameFormat`]) | `pyznap_2026-11-23_15:00:00_hourly` | UTC, local or a named zone, as configured |
//! | a regex | anything with a `time` group | UTC or local, as configured |
//!
//! A name in local time cannot be turned into an instant without the time zone it was
//! written in, and some local names are ambiguous (the repeated hour when DST ends) or
//! impossible (the skipped hour when it starts). Recognizers therefore return a
//! [`NameTime`], which the caller resolves in the policy's zone with
//! [`NameTime::resolve`].
//!
//! Every parser here works on bytes, checks every digit and builds dates with chrono's
//! checked constructors: no input, however malformed (month 13, February 30, a leap
//! second, a five-digit year, non-ASCII), makes any of them panic.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::zfs_names::ShortName;

/// The prefix of zsnap's own snapshot names unless a policy sets another.
pub const DEFAULT_PREFIX: &str = "zsnap";

/// The longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 64;

/// The longest naming prefix, in bytes.
pub const MAX_PREFIX_LEN: usize = 64;

/// The name of a kind of snapshot in a schedule: `hourly`, `daily`, `pre-upgrade`…
///
/// A label is 1 to 64 bytes of lowercase ASCII letters, digits and `-`, beginning with a
/// letter or a digit. It may not contain `_`, which separates the parts of zsnap's
/// snapshot names.
///
/// # Example
/// ```
/// use zsnap_core::naming::Label;
/// let l: Label = "hourly".parse().unwrap();
/// assert_eq!(l.as_str(), "hourly");
/// let e = "pre_upgrade".parse::<Label>().unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     r#"invalid label "pre_upgrade": '_' separates the parts of a snapshot name and may not appear in a label (at byte 3)"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

impl Label {
    /// The label as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a label was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label {input:?}: {problem}")]
#[non_exhaustive]
pub struct LabelError {
    /// The rejected input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: LabelProblem,
}

/// The rule a rejected label breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelProblem {
    /// The label is empty.
    #[error("a label may not be empty")]
    Empty,
    /// The label is longer than [`MAX_LABEL_LEN`] bytes.
    #[error("a label is at most 64 bytes long")]
    TooLong,
    /// The label contains `_`.
    #[error(
        "'_' separates the parts of a snapshot name and may not appear in a label (at byte {0})"
    )]
    Underscore(usize),
    /// The label begins with `-`.
    #[error("a label must begin with a letter or a digit")]
    LeadingHyphen,
    /// A character outside `[a-z0-9-]`.
    #[error("character {ch:?} is not allowed (at byte {position}); labels use a-z, 0-9 and '-'")]
    BadChar {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
}

impl FromStr for Label {
    type Err = LabelError;
    fn from_str(s: &str) -> Result<Self, LabelError> {
        let fail = |problem| LabelError {
            input: s.to_owned(),
            problem,
        };
        if s.is_empty() {
            return Err(fail(LabelProblem::Empty));
        }
        if s.len() > MAX_LABEL_LEN {
            return Err(fail(LabelProblem::TooLong));
        }
        for (position, ch) in s.char_indices() {
            if ch == '_' {
                return Err(fail(LabelProblem::Underscore(position)));
            }
            if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-') {
                return Err(fail(LabelProblem::BadChar { ch, position }));
            }
        }
        if s.starts_with('-') {
            return Err(fail(LabelProblem::LeadingHyphen));
        }
        Ok(Label(s.to_owned()))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a name could not be made, or a naming configuration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamingError {
    /// The prefix is empty, too long, or has a character outside `[A-Za-z0-9_.:-]`.
    #[error("invalid naming prefix {prefix:?}: {problem}")]
    InvalidPrefix {
        /// The prefix, verbatim.
        prefix: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The instant is outside the years 0000–9999, which a four-digit year cannot
    /// write.
    #[error("cannot name a snapshot taken at {time}: only the years 0000 to 9999 fit in a name")]
    TimeOutOfRange {
        /// The instant.
        time: DateTime<Utc>,
    },
    /// A [`NameFormat`] that cannot be used.
    #[error("invalid snapshot name format {format:?}: {problem}")]
    InvalidFormat {
        /// The format, verbatim.
        format: String,
        /// What is wrong.
        problem: String,
    },
    /// A regex recognizer's pattern does not compile or has no `time` group.
    #[error("invalid snapshot name pattern {pattern:?}: {problem}")]
    InvalidPattern {
        /// The pattern, verbatim.
        pattern: String,
        /// What is wrong (the regex compiler's message, when it failed).
        problem: String,
    },
}

fn check_prefix(prefix: &str) -> Result<(), NamingError> {
    let fail = |problem| NamingError::InvalidPrefix {
        prefix: prefix.to_owned(),
        problem,
    };
    if prefix.is_empty() {
        return Err(fail("it is empty"));
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(fail("it is longer than 64 bytes"));
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if !prefix.bytes().all(ok) {
        return Err(fail("use only A-Z, a-z, 0-9, '_', '.', ':' and '-'"));
    }
    Ok(())
}

/// How zsnap names the snapshots it takes: `<prefix>_<label>_<YYYYMMDDTHHMMSSZ>`.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::naming::{NameTime, NamingScheme};
/// let scheme = NamingScheme::default();
/// let at = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let name = scheme.name(&"hourly".parse().unwrap(), at).unwrap();
/// assert_eq!(name.as_str(), "zsnap_hourly_20261123T150000Z");
/// let back = scheme.parse(name.as_str()).unwrap();
/// assert_eq!(back.label.as_deref(), Some("hourly"));
/// assert_eq!(back.time, NameTime::Utc(at));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "SchemeRepr", into = "SchemeRepr")]
pub struct NamingScheme {
    prefix: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeRepr {
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}

impl TryFrom<SchemeRepr> for NamingScheme {
    type Error = NamingError;
    fn try_from(r: SchemeRepr) -> Result<Self, NamingError> {
        NamingScheme::new(r.prefix)
    }
}

impl From<NamingScheme> for SchemeRepr {
    fn from(s: NamingScheme) -> Self {
        SchemeRepr { prefix: s.prefix }
    }
}

impl Default for NamingScheme {
    fn default() -> Self {
        NamingScheme {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl NamingScheme {
    /// A scheme with this prefix.
    ///
    /// # Errors
    /// When the prefix is empty, longer than [`MAX_PREFIX_LEN`] bytes, or uses a
    /// character outside `[A-Za-z0-9_.:-]`.
    pub fn new(prefix: impl Into<String>) -> Result<Self, NamingError> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        Ok(NamingScheme { prefix })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of a snapshot of `label` taken at `at` (fractions of a second are
    /// dropped).
    ///
    /// # Errors
    /// [`NamingError::TimeOutOfRange`] when `at` is outside the years 0000–9999.
    pub fn name(&self, label: &Label, at: DateTime<Utc>) -> Result<ShortName, NamingError> {
        let year = at.year();
        if !(0..=9999).contains(&year) {
            return Err(NamingError::TimeOutOfRange { time: at });
        }
        let s = format!(
            "{}_{}_{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.prefix,
            label,
            year,
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        Ok(s.parse().expect(
            "prefix and label are checked to use only name characters and together \
             with the timestamp stay far below 255 bytes",
        ))
    }

    /// The label and time of one of this scheme's names, or `None` when `short` is not
    /// one.
    pub fn parse(&self, short: &str) -> Option<Recognized> {
        let (label, time) = self.parse_parts(short)?;
        Some(Recognized {
            label: Some(label.0),
            time: NameTime::Utc(time),
        })
    }

    /// Like [`NamingScheme::parse`], with the label as a [`Label`] and the time as an
    /// instant (zsnap's names are always in UTC).
    pub fn parse_parts(&self, short: &str) -> Option<(Label, DateTime<Utc>)> {
        parse_zsnap(&self.prefix, short)
    }
}

fn parse_zsnap(prefix: &str, short: &str) -> Option<(Label, DateTime<Utc>)> {
    let rest = short.strip_prefix(prefix)?.strip_prefix('_')?;
    let (label, stamp) = rest.split_once('_')?;
    let label: Label = label.parse().ok()?;
    let time = basic_utc(stamp.as_bytes())?;
    Some((label, time))
}

/// Which of the two instants an ambiguous local time means (the repeated hour when
/// DST ends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "a local time is ambiguous between exactly two instants"
)]
pub enum Fold {
    /// The first occurrence (still in summer time).
    #[default]
    Earlier,
    /// The second occurrence (sanoid marks it with `dst` after the time).
    Later,
}

/// The time written in a snapshot name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "a name's time is either an instant or a wall-clock time needing a zone"
)]
pub enum NameTime {
    /// An instant (the name was written in UTC, or with its offset).
    Utc(DateTime<Utc>),
    /// A wall-clock time in the zone of the host that took the snapshot.
    Local {
        /// The wall-clock time.
        time: NaiveDateTime,
        /// Which occurrence, when the wall-clock time happened twice.
        fold: Fold,
    },
}

impl NameTime {
    /// A time from a name whose format does not mark the fold: an instant when the
    /// format is UTC, otherwise a wall-clock time taken as its first occurrence.
    fn unmarked(time: NaiveDateTime, utc: bool) -> Self {
        if utc {
            NameTime::Utc(time.and_utc())
        } else {
            NameTime::Local {
                time,
                fold: Fold::Earlier,
            }
        }
    }

    /// The instant this name means in `tz`.
    ///
    /// A local time that happened twice (DST ended) resolves by its [`Fold`]; a local
    /// time that never happened (the hour skipped when DST began) is read with the
    /// offset in force before the skip, so it lands as far after the skip as it is
    /// into the gap — what a clock that was not yet moved forward would have meant.
    /// `None` only for times chrono cannot represent.
    ///
    /// # Example
    /// ```
    /// use chrono::{NaiveDate, TimeZone, Utc};
    /// use zsnap_core::naming::{Fold, NameTime};
    /// let tz = chrono_tz::Europe::Berlin;
    /// // 02:30 happened twice on 2026-10-25 in Berlin: at 00:30 and at 01:30 UTC.
    /// let t = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 30, 0).unwrap();
    /// let first = NameTime::Local { time: t, fold: Fold::Earlier }.resolve(tz).unwrap();
    /// let second = NameTime::Local { time: t, fold: Fold::Later }.resolve(tz).unwrap();
    /// assert_eq!(first, Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap());
    /// assert_eq!(second, Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap());
    /// // 02:30 never happened on 2026-03-29: read as 02:30 CET = 03:30 CEST.
    /// let gap = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap().and_hms_opt(2, 30, 0).unwrap();
    /// let g = NameTime::Local { time: gap, fold: Fold::Earlier }.resolve(tz).unwrap();
    /// assert_eq!(g, Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap());
    /// ```
    pub fn resolve(&self, tz: Tz) -> Option<DateTime<Utc>> {
        match *self {
            NameTime::Utc(t) => Some(t),
            NameTime::Local { time, fold } => resolve_local(tz, time, fold),
        }
    }
}

/// Resolves a wall-clock time in `tz` (see [`NameTime::resolve`]).
pub(crate) fn resolve_local(tz: Tz, local: NaiveDateTime, fold: Fold) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            Some(match fold {
                Fold::Earlier => early,
                Fold::Later => late,
            })
        }
        LocalResult::None => {
            // A gap: the offset went up. The offset before the gap is the smaller of
            // the offsets a day either side (no zone changes its offset twice in a day
            // around a gap).
            let day = chrono::TimeDelta::days(1);
            let before = local.checked_sub_signed(day)?;
            let after = local.checked_add_signed(day)?;
            let o1 = tz.offset_from_utc_datetime(&before).fix().local_minus_utc();
            let o2 = tz.offset_from_utc_datetime(&after).fix().local_minus_utc();
            let off = o1.min(o2);
            let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off)))?;
            Some(utc.and_utc())
        }
    }
}

/// What a recognizer read from a snapshot name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Recognized {
    /// The label (`hourly`…), when the name carries one.
    pub label: Option<String>,
    /// When the snapshot was taken, as written in the name.
    pub time: NameTime,
}

impl Recognized {
    /// A recognized name.
    pub fn new(label: Option<String>, time: NameTime) -> Self {
        Recognized { label, time }
    }
}

/// A compiled regex for [`Recognizer::Regex`], kept with its source text.
///
/// The pattern must match the whole short name (it is anchored for you) and have a
/// named group `time`; a named group `label` is optional.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles a pattern.
    ///
    /// # Errors
    /// [`NamingError::InvalidPattern`] when it does not compile or has no `time` group.
    pub fn new(source: impl Into<String>) -> Result<Self, NamingError> {
        let source = source.into();
        let fail = |problem: String| NamingError::InvalidPattern {
            pattern: source.clone(),
            problem,
        };
        let regex =
            regex::Regex::new(&format!("^(?:{source})$")).map_err(|e| fail(e.to_string()))?;
        if !regex.capture_names().any(|n| n == Some("time")) {
            return Err(fail(
                "it has no named group \"time\", e.g. (?P<time>...)".into(),
            ));
        }
        Ok(Pattern { source, regex })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(s).map_err(serde::de::Error::custom)
    }
}

/// The zone the times in [`NameFormat`] names are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "a name's time is in UTC, in the policy's zone, or in a named zone"
)]
pub enum FormatZone {
    /// UTC (`timezone = "UTC"`).
    Utc,
    /// The adopting policy's zone (`timezone = "local"`), as for sanoid's names.
    Local,
    /// This zone (`timezone = "America/New_York"`).
    Zone(Tz),
}

impl fmt::Display for FormatZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatZone::Utc => f.write_str("UTC"),
            FormatZone::Local => f.write_str("local"),
            FormatZone::Zone(tz) => f.write_str(tz.name()),
        }
    }
}

/// The placeholder for the label in a [`NameFormat`]'s format.
pub const LABEL_PLACEHOLDER: &str = "{label}";

/// Any tool's names: a literal prefix, then a chrono `strftime` format (which may hold
/// the label as `{label}` once), in a zone — for a policy to adopt znapzend's,
/// pyznap's, zfs_autobackup's, a jail manager's or a custom zrepl's snapshots.
///
/// The format must write every instant back to the minute or better: constructing a
/// `NameFormat` formats sample instants with it and reads them back, and refuses it
/// when they do not come back, when it writes characters ZFS does not allow in a
/// snapshot name, or when the format is malformed. A `%z` in the format makes the
/// written offset decide the instant; `%s` (Unix seconds) is UTC.
///
/// # Example: pyznap
/// ```
/// use chrono::NaiveDate;
/// use zsnap_core::naming::{FormatZone, NameFormat, NameTime, Fold};
/// let f = NameFormat::new("pyznap_", "%Y-%m-%d_%H:%M:%S_{label}", FormatZone::Local, None).unwrap();
/// let r = f.recognize("pyznap_2026-10-25_02:30:00_hourly").unwrap();
/// assert_eq!(r.label.as_deref(), Some("hourly"));
/// let t = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 30, 0).unwrap();
/// assert_eq!(r.time, NameTime::Local { time: t, fold: Fold::Earlier });
/// // A format that cannot be read back is refused.
/// let e = NameFormat::new("auto-", "%Y-%m-%d", FormatZone::Utc, None).unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     r#"invalid snapshot name format "%Y-%m-%d": it does not write the time of day: give hours and minutes, e.g. "%Y-%m-%d-%H%M""#
/// );
/// ```
#[derive(Debug, Clone)]
pub struct NameFormat {
    prefix: String,
    format: String,
    zone: FormatZone,
    label: Option<Label>,
    /// The format without `{label}`, and the regex that finds the label in a name.
    time_format: String,
    label_regex: Option<regex::Regex>,
    /// Whether the format writes its own offset (`%z`).
    offset: bool,
}

impl PartialEq for NameFormat {
    fn eq(&self, o: &Self) -> bool {
        (&self.prefix, &self.format, self.zone, &self.label)
            == (&o.prefix, &o.format, o.zone, &o.label)
    }
}

impl Eq for NameFormat {}

/// The regex for what one strftime item writes.
fn item_regex(item: &chrono::format::Item<'_>) -> Option<String> {
    use chrono::format::{Fixed, Item, Numeric, Pad};
    Some(match item {
        Item::Literal(s) | Item::Space(s) => regex::escape(s),
        Item::OwnedLiteral(s) | Item::OwnedSpace(s) => regex::escape(s),
        Item::Numeric(n, pad) => {
            let width = match n {
                Numeric::Year | Numeric::IsoYear => 4,
                Numeric::Ordinal => 3,
                Numeric::Timestamp | Numeric::Nanosecond => 0,
                _ => 2,
            };
            match (pad, width) {
                (Pad::Space, 0) => r" *[+-]?\d+".to_owned(),
                (_, 0) | (Pad::None, _) => r"[+-]?\d+".to_owned(),
                (Pad::Zero, 4) => r"\d{4}".to_owned(),
                (Pad::Zero, w) => format!(r"\d{{{w}}}"),
                (Pad::Space, w) => format!(r" *\d{{1,{w}}}"),
            }
        }
        Item::Fixed(f) => match f {
            Fixed::ShortMonthName
            | Fixed::LongMonthName
            | Fixed::ShortWeekdayName
            | Fixed::LongWeekdayName
            | Fixed::LowerAmPm
            | Fixed::UpperAmPm => "[A-Za-z]+".to_owned(),
            _ => r"[0-9A-Za-z:.+ -]*?".to_owned(),
        },
        Item::Error => return None,
    })
}

/// Instants every accepted format must write and read back: both digits of every
/// field differ from each other, and from the other fields.
fn sample_times() -> [NaiveDateTime; 4] {
    let t = |y, mo, d, h, mi, s| {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .expect("valid sample instant")
    };
    [
        t(2026, 11, 23, 15, 4, 5),
        t(1999, 1, 2, 3, 6, 7),
        t(2038, 12, 31, 23, 59, 58),
        t(2001, 10, 11, 12, 34, 56),
    ]
}

impl NameFormat {
    /// A format: names are `prefix` then `format` (chrono `strftime`, with `{label}` at
    /// most once), their times in `zone`. `label` gives every recognized snapshot that
    /// label (for formats without `{label}`).
    ///
    /// # Errors
    /// [`NamingError::InvalidFormat`] when the format is malformed, has `{label}`
    /// twice or together with `label`, does not read back the instants it writes to
    /// the minute, or writes characters ZFS does not allow in a snapshot name.
    pub fn new(
        prefix: impl Into<String>,
        format: impl Into<String>,
        zone: FormatZone,
        label: Option<Label>,
    ) -> Result<Self, NamingError> {
        use chrono::format::StrftimeItems;
        let prefix = prefix.into();
        let format = format.into();
        let fail = |problem: String| NamingError::InvalidFormat {
            format: format.clone(),
            problem,
        };
        if format.is_empty() {
            return Err(fail("it is empty".into()));
        }
        let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b' ');
        if let Some(c) = prefix.bytes().find(|b| !ok(*b)) {
            return Err(fail(format!(
                "the prefix {prefix:?} has {:?}, which ZFS does not allow in a snapshot name",
                char::from(c)
            )));
        }
        let parts: Vec<&str> = format.split(LABEL_PLACEHOLDER).collect();
        if parts.len() > 2 {
            return Err(fail("it holds {label} more than once".into()));
        }
        if parts.len() == 2 && label.is_some() {
            return Err(fail(
                "it holds {label}, so a fixed label cannot be given too".into(),
            ));
        }
        let time_format = parts.concat();
        let mut pieces = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if i == 1 {
                pieces.push("(?P<label>[a-z0-9][a-z0-9-]*)".to_owned());
            }
            for item in StrftimeItems::new(part) {
                pieces.push(
                    item_regex(&item).ok_or_else(|| {
                        fail("it has an unknown or unfinished % specifier".into())
                    })?,
                );
            }
        }
        let label_regex = if parts.len() == 2 {
            Some(
                regex::Regex::new(&format!("^{}{}$", regex::escape(&prefix), pieces.concat()))
                    .map_err(|e| fail(e.to_string()))?,
            )
        } else {
            None
        };
        // A number of varying width right before another number cannot be told apart
        // from it in every name (`%k%e` writes " 710" for 07:xx on the 10th).
        {
            use chrono::format::{Item, Numeric, Pad};
            let items: Vec<Item<'_>> = StrftimeItems::new(&time_format).collect();
            for pair in items.windows(2) {
                if let [Item::Numeric(n, pad), Item::Numeric(..)] = pair {
                    let varying =
                        *pad != Pad::Zero || matches!(n, Numeric::Timestamp | Numeric::Nanosecond);
                    if varying {
                        return Err(fail(
                            "a number of varying width (%s, or a field without zero padding such as %e, %k or %-d) is followed directly by another number, so names cannot be split; put a separator between them".into(),
                        ));
                    }
                }
            }
        }
        // The label must be found in every name: it ends at the first character no label
        // has, or else what follows it has a fixed width; and it cannot start inside a
        // number of varying width.
        if let [before, after] = parts[..] {
            use chrono::format::{Item, Pad};
            let fixed = |i: &Item<'_>| match i {
                Item::Literal(_) | Item::Space(_) | Item::OwnedLiteral(_) | Item::OwnedSpace(_) => {
                    true
                }
                Item::Numeric(n, Pad::Zero) => !matches!(
                    n,
                    chrono::format::Numeric::Timestamp | chrono::format::Numeric::Nanosecond
                ),
                _ => false,
            };
            let ends_label = after.bytes().next().is_none_or(|b| {
                !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'%')
            });
            if !ends_label && !StrftimeItems::new(after).all(|i| fixed(&i)) {
                return Err(fail(
                    "{label} is followed by what a label may hold (a letter, digit, '-' or a field) and then by fields of varying width, so the label cannot be told apart; put '_' or '.' after {label}".into(),
                ));
            }
            if let Some(last) = StrftimeItems::new(before).last() {
                if matches!(last, Item::Numeric(..)) && !fixed(&last) {
                    return Err(fail(
                        "{label} follows a number of varying width, so the label cannot be told apart; put a separator before {label}".into(),
                    ));
                }
            }
        }
        let offset = StrftimeItems::new(&time_format).any(|i| {
            matches!(
                i,
                chrono::format::Item::Fixed(
                    chrono::format::Fixed::TimezoneOffset
                        | chrono::format::Fixed::TimezoneOffsetColon
                        | chrono::format::Fixed::TimezoneOffsetColonZ
                        | chrono::format::Fixed::TimezoneOffsetZ
                        | chrono::format::Fixed::RFC2822
                        | chrono::format::Fixed::RFC3339
                )
            )
        });
        let f = NameFormat {
            prefix,
            format: format.clone(),
            zone,
            label,
            time_format,
            label_regex,
            offset,
        };
        // Every sample must come back to the minute (to the second when the format
        // writes seconds): otherwise names would be misread, or not read at all.
        let with_label = |s: String| s.replacen(LABEL_PLACEHOLDER, "hourly", 1);
        // Read back as wall-clock times, to compare with what was written.
        let probe = NameFormat {
            zone: FormatZone::Local,
            ..f.clone()
        };
        for t in sample_times() {
            let name = with_label(f.write(t).ok_or_else(|| {
                fail("chrono cannot write it (an unsupported specifier?)".into())
            })?);
            if let Some(c) = name.bytes().find(|b| !ok(*b)) {
                return Err(fail(format!(
                    "it writes {:?}, which ZFS does not allow in a snapshot name",
                    char::from(c)
                )));
            }
            let back = match probe.read(&name) {
                Ok(r) => r,
                Err(e) => {
                    let problem = if e.contains("not enough") {
                        if f.write(t.with_hour(0).expect("hour 0 exists")) == f.write(t) {
                            format!("it does not write the time of day: give hours and minutes, e.g. \"{}-%H%M\"", f.format)
                        } else {
                            "it does not write enough to tell the instant (a year, month, day, hour and minute, or %s)".to_owned()
                        }
                    } else {
                        format!("{name:?}, which it writes, does not read back: {e}")
                    };
                    return Err(fail(problem));
                }
            };
            let (time, label) = back;
            let got = match time {
                NameTime::Utc(u) => u.naive_utc(),
                NameTime::Local { time, .. } => time,
            };
            let minute = |n: NaiveDateTime| n.with_second(0).and_then(|n| n.with_nanosecond(0));
            if (got != t && Some(got) != minute(t))
                || (f.label_regex.is_some() && label.as_deref() != Some("hourly"))
            {
                return Err(fail(format!(
                    "{name:?}, which it writes for {t}, reads back as {got}; the format must write the instant to the minute"
                )));
            }
        }
        Ok(f)
    }

    /// The name this format writes for the local time `t` (with `{label}` left in),
    /// or `None` when chrono cannot write it.
    fn write(&self, t: NaiveDateTime) -> Option<String> {
        use std::fmt::Write;
        let mut out = self.prefix.clone();
        for (i, part) in self.format.split(LABEL_PLACEHOLDER).enumerate() {
            if i == 1 {
                out.push_str(LABEL_PLACEHOLDER);
            }
            // A format with an offset writes this zone-less time as UTC.
            let at = t.and_utc();
            write!(out, "{}", at.format(part)).ok()?;
        }
        Some(out)
    }

    /// The time and label in `short`, or chrono's reason it does not parse.
    fn read(&self, short: &str) -> Result<(NameTime, Option<String>), String> {
        let rest = short
            .strip_prefix(self.prefix.as_str())
            .ok_or_else(|| "the prefix does not match".to_owned())?;
        let (text, label) = match &self.label_regex {
            Some(re) => {
                let caps = re
                    .captures(short)
                    .ok_or_else(|| "the label is not where {label} is".to_owned())?;
                let m = caps.name("label").ok_or_else(|| "no label".to_owned())?;
                let start = m.start() - self.prefix.len();
                let end = m.end() - self.prefix.len();
                let text = format!("{}{}", &rest[..start], &rest[end..]);
                (text, Some(m.as_str().to_owned()))
            }
            None => (
                rest.to_owned(),
                self.label.as_ref().map(|l| l.as_str().to_owned()),
            ),
        };
        let time = if self.offset {
            let t =
                DateTime::parse_from_str(&text, &self.time_format).map_err(|e| e.to_string())?;
            NameTime::Utc(t.with_timezone(&Utc))
        } else {
            let t = NaiveDateTime::parse_from_str(&text, &self.time_format)
                .map_err(|e| e.to_string())?;
            match self.zone {
                _ if self.time_format.contains("%s") => NameTime::Utc(t.and_utc()),
                FormatZone::Utc => NameTime::Utc(t.and_utc()),
                FormatZone::Local => NameTime::Local {
                    time: t,
                    fold: Fold::Earlier,
                },
                FormatZone::Zone(tz) => NameTime::Utc(
                    resolve_local(tz, t, Fold::Earlier).ok_or_else(|| "out of range".to_owned())?,
                ),
            }
        };
        Ok((time, label))
    }

    /// The label and time in `short`, when it is one of this format's names.
    pub fn recognize(&self, short: &str) -> Option<Recognized> {
        let (time, label) = self.read(short).ok()?;
        Some(Recognized::new(label, time))
    }

    /// The literal prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The `strftime` format, with `{label}` if it has one.
    pub fn format(&self) -> &str {
        &self.format
    }

    /// The zone of the names' times.
    pub fn zone(&self) -> FormatZone {
        self.zone
    }

    /// The label every recognized snapshot gets, for formats without `{label}`.
    pub fn label(&self) -> Option<&Label> {
        self.label.as_ref()
    }

    /// Whether the names carry their label (`{label}` in the format).
    pub fn has_label_placeholder(&self) -> bool {
        self.label_regex.is_some()
    }
}

impl FromStr for FormatZone {
    type Err = String;
    /// `UTC`, `local` or an IANA zone name.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "UTC" | "utc" => Ok(FormatZone::Utc),
            "local" => Ok(FormatZone::Local),
            _ => s
                .parse::<Tz>()
                .map(FormatZone::Zone)
                .map_err(|_| format!("unknown time zone {s:?}; expected \"UTC\", \"local\" (the policy's zone) or an IANA name such as \"Europe/Berlin\"")),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatRepr {
    #[serde(default)]
    prefix: String,
    format: String,
    #[serde(default = "local_zone")]
    timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<Label>,
}

fn local_zone() -> String {
    "local".to_owned()
}

impl Serialize for NameFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FormatRepr {
            prefix: self.prefix.clone(),
            format: self.format.clone(),
            timezone: self.zone.to_string(),
            label: self.label.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for NameFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = FormatRepr::deserialize(d)?;
        let zone: FormatZone = r.timezone.parse().map_err(serde::de::Error::custom)?;
        NameFormat::new(r.prefix, r.format, zone, r.label).map_err(serde::de::Error::custom)
    }
}

fn sanoid_prefix() -> String {
    "autosnap".to_owned()
}
fn zas_prefix() -> String {
    "zfs-auto-snap".to_owned()
}
fn zrepl_prefix() -> String {
    "zrepl_".to_owned()
}
fn yes() -> bool {
    true
}

/// A way to recognize snapshots by name, for a policy that adopts other tools'
/// snapshots (see the module docs for the formats).
///
/// In a config: `{ kind = "sanoid" }`, `{ kind = "zrepl", prefix = "zrepl_" }`,
/// `{ kind = "regex", pattern = "nightly-(?P<time>\\d{8})", format = "%Y%m%d" }`…
///
/// # Example
/// ```
/// use chrono::NaiveDate;
/// use zsnap_core::naming::{Fold, NameTime, Recognizer};
/// let r = Recognizer::sanoid().recognize("autosnap_2026-10-25_02:00:00dst_hourly").unwrap();
/// assert_eq!(r.label.as_deref(), Some("hourly"));
/// let t = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 0, 0).unwrap();
/// assert_eq!(r.time, NameTime::Local { time: t, fold: Fold::Later });
/// assert!(Recognizer::sanoid().recognize("autosnap_2026-02-30_02:00:00_hourly").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Recognizer {
    /// zsnap's own names with this prefix (for snapshots received from another zsnap,
    /// which arrive without the managed property).
    Zsnap {
        /// The prefix, `zsnap` by default.
        #[serde(default = "default_prefix")]
        prefix: String,
    },
    /// sanoid's `autosnap_YYYY-MM-DD_HH:MM:SS[dst]_<label>`, in the host's local time.
    /// The `dst` mark, which sanoid adds to the second snapshot of the repeated hour
    /// when DST ends, selects [`Fold::Later`].
    Sanoid {
        /// The prefix, `autosnap` by default.
        #[serde(default = "sanoid_prefix")]
        prefix: String,
    },
    /// zfs-auto-snapshot's `<prefix>[_<label>]-YYYY-MM-DD-HHMM` (also zfstools'
    /// `-HHhMM` form).
    ZfsAutoSnapshot {
        /// The prefix, `zfs-auto-snap` by default.
        #[serde(default = "zas_prefix")]
        prefix: String,
        /// Whether the times are UTC. zfs-auto-snapshot writes UTC unless patched;
        /// zfstools and several forks write local time (`utc = false`).
        #[serde(default = "yes")]
        utc: bool,
    },
    /// zrepl's `<prefix><timestamp>` with any of its timestamp formats: `dense`
    /// (`20261123_150000_000`, the default), `human` (`2026-11-23_15:00:00`), `iso-8601`
    /// (`2026-11-23T15:00:00.000Z`, or an offset written `_0100`/`-0500`) or
    /// `unix-seconds`.
    Zrepl {
        /// The prefix exactly as in zrepl's config (`zrepl_` by default).
        #[serde(default = "zrepl_prefix")]
        prefix: String,
    },
    /// `<prefix><ISO 8601 UTC time>`: extended `2026-11-23T15:00:00Z`, basic
    /// `20261123T150000Z` or mixed `2026-11-23T150000Z`, with optional fractions of a
    /// second.
    Iso8601 {
        /// Everything before the time (may be empty).
        #[serde(default)]
        prefix: String,
    },
    /// A prefix and a `strftime` format ([`NameFormat`]): any tool's names.
    Format(NameFormat),
    /// A regex with a `time` group (and optionally a `label` group), the time read with
    /// a chrono `strftime` format.
    Regex {
        /// The pattern.
        pattern: Pattern,
        /// The `strftime` format of the `time` group, e.g. `%Y-%m-%d_%H.%M.%S`.
        format: String,
        /// Whether the times are UTC (otherwise local).
        #[serde(default = "yes")]
        utc: bool,
    },
}

impl Recognizer {
    /// zsnap's names with the default prefix.
    pub fn zsnap() -> Self {
        Recognizer::Zsnap {
            prefix: default_prefix(),
        }
    }

    /// sanoid's names.
    pub fn sanoid() -> Self {
        Recognizer::Sanoid {
            prefix: sanoid_prefix(),
        }
    }

    /// zfs-auto-snapshot's names in UTC.
    pub fn zfs_auto_snapshot() -> Self {
        Recognizer::ZfsAutoSnapshot {
            prefix: zas_prefix(),
            utc: true,
        }
    }

    /// zrepl's names with the prefix `zrepl_`.
    pub fn zrepl() -> Self {
        Recognizer::Zrepl {
            prefix: zrepl_prefix(),
        }
    }

    /// Bare ISO 8601 names (`2026-11-23T15:00:00Z`).
    pub fn iso8601() -> Self {
        Recognizer::Iso8601 {
            prefix: String::new(),
        }
    }

    /// The tool this recognizer stands for, for messages.
    pub fn tool(&self) -> &'static str {
        match self {
            Recognizer::Zsnap { .. } => "zsnap",
            Recognizer::Sanoid { .. } => "sanoid",
            Recognizer::ZfsAutoSnapshot { .. } => "zfs-auto-snapshot",
            Recognizer::Zrepl { .. } => "zrepl",
            Recognizer::Iso8601 { .. } => "iso8601",
            Recognizer::Format(_) => "format",
            Recognizer::Regex { .. } => "regex",
        }
    }

    /// The label and time in `short`, when it is a name this recognizer knows.
    pub fn recognize(&self, short: &str) -> Option<Recognized> {
        match self {
            Recognizer::Zsnap { prefix } => {
                let (label, time) = parse_zsnap(prefix, short)?;
                Some(Recognized::new(Some(label.0), NameTime::Utc(time)))
            }
            Recognizer::Sanoid { prefix } => parse_sanoid(prefix, short),
            Recognizer::ZfsAutoSnapshot { prefix, utc } => parse_zas(prefix, *utc, short),
            Recognizer::Zrepl { prefix } => {
                let time = parse_zrepl(short.strip_prefix(prefix.as_str())?.as_bytes())?;
                Some(Recognized::new(None, NameTime::Utc(time)))
            }
            Recognizer::Iso8601 { prefix } => {
                let time = iso_utc(short.strip_prefix(prefix.as_str())?.as_bytes())?;
                Some(Recognized::new(None, NameTime::Utc(time)))
            }
            Recognizer::Format(f) => f.recognize(short),
            Recognizer::Regex {
                pattern,
                format,
                utc,
            } => {
                let caps = pattern.regex.captures(short)?;
                let text = caps.name("time")?.as_str();
                let time = NaiveDateTime::parse_from_str(text, format).ok()?;
                let label = caps.name("label").map(|m| m.as_str().to_owned());
                Some(Recognized::new(label, NameTime::unmarked(time, *utc)))
            }
        }
    }
}

/// Tries every built-in recognizer with its default prefix — zsnap, sanoid,
/// zfs-auto-snapshot (UTC), zrepl, bare ISO 8601 — and returns the first match.
///
/// Never panics, whatever `short` holds.
///
/// # Example
/// ```
/// use zsnap_core::naming::recognize_any;
/// assert!(recognize_any("zfs-auto-snap_daily-2026-11-23-1500").is_some());
/// assert!(recognize_any("zrepl_20261123_150000_000").is_some());
/// assert!(recognize_any("zsnap_hourly_20261323T150000Z").is_none()); // month 13
/// assert!(recognize_any("manual-before-upgrade").is_none());
/// ```
pub fn recognize_any(short: &str) -> Option<Recognized> {
    // Each built-in recognizer starts with a distinct literal, so trying them in turn
    // costs one prefix comparison each for names that match none.
    if let Some((label, time)) = parse_zsnap(DEFAULT_PREFIX, short) {
        return Some(Recognized::new(Some(label.0), NameTime::Utc(time)));
    }
    parse_sanoid("autosnap", short)
        .or_else(|| parse_zas("zfs-auto-snap", true, short))
        .or_else(|| {
            let t = parse_zrepl(short.strip_prefix("zrepl_")?.as_bytes())?;
            Some(Recognized::new(None, NameTime::Utc(t)))
        })
        .or_else(|| {
            Some(Recognized::new(
                None,
                NameTime::Utc(iso_utc(short.as_bytes())?),
            ))
        })
}

// ---------------------------------------------------------------------------------
// Byte-level parsers. Each takes exactly the bytes of its format and returns `None`
// for anything else; dates are built with checked constructors only.

/// The value of `b`, which must be all ASCII digits (and at most 9 of them).
fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn naive(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<NaiveDateTime> {
    let y = i32::try_from(y).ok()?;
    NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_opt(h, mi, s)
}

/// `YYYYMMDDTHHMMSSZ`, exactly.
fn basic_utc(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    Some(basic_datetime(b)?.and_utc())
}

/// `YYYYMMDD?HHMMSS` at the start of `b`; the separator at byte 8 is the caller's to
/// check.
fn basic_datetime(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() < 15 {
        return None;
    }
    naive(
        num(&b[0..4])?,
        num(&b[4..6])?,
        num(&b[6..8])?,
        num(&b[9..11])?,
        num(&b[11..13])?,
        num(&b[13..15])?,
    )
}

/// `YYYY-MM-DD?HH:MM:SS` at the start of `b`; the separator at byte 10 is the caller's
/// to check.
fn ext_datetime(b: &[u8]) -> Option<NaiveDateTime> {
    if b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = ext_date(b)?;
    naive(
        y,
        mo,
        d,
        num(&b[11..13])?,
        num(&b[14..16])?,
        num(&b[17..19])?,
    )
}

/// `YYYY-MM-DD` at the start of `b`.
fn ext_date(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Some((num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?))
}

/// Optional fraction of a second: `.` or `,` then 1–9 digits; returns nanoseconds and
/// the remaining bytes.
fn fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    match b.first() {
        Some(b'.' | b',') => {
            let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            let value = num(&b[1..1 + digits])?;
            let nanos = value * 10u32.pow(9 - u32::try_from(digits).ok()?);
            Some((nanos, &b[1 + digits..]))
        }
        _ => Some((0, b)),
    }
}

fn with_nanos(t: NaiveDateTime, nanos: u32) -> Option<NaiveDateTime> {
    t.with_nanosecond(nanos)
}

/// ISO 8601 in UTC: `YYYY-MM-DDTHH:MM:SS[.f]Z`, `YYYYMMDDTHHMMSS[.f]Z` or
/// `YYYY-MM-DDTHHMMSS[.f]Z`.
fn iso_utc(b: &[u8]) -> Option<DateTime<Utc>> {
    let ((y, mo, d), rest) = if b.len() >= 10 && b[4] == b'-' {
        (ext_date(b)?, &b[10..])
    } else if b.len() >= 8 {
        ((num(&b[0..4])?, num(&b[4..6])?, num(&b[6..8])?), &b[8..])
    } else {
        return None;
    };
    let rest = rest.strip_prefix(b"T")?;
    let (h, mi, s, rest) = if rest.len() >= 8 && rest[2] == b':' && rest[5] == b':' {
        (
            num(&rest[0..2])?,
            num(&rest[3..5])?,
            num(&rest[6..8])?,
            &rest[8..],
        )
    } else if rest.len() >= 6 {
        (
            num(&rest[0..2])?,
            num(&rest[2..4])?,
            num(&rest[4..6])?,
            &rest[6..],
        )
    } else {
        return None;
    };
    let (nanos, rest) = fraction(rest)?;
    if rest != b"Z" {
        return None;
    }
    Some(with_nanos(naive(y, mo, d, h, mi, s)?, nanos)?.and_utc())
}

/// sanoid: `<prefix>_YYYY-MM-DD_HH:MM:SS[dst]_<label>`.
fn parse_sanoid(prefix: &str, short: &str) -> Option<Recognized> {
    let rest = short.strip_prefix(prefix)?.strip_prefix('_')?.as_bytes();
    if rest.len() < 20 || rest[10] != b'_' {
        return None;
    }
    let time = ext_datetime(rest)?;
    let (fold, rest) = match rest[19..].strip_prefix(b"dst") {
        Some(r) => (Fold::Later, r),
        None => (Fold::Earlier, &rest[19..]),
    };
    let label = rest.strip_prefix(b"_")?;
    if label.is_empty() || !label.iter().all(u8::is_ascii_lowercase) {
        return None;
    }
    let label = std::str::from_utf8(label).ok()?.to_owned();
    Some(Recognized::new(Some(label), NameTime::Local { time, fold }))
}

/// zfs-auto-snapshot: `<prefix>[_<label>]-YYYY-MM-DD-HHMM` (or `-HHhMM`).
fn parse_zas(prefix: &str, utc: bool, short: &str) -> Option<Recognized> {
    let rest = short.strip_prefix(prefix)?.as_bytes();
    // The timestamp is the fixed-width tail; try the HHMM form, then HHhMM.
    let (head, h, mi, date) = if let Some(split) = rest.len().checked_sub(15) {
        let tail = &rest[split..];
        if tail.get(10) == Some(&b'-') && tail[11..].iter().all(u8::is_ascii_digit) {
            (
                &rest[..split],
                num(&tail[11..13])?,
                num(&tail[13..15])?,
                tail,
            )
        } else {
            let split = rest.len().checked_sub(16)?;
            let tail = &rest[split..];
            if tail[10] != b'-' || tail[13] != b'h' {
                return None;
            }
            (
                &rest[..split],
                num(&tail[11..13])?,
                num(&tail[14..16])?,
                tail,
            )
        }
    } else {
        return None;
    };
    let (y, mo, d) = ext_date(date)?;
    let head = head.strip_suffix(b"-")?;
    let label = if head.is_empty() {
        None
    } else {
        let l = head.strip_prefix(b"_")?;
        if l.is_empty() {
            return None;
        }
        Some(std::str::from_utf8(l).ok()?.to_owned())
    };
    let time = naive(y, mo, d, h, mi, 0)?;
    Some(Recognized::new(label, NameTime::unmarked(time, utc)))
}

/// zrepl's timestamp formats, after the prefix.
fn parse_zrepl(b: &[u8]) -> Option<DateTime<Utc>> {
    // dense: 20060102_150405_000 (the trailing digits are Go's literal `000`)
    if b.len() == 19 && b[8] == b'_' && b[15] == b'_' {
        let t = basic_datetime(b)?;
        let millis = num(&b[16..19])?;
        return Some(with_nanos(t, millis * 1_000_000)?.and_utc());
    }
    // human: 2006-01-02_15:04:05
    if b.len() == 19 && b[10] == b'_' {
        return Some(ext_datetime(b)?.and_utc());
    }
    // iso-8601: 2006-01-02T15:04:05.000Z0700, where Go writes `Z` for UTC and zrepl
    // turns a `+` offset into `_`.
    if b.len() >= 20 && b[10] == b'T' {
        let t = ext_datetime(b)?;
        let (nanos, rest) = fraction(&b[19..])?;
        let t = with_nanos(t, nanos)?;
        let offset_secs: i64 = match rest {
            b"Z" => 0,
            [sign @ (b'_' | b'-'), hh @ ..] if hh.len() == 4 => {
                let secs = i64::from(num(&hh[0..2])?) * 3600 + i64::from(num(&hh[2..4])?) * 60;
                if secs >= 24 * 3600 {
                    return None;
                }
                if *sign == b'-' {
                    -secs
                } else {
                    secs
                }
            }
            _ => return None,
        };
        let utc = t.checked_sub_signed(chrono::TimeDelta::seconds(offset_secs))?;
        return Some(utc.and_utc());
    }
    // unix-seconds
    if !b.is_empty() && b.len() <= 12 && b.iter().all(u8::is_ascii_digit) {
        let secs: i64 = std::str::from_utf8(b).ok()?.parse().ok()?;
        return DateTime::from_timestamp(secs, 0);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn local(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, fold: Fold) -> NameTime {
        NameTime::Local {
            time: naive(y as u32, mo, d, h, mi, s).unwrap(),
            fold,
        }
    }

    #[test]
    fn label_rules() {
        for ok in ["hourly", "a", "15m", "pre-upgrade", "x-1-y"] {
            assert_eq!(ok.parse::<Label>().unwrap().as_str(), ok);
        }
        let e = |s: &str| s.parse::<Label>().unwrap_err().to_string();
        insta::assert_snapshot!(e(""), @r#"invalid label "": a label may not be empty"#);
        insta::assert_snapshot!(e("a_b"), @r#"invalid label "a_b": '_' separates the parts of a snapshot name and may not appear in a label (at byte 1)"#);
        insta::assert_snapshot!(e("Hourly"), @r#"invalid label "Hourly": character 'H' is not allowed (at byte 0); labels use a-z, 0-9 and '-'"#);
        insta::assert_snapshot!(e("-x"), @r#"invalid label "-x": a label must begin with a letter or a digit"#);
        insta::assert_snapshot!(e("dé"), @r#"invalid label "dé": character 'é' is not allowed (at byte 1); labels use a-z, 0-9 and '-'"#);
        insta::assert_snapshot!(e(&"a".repeat(65)), @r#"invalid label "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": a label is at most 64 bytes long"#);
        assert!("a".repeat(64).parse::<Label>().is_ok());
    }

    #[test]
    fn label_serde() {
        let l: Label = serde_json::from_str(r#""daily""#).unwrap();
        assert_eq!(serde_json::to_string(&l).unwrap(), r#""daily""#);
        let e = serde_json::from_str::<Label>(r#""da_ily""#).unwrap_err();
        assert!(e.to_string().contains("may not appear in a label"), "{e}");
    }

    #[test]
    fn scheme_errors() {
        let e = |p: &str| NamingScheme::new(p).unwrap_err().to_string();
        insta::assert_snapshot!(e(""), @r#"invalid naming prefix "": it is empty"#);
        insta::assert_snapshot!(e("my snap"), @r#"invalid naming prefix "my snap": use only A-Z, a-z, 0-9, '_', '.', ':' and '-'"#);
        insta::assert_snapshot!(e(&"p".repeat(65)), @r#"invalid naming prefix "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp": it is longer than 64 bytes"#);
        let s = NamingScheme::default();
        let l: Label = "hourly".parse().unwrap();
        let far = DateTime::<Utc>::from_timestamp(253_402_300_800, 0).unwrap(); // 10000-01-01
        insta::assert_snapshot!(s.name(&l, far).unwrap_err().to_string(), @"cannot name a snapshot taken at +10000-01-01 00:00:00 UTC: only the years 0000 to 9999 fit in a name");
        let j: NamingScheme = serde_json::from_str("{}").unwrap();
        assert_eq!(j.prefix(), "zsnap");
        assert!(serde_json::from_str::<NamingScheme>(r#"{"prefix":"a b"}"#).is_err());
    }

    #[test]
    fn zsnap_names() {
        let s = NamingScheme::new("my_tool").unwrap();
        let l: Label = "daily".parse().unwrap();
        let t = utc(2026, 11, 23, 15, 4, 5);
        let n = s.name(&l, t).unwrap();
        assert_eq!(n.as_str(), "my_tool_daily_20261123T150405Z");
        assert_eq!(s.parse_parts(n.as_str()), Some((l.clone(), t)));
        assert_eq!(NamingScheme::default().parse(n.as_str()), None);
        for bad in [
            "zsnap_daily_20261123T150405",
            "zsnap_daily_20261123T150405Zx",
            "zsnap__20261123T150405Z",
            "zsnap_Daily_20261123T150405Z",
            "zsnap_da_ily_20261123T150405Z",
            "zsnap_daily_20260229T000000Z",
            "zsnap_daily_20261123T235960Z",
            "zsnap_daily_2026112 T150405Z",
            "zsnapx_daily_20261123T150405Z",
        ] {
            assert_eq!(NamingScheme::default().parse(bad), None, "{bad}");
        }
        let leap = NamingScheme::default()
            .parse("zsnap_d_20240229T000000Z")
            .unwrap();
        assert_eq!(leap.time, NameTime::Utc(utc(2024, 2, 29, 0, 0, 0)));
    }

    #[test]
    fn sanoid_names() {
        let r = Recognizer::sanoid();
        let got = r.recognize("autosnap_2026-11-23_15:00:01_hourly").unwrap();
        assert_eq!(got.label.as_deref(), Some("hourly"));
        assert_eq!(got.time, local(2026, 11, 23, 15, 0, 1, Fold::Earlier));
        let got = r
            .recognize("autosnap_2017-10-29_02:00:00dst_hourly")
            .unwrap();
        assert_eq!(got.time, local(2017, 10, 29, 2, 0, 0, Fold::Later));
        let got = r
            .recognize("autosnap_2026-11-23_15:00:01_frequently")
            .unwrap();
        assert_eq!(got.label.as_deref(), Some("frequently"));
        for bad in [
            "autosnap_2026-11-23_15:00:01",
            "autosnap_2026-11-23_15:00:01_",
            "autosnap_2026-13-23_15:00:01_hourly",
            "autosnap_2026-11-23_24:00:00_hourly",
            "autosnap_2026-11-23 15:00:01_hourly",
            "autosnap_2026-11-23_15:00:01xdst_hourly",
            "autosnap_2026-11-23_15:00:01_Hourly",
            "syncoid_host_2026-11-23:15:00:01",
        ] {
            assert_eq!(r.recognize(bad), None, "{bad}");
        }
        // Local names resolve in the zone the host ran in.
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(
            local(2017, 10, 29, 2, 0, 0, Fold::Earlier).resolve(berlin),
            Some(utc(2017, 10, 29, 0, 0, 0))
        );
        assert_eq!(
            local(2017, 10, 29, 2, 0, 0, Fold::Later).resolve(berlin),
            Some(utc(2017, 10, 29, 1, 0, 0))
        );
        assert_eq!(
            local(2026, 7, 1, 12, 0, 0, Fold::Later).resolve(berlin),
            Some(utc(2026, 7, 1, 10, 0, 0))
        );
        let ny = chrono_tz::America::New_York;
        // 02:30 on 2026-03-08 does not exist in New York: read with EST (-5).
        assert_eq!(
            local(2026, 3, 8, 2, 30, 0, Fold::Earlier).resolve(ny),
            Some(utc(2026, 3, 8, 7, 30, 0))
        );
    }

    #[test]
    fn zfs_auto_snapshot_names() {
        let r = Recognizer::zfs_auto_snapshot();
        let got = r.recognize("zfs-auto-snap_hourly-2026-11-23-1500").unwrap();
        assert_eq!(got.label.as_deref(), Some("hourly"));
        assert_eq!(got.time, NameTime::Utc(utc(2026, 11, 23, 15, 0, 0)));
        let got = r
            .recognize("zfs-auto-snap_frequent-2017-10-29-02h45")
            .unwrap();
        assert_eq!(got.label.as_deref(), Some("frequent"));
        assert_eq!(got.time, NameTime::Utc(utc(2017, 10, 29, 2, 45, 0)));
        let got = r.recognize("zfs-auto-snap-2026-11-23-1500").unwrap();
        assert_eq!(got.label, None);
        let local_r = Recognizer::ZfsAutoSnapshot {
            prefix: "zfs-auto-snap".into(),
            utc: false,
        };
        let got = local_r
            .recognize("zfs-auto-snap_daily-2026-11-23-1500")
            .unwrap();
        assert_eq!(got.time, local(2026, 11, 23, 15, 0, 0, Fold::Earlier));
        for bad in [
            "zfs-auto-snap_hourly-2026-11-23-2500",
            "zfs-auto-snap_hourly-2026-11-23-150",
            "zfs-auto-snap_-2026-11-23-1500",
            "zfs-auto-snaphourly-2026-11-23-1500",
            "zfs-auto-snap_hourly2026-11-23-1500",
            "zfs-auto-snap_hourly-2026-11-23-15h0x",
            "zfs-auto-snap",
        ] {
            assert_eq!(r.recognize(bad), None, "{bad}");
        }
    }

    #[test]
    fn zrepl_names() {
        let r = Recognizer::zrepl();
        let t = utc(2026, 11, 23, 15, 0, 0);
        for (name, want) in [
            ("zrepl_20261123_150000_000", t),
            ("zrepl_2026-11-23_15:00:00", t),
            ("zrepl_2026-11-23T15:00:00.000Z", t),
            ("zrepl_2026-11-23T16:00:00.000_0100", t),
            ("zrepl_2026-11-23T10:00:00.000-0500", t),
            ("zrepl_1795446000", t),
        ] {
            let got = r.recognize(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(got.time, NameTime::Utc(want), "{name}");
            assert_eq!(got.label, None);
        }
        for bad in [
            "zrepl_20261123_150000",
            "zrepl_20261123_150000_00x",
            "zrepl_2026-11-23T15:00:00.000+0100",
            "zrepl_2026-11-23T15:00:00.000_2400",
            "zrepl_",
            "zrepl_99999999999999999999",
        ] {
            assert_eq!(r.recognize(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso8601_names() {
        let t = utc(2026, 11, 23, 15, 0, 0);
        let bare = Recognizer::iso8601();
        for name in [
            "2026-11-23T15:00:00Z",
            "20261123T150000Z",
            "2026-11-23T150000Z",
        ] {
            assert_eq!(
                bare.recognize(name).unwrap().time,
                NameTime::Utc(t),
                "{name}"
            );
        }
        let frac = bare.recognize("2026-11-23T15:00:00.25Z").unwrap();
        assert_eq!(
            frac.time,
            NameTime::Utc(t + chrono::TimeDelta::milliseconds(250))
        );
        let pre = Recognizer::Iso8601 {
            prefix: "backup-".into(),
        };
        assert_eq!(
            pre.recognize("backup-2026-11-23T150000Z").unwrap().time,
            NameTime::Utc(t)
        );
        for bad in [
            "2026-11-23T15:00:00",
            "2026-11-23 15:00:00Z",
            "2026-11-23T15:00Z",
            "2026-11-23T15:00:00.Z",
            "2026-11-23T15:00:00.1234567890Z",
            "2026-11-31T15:00:00Z",
        ] {
            assert_eq!(bare.recognize(bad), None, "{bad}");
        }
    }

    #[test]
    fn regex_recognizer() {
        let r = Recognizer::Regex {
            pattern: Pattern::new(r"nightly-(?P<label>[a-z]+)-(?P<time>\d{8}-\d{4})").unwrap(),
            format: "%Y%m%d-%H%M".into(),
            utc: false,
        };
        let got = r.recognize("nightly-db-20261123-0230").unwrap();
        assert_eq!(got.label.as_deref(), Some("db"));
        assert_eq!(got.time, local(2026, 11, 23, 2, 30, 0, Fold::Earlier));
        assert_eq!(r.recognize("xnightly-db-20261123-0230"), None);
        assert_eq!(r.recognize("nightly-db-20261323-0230"), None);
        let e = |p: &str| Pattern::new(p).unwrap_err().to_string();
        insta::assert_snapshot!(e(r"snap-\d+"), @r#"invalid snapshot name pattern "snap-\\d+": it has no named group "time", e.g. (?P<time>...)"#);
        assert!(e("(").starts_with(r#"invalid snapshot name pattern "(": regex parse error"#));
        let j = r#"{"kind":"regex","pattern":"s-(?P<time>\\d+)","format":"%s"}"#;
        let parsed: Recognizer = serde_json::from_str(j).unwrap();
        assert_eq!(
            parsed.recognize("s-1795446000").unwrap().time,
            NameTime::Utc(utc(2026, 11, 23, 15, 0, 0))
        );
    }

    #[test]
    fn recognizer_serde() {
        let all = vec![
            Recognizer::zsnap(),
            Recognizer::sanoid(),
            Recognizer::zfs_auto_snapshot(),
            Recognizer::zrepl(),
            Recognizer::iso8601(),
        ];
        let j = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Recognizer>>(&j).unwrap(), all);
        let short: Vec<Recognizer> =
            serde_json::from_str(r#"[{"kind":"sanoid"},{"kind":"zfs_auto_snapshot","utc":false}]"#)
                .unwrap();
        assert_eq!(short[0], Recognizer::sanoid());
        assert_eq!(
            short[1],
            Recognizer::ZfsAutoSnapshot {
                prefix: "zfs-auto-snap".into(),
                utc: false
            }
        );
        assert!(serde_json::from_str::<Recognizer>(r#"{"kind":"sanoid","x":1}"#).is_err());
    }

    #[test]
    fn recognize_any_picks_the_right_tool() {
        assert_eq!(
            recognize_any("zsnap_hourly_20261123T150000Z")
                .unwrap()
                .label
                .as_deref(),
            Some("hourly")
        );
        assert!(matches!(
            recognize_any("autosnap_2026-11-23_15:00:01_daily")
                .unwrap()
                .time,
            NameTime::Local { .. }
        ));
        assert_eq!(
            recognize_any("2026-11-23T15:00:00Z").unwrap().time,
            NameTime::Utc(utc(2026, 11, 23, 15, 0, 0))
        );
        for junk in [
            "",
            "z",
            "zsnap_",
            "autosnap_",
            "zrepl_é",
            "é".repeat(20).as_str(),
            "0000-00-00T00:00:00Z",
            "99999999T999999Z",
        ] {
            assert_eq!(recognize_any(junk), None, "{junk:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = recognize_any(&s);
        }

        #[test]
        fn never_panics_near_formats(
            pre in proptest::sample::select(vec!["zsnap_h_", "autosnap_", "zfs-auto-snap_h-", "zrepl_", ""]),
            s in "[0-9TZ:_.,h+dst-]{0,30}",
        ) {
            let _ = recognize_any(&format!("{pre}{s}"));
        }
    }
}
