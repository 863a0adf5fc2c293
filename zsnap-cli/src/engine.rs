//! The run loop every changing command, `plan`, `simulate` and the tests share:
//! list → plan → apply (or simulate, when dry) for each phase of a job, in order
//! (snapshot, replicate to each target, prune).
//!
//! A dry run plans each phase on the inventories the previous phases would leave
//! ([`zsnap_core::Plan::simulate_at`]), so `zsnap plan run` shows the whole run. A real
//! run lists again after every phase that changed something, since new snapshots get
//! guids only ZFS knows.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::config::{Config, Host, TargetAddress};
use zsnap_core::policy::Policy;
use zsnap_core::replicate::{plan_replication, DatasetMapping, ReplicationRequest};
use zsnap_core::snapshot::{plan_snapshot_on_demand, plan_snapshots};
use zsnap_core::{DatasetName, Inventory, Location, Plan};
use zsnap_exec::apply::{apply, Backends, Observer, Report, StepOutcome};
use zsnap_exec::journal::Journal;
use zsnap_exec::replicate::{
    ask_source, run_replication, ReplicateError, ReplicateOptions, ReplicationRound,
};
use zsnap_exec::FailureKind;

use crate::backends::location;
use crate::request::Job;

/// One phase of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    /// Back up a dataset to a store (its snapshot, stream and bookmarks).
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
pub struct StepResult {
    /// Index in the phase's plan.
    pub index: usize,
    /// `done`, `partial`, `failed` or `skipped`.
    pub outcome: String,
    /// The error and its causes, for failed steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One phase: its plan and, unless dry, what applying it did.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Which phase.
    pub phase: PhaseKind,
    /// The plan.
    pub plan: Plan,
    /// What applying it did (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<StepResult>>,
    /// Why the phase could not be planned, or only in part (a root it needs could not
    /// be listed: its datasets were left alone); the other phases still ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Phase {
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
pub struct Outcome {
    /// The instant planned for.
    pub now: DateTime<Utc>,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// The scheduled backups (`zsnap run` with `[backups.NAME]` in the config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<crate::backup::ScheduledBackups>,
}

impl Outcome {
    /// Whether any phase failed.
    pub fn failed(&self) -> bool {
        self.phases.iter().any(Phase::failed) || self.backups.as_ref().is_some_and(|b| !b.ok())
    }

