//! Rehearsals: the job engine ([`crate::job::Engine`]) driven on an in-memory pool
//! ([`FakeZfs`]) and in-memory backup stores with a virtual clock — what
//! `zsnap simulate` shows. [`rehearse`] runs `zsnap run` (with its scheduled backups)
//! every step for days of virtual time and summarises, per day or week, what was
//! taken, received and pruned, and at the end what exists and which rule keeps each
//! snapshot ([`Rehearsal`]).
//!
//! The name: `zsnap-core` *simulates* a plan — applies it to inventories without
//! touching anything ([`zsnap_core::Plan::simulate_at`], how a dry run plans each
//! phase on what the previous ones would leave). A rehearsal is something else: the
//! real engine, applying real plans, to a pool that only exists in memory. The
//! command that shows one keeps its user-facing name, `zsnap simulate`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use zsnap_core::config::{BackupSpec, Config};
use zsnap_core::duration::Span;
use zsnap_core::policy::resolve_policies;
use zsnap_core::{Location, Step, Verdict};

use crate::apply::{Observer, OneBackend};
use crate::failure::error_chain;
use crate::fake::{FakeZfs, ForConfigError};
use crate::job::{Engine, Job, JobError, Outcome, Phase, Reporters, Source};
use crate::scheduled::run_scheduled_in;
use crate::store::{read_catalog, BackupStore, OpenSpecError, StoreError};

/// The seed of a fresh in-memory pool's guids (fixed, so rehearsals repeat, and a
/// pool made for a config by a front end matches the rehearsal's).
pub const FAKE_SEED: u64 = 0x7a73_6e61;

/// A fresh in-memory pool holding the config's datasets ([`FakeZfs::for_config`]),
/// its clock at `now`, its guids from [`FAKE_SEED`].
///
/// # Errors
/// A dataset the fake refuses to create.
pub fn fresh_pool(config: &Config, now: DateTime<Utc>) -> Result<FakeZfs, ForConfigError> {
    FakeZfs::for_config(config, FAKE_SEED, now)
}

/// Where a rehearsal at `step` intervals starts when no start was asked for: the
/// last whole step at or before `now` (runs at :00, :15, … read better).
pub fn aligned_start(now: DateTime<Utc>, step: Span) -> DateTime<Utc> {
    let secs = i64::try_from(step.seconds()).unwrap_or(i64::MAX).max(1);
    DateTime::from_timestamp(now.timestamp() / secs * secs, 0).unwrap_or(now)
}

/// Whether a rehearsal of `days` summarises its timeline per week (else per day).
pub fn weekly(days: u32) -> bool {
    days > 62
}

/// Why [`rehearse`] could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RehearsalError {
    /// The in-memory pool cannot hold the config's datasets.
    #[error(transparent)]
    Pool(#[from] ForConfigError),
    /// The end of the rehearsal is past the end of the calendar.
    #[error("{days} days after {start} are past the end of the calendar")]
    Calendar {
        /// The days asked for.
        days: u32,
        /// The start.
        start: DateTime<Utc>,
    },
    /// A job could not run at all.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The owner of a dataset's snapshots cannot be resolved.
    #[error(transparent)]
    Selection(#[from] zsnap_core::policy::SelectionError),
    /// An in-memory store's catalog cannot be read.
    #[error(transparent)]
    Catalog(#[from] StoreError),
    /// The config has scheduled backups, whose in-memory stores are object_store's:
    /// this build has no feature `s3`.
    #[error(
        "rehearse the scheduled backups: this build has no in-memory store (build zsnap-exec with its cargo feature `s3`)"
    )]
    NoMemoryStore,
}

/// An in-memory store for `spec` (object_store's, so only with the feature `s3`;
/// [`rehearse`] refuses a config with backups without it).
#[cfg(feature = "s3")]
fn memory_store(spec: &BackupSpec) -> Arc<dyn BackupStore> {
    Arc::new(crate::store::ObjectStoreBackup::in_memory(spec.to.clone()))
}

#[cfg(not(feature = "s3"))]
fn memory_store(_: &BackupSpec) -> Arc<dyn BackupStore> {
    unreachable!("rehearse refuses a config with backups without the feature s3")
}

/// Watches nothing: a rehearsal reports only its result.
struct Silent;

impl Observer for Silent {}

