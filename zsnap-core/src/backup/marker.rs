//! The objects a store keeps about itself: the marker that says a store was
//! initialised ([`StoreMarker`]) and the records of deletions in progress
//! ([`PendingDeletion`]).
//!
//! Both live outside the dataset folders: their keys contain a literal `.` in the
//! first part, which an escaped dataset name never does (see [`super::StreamName`]),
//! so no dataset's backups can collide with them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::StoreUrl;

/// The key of a store's marker, at the store's root.
pub const STORE_MARKER_KEY: &str = "zsnap-store.json";

/// The start of the keys of [`PendingDeletion`] records.
pub const PENDING_DELETION_PREFIX: &str = "zsnap-store.d/deleting-";

/// The format version of [`StoreMarker`] and [`PendingDeletion`] written by this zsnap.
pub const STORE_MARKER_FORMAT: u32 = 1;

/// The largest marker read.
pub const MAX_MARKER_BYTES: usize = 64 * 1024;

/// The largest pending-deletion record read (a prune of some 100,000 backups).
pub const MAX_PENDING_BYTES: usize = 64 << 20;

/// What `zsnap backups init` writes at [`STORE_MARKER_KEY`]: that this place is a
/// store, which one, since when.
///
/// Backups, prunes, verifies and restores refuse a store without one, so an
/// unmounted disk (an empty mount point, or no directory at all) is never mistaken
/// for an empty store and filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreMarker {
    /// The format version, [`STORE_MARKER_FORMAT`].
    pub format: u32,
    /// The store's URL when it was initialised.
    pub store: String,
    /// A random id, so two stores are never confused (hex).
    pub id: String,
    /// When it was initialised.
    pub created: DateTime<Utc>,
}

/// A marker or a pending-deletion record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarkerError {
    /// Not the JSON of one.
    #[error("not a zsnap store record: {message}")]
    Invalid {
        /// What the JSON parser said.
        message: String,
    },
    /// Written by a newer zsnap.
    #[error("format {format} is newer than this zsnap reads ({STORE_MARKER_FORMAT})")]
    Format {
        /// The format found.
        format: u32,
    },
}

impl StoreMarker {
    /// The marker of `store`, with this id, made at `created`.
    pub fn new(store: &StoreUrl, id: impl Into<String>, created: DateTime<Utc>) -> Self {
        StoreMarker {
            format: STORE_MARKER_FORMAT,
            store: store.to_string(),
            id: id.into(),
            created,
        }
    }

    /// The JSON written to the store.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .expect("a struct of strings and numbers always serializes");
        s.push('\n');
        s
    }

    /// Parses a marker read from a store.
    ///
    /// # Errors
    /// When the bytes are not a marker of a format this zsnap reads.
    pub fn parse(bytes: &[u8]) -> Result<StoreMarker, MarkerError> {
        let m: StoreMarker = serde_json::from_slice(bytes).map_err(|e| MarkerError::Invalid {
            message: e.to_string(),
        })?;
        if m.format > STORE_MARKER_FORMAT {
            return Err(MarkerError::Format { format: m.format });
        }
        Ok(m)
    }
}

/// The record a deletion writes before it deletes anything, and removes when it is
/// done: the keys it is deleting.
///
/// A sidecar whose stream is gone is a **lost backup** unless a pending deletion
/// names it: then it is what an interrupted prune or delete left, which the next
/// prune finishes ([`super::Catalog::orphan_sidecars`]). Without this record the
/// two could not be told apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PendingDeletion {
    /// The format version, [`STORE_MARKER_FORMAT`].
    pub format: u32,
    /// When the deletion started.
    pub started: DateTime<Utc>,
    /// The keys being deleted, in order.
    pub keys: Vec<String>,
}

impl PendingDeletion {
    /// The record of a deletion of `keys` starting at `started`.
    pub fn new(started: DateTime<Utc>, keys: Vec<String>) -> Self {
        PendingDeletion {
            format: STORE_MARKER_FORMAT,
            started,
            keys,
        }
    }

    /// The key to write it at, unique with `token` (e.g. a random hex string).
    pub fn key(&self, token: &str) -> String {
        format!(
            "{PENDING_DELETION_PREFIX}{}-{token}.json",
            self.started.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// Whether `key` is the key of a pending-deletion record.
    pub fn is_key(key: &str) -> bool {
        key.starts_with(PENDING_DELETION_PREFIX)
    }

    /// The JSON written to the store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }

    /// Parses a record read from a store.
    ///
    /// # Errors
    /// When the bytes are not a record of a format this zsnap reads.
    pub fn parse(bytes: &[u8]) -> Result<PendingDeletion, MarkerError> {
        let p: PendingDeletion =
            serde_json::from_slice(bytes).map_err(|e| MarkerError::Invalid {
                message: e.to_string(),
            })?;
        if p.format > STORE_MARKER_FORMAT {
            return Err(MarkerError::Format { format: p.format });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn marker_round_trips_and_refuses_garbage() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
        let url: StoreUrl = "dir:/mnt/usb/zsnap".parse().unwrap();
        let m = StoreMarker::new(&url, "00ff", t);
        assert_eq!(StoreMarker::parse(m.to_json().as_bytes()).unwrap(), m);
        assert!(StoreMarker::parse(b"{}").is_err());
        assert!(StoreMarker::parse(b"\xff").is_err());
        let newer = m.to_json().replace("\"format\": 1", "\"format\": 9");
        assert_eq!(
            StoreMarker::parse(newer.as_bytes()),
            Err(MarkerError::Format { format: 9 })
        );
    }

    #[test]
    fn pending_deletions_round_trip_and_their_keys_are_no_dataset() {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
        let p = PendingDeletion::new(t, vec!["tank/a.zfs".into()]);
        assert_eq!(PendingDeletion::parse(p.to_json().as_bytes()).unwrap(), p);
        let key = p.key("ab12");
        assert_eq!(key, "zsnap-store.d/deleting-20261123T150000Z-ab12.json");
        assert!(PendingDeletion::is_key(&key));
        assert!(key.parse::<super::super::StreamName>().is_err());
    }
}
