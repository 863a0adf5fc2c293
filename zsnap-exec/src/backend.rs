//! The [`ZfsBackend`] trait: everything zsnap asks of ZFS at one location.
//!
//! Two implementations pass one contract suite: [`crate::cli::CliZfs`] (the real `zfs`,
//! locally or over ssh) and [`crate::fake::FakeZfs`] (in memory, obeying ZFS's own rules).
//!
//! # Transfers
//! A transfer is split in two halves so the two ends can live on different backends:
//! [`ZfsBackend::send`] returns a [`SendStream`] (readable bytes plus a way to wait for the
//! sender), and [`ZfsBackend::receive`] consumes one. A stream produced by a process that
//! has not started yet also carries that process as a [`SendCommand`]; a receiving
//! backend that runs processes itself takes it ([`SendStream::take_command`]) and builds
//! a native pipeline `zfs send … | [ssh host] zfs recv …`, so the bytes never pass
//! through zsnap unless it asked to count them. This keeps the trait object-safe (no
//! downcasting, no generic methods) and lets a fake receive from a real sender and the
//! reverse, by plain reading.
//!
//! # Errors
//! One error enum per operation. Whatever ran a process and failed carries a
//! [`CommandError`], whose [`ZfsFailure`] keeps the stderr verbatim; every operation
//! error has a `failure()` accessor for the classification.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use zsnap_core::{
    BookmarkName, DatasetName, Guid, Inventory, RecvOptions, SendSpec, ShortName, SnapshotName,
    SnapshotRef,
};

use zsnap_core::zpool::{PoolHealth, PoolListParseError, PoolStatusParseError};

use crate::failure::{FailureKind, ZfsFailure};
use crate::send_info::{token_excerpt, ResumeToken, SendEstimate, SendInfoParseError};

/// What zsnap asks of ZFS at one location. Object-safe; queries take `&self`, changes
/// `&mut self`.
pub trait ZfsBackend {
    /// Lists every filesystem, volume, snapshot and bookmark under `roots` (recursively).
    ///
    /// # Errors
    /// When a root does not exist, the listing fails, or its output cannot be parsed.
    fn list(&self, roots: &[DatasetName]) -> Result<Inventory, ListError>;

    /// Creates all of `names` in ONE atomic call (one txg), each with `properties`.
    ///
    /// # Errors
    /// When any name exists already or any dataset is missing: then none is created.
    fn snapshot(
        &mut self,
        names: &[SnapshotName],
        properties: &BTreeMap<String, String>,
    ) -> Result<(), SnapshotError>;

    /// Destroys snapshots of one dataset, each only if it still has the given guid.
    ///
    /// Members that are gone or whose guid changed are skipped; members ZFS refuses
    /// (held, cloned, busy) are reported and the others destroyed. Both show in the
    /// [`DestroyReport`]; only a failure of the whole call is an error.
    ///
    /// # Errors
    /// When the dataset cannot be listed or the destroy fails for every member.
    fn destroy(
        &mut self,
        dataset: &DatasetName,
        snapshots: &[SnapshotRef],
    ) -> Result<DestroyReport, DestroyError>;

    /// Destroys the snapshots of several datasets, one [`ZfsBackend::destroy`] each, in
    /// order; one result per dataset. The real backend re-checks every guid with one
    /// listing for all of them (not one per dataset) before the first destroy.
    fn destroy_many(
        &mut self,
        batches: &[(&DatasetName, &[SnapshotRef])],
    ) -> Vec<Result<DestroyReport, DestroyError>> {
        batches
            .iter()
            .map(|(dataset, snapshots)| self.destroy(dataset, snapshots))
            .collect()
    }

    /// Places the user hold `tag` on a snapshot.
    ///
    /// # Errors
    /// When the snapshot is missing or already has this tag.
    fn hold(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), HoldError>;

