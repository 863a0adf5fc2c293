//! The fake's send streams and resume tokens.
//!
//! A stream is a sequence of sections, one per snapshot sent, then `DONE\n`:
//!
//! ```text
//! ZFAKE1 {"snapshot":…,"guid":…,"from_guid":…,"total":N,"offset":K,…}\n
//! <N-K payload bytes, a pattern derived from the guid>
//! END <fnv-1a 64 of the header line and payload, 16 hex digits>\n
//! ```
//!
//! The payload makes streams a plausible size, so a fault "at byte K" lands in the middle
//! of a snapshot; because the pattern is known, a receiver can tell how many payload
//! bytes arrived intact, which is what a resume token records.

use std::io::Write as _;

use serde::{Deserialize, Serialize};
use zsnap_core::{DatasetKind, Guid, ShortName};

const MAGIC: &[u8] = b"ZFAKE1 ";
const END: &[u8] = b"END ";
const DONE: &[u8] = b"DONE\n";
/// The length of the end marker every stream finishes with.
pub(crate) const DONE_LEN: usize = DONE.len();

/// What a section says about the snapshot it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Section {
    /// Source dataset (full name), for messages and tokens.
    pub dataset: String,
    /// Kind of the source dataset.
    pub kind: DatasetKind,
    /// The snapshot's short name.
    pub snapshot: ShortName,
    /// Its guid.
    pub guid: Guid,
    /// Its creation, epoch seconds.
    pub creation: i64,
    /// The base of an incremental; `None` for a full stream.
    pub from_guid: Option<Guid>,
    /// Raw (`-w`).
    pub raw: bool,
    /// The source's encryption when raw.
    pub encryption: Option<String>,
    /// Payload bytes of the whole snapshot.
    pub total: u64,
    /// Payload bytes already received before (a resumed send).
    pub offset: u64,
    /// A resumed send (`zfs send -t`).
    pub resume: bool,
}

/// The payload byte at absolute position `p` of the snapshot with this guid.
fn pattern(guid: Guid, p: u64) -> u8 {
    let x = guid.0 ^ (p / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x.to_le_bytes()[(p % 8) as usize]
}

fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Writes a whole stream.
pub(crate) fn encode(sections: &[Section]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sections {
        let mut header = MAGIC.to_vec();
        header.extend(serde_json::to_vec(s).expect("a section always serializes"));
        header.push(b'\n');
        let mut hash = FNV_START;
        fnv(&mut hash, &header);
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend((s.offset..s.total).map(|p| pattern(s.guid, p)));
        fnv(&mut hash, &out[start..]);
        out.extend_from_slice(END);
        writeln!(out, "{hash:016x}").expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(DONE);
    out
}

/// How reading a stream went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A complete section.
    Section(Section),
    /// The stream ended (or was corrupt) inside this section's payload or trailer;
    /// `good` payload bytes (counted from the section's `offset`) arrived intact.
    Partial {
        section: Section,
        good: u64,
        corrupt: bool,
    },
    /// Not a stream at all, or a broken header.
    Garbage,
    /// The stream ended between sections without `DONE`.
    Truncated,
    /// `DONE`.
    Done,
}

/// Reads sections one at a time.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// The next section, or how the stream ends.
    pub(crate) fn next_section(&mut self) -> Parsed {
        let rest = &self.bytes[self.pos..];
        if rest.is_empty() {
            return Parsed::Truncated;
        }
        if rest.starts_with(DONE) {
            return Parsed::Done;
        }
        if DONE.starts_with(rest) {
            return Parsed::Truncated;
        }
        if !rest.starts_with(MAGIC) {
            return if MAGIC.starts_with(rest) {
                Parsed::Truncated
            } else {
                Parsed::Garbage
            };
        }
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            return Parsed::Truncated;
        };
        let header = &rest[..=nl];
        let Ok(section) = serde_json::from_slice::<Section>(&header[MAGIC.len()..nl]) else {
            return Parsed::Garbage;
        };
        if section.offset > section.total {
            return Parsed::Garbage;
        }
        let mut hash = FNV_START;
        fnv(&mut hash, header);
        let payload_len = section.total - section.offset;
        let body = &rest[nl + 1..];
        let avail = body
            .len()
            .min(usize::try_from(payload_len).unwrap_or(usize::MAX));
        let payload = &body[..avail];
        let good = payload
            .iter()
            .enumerate()
            .position(|(i, b)| *b != pattern(section.guid, section.offset + i as u64))
            .unwrap_or(avail) as u64;
        if good < avail as u64 {
            return Parsed::Partial {
                section,
                good,
                corrupt: true,
            };
        }
        if (avail as u64) < payload_len {
            return Parsed::Partial {
                section,
                good,
                corrupt: false,
            };
        }
        fnv(&mut hash, payload);
        let trailer = &body[avail..];
        let want = format!("END {hash:016x}\n");
        if trailer.len() < want.len() {
            let corrupt = !want.as_bytes().starts_with(trailer);
            return Parsed::Partial {
                section,
                good,
                corrupt,
            };
        }
        if &trailer[..want.len()] != want.as_bytes() {
            return Parsed::Partial {
                section,
                good,
                corrupt: true,
            };
        }
        self.pos += nl + 1 + avail + want.len();
        Parsed::Section(section)
    }
}

