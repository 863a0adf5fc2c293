//! Sidecars: the metadata object written beside each stream once it is stored whole.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::stream::{Compression, StreamKind, StreamName, StreamNameError};
use crate::inventory::Guid;
use crate::zfs_names::{DatasetName, NameError, ShortName, SnapshotName};

/// The sidecar format this version writes and reads.
pub const SIDECAR_FORMAT: u32 = 1;

/// The largest sidecar [`Sidecar::parse`] reads, in bytes (real ones are under 1 KiB).
pub const MAX_SIDECAR_BYTES: usize = 64 * 1024;

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    /// The digest of these 32 bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Sha256(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

/// Text that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a SHA-256 digest (64 lowercase hex digits)", clip(.input))]
#[non_exhaustive]
pub struct Sha256Error {
    /// The input, verbatim.
    pub input: String,
}

impl FromStr for Sha256 {
    type Err = Sha256Error;
    fn from_str(s: &str) -> Result<Self, Sha256Error> {
        let fail = || Sha256Error {
            input: s.to_owned(),
        };
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(fail());
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = nibble(pair[0])
                .zip(nibble(pair[1]))
                .map(|(h, l)| h << 4 | l)
                .ok_or_else(fail)?;
        }
        Ok(Sha256(out))
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The snapshot an incremental stream must be received onto.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SidecarParent {
    /// Its short name when the stream was written.
    pub snapshot: ShortName,
    /// Its guid: what links the incremental to the backup it depends on.
    pub guid: Guid,
}

impl SidecarParent {
    /// A parent.
    pub fn new(snapshot: ShortName, guid: Guid) -> Self {
        SidecarParent { snapshot, guid }
    }
}

/// What zsnap records about one stored stream, in the JSON object beside it.
///
/// A stream object whose sidecar exists and parses is a complete backup; the executor
/// writes the sidecar only after the whole stream is stored. The JSON (format 1) is:
///
/// ```json
/// {
///   "format": 1,
///   "kind": "incremental",
///   "dataset": "tank/home",
///   "snapshot": "zsnap_hourly_20261123T150000Z",
///   "guid": "9938148912739581245",
///   "createtxg": 4711,
///   "created": "2026-11-23T15:00:00Z",
///   "parent": { "snapshot": "zsnap_daily_20261123T000000Z", "guid": "1234567890123" },
///   "raw": false,
///   "compression": "zstd",
///   "size": 1048576,
///   "sha256": "<64 lowercase hex digits of the stored bytes>",
///   "zsnap_version": "0.1.0"
/// }
/// ```
///
/// Guids are decimal strings, because many JSON tools read numbers as doubles and
/// would silently change a 64-bit guid. `parent` is present exactly for incrementals.
/// `size` and `sha256` are of the bytes as stored (after compression).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sidecar {
    /// The format version, [`SIDECAR_FORMAT`].
    pub format: u32,
    /// The dataset the stream was sent from.
    pub dataset: DatasetName,
    /// The snapshot the stream recreates.
    pub snapshot: ShortName,
    /// Its guid.
    pub guid: Guid,
    /// Its createtxg on the source (orders the backups of one dataset).
    pub createtxg: u64,
    /// Its creation time, whole seconds.
    pub created: DateTime<Utc>,
    /// The parent of an incremental; `None` for a full stream.
    pub parent: Option<SidecarParent>,
    /// Whether the stream is raw (`zfs send -w`: encrypted blocks stay encrypted).
    pub raw: bool,
    /// How the stored bytes are compressed.
    pub compression: Compression,
    /// Stored bytes.
    pub size: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: Sha256,
    /// The zsnap version that wrote the backup.
    pub zsnap_version: String,
}

/// Serialized as the sidecar's own JSON object (see [`Sidecar`]).
impl Serialize for Sidecar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(s)
    }
}

