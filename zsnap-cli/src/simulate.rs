//! `zsnap simulate`: run a config for days of virtual time on an in-memory pool, with
//! the very loop `zsnap run` uses, and show what exists at the end and why.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use zsnap_core::config::{BackupSpec, Config};
use zsnap_core::duration::Span;
use zsnap_core::policy::resolve_policies;
use zsnap_core::{Location, Step, Verdict};
use zsnap_exec::apply::{Observer, OneBackend};
use zsnap_exec::job::{Engine, Hooks, Job, Outcome, Phase, Source};
use zsnap_exec::store::{read_catalog, BackupStore, ObjectStoreBackup};

use crate::backends::fresh_fake;
use crate::exit;
use crate::failure::Failure;
use crate::output;
use crate::request::Request;

/// Watches nothing: a simulation prints only its result.
struct Silent;

impl Observer for Silent {}

/// One day (or week) of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
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

/// One snapshot at the end.
#[derive(Debug, Clone, Serialize)]
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

/// One label of one dataset at the end.
#[derive(Debug, Clone, Serialize)]
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

/// One dataset at the end.
#[derive(Debug, Clone, Serialize)]
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

/// `zsnap simulate --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    /// Virtual start.
    pub start: DateTime<Utc>,
    /// Virtual end.
    pub end: DateTime<Utc>,
    /// Time between runs.
    pub step: Span,
    /// Runs made.
    pub runs: usize,
    /// Per day (or week, for long simulations).
    pub timeline: Vec<Period>,
    /// What exists at the end.
    pub datasets: Vec<DatasetSummary>,
    /// What each `[backups.NAME]` store holds at the end (in memory during the
    /// simulation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<StoreSummary>,
    /// Phases that failed during the simulation (first few).
    pub errors: Vec<String>,
}

/// One dataset's backups in one store at the end of a simulation.
#[derive(Debug, Clone, Serialize)]
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
    /// Backups taken during the simulation, and deleted by the store's keep policy.
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

