//! Restore chains ([`resolve_restore`]) and deleting single backups
//! ([`Catalog::plan_delete`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{
    resolve, BackupEntry, BackupId, Catalog, DatasetBackups, EntryState, Link, Resolved,
};
use super::store_prune::{n_backups, ordered_deletions, Deletion};
use crate::inventory::Guid;
use crate::zfs_names::{DatasetName, ShortName};

/// Which point of a dataset's backups to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RestoreTarget {
    /// The newest restorable snapshot (by createtxg).
    Latest,
    /// The newest restorable snapshot created at or before this instant.
    At(DateTime<Utc>),
    /// This snapshot.
    Snapshot(ShortName),
}

/// Why nothing can be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The store has no complete backup of the dataset.
    #[error("the store has no complete backup of {dataset}{}", incomplete_note(*.incomplete))]
    NoBackups {
        /// The dataset.
        dataset: DatasetName,
        /// How many unfinished or damaged ones it has.
        incomplete: usize,
    },
    /// Every complete backup of the dataset is on a broken chain.
    #[error("no backup of {dataset} can be restored: every chain is broken")]
    AllBroken {
        /// The dataset.
        dataset: DatasetName,
    },
    /// Nothing was created at or before the time asked for.
    #[error("no restorable backup of {dataset} was taken at or before {}; the oldest is from {}", rfc(.at), rfc(.oldest))]
    NothingAt {
        /// The dataset.
        dataset: DatasetName,
        /// The time asked for.
        at: DateTime<Utc>,
        /// The oldest restorable snapshot's creation.
        oldest: DateTime<Utc>,
    },
    /// The snapshot has no backup in the store.
    #[error("snapshot {dataset}@{snapshot} has no backup in the store")]
    NotBackedUp {
        /// The dataset.
        dataset: DatasetName,
        /// The snapshot.
        snapshot: ShortName,
    },
    /// The snapshot's backups are unfinished or damaged.
    #[error(
        "snapshot {dataset}@{snapshot} has no complete backup, only unfinished or damaged ones"
    )]
    Incomplete {
        /// The dataset.
        dataset: DatasetName,
        /// The snapshot.
        snapshot: ShortName,
    },
    /// The snapshot's backups are on a broken chain.
    #[error(
        "snapshot {dataset}@{snapshot} cannot be restored: its chain needs {parent} \
         (guid {guid}), which no restorable backup in the store recreates"
    )]
    Broken {
        /// The dataset.
        dataset: DatasetName,
        /// The snapshot.
        snapshot: ShortName,
        /// The missing parent.
        parent: ShortName,
        /// Its guid.
        guid: Guid,
    },
    /// The store records a backup newer than the newest restorable point asked for,
    /// and it cannot be restored: restoring the older point would silently lose what
    /// the newer one holds.
    #[error(
        "the store records a newer backup of {dataset} than the one that can be \
         restored: {newer} ({problem}); the newest restorable is {chosen}. Restore an \
         earlier point explicitly (--snapshot {chosen}, or --allow-older), or repair \
         the store (`zsnap backups verify`)"
    )]
    NewerNotRestorable {
        /// The dataset.
        dataset: DatasetName,
        /// The newest restorable snapshot that would have been restored.
        chosen: ShortName,
        /// The newer backup that cannot be restored.
        newer: BackupId,
        /// Why it cannot.
        problem: String,
    },
}

/// What is wrong with a backup newer than the restore point, for
/// [`RestoreError::NewerNotRestorable`].
fn unusable(e: &BackupEntry) -> String {
    match (&e.state, &e.link) {
        (EntryState::Missing, _) => "its stream is missing from the store".to_owned(),
        (EntryState::Damaged { problem }, _) => format!("it is damaged ({problem})"),
        (_, Some(Link::Broken { parent, .. })) => {
            format!("its chain is broken (no restorable backup of {parent})")
        }
        _ => "it cannot be restored".to_owned(),
    }
}

fn incomplete_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} unfinished or damaged)")
    }
}