/// One day (or week) of a rehearsal's timeline.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TimelineBucket {
    /// First day.
    pub from: NaiveDate,
    /// Snapshots taken.
    pub taken: usize,
    /// Snapshots received by targets.
    pub received: usize,
    /// Snapshots destroyed.
    pub destroyed: usize,
    /// Snapshots existing at its end.
    pub existing: usize,
}

/// One snapshot at the end of a rehearsal.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Survivor {
    /// Short name.
    pub name: String,
    /// Created.
    pub creation: DateTime<Utc>,
    /// Its label.
    pub label: Option<String>,
    /// Why it is kept: rules (`labels daily = 7 [#2 of 7]`) and safety rules.
    pub kept_by: Vec<String>,
}

/// One label of one dataset at the end of a rehearsal.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LabelSummary {
    /// The label (`-` for snapshots without one).
    pub label: String,
    /// How many.
    pub count: usize,
    /// Oldest.
    pub oldest: DateTime<Utc>,
    /// Newest.
    pub newest: DateTime<Utc>,
    /// The distinct rules that keep them.
    pub kept_by: Vec<String>,
}

/// One dataset at the end of a rehearsal.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DatasetSummary {
    /// Where.
    pub location: Location,
    /// The dataset.
    pub dataset: String,
    /// Its policy.
    pub policy: String,
    /// Per label.
    pub labels: Vec<LabelSummary>,
    /// Every snapshot.
    pub snapshots: Vec<Survivor>,
}

/// What a rehearsal did and left (`zsnap simulate --json`, see docs/json.md).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Rehearsal {
    /// Virtual start.
    pub start: DateTime<Utc>,
    /// Virtual end.
    pub end: DateTime<Utc>,
    /// Time between runs.
    pub step: Span,
    /// Runs made.
    pub runs: usize,
    /// Per day (or week, for long simulations).
    pub timeline: Vec<TimelineBucket>,
    /// What exists at the end.
    pub datasets: Vec<DatasetSummary>,
    /// What each `[backups.NAME]` store holds at the end (in memory during the
    /// rehearsal).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<StoreSummary>,
    /// What failed during the rehearsal (the first five): phases and backups.
    pub errors: Vec<String>,
}

/// One dataset's backups in one store at the end of a rehearsal.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StoreSummary {
    /// The `[backups.NAME]`.
    pub name: String,
    /// The store.
    pub store: String,
    /// The dataset.
    pub dataset: String,
    /// Complete backups.
    pub backups: usize,
    /// Of which full streams (one per chain).
    pub fulls: usize,
    /// Restorable points: the snapshot time of the oldest and the newest.
    pub oldest: Option<DateTime<Utc>>,
    /// See `oldest`.
    pub newest: Option<DateTime<Utc>>,
    /// Backups taken during the rehearsal, and deleted by the store's keep policy.
    pub taken: usize,
    /// See `taken`.
    pub deleted: usize,
}

fn count(outcome: &Outcome) -> (usize, usize, usize) {
    let (mut taken, mut received, mut destroyed) = (0, 0, 0);
    for p in &outcome.phases {
        let Some(results) = &p.results else { continue };
        for r in results
            .iter()
            .filter(|r| r.outcome == "done" || r.outcome == "partial")
        {
            match p.plan.steps.get(r.index) {
                Some(Step::Snapshot(s)) => taken += s.names.len(),
                Some(Step::Destroy(d)) => destroyed += d.snapshots.len(),
                Some(Step::Transfer(t)) => {
                    received += match &t.send {
                        zsnap_core::SendSpec::Incremental {
                            expected,
                            intermediates: true,
                            ..
                        } => expected.len().max(1),
                        _ => 1,
                    }
                }
                _ => {}
            }
        }
    }
    (taken, received, destroyed)
}

