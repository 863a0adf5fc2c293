//! Commands a config runs around its work (`[hooks.NAME]`): before and after
//! snapshots (a database checkpoint, a lock held over the snapshot), before and after a
//! replication, before pruning (a veto) and after it (a notice).
//!
//! This module decides *which* calls a phase makes — with which argv, environment and
//! datasets ([`hook_calls`]) — and nothing else: running them (a process group, a
//! timeout, the output) is the executor's.
//!
//! Every call gets these environment variables (names and snapshot names never hold a
//! space, so lists are space-separated):
//!
//! | variable | value |
//! |---|---|
//! | `ZSNAP_HOOK` | the hook's name |
//! | `ZSNAP_EVENT` | `pre_snapshot`, `post_snapshot`, `pre_replicate`, `post_replicate`, `pre_prune`, `post_prune` |
//! | `ZSNAP_DATASETS` | the datasets of this call |
//! | `ZSNAP_DATASET` | the dataset, for a call per dataset (not `once`) |
//! | `ZSNAP_SNAPSHOTS` | the snapshots (`pool/fs@name`) the phase takes or destroys for these datasets |
//! | `ZSNAP_TARGET` | the target's name (replicate hooks) |
//! | `ZSNAP_STATUS` | post hooks: `ok`, or `failed` when a step of these datasets failed |

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::duration::Span;
use crate::zfs_names::DatasetName;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HookEvent {
    /// Before the snapshot phase takes its snapshots.
    PreSnapshot,
    /// After the snapshot phase.
    PostSnapshot,
    /// Before a replication to a target.
    PreReplicate,
    /// After a replication to a target.
    PostReplicate,
    /// Before the prune phase destroys snapshots (a failure vetoes them).
    PrePrune,
    /// After the prune phase.
    PostPrune,
}

impl HookEvent {
    /// Every event, in the order a run meets them.
    pub const ALL: [HookEvent; 6] = [
        HookEvent::PreSnapshot,
        HookEvent::PostSnapshot,
        HookEvent::PreReplicate,
        HookEvent::PostReplicate,
        HookEvent::PrePrune,
        HookEvent::PostPrune,
    ];

    /// The config's word: `pre_snapshot`, …
    pub fn as_str(self) -> &'static str {
        match self {
            HookEvent::PreSnapshot => "pre_snapshot",
            HookEvent::PostSnapshot => "post_snapshot",
            HookEvent::PreReplicate => "pre_replicate",
            HookEvent::PostReplicate => "post_replicate",
            HookEvent::PrePrune => "pre_prune",
            HookEvent::PostPrune => "post_prune",
        }
    }

    /// The event of this word.
    pub fn from_word(s: &str) -> Option<Self> {
        HookEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Whether it runs before the work (and so can stop it).
    pub fn is_pre(self) -> bool {
        matches!(
            self,
            HookEvent::PreSnapshot | HookEvent::PreReplicate | HookEvent::PrePrune
        )
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for HookEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a failed pre hook does to the work it runs before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnFailure {
    /// Leave the call's datasets out of this phase (no snapshot, no replication, no
    /// destroy) and report the failure: the default for pre hooks.
    Skip,
    /// Report the failure and go on as if the hook had succeeded (the only choice for
    /// post hooks, which run after the work).
    Continue,
}

impl OnFailure {
    /// `skip` or `continue`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Skip => "skip",
            OnFailure::Continue => "continue",
        }
    }
}