    /// Whether any phase changed something.
    pub fn did_something(&self) -> bool {
        self.phases.iter().any(Phase::did_something)
            || self
                .backups
                .as_ref()
                .is_some_and(|b| b.stores.iter().any(|s| s.backups.iter().any(|r| r.ok)))
    }
}

/// The plans of a replication's rounds (and of the protection after a failed one) as
/// one plan, with what applying each step did.
fn merge_rounds(rounds: &[ReplicationRound], now: DateTime<Utc>) -> (Plan, Vec<StepResult>) {
    let mut plan = Plan::new(now);
    let mut out = Vec::new();
    for r in rounds {
        let parts = std::iter::once((&r.plan, &r.report))
            .chain(r.protected.as_ref().map(|(p, report)| (p, report)));
        for (p, report) in parts {
            let offset = plan.steps.len();
            out.extend(results(report).into_iter().map(|mut s| {
                s.index += offset;
                s
            }));
            plan.extend(p.clone());
        }
        for e in &r.estimate_failures {
            plan.notes.push(zsnap_core::Note::new(
                None,
                format!("no size estimate for step {}: {}", e.index + 1, e.error),
            ));
        }
    }
    (plan, out)
}

/// A plan's problems as one error message, `None` without any.
fn problems_of(plan: &Plan) -> Option<String> {
    (!plan.problems.is_empty()).then(|| {
        plan.problems
            .iter()
            .map(|n| match &n.dataset {
                Some(d) => format!("{d}: {}", n.message),
                None => n.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Where the inventories come from.
pub enum Source<'a> {
    /// Ask the backends.
    Backends(&'a mut dyn Backends),
    /// A saved listing, for the `local` location; plans only. Taken (not copied) by the
    /// first listing, which matters for a million snapshots.
    Saved(&'a mut Option<Inventory>),
}

/// A root of a location whose listing failed.
#[derive(Debug)]
pub struct ListFailure {
    /// Where.
    pub location: Location,
    /// The root (as in [`Engine::roots`]).
    pub root: DatasetName,
    /// Why, with context.
    pub error: anyhow::Error,
}

/// What listing every location found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The inventory of each location (without the roots that failed).
    pub invs: BTreeMap<Location, Inventory>,
    /// The roots that could not be listed.
    pub failed: Vec<ListFailure>,
}

/// The config, with its policies converted once.
pub struct Engine<'c> {
    config: &'c Config,
    policies: BTreeMap<String, Policy>,
}

/// Hooks a run calls around `apply`.
pub struct Hooks<'a> {
    /// Progress.
    pub observer: &'a mut dyn Observer,
    /// The journal of this run.
    pub journal: Option<&'a mut Journal>,
    /// Called with every applied phase (for the audit log).
    pub applied: &'a mut dyn FnMut(&Phase),
}

/// The results of an applied plan, step by step.
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

pub use zsnap_exec::failure::error_chain;

impl<'c> Engine<'c> {
    /// An engine for `config`.
    pub fn new(config: &'c Config) -> Self {
        Engine {
            config,
            policies: config.core_policies(),
        }
    }

    /// The config.
    pub fn config(&self) -> &'c Config {
        self.config
    }

    /// The converted policies.
    pub fn policies(&self) -> &BTreeMap<String, Policy> {
        &self.policies
    }

    /// Every location with the dataset roots listed there: the `[[datasets]]` roots of
    /// each host and the dataset of each target.
    pub fn roots(&self) -> BTreeMap<Location, Vec<DatasetName>> {
        self.roots_with(true)
    }

    /// The roots a job lists: taking snapshots needs only the sources, so a target
    /// that cannot be reached (an ssh timeout) does not even slow it down.
    fn roots_for(&self, job: &Job) -> BTreeMap<Location, Vec<DatasetName>> {
        self.roots_with(!matches!(job, Job::Snapshot { .. }))
    }

    fn roots_with(&self, targets: bool) -> BTreeMap<Location, Vec<DatasetName>> {
        let mut map: BTreeMap<Location, Vec<DatasetName>> = BTreeMap::new();
        for e in &self.config.datasets {
            let roots = map.entry(location(&e.host)).or_default();
            if !roots.iter().any(|r| r.contains(&e.root)) {
                roots.retain(|r| !e.root.contains(r));
                roots.push(e.root.clone());
            }
        }
        for t in self.config.targets.values().filter(|_| targets) {
            if let TargetAddress::Dataset { host, dataset } = &t.to {
                let roots = map.entry(location(host)).or_default();
                if !roots.iter().any(|r| r.contains(dataset)) {
                    roots.retain(|r| !dataset.contains(r));
                    roots.push(dataset.clone());
                }
            }
        }
        map
    }

    /// Lists every location. A target root that does not exist yet is listed through
    /// its nearest existing ancestor.
    ///
    /// # Errors
    /// The first root whose listing failed (see [`Engine::list_each`] for a run that
    /// goes on without it).
    pub fn list(&self, source: &mut Source<'_>) -> anyhow::Result<BTreeMap<Location, Inventory>> {
        let listing = self.list_each(source)?;
        match listing.failed.into_iter().next() {
            Some(f) => Err(f.error),
            None => Ok(listing.invs),
        }
    }

    /// Lists every root of every location on its own: a root whose listing fails (a
    /// pool exported, a host unreachable) is recorded in [`Listing::failed`] and left
    /// out of the inventories, so the phases that do not need it still run.
    ///
    /// # Errors
    /// Only a location without a backend (a bug in how the backends were opened).
    pub fn list_each(&self, source: &mut Source<'_>) -> anyhow::Result<Listing> {
        self.list_roots(source, self.roots())
    }

    fn list_roots(
        &self,
        source: &mut Source<'_>,
        all: BTreeMap<Location, Vec<DatasetName>>,
    ) -> anyhow::Result<Listing> {
        let mut out = Listing::default();
        for (loc, roots) in all {
            let inv = match source {
                Source::Saved(saved) => {
                    let mut part = Inventory::new();
                    if loc == Location::local() {
                        let mut inv = saved.take().unwrap_or_default();
                        inv.datasets
                            .retain(|name, _| roots.iter().any(|r| r.contains(name)));
                        part = inv;
                    }
                    part
                }
                Source::Backends(backends) => {
                    let backend = backends
                        .backend(&loc)
                        .ok_or_else(|| anyhow!("no backend for location {loc}"))?;
                    let mut inv = Inventory::new();
                    for root in &roots {
                        let mut at = root.clone();
                        loop {
                            match backend.list(std::slice::from_ref(&at)) {
                                Ok(part) => {
                                    for (_, d) in part.datasets {
                                        if root.contains(&d.name) || d.name == at {
                                            inv.insert(d);
                                        }
                                    }
                                    break;
                                }
                                Err(e)
                                    if e.failure()
                                        .is_some_and(|f| f.kind == FailureKind::NoSuchDataset)
                                        && at.parent().is_some()
                                        && self.is_target_root(&loc, root) =>
                                {
                                    at = at.parent().expect("checked just above");
                                }
                                Err(e) => {
                                    out.failed.push(ListFailure {
                                        location: loc.clone(),
                                        root: root.clone(),
                                        error: anyhow::Error::new(e).context(format!(
                                            "list the datasets of {root} at {loc}"
                                        )),
                                    });
                                    break;
                                }
                            }
                        }
                    }
                    inv
                }
            };
            out.invs.insert(loc, inv);
        }
        Ok(out)
    }

    /// The failed listings a phase needs: the roots of its datasets (for a snapshot or
    /// prune phase, the sources at its location; for a replication, its source and its
    /// target).
    pub fn blocking<'l>(
        &self,
        phase: &PhaseKind,
        failed: &'l [ListFailure],
    ) -> Vec<&'l ListFailure> {
        let overlaps = |f: &ListFailure, loc: &Location, ds: &DatasetName| {
            &f.location == loc && (f.root.contains(ds) || ds.contains(&f.root))
        };
        let sources_at = |loc: &Location| -> Vec<&'l ListFailure> {
            failed
                .iter()
                .filter(|f| {
                    self.config
                        .datasets
                        .iter()
                        .any(|e| overlaps(f, loc, &e.root) && &location(&e.host) == loc)
                })
                .collect()
        };
        match phase {
            PhaseKind::Snapshot { location: loc } | PhaseKind::Prune { location: loc } => {
                sources_at(loc)
            }
            PhaseKind::Replicate { target } => {
                let Some(t) = self.config.targets.get(target) else {
                    return Vec::new();
                };
                let src = self
                    .config
                    .datasets
                    .iter()
                    .find(|e| e.root == t.source)
                    .map(|e| (location(&e.host), e.root.clone()));
                let dst = match &t.to {
                    TargetAddress::Dataset { host, dataset } => {
                        Some((location(host), dataset.clone()))
                    }
                    _ => None,
                };
                failed
                    .iter()
                    .filter(|f| {
                        [&src, &dst]
                            .into_iter()
                            .flatten()
                            .any(|(loc, ds)| overlaps(f, loc, ds))
                    })
                    .collect()
            }
            PhaseKind::Backup { .. } => Vec::new(),
        }
    }