/// Runs `config` on a fresh in-memory pool ([`fresh_pool`]) from `start` for `days`
/// of virtual time, a `zsnap run` (with its scheduled backups, into in-memory stores)
/// every `step`, and summarises what happened and what exists at the end.
///
/// # Errors
/// A config whose datasets the fake cannot create, a span past the calendar's end,
/// or a job that cannot run at all; what fails inside a run (a phase, a backup) is in
/// [`Rehearsal::errors`].
pub fn rehearse(
    config: &Config,
    start: DateTime<Utc>,
    days: u32,
    step: Span,
) -> Result<Rehearsal, RehearsalError> {
    let engine = Engine::new(config);
    if !cfg!(feature = "s3") && !config.backups.is_empty() {
        return Err(RehearsalError::NoMemoryStore);
    }
    let mut z = fresh_pool(config, start)?;
    let end = start
        .checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or(RehearsalError::Calendar { days, start })?;
    let step_d = step.to_chrono();
    let bucket_days: i64 = if weekly(days) { 7 } else { 1 };
    let mut timeline: Vec<TimelineBucket> = Vec::new();
    let mut errors = Vec::new();
    let mut runs = 0;
    let mut t = start;
    let mut observer = Silent;
    // The stores of [backups.NAME], in memory, and per (name, dataset) the backups
    // taken and the objects deleted.
    let mut stores: BTreeMap<String, Arc<dyn BackupStore>> = BTreeMap::new();
    let mut taken_backups: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    while t < end {
        z.set_now(t);
        let mut reporters = Reporters::new(&mut observer).without_hooks();
        let outcome = engine.run(
            &Job::Run,
            t,
            false,
            Source::Backends(&mut OneBackend(&mut z)),
            &mut reporters,
        )?;
        runs += 1;
        if !config.backups.is_empty() {
            let mut open = |spec: &BackupSpec| -> Result<Arc<dyn BackupStore>, OpenSpecError> {
                let key = spec.to.to_string();
                Ok(Arc::clone(
                    stores.entry(key).or_insert_with(|| memory_store(spec)),
                ))
            };
            let mut skip = |_: &Phase| {};
            let done = run_scheduled_in(
                config,
                &mut OneBackend(&mut z),
                t,
                false,
                None,
                &mut skip,
                &mut open,
            );
            for st in &done.stores {
                if let Some(e) = &st.error {
                    if errors.len() < 5 {
                        errors.push(format!("{t}: backup {}: {}", st.name, error_chain(e)));
                    }
                }
                for b in &st.backups {
                    let e = taken_backups
                        .entry((st.name.clone(), b.dataset.to_string()))
                        .or_default();
                    if !b.failed() {
                        e.0 += 1;
                    } else if errors.len() < 5 {
                        errors.push(format!(
                            "{t}: backup of {}: {}",
                            b.dataset,
                            b.errors.join("; ")
                        ));
                    }
                }
                // Sidecar keys do not parse as stream names: one count per backup.
                for key in &st.pruned {
                    if let Ok(name) = key.parse::<zsnap_core::backup::StreamName>() {
                        taken_backups
                            .entry((st.name.clone(), name.dataset().to_string()))
                            .or_default()
                            .1 += 1;
                    }
                }
            }
        }
        for p in outcome.phases.iter().filter(|p| p.failed()) {
            if errors.len() < 5 {
                let why = p
                    .error
                    .clone()
                    .or_else(|| p.results.iter().flatten().find_map(|r| r.error.clone()));
                errors.push(format!("{t}: {}: {}", p.phase, why.unwrap_or_default()));
            }
        }
        let (taken, received, destroyed) = count(&outcome);
        let day = t.date_naive();
        let from = start.date_naive()
            + TimeDelta::days((day - start.date_naive()).num_days() / bucket_days * bucket_days);
        if timeline.last().is_none_or(|p| p.from != from) {
            timeline.push(TimelineBucket {
                from,
                taken: 0,
                received: 0,
                destroyed: 0,
                existing: 0,
            });
        }
        let cur = timeline.last_mut().expect("pushed just above");
        cur.taken += taken;
        cur.received += received;
        cur.destroyed += destroyed;
        // Past the calendar's end is past `end` too.
        let next = t.checked_add_signed(step_d).unwrap_or(end);
        let next_from_changes = next >= end
            || (next.date_naive() - start.date_naive()).num_days() / bucket_days
                != (day - start.date_naive()).num_days() / bucket_days;
        if next_from_changes {
            let invs = engine.list(&mut Source::Backends(&mut OneBackend(&mut z)))?;
            cur.existing = invs
                .values()
                .map(zsnap_core::Inventory::snapshot_count)
                .sum();
        }
        t = next;
    }
    // Why each survivor is kept: the decisions of the last run's pruning (on sources,
    // and on targets through replication), planned again without taking anything new.
    let mut reporters = Reporters::new(&mut observer).without_hooks();
    let last_run = t.checked_sub_signed(step_d).unwrap_or(start);
    let mut last = engine.run(
        &Job::Replicate {
            targets: Vec::new(),
        },
        last_run,
        true,
        Source::Backends(&mut OneBackend(&mut z)),
        &mut reporters,
    )?;
    let pruned = engine.run(
        &Job::Prune,
        last_run,
        true,
        Source::Backends(&mut OneBackend(&mut z)),
        &mut reporters,
    )?;
    last.phases.extend(pruned.phases);
    let mut why: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &last.phases {
        for d in &p.plan.decisions {
            let reasons: Vec<String> = match &d.verdict {
                Verdict::Keep { reasons } => reasons.iter().map(ToString::to_string).collect(),
                Verdict::Protect {
                    protections,
                    reasons,
                } => protections
                    .iter()
                    .map(ToString::to_string)
                    .chain(reasons.iter().map(ToString::to_string))
                    .collect(),
                _ => vec!["destroyed by the next run".to_owned()],
            };
            why.entry(d.snapshot.to_string())
                .or_default()
                .extend(reasons);
        }
    }
    let invs = engine.list(&mut Source::Backends(&mut OneBackend(&mut z)))?;
    let mut datasets = Vec::new();
    // Sources, then targets: each dataset with the policy that owns its snapshots.
    let mut owners: Vec<(Location, zsnap_core::DatasetName, String)> = Vec::new();
    for host in config.source_hosts() {
        let loc = host.location();
        if let Some(inv) = invs.get(&loc) {
            for (ds, pname, _) in
                resolve_policies(inv, &config.selections(&host), engine.policies())?
            {
                owners.push((loc.clone(), ds.name.clone(), pname.to_owned()));
            }
        }
    }
    for t in config.targets.values() {
        let zsnap_core::config::TargetAddress::Dataset { host, dataset } = &t.to else {
            continue;
        };
        let loc = host.location();
        if let Some(inv) = invs.get(&loc) {
            for ds in inv.subtree(dataset) {
                owners.push((loc.clone(), ds.name.clone(), t.policy.clone()));
            }
        }
    }
    for (loc, name, pname) in owners {
        let ds = &invs[&loc].datasets[&name];
        let policy = &engine.policies()[&pname];
        let mut snapshots = Vec::new();
        let mut labels: BTreeMap<String, LabelSummary> = BTreeMap::new();
        for s in &ds.snapshots {
            let label = policy.classify(s).label().map(str::to_owned).or_else(|| {
                zsnap_core::naming::recognize_any(s.name.as_str()).and_then(|r| r.label)
            });
            let kept_by = why
                .get(&ds.snapshot_name(s).to_string())
                .cloned()
                .unwrap_or_default();
            let key = label.clone().unwrap_or_else(|| "-".to_owned());
            let e = labels.entry(key.clone()).or_insert_with(|| LabelSummary {
                label: key,
                count: 0,
                oldest: s.creation,
                newest: s.creation,
                kept_by: Vec::new(),
            });
            e.count += 1;
            e.oldest = e.oldest.min(s.creation);
            e.newest = e.newest.max(s.creation);
            for k in &kept_by {
                let rule = k.split(" [").next().unwrap_or(k).to_owned();
                if !e.kept_by.contains(&rule) {
                    e.kept_by.push(rule);
                }
            }
            snapshots.push(Survivor {
                name: s.name.to_string(),
                creation: s.creation,
                label,
                kept_by,
            });
        }
        datasets.push(DatasetSummary {
            location: loc,
            dataset: name.to_string(),
            policy: pname,
            labels: labels.into_values().collect(),
            snapshots,
        });
    }
    let mut backups = Vec::new();
    for (name, spec) in &config.backups {
        let Some(store) = stores.get(&spec.to.to_string()) else {
            continue;
        };
        let (_, catalog) = read_catalog(&**store)?;
        for (dataset, d) in &catalog.datasets {
            let restorable: Vec<_> = d.entries.iter().filter(|e| e.is_restorable()).collect();
            let (taken, deleted) = taken_backups
                .get(&(name.clone(), dataset.to_string()))
                .copied()
                .unwrap_or_default();
            backups.push(StoreSummary {
                name: name.clone(),
                store: spec.to.to_string(),
                dataset: dataset.to_string(),
                backups: d.entries.iter().filter(|e| e.is_complete()).count(),
                fulls: restorable
                    .iter()
                    .filter(|e| e.stream.parent().is_none())
                    .count(),
                oldest: restorable.iter().map(|e| e.stream.created()).min(),
                newest: restorable.iter().map(|e| e.stream.created()).max(),
                taken,
                deleted,
            });
        }
    }
    Ok(Rehearsal {
        start,
        end,
        step,
        runs,
        timeline,
        datasets,
        backups,
        errors,
    })
}
