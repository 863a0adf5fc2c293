//! What a job is made of and what running it gives: the [`Job`], its phases
//! ([`PhaseKind`]), and per phase the plan and what applying it did ([`Phase`],
//! [`StepResult`]), gathered in an [`Outcome`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::hooks::HookRun;
use zsnap_core::duration::Span;
use zsnap_core::naming::Label;
use zsnap_core::{Inventory, Location, Plan};

use crate::apply::{Report, StepOutcome};
use crate::failure::error_chain;

/// A job that changes things (or, dry, shows what it would change).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Job {
    /// Take due snapshots, or one label on demand.
    Snapshot {
        /// The on-demand label.
        label: Option<Label>,
        /// How long from now the on-demand snapshots expire.
        expire_in: Option<Span>,
    },
    /// Prune every source (targets are pruned by replication).
    Prune,
    /// Replicate to these targets (all when empty).
    Replicate {
        /// Target names.
        targets: Vec<String>,
    },
    /// Snapshot, replicate, prune.
    Run,
}

impl Job {
    /// The job's name, as the command running it is called: `snapshot`, `prune`,
    /// `replicate` or `run`.
    pub fn name(&self) -> &'static str {
        match self {
            Job::Snapshot { .. } => "snapshot",
            Job::Prune => "prune",
            Job::Replicate { .. } => "replicate",
            Job::Run => "run",
        }
    }
}

/// One phase of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PhaseKind {
    /// Take snapshots at a location.
    Snapshot {
        /// Where.
        location: Location,
    },
    /// Replicate to a target.
    Replicate {
        /// The target's name.
        target: String,
    },
    /// Prune a location.
    Prune {
        /// Where.
        location: Location,
    },
    /// Back up a dataset to a store (its snapshot, stream and bookmarks). Not a phase
    /// of the engine's jobs: the backups a front end runs are reported as such.
    Backup {
        /// The store's URL.
        store: String,
    },
}

impl std::fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhaseKind::Snapshot { location } => write!(f, "snapshot at {location}"),
            PhaseKind::Replicate { target } => write!(f, "replicate to {target}"),
            PhaseKind::Prune { location } => write!(f, "prune at {location}"),
            PhaseKind::Backup { store } => write!(f, "backup to {store}"),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StepResult {
    /// Index in the phase's plan.
    pub index: usize,
    /// `done`, `partial`, `failed` or `skipped`.
    pub outcome: String,
    /// The error and its causes, for failed steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The results of an applied plan, step by step (each failed step's error rendered
/// with all its causes).
pub fn results(report: &Report) -> Vec<StepResult> {
    report
        .steps
        .iter()
        .map(|s| StepResult {
            index: s.index,
            outcome: s.outcome.word().to_owned(),
            error: match &s.outcome {
                StepOutcome::Failed { error, .. } => Some(error_chain(error)),
                _ => None,
            },
        })
        .collect()
}

/// One phase: its plan and, unless dry, what applying it did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Phase {
    /// Which phase.
    pub phase: PhaseKind,
    /// The plan.
    pub plan: Plan,
    /// What applying it did (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<StepResult>>,
    /// Why the phase could not be planned, or only in part (a root it needs could not
    /// be listed: its datasets were left alone), with every cause; the other phases
    /// still ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The config's hooks this phase ran (`[hooks.NAME]`), in order; a failed one is
    /// also in [`Phase::error`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRun>,
}

impl Phase {
    /// A phase whose plan was applied, with what each step did.
    pub fn applied(phase: PhaseKind, plan: Plan, results: Vec<StepResult>) -> Self {
        Phase {
            phase,
            plan,
            results: Some(results),
            error: None,
            hooks: Vec::new(),
        }
    }

    /// A phase that could not be planned (or only in part), with why.
    pub fn unplanned(phase: PhaseKind, plan: Plan, error: Option<String>) -> Self {
        Phase {
            phase,
            plan,
            results: None,
            error,
            hooks: Vec::new(),
        }
    }

    /// Whether a step failed or was done only in part (a destroy ZFS refused some
    /// members of), or the phase could not be planned (or only in part).
    pub fn failed(&self) -> bool {
        self.error.is_some()
            || self
                .results
                .iter()
                .flatten()
                .any(|r| matches!(r.outcome.as_str(), "failed" | "skipped" | "partial"))
    }

    /// Whether some step was done.
    pub fn did_something(&self) -> bool {
        self.results
            .iter()
            .flatten()
            .any(|r| r.outcome == "done" || r.outcome == "partial")
    }
}

/// Everything a job did.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Outcome {
    /// The instant planned for.
    pub now: DateTime<Utc>,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// What every listed location holds after the job, as far as known without
    /// listing again: kept only for a `run` whose config has scheduled backups, which
    /// plan on it ([`crate::scheduled::run_with_backups`]). `None` otherwise, and after
    /// a dry run.
    #[serde(skip)]
    pub inventories: Option<BTreeMap<Location, Inventory>>,
}

impl Outcome {
    /// Whether any phase failed.
    pub fn failed(&self) -> bool {
        self.phases.iter().any(Phase::failed)
    }

    /// Whether any phase changed something.
    pub fn did_something(&self) -> bool {
        self.phases.iter().any(Phase::did_something)
    }
}