/// A sidecar that cannot be trusted, or that does not describe its stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// Larger than [`MAX_SIDECAR_BYTES`].
    #[error("the sidecar is {size} bytes, more than the {MAX_SIDECAR_BYTES} a sidecar may have")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// Not JSON, or not an object of the expected fields and types.
    #[error("the sidecar is not a JSON object of the expected fields")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the sidecar is not a JSON object")]
    NotObject,
    /// Written by a newer zsnap in a format this one cannot read.
    #[error("sidecar format {found} is not supported (this zsnap reads format {SIDECAR_FORMAT})")]
    Unsupported {
        /// The format it says it has.
        found: u64,
    },
    /// The dataset is not a valid name.
    #[error("field \"dataset\" is not a dataset name")]
    Dataset(#[source] NameError),
    /// A snapshot name is not valid, or `dataset@snapshot` is too long.
    #[error("field {field:?} is not a snapshot name")]
    Snapshot {
        /// `snapshot` or `parent.snapshot`.
        field: &'static str,
        /// Why.
        #[source]
        source: NameError,
    },
    /// A guid that is not a non-zero decimal number without leading zeros.
    #[error("field {field:?} is {}, not a guid (a non-zero decimal number in a string)", clip(.value))]
    Guid {
        /// `guid` or `parent.guid`.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// `created` is not a UTC time in whole seconds.
    #[error(
        "field \"created\" is {}, not a UTC time in whole seconds like \"2026-11-23T15:00:00Z\"",
        clip(.value)
    )]
    Created {
        /// The value.
        value: String,
    },
    /// `kind` is neither `full` nor `incremental`.
    #[error("field \"kind\" is {}, expected \"full\" or \"incremental\"", clip(.value))]
    Kind {
        /// The value.
        value: String,
    },
    /// An incremental without `parent`.
    #[error("an incremental backup has no \"parent\"")]
    MissingParent,
    /// A full stream with a `parent`.
    #[error("a full backup has a \"parent\"")]
    UnexpectedParent,
    /// The parent is the snapshot itself (same name or same guid).
    #[error("the parent is the snapshot itself")]
    SelfParent,
    /// An unknown compression.
    #[error("field \"compression\" is {}, expected \"none\" or \"zstd\"", clip(.value))]
    Compression {
        /// The value.
        value: String,
    },
    /// Not 64 lowercase hex digits.
    #[error("field \"sha256\" is {}, not 64 lowercase hex digits", clip(.value))]
    Sha256 {
        /// The value.
        value: String,
    },
    /// An empty, long or strange version string.
    #[error(
        "field \"zsnap_version\" is {}, expected 1 to 64 characters of A-Z a-z 0-9 . + -",
        clip(.value)
    )]
    Version {
        /// The value.
        value: String,
    },
    /// The sidecar and the stream object's name disagree.
    #[error("the sidecar says {field} is {sidecar:?} but the stream's name says {name:?}")]
    Mismatch {
        /// What disagrees: `dataset`, `snapshot`, `created`, `kind`, `parent`,
        /// `compression`.
        field: &'static str,
        /// What the sidecar says.
        sidecar: String,
        /// What the name says.
        name: String,
    },
}

