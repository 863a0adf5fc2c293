//! Fixed-length durations as users write them in configs: `90s`, `15m`, `1h30m`, `7d`, `2w`.
//!
//! Months and years are not fixed lengths and are deliberately not accepted here; the
//! calendar rules (`monthly = 12`) handle them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative, whole-second duration.
///
/// # Example
/// ```
/// use zsnap_core::duration::Span;
/// let s: Span = "1h30m".parse().unwrap();
/// assert_eq!(s.seconds(), 5400);
/// assert_eq!(s.to_string(), "1h30m");
/// assert_eq!("2w".parse::<Span>().unwrap().to_string(), "14d");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(u64);

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {problem}; expected e.g. \"90s\", \"15m\", \"1h30m\", \"7d\" or \"2w\"")]
#[non_exhaustive]
pub struct SpanError {
    /// The input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: &'static str,
}

impl Span {
    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Span(secs)
    }

    /// Length in seconds.
    pub const fn seconds(self) -> u64 {
        self.0
    }

    /// As a chrono duration.
    pub fn to_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.0).unwrap_or(i64::MAX / 1000))
    }
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(s: &str) -> Result<Self, SpanError> {
        let fail = |problem| SpanError {
            input: s.to_owned(),
            problem,
        };
        let t = s.trim();
        if t.is_empty() {
            return Err(fail("it is empty"));
        }
        let mut total: u64 = 0;
        let mut num: Option<u64> = None;
        let mut last_unit = u64::MAX;
        for c in t.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = num.unwrap_or(0);
                num = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                        .ok_or_else(|| fail("the number is too large"))?,
                );
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                ' ' => continue,
                _ => return Err(fail("unknown unit (use s, m, h, d or w)")),
            };
            let n = num.take().ok_or_else(|| fail("a unit without a number"))?;
            if unit >= last_unit {
                return Err(fail("units must go from largest to smallest, each once"));
            }
            last_unit = unit;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| fail("the number is too large"))?;
        }
        if num.is_some() {
            return Err(fail("a number without a unit"));
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, suffix) in [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
            if rest >= unit {
                write!(f, "{}{}", rest / unit, suffix)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, secs, back) in [
            ("90s", 90, "1m30s"),
            ("15m", 900, "15m"),
            ("1h30m", 5400, "1h30m"),
            ("7d", 604_800, "7d"),
            ("2w", 1_209_600, "14d"),
            ("1d 2h", 93_600, "1d2h"),
            ("0s", 0, "0s"),
        ] {
            let span: Span = s.parse().unwrap();
            assert_eq!(span.seconds(), secs, "{s}");
            assert_eq!(span.to_string(), back);
            assert_eq!(back.parse::<Span>().unwrap(), span);
        }
    }

    #[test]
    fn error_messages() {
        let e = |s: &str| s.parse::<Span>().unwrap_err().to_string();
        insta::assert_snapshot!(e(""), @r#"invalid duration "": it is empty; expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        insta::assert_snapshot!(e("10"), @r#"invalid duration "10": a number without a unit; expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        insta::assert_snapshot!(e("1y"), @r#"invalid duration "1y": unknown unit (use s, m, h, d or w); expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        insta::assert_snapshot!(e("h"), @r#"invalid duration "h": a unit without a number; expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        insta::assert_snapshot!(e("1m1h"), @r#"invalid duration "1m1h": units must go from largest to smallest, each once; expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
        insta::assert_snapshot!(e("99999999999999999999s"), @r#"invalid duration "99999999999999999999s": the number is too large; expected e.g. "90s", "15m", "1h30m", "7d" or "2w""#);
    }
}