fn rfc(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The backups to receive, in order, to restore `target` of `dataset`: a full, then
/// each incremental whose parent guid is the guid of the one before. Among several
/// backups of the target snapshot, the one with the shortest chain.
///
/// # Errors
/// A [`RestoreError`] when the store has no restorable backup of the target.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::backup::{resolve_restore, Catalog, RestoreError, RestoreTarget};
///
/// let catalog = Catalog::build(&[], &BTreeMap::new());
/// let at = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let e = resolve_restore(&catalog, &"tank".parse().unwrap(), &RestoreTarget::At(at)).unwrap_err();
/// assert_eq!(e.to_string(), "the store has no complete backup of tank");
/// ```
pub fn resolve_restore(
    catalog: &Catalog,
    dataset: &DatasetName,
    target: &RestoreTarget,
) -> Result<Vec<BackupEntry>, RestoreError> {
    resolve_restore_with(catalog, dataset, target, false)
}

/// [`resolve_restore`], except that with `allow_older` a [`RestoreTarget::Latest`] or
/// [`RestoreTarget::At`] may resolve to a point older than a newer backup the store
/// records but cannot restore (missing, damaged, on a broken chain). Without it that
/// is [`RestoreError::NewerNotRestorable`]: the store never silently restores less
/// than it says it holds. A [`RestoreTarget::Snapshot`] names its point explicitly.
///
/// # Errors
/// See [`resolve_restore`].
pub fn resolve_restore_with(
    catalog: &Catalog,
    dataset: &DatasetName,
    target: &RestoreTarget,
    allow_older: bool,
) -> Result<Vec<BackupEntry>, RestoreError> {
    let Some(backups) = catalog.dataset(dataset) else {
        return Err(RestoreError::NoBackups {
            dataset: dataset.clone(),
            incomplete: 0,
        });
    };
    let entries = &backups.entries;
    let complete = entries.iter().filter(|e| e.is_complete()).count();
    if complete == 0 {
        return Err(RestoreError::NoBackups {
            dataset: dataset.clone(),
            incomplete: entries.len(),
        });
    }
    // The restorable entries with the shortest chain for their snapshot, oldest first.
    let mut restorable: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].is_restorable())
        .collect();
    let time = |i: usize| {
        let s = entries[i]
            .sidecar
            .as_ref()
            .expect("a restorable backup has a sidecar");
        (s.createtxg, s.created)
    };
    restorable.sort_by_key(|&i| (time(i), entries[i].chain_len, i));
    let chosen = match target {
        RestoreTarget::Latest => {
            let newest = restorable.last().map(|&i| time(i));
            restorable
                .iter()
                .copied()
                .find(|&i| Some(time(i)) == newest)
        }
        RestoreTarget::At(at) => {
            if restorable.is_empty() {
                None
            } else {
                let before: Vec<usize> = restorable
                    .iter()
                    .copied()
                    .filter(|&i| time(i).1 <= *at)
                    .collect();
                let newest = before.iter().map(|&i| (time(i).1, time(i).0)).max();
                let found = before
                    .iter()
                    .copied()
                    .find(|&i| Some((time(i).1, time(i).0)) == newest);
                if found.is_none() {
                    let oldest = restorable
                        .iter()
                        .map(|&i| time(i).1)
                        .min()
                        .expect("restorable is not empty here");
                    return Err(RestoreError::NothingAt {
                        dataset: dataset.clone(),
                        at: *at,
                        oldest,
                    });
                }
                found
            }
        }
        RestoreTarget::Snapshot(name) => {
            return snapshot_chain(backups, &restorable, name);
        }
    };
    let Some(i) = chosen else {
        return Err(RestoreError::AllBroken {
            dataset: dataset.clone(),
        });
    };
    if !allow_older {
        // Recorded = a sidecar says it was finished; an upload without one never was.
        let limit = match target {
            RestoreTarget::At(at) => Some(*at),
            _ => None,
        };
        let picked = entries[i].stream.created();
        let newer = entries
            .iter()
            .filter(|e| e.sidecar_listed && !e.is_restorable())
            .filter(|e| e.stream.created() > picked)
            .filter(|e| limit.is_none_or(|at| e.stream.created() <= at))
            .max_by_key(|e| e.stream.created());
        if let Some(e) = newer {
            return Err(RestoreError::NewerNotRestorable {
                dataset: dataset.clone(),
                chosen: entries[i].stream.snapshot().clone(),
                newer: e.id.clone(),
                problem: unusable(e),
            });
        }
    }
    Ok(chain(backups, i))
}