    /// Releases the user hold `tag` from a snapshot.
    ///
    /// # Errors
    /// When the snapshot is missing or has no such tag.
    fn release(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ReleaseError>;

    /// Places the user hold `tag` on each of `snapshots`; one result per snapshot, in
    /// order. The real backend does it with one `zfs hold` (and only after that call
    /// failed, one call per snapshot, to tell which failed).
    fn hold_many(&mut self, snapshots: &[SnapshotName], tag: &str) -> Vec<Result<(), HoldError>> {
        snapshots.iter().map(|s| self.hold(s, tag)).collect()
    }

    /// Releases the user hold `tag` from each of `snapshots`; one result per snapshot, in
    /// order, as [`ZfsBackend::hold_many`].
    fn release_many(
        &mut self,
        snapshots: &[SnapshotName],
        tag: &str,
    ) -> Vec<Result<(), ReleaseError>> {
        snapshots.iter().map(|s| self.release(s, tag)).collect()
    }

    /// Creates `bookmark` from `snapshot` (same dataset).
    ///
    /// # Errors
    /// When the snapshot is missing or the bookmark exists.
    fn bookmark(
        &mut self,
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), BookmarkError>;

    /// Destroys a bookmark.
    ///
    /// # Errors
    /// When the dataset is missing or the destroy fails.
    fn destroy_bookmark(&mut self, bookmark: &BookmarkName) -> Result<(), DestroyBookmarkError>;

    /// Sets a user property (`module:name`) on a dataset or snapshot.
    ///
    /// # Errors
    /// When the name is not a user property or the target is missing.
    fn set_property(
        &mut self,
        target: &PropertyTarget,
        name: &str,
        value: &str,
    ) -> Result<(), SetPropertyError>;

    /// Reads a user property; `None` when unset.
    ///
    /// # Errors
    /// When the name is not a user property or the target is missing.
    fn property(
        &self,
        target: &PropertyTarget,
        name: &str,
    ) -> Result<Option<String>, GetPropertyError>;

    /// Lists exactly the named datasets and snapshots, none of their children or other
    /// snapshots: what a run needs to learn of the snapshots it just created (their
    /// guids and createtxgs) without listing everything again. Each snapshot's dataset
    /// is in the result (with only the named snapshots), and a dataset named on its own
    /// comes without snapshots.
    ///
    /// # Errors
    /// When a name does not exist, the listing fails, or its output cannot be parsed.
    fn list_named(
        &self,
        datasets: &[DatasetName],
        snapshots: &[SnapshotName],
    ) -> Result<Inventory, ListError> {
        let mut roots: Vec<DatasetName> = datasets.to_vec();
        roots.extend(snapshots.iter().map(|s| s.dataset().clone()));
        roots.sort();
        roots.dedup();
        let full = self.list(&roots)?;
        Ok(named_part(&full, &roots, snapshots))
    }

    /// Opens a send stream (`zfs send`). Nothing may run before the stream is read or
    /// its command taken.
    ///
    /// # Errors
    /// When the request is invalid for this backend, or the sender fails at once.
    fn send(&self, request: &SendRequest) -> Result<Box<dyn SendStream>, SendError>;

    /// Receives `stream` into `request.target` (`zfs receive`), consuming it and waiting
    /// for the sender. `progress`, when given, is called with the bytes received so far;
    /// the bytes then pass through zsnap in large buffers.
    ///
    /// # Errors
    /// When the receiver or the sender fails; with `resumable`, an interrupted receive
    /// leaves a `receive_resume_token` on the target.
    fn receive(
        &mut self,
        request: &ReceiveRequest,
        stream: Box<dyn SendStream>,
        progress: Option<&mut dyn FnMut(u64)>,
    ) -> Result<ReceiveOutcome, RecvError>;

    /// Discards the partial state of an interrupted receive (`zfs receive -A`).
    ///
    /// # Errors
    /// When there is no partial state or the dataset is missing.
    fn abort_receive(&mut self, dataset: &DatasetName) -> Result<(), AbortReceiveError>;

    /// Estimates the size of a send without sending anything (`zfs send -nvP …`).
    ///
    /// # Errors
    /// When `zfs send` refuses the request (a snapshot or base is missing, a resume
    /// token is stale) or its output cannot be read.
    fn estimate_send(&self, request: &SendRequest) -> Result<SendEstimate, EstimateError>;

    /// Decodes a `receive_resume_token` of a target where the snapshots are, on the
    /// sending side (`zfs send -nvP -t TOKEN`): which snapshot the interrupted receive
    /// brings, and from which base.
    ///
    /// # Errors
    /// When the token cannot be resumed here ([`ResumeTokenError::is_stale`]: its
    /// snapshot or base is gone or replaced, or it is corrupt; the contents are still
    /// given when `zfs` printed them), or `zfs` fails otherwise.
    fn resume_token(&self, token: &str) -> Result<ResumeToken, ResumeTokenError>;

    /// The user holds on `snapshots` (`zfs holds -H -p`): (snapshot, tag) pairs.
    ///
    /// # Errors
    /// When a snapshot is missing, `zfs holds` fails, or its output cannot be read.
    fn holds(&self, snapshots: &[SnapshotName]) -> Result<Vec<(SnapshotName, String)>, HoldsError>;

    /// The health and capacity of `pools` (`zpool list -H -p` and `zpool status -p`:
    /// one of each, whatever the number of pools), in the order of `pools`. A pool
    /// that is not imported is left out of the result.
    ///
    /// # Errors
    /// When either command fails or its output cannot be read.
    fn pools(&self, pools: &[DatasetName]) -> Result<Vec<PoolHealth>, PoolsError>;
}

/// The part of `full` that [`ZfsBackend::list_named`] returns: the datasets named in
/// `datasets`, each with only the snapshots named in `snapshots`.
pub(crate) fn named_part(
    full: &Inventory,
    datasets: &[DatasetName],
    snapshots: &[SnapshotName],
) -> Inventory {
    let mut out = Inventory::new();
    for name in datasets {
        if let Some(d) = full.dataset(name) {
            let mut d = d.clone();
            d.snapshots.retain(|s| {
                snapshots
                    .iter()
                    .any(|n| n.dataset() == name && n.short() == &s.name)
            });
            d.bookmarks.clear();
            out.insert(d);
        }
    }
    out
}

/// A dataset or a snapshot, as the target of a property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "user properties live on datasets and snapshots"
)]
pub enum PropertyTarget {
    /// A filesystem or volume.
    Dataset(DatasetName),
    /// A snapshot.
    Snapshot(SnapshotName),
}

impl std::fmt::Display for PropertyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PropertyTarget::Dataset(d) => d.fmt(f),
            PropertyTarget::Snapshot(s) => s.fmt(f),
        }
    }
}

/// Why a user property name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a user property name (lowercase `module:name` of [a-z0-9_.:-], at most 256 bytes)")]
#[non_exhaustive]
pub struct PropertyNameError {
    /// The refused name.
    pub name: String,
}

/// Checks a user property name the way `zfs` does: contains `:`, only `[a-z0-9_.:-]`, at
/// most 256 bytes.
///
/// # Errors
/// When the name breaks a rule.
pub fn check_property_name(name: &str) -> Result<(), PropertyNameError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.contains(':')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PropertyNameError {
            name: name.to_owned(),
        })
    }
}

