//! Plans: what the executor must do, in order, as plain values.
//!
//! A [`Plan`] is produced by a planner (snapshot, prune, replication), shown to the user
//! (with the reason for every step and every kept snapshot), serialized, simulated on an
//! inventory ([`Plan::simulate`]) and finally carried out step by step by `zsnap-exec`.
//! Every step names what it touches by name *and* guid, so the executor can re-check that
//! it is about to act on the very snapshot the planner saw.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backup::BackupStep;
use crate::inventory::Guid;
use crate::zfs_names::{BookmarkName, DatasetName, ShortName, SnapshotName};

/// Where a step runs: the id of a location (a host reached locally or over ssh).
///
/// Planners name the source location and each target location; the executor maps the
/// ids to backends. `local` is the conventional id of the machine zsnap runs on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Location(pub String);

impl Location {
    /// The machine zsnap runs on.
    pub fn local() -> Self {
        Location("local".to_owned())
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A snapshot named together with the guid the planner saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SnapshotRef {
    /// The part after `@`.
    pub name: ShortName,
    /// Its guid when planned; the executor refuses to act if it changed.
    pub guid: Guid,
}

impl SnapshotRef {
    /// A reference.
    pub fn new(name: ShortName, guid: Guid) -> Self {
        SnapshotRef { name, guid }
    }
}

/// Take snapshots: ONE atomic `zfs snapshot -o PROP=VALUE… NAME…` call, so every name
/// gets the same txg and the same instant.
///
/// OpenZFS accepts one such call only for snapshots of one pool and at most one snapshot
/// per dataset, so a planner emits one step per pool and "round" (the first due label of
/// every dataset, then the second…); with one label due on one pool that is one call.
///
/// The executor must run exactly one `zfs snapshot` with all of `names` and all of
/// `properties`, and fail the step as a whole if it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SnapshotStep {
    /// Where.
    pub location: Location,
    /// Every snapshot to create: one pool, at most one per dataset.
    pub names: Vec<SnapshotName>,
    /// User properties set on every new snapshot (at least the managed marker).
    pub properties: BTreeMap<String, String>,
    /// Why (which labels were due).
    pub reason: String,
}

impl SnapshotStep {
    /// A step taking `names` at once with `properties` on each.
    pub fn new(
        location: Location,
        names: Vec<SnapshotName>,
        properties: BTreeMap<String, String>,
        reason: impl Into<String>,
    ) -> Self {
        SnapshotStep {
            location,
            names,
            properties,
            reason: reason.into(),
        }
    }
}

/// Destroy snapshots of one dataset: one `zfs destroy DATASET@a,b,c` whose argument
/// stays under the planner's byte budget.
///
/// The executor must first check that each snapshot still has the planned guid (and skip
/// those that do not), then destroy the batch. If `zfs destroy` refuses one member
/// (held, cloned, busy), it must report that member and destroy the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestroyStep {
    /// Where.
    pub location: Location,
    /// The dataset whose snapshots these are.
    pub dataset: DatasetName,
    /// The snapshots, oldest first.
    pub snapshots: Vec<SnapshotRef>,
    /// Why (the policy that no longer keeps them).
    pub reason: String,
}

impl DestroyStep {
    /// A step destroying `snapshots` (oldest first) of `dataset`.
    pub fn new(
        location: Location,
        dataset: DatasetName,
        snapshots: Vec<SnapshotRef>,
        reason: impl Into<String>,
    ) -> Self {
        DestroyStep {
            location,
            dataset,
            snapshots,
            reason: reason.into(),
        }
    }
}

/// Place or release a user hold (`zfs hold TAG SNAP` / `zfs release TAG SNAP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HoldStep {
    /// Where.
    pub location: Location,
    /// The snapshot.
    pub snapshot: SnapshotName,
    /// Its guid when planned.
    pub guid: Guid,
    /// The hold tag.
    pub tag: String,
    /// Why.
    pub reason: String,
}

impl HoldStep {
    /// A hold (or release) of `tag` on `snapshot`.
    pub fn new(
        location: Location,
        snapshot: SnapshotName,
        guid: Guid,
        tag: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        HoldStep {
            location,
            snapshot,
            guid,
            tag: tag.into(),
            reason: reason.into(),
        }
    }
}

/// Create a bookmark of a snapshot (`zfs bookmark SNAP BOOKMARK`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BookmarkStep {
    /// Where.
    pub location: Location,
    /// The snapshot to bookmark.
    pub snapshot: SnapshotName,
    /// Its guid when planned.
    pub guid: Guid,
    /// The new bookmark.
    pub bookmark: BookmarkName,
    /// Why.
    pub reason: String,
}

