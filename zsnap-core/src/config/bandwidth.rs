//! [`Bandwidth`]: a transfer rate limit as written in a config (`bandwidth = "10MiB/s"`).
//!
//! # Syntax
//! A whole number, an optional unit, and an optional `/s`: `10MiB/s`, `10M`, `500KiB/s`,
//! `1G/s`, `65536`. Units are **binary bytes**, as mbuffer and syncoid's
//! `--target-bwlimit` read them: `K` and `KiB` are 1024 bytes, `M`/`MiB` 1024², `G`/`GiB`
//! 1024³, `T`/`TiB` 1024⁴ (the single letters also in lower case, as syncoid takes
//! `10m`); `B` or nothing is bytes. `KB`, `MB`, `kbit`, `Mbps` and the like are refused
//! rather than guessed (SI or binary? bits or bytes?). Zero is refused: a transfer that
//! may move nothing never ends; leave `bandwidth` out for no limit.
//!
//! [`Display`](fmt::Display) prints the largest unit that divides the rate exactly, with
//! `/s` (`10MiB/s`, `1536KiB/s`, `100B/s`), which parses back to the same value.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A rate limit in bytes per second (at least 1): a whole number, an optional binary
/// unit (`K`/`KiB` = 1024, `M`/`MiB`, `G`/`GiB`, `T`/`TiB`; `B` or none for bytes) and
/// an optional `/s`. SI units, bits and zero are refused.
///
/// # Example
/// ```
/// use zsnap_core::config::Bandwidth;
/// let b: Bandwidth = "10MiB/s".parse().unwrap();
/// assert_eq!(b.bytes_per_second(), 10 * 1024 * 1024);
/// assert_eq!("10m".parse::<Bandwidth>().unwrap(), b);
/// assert_eq!("1.5M/s".parse::<Bandwidth>().unwrap_err().to_string(),
///     "\"1.5M/s\" is not a bandwidth: expected a whole number; write 1536KiB/s instead of 1.5MiB/s");
/// assert_eq!("1536K".parse::<Bandwidth>().unwrap().to_string(), "1536KiB/s");
/// assert!("10MB/s".parse::<Bandwidth>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// A limit of `bytes_per_second`; `None` for zero.
    pub fn new(bytes_per_second: u64) -> Option<Self> {
        (bytes_per_second > 0).then_some(Bandwidth(bytes_per_second))
    }

    /// The limit in bytes per second.
    pub fn bytes_per_second(self) -> u64 {
        self.0
    }
}

/// Why a bandwidth did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a bandwidth: {problem}")]
#[non_exhaustive]
pub struct BandwidthError {
    /// The input, verbatim.
    pub input: String,
    /// What is wrong.
    pub problem: String,
}

/// The units [`Bandwidth`] prints, largest first, with their power of 1024.
const UNITS: [(&str, u32); 5] = [("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1), ("B", 0)];

impl FromStr for Bandwidth {
    type Err = BandwidthError;
    fn from_str(s: &str) -> Result<Self, BandwidthError> {
        let fail = |problem: String| BandwidthError {
            input: s.to_owned(),
            problem,
        };
        let body = s.strip_suffix("/s").unwrap_or(s);
        let digits = body.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = body.split_at(digits);
        if num.is_empty() {
            return Err(fail(
                "expected a whole number of bytes per second, such as \"10MiB/s\"".to_owned(),
            ));
        }
        if unit.starts_with('.') {
            return Err(fail(
                "expected a whole number; write 1536KiB/s instead of 1.5MiB/s".to_owned(),
            ));
        }
        let power = match unit {
            "" | "B" => 0,
            "K" | "k" | "KiB" => 1,
            "M" | "m" | "MiB" => 2,
            "G" | "g" | "GiB" => 3,
            "T" | "t" | "TiB" => 4,
            _ => {
                return Err(fail(format!(
                    "unknown unit {unit:?}; zsnap reads binary bytes per second: B, K or KiB (1024), M or MiB, G or GiB, T or TiB, as in \"10MiB/s\" (SI units and bits are not accepted)"
                )))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| fail("the number is too large".to_owned()))?;
        let bytes = 1024u64
            .checked_pow(power)
            .and_then(|m| n.checked_mul(m))
            .ok_or_else(|| fail("the rate is too large".to_owned()))?;
        Bandwidth::new(bytes).ok_or_else(|| {
            fail(
                "a limit of 0 would never finish a transfer; leave bandwidth out for no limit"
                    .to_owned(),
            )
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, m) = UNITS
            .iter()
            .map(|(unit, power)| (unit, 1024u64.pow(*power)))
            .find(|(_, m)| self.0.is_multiple_of(*m))
            .unwrap_or((&"B", 1));
        write!(f, "{}{unit}/s", self.0 / m)
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