/// Why a hold tag is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hold tag {tag:?} is empty, longer than 255 bytes, or contains a NUL")]
#[non_exhaustive]
pub struct TagError {
    /// The refused tag.
    pub tag: String,
}

/// Checks a hold tag: 1 to 255 bytes, no NUL.
///
/// # Errors
/// When the tag breaks a rule.
pub fn check_tag(tag: &str) -> Result<(), TagError> {
    if tag.is_empty() || tag.len() > 255 || tag.contains('\0') {
        Err(TagError {
            tag: tag.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// What to send: `zfs send [-w] [-i|-I BASE] DATASET@SNAP` or `zfs send -t TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SendRequest {
    /// The source dataset.
    pub dataset: DatasetName,
    /// Full, incremental or resume.
    pub spec: SendSpec,
    /// `-w`: raw (required for encrypted datasets whose key is not loaded).
    pub raw: bool,
}

impl SendRequest {
    /// A request.
    pub fn new(dataset: DatasetName, spec: SendSpec, raw: bool) -> Self {
        SendRequest { dataset, spec, raw }
    }
}

/// Where to receive and how: `zfs receive [-s] [-u] [-F] [-x P] [-o P=V] TARGET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReceiveRequest {
    /// The target dataset.
    pub target: DatasetName,
    /// Options.
    pub options: RecvOptions,
}

impl ReceiveRequest {
    /// A request.
    pub fn new(target: DatasetName, options: RecvOptions) -> Self {
        ReceiveRequest { target, options }
    }
}

/// What a finished receive tells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReceiveOutcome {
    /// Bytes received, when they passed through zsnap and were counted.
    pub bytes: Option<u64>,
}

/// A process that writes a send stream to its stdout, not yet started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendCommand {
    /// The program (`zfs`, or `ssh` for a remote sender).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables to set.
    pub env: Vec<(String, String)>,
    /// The dataset being sent, for error context.
    pub dataset: DatasetName,
}

impl SendCommand {
    /// A command.
    pub fn new(
        program: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        dataset: DatasetName,
    ) -> Self {
        SendCommand {
            program,
            args,
            env,
            dataset,
        }
    }
}

/// The sending half of a transfer: the stream's bytes, and the sender's fate.
pub trait SendStream: Read + Send {
    /// The sending process, when it has not started: the receiver may run it in a
    /// native pipeline instead of reading. After this returns `Some`, reading yields
    /// nothing and [`SendStream::finish`] reports success; the receiver reports the
    /// sender's failure.
    fn take_command(&mut self) -> Option<SendCommand>;

    /// Waits for the sender and reports how it ended. Call after reading to the end (or
    /// giving up: then the sender is stopped).
    ///
    /// # Errors
    /// When the sender failed.
    fn finish(self: Box<Self>) -> Result<(), SendError>;
}

/// A snapshot left alone by [`ZfsBackend::destroy`] because it changed since planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The snapshot.
    pub name: ShortName,
    /// The guid the planner saw.
    pub planned: Guid,
    /// The guid it has now; `None` when it is gone.
    pub now: Option<Guid>,
}

/// A snapshot ZFS refused to destroy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestroyRefusal {
    /// The snapshot.
    pub name: ShortName,
    /// Its guid.
    pub guid: Guid,
    /// Why (held, has clones, busy …), with the stderr.
    pub failure: ZfsFailure,
}

/// What [`ZfsBackend::destroy`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestroyReport {
    /// Destroyed.
    pub destroyed: Vec<ShortName>,
    /// Refused by ZFS; the others were destroyed.
    pub refused: Vec<DestroyRefusal>,
    /// Not attempted: gone, or a different snapshot under the same name.
    pub skipped: Vec<Skipped>,
}

/// Running a process failed: it could not start, or it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program could not be started or its pipes read.
    #[error("run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error(transparent)]
    Failed(#[from] ZfsFailure),
    /// It wrote a line longer than zsnap reads (no `zfs` output line is that long):
    /// it was stopped rather than held in memory.
    #[error("run {program}: an output line is longer than {limit} bytes")]
    LineTooLong {
        /// The program.
        program: String,
        /// The bound ([`crate::cli::MAX_OUTPUT_LINE`]).
        limit: usize,
    },
}

impl CommandError {
    /// The classified failure, when the process ran.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            CommandError::Failed(f) => Some(f),
            CommandError::Spawn { .. } | CommandError::LineTooLong { .. } => None,
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    let mut s = String::new();
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&x.to_string());
    }
    s
}

/// [`ZfsBackend::list`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// `zfs list` failed.
    #[error("list datasets under {roots}")]
    Command {
        /// The roots, comma-separated.
        roots: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// Its output could not be parsed (kept verbatim up to 4 KiB).
    #[error("parse the listing of {roots} (output begins {excerpt:?})")]
    Parse {
        /// The roots, comma-separated.
        roots: String,
        /// The beginning of the output.
        excerpt: String,
        /// The cause.
        #[source]
        source: zsnap_core::zfs_list::ListParseError,
    },
}

impl ListError {
    pub(crate) fn command(roots: &[DatasetName], source: CommandError) -> Self {
        ListError::Command {
            roots: join(roots),
            source,
        }
    }

    pub(crate) fn parse(
        roots: &[DatasetName],
        output: &str,
        source: zsnap_core::zfs_list::ListParseError,
    ) -> Self {
        let mut end = output.len().min(4096);
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        ListError::Parse {
            roots: join(roots),
            excerpt: output[..end].to_owned(),
            source,
        }
    }