fn chain(backups: &DatasetBackups, i: usize) -> Vec<BackupEntry> {
    backups
        .restore_path(i)
        .into_iter()
        .map(|j| backups.entries[j].clone())
        .collect()
}

fn snapshot_chain(
    backups: &DatasetBackups,
    restorable: &[usize],
    name: &ShortName,
) -> Result<Vec<BackupEntry>, RestoreError> {
    let entries = &backups.entries;
    let of_snapshot = |i: &usize| entries[*i].stream.snapshot() == name;
    if let Some(&i) = restorable
        .iter()
        .filter(|i| of_snapshot(i))
        .min_by_key(|&&i| (entries[i].chain_len, i))
    {
        return Ok(chain(backups, i));
    }
    let dataset = backups.dataset.clone();
    let snapshot = name.clone();
    let mut any = false;
    for e in entries.iter().filter(|e| e.stream.snapshot() == name) {
        any = true;
        if let Some(Link::Broken { parent, guid }) = &e.link {
            return Err(RestoreError::Broken {
                dataset,
                snapshot,
                parent: parent.clone(),
                guid: *guid,
            });
        }
    }
    if any {
        Err(RestoreError::Incomplete { dataset, snapshot })
    } else {
        Err(RestoreError::NotBackedUp { dataset, snapshot })
    }
}

/// Why a backup cannot be deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeleteError {
    /// No backup has this id.
    #[error("the store has no backup {id}")]
    NoSuchBackup {
        /// The id asked for.
        id: BackupId,
    },
    /// Other backups are restored through it.
    #[error(
        "deleting {id} would leave {} that could no longer be restored ({}); \
         delete them too with --with-dependents",
        n_backups(.dependents.len()),
        list(.dependents)
    )]
    WouldOrphan {
        /// The backup.
        id: BackupId,
        /// The backups that could no longer be restored, by key.
        dependents: Vec<BackupId>,
    },
}

fn list(ids: &[BackupId]) -> String {
    const SHOWN: usize = 3;
    let mut s = ids
        .iter()
        .take(SHOWN)
        .map(BackupId::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(" … and {} more", ids.len() - SHOWN));
    }
    s
}

/// The objects to delete to remove one backup (and its dependents), in a safe order.
#[must_use = "a plan does nothing until it is applied"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupDeletePlan {
    /// The backups removed, in the order they go (newest first).
    pub removed: Vec<BackupId>,
    /// The objects to delete, in order (see [`super::BackupPrunePlan`]).
    pub deletions: Vec<Deletion>,
}

impl Catalog {
    /// Plans the deletion of the backup `id`. A backup that others are restored
    /// through (its dependents: the backups that are restorable now and would not be
    /// without it) is refused unless `with_dependents`, which deletes them too.
    ///
    /// # Errors
    /// [`DeleteError::NoSuchBackup`], or [`DeleteError::WouldOrphan`] without
    /// `with_dependents`.
    pub fn plan_delete(
        &self,
        id: &BackupId,
        with_dependents: bool,
    ) -> Result<BackupDeletePlan, DeleteError> {
        let no_such = || DeleteError::NoSuchBackup { id: id.clone() };
        let name: super::StreamName = id.as_str().parse().map_err(|_| no_such())?;
        let backups = self.dataset(name.dataset()).ok_or_else(no_such)?;
        let at = backups.position(id).ok_or_else(no_such)?;
        let entries = &backups.entries;
        let mut gone = vec![false; entries.len()];
        gone[at] = true;
        let after = resolve(entries, &gone);
        let dependents: Vec<usize> = (0..entries.len())
            .filter(|&i| {
                i != at
                    && entries[i].is_restorable()
                    && !matches!(after[i], Some((Resolved::Full | Resolved::Parent(_), _)))
            })
            .collect();
        if !dependents.is_empty() && !with_dependents {
            return Err(DeleteError::WouldOrphan {
                id: id.clone(),
                dependents: dependents.iter().map(|&i| entries[i].id.clone()).collect(),
            });
        }
        let doomed: Vec<(usize, String)> = std::iter::once((at, "deleted on request".to_owned()))
            .chain(
                dependents
                    .into_iter()
                    .map(|i| (i, format!("restored through {id}, which is deleted"))),
            )
            .collect();
        let deletions = ordered_deletions(backups, doomed);
        let mut removed: Vec<BackupId> = Vec::new();
        for d in &deletions {
            if let Some(id) = &d.id {
                if removed.last() != Some(id) {
                    removed.push(id.clone());
                }
            }
        }
        Ok(BackupDeletePlan { removed, deletions })
    }
}

