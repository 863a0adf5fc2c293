//! [`plan_backup_prune`]: retention for a store, chain by chain.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::catalog::{BackupId, Catalog, DatasetBackups, EntryState, Link};
use crate::duration::Span;
use crate::inventory::Guid;
use crate::naming::recognize_any;
use crate::plan::{KeepReason, Note};
use crate::retention::{evaluate, Candidate, RetentionPolicy};
use crate::zfs_names::{DatasetName, ShortName};

/// How long a stream without a sidecar is left alone, counted from when it was last
/// written: another zsnap may still be uploading it, or about to write its sidecar.
pub const UNFINISHED_GRACE: Span = Span::from_secs(3600);

/// A safety rule that keeps a backup whatever the policy says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupProtection {
    /// The newest restorable backup of its dataset: the base of the next incremental.
    Newest,
    /// An unfinished upload written to less than [`UNFINISHED_GRACE`] ago.
    UploadMayBeRunning,
    /// A complete backup whose chain is broken: kept for a person to look at.
    Broken,
    /// A backup whose sidecar cannot be used: kept for a person to look at.
    Damaged,
    /// A backup whose stream is gone (its sidecar is left): kept, so the loss stays
    /// visible until a person deletes it (`zsnap backups delete`).
    Missing,
}

impl fmt::Display for BackupProtection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackupProtection::Newest => "newest restorable backup of the dataset",
            BackupProtection::UploadMayBeRunning => "unfinished upload that may still be running",
            BackupProtection::Broken => "broken chain (its parent is not in the store)",
            BackupProtection::Damaged => "damaged (its sidecar cannot be used)",
            BackupProtection::Missing => "missing (its stream is gone, its sidecar is left)",
        })
    }
}

/// What the prune planner decided about one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupVerdict {
    /// Kept: by rules of the policy (`reasons`, on the backup that restores a kept
    /// snapshot), because kept backups are restored through it (`needed_by`), or by a
    /// safety rule (`protections`). At least one of the three is not empty.
    Keep {
        /// Rules that keep its snapshot.
        reasons: Vec<KeepReason>,
        /// Kept backups whose restore receives this one first.
        needed_by: Vec<BackupId>,
        /// Safety rules.
        protections: Vec<BackupProtection>,
    },
    /// Deleted: no rule keeps its snapshot and no kept backup needs it, or
    /// (`redundant_with`) another kept backup restores the same snapshot.
    Delete {
        /// The kept backup of the same snapshot, when there is one.
        redundant_with: Option<BackupId>,
    },
    /// An unfinished upload older than [`UNFINISHED_GRACE`]: deleted.
    CleanUp,
}

/// One decision about one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupDecision {
    /// The backup.
    pub id: BackupId,
    /// Its dataset.
    pub dataset: DatasetName,
    /// Its snapshot.
    pub snapshot: ShortName,
    /// The snapshot's creation time.
    pub created: DateTime<Utc>,
    /// What was decided.
    pub verdict: BackupVerdict,
}

/// Which object of a backup a deletion removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectRole {
    /// The stream.
    Stream,
    /// The sidecar.
    Sidecar,
    /// The record of an earlier deletion ([`super::PendingDeletion`]).
    Record,
}

/// One object to delete from a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Deletion {
    /// Its key below the store's root.
    pub key: String,
    /// Stream or sidecar.
    pub role: ObjectRole,
    /// The backup it belongs to; `None` for an orphan sidecar.
    pub id: Option<BackupId>,
    /// Why.
    pub reason: String,
}

/// The objects to delete from a store, in order, and the decisions behind them.
///
/// The order is safe to stop at any point: backups go newest first within a dataset
/// (so no incremental ever outlives a backup it is restored after), and for each
/// backup its stream goes before its sidecar. The executor records the keys in a
/// [`super::PendingDeletion`] before the first deletion and removes the record after
/// the last, so a sidecar an interrupted deletion left is recognised as such (the
/// next prune finishes it), while a sidecar whose stream was lost otherwise stays a
/// [`EntryState::Missing`] backup (a stream left alone would look unfinished).
#[must_use = "a plan does nothing until it is applied"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupPrunePlan {
    /// The instant the plan was made for.
    pub now: DateTime<Utc>,
    /// The verdict on every backup, by dataset and key.
    pub decisions: Vec<BackupDecision>,
    /// The objects to delete, in the order they must go.
    pub deletions: Vec<Deletion>,
    /// Things the user should know.
    pub notes: Vec<Note>,
}

impl BackupPrunePlan {
    /// Whether there is nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.deletions.is_empty()
    }
}