    /// The classified failure, when `zfs list` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            ListError::Command { source, .. } => source.failure(),
            ListError::Parse { .. } => None,
        }
    }
}

/// [`ZfsBackend::snapshot`] failed; nothing was created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// `zfs snapshot` failed.
    #[error("create snapshots {names}")]
    Command {
        /// The names, comma-separated.
        names: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// No names were given.
    #[error("create snapshots: no names given")]
    Empty,
    /// A property name is not a user property.
    #[error("create snapshots {names}")]
    Property {
        /// The names, comma-separated.
        names: String,
        /// The cause.
        #[source]
        source: PropertyNameError,
    },
}

impl SnapshotError {
    pub(crate) fn command(names: &[SnapshotName], source: CommandError) -> Self {
        SnapshotError::Command {
            names: join(names),
            source,
        }
    }

    /// The classified failure, when `zfs snapshot` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            SnapshotError::Command { source, .. } => source.failure(),
            _ => None,
        }
    }
}

/// [`ZfsBackend::destroy`] failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestroyError {
    /// Re-listing the dataset to re-check guids failed.
    #[error("re-check the snapshots of {dataset} before destroying them")]
    Recheck {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The re-listing printed something unreadable (kept verbatim up to 4 KiB).
    #[error("re-check the snapshots of {dataset}: unreadable listing line {line:?}")]
    RecheckParse {
        /// The dataset.
        dataset: DatasetName,
        /// The line.
        line: String,
    },
    /// `zfs destroy` failed for the whole batch.
    #[error("destroy snapshots {names} of {dataset}")]
    Command {
        /// The dataset.
        dataset: DatasetName,
        /// The short names, comma-separated.
        names: String,
        /// What was destroyed by earlier batches of this call before the failure.
        destroyed: Vec<ShortName>,
        /// The cause.
        #[source]
        source: CommandError,
    },
}

impl DestroyError {
    /// The classified failure, when a process ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            DestroyError::Recheck { source, .. } | DestroyError::Command { source, .. } => {
                source.failure()
            }
            DestroyError::RecheckParse { .. } => None,
        }
    }
}

/// [`ZfsBackend::hold`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HoldError {
    /// `zfs hold` failed.
    #[error("hold {snapshot} with tag {tag:?}")]
    Command {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The tag.
        tag: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The tag is invalid.
    #[error("hold {snapshot}")]
    Tag {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The cause.
        #[source]
        source: TagError,
    },
}

impl HoldError {
    /// Checks the arguments every backend must refuse before running anything.
    pub(crate) fn check_args(snapshot: &SnapshotName, tag: &str) -> Result<(), HoldError> {
        check_tag(tag).map_err(|source| HoldError::Tag {
            snapshot: snapshot.clone(),
            source,
        })
    }

    /// The classified failure, when `zfs hold` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            HoldError::Command { source, .. } => source.failure(),
            HoldError::Tag { .. } => None,
        }
    }
}

/// [`ZfsBackend::release`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// `zfs release` failed.
    #[error("release hold {tag:?} from {snapshot}")]
    Command {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The tag.
        tag: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The tag is invalid.
    #[error("release a hold from {snapshot}")]
    Tag {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The cause.
        #[source]
        source: TagError,
    },
}

impl ReleaseError {
    /// Checks the arguments every backend must refuse before running anything.
    pub(crate) fn check_args(snapshot: &SnapshotName, tag: &str) -> Result<(), ReleaseError> {
        check_tag(tag).map_err(|source| ReleaseError::Tag {
            snapshot: snapshot.clone(),
            source,
        })
    }

    /// The classified failure, when `zfs release` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            ReleaseError::Command { source, .. } => source.failure(),
            ReleaseError::Tag { .. } => None,
        }
    }
}

/// [`ZfsBackend::bookmark`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookmarkError {
    /// `zfs bookmark` failed.
    #[error("bookmark {snapshot} as {bookmark}")]
    Command {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The bookmark.
        bookmark: BookmarkName,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The bookmark would belong to another dataset.
    #[error("bookmark {snapshot} as {bookmark}: a bookmark must be in the snapshot's dataset")]
    OtherDataset {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The bookmark.
        bookmark: BookmarkName,
    },
}

impl BookmarkError {
    /// Checks the arguments every backend must refuse before running anything.
    pub(crate) fn check_args(
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), BookmarkError> {
        if snapshot.dataset() == bookmark.dataset() {
            Ok(())
        } else {
            Err(BookmarkError::OtherDataset {
                snapshot: snapshot.clone(),
                bookmark: bookmark.clone(),
            })
        }
    }

    /// The classified failure, when `zfs bookmark` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            BookmarkError::Command { source, .. } => source.failure(),
            BookmarkError::OtherDataset { .. } => None,
        }
    }
}

/// [`ZfsBackend::destroy_bookmark`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestroyBookmarkError {
    /// `zfs destroy DATASET#NAME` failed.
    #[error("destroy bookmark {bookmark}")]
    Command {
        /// The bookmark.
        bookmark: BookmarkName,
        /// The cause.
        #[source]
        source: CommandError,
    },
}

impl DestroyBookmarkError {
    /// The classified failure, when `zfs destroy` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            DestroyBookmarkError::Command { source, .. } => source.failure(),
        }
    }
}

