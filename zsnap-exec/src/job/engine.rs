//! The [`Engine`]: a job's run loop (see the [module docs](super)), and the [`Reporters`]
//! it calls around applying each phase.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, Host, TargetAddress};
use zsnap_core::policy::Policy;
use zsnap_core::replicate::{plan_replication, DatasetMapping, ReplicationRequest};
use zsnap_core::snapshot::{check_expiry_label, plan_snapshot_on_demand, plan_snapshots};
use zsnap_core::{DatasetName, Inventory, Location, Plan, SnapshotName, Step};

use super::error::JobError;
use super::hook_phase;
use super::listing::{ListFailure, Listing, Source};
use super::phase::{results, Job, Outcome, Phase, PhaseKind, StepResult};
use crate::apply::{apply, ApplyOptions, Backends, Observer, Report, StepOutcome};
use crate::failure::{error_chain, FailureKind};
use crate::journal::{Journal, Record};
use crate::replicate::{
    ask_source, run_replication_on, ReplicateError, ReplicateOptions, ReplicationRound,
};
use crate::throttle::Clock;

/// Where a run reports what it does: progress to an observer, each step to a journal,
/// each applied phase to a callback (the audit log).
#[non_exhaustive]
pub struct Reporters<'a> {
    /// Progress.
    pub observer: &'a mut dyn Observer,
    /// The journal of this run.
    pub journal: Option<&'a mut Journal>,
    /// Called with every applied phase (for an audit log).
    pub applied: Option<&'a mut dyn FnMut(&Phase)>,
    /// Whether the config's hooks run around the phases (they do unless turned off: a
    /// rehearsal on a virtual clock runs none; a dry run never runs them).
    pub hooks: bool,
}

impl<'a> Reporters<'a> {
    /// Progress to `observer` only.
    pub fn new(observer: &'a mut dyn Observer) -> Self {
        Reporters {
            observer,
            journal: None,
            applied: None,
            hooks: true,
        }
    }

    /// The same reporters, running none of the config's hooks.
    #[must_use]
    pub fn without_hooks(mut self) -> Self {
        self.hooks = false;
        self
    }

    /// The same reporters, writing `journal` (when some).
    #[must_use]
    pub fn with_journal(mut self, journal: Option<&'a mut Journal>) -> Self {
        self.journal = journal;
        self
    }

    /// The same reporters, calling `applied` with every applied phase.
    #[must_use]
    pub fn on_applied(mut self, applied: &'a mut dyn FnMut(&Phase)) -> Self {
        self.applied = Some(applied);
        self
    }

    fn phase_applied(&mut self, phase: &Phase) {
        if let Some(f) = self.applied.as_deref_mut() {
            f(phase);
        }
    }

