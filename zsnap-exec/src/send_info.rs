//! What `zfs send` says before sending: the size of a stream (`zfs send -nvP …`) and
//! the contents of a resume token (`zfs send -nvP -t TOKEN`).
//!
//! Both are pure parsers of the dry run's standard output, tested against output
//! captured from real OpenZFS 2.3 (`tests/fixtures/send/`). The argv of every
//! `zfs send` and its dry runs is built in one place beside the real backend
//! ([`send_argv`](crate::cli::send_argv)), so the two agree.
//!
//! # The output they read
//! ```text
//! resume token contents:            (only with -t)
//! nvlist version: 0
//! <TAB>fromguid = 0xbe4d271ee04ed7e2    (incremental tokens only)
//! <TAB>object = 0x3
//! <TAB>offset = 0x40000
//! <TAB>bytes = 0x60d90
//! <TAB>toguid = 0x660f9d3861d27e42
//! <TAB>toname = src/a@s2
//! <TAB>rawok = 1                        (raw tokens; also compressok, embedok, …)
//! incremental<TAB>src/a@s1<TAB>src/a@s2<TAB>690848
//! size<TAB>690848
//! ```
//! Columns are separated by tabs, which ZFS names cannot contain. A stale token (its
//! snapshot or its incremental source gone on the source) still prints its contents,
//! then `zfs` fails: [`parse_resume_token`] reads the contents either way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zsnap_core::{Guid, SnapshotName};

/// Whether one stream of a dry run is full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "a send stream is full or incremental"
)]
pub enum StreamKind {
    /// `full<TAB>TO<TAB>BYTES`.
    Full,
    /// `incremental<TAB>FROM<TAB>TO<TAB>BYTES`.
    Incremental,
}

/// One stream of a `zfs send -nvP` dry run (a `-I` range prints one per snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EstimatedStream {
    /// Full or incremental.
    pub kind: StreamKind,
    /// The incremental source as printed: a full snapshot or bookmark name, or (inside a
    /// `-I` range) the short name of the previous snapshot.
    pub from: Option<String>,
    /// The snapshot sent, as printed.
    pub to: String,
    /// Its estimated size in bytes.
    pub bytes: u64,
}

/// What `zfs send -nvP` estimates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendEstimate {
    /// The streams, in sending order.
    pub streams: Vec<EstimatedStream>,
    /// The `size` line: the estimated bytes of the whole send.
    pub total: u64,
}

/// The contents of a `receive_resume_token`, as `zfs send -nvP -t TOKEN` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResumeToken {
    /// `toname`: the snapshot the interrupted receive was receiving, on the source.
    pub toname: SnapshotName,
    /// `toguid`: its guid, which the finished receive gives the target's snapshot.
    pub toguid: Guid,
    /// `fromguid`: the guid of the incremental source; `None` for a full send.
    pub fromguid: Option<Guid>,
    /// `bytes`: how many stream bytes the target had received.
    pub bytes: Option<u64>,
    /// `rawok = 1`: the interrupted send was raw (`-w`), and so is the resumed one.
    pub raw: bool,
    /// Every field verbatim, by name (`object`, `offset`, `compressok`, …).
    pub fields: BTreeMap<String, String>,
}

/// Output of `zfs send -nvP` that zsnap cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendInfoParseError {
    /// A line that is none of the known ones.
    #[error("unexpected line {number} {line:?}")]
    Line {
        /// 1-based line number.
        number: usize,
        /// The line (at most 200 characters).
        line: String,
    },
    /// No `size` line.
    #[error("no size line")]
    NoSize,
    /// No `resume token contents:` section.
    #[error("no resume token contents")]
    NoToken,
    /// The token contents lack a field or have an unreadable one.
    #[error("resume token field {field} is missing or unreadable")]
    TokenField {
        /// The field.
        field: &'static str,
    },
}

fn bad_line(number: usize, line: &str) -> SendInfoParseError {
    SendInfoParseError::Line {
        number,
        line: line.chars().take(200).collect(),
    }
}