/// [`ZfsBackend::set_property`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetPropertyError {
    /// `zfs set` failed.
    #[error("set property {name} on {target}")]
    Command {
        /// The target.
        target: PropertyTarget,
        /// The property.
        name: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The name is not a user property.
    #[error("set a property on {target}")]
    Name {
        /// The target.
        target: PropertyTarget,
        /// The cause.
        #[source]
        source: PropertyNameError,
    },
}

impl SetPropertyError {
    /// The classified failure, when `zfs set` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            SetPropertyError::Command { source, .. } => source.failure(),
            SetPropertyError::Name { .. } => None,
        }
    }
}

/// [`ZfsBackend::property`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetPropertyError {
    /// `zfs get` failed.
    #[error("read property {name} of {target}")]
    Command {
        /// The target.
        target: PropertyTarget,
        /// The property.
        name: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The name is not a user property.
    #[error("read a property of {target}")]
    Name {
        /// The target.
        target: PropertyTarget,
        /// The cause.
        #[source]
        source: PropertyNameError,
    },
    /// `zfs get` printed something unreadable.
    #[error("read property {name} of {target}: unreadable output {output:?}")]
    Parse {
        /// The target.
        target: PropertyTarget,
        /// The property.
        name: String,
        /// The output.
        output: String,
    },
}

impl GetPropertyError {
    /// The classified failure, when `zfs get` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            GetPropertyError::Command { source, .. } => source.failure(),
            _ => None,
        }
    }
}

/// The sending half of a transfer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// `zfs send` failed.
    #[error("send from {dataset}")]
    Command {
        /// The source dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The backend cannot send this (e.g. `-I` from a bookmark).
    #[error("send from {dataset}: {problem}")]
    Unsupported {
        /// The source dataset.
        dataset: DatasetName,
        /// What is not possible.
        problem: String,
    },
    /// A stream that does not come from `zfs send` (a stored backup) could not be
    /// read, or did not match its checksum.
    #[error("stream of {dataset}")]
    Stream {
        /// The dataset the stream was sent from.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The resume token (which the target supplies) could not be decoded on the source:
    /// the resume is not run.
    #[error("resume the send from {dataset}: the target's resume token cannot be checked")]
    ResumeToken {
        /// The source dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: Box<ResumeTokenError>,
    },
    /// The resume token names another snapshot than the one the plan resumes: the
    /// resume is not run.
    #[error("resume the send from {dataset}: the target's resume token names {named} (guid {named_guid}), not {}", expected.as_deref().unwrap_or("a snapshot of this dataset"))]
    ResumeMismatch {
        /// The source dataset.
        dataset: DatasetName,
        /// What the token names.
        named: Box<SnapshotName>,
        /// Its guid.
        named_guid: Guid,
        /// The snapshot the plan resumes (`dataset@name (guid G)`), when it knows it.
        expected: Option<String>,
    },
}

impl SendError {
    /// The classified failure, when `zfs send` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            SendError::Command { source, .. } => source.failure(),
            // A stale token is classified by `zfs send -nvP -t`'s own failure.
            SendError::ResumeToken { source, .. } => match &**source {
                ResumeTokenError::Command { source, .. } => source.failure(),
                _ => None,
            },
            SendError::Unsupported { .. }
            | SendError::Stream { .. }
            | SendError::ResumeMismatch { .. } => None,
        }
    }
}

/// [`ZfsBackend::receive`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// `zfs receive` failed (whatever the sender did). The message names the sender's
    /// failure too, when there was one: it is often the cause (the receiver only saw
    /// the stream end early).
    #[error("receive into {target}{}", sender_note(.sender.as_deref()))]
    Command {
        /// The target dataset.
        target: DatasetName,
        /// The sender's error too, when both failed (usually the same cause).
        sender: Option<Box<SendError>>,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The receiver succeeded but the sender failed.
    #[error("receive into {target}: the sender failed")]
    Sender {
        /// The target dataset.
        target: DatasetName,
        /// The cause.
        #[source]
        source: SendError,
    },
    /// Moving the bytes between the two failed.
    #[error("receive into {target}: copy the stream")]
    Copy {
        /// The target dataset.
        target: DatasetName,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `; the sender failed too: …` with the sender's error and its causes.
fn sender_note(sender: Option<&SendError>) -> String {
    let Some(e) = sender else {
        return String::new();
    };
    format!(
        " (the sender failed too: {})",
        crate::failure::error_chain(e)
    )
}

impl RecvError {
    /// The receiver's classified failure, else the sender's.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            RecvError::Command { source, .. } => source.failure(),
            RecvError::Sender { source, .. } => source.failure(),
            RecvError::Copy { .. } => None,
        }
    }
}

/// [`ZfsBackend::abort_receive`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AbortReceiveError {
    /// `zfs receive -A` failed.
    #[error("abort the partial receive into {dataset}")]
    Command {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: CommandError,
    },
}

impl AbortReceiveError {
    /// The classified failure, when `zfs receive -A` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            AbortReceiveError::Command { source, .. } => source.failure(),
        }
    }
}

/// [`ZfsBackend::estimate_send`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstimateError {
    /// `zfs send -nvP` failed.
    #[error("estimate the size of a send from {dataset}")]
    Command {
        /// The source dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// Its output could not be read (kept verbatim up to 4 KiB).
    #[error("estimate the size of a send from {dataset}: unreadable output {output:?}")]
    Parse {
        /// The source dataset.
        dataset: DatasetName,
        /// The output.
        output: String,
        /// The cause.
        #[source]
        source: SendInfoParseError,
    },
    /// The backend cannot send this.
    #[error("estimate the size of a send from {dataset}: {problem}")]
    Unsupported {
        /// The source dataset.
        dataset: DatasetName,
        /// What is not possible.
        problem: String,
    },
}