    /// Best effort: a phase's error is also in the outcome (and, for the CLI, in the
    /// run's record, which `zsnap check` reads).
    fn phase_failed(&mut self, phase: &PhaseKind, error: &str) {
        if let Some(j) = self.journal.as_deref_mut() {
            let _ = j.write(&Record::PhaseFailed {
                at: Utc::now(),
                phase: phase.to_string(),
                error: error.to_owned(),
            });
        }
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

/// Whether every step was done, none partly.
fn all_done(report: &Report) -> bool {
    report
        .steps
        .iter()
        .all(|s| matches!(s.outcome, StepOutcome::Done { .. }))
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

/// Runs jobs for one config, with its policies converted once.
pub struct Engine<'c> {
    config: &'c Config,
    policies: BTreeMap<String, Policy>,
    /// The clock bandwidth limits pace transfers on (the system's unless set).
    clock: Option<Arc<dyn Clock>>,
}

impl<'c> Engine<'c> {
    /// An engine for `config`.
    pub fn new(config: &'c Config) -> Self {
        Engine {
            config,
            policies: config.core_policies(),
            clock: None,
        }
    }

    /// Paces bandwidth-limited transfers (a target's `bandwidth`) on `clock` instead
    /// of the system's (tests inject one that records its sleeps).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How the replication to `target` applies its plan: with the target's
    /// `bandwidth` limit, if any.
    fn replicate_options(&self, target: &str) -> ReplicateOptions {
        let limit = self.config.targets[target]
            .bandwidth
            .map(|b| b.bytes_per_second());
        let mut apply = ApplyOptions::default().with_bandwidth_limit(limit);
        if let Some(clock) = &self.clock {
            apply = apply.with_clock(clock.clone());
        }
        ReplicateOptions::default().with_apply(apply)
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
            let roots = map.entry(e.host.location()).or_default();
            if !roots.iter().any(|r| r.contains(&e.root)) {
                roots.retain(|r| !e.root.contains(r));
                roots.push(e.root.clone());
            }
        }
        for t in self.config.targets.values().filter(|_| targets) {
            if let TargetAddress::Dataset { host, dataset } = &t.to {
                let roots = map.entry(host.location()).or_default();
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
    pub fn list(&self, source: &mut Source<'_>) -> Result<BTreeMap<Location, Inventory>, JobError> {
        let listing = self.list_each(source)?;
        match listing.failed.into_iter().next() {
            Some(f) => Err(f.into()),
            None => Ok(listing.invs),
        }
    }

    /// Lists every root of every location on its own: a root whose listing fails (a
    /// pool exported, a host unreachable) is recorded in [`Listing::failed`] and left
    /// out of the inventories, so the phases that do not need it still run.
    ///
    /// # Errors
    /// Only [`JobError::NoBackend`]: a location without a backend (a bug in how the
    /// backends were opened).
    pub fn list_each(&self, source: &mut Source<'_>) -> Result<Listing, JobError> {
        self.list_roots(source, self.roots())
    }

    fn list_roots(
        &self,
        source: &mut Source<'_>,
        all: BTreeMap<Location, Vec<DatasetName>>,
    ) -> Result<Listing, JobError> {
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
                    let backend = backends.backend(&loc).ok_or_else(|| JobError::NoBackend {
                        location: loc.clone(),
                    })?;
                    // One `zfs list` for every root of the location; only when it
                    // fails (a root missing or unreadable) each root on its own, so
                    // the failure names its root and the others are still listed.
                    if let Ok(inv) = backend.list(&roots) {
                        out.invs.insert(loc, inv);
                        continue;
                    }
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
                                        error: e,
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
                        .any(|e| overlaps(f, loc, &e.root) && &e.host.location() == loc)
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
                    .map(|e| (e.host.location(), e.root.clone()));
                let dst = match &t.to {
                    TargetAddress::Dataset { host, dataset } => {
                        Some((host.location(), dataset.clone()))
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

    /// The dataset targets whose root could not be listed, with why: nothing is known
    /// of what they share with their source, so the source must not be pruned (see
    /// [`prune_phase::plan`](super::prune_phase::plan)).
    pub fn unlisted_targets(&self, failed: &[ListFailure]) -> BTreeMap<String, String> {
        super::prune_phase::unlisted_targets(self.config, failed)
    }

    fn is_target_root(&self, loc: &Location, root: &DatasetName) -> bool {
        self.config.targets.values().any(|t| {
            matches!(&t.to, TargetAddress::Dataset { host, dataset } if &host.location() == loc && dataset == root)
        })
    }

    fn source_locations(&self) -> Vec<Location> {
        self.config
            .source_hosts()
            .iter()
            .map(Host::location)
            .collect()
    }

    /// The phases of `job`, unplanned.
    ///
    /// # Errors
    /// A target name the config does not define ([`JobError::UnknownTarget`]), and an
    /// expiry for a label the policy of a `[[datasets]]` entry schedules
    /// ([`JobError::Expiry`]): both are found before anything runs.
    pub fn phases(&self, job: &Job) -> Result<Vec<PhaseKind>, JobError> {
        let snap = || {
            self.source_locations()
                .into_iter()
                .map(|location| PhaseKind::Snapshot { location })
        };
        let prune = || {
            self.source_locations()
                .into_iter()
                .map(|location| PhaseKind::Prune { location })
        };
        let targets = |names: &[String]| -> Result<Vec<PhaseKind>, JobError> {
            if let Some(n) = names.iter().find(|n| !self.config.targets.contains_key(*n)) {
                return Err(JobError::UnknownTarget {
                    name: n.clone(),
                    known: self.config.targets.keys().cloned().collect(),
                });
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
                    check_expiry_label(&e.root, label, &e.policy, policy).map_err(|source| {
                        JobError::Expiry {
                            label: label.clone(),
                            source,
                        }
                    })?;
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
    /// What the planner refused, with the phase's context.
    pub fn plan_phase(
        &self,
        phase: &PhaseKind,
        job: &Job,
        invs: &BTreeMap<Location, Inventory>,
        backends: Option<&mut dyn Backends>,
        failed: &[ListFailure],
        now: DateTime<Utc>,
    ) -> Result<Plan, JobError> {
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
                plan.map_err(|source| JobError::PlanSnapshots {
                    location: loc.clone(),
                    source,
                })
            }
            PhaseKind::Replicate { target } => self.plan_replicate(target, invs, backends, now),
            PhaseKind::Prune { location: loc } => Ok(self.plan_prune(loc, invs, failed, now)),
            PhaseKind::Backup { store } => Err(JobError::BackupPhase {
                store: store.clone(),
            }),
        }
    }

    /// Plans pruning at `loc` on the given inventories; see [`super::prune_phase::plan`].
    pub fn plan_prune(
        &self,
        loc: &Location,
        invs: &BTreeMap<Location, Inventory>,
        failed: &[ListFailure],
        now: DateTime<Utc>,
    ) -> Plan {
        let host = self.host_of(loc);
        super::prune_phase::plan(self.config, &self.policies, &host, loc, invs, failed, now)
    }

    /// The host whose location is `loc` (this machine when no source host is there).
    pub fn host_of(&self, loc: &Location) -> Host {
        self.config
            .source_hosts()
            .into_iter()
            .find(|h| &h.location() == loc)
            .unwrap_or(Host::Local)
    }

    /// Where target `target` replicates from and to, and its mapping; `None` for a
    /// target that is not a dataset (not supported yet).
    fn replication_route(
        &self,
        target: &str,
    ) -> Result<Option<(Location, Location, DatasetMapping)>, JobError> {
        let t = &self.config.targets[target];
        let TargetAddress::Dataset { host, .. } = &t.to else {
            return Ok(None);
        };
        let entry = self
            .config
            .datasets
            .iter()
            .find(|e| e.root == t.source)
            .ok_or_else(|| JobError::NoSourceEntry {
                target: target.to_owned(),
                root: t.source.clone(),
            })?;
        let mapping = t.mapping(entry).expect("a dataset target has a mapping");
        Ok(Some((entry.host.location(), host.location(), mapping)))
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
    /// a real run goes through [`run_replication`] instead.
    fn plan_replicate(
        &self,
        target: &str,
        invs: &BTreeMap<Location, Inventory>,
        backends: Option<&mut dyn Backends>,
        now: DateTime<Utc>,
    ) -> Result<Plan, JobError> {
        let Some(route) = self.replication_route(target)? else {
            return Ok(self.unsupported_target(target, now));
        };
        let empty = Inventory::new();
        let src = invs.get(&route.0).unwrap_or(&empty);
        let dst = invs.get(&route.1).unwrap_or(&empty);
        let src_loc = route.0.clone();
        let mut req = self.replication_request(target, route, src, dst);
        if let Some(sender) = backends.and_then(|b| b.backend(&src_loc)) {
            ask_source(sender, &mut req).map_err(|source| JobError::AskSource {
                target: target.to_owned(),
                source,
            })?;
        }
        plan_replication(&req, now).map_err(|source| JobError::PlanReplication {
            target: target.to_owned(),
            source,
        })
    }

    /// The datasets a replication to `target` sends, as its hooks are told: those of
    /// the source's inventory under the target's source root.
    fn replication_subjects(
        &self,
        target: &str,
        invs: &BTreeMap<Location, Inventory>,
    ) -> Vec<zsnap_core::hooks::HookSubject> {
        let (Some(spec), Ok(Some(route))) = (
            self.config.targets.get(target),
            self.replication_route(target),
        ) else {
            return Vec::new();
        };
        invs.get(&route.0)
            .map(|inv| {
                inv.datasets
                    .keys()
                    .filter(|d| spec.source.contains(d))
                    .map(|d| zsnap_core::hooks::HookSubject::new(d.clone(), Vec::new()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs the replication to `target` through the library's runner
    /// ([`run_replication`]): both sides listed, resume tokens and cursor holds asked
    /// of the source, sizes estimated for the observer, the bases protected after a
    /// failed round, and one re-plan when a resume token turns out stale.
    ///
    /// The runner plans its first round on `invs`, this run's inventories of the
    /// source's and the target's location, instead of listing them again. When the
    /// round did everything, `invs` is updated to what it left (simulated: received
    /// snapshots keep their source guids) and `true` returned; `false` means `invs`
    /// no longer knows these locations and they must be listed again.
    fn replicate(
        &self,
        kind: PhaseKind,
        target: &str,
        now: DateTime<Utc>,
        backends: &mut dyn Backends,
        reporters: &mut Reporters<'_>,
        invs: &mut BTreeMap<Location, Inventory>,
    ) -> (Phase, bool) {
        let failed = |error: JobError| {
            Phase::unplanned(kind.clone(), Plan::new(now), Some(error_chain(&error)))
        };
        let route = match self.replication_route(target) {
            Ok(Some(route)) => route,
            Ok(None) => {
                let plan = self.unsupported_target(target, now);
                return (Phase::applied(kind.clone(), plan, Vec::new()), true);
            }
            Err(e) => return (failed(e), true),
        };
        // Both sides as this run listed them, or (a side unknown) none: the runner
        // then lists both itself, never planning on a side it does not know.
        let listed = (invs.contains_key(&route.0) && invs.contains_key(&route.1)).then(|| {
            [&route.0, &route.1]
                .into_iter()
                .filter_map(|loc| invs.remove_entry(loc))
                .collect::<BTreeMap<Location, Inventory>>()
        });
        let empty = Inventory::new();
        let template = self.replication_request(target, route, &empty, &empty);
        let run = run_replication_on(
            backends,
            &template,
            listed,
            now,
            &self.replicate_options(target),
            reporters.observer,
            reporters.journal.as_deref_mut(),
        );
        match run {
            Ok(run) => {
                let (plan, results) = merge_rounds(&run.rounds, now);
                let current = match run.rounds.as_slice() {
                    [only] if all_done(&only.report) && only.protected.is_none() => only
                        .plan
                        .simulate_at(&only.inventories)
                        .map(|after| invs.extend(after))
                        .is_ok(),
                    _ => false,
                };
                (Phase::applied(kind, plan, results), current)
            }
            Err(ReplicateError::Replan {
                datasets,
                applied,
                source,
            }) => {
                let (plan, results) = merge_rounds(std::slice::from_ref(&*applied), now);
                let error = JobError::Replan {
                    target: target.to_owned(),
                    datasets,
                    source,
                };
                let phase = Phase {
                    error: Some(error_chain(&error)),
                    ..Phase::applied(kind, plan, results)
                };
                (phase, false)
            }
            Err(source) => (
                failed(JobError::Replicate {
                    target: target.to_owned(),
                    source,
                }),
                false,
            ),
        }
    }

    /// The inventories `plan` leaves, when every step of it was done: simulated, with
    /// the snapshots it created read back from ZFS (one listing of just them per
    /// location: their guids and createtxgs are ZFS's). `None` when they must be
    /// listed again instead (a step failed or was partial, or reading back failed).
    fn after_applied(
        &self,
        plan: &Plan,
        report: &Report,
        invs: &BTreeMap<Location, Inventory>,
        backends: &mut dyn Backends,
    ) -> Option<BTreeMap<Location, Inventory>> {
        if !all_done(report) {
            return None;
        }
        let mut after = plan.simulate_at(invs).ok()?;
        let mut created: BTreeMap<&Location, Vec<SnapshotName>> = BTreeMap::new();
        for step in &plan.steps {
            if let Step::Snapshot(s) = step {
                created
                    .entry(&s.location)
                    .or_default()
                    .extend(s.names.iter().cloned());
            }
        }
        for (loc, names) in created {
            let listed = backends.backend(loc)?.list_named(&[], &names).ok()?;
            let inv = after.get_mut(loc)?;
            for name in &names {
                let real = listed
                    .dataset(name.dataset())?
                    .snapshots
                    .iter()
                    .find(|s| &s.name == name.short())?
                    .clone();
                let ds = inv.datasets.get_mut(name.dataset())?;
                ds.snapshots.retain(|s| &s.name != name.short());
                ds.insert_snapshot(real);
            }
        }
        Some(after)
    }

    /// Runs `job` at `now`: each phase planned on fresh (or, when `dry_run`, simulated)
    /// inventories and applied unless `dry_run`. A phase that cannot be planned is
    /// recorded in its [`Phase::error`] and the next phases still run (a broken target
    /// does not stop pruning).
    ///
    /// # Errors
    /// An unknown target or a refused expiry (see [`Engine::phases`]); every root
    /// failing to list (the first failure); a location without a backend; and a
    /// dry-run plan that would fail when applied (a bug).
    pub fn run(
        &self,
        job: &Job,
        now: DateTime<Utc>,
        dry_run: bool,
        mut source: Source<'_>,
        reporters: &mut Reporters<'_>,
    ) -> Result<Outcome, JobError> {
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
            return Err(failed.swap_remove(0).into());
        }
        let mut phases = Vec::new();
        let kinds = self.phases(job)?;
        // The scheduled backups of a `run` plan on what the run left: keep it known
        // after the last phase too.
        let keep_final = *job == Job::Run && !self.config.backups.is_empty();
        let last = kinds.len().saturating_sub(1);
        for (i, kind) in kinds.into_iter().enumerate() {
            // A root this phase needs could not be listed: a replication stops there;
            // a snapshot or prune phase goes on with the datasets it could list, and
            // still fails, naming what it left alone.
            let blocking = self.blocking(&kind, &failed);
            let unlisted = (!blocking.is_empty()).then(|| {
                blocking
                    .iter()
                    .map(|f| error_chain(*f))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            if let Some(e) = &unlisted {
                reporters.phase_failed(&kind, e);
            }
            // A real replication runs through the library's runner, which lists, plans
            // and applies (and re-plans once after a stale resume token) itself.
            if let (PhaseKind::Replicate { target }, Source::Backends(backends), false, None) =
                (&kind, &mut source, dry_run, &unlisted)
            {
                // A failed pre_replicate hook (with `on_failure = "skip"`) skips the
                // whole replication to this target.
                let hooked = reporters.hooks && !self.config.hooks.is_empty();
                let (subjects, before) = hook_phase::start(hooked, self.config, &kind, || {
                    self.replication_subjects(target, &invs)
                });
                let (mut phase, current) = if before.skipped.is_empty() {
                    self.replicate(
                        kind.clone(),
                        target,
                        now,
                        &mut **backends,
                        reporters,
                        &mut invs,
                    )
                } else {
                    (Phase::unplanned(kind.clone(), Plan::new(now), None), true)
                };
                if hooked {
                    let failed = phase.failed();
                    phase.hooks = hook_phase::after(self.config, &kind, before, subjects, failed);
                    phase.error = hook_phase::join_errors(
                        phase.error.take(),
                        hook_phase::failures(&phase.hooks),
                    );
                }
                if let Some(e) = &phase.error {
                    reporters.phase_failed(&kind, e);
                }
                reporters.phase_applied(&phase);
                phases.push(phase);
                // The next phases plan on what this one left: known without listing
                // when it did everything, listed again otherwise (never after the last).
                if !current && (i < last || keep_final) {
                    Listing { invs, failed } = self.list_roots(&mut source, self.roots_for(job))?;
                }
                continue;
            }
            let planned = match &kind {
                PhaseKind::Replicate { target } if unlisted.is_some() => Err(JobError::Unlisted {
                    target: target.clone(),
                }),
                _ => {
                    let backends = match &mut source {
                        Source::Backends(b) => Some(&mut **b as &mut dyn Backends),
                        Source::Saved(_) => None,
                    };
                    self.plan_phase(&kind, job, &invs, backends, &failed, now)
                }
            };
            let plan = match planned {
                Ok(p) => p,
                Err(e) => {
                    let error = match &unlisted {
                        Some(u) => format!("{u}; {}", error_chain(&e)),
                        None => error_chain(&e),
                    };
                    phases.push(Phase::unplanned(kind, Plan::new(now), Some(error)));
                    continue;
                }
            };
            // What the plan cannot do (a snapshot name over ZFS's limit) fails the
            // phase, naming each; the rest of the plan runs.
            let problems = problems_of(&plan);
            if let (Some(p), false) = (&problems, dry_run) {
                reporters.phase_failed(&kind, p);
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
                        .map_err(|source| JobError::Simulate {
                            phase: kind.clone(),
                            source,
                        })?;
                }
                phases.push(Phase::unplanned(kind, plan, unlisted));
                continue;
            }
            let Source::Backends(backends) = &mut source else {
                unreachable!("a saved listing makes the run dry");
            };
            // The config's hooks around the work: a failed pre hook takes its datasets
            // out of the plan; the post hooks hear how their datasets fared.
            let hooked = reporters.hooks && !self.config.hooks.is_empty();
            let (subjects, before) = hook_phase::start(hooked, self.config, &kind, || {
                hook_phase::subjects_of_plan(&plan)
            });
            let plan = hook_phase::without(plan, &before.skipped);
            let changed = !plan.steps.is_empty();
            let report = apply(
                &plan,
                &mut **backends,
                reporters.observer,
                reporters.journal.as_deref_mut(),
            );
            let hook_runs = if hooked {
                let subjects = hook_phase::mark_failed(&plan, &report, subjects);
                hook_phase::after(self.config, &kind, before, subjects, false)
            } else {
                Vec::new()
            };
            let hook_failures = hook_phase::failures(&hook_runs);
            if let Some(e) = &hook_failures {
                reporters.phase_failed(&kind, e);
            }
            let error = hook_phase::join_errors(unlisted, hook_failures);
            let phase = Phase {
                phase: kind,
                plan,
                results: Some(results(&report)),
                error,
                hooks: hook_runs,
            };
            reporters.phase_applied(&phase);
            // The next phases plan on what this one left: simulated when it did
            // everything (with the new snapshots' guids read back), listed again
            // otherwise; after the last phase, neither.
            if changed && (i < last || keep_final) {
                let known = self.after_applied(&phase.plan, &report, &invs, &mut **backends);
                phases.push(phase);
                match known {
                    Some(after) => invs = after,
                    // Never an error past this point: a root that fails now is one
                    // more failed listing for the phases after this one.
                    None => {
                        Listing { invs, failed } =
                            self.list_roots(&mut source, self.roots_for(job))?;
                    }
                }
            } else {
                phases.push(phase);
            }
        }
        Ok(Outcome {
            now,
            dry_run,
            phases,
            inventories: (keep_final && !dry_run).then_some(invs),
        })
    }
}
