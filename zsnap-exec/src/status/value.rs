//! The values of a status ([`Status`]), as `zsnap status --json` prints them
//! (docs/json.md).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use zsnap_core::duration::Span;
use zsnap_core::zpool::PoolHealth;
use zsnap_core::{DatasetName, Location, Verdict};

/// One label of one dataset.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LabelStatus {
    /// The label.
    pub label: String,
    /// The newest snapshot of that label (short name).
    pub newest: Option<String>,
    /// Its creation time.
    pub newest_time: Option<DateTime<Utc>>,
    /// Its age in seconds.
    pub age_seconds: Option<i64>,
    /// When the label is next due.
    pub next_due: Option<DateTime<Utc>>,
    /// Snapshots of that label.
    pub count: usize,
    /// Whether the label is taken on demand (not scheduled): no rule that ignores
    /// labels destroys its snapshots (see `zsnap plan` for each one's reason).
    pub on_demand: bool,
    /// For a label declared in the policy's `on_demand`: the expiry a new snapshot of it
    /// gets (`"30d"`, or `"never"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_expiry: Option<String>,
    /// For an on-demand label: how the prune planner keeps each of its snapshots,
    /// oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptStatus>,
}

impl LabelStatus {
    pub(super) fn new(label: String, on_demand: bool) -> Self {
        LabelStatus {
            label,
            newest: None,
            newest_time: None,
            age_seconds: None,
            next_due: None,
            count: 0,
            on_demand,
            on_demand_expiry: None,
            kept: Vec::new(),
        }
    }
}

/// How one on-demand snapshot is kept, as the prune planner decided at `now`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct KeptStatus {
    /// The snapshot (short name).
    pub snapshot: String,
    /// Until when it is kept: its expiry, when every reason that keeps it ends then
    /// (the latest of them); `None` when it is kept with no end (no expiry, a rule
    /// naming its label), destroyed by the next prune, or not pruned at all.
    pub kept_until: Option<DateTime<Utc>>,
    /// The planner's verdict, as `zsnap plan --json` gives it; `None` when its dataset
    /// is not pruned now (its policy says `prune = false`, or a target it replicates
    /// to could not be listed).
    pub verdict: Option<Verdict>,
}

/// A root that could not be listed, and what it holds.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UnreachableStatus {
    /// Where.
    pub location: Location,
    /// The root whose `zfs list` failed.
    pub root: String,
    /// Why, with its causes.
    pub error: String,
    /// The roots of the `[[datasets]]` entries in it, whose status is unknown.
    pub datasets: Vec<String>,
    /// The targets whose state is unknown: their dataset, or their source, is in it.
    pub targets: Vec<String>,
}

/// One managed dataset.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatasetStatus {
    /// Where.
    pub location: Location,
    /// The dataset.
    pub dataset: String,
    /// Its policy.
    pub policy: String,
    /// Its snapshots (all, managed or not).
    pub snapshots: usize,
    /// Per label of its schedule (and adopted labels).
    pub labels: Vec<LabelStatus>,
    /// Whether an interrupted receive left a resume token.
    pub resumable: bool,
}

/// One source dataset on one target.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TargetStatus {
    /// The target's name.
    pub target: String,
    /// The source dataset.
    pub source: String,
    /// The target dataset.
    pub dataset: String,
    /// The newest snapshot both have (short name).
    pub newest_common: Option<String>,
    /// How much older it is than the source's newest snapshot, in seconds.
    pub lag_seconds: Option<i64>,
    /// Whether the target has an interrupted receive to resume.
    pub resume_pending: bool,
}

/// The backups of one dataset in one `[backups.NAME]` store, or a store that could not
/// be read.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupStatus {
    /// The `[backups.NAME]`.
    pub name: String,
    /// The store.
    pub store: String,
    /// The dataset (`None` when the store could not be read).
    pub dataset: Option<String>,
    /// When the newest restorable backup's snapshot was taken.
    pub newest: Option<DateTime<Utc>>,
    /// Its age in seconds.
    pub age_seconds: Option<i64>,
    /// The configured period (`every`), in seconds.
    pub every_seconds: u64,
    /// Restorable backups.
    pub restorable: usize,
    /// Unfinished uploads (no sidecar).
    pub unfinished: usize,
    /// Damaged backups and backups on broken chains: they need a person.
    pub damaged: usize,
    /// Why the store could not be read.
    pub error: Option<String>,
}

/// What `zsnap status` reports (`zsnap status --json`; see docs/json.md).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// When.
    pub now: DateTime<Utc>,
    /// Managed datasets.
    pub datasets: Vec<DatasetStatus>,
    /// Replication state.
    pub targets: Vec<TargetStatus>,
    /// Backups in the `[backups.NAME]` stores (see [`super::backup_status`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<BackupStatus>,
    /// The roots that could not be listed (a pool exported, a host unreachable): what
    /// is in them is missing from `datasets` and `targets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<UnreachableStatus>,
    /// The pools the datasets and targets live on, by location (see
    /// [`super::pool_status`]); empty unless asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolsAt>,
}

/// The pools of one location: what `zpool list` and `zpool status` said, or why they
/// could not be asked.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PoolsAt {
    /// Where.
    pub location: Location,
    /// The pools the config's roots there live on, in order.
    pub wanted: Vec<DatasetName>,
    /// What zpool said of those of them that are imported.
    pub pools: Vec<PoolHealth>,
    /// Why zpool could not be asked (the host is unreachable, zpool failed): then the
    /// pools' health is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A duration in its two largest units, as status and check messages say it: `3d4h`,
/// not `3d4h12m7s`; `in 5m` when negative.
pub fn age(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs < 0 {
        return format!("in {}", age(-d));
    }
    let span = Span::from_secs(u64::try_from(secs).unwrap_or(0));
    let s = span.to_string();
    let mut out = String::new();
    let mut units = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            out.push_str(&num);
            out.push(c);
            num.clear();
            units += 1;
            if units == 2 {
                break;
            }
        }
    }
    out
}