/// How to bring a target dataset to a restore point: which streams of the chain it
/// still needs, and whether the first of them may roll it back (`zfs receive -F`).
///
/// Made by [`plan_restore`] from the chain ([`resolve_restore`]) and the target as it
/// is now, so a restore that stopped half-way continues from the last stream received
/// (snapshots are matched by guid, never by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RestorePlan {
    /// The dataset the backups are of.
    pub dataset: DatasetName,
    /// The dataset that receives.
    pub target: DatasetName,
    /// The whole chain to the restore point, full stream first.
    pub chain: Vec<BackupEntry>,
    /// How many leading streams of the chain the target already holds.
    pub done: usize,
    /// `zfs receive -F` for the first stream received (only with `force`).
    pub rollback: bool,
    /// The target holds the partial state of an interrupted `zfs receive -s`: discard
    /// it first (`zfs receive -A`). A stored stream cannot resume (that needs a live
    /// `zfs send -t`), and discarding loses nothing that was committed.
    pub abort_partial: bool,
    /// What the plan found, for the user.
    pub notes: Vec<String>,
}

impl RestorePlan {
    /// The streams still to receive, in order.
    pub fn remaining(&self) -> &[BackupEntry] {
        &self.chain[self.done.min(self.chain.len())..]
    }
}

/// Why a restore into a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestorePlanError {
    /// The chain is empty (nothing was resolved).
    #[error("nothing to restore into {target}: the chain is empty")]
    EmptyChain {
        /// The target.
        target: DatasetName,
    },
    /// The target exists and shares no snapshot with the chain.
    #[error("{target} exists and holds none of the snapshots of this restore; restore into a new dataset, or overwrite it with --force")]
    TargetExists {
        /// The target.
        target: DatasetName,
    },
    /// The target exists with snapshots of its own: a full stream cannot replace it
    /// (ZFS refuses), whatever the flags.
    #[error("{target} exists with {count} snapshot(s) (e.g. {example}) none of which this restore has; a full stream cannot overwrite it: restore into a new dataset, or destroy it first (zfs destroy -r {target})")]
    TargetHasSnapshots {
        /// The target.
        target: DatasetName,
        /// How many snapshots it has.
        count: usize,
        /// One of them.
        example: ShortName,
    },
    /// The target holds a snapshot of the chain but also newer ones the chain does not
    /// have.
    #[error("{target} has snapshots after {base}, the newest it shares with this restore: {}; {}", names(.newer), diverged_hint(.target, .base, *.can_force))]
    Diverged {
        /// The target.
        target: DatasetName,
        /// The newest chain snapshot it holds.
        base: ShortName,
        /// Its snapshots after `base`, oldest first.
        newer: Vec<ShortName>,
        /// Whether `--force` would help (there is a next stream to receive with `-F`).
        can_force: bool,
    },
}