/// `value` quoted, cut to 64 characters so a hostile file cannot flood a terminal.
fn clip(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParent {
    snapshot: String,
    guid: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: u32,
    kind: String,
    dataset: String,
    snapshot: String,
    guid: String,
    createtxg: u64,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent: Option<RawParent>,
    raw: bool,
    compression: String,
    size: u64,
    sha256: String,
    zsnap_version: String,
}

fn created_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_guid(field: &'static str, value: String) -> Result<Guid, SidecarError> {
    let canonical =
        !value.is_empty() && !value.starts_with('0') && value.bytes().all(|b| b.is_ascii_digit());
    match value.parse::<u64>() {
        Ok(g) if canonical => Ok(Guid(g)),
        _ => Err(SidecarError::Guid { field, value }),
    }
}

fn valid_version(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'))
}

impl Sidecar {
    /// The sidecar of a stored stream named `stream`, whose snapshot has `guid` and
    /// `createtxg` (and whose parent, for an incremental, has `parent_guid`), stored as
    /// `size` bytes with digest `sha256` by zsnap `zsnap_version`.
    ///
    /// # Errors
    /// [`SidecarError::MissingParent`] for an incremental without `parent_guid`,
    /// [`SidecarError::UnexpectedParent`] for a full with one,
    /// [`SidecarError::SelfParent`] when the parent's guid is `guid`,
    /// [`SidecarError::Guid`] for guid 0, and
    /// [`SidecarError::Version`] for a version [`Sidecar::parse`] would refuse.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per fact the executor learns; a builder would hide which are required"
    )]
    pub fn new(
        stream: &StreamName,
        guid: Guid,
        createtxg: u64,
        parent_guid: Option<Guid>,
        raw: bool,
        size: u64,
        sha256: Sha256,
        zsnap_version: impl Into<String>,
    ) -> Result<Self, SidecarError> {
        for (field, g) in [("guid", Some(guid)), ("parent.guid", parent_guid)] {
            if g == Some(Guid(0)) {
                let value = "0".to_owned();
                return Err(SidecarError::Guid { field, value });
            }
        }
        let parent = match (stream.parent(), parent_guid) {
            (None, None) => None,
            (None, Some(_)) => return Err(SidecarError::UnexpectedParent),
            (Some(_), None) => return Err(SidecarError::MissingParent),
            (Some(_), Some(g)) if g == guid => return Err(SidecarError::SelfParent),
            (Some(p), Some(g)) => Some(SidecarParent::new(p.clone(), g)),
        };
        let zsnap_version = zsnap_version.into();
        if !valid_version(&zsnap_version) {
            return Err(SidecarError::Version {
                value: zsnap_version,
            });
        }
        Ok(Sidecar {
            format: SIDECAR_FORMAT,
            dataset: stream.dataset().clone(),
            snapshot: stream.snapshot().clone(),
            guid,
            createtxg,
            created: stream.created(),
            parent,
            raw,
            compression: stream.compression(),
            size,
            sha256,
            zsnap_version,
        })
    }

    /// Full or incremental, as the stream name writes it.
    pub fn kind(&self) -> StreamKind {
        match &self.parent {
            None => StreamKind::Full,
            Some(p) => StreamKind::Incremental {
                parent: p.snapshot.clone(),
            },
        }
    }

    /// The name of the stream this sidecar describes.
    ///
    /// # Errors
    /// When the fields cannot make a stream name (a parsed sidecar always can).
    pub fn stream_name(&self) -> Result<StreamName, StreamNameError> {
        StreamName::new(
            self.dataset.clone(),
            self.snapshot.clone(),
            self.created,
            self.kind(),
            self.compression,
        )
    }

    /// The sidecar as JSON (pretty-printed, with a final newline), which
    /// [`Sidecar::parse`] reads back to an equal value.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_raw())
            .expect("a struct of strings, numbers and booleans always serializes");
        s.push('\n');
        s
    }

    fn to_raw(&self) -> Raw {
        Raw {
            format: self.format,
            kind: if self.parent.is_some() {
                "incremental"
            } else {
                "full"
            }
            .to_owned(),
            dataset: self.dataset.to_string(),
            snapshot: self.snapshot.to_string(),
            guid: self.guid.to_string(),
            createtxg: self.createtxg,
            created: created_text(self.created),
            parent: self.parent.as_ref().map(|p| RawParent {
                snapshot: p.snapshot.to_string(),
                guid: p.guid.to_string(),
            }),
            raw: self.raw,
            compression: self.compression.to_string(),
            size: self.size,
            sha256: self.sha256.to_string(),
            zsnap_version: self.zsnap_version.clone(),
        }
    }

    /// Reads and validates a sidecar. Nothing in it is trusted: names are parsed,
    /// guids, time, digest and version are checked, an incremental must name a parent
    /// (and a full must not), and unknown fields are refused. Never panics.
    ///
    /// # Errors
    /// A [`SidecarError`] naming the first problem.
    ///
    /// # Example
    /// ```
    /// use zsnap_core::backup::{Sidecar, SidecarError};
    /// let json = br#"{"format": 2, "whatever": "comes next"}"#;
    /// assert!(matches!(Sidecar::parse(json), Err(SidecarError::Unsupported { found: 2 })));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Sidecar, SidecarError> {
        if bytes.len() > MAX_SIDECAR_BYTES {
            return Err(SidecarError::TooLarge { size: bytes.len() });
        }
        // The format first: a newer format's new fields are not "unknown fields".
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(SidecarError::Json)?;
        if !value.is_object() {
            return Err(SidecarError::NotObject);
        }
        if let Some(found) = value.get("format").and_then(serde_json::Value::as_u64) {
            if found != u64::from(SIDECAR_FORMAT) {
                return Err(SidecarError::Unsupported { found });
            }
        }
        let raw: Raw = serde_json::from_value(value).map_err(SidecarError::Json)?;
        Sidecar::validate(raw)
    }

    fn validate(raw: Raw) -> Result<Sidecar, SidecarError> {
        let dataset: DatasetName = raw.dataset.parse().map_err(SidecarError::Dataset)?;
        let snapshot: ShortName =
            raw.snapshot
                .parse()
                .map_err(|source| SidecarError::Snapshot {
                    field: "snapshot",
                    source,
                })?;
        if let Err(source) = SnapshotName::new(dataset.clone(), snapshot.clone()) {
            return Err(SidecarError::Snapshot {
                field: "snapshot",
                source,
            });
        }
        let guid = parse_guid("guid", raw.guid)?;
        let created = DateTime::parse_from_rfc3339(&raw.created)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| t.nanosecond() == 0 && created_text(*t) == raw.created)
            .ok_or(SidecarError::Created { value: raw.created })?;
        let parent = match (raw.kind.as_str(), raw.parent) {
            ("full", None) => None,
            ("full", Some(_)) => return Err(SidecarError::UnexpectedParent),
            ("incremental", None) => return Err(SidecarError::MissingParent),
            ("incremental", Some(p)) => {
                let name: ShortName =
                    p.snapshot
                        .parse()
                        .map_err(|source| SidecarError::Snapshot {
                            field: "parent.snapshot",
                            source,
                        })?;
                let pguid = parse_guid("parent.guid", p.guid)?;
                if name == snapshot || pguid == guid {
                    return Err(SidecarError::SelfParent);
                }
                Some(SidecarParent::new(name, pguid))
            }
            _ => return Err(SidecarError::Kind { value: raw.kind }),
        };
        let compression: Compression =
            raw.compression
                .parse()
                .map_err(|_| SidecarError::Compression {
                    value: raw.compression.clone(),
                })?;
        let sha256: Sha256 = raw.sha256.parse().map_err(|_| SidecarError::Sha256 {
            value: raw.sha256.clone(),
        })?;
        if !valid_version(&raw.zsnap_version) {
            return Err(SidecarError::Version {
                value: raw.zsnap_version,
            });
        }
        Ok(Sidecar {
            format: raw.format,
            dataset,
            snapshot,
            guid,
            createtxg: raw.createtxg,
            created,
            parent,
            raw: raw.raw,
            compression,
            size: raw.size,
            sha256,
            zsnap_version: raw.zsnap_version,
        })
    }

    /// Checks that this sidecar describes the stream object named `name`: same
    /// dataset, snapshot, creation time, kind, parent and compression.
    ///
    /// # Errors
    /// [`SidecarError::Mismatch`] naming the first field that differs.
    pub fn check_stream(&self, name: &StreamName) -> Result<(), SidecarError> {
        let mismatch = |field, sidecar: String, name: String| {
            Err(SidecarError::Mismatch {
                field,
                sidecar,
                name,
            })
        };
        if &self.dataset != name.dataset() {
            return mismatch(
                "dataset",
                self.dataset.to_string(),
                name.dataset().to_string(),
            );
        }
        if &self.snapshot != name.snapshot() {
            return mismatch(
                "snapshot",
                self.snapshot.to_string(),
                name.snapshot().to_string(),
            );
        }
        if self.created != name.created() {
            return mismatch(
                "created",
                created_text(self.created),
                created_text(name.created()),
            );
        }
        let kind = |p: Option<&ShortName>| if p.is_some() { "incremental" } else { "full" };
        let ours = self.parent.as_ref().map(|p| &p.snapshot);
        if kind(ours) != kind(name.parent()) {
            return mismatch(
                "kind",
                kind(ours).to_owned(),
                kind(name.parent()).to_owned(),
            );
        }
        if let (Some(a), Some(b)) = (ours, name.parent()) {
            if a != b {
                return mismatch("parent", a.to_string(), b.to_string());
            }
        }
        if self.compression != name.compression() {
            return mismatch(
                "compression",
                self.compression.to_string(),
                name.compression().to_string(),
            );
        }
        Ok(())
    }
}