/// The deletions of the entries `doomed` of one dataset (with their reasons), in a
/// safe order: entries without a createtxg first, then by createtxg, newest first;
/// each stream before its sidecar.
pub(crate) fn ordered_deletions(
    backups: &DatasetBackups,
    mut doomed: Vec<(usize, String)>,
) -> Vec<Deletion> {
    let entries = &backups.entries;
    doomed.sort_by_key(|&(i, _)| {
        (
            entries[i].createtxg().map(std::cmp::Reverse),
            std::cmp::Reverse(i),
        )
    });
    let mut out = Vec::with_capacity(doomed.len() * 2);
    for (i, reason) in doomed {
        let e = &entries[i];
        out.push(Deletion {
            key: e.key().to_owned(),
            role: ObjectRole::Stream,
            id: Some(e.id.clone()),
            reason: reason.clone(),
        });
        if e.sidecar_listed {
            out.push(Deletion {
                key: e.sidecar_key(),
                role: ObjectRole::Sidecar,
                id: Some(e.id.clone()),
                reason,
            });
        }
    }
    out
}

/// Plans retention for a store: which backups `policy` keeps, at `now` in `tz`, and
/// which objects to delete.
///
/// The policy judges **restorable snapshots** of each dataset (one candidate per guid,
/// with its name's label when it has one, as snapshot retention does), so every rule
/// of a [`RetentionPolicy`] means what it means for snapshots. For each kept snapshot
/// the backup with the shortest restore chain carries the reasons, and every backup on
/// that chain is kept as `needed_by` it: a full stays as long as any kept incremental
/// is restored through it. The newest restorable snapshot of each dataset is always
/// kept. Broken chains and damaged backups are kept and reported in
/// [`BackupPrunePlan::notes`]; unfinished uploads older than [`UNFINISHED_GRACE`] and
/// orphan sidecars are deleted; keys zsnap did not write are never touched.
///
/// After the deletions, every backup that is kept can still be restored; see
/// [`BackupPrunePlan`] for why the order is safe to interrupt.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::backup::{plan_backup_prune, Catalog, StoreObject};
/// use zsnap_core::retention::RetentionPolicy;
///
/// let written = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let objects = [StoreObject::new("tank/20261123T150000Z_a.full.zfs", 10, written)];
/// let catalog = Catalog::build(&objects, &BTreeMap::new());
/// let policy = RetentionPolicy::new(vec!["last 3".parse().unwrap()]);
/// // Ten minutes later the upload may still be running; two hours later it is gone.
/// let soon = plan_backup_prune(&catalog, &policy, written + chrono::TimeDelta::minutes(10), chrono_tz::UTC);
/// assert!(soon.is_empty());
/// let later = plan_backup_prune(&catalog, &policy, written + chrono::TimeDelta::hours(2), chrono_tz::UTC);
/// assert_eq!(later.deletions[0].key, "tank/20261123T150000Z_a.full.zfs");
/// ```
pub fn plan_backup_prune(
    catalog: &Catalog,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    tz: Tz,
) -> BackupPrunePlan {
    let mut plan = BackupPrunePlan {
        now,
        decisions: Vec::new(),
        deletions: Vec::new(),
        notes: Vec::new(),
    };
    for backups in catalog.datasets.values() {
        prune_dataset(backups, policy, now, tz, &mut plan);
    }
    for key in &catalog.orphan_sidecars {
        plan.deletions.push(Deletion {
            key: key.clone(),
            role: ObjectRole::Sidecar,
            id: None,
            reason: "left by an interrupted deletion (its stream is gone): finishing it".to_owned(),
        });
    }
    if !catalog.orphan_sidecars.is_empty() {
        plan.notes.push(Note::new(
            None,
            format!(
                "an earlier prune or delete was interrupted: {} of its sidecars are \
                 deleted now",
                catalog.orphan_sidecars.len()
            ),
        ));
    }
    // Last: once every key they name is gone, the records of earlier deletions go.
    for key in &catalog.pending {
        plan.deletions.push(Deletion {
            key: key.clone(),
            role: ObjectRole::Record,
            id: None,
            reason: "record of an earlier deletion".to_owned(),
        });
    }
    if !catalog.foreign.is_empty() {
        plan.notes.push(Note::new(
            None,
            format!(
                "{} in the store not written by zsnap: left alone",
                objects(catalog.foreign.len())
            ),
        ));
    }
    plan
}

/// `1 object`, `2 objects`.
fn objects(n: usize) -> String {
    if n == 1 {
        "1 object".to_owned()
    } else {
        format!("{n} objects")
    }
}

/// `1 backup`, `2 backups`.
pub(crate) fn n_backups(n: usize) -> String {
    if n == 1 {
        "1 backup".to_owned()
    } else {
        format!("{n} backups")
    }
}