fn names(list: &[ShortName]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn diverged_hint(target: &DatasetName, base: &ShortName, can_force: bool) -> String {
    if can_force {
        format!("--force rolls {target} back to {base} (destroying them) and continues")
    } else {
        format!("it is already past the restore point; roll it back yourself (zfs rollback -r {target}@{base}) or restore into a new dataset")
    }
}

/// Plans receiving `chain` (full first, as [`resolve_restore`] gives it) into
/// `target`, which is `existing` now (`None`: it does not exist).
///
/// - No target: receive every stream.
/// - A target holding chain snapshots (by guid) and nothing newer: receive the rest
///   (a restore that stopped continues; one that finished has nothing left).
/// - Newer snapshots of its own: refused, unless `force` and a stream is left to
///   receive, which is then received with `-F` (rolling the target back).
/// - No chain snapshot but snapshots of its own: refused (ZFS cannot overwrite it).
/// - No snapshot at all: refused unless `force` (`-F` replaces its contents).
///
/// # Errors
/// See [`RestorePlanError`].
///
/// # Example
/// ```
/// use zsnap_core::backup::{plan_restore, RestorePlanError};
/// use zsnap_core::{Dataset, DatasetKind, Guid};
/// let target = Dataset::new("restore/home".parse().unwrap(), DatasetKind::Filesystem, Guid(5));
/// let e = plan_restore(vec![], &target.name, Some(&target), false).unwrap_err();
/// assert!(matches!(e, RestorePlanError::EmptyChain { .. }));
/// ```
pub fn plan_restore(
    chain: Vec<BackupEntry>,
    target: &DatasetName,
    existing: Option<&crate::inventory::Dataset>,
    force: bool,
) -> Result<RestorePlan, RestorePlanError> {
    let Some(first) = chain.first() else {
        return Err(RestorePlanError::EmptyChain {
            target: target.clone(),
        });
    };
    let mut plan = RestorePlan {
        dataset: first.stream.dataset().clone(),
        target: target.clone(),
        chain: Vec::new(),
        done: 0,
        rollback: false,
        abort_partial: false,
        notes: Vec::new(),
    };
    let Some(ds) = existing else {
        plan.chain = chain;
        return Ok(plan);
    };
    if ds.props.receive_resume_token.is_some() {
        plan.abort_partial = true;
        plan.notes.push(format!(
            "{target} holds the partial state of an interrupted receive: discarded first (zfs receive -A)"
        ));
    }
    // The last stream of the chain whose snapshot the target has, by guid.
    let held = chain.iter().rposition(|e| {
        e.guid()
            .is_some_and(|g| ds.snapshots.iter().any(|s| s.guid == g))
    });
    match held {
        Some(k) => {
            let guid = chain[k].guid().expect("a held entry has a guid");
            let base_txg = ds
                .snapshots
                .iter()
                .find(|s| s.guid == guid)
                .map_or(0, |s| s.createtxg);
            let newer: Vec<ShortName> = ds
                .snapshots
                .iter()
                .filter(|s| s.createtxg > base_txg)
                .map(|s| s.name.clone())
                .collect();
            let base = chain[k].stream.snapshot().clone();
            if !newer.is_empty() {
                let can_force = k + 1 < chain.len();
                if !(force && can_force) {
                    return Err(RestorePlanError::Diverged {
                        target: target.clone(),
                        base,
                        newer,
                        can_force,
                    });
                }
                plan.rollback = true;
                plan.notes.push(format!(
                    "--force: the first receive rolls {target} back to {base}, destroying {}",
                    names(&newer)
                ));
            }
            plan.done = k + 1;
            if plan.done == chain.len() {
                plan.notes
                    .push(format!("{target} already holds {base}: nothing to receive"));
            } else {
                plan.notes.push(format!(
                    "{target} already holds {base} ({} of {} streams): continuing from there",
                    k + 1,
                    chain.len()
                ));
            }
        }
        None => {
            if let Some(s) = ds.snapshots.first() {
                return Err(RestorePlanError::TargetHasSnapshots {
                    target: target.clone(),
                    count: ds.snapshots.len(),
                    example: s.name.clone(),
                });
            }
            if !force {
                return Err(RestorePlanError::TargetExists {
                    target: target.clone(),
                });
            }
            plan.rollback = true;
            plan.notes.push(format!(
                "--force: the full stream replaces the contents of {target}"
            ));
        }
    }
    plan.chain = chain;
    Ok(plan)
}
