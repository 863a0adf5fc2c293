//! Restore chains ([`resolve_restore`]) and deleting single backups
//! ([`Catalog::plan_delete`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{resolve, BackupEntry, BackupId, Catalog, DatasetBackups, Link, Resolved};
use super::prune::{n_backups, ordered_deletions, Deletion};
use crate::inventory::Guid;
use crate::names::{DatasetName, ShortName};

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