fn prune_dataset(
    backups: &DatasetBackups,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    tz: Tz,
    plan: &mut BackupPrunePlan,
) {
    let entries = &backups.entries;
    // One point per restorable guid, carried by its shortest chain (then lowest key).
    let mut point_of: HashMap<Guid, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let (true, Some(g)) = (e.is_restorable(), e.guid()) {
            let slot = point_of.entry(g).or_insert(i);
            if e.chain_len < entries[*slot].chain_len {
                *slot = i;
            }
        }
    }
    let mut points: Vec<usize> = point_of.values().copied().collect();
    let order_key = |i: &usize| {
        let s = entries[*i]
            .sidecar
            .as_ref()
            .expect("a restorable backup has a sidecar");
        (s.createtxg, s.created, *i)
    };
    points.sort_by_key(order_key);
    let labels: Vec<Option<String>> = points
        .iter()
        .map(|&i| recognize_any(entries[i].stream.snapshot().as_str()).and_then(|r| r.label))
        .collect();
    let candidates: Vec<Candidate<'_>> = points
        .iter()
        .zip(&labels)
        .map(|(&i, label)| {
            let s = entries[i]
                .sidecar
                .as_ref()
                .expect("a restorable backup has a sidecar");
            Candidate::new(
                &s.snapshot,
                s.guid,
                s.createtxg,
                s.created,
                label.as_deref(),
            )
        })
        .collect();
    let verdicts = evaluate(policy, &candidates, now, tz);

    let mut reasons: BTreeMap<usize, Vec<KeepReason>> = BTreeMap::new();
    let mut protections: BTreeMap<usize, Vec<BackupProtection>> = BTreeMap::new();
    let mut needed_by: BTreeMap<usize, Vec<BackupId>> = BTreeMap::new();
    let mut kept_points: Vec<usize> = Vec::new();
    for (k, (&i, why)) in points.iter().zip(verdicts).enumerate() {
        let newest = k + 1 == points.len();
        if newest {
            protections
                .entry(i)
                .or_default()
                .push(BackupProtection::Newest);
        }
        if !why.is_empty() {
            reasons.insert(i, why);
        }
        if newest || reasons.contains_key(&i) {
            kept_points.push(i);
        }
    }
    for &i in &kept_points {
        let path = backups.restore_path(i);
        for &j in &path[..path.len().saturating_sub(1)] {
            needed_by.entry(j).or_default().push(entries[i].id.clone());
        }
    }

    let grace = UNFINISHED_GRACE.to_chrono();
    let mut doomed: Vec<(usize, String)> = Vec::new();
    let (mut broken, mut damaged, mut missing) = (0, 0, 0);
    for (i, e) in entries.iter().enumerate() {
        let mut keep_for = |p: BackupProtection| protections.entry(i).or_default().push(p);
        let verdict = match (&e.state, &e.link) {
            (EntryState::Unfinished, _) if now - e.modified < grace => {
                keep_for(BackupProtection::UploadMayBeRunning);
                None
            }
            (EntryState::Unfinished, _) => {
                let why = format!(
                    "unfinished upload, last written {}",
                    e.modified.format("%Y-%m-%dT%H:%M:%SZ")
                );
                doomed.push((i, why));
                Some(BackupVerdict::CleanUp)
            }
            (EntryState::Damaged { .. }, _) => {
                damaged += 1;
                keep_for(BackupProtection::Damaged);
                None
            }
            (EntryState::Missing, _) => {
                missing += 1;
                keep_for(BackupProtection::Missing);
                None
            }
            (_, Some(Link::Broken { .. })) => {
                broken += 1;
                keep_for(BackupProtection::Broken);
                None
            }
            _ if reasons.contains_key(&i)
                || needed_by.contains_key(&i)
                || protections.contains_key(&i) =>
            {
                None
            }
            _ => {
                let point = e.guid().and_then(|g| point_of.get(&g)).copied();
                let redundant_with = point
                    .filter(|&p| {
                        p != i && (reasons.contains_key(&p) || protections.contains_key(&p))
                    })
                    .map(|p| entries[p].id.clone());
                let why = match &redundant_with {
                    Some(other) => {
                        format!("{other} restores the same snapshot through a shorter chain")
                    }
                    None => "no rule keeps its snapshot and no kept backup needs it".to_owned(),
                };
                doomed.push((i, why));
                Some(BackupVerdict::Delete { redundant_with })
            }
        };
        let verdict = verdict.unwrap_or_else(|| BackupVerdict::Keep {
            reasons: reasons.remove(&i).unwrap_or_default(),
            needed_by: needed_by.remove(&i).unwrap_or_default(),
            protections: protections.remove(&i).unwrap_or_default(),
        });
        plan.decisions.push(BackupDecision {
            id: e.id.clone(),
            dataset: backups.dataset.clone(),
            snapshot: e.stream.snapshot().clone(),
            created: e.stream.created(),
            verdict,
        });
    }
    let name = &backups.dataset;
    if broken > 0 {
        plan.notes.push(Note::new(
            Some(name.clone()),
            format!(
                "{} of {name}: chain broken (a parent is missing from the store); kept, \
                 see `zsnap backups list` and `zsnap backups delete`",
                n_backups(broken)
            ),
        ));
    }
    if damaged > 0 {
        plan.notes.push(Note::new(
            Some(name.clone()),
            format!(
                "{} of {name} with a sidecar that cannot be used: kept; see `zsnap backups list`",
                n_backups(damaged)
            ),
        ));
    }
    if missing > 0 {
        plan.notes.push(Note::new(
            Some(name.clone()),
            format!(
                "{} of {name} MISSING: the sidecar is in the store but the stream is gone; \
                 kept so the loss stays visible, see `zsnap backups verify` and \
                 `zsnap backups delete`",
                n_backups(missing)
            ),
        ));
    }
    plan.deletions.extend(ordered_deletions(backups, doomed));
}