impl BookmarkStep {
    /// A step bookmarking `snapshot` as `bookmark`.
    pub fn new(
        location: Location,
        snapshot: SnapshotName,
        guid: Guid,
        bookmark: BookmarkName,
        reason: impl Into<String>,
    ) -> Self {
        BookmarkStep {
            location,
            snapshot,
            guid,
            bookmark,
            reason: reason.into(),
        }
    }
}

/// Destroy a bookmark (`zfs destroy DATASET#NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DestroyBookmarkStep {
    /// Where.
    pub location: Location,
    /// The bookmark.
    pub bookmark: BookmarkName,
    /// Its guid when planned.
    pub guid: Guid,
    /// Why.
    pub reason: String,
}

impl DestroyBookmarkStep {
    /// A step destroying `bookmark`.
    pub fn new(
        location: Location,
        bookmark: BookmarkName,
        guid: Guid,
        reason: impl Into<String>,
    ) -> Self {
        DestroyBookmarkStep {
            location,
            bookmark,
            guid,
            reason: reason.into(),
        }
    }
}

/// The base of an incremental send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "ZFS sends incrementals from exactly snapshots or bookmarks"
)]
pub enum SendBase {
    /// `-i DATASET@name`
    Snapshot {
        /// The base snapshot on the source.
        name: ShortName,
        /// Its guid, which the target must have.
        guid: Guid,
    },
    /// `-i DATASET#name`
    Bookmark {
        /// The base bookmark on the source.
        name: ShortName,
        /// Its guid, which the target must have as a snapshot.
        guid: Guid,
    },
}

impl SendBase {
    /// The guid the target must already have.
    pub fn guid(&self) -> Guid {
        match self {
            SendBase::Snapshot { guid, .. } | SendBase::Bookmark { guid, .. } => *guid,
        }
    }
}

/// What `zfs send` sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SendSpec {
    /// `zfs send [-w] SRC@snapshot`: the whole snapshot; the target must not exist or be
    /// empty (or `force`).
    Full {
        /// The snapshot to send.
        snapshot: SnapshotRef,
    },
    /// `zfs send [-w] -i BASE SRC@snapshot` (or `-I` when `intermediates`, sending every
    /// snapshot between base and `snapshot`).
    Incremental {
        /// The base, which the target must have (same guid).
        base: SendBase,
        /// The newest snapshot to send.
        snapshot: SnapshotRef,
        /// `-I` instead of `-i`.
        intermediates: bool,
        /// The snapshots `-I` will create on the target, oldest first, for simulation
        /// and for checking the result; empty for `-i`.
        expected: Vec<SnapshotRef>,
    },
    /// `zfs send -t TOKEN`: continue an interrupted receive.
    Resume {
        /// The target's `receive_resume_token`.
        token: String,
        /// The snapshot the interrupted receive will produce, when known.
        snapshot: Option<SnapshotRef>,
    },
}

/// Options of the receiving side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecvOptions {
    /// `-F`: roll the target back (destroying its newer snapshots). Never planned unless
    /// the user allowed it for this target.
    pub force: bool,
    /// Do not mount received filesystems (`-u`); on by default.
    pub unmounted: bool,
    /// `-s`: keep a resume token if interrupted; on by default.
    pub resumable: bool,
    /// `-x PROP`: properties not taken from the stream.
    pub exclude_props: Vec<String>,
    /// `-o PROP=VALUE`: properties set on the received dataset.
    pub set_props: BTreeMap<String, String>,
}

impl RecvOptions {
    /// `recv -s -u` with nothing else: the safe default.
    pub fn safe() -> Self {
        RecvOptions {
            force: false,
            unmounted: true,
            resumable: true,
            exclude_props: Vec::new(),
            set_props: BTreeMap::new(),
        }
    }
}

/// Send a stream from one dataset and receive it into another:
/// `zfs send … | [ssh host] zfs recv -s -u … TARGET`.
///
/// The executor runs the pair as a pipeline, reports bytes as they pass, and on failure
/// leaves whatever resumable state `zfs recv -s` left; the next plan resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransferStep {
    /// Where the source dataset lives.
    pub from: Location,
    /// Where the target dataset lives.
    pub to: Location,
    /// Source dataset.
    pub source: DatasetName,
    /// Target dataset.
    pub target: DatasetName,
    /// What to send.
    pub send: SendSpec,
    /// `-w`: raw (encrypted blocks stay encrypted). Always on for encrypted sources.
    pub raw: bool,
    /// Receive options.
    pub recv: RecvOptions,
    /// Estimated stream size in bytes, when known.
    pub estimated_bytes: Option<u64>,
    /// Why.
    pub reason: String,
}