/// Runs `config` from `start` for `days` at `step` intervals.
///
/// # Errors
/// A config whose datasets the fake cannot create, or a listing failure.
pub fn run(
    config: &Config,
    start: DateTime<Utc>,
    days: u32,
    step: Span,
) -> anyhow::Result<Simulation> {
    let engine = Engine::new(config);
    let mut z = fresh_fake(config, start)?;
    let end = start
        .checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or_else(|| {
            anyhow::anyhow!("{days} days after {start} are past the end of the calendar")
        })?;
    let step_d = step.to_chrono();
    let bucket_days: i64 = if days > 62 { 7 } else { 1 };
    let mut timeline: Vec<Period> = Vec::new();
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
        let mut hooks = Hooks::new(&mut observer);
        let outcome = engine.run(
            &Job::Run,
            t,
            false,
            Source::Backends(&mut OneBackend(&mut z)),
            &mut hooks,
        )?;
        runs += 1;
        if !config.backups.is_empty() {
            let mut open = |spec: &BackupSpec| -> anyhow::Result<Arc<dyn BackupStore>> {
                let key = spec.to.to_string();
                Ok(Arc::clone(stores.entry(key).or_insert_with(|| {
                    Arc::new(ObjectStoreBackup::in_memory(spec.to.clone()))
                })))
            };
            let mut skip = |_: &Phase| {};
            let done = crate::backup::run_scheduled_in(
                config,
                &mut OneBackend(&mut z),
                t,
                false,
                &mut skip,
                &mut open,
            );
            for st in &done.stores {
                if let Some(e) = &st.error {
                    if errors.len() < 5 {
                        errors.push(format!("{t}: backup {}: {e}", st.name));
                    }
                }
                for b in &st.backups {
                    let e = taken_backups
                        .entry((st.name.clone(), b.dataset.to_string()))
                        .or_default();
                    if b.errors.is_empty() {
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
            timeline.push(Period {
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
    let mut hooks = Hooks::new(&mut observer);
    let last_run = t.checked_sub_signed(step_d).unwrap_or(start);
    let mut last = engine.run(
        &Job::Replicate {
            targets: Vec::new(),
        },
        last_run,
        true,
        Source::Backends(&mut OneBackend(&mut z)),
        &mut hooks,
    )?;
    let pruned = engine.run(
        &Job::Prune,
        last_run,
        true,
        Source::Backends(&mut OneBackend(&mut z)),
        &mut hooks,
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
    Ok(Simulation {
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

/// `zsnap simulate`.
///
/// # Errors
/// See [`run`].
pub fn simulate(
    req: &Request,
    config: &Config,
    days: u32,
    step: Span,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    // Without --now, start at the last whole step (runs at :00, :15, … read better).
    let start = if req.now_given {
        req.now
    } else {
        let secs = i64::try_from(step.seconds()).unwrap_or(i64::MAX).max(1);
        DateTime::from_timestamp(req.now.timestamp() / secs * secs, 0).unwrap_or(req.now)
    };
    let sim = run(config, start, days, step)?;
    if req.json {
        output::json(out, &sim)?;
        return Ok(if sim.errors.is_empty() {
            exit::OK
        } else {
            exit::PARTIAL
        });
    }
    let mut s = format!(
        "Simulated {days} days of `zsnap run` every {step} ({} runs) on an in-memory pool,\nfrom {} to {}.\n\n",
        sim.runs,
        sim.start.format("%Y-%m-%d %H:%M UTC"),
        sim.end.format("%Y-%m-%d %H:%M UTC"),
    );
    s.push_str("What exists at the end, and why it is kept:\n\n");
    let mut rows = vec![vec![
        "DATASET".to_owned(),
        "LABEL".to_owned(),
        "COUNT".to_owned(),
        "OLDEST".to_owned(),
        "NEWEST".to_owned(),
        "KEPT BY".to_owned(),
    ]];
    for d in &sim.datasets {
        let name = if d.location == Location::local() {
            d.dataset.clone()
        } else {
            format!("{}:{}", d.location, d.dataset)
        };
        for l in &d.labels {
            rows.push(vec![
                name.clone(),
                l.label.clone(),
                l.count.to_string(),
                l.oldest.format("%m-%d %H:%M").to_string(),
                l.newest.format("%m-%d %H:%M").to_string(),
                l.kept_by.join(", "),
            ]);
        }
    }
    s.push_str(&output::table(&rows));
    s.push_str(&format!(
        "\nTimeline (per {}):\n\n",
        if days > 62 { "week" } else { "day" }
    ));
    let mut rows = vec![vec![
        "FROM".to_owned(),
        "TAKEN".to_owned(),
        "RECEIVED".to_owned(),
        "PRUNED".to_owned(),
        "EXISTING".to_owned(),
        String::new(),
    ]];
    let max = sim
        .timeline
        .iter()
        .map(|p| p.existing)
        .max()
        .unwrap_or(1)
        .max(1);
    for p in &sim.timeline {
        rows.push(vec![
            p.from.to_string(),
            p.taken.to_string(),
            p.received.to_string(),
            p.destroyed.to_string(),
            p.existing.to_string(),
            "#".repeat((p.existing * 30).div_ceil(max)),
        ]);
    }
    s.push_str(&output::table(&rows));
    if !sim.backups.is_empty() {
        s.push_str("\nBackups in the stores at the end (in memory):\n\n");
        let mut rows = vec![vec![
            "BACKUP".to_owned(),
            "DATASET".to_owned(),
            "TAKEN".to_owned(),
            "DELETED".to_owned(),
            "KEPT".to_owned(),
            "CHAINS".to_owned(),
            "OLDEST".to_owned(),
            "NEWEST".to_owned(),
        ]];
        let when = |t: Option<DateTime<Utc>>| {
            t.map_or_else(|| "-".to_owned(), |t| t.format("%m-%d %H:%M").to_string())
        };
        for b in &sim.backups {
            rows.push(vec![
                b.name.clone(),
                b.dataset.clone(),
                b.taken.to_string(),
                b.deleted.to_string(),
                b.backups.to_string(),
                b.fulls.to_string(),
                when(b.oldest),
                when(b.newest),
            ]);
        }
        s.push_str(&output::table(&rows));
    }
    if !sim.errors.is_empty() {
        s.push_str("\nProblems during the simulation:\n");
        for e in &sim.errors {
            s.push_str(&format!("  {e}\n"));
        }
    }
    output::text(out, &s)?;
    Ok(if sim.errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}
