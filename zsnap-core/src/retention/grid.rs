//! zrepl's retention grid: `1x1h(keep=all) | 24x1h | 14x1d`.
//!
//! The syntax and the meaning follow zrepl's `grid` keep rule exactly (its
//! `config/retentiongrid.go` parser and `pruning/retentiongrid` fitting); see
//! [`KeepRule::Grid`](super::KeepRule::Grid) for what a grid keeps.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::Span;

/// How many snapshots one interval of a grid keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "zrepl's grid has exactly these two forms, keep=N and keep=all"
)]
pub enum GridKeep {
    /// `keep=all`: every snapshot in the interval.
    All,
    /// `keep=N` (default 1): the N *oldest* snapshots in the interval.
    Oldest(NonZeroU32),
}

impl GridKeep {
    /// `keep=1`, the default.
    pub const ONE: GridKeep = GridKeep::Oldest(NonZeroU32::MIN);
}

/// One `|`-separated part of a grid: `count` adjacent intervals of `length`, each keeping
/// `keep` snapshots (`24x1h`, `1x1h(keep=all)`, `6x30d(keep=2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct GridInterval {
    /// How many adjacent intervals (≥ 1).
    pub count: u32,
    /// The length of each (> 0).
    pub length: Span,
    /// How many snapshots each keeps.
    pub keep: GridKeep,
}

impl GridInterval {
    /// `count` intervals of `length`, each keeping `keep`. Checked when put into a
    /// [`Grid`].
    pub fn new(count: u32, length: Span, keep: GridKeep) -> Self {
        GridInterval {
            count,
            length,
            keep,
        }
    }
}

impl fmt::Display for GridInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.count, self.length)?;
        match self.keep {
            GridKeep::All => f.write_str("(keep=all)"),
            GridKeep::Oldest(n) if n.get() == 1 => Ok(()),
            GridKeep::Oldest(n) => write!(f, "(keep={n})"),
        }
    }
}

/// A zrepl retention grid: adjacent time intervals, each keeping a number of snapshots.
///
/// Written as in zrepl: `|`-separated parts `COUNTxDURATION` with an optional
/// `(keep=N)` or `(keep=all)`; `keep` defaults to 1. Durations use the units `s`, `m`,
/// `h`, `d`, `w` (a superset of zrepl's: `1h30m` is accepted too). As in zrepl, interval
/// lengths may not decrease from one part to the next, unless every earlier part is
/// `keep=all`. `FromStr` and `Display` round-trip (`1w` prints as `7d`).
///
/// # Errors
/// `FromStr` fails with a [`GridError`] naming the part that is wrong.
///
/// # Example
/// ```
/// use zsnap_core::retention::Grid;
/// let g: Grid = "1x1h(keep=all) | 24x1h | 14x1d".parse().unwrap();
/// assert_eq!(g.to_string(), "1x1h(keep=all) | 24x1h | 14x1d");
/// assert_eq!(g.intervals().len(), 3);
///
/// let err = "24x1h | 7xd".parse::<Grid>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"invalid grid "24x1h | 7xd": interval 2 of 2 ("7xd"): invalid duration: a unit without a number"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grid {
    intervals: Vec<GridInterval>,
}

/// Why a grid did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grid {input:?}: {problem}")]
#[non_exhaustive]
pub struct GridError {
    /// The grid, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: GridProblem,
}

/// What is wrong with a grid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GridProblem {
    /// Nothing but blanks.
    #[error(
        "it is empty; expected intervals separated by `|`, e.g. `1x1h(keep=all) | 24x1h | 14x1d`"
    )]
    Empty,
    /// One `|`-separated part is wrong.
    #[error("interval {index} of {of} ({text:?}): {problem}")]
    Interval {
        /// 1-based position of the part.
        index: usize,
        /// Number of parts.
        of: usize,
        /// The part, trimmed.
        text: String,
        /// What is wrong with it.
        problem: IntervalProblem,
    },
    /// A part is shorter than the one before it while an earlier one is not `keep=all`.
    #[error("interval {index} ({length}) is shorter than interval {} ({previous}); interval lengths must not decrease unless every earlier interval is keep=all", index - 1)]
    Decreasing {
        /// 1-based position of the shorter part.
        index: usize,
        /// Its length.
        length: Span,
        /// The length of the part before it.
        previous: Span,
    },
}

/// What is wrong with one part of a grid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntervalProblem {
    /// Not of the form `COUNTxDURATION[(PARAMS)]`.
    #[error("expected COUNTxDURATION with an optional (keep=N) or (keep=all), e.g. `24x1h` or `1x1h(keep=all)`")]
    Format,
    /// `0x…`.
    #[error("the count must be at least 1")]
    CountZero,
    /// The count does not fit in 32 bits.
    #[error("the count is too large")]
    CountTooLarge,
    /// The duration did not parse.
    #[error("invalid duration: {0}")]
    Duration(&'static str),
    /// A zero duration.
    #[error("the duration must be longer than 0s")]
    DurationZero,
    /// A parameter other than `keep=`.
    #[error("unknown parameter {0:?}; only keep=N and keep=all are supported")]
    UnknownParameter(String),
    /// `keep=` with something that is neither a positive number nor `all` (or zrepl's
    /// `-1`).
    #[error("keep must be a whole number of at least 1, or `all` to keep every snapshot of the interval, not {0:?}")]
    BadKeep(String),
}