impl TransferStep {
    /// A non-raw transfer with [`RecvOptions::safe`] and no size estimate; set the
    /// public fields for anything else.
    pub fn new(
        from: Location,
        to: Location,
        source: DatasetName,
        target: DatasetName,
        send: SendSpec,
        reason: impl Into<String>,
    ) -> Self {
        TransferStep {
            from,
            to,
            source,
            target,
            send,
            raw: false,
            recv: RecvOptions::safe(),
            estimated_bytes: None,
            reason: reason.into(),
        }
    }
}

/// Abort an interrupted receive (`zfs recv -A TARGET`), discarding its partial state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AbortReceiveStep {
    /// Where.
    pub location: Location,
    /// The dataset with the partial receive.
    pub dataset: DatasetName,
    /// Why (e.g. the token's base is gone).
    pub reason: String,
}

impl AbortReceiveStep {
    /// A step aborting the interrupted receive into `dataset`.
    pub fn new(location: Location, dataset: DatasetName, reason: impl Into<String>) -> Self {
        AbortReceiveStep {
            location,
            dataset,
            reason: reason.into(),
        }
    }
}

/// One thing for the executor to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// See [`SnapshotStep`].
    Snapshot(SnapshotStep),
    /// See [`DestroyStep`].
    Destroy(DestroyStep),
    /// Place a hold; see [`HoldStep`].
    Hold(HoldStep),
    /// Release a hold; see [`HoldStep`].
    Release(HoldStep),
    /// See [`BookmarkStep`].
    Bookmark(BookmarkStep),
    /// See [`DestroyBookmarkStep`].
    DestroyBookmark(DestroyBookmarkStep),
    /// See [`TransferStep`].
    Transfer(TransferStep),
    /// See [`AbortReceiveStep`].
    AbortReceive(AbortReceiveStep),
    /// See [`BackupStep`].
    Backup(BackupStep),
}

impl Step {
    /// The human reason recorded by the planner.
    pub fn reason(&self) -> &str {
        match self {
            Step::Snapshot(s) => &s.reason,
            Step::Destroy(s) => &s.reason,
            Step::Hold(s) | Step::Release(s) => &s.reason,
            Step::Bookmark(s) => &s.reason,
            Step::DestroyBookmark(s) => &s.reason,
            Step::Transfer(s) => &s.reason,
            Step::AbortReceive(s) => &s.reason,
            Step::Backup(s) => &s.reason,
        }
    }

    /// Whether the step removes data (destroys, forced receives, aborted receives).
    pub fn is_destructive(&self) -> bool {
        match self {
            Step::Destroy(_) | Step::DestroyBookmark(_) | Step::AbortReceive(_) => true,
            Step::Transfer(t) => t.recv.force,
            Step::Snapshot(_)
            | Step::Hold(_)
            | Step::Release(_)
            | Step::Bookmark(_)
            | Step::Backup(_) => false,
        }
    }
}

/// Why a snapshot is kept by a retention rule: the rule and the bucket it filled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeepReason {
    /// The rule, as written in the policy (`daily = 7`, `last 3`, `grid 24x1h`…).
    pub rule: String,
    /// The bucket the snapshot stands for (`2026-11-23`, `2026-W47`, `#2 of 3`…).
    pub bucket: String,
    /// For the reasons that keep a snapshot by its expiry (an on-demand snapshot, or
    /// one taken with `zsnap:expires`): until when this reason keeps it. `None` for the
    /// rules of a policy, which keep a snapshot as long as it fills their bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<KeptUntil>,
}

impl KeepReason {
    /// A reason.
    pub fn new(rule: impl Into<String>, bucket: impl Into<String>) -> Self {
        KeepReason {
            rule: rule.into(),
            bucket: bucket.into(),
            until: None,
        }
    }

    /// The same reason, keeping the snapshot until `until`.
    #[must_use]
    pub fn with_until(mut self, until: KeptUntil) -> Self {
        self.until = Some(until);
        self
    }
}

/// Until when a [`KeepReason`] based on an expiry keeps a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeptUntil {
    /// Until its expiry; after it, the snapshot goes unless something else keeps it.
    Time {
        /// The expiry.
        time: DateTime<Utc>,
    },
    /// Until destroyed by hand: an on-demand snapshot without an expiry.
    NoExpiry,
    /// Until destroyed by hand: its `zsnap:expires` value is not a time (the reason's
    /// bucket quotes it).
    BadExpiry,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.rule, self.bucket)
    }
}

