//! [`NameRegex`]: a compiled regular expression that remembers how it was written.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A regular expression over snapshot short names (the part after `@`), compiled once.
///
/// Syntax is that of the [`regex`] crate (Perl-like, no look-around, no backreferences,
/// Unicode-aware). A pattern matches when it matches *anywhere* in the name, as zrepl's
/// and Go's `MatchString` do: anchor it with `^…$` to match the whole name.
///
/// Two patterns are equal when their source text is equal; a pattern serializes as its
/// source text and `Display` prints it verbatim, so `FromStr` and `Display` round-trip.
///
/// # Errors
/// [`NameRegex::new`] and `FromStr` fail with a [`NameRegexError`] that says what is wrong
/// and where.
///
/// # Example
/// ```
/// use zsnap_core::retention::NameRegex;
/// let p: NameRegex = "^manual_".parse().unwrap();
/// assert!(p.is_match("manual_before_upgrade"));
/// assert!(!p.is_match("zsnap_hourly_20261123T150000Z"));
/// assert_eq!(p.to_string(), "^manual_");
///
/// let err = "zsnap_(hourly".parse::<NameRegex>().unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid regex "zsnap_(hourly": unclosed group (at column 7)"#);
/// ```
#[derive(Clone)]
pub struct NameRegex(regex::Regex);

/// Why a regular expression did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regex {pattern:?}: {problem}")]
#[non_exhaustive]
pub struct NameRegexError {
    /// The pattern, verbatim.
    pub pattern: String,
    /// What is wrong, on one line (the regex crate's diagnosis).
    pub problem: String,
}

impl NameRegex {
    /// Compiles `source`.
    ///
    /// # Errors
    /// When `source` is not a valid regular expression, or compiles to more than the
    /// regex crate's default size limit.
    pub fn new(source: &str) -> Result<Self, NameRegexError> {
        regex::Regex::new(source)
            .map(NameRegex)
            .map_err(|e| NameRegexError {
                pattern: source.to_owned(),
                problem: one_line(source, &e),
            })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the pattern matches anywhere in `name`.
    pub fn is_match(&self, name: &str) -> bool {
        self.0.is_match(name)
    }

    /// The compiled expression.
    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

/// Condenses the regex crate's multi-line diagnosis (pattern, caret line, `error: …`) into
/// one line, because error messages here are one-line fragments.
fn one_line(source: &str, e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let what = text
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.as_str())
                .trim();
            // The caret line sits under the pattern, both indented by four spaces; the
            // column is only meaningful for single-line patterns.
            let column = (!source.contains('\n'))
                .then(|| {
                    text.lines()
                        .find(|l| l.trim_start().starts_with('^'))
                        .and_then(|l| l.find('^'))
                        .and_then(|col| col.checked_sub(4))
                })
                .flatten();
            match column {
                Some(col) => format!("{what} (at column {})", col + 1),
                None => what.to_owned(),
            }
        }
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than the size limit of {limit} bytes")
        }
        other => other.to_string().replace('\n', " "),
    }
}

impl FromStr for NameRegex {
    type Err = NameRegexError;
    fn from_str(s: &str) -> Result<Self, NameRegexError> {
        NameRegex::new(s)
    }
}

impl PartialEq for NameRegex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for NameRegex {}

impl Hash for NameRegex {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for NameRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NameRegex").field(&self.as_str()).finish()
    }
}

impl fmt::Display for NameRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NameRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NameRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        NameRegex::new(&s).map_err(serde::de::Error::custom)
    }
}