impl Serialize for OnFailure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One `[hooks.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HookSpec {
    /// When it runs.
    pub when: HookEvent,
    /// The command: a program by absolute path, then its arguments (never a shell
    /// string; write `["/bin/sh", "-c", "…"]` to want a shell).
    pub run: Vec<String>,
    /// Only for these datasets and those below them (empty: every dataset the phase
    /// touches).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetName>,
    /// Replicate hooks: only for these targets (empty: every target).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// One call for all the datasets of a phase (or of a target) instead of one per
    /// dataset.
    pub once: bool,
    /// How long a call may run; then its whole process group is killed and the call
    /// failed.
    pub timeout: Span,
    /// What a failure of a pre hook does.
    pub on_failure: OnFailure,
    /// `pre_snapshot` only: the hook runs *around* the snapshots. zsnap waits for its
    /// first line of output (the hook is ready: a lock is held), takes the snapshots,
    /// then closes the hook's standard input and waits for it to end (it releases the
    /// lock). No line before the timeout is a failure.
    pub hold: bool,
}

impl HookSpec {
    /// Whether it is for `dataset`.
    pub fn covers(&self, dataset: &DatasetName) -> bool {
        self.datasets.is_empty() || self.datasets.iter().any(|d| d.contains(dataset))
    }

    /// Whether it is for `target` (replicate hooks).
    pub fn covers_target(&self, target: &str) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|t| t == target)
    }
}

/// What a phase does to one dataset, as its hooks are told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookSubject {
    /// The dataset.
    pub dataset: DatasetName,
    /// The snapshots the phase takes or destroys in it (`pool/fs@name`).
    pub snapshots: Vec<String>,
    /// Post hooks: whether a step of this dataset failed.
    pub failed: bool,
}

impl HookSubject {
    /// A dataset and the snapshots a phase takes or destroys in it.
    pub fn new(dataset: DatasetName, snapshots: Vec<String>) -> Self {
        HookSubject {
            dataset,
            snapshots,
            failed: false,
        }
    }

    /// The same subject, marked failed (or not).
    #[must_use]
    pub fn with_failed(mut self, failed: bool) -> Self {
        self.failed = failed;
        self
    }
}

/// One call of a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HookCall {
    /// The hook's name.
    pub hook: String,
    /// When.
    pub event: HookEvent,
    /// The command.
    pub argv: Vec<String>,
    /// The environment variables zsnap sets (see the module docs).
    pub env: BTreeMap<String, String>,
    /// The datasets this call is for: the ones a failure of a pre hook leaves out.
    pub datasets: Vec<DatasetName>,
    /// How long it may run.
    pub timeout: Span,
    /// What its failure does.
    pub on_failure: OnFailure,
    /// Whether it runs around the snapshots (see [`HookSpec::hold`]).
    pub hold: bool,
}

/// The calls the hooks of `event` make for a phase that touches `subjects` (for
/// replicate hooks, of `target`): per hook in name order, one call per covered
/// dataset, or one for all of them with `once`; none for a hook that covers none.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use zsnap_core::config::Config;
/// use zsnap_core::hooks::{hook_calls, HookEvent, HookSubject};
///
/// let config = Config::from_toml(r#"
///     [[datasets]]
///     root = "tank"
///     recursive = true
///     policy = "p"
///     [policies.p]
///     snapshot = { hourly = "hourly" }
///     keep_last = 5
///     [hooks.checkpoint]
///     when = "pre_snapshot"
///     run = ["/usr/local/bin/pg-checkpoint"]
///     datasets = ["tank/db"]
/// "#, "zsnap.toml").unwrap();
/// let subjects = [
///     HookSubject::new("tank/db".parse().unwrap(), vec!["tank/db@zsnap_hourly_20261207T120000Z".into()]),
///     HookSubject::new("tank/www".parse().unwrap(), vec!["tank/www@zsnap_hourly_20261207T120000Z".into()]),
/// ];
/// let calls = hook_calls(&config.hooks, HookEvent::PreSnapshot, None, &subjects);
/// assert_eq!(calls.len(), 1);
/// assert_eq!(calls[0].env["ZSNAP_DATASET"], "tank/db");
/// assert_eq!(calls[0].env["ZSNAP_SNAPSHOTS"], "tank/db@zsnap_hourly_20261207T120000Z");
/// ```
pub fn hook_calls(
    hooks: &BTreeMap<String, HookSpec>,
    event: HookEvent,
    target: Option<&str>,
    subjects: &[HookSubject],
) -> Vec<HookCall> {
    let mut calls = Vec::new();
    for (name, spec) in hooks {
        if spec.when != event || target.is_some_and(|t| !spec.covers_target(t)) {
            continue;
        }
        let covered: Vec<&HookSubject> = subjects
            .iter()
            .filter(|s| spec.covers(&s.dataset))
            .collect();
        if covered.is_empty() {
            continue;
        }
        let groups: Vec<Vec<&HookSubject>> = if spec.once {
            vec![covered]
        } else {
            covered.into_iter().map(|s| vec![s]).collect()
        };
        for group in groups {
            let mut env = BTreeMap::new();
            env.insert("ZSNAP_HOOK".to_owned(), name.clone());
            env.insert("ZSNAP_EVENT".to_owned(), event.as_str().to_owned());
            let join = |f: &dyn Fn(&HookSubject) -> Vec<String>| {
                group
                    .iter()
                    .flat_map(|s| f(s))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            env.insert(
                "ZSNAP_DATASETS".to_owned(),
                join(&|s| vec![s.dataset.to_string()]),
            );
            if !spec.once {
                env.insert("ZSNAP_DATASET".to_owned(), group[0].dataset.to_string());
            }
            env.insert("ZSNAP_SNAPSHOTS".to_owned(), join(&|s| s.snapshots.clone()));
            if let Some(t) = target {
                env.insert("ZSNAP_TARGET".to_owned(), t.to_owned());
            }
            if !event.is_pre() {
                let failed = group.iter().any(|s| s.failed);
                env.insert(
                    "ZSNAP_STATUS".to_owned(),
                    if failed { "failed" } else { "ok" }.to_owned(),
                );
            }
            calls.push(HookCall {
                hook: name.clone(),
                event,
                argv: spec.run.clone(),
                env,
                datasets: group.iter().map(|s| s.dataset.clone()).collect(),
                timeout: spec.timeout,
                on_failure: spec.on_failure,
                hold: spec.hold && event == HookEvent::PreSnapshot,
            });
        }
    }
    calls
}