/// A safety rule that keeps a snapshot whatever the policy says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Protection {
    /// It has user holds.
    Held {
        /// Number of holds.
        userrefs: u64,
    },
    /// It has clones.
    Cloned {
        /// The clones.
        clones: Vec<DatasetName>,
    },
    /// It has clones that ZFS keeps hidden (such as the `DATASET/%recv` of an
    /// interrupted resumable receive), which pin it like clones do.
    HiddenClones {
        /// Their names, verbatim.
        clones: Vec<String>,
    },
    /// It is the newest snapshot of its dataset.
    Newest,
    /// It is the newest snapshot the dataset shares with a target (by guid).
    CommonWithTarget {
        /// The target.
        target: String,
    },
    /// zsnap did not create it and the policy does not adopt it.
    Unmanaged,
    /// On a target: it is the newest snapshot the dataset shares with its source (by
    /// guid), the base of the next incremental.
    CommonWithSource {
        /// The source's location.
        source: String,
    },
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protection::Held { userrefs } => write!(f, "held ({userrefs} holds)"),
            Protection::Cloned { clones } => {
                write!(f, "has clones (")?;
                for (i, c) in clones.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str(")")
            }
            Protection::HiddenClones { clones } => {
                write!(f, "pinned by hidden clones ({})", clones.join(", "))
            }
            Protection::Newest => f.write_str("newest snapshot of the dataset"),
            Protection::CommonWithTarget { target } => {
                write!(f, "newest snapshot in common with target {target}")
            }
            Protection::Unmanaged => f.write_str("not managed by zsnap"),
            Protection::CommonWithSource { source } => {
                write!(f, "newest snapshot in common with the source at {source}")
            }
        }
    }
}

/// What the planner decided about one existing snapshot, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Kept by these rules of the policy.
    Keep {
        /// Every rule that keeps it.
        reasons: Vec<KeepReason>,
    },
    /// Kept by safety rules, whatever the policy says (it may also be kept by rules).
    Protect {
        /// The safety rules.
        protections: Vec<Protection>,
        /// Rules of the policy that keep it too, if any.
        reasons: Vec<KeepReason>,
    },
    /// No rule keeps it: it is destroyed by this plan.
    Destroy,
}

/// One decision about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// Where.
    pub location: Location,
    /// The snapshot.
    pub snapshot: SnapshotName,
    /// Its guid.
    pub guid: Guid,
    /// Creation time.
    pub creation: DateTime<Utc>,
    /// What was decided.
    pub verdict: Verdict,
}

impl Decision {
    /// A decision.
    pub fn new(
        location: Location,
        snapshot: SnapshotName,
        guid: Guid,
        creation: DateTime<Utc>,
        verdict: Verdict,
    ) -> Self {
        Decision {
            location,
            snapshot,
            guid,
            creation,
            verdict,
        }
    }
}

/// A note the planner wants the user to read (a skipped dataset, an adopted snapshot…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Note {
    /// The dataset concerned, if any.
    pub dataset: Option<DatasetName>,
    /// The message.
    pub message: String,
}

impl Note {
    /// A note.
    pub fn new(dataset: Option<DatasetName>, message: impl Into<String>) -> Self {
        Note {
            dataset,
            message: message.into(),
        }
    }
}

/// An ordered list of steps plus the decisions that led to them.
#[must_use = "a plan does nothing until it is applied"]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// The instant the plan was made for.
    pub now: Option<DateTime<Utc>>,
    /// Steps, in the order they must run.
    pub steps: Vec<Step>,
    /// The verdict on every snapshot a retention policy looked at.
    pub decisions: Vec<Decision>,
    /// Things the user should know.
    pub notes: Vec<Note>,
    /// What the plan should do and cannot (a dataset whose snapshot name would be over
    /// ZFS's length limit): the rest of the plan runs, and the job fails naming each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Note>,
}

impl Plan {
    /// An empty plan for `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Plan {
            now: Some(now),
            ..Plan::default()
        }
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Appends another plan's steps, decisions, notes and problems after this one's.
    pub fn extend(&mut self, other: Plan) {
        self.steps.extend(other.steps);
        self.decisions.extend(other.decisions);
        self.notes.extend(other.notes);
        self.problems.extend(other.problems);
        if self.now.is_none() {
            self.now = other.now;
        }
    }
}