impl Grid {
    /// A grid of these parts.
    ///
    /// # Errors
    /// When there are none, a count or length is zero, or lengths decrease as described
    /// on [`Grid`].
    pub fn new(intervals: Vec<GridInterval>) -> Result<Self, GridError> {
        let fail = |problem, intervals: &[GridInterval]| GridError {
            input: display_intervals(intervals),
            problem,
        };
        if intervals.is_empty() {
            return Err(fail(GridProblem::Empty, &intervals));
        }
        let of = intervals.len();
        for (i, iv) in intervals.iter().enumerate() {
            let problem = if iv.count == 0 {
                Some(IntervalProblem::CountZero)
            } else if iv.length.seconds() == 0 {
                Some(IntervalProblem::DurationZero)
            } else {
                None
            };
            if let Some(problem) = problem {
                let p = GridProblem::Interval {
                    index: i + 1,
                    of,
                    text: iv.to_string(),
                    problem,
                };
                return Err(fail(p, &intervals));
            }
        }
        if let Some(p) = check_monotonic(&intervals) {
            return Err(fail(p, &intervals));
        }
        Ok(Grid { intervals })
    }

    /// The parts, youngest first.
    pub fn intervals(&self) -> &[GridInterval] {
        &self.intervals
    }
}

/// zrepl rejects a part shorter than the one right before it, unless every part before
/// it keeps all (a leading `keep=all` window may be longer than what follows).
fn check_monotonic(intervals: &[GridInterval]) -> Option<GridProblem> {
    for i in 1..intervals.len() {
        let (prev, cur) = (intervals[i - 1], intervals[i]);
        if cur.length < prev.length && !intervals[..i].iter().all(|p| p.keep == GridKeep::All) {
            return Some(GridProblem::Decreasing {
                index: i + 1,
                length: cur.length,
                previous: prev.length,
            });
        }
    }
    None
}

fn display_intervals(intervals: &[GridInterval]) -> String {
    let parts: Vec<String> = intervals.iter().map(ToString::to_string).collect();
    parts.join(" | ")
}

fn parse_interval(text: &str) -> Result<GridInterval, IntervalProblem> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err(IntervalProblem::Format);
    }
    let rest = rest.trim_start();
    let Some(rest) = rest.strip_prefix('x') else {
        return Err(IntervalProblem::Format);
    };
    let (duration, params) = match rest.find('(') {
        None => (rest, None),
        Some(open) => {
            let inner = rest[open + 1..]
                .trim_end()
                .strip_suffix(')')
                .ok_or(IntervalProblem::Format)?;
            (&rest[..open], Some(inner))
        }
    };
    let duration = duration.trim();
    if duration.is_empty() {
        return Err(IntervalProblem::Format);
    }
    let count: u32 = digits.parse().map_err(|_| IntervalProblem::CountTooLarge)?;
    if count == 0 {
        return Err(IntervalProblem::CountZero);
    }
    let length: Span = duration
        .parse()
        .map_err(|e: crate::duration::SpanError| IntervalProblem::Duration(e.problem))?;
    if length.seconds() == 0 {
        return Err(IntervalProblem::DurationZero);
    }
    let keep = match params {
        None => GridKeep::ONE,
        Some(p) => {
            let p = p.trim();
            let Some(value) = p.strip_prefix("keep=") else {
                return Err(IntervalProblem::UnknownParameter(p.to_owned()));
            };
            let value = value.trim();
            // zrepl reads `keep=-1` as its constant for "all" (any other number below 1
            // passes its parser and then crashes its pruner; here it is an error).
            if value == "all" || value == "-1" {
                GridKeep::All
            } else {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or_else(|| IntervalProblem::BadKeep(value.to_owned()))?;
                GridKeep::Oldest(n)
            }
        }
    };
    Ok(GridInterval {
        count,
        length,
        keep,
    })
}

impl FromStr for Grid {
    type Err = GridError;
    fn from_str(s: &str) -> Result<Self, GridError> {
        let fail = |problem| GridError {
            input: s.to_owned(),
            problem,
        };
        if s.trim().is_empty() {
            return Err(fail(GridProblem::Empty));
        }
        let parts: Vec<&str> = s.split('|').map(str::trim).collect();
        let of = parts.len();
        let mut intervals = Vec::with_capacity(of);
        for (i, part) in parts.iter().enumerate() {
            let iv = parse_interval(part).map_err(|problem| {
                fail(GridProblem::Interval {
                    index: i + 1,
                    of,
                    text: (*part).to_owned(),
                    problem,
                })
            })?;
            intervals.push(iv);
        }
        if let Some(p) = check_monotonic(&intervals) {
            return Err(fail(p));
        }
        Ok(Grid { intervals })
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, iv) in self.intervals.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{iv}")?;
        }
        Ok(())
    }
}

impl Serialize for Grid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