/// Splits the output into the token contents (`key = value` fields, when present) and the
/// other lines (with their 1-based numbers).
type Sections<'a> = (Option<Vec<(&'a str, &'a str)>>, Vec<(usize, &'a str)>);

fn sections(stdout: &str) -> Result<Sections<'_>, SendInfoParseError> {
    let mut fields: Option<Vec<(&str, &str)>> = None;
    let mut rest = Vec::new();
    let mut in_token = false;
    for (i, line) in stdout.lines().enumerate() {
        let number = i + 1;
        if line == "resume token contents:" {
            if fields.is_some() {
                return Err(bad_line(number, line));
            }
            fields = Some(Vec::new());
            in_token = true;
            continue;
        }
        if in_token {
            if line.starts_with("nvlist version: ") {
                continue;
            }
            if let Some(field) = line.strip_prefix('\t') {
                let (k, v) = field
                    .split_once(" = ")
                    .ok_or_else(|| bad_line(number, line))?;
                fields
                    .as_mut()
                    .expect("in_token is only set with the fields")
                    .push((k, v));
                continue;
            }
            in_token = false;
        }
        rest.push((number, line));
    }
    Ok((fields, rest))
}

fn number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Reads the output of `zfs send -nvP …` (with or without `-t`).
///
/// # Errors
/// A line that is neither a token field, a `full`/`incremental` stream nor `size`, or no
/// `size` line.
///
/// # Example
/// A `-I` range prints each snapshot, the previous one by its short name; names may hold
/// spaces:
/// ```
/// use zsnap_exec::send_info::parse_send_estimate;
/// let e = parse_send_estimate(
///     "incremental\ts1\tsrc/a@s2\t1087536\nincremental\ts2\tsrc/a@s 3\t624\nsize\t1088160\n",
/// ).unwrap();
/// assert_eq!(e.total, 1088160);
/// assert_eq!(e.streams[1].to, "src/a@s 3");
/// assert_eq!(e.streams[1].from.as_deref(), Some("s2"));
/// ```
pub fn parse_send_estimate(stdout: &str) -> Result<SendEstimate, SendInfoParseError> {
    let (_, lines) = sections(stdout)?;
    let mut streams = Vec::new();
    let mut total = None;
    for (n, line) in lines {
        let cols: Vec<&str> = line.split('\t').collect();
        let bytes = |s: &str| s.parse::<u64>().map_err(|_| bad_line(n, line));
        match cols.as_slice() {
            ["full", to, b] => streams.push(EstimatedStream {
                kind: StreamKind::Full,
                from: None,
                to: (*to).to_owned(),
                bytes: bytes(b)?,
            }),
            ["incremental", from, to, b] => streams.push(EstimatedStream {
                kind: StreamKind::Incremental,
                from: Some((*from).to_owned()),
                to: (*to).to_owned(),
                bytes: bytes(b)?,
            }),
            ["size", b] if total.is_none() => total = Some(bytes(b)?),
            [""] => {}
            _ => return Err(bad_line(n, line)),
        }
    }
    Ok(SendEstimate {
        streams,
        total: total.ok_or(SendInfoParseError::NoSize)?,
    })
}

