//! Why a replication cannot be planned.

use std::fmt::Write as _;

use crate::simulate::SimulateError;
use crate::zfs_names::{DatasetName, NameError, ShortName, SnapshotName};

/// Why [`plan_replication`](super::plan_replication) refused to plan. Reads after
/// "failed to plan replication: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// A mapping's source root is not in the source inventory.
    #[error("source dataset {dataset} is not in the source inventory")]
    SourceMissing {
        /// The source root.
        dataset: DatasetName,
    },
    /// The target dataset name a source dataset maps to is invalid.
    #[error("source dataset {source_dataset} cannot be received below {target_root}")]
    TargetName {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The mapping's target root.
        target_root: DatasetName,
        /// Why the name is invalid.
        #[source]
        cause: NameError,
    },
    /// Two source datasets map to the same target dataset.
    #[error("source datasets {first} and {second} both map to target {target_dataset}")]
    TargetConflict {
        /// The target dataset.
        target_dataset: DatasetName,
        /// One source.
        first: DatasetName,
        /// The other source.
        second: DatasetName,
    },
    /// One source dataset is covered by two mappings.
    #[error("source dataset {source_dataset} is mapped twice, to {first} and to {second}")]
    MappedTwice {
        /// The source dataset.
        source_dataset: DatasetName,
        /// One target dataset.
        first: DatasetName,
        /// The other target dataset.
        second: DatasetName,
    },
    /// The target has snapshots the source does not know, newer than the newest common
    /// snapshot (or no common snapshot at all), and rollback is not allowed.
    #[error("{}", diverged_message(.target_dataset, .source_dataset, .target_name, .common.as_ref(), .newer))]
    Diverged {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
        /// The target's name in the configuration.
        target_name: String,
        /// The newest snapshot of the target the source has (by guid), with its name on
        /// the target; `None` when they have nothing in common.
        common: Option<ShortName>,
        /// The target's snapshots newer than `common` (all of them when `None`), oldest
        /// first: what a rollback would destroy.
        newer: Vec<ShortName>,
    },
    /// The target dataset exists without snapshots: a full receive would overwrite
    /// whatever it holds, and rollback is not allowed.
    #[error("target {target_dataset} exists but has no snapshots; receiving {source_dataset} into it would overwrite it (allow rollback for target {target_name:?} to do so, or destroy it)")]
    TargetExists {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
        /// The target's name in the configuration.
        target_name: String,
    },
    /// A rollback is allowed but would destroy a held or cloned snapshot, which ZFS
    /// refuses.
    #[error("target {target_dataset} must be rolled back to receive {source_dataset}, but its snapshot @{snapshot} is held or has clones")]
    RollbackBlocked {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
        /// The pinned snapshot.
        snapshot: ShortName,
    },
    /// A rollback is allowed, but the target must be overwritten by a full receive and
    /// one side is encrypted: `zfs recv -F` neither destroys an encrypted dataset nor
    /// overwrites an unencrypted one with an encrypted stream.
    #[error("target {target_dataset} would have to be overwritten by a full receive of {source_dataset}, which ZFS refuses when either is encrypted (destroy {target_dataset} first)")]
    CannotOverwriteEncrypted {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
    },
    /// A rollback is allowed, but the target must be overwritten by a full receive and
    /// it is a clone, which `zfs recv -F` cannot overwrite.
    #[error("target {target_dataset} would have to be overwritten by a full receive of {source_dataset}, but it is a clone of {origin} (destroy or promote it first)")]
    TargetIsClone {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
        /// The snapshot it was cloned from.
        origin: SnapshotName,
    },
    /// An encrypted source and [`RawMode::Never`](super::RawMode::Never): zsnap never
    /// sends an encrypted dataset decrypted.
    #[error("source {source_dataset} is encrypted and sends to target {target_name:?} are configured not raw; zsnap never sends an encrypted dataset decrypted (allow raw sends)")]
    EncryptedNotRaw {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target's name in the configuration.
        target_name: String,
    },
    /// An encrypted source whose existing copy on the target is not encrypted (made by
    /// an earlier non-raw send): raw incrementals cannot be received into it.
    #[error("source {source_dataset} is encrypted but its copy {target_dataset} is not; raw incremental streams cannot be received into it (replicate to a new target dataset)")]
    EncryptionMismatch {
        /// The source dataset.
        source_dataset: DatasetName,
        /// The target dataset.
        target_dataset: DatasetName,
    },
    /// Target pruning is on but the target has no policy to prune by.
    #[error("target {target_name:?} is to be pruned but has no policy")]
    PruneWithoutPolicy {
        /// The target's name in the configuration.
        target_name: String,
    },
    /// The planned transfers do not simulate on the inventories, so the target cannot
    /// be pruned as they leave it. This is a bug of the planner.
    #[error(
        "the planned transfers do not apply to the inventories (a bug of the replication planner)"
    )]
    Simulation {
        /// What the simulation refused.
        #[source]
        cause: SimulateError,
    },
    /// The cursor bookmark's name would be invalid (the target name contains characters
    /// a bookmark name cannot, or the name is too long).
    #[error(
        "the cursor bookmark of {dataset} for target {target_name:?} would have an invalid name"
    )]
    CursorName {
        /// The source dataset.
        dataset: DatasetName,
        /// The target's name in the configuration.
        target_name: String,
        /// Why the name is invalid.
        #[source]
        cause: NameError,
    },
}

/// How many snapshot names a message lists before "and N more".
const LISTED: usize = 5;

fn diverged_message(
    target: &DatasetName,
    source: &DatasetName,
    target_name: &str,
    common: Option<&ShortName>,
    newer: &[ShortName],
) -> String {
    let mut m = String::new();
    match common {
        Some(c) => {
            let _ = write!(
                m,
                "target {target} has diverged from {source}: after @{c}, the newest snapshot they have in common, the target has {} the source does not: ",
                count(newer.len())
            );
        }
        None => {
            let _ = write!(
                m,
                "target {target} has nothing in common with {source} but has {}: ",
                count(newer.len())
            );
        }
    }
    for (i, n) in newer.iter().take(LISTED).enumerate() {
        if i > 0 {
            m.push_str(", ");
        }
        let _ = write!(m, "@{n}");
    }
    if newer.len() > LISTED {
        let _ = write!(m, " and {} more", newer.len() - LISTED);
    }
    let _ = write!(
        m,
        " (allow rollback for target {target_name:?} to destroy {})",
        if newer.len() == 1 { "it" } else { "them" }
    );
    m
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 snapshot".to_owned()
    } else {
        format!("{n} snapshots")
    }
}