impl EstimateError {
    /// The classified failure, when `zfs send -nvP` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            EstimateError::Command { source, .. } => source.failure(),
            _ => None,
        }
    }
}

/// [`ZfsBackend::resume_token`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeTokenError {
    /// `zfs send -nvP -t TOKEN` failed.
    #[error("decode resume token {excerpt}")]
    Command {
        /// The token's first characters.
        excerpt: String,
        /// The contents, when `zfs` printed them before failing (a stale token).
        decoded: Option<Box<ResumeToken>>,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// Its output could not be read (kept verbatim up to 4 KiB).
    #[error("decode resume token {excerpt}: unreadable output {output:?}")]
    Parse {
        /// The token's first characters.
        excerpt: String,
        /// The output.
        output: String,
        /// The cause.
        #[source]
        source: SendInfoParseError,
    },
}

impl ResumeTokenError {
    pub(crate) fn command(token: &str, decoded: Option<ResumeToken>, source: CommandError) -> Self {
        ResumeTokenError::Command {
            excerpt: token_excerpt(token),
            decoded: decoded.map(Box::new),
            source,
        }
    }

    pub(crate) fn parse(token: &str, output: &str, source: SendInfoParseError) -> Self {
        ResumeTokenError::Parse {
            excerpt: token_excerpt(token),
            output: output.chars().take(4096).collect(),
            source,
        }
    }

    /// The classified failure, when `zfs send` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            ResumeTokenError::Command { source, .. } => source.failure(),
            ResumeTokenError::Parse { .. } => None,
        }
    }

    /// Whether the token can never be resumed ([`FailureKind::StaleResumeToken`]): the
    /// partial receive must be aborted.
    pub fn is_stale(&self) -> bool {
        self.failure()
            .is_some_and(|f| f.kind == FailureKind::StaleResumeToken)
    }

    /// The contents `zfs` printed before failing, if any.
    pub fn decoded(&self) -> Option<&ResumeToken> {
        match self {
            ResumeTokenError::Command { decoded, .. } => decoded.as_deref(),
            ResumeTokenError::Parse { .. } => None,
        }
    }
}

/// [`ZfsBackend::holds`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HoldsError {
    /// `zfs holds` failed.
    #[error("list the holds of {snapshots}")]
    Command {
        /// The snapshots, comma-separated.
        snapshots: String,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// Its output could not be read.
    #[error("list the holds of {snapshots}")]
    Parse {
        /// The snapshots, comma-separated.
        snapshots: String,
        /// The cause.
        #[source]
        source: crate::holds::HoldsParseError,
    },
}

impl HoldsError {
    pub(crate) fn command(snapshots: &[SnapshotName], source: CommandError) -> Self {
        HoldsError::Command {
            snapshots: join(snapshots),
            source,
        }
    }

    pub(crate) fn parse(snapshots: &[SnapshotName], source: crate::holds::HoldsParseError) -> Self {
        HoldsError::Parse {
            snapshots: join(snapshots),
            source,
        }
    }

    /// The classified failure, when `zfs holds` ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            HoldsError::Command { source, .. } => source.failure(),
            HoldsError::Parse { .. } => None,
        }
    }
}

/// [`ZfsBackend::pools`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolsError {
    /// `zpool list` or `zpool status` failed.
    #[error("run zpool {command}")]
    Command {
        /// `list` or `status`.
        command: &'static str,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// The `zpool list` output could not be read (kept verbatim up to 4 KiB).
    #[error("read the output of zpool list (it begins {excerpt:?})")]
    ParseList {
        /// The beginning of the output.
        excerpt: String,
        /// The cause.
        #[source]
        source: PoolListParseError,
    },
    /// The `zpool status` output could not be read (kept verbatim up to 4 KiB).
    #[error("read the output of zpool status (it begins {excerpt:?})")]
    ParseStatus {
        /// The beginning of the output.
        excerpt: String,
        /// The cause.
        #[source]
        source: PoolStatusParseError,
    },
}

impl PoolsError {
    /// The beginning of `output`, for a parse error.
    pub(crate) fn excerpt(output: &str) -> String {
        let mut end = output.len().min(4096);
        while !output.is_char_boundary(end) {
            end -= 1;
        }
        output[..end].to_owned()
    }

    /// The classified failure, when a command ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            PoolsError::Command { source, .. } => source.failure(),
            PoolsError::ParseList { .. } | PoolsError::ParseStatus { .. } => None,
        }
    }
}

/// Reads the outputs of `zpool list` and `zpool status` into the health of `pools`
/// (see [`ZfsBackend::pools`]). Shared by both backends.
pub(crate) fn read_pools(
    list: &str,
    status: &str,
    pools: &[DatasetName],
) -> Result<Vec<PoolHealth>, PoolsError> {
    let usage =
        zsnap_core::zpool::parse_pool_list(list).map_err(|source| PoolsError::ParseList {
            excerpt: PoolsError::excerpt(list),
            source,
        })?;
    let st =
        zsnap_core::zpool::parse_pool_status(status).map_err(|source| PoolsError::ParseStatus {
            excerpt: PoolsError::excerpt(status),
            source,
        })?;
    Ok(zsnap_core::zpool::combine(usage, st, pools))
}

/// Splits snapshot names into groups whose joined length stays under `budget` bytes (one
/// `zfs holds` call each); a name longer than the budget gets its own group.
pub(crate) fn split_names(names: &[SnapshotName], budget: usize) -> Vec<&[SnapshotName]> {
    split_by(names, budget, |n| {
        n.dataset().as_str().len() + n.short().as_str().len() + 2
    })
}