/// Reads the token contents from the output of `zfs send -nvP -t TOKEN`, whether or not
/// the command then failed (a stale token prints its contents first). Lines after the
/// contents are not read.
///
/// # Errors
/// No contents, or `toname`/`toguid` missing or unreadable.
///
/// # Example
/// ```
/// use zsnap_exec::send_info::parse_resume_token;
/// let t = parse_resume_token(
///     "resume token contents:\nnvlist version: 0\n\tfromguid = 0x10\n\tbytes = 0x40c70\n\ttoguid = 0xbe4d271ee04ed7e2\n\ttoname = src/a b@s 1\n",
/// ).unwrap();
/// assert_eq!(t.toname.to_string(), "src/a b@s 1");
/// assert_eq!(t.toguid.0, 0xbe4d271ee04ed7e2);
/// assert_eq!(t.fromguid.map(|g| g.0), Some(16));
/// assert_eq!(t.bytes, Some(265328));
/// assert!(!t.raw);
/// ```
pub fn parse_resume_token(stdout: &str) -> Result<ResumeToken, SendInfoParseError> {
    let (fields, _) = sections(stdout)?;
    let fields: BTreeMap<String, String> = fields
        .ok_or(SendInfoParseError::NoToken)?
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let get = |f: &'static str| fields.get(f).map(String::as_str);
    let field = |f: &'static str| SendInfoParseError::TokenField { field: f };
    let toname: SnapshotName = get("toname")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| field("toname"))?;
    let toguid = get("toguid")
        .and_then(number)
        .map(Guid)
        .ok_or_else(|| field("toguid"))?;
    let fromguid = match get("fromguid") {
        None => None,
        Some(v) => Some(Guid(number(v).ok_or_else(|| field("fromguid"))?)),
    };
    let bytes = match get("bytes") {
        None => None,
        Some(v) => Some(number(v).ok_or_else(|| field("bytes"))?),
    };
    let raw = get("rawok").is_some_and(|v| v != "0");
    Ok(ResumeToken {
        toname,
        toguid,
        fromguid,
        bytes,
        raw,
        fields,
    })
}

/// A short form of a token for messages: its first 24 characters, then `…`.
pub fn token_excerpt(token: &str) -> String {
    let mut s: String = token.chars().take(24).collect();
    if token.chars().count() > 24 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_and_garbage() {
        let e = parse_send_estimate("full\tsrc/a@s1\t572752\nsize\t572752\n").expect("valid");
        assert_eq!(e.total, 572_752);
        assert_eq!(e.streams.len(), 1);
        assert_eq!(e.streams[0].kind, StreamKind::Full);
        for bad in [
            "",
            "full\tsrc/a@s1\t572752\n",
            "size\tmany\n",
            "full\tsrc/a@s1\n",
            "size\t1\nsize\t2\n",
            "send from @s1 to src/a@s2 estimated size is 799K\ntotal estimated size is 799K\n",
        ] {
            assert!(parse_send_estimate(bad).is_err(), "{bad:?}");
        }
        insta::assert_snapshot!(
            parse_send_estimate("total estimated size is 799K\n").unwrap_err(),
            @r#"unexpected line 1 "total estimated size is 799K""#
        );
        insta::assert_snapshot!(parse_send_estimate("").unwrap_err(), @"no size line");
    }

    #[test]
    fn token_errors() {
        insta::assert_snapshot!(parse_resume_token("full\tx@y\t1\nsize\t1\n").unwrap_err(), @"no resume token contents");
        let no_guid = "resume token contents:\nnvlist version: 0\n\ttoname = src/a@s\n";
        insta::assert_snapshot!(parse_resume_token(no_guid).unwrap_err(), @"resume token field toguid is missing or unreadable");
        let bad_name =
            "resume token contents:\nnvlist version: 0\n\ttoguid = 0x1\n\ttoname = src/a\n";
        assert!(parse_resume_token(bad_name).is_err());
        let bad_field = "resume token contents:\nnvlist version: 0\n\ttoguid 0x1\n";
        assert!(parse_resume_token(bad_field).is_err());
    }

    #[test]
    fn token_contents_end_at_the_first_unindented_line() {
        let out = "resume token contents:\nnvlist version: 0\n\ttoguid = 0x2\n\ttoname = src/a@s\n\tcompressok = 1\n\trawok = 1\nfull\tsrc/a@s\t10\nsize\t10\n";
        let t = parse_resume_token(out).expect("valid");
        assert!(t.raw);
        assert_eq!(t.fields.get("compressok").map(String::as_str), Some("1"));
        assert_eq!(parse_send_estimate(out).expect("valid").total, 10);
    }

    #[test]
    fn token_excerpts_are_short() {
        assert_eq!(token_excerpt("1-abc"), "1-abc");
        assert_eq!(
            token_excerpt(&"x".repeat(30)),
            format!("{}…", "x".repeat(24))
        );
    }
}
