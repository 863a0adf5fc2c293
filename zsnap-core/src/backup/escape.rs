//! The escaping of names inside stream object keys.
//!
//! Every byte outside `[A-Za-z0-9_-]` is written `%XX` with two uppercase hex digits, so
//! `tank/home` becomes `tank%2Fhome` and `daily.0` becomes `daily%2E0`. Only that
//! canonical form is read back: a literal byte that should have been escaped, an escape
//! of a byte that should not have been, lowercase hex, or a truncated escape is an
//! error. That is what makes every parsed key print back to exactly the same text.

use std::fmt::Write as _;

/// Whether `b` is written as itself.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Appends the escaped form of `s` to `out`.
pub(crate) fn encode_into(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The escaped form of `s`.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    encode_into(s, &mut out);
    out
}

/// What is wrong with an escaped field, at a byte offset of the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EscapeProblem {
    /// A byte that must be escaped appears as itself.
    Unescaped { ch: char, position: usize },
    /// `%` not followed by two uppercase hex digits, or escaping a byte that is written
    /// as itself, or a byte outside ASCII.
    BadEscape { position: usize },
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The text an escaped field stands for.
pub(crate) fn decode(field: &str) -> Result<String, EscapeProblem> {
    let bytes = field.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let value = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| h * 16 + l),
                _ => None,
            };
            match value {
                Some(v) if v.is_ascii() && !plain(v) => out.push(char::from(v)),
                _ => return Err(EscapeProblem::BadEscape { position: i }),
            }
            i += 3;
        } else if plain(b) {
            out.push(char::from(b));
            i += 1;
        } else {
            let ch = field[i..].chars().next().unwrap_or('\u{fffd}');
            return Err(EscapeProblem::Unescaped { ch, position: i });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_non_canonical_forms() {
        for s in ["tank/home", "a b:c.d", "x_y-z", "", "%"] {
            assert_eq!(decode(&encode(s)).as_deref(), Ok(s));
        }
        assert_eq!(encode("tank/my data.1"), "tank%2Fmy%20data%2E1");
        assert_eq!(
            decode("a%2f"),
            Err(EscapeProblem::BadEscape { position: 1 })
        );
        assert_eq!(
            decode("a%41"),
            Err(EscapeProblem::BadEscape { position: 1 })
        );
        assert_eq!(decode("a%2"), Err(EscapeProblem::BadEscape { position: 1 }));
        assert_eq!(decode("%FF"), Err(EscapeProblem::BadEscape { position: 0 }));
        assert_eq!(
            decode("a.b"),
            Err(EscapeProblem::Unescaped {
                ch: '.',
                position: 1
            })
        );
        assert_eq!(
            decode("aé"),
            Err(EscapeProblem::Unescaped {
                ch: 'é',
                position: 1
            })
        );
    }
}