/// `items` in consecutive groups whose `len`s add up to at most `budget` (an item
/// longer than the budget alone still gets its own group).
pub(crate) fn split_by<T>(items: &[T], budget: usize, len: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let add = len(item);
        if i > start && total + add > budget {
            out.push(&items[start..i]);
            start = i;
            total = 0;
        }
        total += add;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// The result of one atomic `zfs destroy DATASET@a,b,c` attempt.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// ZFS refused these members; nothing was destroyed.
    Refused(Vec<(ShortName, ZfsFailure)>),
    /// The whole call failed.
    Whole(CommandError),
}

impl AttemptError {
    /// What a destroy call of `batch` that failed with `failure` means: the members
    /// `zfs destroy` names as refused, or, when it names none, the whole call.
    pub(crate) fn from_failure(
        dataset: &DatasetName,
        batch: &[ShortName],
        failure: ZfsFailure,
    ) -> Self {
        let refused = parse_refusals(dataset, batch, &failure);
        if refused.is_empty() {
            AttemptError::Whole(CommandError::Failed(failure))
        } else {
            AttemptError::Refused(refused)
        }
    }
}

/// Destroys `batch` with retries: each refused member is reported and the rest tried
/// again, until a call succeeds, fails as a whole, or nothing is left. `attempt` is one
/// atomic destroy (which, like `zfs destroy`, destroys nothing when it refuses a member);
/// `userrefs` gives a member's holds to tell held from busy. Shared by both backends.
pub(crate) fn destroy_with_retry(
    dataset: &DatasetName,
    batch: Vec<(ShortName, Guid)>,
    report: &mut DestroyReport,
    userrefs: &dyn Fn(&ShortName) -> u64,
    attempt: &mut dyn FnMut(&[ShortName]) -> Result<(), AttemptError>,
) -> Result<(), DestroyError> {
    let mut batch = batch;
    while !batch.is_empty() {
        let names: Vec<ShortName> = batch.iter().map(|(n, _)| n.clone()).collect();
        match attempt(&names) {
            Ok(()) => {
                report.destroyed.extend(names);
                return Ok(());
            }
            Err(AttemptError::Refused(refused)) => {
                let before = batch.len();
                for (name, failure) in refused {
                    if let Some(i) = batch.iter().position(|(n, _)| *n == name) {
                        let (name, guid) = batch.remove(i);
                        let failure = failure.refine_held(userrefs(&name));
                        report.refused.push(DestroyRefusal {
                            name,
                            guid,
                            failure,
                        });
                    }
                }
                if batch.len() == before {
                    // A refusal naming no member of the batch: nothing to retry without.
                    return Err(DestroyError::Command {
                        dataset: dataset.clone(),
                        names: join(&names),
                        destroyed: report.destroyed.clone(),
                        source: CommandError::Failed(ZfsFailure::with_kind(
                            FailureKind::Other,
                            crate::failure::Exit::Unknown,
                            "zfs destroy refused members that were not in the batch",
                        )),
                    });
                }
            }
            Err(AttemptError::Whole(source)) => {
                return Err(DestroyError::Command {
                    dataset: dataset.clone(),
                    names: join(&names),
                    destroyed: report.destroyed.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Splits `names` into comma lists `DATASET@a,b,c` each at most `budget` bytes long (a
/// name longer than the budget alone still gets its own batch).
pub(crate) fn split_batches(
    dataset: &DatasetName,
    names: Vec<(ShortName, Guid)>,
    budget: usize,
) -> Vec<Vec<(ShortName, Guid)>> {
    let base = dataset.as_str().len() + 1;
    let mut out: Vec<Vec<(ShortName, Guid)>> = Vec::new();
    let mut len = base;
    for item in names {
        let add = item.0.as_str().len() + 1;
        match out.last_mut() {
            Some(cur) if len + add <= budget => {
                cur.push(item);
                len += add;
            }
            _ => {
                out.push(vec![item]);
                len = base + add;
            }
        }
    }
    out
}

/// A [`SendStream`] over anything readable (a stream file, stdin): no process to wait
/// for, so [`SendStream::finish`] always succeeds.
pub struct ReadStream<R> {
    inner: R,
}

impl<R> ReadStream<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        ReadStream { inner }
    }
}

impl<R: Read> Read for ReadStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Read + Send> SendStream for ReadStream<R> {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }

    fn finish(self: Box<Self>) -> Result<(), SendError> {
        Ok(())
    }
}

/// The members `zfs destroy DATASET@a,b,c` refused, from its stderr. OpenZFS 2.3 prints
/// `cannot destroy snapshot DATASET@NAME: REASON` for members the kernel refused (held:
/// "it's being held"), and `cannot destroy 'DATASET@NAME': snapshot has dependent
/// clones` followed by the clones for members its own pre-check refused; lines that
/// follow a refusal belong to it. Names may contain `: ` and `'`, so each line is matched
/// against the batch's own members (the longest that fits).
pub(crate) fn parse_refusals(
    dataset: &DatasetName,
    batch: &[ShortName],
    failure: &ZfsFailure,
) -> Vec<(ShortName, ZfsFailure)> {
    let member_at = |rest: &str, end: &str| {
        let rest = rest.strip_prefix(dataset.as_str())?.strip_prefix('@')?;
        batch
            .iter()
            .filter(|m| {
                rest.strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with(end))
            })
            .max_by_key(|m| m.as_str().len())
    };
    let mut out: Vec<(ShortName, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in failure.stderr.lines() {
        let member = if let Some(rest) = line.strip_prefix("cannot destroy snapshot ") {
            member_at(rest, ": ")
        } else if let Some(rest) = line.strip_prefix("cannot destroy '") {
            member_at(rest, "': ")
        } else {
            None
        };
        match member {
            Some(m) => match out.iter().position(|(n, _)| n == m) {
                Some(i) => current = Some(i),
                None => {
                    out.push((m.clone(), String::new()));
                    current = Some(out.len() - 1);
                }
            },
            None if line.starts_with("cannot ") || line.starts_with("could not ") => {
                current = None;
            }
            None => {}
        }
        if let Some(i) = current {
            out[i].1.push_str(line);
            out[i].1.push('\n');
        }
    }
    out.into_iter()
        .map(|(n, text)| (n, ZfsFailure::new(failure.exit, text)))
        .collect()
}

/// Reads the output of `zfs get -H -p -o value,source NAME TARGET`: `None` when the
/// source is `-` (not set). The value may hold tabs and newlines; the source is what
/// follows the last tab.
pub(crate) fn parse_get_value(output: &str) -> Option<Option<String>> {
    let body = output.strip_suffix('\n')?;
    let (value, source) = body.rsplit_once('\t')?;
    if source.contains('\n') {
        return None;
    }
    if source == "-" {
        Some(None)
    } else {
        Some(Some(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Exit;

    fn sn(s: &str) -> ShortName {
        s.parse().expect("a valid short name")
    }

    #[test]
    fn property_names() {
        assert!(check_property_name("zsnap:managed").is_ok());
        assert!(check_property_name("com.example:a-b_c.d").is_ok());
        for bad in [
            "",
            "nocolon",
            "Upper:case",
            "a:b c",
            "a:b=c",
            &"a:".repeat(200),
        ] {
            assert!(check_property_name(bad).is_err(), "{bad:?}");
        }
        insta::assert_snapshot!(check_property_name("x").unwrap_err(), @r#""x" is not a user property name (lowercase `module:name` of [a-z0-9_.:-], at most 256 bytes)"#);
    }

    #[test]
    fn tags() {
        assert!(check_tag("zsnap").is_ok());
        assert!(check_tag("-r; rm -rf / 'x'\n").is_ok());
        assert!(check_tag("").is_err());
        assert!(check_tag(&"t".repeat(256)).is_err());
    }

    #[test]
    fn batches_stay_under_the_budget() {
        let ds: DatasetName = "tank/a".parse().expect("valid");
        let names: Vec<(ShortName, Guid)> = (0..100)
            .map(|i| (sn(&format!("snap{i:03}")), Guid(i)))
            .collect();
        let batches = split_batches(&ds, names.clone(), 64);
        let flat: Vec<_> = batches.iter().flatten().cloned().collect();
        assert_eq!(flat, names, "order and members kept");
        for b in &batches {
            let arg = format!(
                "{}@{}",
                ds,
                b.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert!(arg.len() <= 64, "{arg}");
        }
        assert_eq!(split_batches(&ds, names, 1).len(), 100);
    }

    #[test]
    fn refusals_from_real_texts() {
        let ds: DatasetName = "src/a".parse().expect("valid");
        let batch = vec![sn("x"), sn("held"), sn("x: y"), sn("ok")];
        let f = ZfsFailure::new(
            Exit::Code(1),
            "cannot destroy 'src/a@x': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\nsrc/a_clone\ncannot destroy snapshot src/a@held: it's being held. Run 'zfs holds -r src/a@held' to see holders.\ncannot destroy snapshot src/a@x: y: dataset is busy\n",
        );
        let r = parse_refusals(&ds, &batch, &f);
        let kinds: Vec<(&str, FailureKind)> = r.iter().map(|(n, f)| (n.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("x", FailureKind::HasClones),
                ("held", FailureKind::Held),
                ("x: y", FailureKind::Busy)
            ]
        );
        assert!(
            r[0].1.stderr.contains("src/a_clone"),
            "the clone list stays with its refusal"
        );
        let whole = ZfsFailure::new(
            Exit::Code(1),
            "cannot destroy snapshots: permission denied\n",
        );
        assert!(parse_refusals(&ds, &batch, &whole).is_empty());
    }

    #[test]
    fn retry_destroys_the_others_and_reports_the_refused() {
        let ds: DatasetName = "tank/a".parse().expect("valid");
        let batch = vec![(sn("a"), Guid(1)), (sn("b"), Guid(2)), (sn("c"), Guid(3))];
        let mut calls = Vec::new();
        let mut report = DestroyReport::default();
        let held = |n: &ShortName| u64::from(n.as_str() == "b");
        let r = destroy_with_retry(&ds, batch, &mut report, &held, &mut |names| {
            calls.push(names.to_vec());
            if names.iter().any(|n| n.as_str() == "b") {
                Err(AttemptError::Refused(vec![(
                    sn("b"),
                    ZfsFailure::new(
                        Exit::Code(1),
                        "cannot destroy snapshot tank/a@b: dataset is busy\n",
                    ),
                )]))
            } else {
                Ok(())
            }
        });
        assert!(r.is_ok());
        assert_eq!(calls.len(), 2);
        assert_eq!(report.destroyed, vec![sn("a"), sn("c")]);
        assert_eq!(report.refused.len(), 1);
        assert_eq!(report.refused[0].failure.kind, FailureKind::Held);
    }
}
