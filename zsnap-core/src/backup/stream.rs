//! Stream object names: what a stored send stream is, readable from its key alone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::escape::{self, EscapeProblem};
use crate::zfs_names::{DatasetName, NameError, ShortName, SnapshotName};

/// What every stream object's name ends in (before [`ZSTD_SUFFIX`], when compressed).
pub const STREAM_SUFFIX: &str = ".zfs";

/// What the name of a zstd-compressed stream object ends in, after [`STREAM_SUFFIX`].
pub const ZSTD_SUFFIX: &str = ".zst";

/// What a sidecar's key adds to its stream object's key.
pub const SIDECAR_SUFFIX: &str = ".json";

/// The longest file or directory name most filesystems accept, in bytes; every `/`-part
/// of a key (the sidecar's included) must fit.
pub const MAX_KEY_COMPONENT: usize = 255;

/// How the stored bytes of a stream are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compression {
    /// The bytes `zfs send` wrote, as they are.
    #[default]
    None,
    /// A zstd frame of them.
    Zstd,
}

impl Compression {
    /// `none` or `zstd`, as sidecars and configs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
        }
    }

    /// What the stream object's name carries after [`STREAM_SUFFIX`].
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Zstd => ZSTD_SUFFIX,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compression name that is neither `none` nor `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {input:?}: expected \"none\" or \"zstd\"")]
#[non_exhaustive]
pub struct CompressionError {
    /// The input, verbatim.
    pub input: String,
}

impl FromStr for Compression {
    type Err = CompressionError;
    fn from_str(s: &str) -> Result<Self, CompressionError> {
        match s {
            "none" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(CompressionError {
                input: s.to_owned(),
            }),
        }
    }
}

/// Whether a stream holds a whole snapshot or the changes since a parent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_enums,
    reason = "zfs send writes exactly full and incremental streams"
)]
pub enum StreamKind {
    /// `zfs send SNAP`: receivable into nothing.
    Full,
    /// `zfs send -i PARENT SNAP`: receivable onto the parent (same guid).
    Incremental {
        /// The short name of the parent snapshot when the stream was written.
        parent: ShortName,
    },
}

/// The name of one stored send stream, which is also its object key below the store's
/// root: `DATASET/TIME_SNAPSHOT.KIND.zfs[.zst]`.
///
/// - `DATASET` is the dataset name with `/` (and every other byte outside
///   `[A-Za-z0-9_-]`) escaped as `%XX`, so the backups of one dataset are exactly the
///   keys under one prefix ([`StreamName::dataset_prefix`]), never mixed with a child
///   dataset's;
/// - `TIME` is the snapshot's creation in UTC, ISO 8601 basic (`20261123T150000Z`), so
///   names of one dataset sort by time;
/// - `SNAPSHOT` is the snapshot's short name, escaped the same way (`.` too, since it
///   separates the parts that follow);
/// - `KIND` is `full` or `inc-from-PARENT` (the parent's short name, escaped);
/// - `.zfs` ends every stream, `.zst` follows when it is zstd-compressed.
///
/// The sidecar is the same key plus [`SIDECAR_SUFFIX`]. Keys use only
/// `[A-Za-z0-9_%.-]` and one `/`, which every filesystem and object store takes as they
/// are (with `object_store`, build the path with `Path::parse`, which keeps `%XX`
/// verbatim, not `Path::from`, which would escape the `%` again). Snapshots whose names
/// differ only in case get keys that collide on case-insensitive filesystems; the
/// backup planner refuses such a key.
///
/// Parsing accepts only this canonical form, so `name.to_string()` is exactly the text
/// it was parsed from, and it never panics.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::backup::{Compression, StreamKind, StreamName};
///
/// let at = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let name = StreamName::new(
///     "tank/home".parse().unwrap(),
///     "zsnap_hourly_20261123T150000Z".parse().unwrap(),
///     at,
///     StreamKind::Incremental { parent: "zsnap_daily_20261123T000000Z".parse().unwrap() },
///     Compression::Zstd,
/// )
/// .unwrap();
/// let key = name.to_string();
/// assert_eq!(
///     key,
///     "tank%2Fhome/20261123T150000Z_zsnap_hourly_20261123T150000Z.inc-from-zsnap_daily_20261123T000000Z.zfs.zst"
/// );
/// assert_eq!(key.parse::<StreamName>().unwrap(), name);
/// assert_eq!(name.sidecar_key(), format!("{key}.json"));
///
/// // Spaces, dots and colons are escaped, and only the escaped form parses.
/// let odd = "tank%2Fmy%20data/20261123T150000Z_before%20upgrade%3A%201%2E2.full.zfs";
/// let name: StreamName = odd.parse().unwrap();
/// assert_eq!(name.dataset().as_str(), "tank/my data");
/// assert_eq!(name.snapshot().as_str(), "before upgrade: 1.2");
/// assert!("tank%2Fmy data/20261123T150000Z_x.full.zfs".parse::<StreamName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamName {
    dataset: DatasetName,
    snapshot: ShortName,
    created: DateTime<Utc>,
    kind: StreamKind,
    compression: Compression,
}

impl StreamName {
    /// The name of a stream of `dataset@snapshot`, created at `created` (fractions of a
    /// second are dropped, as ZFS's `creation` has none).
    ///
    /// # Errors
    /// When `created` is outside the years 0000–9999, `dataset@snapshot` is longer than
    /// a snapshot name may be, or an incremental names its own snapshot as parent.
    pub fn new(
        dataset: DatasetName,
        snapshot: ShortName,
        created: DateTime<Utc>,
        kind: StreamKind,
        compression: Compression,
    ) -> Result<Self, StreamNameError> {
        let fail = |problem| StreamNameError {
            input: format!("{dataset}@{snapshot}"),
            problem,
        };
        if !(0..=9999).contains(&created.year()) {
            return Err(fail(StreamNameProblem::TimeOutOfRange(created)));
        }
        if let Err(e) = SnapshotName::new(dataset.clone(), snapshot.clone()) {
            return Err(fail(StreamNameProblem::Snapshot(e)));
        }
        if matches!(&kind, StreamKind::Incremental { parent } if parent == &snapshot) {
            return Err(fail(StreamNameProblem::SelfParent));
        }
        let created = created.with_nanosecond(0).unwrap_or(created);
        Ok(StreamName {
            dataset,
            snapshot,
            created,
            kind,
            compression,
        })
    }

    /// The dataset the stream was sent from.
    pub fn dataset(&self) -> &DatasetName {
        &self.dataset
    }

    /// The short name of the snapshot the stream recreates.
    pub fn snapshot(&self) -> &ShortName {
        &self.snapshot
    }

    /// The snapshot's full name.
    pub fn snapshot_name(&self) -> SnapshotName {
        SnapshotName::new(self.dataset.clone(), self.snapshot.clone())
            .expect("the length of dataset@snapshot was checked when the name was made")
    }

    /// The snapshot's creation time, in whole seconds.
    pub fn created(&self) -> DateTime<Utc> {
        self.created
    }

    /// Full or incremental (from which parent).
    pub fn kind(&self) -> &StreamKind {
        &self.kind
    }

    /// The parent's short name of an incremental stream.
    pub fn parent(&self) -> Option<&ShortName> {
        match &self.kind {
            StreamKind::Full => None,
            StreamKind::Incremental { parent } => Some(parent),
        }
    }

    /// How the stored bytes are compressed.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The object key below the store's root (the same text as `to_string()`).
    pub fn key(&self) -> String {
        self.to_string()
    }

    /// The key of the sidecar: [`StreamName::key`] plus [`SIDECAR_SUFFIX`].
    pub fn sidecar_key(&self) -> String {
        let mut k = self.key();
        k.push_str(SIDECAR_SUFFIX);
        k
    }

    /// The prefix every stream key of `dataset` starts with, `/` included: listing it
    /// lists that dataset's backups and nothing else.
    pub fn dataset_prefix(dataset: &DatasetName) -> String {
        let mut p = escape::encode(dataset.as_str());
        p.push('/');
        p
    }

    /// The key's first part (the escaped dataset) and last part (the file name).
    pub fn key_parts(&self) -> (String, String) {
        let key = self.key();
        let (d, f) = key
            .split_once('/')
            .expect("a stream key has one '/' between dataset and file");
        (d.to_owned(), f.to_owned())
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.created;
        let mut s = escape::encode(self.dataset.as_str());
        s.push('/');
        s.push_str(&format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z_",
            c.year(),
            c.month(),
            c.day(),
            c.hour(),
            c.minute(),
            c.second()
        ));
        escape::encode_into(self.snapshot.as_str(), &mut s);
        match &self.kind {
            StreamKind::Full => s.push_str(".full"),
            StreamKind::Incremental { parent } => {
                s.push_str(".inc-from-");
                escape::encode_into(parent.as_str(), &mut s);
            }
        }
        s.push_str(STREAM_SUFFIX);
        s.push_str(self.compression.suffix());
        f.write_str(&s)
    }
}

/// A key that is not a stream name zsnap writes, or a stream name that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid backup stream name {input:?}")]
#[non_exhaustive]
pub struct StreamNameError {
    /// The rejected key, verbatim (or `dataset@snapshot` when making a name).
    pub input: String,
    /// What is wrong.
    #[source]
    pub problem: StreamNameProblem,
}

/// What is wrong with a stream name. Byte offsets count from the start of the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamNameProblem {
    /// Not `DATASET/FILE` with exactly one `/`.
    #[error("expected DATASET/FILE with exactly one '/'")]
    Shape,
    /// A character that must be escaped appears as itself.
    #[error("character {ch:?} at byte {position} must be escaped as %XX")]
    Unescaped {
        /// The character.
        ch: char,
        /// Its byte offset.
        position: usize,
    },
    /// A malformed or needless escape.
    #[error(
        "bad escape at byte {position}: '%' must be followed by two uppercase hex digits \
         of a character that is not written as itself"
    )]
    BadEscape {
        /// Byte offset of the `%`.
        position: usize,
    },
    /// The dataset part decodes to something that is not a dataset name.
    #[error("the dataset part is not a dataset name")]
    Dataset(#[source] NameError),
    /// No valid `YYYYMMDDTHHMMSSZ` where the file name starts.
    #[error("expected a UTC time like 20261123T150000Z at byte {position}")]
    Timestamp {
        /// Byte offset of the file name.
        position: usize,
    },
    /// No `_` after the timestamp.
    #[error("expected '_' after the time at byte {position}")]
    Separator {
        /// Byte offset where `_` was expected.
        position: usize,
    },
    /// The file name ends in neither `.zfs` nor `.zfs.zst`.
    #[error("the name ends in neither .zfs nor .zfs.zst")]
    Suffix,
    /// No `.full` or `.inc-from-PARENT` after the snapshot.
    #[error("expected .full or .inc-from-PARENT after the snapshot name at byte {position}")]
    Kind {
        /// Byte offset where the kind was expected.
        position: usize,
    },
    /// The snapshot part decodes to something that is not a snapshot name, or
    /// `dataset@snapshot` is too long.
    #[error("the snapshot part is not a snapshot name")]
    Snapshot(#[source] NameError),
    /// The parent part decodes to something that is not a snapshot name.
    #[error("the parent part is not a snapshot name")]
    Parent(#[source] NameError),
    /// An incremental stream from its own snapshot.
    #[error("an incremental stream cannot have its own snapshot as parent")]
    SelfParent,
    /// A creation time a four-digit year cannot write.
    #[error("the time {0} is outside the years 0000 to 9999")]
    TimeOutOfRange(DateTime<Utc>),
}

/// `YYYYMMDDTHHMMSSZ` with every digit checked; `None` for anything else.
fn parse_stamp(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)?;
    let time = date.and_hms_opt(num(9..11)?, num(11..13)?, num(13..15)?)?;
    Some(time.and_utc())
}

fn escaped(field: &str, offset: usize) -> Result<String, StreamNameProblem> {
    escape::decode(field).map_err(|e| match e {
        EscapeProblem::Unescaped { ch, position } => StreamNameProblem::Unescaped {
            ch,
            position: offset + position,
        },
        EscapeProblem::BadEscape { position } => StreamNameProblem::BadEscape {
            position: offset + position,
        },
    })
}

fn parse(s: &str) -> Result<StreamName, StreamNameProblem> {
    let Some((ds, file)) = s.split_once('/') else {
        return Err(StreamNameProblem::Shape);
    };
    if file.contains('/') {
        return Err(StreamNameProblem::Shape);
    }
    let dataset: DatasetName = escaped(ds, 0)?
        .parse()
        .map_err(StreamNameProblem::Dataset)?;
    let at = ds.len() + 1;
    let created = file
        .as_bytes()
        .get(..16)
        .and_then(parse_stamp)
        .ok_or(StreamNameProblem::Timestamp { position: at })?;
    if file.as_bytes().get(16) != Some(&b'_') {
        return Err(StreamNameProblem::Separator { position: at + 16 });
    }
    let rest = file
        .get(17..)
        .expect("bytes 0..17 are ASCII (checked above), so byte 17 is a char boundary");
    let (rest, compression) = if let Some(r) = rest.strip_suffix(".zfs.zst") {
        (r, Compression::Zstd)
    } else if let Some(r) = rest.strip_suffix(STREAM_SUFFIX) {
        (r, Compression::None)
    } else {
        return Err(StreamNameProblem::Suffix);
    };
    let at = at + 17;
    // The snapshot is escaped, so its first '.' (if any) ends it.
    let (snap, kind) = rest.split_once('.').unwrap_or((rest, ""));
    let kind_at = at + snap.len() + 1;
    let snapshot: ShortName = escaped(snap, at)?
        .parse()
        .map_err(StreamNameProblem::Snapshot)?;
    let kind = if kind == "full" {
        StreamKind::Full
    } else if let Some(p) = kind.strip_prefix("inc-from-") {
        let parent: ShortName = escaped(p, kind_at + "inc-from-".len())?
            .parse()
            .map_err(StreamNameProblem::Parent)?;
        StreamKind::Incremental { parent }
    } else {
        return Err(StreamNameProblem::Kind { position: kind_at });
    };
    StreamName::new(dataset, snapshot, created, kind, compression).map_err(|e| e.problem)
}

impl FromStr for StreamName {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, StreamNameError> {
        parse(s).map_err(|problem| StreamNameError {
            input: s.to_owned(),
            problem,
        })
    }
}

impl Serialize for StreamName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