    /// The dataset targets whose root could not be listed: nothing is known of what
    /// they share with their source, so the source must not be pruned (see
    /// [`crate::prune::plan`]).
    pub fn unlisted_targets(&self, failed: &[ListFailure]) -> BTreeMap<String, String> {
        self.config
            .targets
            .iter()
            .filter_map(|(name, t)| {
                let TargetAddress::Dataset { host, dataset } = &t.to else {
                    return None;
                };
                let loc = location(host);
                failed
                    .iter()
                    .find(|f| {
                        f.location == loc && (f.root.contains(dataset) || dataset.contains(&f.root))
                    })
                    .map(|f| (name.clone(), format!("{:#}", f.error)))
            })
            .collect()
    }

    fn is_target_root(&self, loc: &Location, root: &DatasetName) -> bool {
        self.config.targets.values().any(|t| {
            matches!(&t.to, TargetAddress::Dataset { host, dataset } if &location(host) == loc && dataset == root)
        })
    }

    fn source_locations(&self) -> Vec<(Host, Location)> {
        self.config
            .source_hosts()
            .into_iter()
            .map(|h| {
                let l = location(&h);
                (h, l)
            })
            .collect()
    }

    /// The phases of `job`, unplanned.
    ///
    /// # Errors
    /// A target name the config does not define, and an expiry (`--expire-in`) for a
    /// label the policy of a `[[datasets]]` entry schedules: both are usage errors,
    /// found before anything runs.
    pub fn phases(&self, job: &Job) -> anyhow::Result<Vec<PhaseKind>> {
        let snap = || {
            self.source_locations()
                .into_iter()
                .map(|(_, location)| PhaseKind::Snapshot { location })
        };
        let prune = || {
            self.source_locations()
                .into_iter()
                .map(|(_, location)| PhaseKind::Prune { location })
        };
        let targets = |names: &[String]| -> anyhow::Result<Vec<PhaseKind>> {
            for n in names {
                if !self.config.targets.contains_key(n) {
                    let known: Vec<&str> = self.config.targets.keys().map(String::as_str).collect();
                    return Err(anyhow!(
                        "unknown target {n:?}; the config defines {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ));
                }
            }
            Ok(self
                .config
                .targets
                .keys()
                .filter(|t| names.is_empty() || names.contains(t))
                .map(|t| PhaseKind::Replicate { target: t.clone() })
                .collect())
        };
        if let Job::Snapshot {
            label: Some(label),
            expire_in: Some(_),
        } = job
        {
            // Refused before anything runs: a label some dataset's policy schedules.
            for e in &self.config.datasets {
                if let Some(policy) = self.policies.get(&e.policy) {
                    zsnap_core::snapshot::check_expiry_label(&e.root, label, &e.policy, policy)
                        .context("invalid --expire-in")?;
                }
            }
        }
        Ok(match job {
            Job::Snapshot { .. } => snap().collect(),
            Job::Prune => prune().collect(),
            Job::Replicate { targets: names } => targets(names)?,
            Job::Run => {
                let mut v: Vec<PhaseKind> = snap().collect();
                v.extend(targets(&[])?);
                v.extend(prune());
                v
            }
        })
    }

    /// Plans one phase on the given inventories.
    ///
    /// # Errors
    /// What the planner refused, with context.
    pub fn plan_phase(
        &self,
        phase: &PhaseKind,
        job: &Job,
        invs: &BTreeMap<Location, Inventory>,
        backends: Option<&mut dyn Backends>,
        failed: &[ListFailure],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Plan> {
        let empty = Inventory::new();
        let inv_at = |l: &Location| invs.get(l).unwrap_or(&empty);
        match phase {
            PhaseKind::Snapshot { location: loc } => {
                let host = self.host_of(loc);
                let mut selections = self.config.selections(&host);
                // The datasets under a root that could not be listed are not snapshotted
                // (their phase reports why); the others are.
                selections.retain(|s| {
                    !failed.iter().any(|f| {
                        &f.location == loc && (f.root.contains(&s.root) || s.root.contains(&f.root))
                    })
                });
                let plan = match job {
                    Job::Snapshot {
                        label: Some(label),
                        expire_in,
                    } => plan_snapshot_on_demand(
                        inv_at(loc),
                        &selections,
                        &self.policies,
                        loc,
                        label,
                        *expire_in,
                        now,
                    ),
                    _ => plan_snapshots(inv_at(loc), &selections, &self.policies, loc, now),
                };
                plan.with_context(|| format!("plan the snapshots at {loc}"))
            }
            PhaseKind::Replicate { target } => self.plan_replicate(target, invs, backends, now),
            PhaseKind::Prune { location: loc } => crate::prune::plan(self, loc, invs, failed, now)
                .with_context(|| format!("plan pruning at {loc}")),
            PhaseKind::Backup { store } => Err(anyhow::anyhow!(
                "backups to {store} are planned by zsnap backup and the scheduled backups of zsnap run, not by the engine's phases"
            )),
        }
    }

    /// The host whose location id is `loc`.
    pub fn host_of(&self, loc: &Location) -> Host {
        self.config
            .source_hosts()
            .into_iter()
            .find(|h| &location(h) == loc)
            .unwrap_or(Host::Local)
    }

    /// Where target `target` replicates from and to, and its mapping; `None` for a
    /// target that is not a dataset (not supported yet).
    fn replication_route(
        &self,
        target: &str,
    ) -> anyhow::Result<Option<(Location, Location, DatasetMapping)>> {
        let t = &self.config.targets[target];
        let TargetAddress::Dataset { host, .. } = &t.to else {
            return Ok(None);
        };
        let entry = self
            .config
            .datasets
            .iter()
            .find(|e| e.root == t.source)
            .ok_or_else(|| {
                anyhow!(
                    "target {target}: no [[datasets]] entry with root {}",
                    t.source
                )
            })?;
        let mapping = t.mapping(entry).expect("a dataset target has a mapping");
        Ok(Some((location(&entry.host), location(host), mapping)))
    }

    /// The replication request of target `target` on these inventories: its policies
    /// (the target's `prune = false` honoured by the planner) and options.
    fn replication_request<'a>(
        &'a self,
        target: &'a str,
        (src_loc, dst_loc, mapping): (Location, Location, DatasetMapping),
        src: &'a Inventory,
        dst: &'a Inventory,
    ) -> ReplicationRequest<'a> {
        let t = &self.config.targets[target];
        let entry = self.config.datasets.iter().find(|e| e.root == t.source);
        let mut req = ReplicationRequest::new(src_loc, src, dst_loc, target, dst, vec![mapping]);
        req.target_policy = self.policies.get(&t.policy);
        req.target_policy_name = Some(t.policy.clone());
        req.source_policy = entry.and_then(|e| self.policies.get(&e.policy));
        req.options = t.replication_options();
        req.options.prune_target = true;
        req
    }

    /// A plan with only a note, for a target kind not supported yet.
    fn unsupported_target(&self, target: &str, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::new(now);
        plan.notes.push(zsnap_core::Note::new(
            None,
            format!(
                "target {target}: {} targets are not supported yet; skipped",
                self.config.targets[target].to
            ),
        ));
        plan
    }

    /// Plans a replication on given (listed or simulated) inventories, asking the
    /// source about resume tokens and cursor holds when there are backends (a dry run);
    /// a real run goes through [`Engine::replicate`] instead.
    fn plan_replicate(
        &self,
        target: &str,
        invs: &BTreeMap<Location, Inventory>,
        backends: Option<&mut dyn Backends>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Plan> {
        let Some(route) = self.replication_route(target)? else {
            return Ok(self.unsupported_target(target, now));
        };
        let empty = Inventory::new();
        let src = invs.get(&route.0).unwrap_or(&empty);
        let dst = invs.get(&route.1).unwrap_or(&empty);
        let src_loc = route.0.clone();
        let mut req = self.replication_request(target, route, src, dst);
        if let Some(sender) = backends.and_then(|b| b.backend(&src_loc)) {
            ask_source(sender, &mut req)
                .with_context(|| format!("plan replication to {target}"))?;
        }
        plan_replication(&req, now).with_context(|| format!("plan replication to {target}"))
    }

    /// Runs the replication to `target` through the library's runner
    /// ([`run_replication`]): both sides listed, resume tokens and cursor holds asked
    /// of the source, sizes estimated for the observer, the bases protected after a
    /// failed round, and one re-plan when a resume token turns out stale.
    fn replicate(
        &self,
        kind: PhaseKind,
        target: &str,
        now: DateTime<Utc>,
        backends: &mut dyn Backends,
        hooks: &mut Hooks<'_>,
    ) -> Phase {
        let failed = |error: anyhow::Error| Phase {
            phase: kind.clone(),
            plan: Plan::new(now),
            results: None,
            error: Some(format!("{error:#}")),
        };
        let route = match self.replication_route(target) {
            Ok(Some(route)) => route,
            Ok(None) => {
                return Phase {
                    phase: kind.clone(),
                    plan: self.unsupported_target(target, now),
                    results: Some(Vec::new()),
                    error: None,
                }
            }
            Err(e) => return failed(e),
        };
        let empty = Inventory::new();
        let template = self.replication_request(target, route, &empty, &empty);
        let run = run_replication(
            backends,
            &template,
            now,
            &ReplicateOptions::default(),
            hooks.observer,
            hooks.journal.as_deref_mut(),
        );
        let context = format!("replicate to {target}");
        match run {
            Ok(run) => {
                let (plan, results) = merge_rounds(&run.rounds, now);
                Phase {
                    phase: kind,
                    plan,
                    results: Some(results),
                    error: None,
                }
            }
            Err(ReplicateError::Replan {
                datasets,
                applied,
                source,
            }) => {
                let (plan, results) = merge_rounds(std::slice::from_ref(&*applied), now);
                let error = anyhow::Error::new(*source).context(format!(
                    "{context}: re-plan after giving up the stale resume tokens of {datasets}"
                ));
                Phase {
                    phase: kind,
                    plan,
                    results: Some(results),
                    error: Some(format!("{error:#}")),
                }
            }
            Err(e) => failed(anyhow::Error::new(e).context(context)),
        }
    }

    /// Runs `job` at `now`: each phase planned on fresh (or, when `dry_run`, simulated)
    /// inventories and applied unless `dry_run`. A phase that cannot be planned is
    /// recorded and the next phases still run (a broken target does not stop pruning).
    ///
    /// # Errors
    /// Listing failures, and a dry-run plan that would fail when applied (a bug).
    pub fn run(
        &self,
        job: &Job,
        now: DateTime<Utc>,
        dry_run: bool,
        mut source: Source<'_>,
        hooks: &mut Hooks<'_>,
    ) -> anyhow::Result<Outcome> {
        let dry_run = dry_run || matches!(source, Source::Saved(_));
        let roots = self.roots_for(job);
        let count = roots.values().map(Vec::len).sum::<usize>();
        let Listing {
            mut invs,
            mut failed,
        } = self.list_roots(&mut source, roots)?;
        // Nothing could be listed (no `zfs`, no pool, no network): there is nothing to
        // go on with, and the error (with its hint) says so better than every phase.
        if count > 0 && failed.len() == count {
            return Err(failed.swap_remove(0).error);
        }
        let mut phases = Vec::new();
        let kinds = self.phases(job)?;
        let last = kinds.len().saturating_sub(1);
        for (i, kind) in kinds.into_iter().enumerate() {
            // A root this phase needs could not be listed: a replication stops there;
            // a snapshot or prune phase goes on with the datasets it could list, and
            // still fails, naming what it left alone.
            let blocking = self.blocking(&kind, &failed);
            let unlisted = (!blocking.is_empty()).then(|| {
                blocking
                    .iter()
                    .map(|f| format!("{:#}", f.error))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            if let Some(e) = &unlisted {
                if let Some(j) = hooks.journal.as_deref_mut() {
                    // Best effort: the phase's error is also in the output and the
                    // run's record, which `zsnap check` reads.
                    let _ = j.write(&zsnap_exec::journal::Record::PhaseFailed {
                        at: Utc::now(),
                        phase: kind.to_string(),
                        error: e.clone(),
                    });
                }
            }
            // A real replication runs through the library's runner, which lists, plans
            // and applies (and re-plans once after a stale resume token) itself.
            if let (PhaseKind::Replicate { target }, Source::Backends(backends), false, None) =
                (&kind, &mut source, dry_run, &unlisted)
            {
                let phase = self.replicate(kind.clone(), target, now, &mut **backends, hooks);
                if phase.error.is_some() {
                    if let (Some(j), Some(e)) = (hooks.journal.as_deref_mut(), &phase.error) {
                        let _ = j.write(&zsnap_exec::journal::Record::PhaseFailed {
                            at: Utc::now(),
                            phase: kind.to_string(),
                            error: e.clone(),
                        });
                    }
                }
                (hooks.applied)(&phase);
                let changed = phase.did_something();
                phases.push(phase);
                if changed {
                    Listing { invs, failed } = self.list_roots(&mut source, self.roots_for(job))?;
                }
                continue;
            }
            let planned = if unlisted.is_some() && matches!(kind, PhaseKind::Replicate { .. }) {
                Err(anyhow!("cannot replicate without listing both sides"))
            } else {
                let backends = match &mut source {
                    Source::Backends(b) => Some(&mut **b as &mut dyn Backends),
                    Source::Saved(_) => None,
                };
                self.plan_phase(&kind, job, &invs, backends, &failed, now)
            };
            let plan = match planned {
                Ok(p) => p,
                Err(e) => {
                    let error = match &unlisted {
                        Some(u) => format!("{u}; {e:#}"),
                        None => format!("{e:#}"),
                    };
                    phases.push(Phase {
                        phase: kind,
                        plan: Plan::new(now),
                        results: None,
                        error: Some(error),
                    });
                    continue;
                }
            };
            // What the plan cannot do (a snapshot name over ZFS's limit) fails the
            // phase, naming each; the rest of the plan runs.
            let problems = problems_of(&plan);
            if let (Some(p), false) = (&problems, dry_run) {
                if let Some(j) = hooks.journal.as_deref_mut() {
                    let _ = j.write(&zsnap_exec::journal::Record::PhaseFailed {
                        at: Utc::now(),
                        phase: kind.to_string(),
                        error: p.clone(),
                    });
                }
            }
            let unlisted = match (unlisted, problems) {
                (Some(u), Some(p)) => Some(format!("{u}; {p}")),
                (u, p) => u.or(p),
            };
            if dry_run {
                // The next phase plans on what this one would leave; the last one has
                // no next phase (and simulating copies every inventory).
                if i < last && !plan.steps.is_empty() {
                    invs = plan
                        .simulate_at(&invs)
                        .with_context(|| format!("{kind}: the plan would fail"))?;
                }
                phases.push(Phase {
                    phase: kind,
                    plan,
                    results: None,
                    error: unlisted,
                });
                continue;
            }
            let Source::Backends(backends) = &mut source else {
                unreachable!("a saved listing makes the run dry");
            };
            let changed = !plan.steps.is_empty();
            let report = apply(
                &plan,
                &mut **backends,
                hooks.observer,
                hooks.journal.as_deref_mut(),
            );
            let phase = Phase {
                phase: kind,
                plan,
                results: Some(results(&report)),
                error: unlisted,
            };
            (hooks.applied)(&phase);
            phases.push(phase);
            if changed {
                // Never an error past this point: a root that fails now is one more
                // failed listing for the phases after this one.
                Listing { invs, failed } = self.list_roots(&mut source, self.roots_for(job))?;
            }
        }
        Ok(Outcome {
            now,
            dry_run,
            phases,
            backups: None,
        })
    }
}
