//! [`BackupStep`]: the plan step that writes one stream to a store.

use serde::{Deserialize, Serialize};

use super::sidecar::{Sha256, Sidecar, SidecarError};
use super::store::StoreUrl;
use super::stream::StreamName;
use crate::inventory::Guid;
use crate::plan::{Location, SendSpec, SnapshotRef};
use crate::zfs_names::DatasetName;

/// Write one send stream of a source snapshot to a store, then its sidecar.
///
/// The executor must, in this order:
/// 1. check that the snapshot (and the base of an incremental, a snapshot or a
///    bookmark) still exists on the source with the planned guid;
/// 2. run `zfs send [-w] [-i BASE] DATASET@SNAPSHOT` (`-w` when [`raw`](Self::raw)),
///    compress the bytes when [`StreamName::compression`] says so, and upload them as
///    they come (multipart; never buffered whole in memory or on local disk) to the
///    object [`StreamName::key`] of [`store`](Self::store), counting the stored bytes
///    and hashing them with SHA-256;
/// 3. if verification is asked for, read the object back and compare size and digest;
/// 4. only then write [`BackupStep::sidecar`]`(size, digest, version)`'s JSON to
///    [`StreamName::sidecar_key`].
///
/// If anything fails before step 4, no sidecar may be written: the stream object is
/// then an unfinished backup, which listings show as such and retention removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackupStep {
    /// Where the source dataset lives.
    pub location: Location,
    /// The source dataset.
    pub dataset: DatasetName,
    /// What to send: [`SendSpec::Full`], or [`SendSpec::Incremental`] with `-i` (never
    /// `-I`: one stream holds one snapshot, so every backup is restorable on its own
    /// chain).
    pub send: SendSpec,
    /// The snapshot's createtxg on the source, recorded in the sidecar.
    pub createtxg: u64,
    /// `zfs send -w`: always for encrypted sources, so backups stay encrypted at rest.
    pub raw: bool,
    /// The store.
    pub store: StoreUrl,
    /// The stream object's name (its key below the store's root).
    pub stream: StreamName,
    /// Why.
    pub reason: String,
}

impl BackupStep {
    /// A step writing the stream `send` of `dataset` as `stream` to `store`.
    #[expect(
        clippy::too_many_arguments,
        reason = "every field is required and has no sensible default"
    )]
    pub fn new(
        location: Location,
        dataset: DatasetName,
        send: SendSpec,
        createtxg: u64,
        raw: bool,
        store: StoreUrl,
        stream: StreamName,
        reason: impl Into<String>,
    ) -> Self {
        BackupStep {
            location,
            dataset,
            send,
            createtxg,
            raw,
            store,
            stream,
            reason: reason.into(),
        }
    }

    /// The snapshot sent, with its planned guid; `None` only for a resume spec, which
    /// the backup planner never makes.
    pub fn snapshot(&self) -> Option<&SnapshotRef> {
        match &self.send {
            SendSpec::Full { snapshot } | SendSpec::Incremental { snapshot, .. } => Some(snapshot),
            SendSpec::Resume { snapshot, .. } => snapshot.as_ref(),
        }
    }

    /// The guid of the base of an incremental.
    pub fn base_guid(&self) -> Option<Guid> {
        match &self.send {
            SendSpec::Incremental { base, .. } => Some(base.guid()),
            _ => None,
        }
    }

    /// The sidecar to write once the stream is stored as `size` bytes with digest
    /// `sha256`, by zsnap `zsnap_version`.
    ///
    /// # Errors
    /// When the step does not describe a backup the planner makes (no snapshot, a
    /// stream kind that disagrees with the send) or the version is not a valid one
    /// (see [`Sidecar::new`]).
    pub fn sidecar(
        &self,
        size: u64,
        sha256: Sha256,
        zsnap_version: &str,
    ) -> Result<Sidecar, SidecarError> {
        // Guid 0 is no ZFS guid: `Sidecar::new` refuses it.
        let guid = self.snapshot().map_or(Guid(0), |s| s.guid);
        Sidecar::new(
            &self.stream,
            guid,
            self.createtxg,
            self.base_guid(),
            self.raw,
            size,
            sha256,
            zsnap_version,
        )
    }
}
