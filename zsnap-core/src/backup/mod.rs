//! Backups of send streams to a directory or an S3-compatible object store: names,
//! sidecars, the catalog of a store, and the decisions about backing up, pruning,
//! deleting and restoring. Pure like the rest of the crate: the stores themselves
//! (listing, uploading, reading) live in `zsnap-exec`.
//!
//! ```text
//!   store listing + sidecar bytes ──► Catalog::build ──► Catalog
//!   zfs list (source) ─┐                                   │
//!   BackupRequest ─────┴──────────► plan_backup(…, now) ◄──┤──► Plan: [Snapshot] | Backup, Bookmark, DestroyBookmark…
//!   RetentionPolicy ──────────────► plan_backup_prune ◄────┤──► BackupPrunePlan: ordered deletions
//!   RestoreTarget ────────────────► resolve_restore ◄──────┘──► the chain to receive, full first
//! ```
//!
//! # Layout of a store
//! One object per send stream, named by [`StreamName`]:
//! `DATASET/TIME_SNAPSHOT.KIND.zfs[.zst]`, e.g.
//! `tank%2Fhome/20261123T150000Z_zsnap_hourly_20261123T150000Z.inc-from-zsnap_daily_20261123T000000Z.zfs`,
//! and beside it a [`Sidecar`] at the same key plus `.json`. The dataset is one escaped
//! path part, so one prefix lists exactly one dataset's backups; names sort by time.
//!
//! # Invariants
//! - A backup is **complete** when its sidecar exists, parses, describes the stream
//!   object and gives its listed size; a stream without a sidecar is **unfinished**
//!   (the executor writes the sidecar last); a sidecar without its stream is a
//!   **missing** backup unless a pending deletion names it ([`PendingDeletion`]);
//!   anything else is **damaged**. Missing and damaged backups are never removed
//!   automatically ([`EntryState`]).
//! - A store is a store only once initialised: [`STORE_MARKER_KEY`] holds its
//!   [`StoreMarker`].
//! - Chains are linked **by guid**, never by name: an incremental is restorable when a
//!   restorable backup of an earlier snapshot (lower createtxg) of the same dataset has
//!   its parent's guid ([`Catalog`], [`Link`]).
//! - No plan here ever leaves a kept backup without the backups it is restored
//!   through, even when its deletions stop half-way ([`BackupPrunePlan`],
//!   [`Catalog::plan_delete`]).
//! - Nothing read from a store is trusted: keys and sidecars are parsed (names
//!   included) and parsing never panics (both parsers are fuzzed).

mod catalog;
mod escape;
mod marker;
mod planner;
mod restore;
mod schedule;
mod send_check;
mod send_header;
mod sidecar;
mod step;
mod store;
mod store_prune;
mod stream;

pub use catalog::{
    BackupBase, BackupEntry, BackupId, Catalog, Chain, DatasetBackups, EntryState, Link,
    StoreObject,
};
pub use marker::{
    MarkerError, PendingDeletion, StoreMarker, MAX_MARKER_BYTES, MAX_PENDING_BYTES,
    PENDING_DELETION_PREFIX, STORE_MARKER_FORMAT, STORE_MARKER_KEY,
};
pub use planner::{
    backup_bookmark_name, parse_since, plan_backup, BackupMode, BackupPlan, BackupPlanError,
    BackupRequest, SinceError, BACKUP_BOOKMARK_PREFIX, DEFAULT_BACKUP_LABEL,
};
pub use restore::{
    plan_restore, resolve_restore, resolve_restore_with, BackupDeletePlan, DeleteError,
    RestoreError, RestorePlan, RestorePlanError, RestoreTarget,
};
pub use schedule::{backup_due, BackupDue, BackupSchedule};
pub use send_check::{
    check_send_stream, SendStreamCheck, SendStreamError, SendStreamSummary, SEND_RECORD_LEN,
};
pub use send_header::{parse_send_begin, SendBegin, SendHeaderError, SEND_HEADER_LEN};
pub use sidecar::{
    Sha256, Sha256Error, Sidecar, SidecarError, SidecarParent, MAX_SIDECAR_BYTES, SIDECAR_FORMAT,
};
pub use step::BackupStep;
pub use store::{StoreUrl, StoreUrlError, StoreUrlProblem, MAX_S3_KEY};
pub use store_prune::{
    plan_backup_prune, BackupDecision, BackupProtection, BackupPrunePlan, BackupVerdict, Deletion,
    ObjectRole, UNFINISHED_GRACE,
};
pub use stream::{
    Compression, CompressionError, StreamKind, StreamName, StreamNameError, StreamNameProblem,
    MAX_KEY_COMPONENT, SIDECAR_SUFFIX, STREAM_SUFFIX, ZSTD_SUFFIX,
};
