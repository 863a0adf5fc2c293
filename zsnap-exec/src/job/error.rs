//! Why a job, or one of its phases, could not go on ([`JobError`]).

use zsnap_core::naming::Label;
use zsnap_core::replicate::ReplicationError;
use zsnap_core::{DatasetName, Location, SimulateError, SnapshotPlanError};

use super::listing::ListFailure;
use super::phase::PhaseKind;
use crate::backend::ListError;
use crate::replicate::ReplicateError;

/// A job could not run, or one of its phases could not be planned. Reads after
/// "failed to …"; render it with every cause with
/// [`error_chain`](crate::failure::error_chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A root could not be listed.
    #[error("list the datasets of {root} at {location}")]
    List {
        /// Where.
        location: Location,
        /// The root (as in [`Engine::roots`](super::Engine::roots)).
        root: DatasetName,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// The backends given have none for a location of the config (a bug in how they
    /// were opened).
    #[error("no backend for location {location}")]
    NoBackend {
        /// The location.
        location: Location,
    },
    /// A job names a target the config does not define.
    #[error("unknown target {name:?}; the config defines {}", defined(known))]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// The targets the config defines.
        known: Vec<String>,
    },
    /// An on-demand snapshot job asks for an expiry on a label a policy schedules.
    #[error("give the snapshots labelled {label} an expiry")]
    Expiry {
        /// The label.
        label: Label,
        /// The cause (which dataset and policy).
        #[source]
        source: SnapshotPlanError,
    },
    /// The snapshot planner refused.
    #[error("plan the snapshots at {location}")]
    PlanSnapshots {
        /// Where.
        location: Location,
        /// The cause.
        #[source]
        source: SnapshotPlanError,
    },
    /// A target's source has no `[[datasets]]` entry.
    #[error("target {target}: no [[datasets]] entry with root {root}")]
    NoSourceEntry {
        /// The target's name.
        target: String,
        /// Its source root.
        root: DatasetName,
    },
    /// Asking the source of a replication about resume tokens and cursor holds (to
    /// plan it, in a dry run) failed.
    #[error("plan replication to {target}")]
    AskSource {
        /// The target's name.
        target: String,
        /// The cause.
        #[source]
        source: ReplicateError,
    },
    /// The replication planner refused (a dry run).
    #[error("plan replication to {target}")]
    PlanReplication {
        /// The target's name.
        target: String,
        /// The cause.
        #[source]
        source: ReplicationError,
    },
    /// A replication could not be planned or started (a real run).
    #[error("replicate to {target}")]
    Replicate {
        /// The target's name.
        target: String,
        /// The cause.
        #[source]
        source: ReplicateError,
    },
    /// A replication's round after giving up stale resume tokens could not be planned
    /// or started; the first round was applied.
    #[error(
        "replicate to {target}: re-plan after giving up the stale resume tokens of {datasets}"
    )]
    Replan {
        /// The target's name.
        target: String,
        /// The target datasets whose tokens were given up, comma-separated.
        datasets: String,
        /// The cause.
        #[source]
        source: Box<ReplicateError>,
    },
    /// A replication one of whose sides could not be listed.
    #[error("cannot replicate without listing both sides")]
    Unlisted {
        /// The target's name.
        target: String,
    },
    /// A backup phase was given to the engine, which does not plan backups.
    #[error("backups to {store} are planned by zsnap backup and the scheduled backups of zsnap run, not by the engine's phases")]
    BackupPhase {
        /// The store's URL.
        store: String,
    },
    /// In a dry run, a phase's plan would fail on the inventories the phases before it
    /// would leave (a bug in a planner).
    #[error("{phase}: the plan would fail")]
    Simulate {
        /// The phase.
        phase: PhaseKind,
        /// The cause.
        #[source]
        source: SimulateError,
    },
}

impl From<ListFailure> for JobError {
    fn from(f: ListFailure) -> Self {
        JobError::List {
            location: f.location,
            root: f.root,
            source: f.error,
        }
    }
}

fn defined(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}