/// Checks a whole stream the fake wrote: every section whole and the end marker there.
/// Returns the snapshot and base guids of the first section.
pub(crate) fn check(bytes: &[u8]) -> Result<(Guid, Option<Guid>), String> {
    let mut reader = Reader::new(bytes);
    let mut first = None;
    loop {
        match reader.next_section() {
            Parsed::Section(s) => {
                first.get_or_insert((s.guid, s.from_guid));
            }
            Parsed::Done => {
                return first.ok_or_else(|| "a stream of no snapshot".to_owned());
            }
            Parsed::Partial {
                section,
                good,
                corrupt,
            } => {
                let what = if corrupt { "corrupt" } else { "truncated" };
                return Err(format!(
                    "the stream of {}@{} is {what} after {good} of its {} payload bytes",
                    section.dataset,
                    section.snapshot,
                    section.total - section.offset
                ));
            }
            Parsed::Garbage => return Err("not a send stream (garbage)".to_owned()),
            Parsed::Truncated => {
                return Err("the stream stops before its end marker: truncated".to_owned())
            }
        }
    }
}

/// What a resume token carries (the fake's own format: `1-fake-<hex of JSON>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Token {
    /// Full name of the snapshot on the source.
    pub toname: String,
    /// Its guid.
    pub toguid: Guid,
    /// The incremental base, if any.
    pub fromguid: Option<Guid>,
    /// Payload bytes received.
    pub bytes: u64,
    /// Payload bytes of the whole snapshot.
    pub total: u64,
    /// The send was raw.
    pub raw: bool,
}

const TOKEN_PREFIX: &str = "1-fake-";

impl Token {
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a token always serializes");
        let mut s = String::from(TOKEN_PREFIX);
        for b in json {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub(crate) fn decode(s: &str) -> Option<Token> {
        let hex = s.strip_prefix(TOKEN_PREFIX)?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        serde_json::from_slice(&bytes?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(guid: u64, total: u64) -> Section {
        Section {
            dataset: "src/a".to_owned(),
            kind: DatasetKind::Filesystem,
            snapshot: "s1".parse().expect("valid"),
            guid: Guid(guid),
            creation: 1_700_000_000,
            from_guid: None,
            raw: false,
            encryption: None,
            total,
            offset: 0,
            resume: false,
        }
    }

    #[test]
    fn round_trip() {
        let a = section(7, 1000);
        let mut b = section(8, 300);
        b.from_guid = Some(Guid(7));
        let bytes = encode(&[a.clone(), b.clone()]);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.next_section(), Parsed::Section(a));
        assert_eq!(r.next_section(), Parsed::Section(b));
        assert_eq!(r.next_section(), Parsed::Done);
    }

    #[test]
    fn every_truncation_is_detected_and_counts_good_bytes() {
        let a = section(7, 200);
        let bytes = encode(std::slice::from_ref(&a));
        let header_len = bytes.iter().position(|b| *b == b'\n').expect("a header") + 1;
        for cut in 0..bytes.len() {
            let mut r = Reader::new(&bytes[..cut]);
            match r.next_section() {
                Parsed::Truncated => assert!(cut < header_len),
                Parsed::Partial { good, corrupt, .. } => {
                    assert!(!corrupt, "cut {cut}");
                    assert_eq!(good, (cut - header_len).min(200) as u64);
                }
                Parsed::Section(_) => assert_eq!(r.next_section(), Parsed::Truncated),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn corruption_is_detected_where_it_starts() {
        let a = section(7, 200);
        let mut bytes = encode(std::slice::from_ref(&a));
        let header_len = bytes.iter().position(|b| *b == b'\n').expect("a header") + 1;
        bytes[header_len + 50] ^= 0xff;
        match Reader::new(&bytes).next_section() {
            Parsed::Partial { good, corrupt, .. } => assert_eq!((good, corrupt), (50, true)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Reader::new(b"\x00garbage\n").next_section(),
            Parsed::Garbage
        );
    }

    #[test]
    fn tokens_round_trip() {
        let t = Token {
            toname: "src/a b@s 1".to_owned(),
            toguid: Guid(5),
            fromguid: Some(Guid(4)),
            bytes: 10,
            total: 20,
            raw: true,
        };
        let s = t.encode();
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        assert_eq!(Token::decode(&s), Some(t));
        assert_eq!(Token::decode("1-fake-zz"), None);
        assert_eq!(Token::decode("1-abc-def"), None);
    }
}
