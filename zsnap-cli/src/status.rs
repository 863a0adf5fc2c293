//! `zsnap status` and `zsnap check`: what exists, how old it is, what is due, how far
//! each target lags.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::config::{Config, Host, TargetAddress, Thresholds};
use zsnap_core::duration::Span;
use zsnap_core::policy::{resolve_policies, Ownership};
use zsnap_core::schedule::{next_due, Period};
use zsnap_core::{Decision, KeptUntil, Location, Plan, Protection, Verdict};
use zsnap_exec::apply::OneBackend;
use zsnap_exec::failure::error_chain;
use zsnap_exec::job::{Engine, ListFailure, Listing, Source};

use crate::backends::{load_fake, real_backends};
use crate::commands::read_inventory;
use crate::exit;
use crate::failure::Failure;
use crate::output;
use crate::request::{BackendSpec, Request};

/// One label of one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct LabelStatus {
    /// The label.
    pub label: String,
    /// The newest snapshot of that label (short name).
    pub newest: Option<String>,
    /// Its creation time.
    pub newest_time: Option<DateTime<Utc>>,
    /// Its age in seconds.
    pub age_seconds: Option<i64>,
    /// When the label is next due.
    pub next_due: Option<DateTime<Utc>>,
    /// Snapshots of that label.
    pub count: usize,
    /// Whether the label is taken on demand (not scheduled): no rule that ignores
    /// labels destroys its snapshots (see `zsnap plan` for each one's reason).
    pub on_demand: bool,
    /// For a label declared in the policy's `on_demand`: the expiry a new snapshot of it
    /// gets (`"30d"`, or `"never"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_expiry: Option<String>,
    /// For an on-demand label: how the prune planner keeps each of its snapshots,
    /// oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptStatus>,
}

impl LabelStatus {
    fn new(label: String, on_demand: bool) -> Self {
        LabelStatus {
            label,
            newest: None,
            newest_time: None,
            age_seconds: None,
            next_due: None,
            count: 0,
            on_demand,
            on_demand_expiry: None,
            kept: Vec::new(),
        }
    }
}

/// How one on-demand snapshot is kept, as the prune planner decided at `now`.
#[derive(Debug, Clone, Serialize)]
pub struct KeptStatus {
    /// The snapshot (short name).
    pub snapshot: String,
    /// Until when it is kept: its expiry, when every reason that keeps it ends then
    /// (the latest of them); `None` when it is kept with no end (no expiry, a rule
    /// naming its label), destroyed by the next prune, or not pruned at all.
    pub kept_until: Option<DateTime<Utc>>,
    /// The planner's verdict, as `zsnap plan --json` gives it; `None` when its dataset
    /// is not pruned now (its policy says `prune = false`, or a target it replicates
    /// to could not be listed).
    pub verdict: Option<Verdict>,
}

/// A root that could not be listed, and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct UnreachableStatus {
    /// Where.
    pub location: Location,
    /// The root whose `zfs list` failed.
    pub root: String,
    /// Why, with its causes.
    pub error: String,
    /// The roots of the `[[datasets]]` entries in it, whose status is unknown.
    pub datasets: Vec<String>,
    /// The targets whose state is unknown: their dataset, or their source, is in it.
    pub targets: Vec<String>,
}

/// One managed dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetStatus {
    /// Where.
    pub location: Location,
    /// The dataset.
    pub dataset: String,
    /// Its policy.
    pub policy: String,
    /// Its snapshots (all, managed or not).
    pub snapshots: usize,
    /// Per label of its schedule (and adopted labels).
    pub labels: Vec<LabelStatus>,
    /// Whether an interrupted receive left a resume token.
    pub resumable: bool,
}

/// One source dataset on one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// The target's name.
    pub target: String,
    /// The source dataset.
    pub source: String,
    /// The target dataset.
    pub dataset: String,
    /// The newest snapshot both have (short name).
    pub newest_common: Option<String>,
    /// How much older it is than the source's newest snapshot, in seconds.
    pub lag_seconds: Option<i64>,
    /// Whether the target has an interrupted receive to resume.
    pub resume_pending: bool,
}

/// `zsnap status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When.
    pub now: DateTime<Utc>,
    /// Managed datasets.
    pub datasets: Vec<DatasetStatus>,
    /// Replication state.
    pub targets: Vec<TargetStatus>,
    /// Backups in the `[backups.NAME]` stores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<crate::backup::BackupStatus>,
    /// The roots that could not be listed (a pool exported, a host unreachable): what
    /// is in them is missing from `datasets` and `targets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<UnreachableStatus>,
}

/// Every location listed root by root: what could be listed, and what could not.
fn listing(req: &Request, config: &Config, engine: &Engine<'_>) -> Result<Listing, Failure> {
    if let Some(path) = &req.inventory {
        let mut saved = Some(read_inventory(path)?);
        return Ok(engine.list_each(&mut Source::Saved(&mut saved))?);
    }
    Ok(match &req.backend {
        BackendSpec::Fake(path) => {
            let (mut z, _) = load_fake(path, config, req.now)?;
            engine.list_each(&mut Source::Backends(&mut OneBackend(&mut z)))?
        }
        BackendSpec::Local => engine.list_each(&mut Source::Backends(&mut real_backends(
            config,
            &Host::Local,
        )?))?,
        BackendSpec::Ssh(h) => {
            engine.list_each(&mut Source::Backends(&mut real_backends(config, h)?))?
        }
    })
}

/// How long a run may go without ending before `zsnap check` warns: twice the shortest
/// scheduled period (the timer's next runs find the lock held meanwhile), at least an
/// hour; a day without schedules.
pub fn run_stale_after(engine: &Engine<'_>) -> Span {
    let shortest = engine
        .policies()
        .values()
        .flat_map(|p| {
            p.schedule
                .labels()
                .iter()
                .map(|l| nominal(l.every()).seconds())
        })
        .min();
    Span::from_secs(shortest.map_or(86_400, |s| (2 * s).max(3600)))
}

/// What the last run of each changing command says: a failed one is critical, one that
/// failed in part or never ended a warning.
fn last_runs(
    req: &Request,
    config: &Config,
    engine: &Engine<'_>,
    crit: &mut Vec<String>,
    warn: &mut Vec<String>,
) {
    let dir = crate::commands::resolve(&req.config, &config.paths.journal_dir);
    let path = crate::last_run::path(&dir);
    let runs = match crate::last_run::read(&path) {
        Ok(r) => r,
        Err(e) => {
            warn.push(format!("cannot read the last runs' outcome: {e:#}"));
            return;
        }
    };
    let stale = run_stale_after(engine);
    for (command, r) in &runs {
        let first = r.errors.first().map_or("", String::as_str);
        let more = match r.errors.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        if r.failed() {
            crit.push(format!(
                "the last zsnap {command} ({}) failed: {first}{more}",
                r.started.format("%Y-%m-%d %H:%M")
            ));
        } else if r.partial() {
            warn.push(format!(
                "the last zsnap {command} ({}) failed in part: {first}{more}",
                r.started.format("%Y-%m-%d %H:%M")
            ));
        } else if r.status.is_none() {
            let age = (req.now - r.started).num_seconds();
            if u64::try_from(age).is_ok_and(|a| a > stale.seconds()) {
                warn.push(format!(
                    "zsnap {command} started {} ago (process {}) and has not ended: still running and holding the lock, or killed (warn {stale})",
                    output::age(chrono::TimeDelta::seconds(age)),
                    r.pid
                ));
            }
        }
    }
}

/// Every root that could not be listed, with the `[[datasets]]` roots and the
/// targets it hides.
fn unreachable(config: &Config, failed: &[ListFailure]) -> Vec<UnreachableStatus> {
    let overlaps = |f: &ListFailure, loc: &Location, ds: &zsnap_core::DatasetName| {
        &f.location == loc && (f.root.contains(ds) || ds.contains(&f.root))
    };
    failed
        .iter()
        .map(|f| {
            let datasets = config
                .datasets
                .iter()
                .filter(|e| overlaps(f, &e.host.location(), &e.root))
                .map(|e| e.root.to_string())
                .collect();
            let targets = config
                .targets
                .iter()
                .filter(|(_, t)| {
                    let source = config
                        .datasets
                        .iter()
                        .find(|e| e.root == t.source)
                        .is_some_and(|e| overlaps(f, &e.host.location(), &e.root));
                    let target = match &t.to {
                        TargetAddress::Dataset { host, dataset } => {
                            overlaps(f, &host.location(), dataset)
                        }
                        _ => false,
                    };
                    source || target
                })
                .map(|(name, _)| name.clone())
                .collect();
            UnreachableStatus {
                location: f.location.clone(),
                root: f.root.to_string(),
                error: error_chain(f),
                datasets,
                targets,
            }
        })
        .collect()
}

/// How `decision` keeps an on-demand snapshot (see [`KeptStatus`]).
fn kept_status(snapshot: String, decision: Option<&Decision>) -> KeptStatus {
    let verdict = decision.map(|d| d.verdict.clone());
    let kept_until = match &verdict {
        Some(Verdict::Keep { reasons } | Verdict::Protect { reasons, .. }) => {
            let ends: Option<Vec<DateTime<Utc>>> = reasons
                .iter()
                .map(|r| match r.until {
                    Some(KeptUntil::Time { time }) => Some(time),
                    _ => None,
                })
                .collect();
            ends.and_then(|e| e.into_iter().max())
        }
        _ => None,
    };
    KeptStatus {
        snapshot,
        kept_until,
        verdict,
    }
}

/// The status of every managed dataset and target, from what could be listed: the
/// roots in `listing.failed` are reported as unreachable, and what is in them is left
/// out.
///
/// # Errors
/// Selections that do not fit the inventories, or a prune plan (which says how
/// on-demand snapshots are kept) that cannot be made.
pub fn compute(
    engine: &Engine<'_>,
    listing: &Listing,
    now: DateTime<Utc>,
) -> anyhow::Result<Status> {
    let config = engine.config();
    let invs = &listing.invs;
    let failed = listing.failed.as_slice();
    let unreachable = unreachable(config, failed);
    let mut datasets = Vec::new();
    for host in config.source_hosts() {
        let loc = host.location();
        let Some(inv) = invs.get(&loc) else { continue };
        let mut selections = config.selections(&host);
        // What is under a root that could not be listed is reported as unreachable.
        selections.retain(|s| {
            !failed.iter().any(|f| {
                f.location == loc && (f.root.contains(&s.root) || s.root.contains(&f.root))
            })
        });
        // The prune plan of this location, made once and only when an on-demand
        // label needs it: its keep reasons say until when each snapshot stays.
        let mut prune: Option<(Plan, BTreeMap<String, usize>)> = None;
        for (ds, pname, policy) in resolve_policies(inv, &selections, engine.policies())
            .with_context(|| format!("match datasets with policies at {loc}"))?
        {
            let mut labels: BTreeMap<String, LabelStatus> = BTreeMap::new();
            for ls in policy.schedule.labels() {
                labels.insert(
                    ls.label().to_string(),
                    LabelStatus::new(ls.label().to_string(), false),
                );
            }
            for (label, expiry) in &policy.on_demand {
                let mut l =
                    LabelStatus::new(label.to_string(), policy.is_on_demand(label.as_str()));
                l.on_demand_expiry =
                    Some(expiry.map_or_else(|| "never".to_owned(), |s| s.to_string()));
                labels.insert(label.to_string(), l);
            }
            let mut on_demand_snapshots: Vec<(String, String)> = Vec::new();
            for s in &ds.snapshots {
                let o = policy.classify(s);
                let (Some(label), Some(time)) = (o.label(), o.time()) else {
                    continue;
                };
                if matches!(o, Ownership::Unmanaged) {
                    continue;
                }
                let e = labels.entry(label.to_owned()).or_insert_with(|| {
                    LabelStatus::new(
                        label.to_owned(),
                        matches!(o, Ownership::Managed { .. }) && policy.is_on_demand(label),
                    )
                });
                e.count += 1;
                if e.newest_time.is_none_or(|t| time >= t) {
                    e.newest = Some(s.name.to_string());
                    e.newest_time = Some(time);
                    e.age_seconds = Some((now - time).num_seconds());
                }
                if e.on_demand {
                    on_demand_snapshots.push((label.to_owned(), s.name.to_string()));
                }
            }
            if !on_demand_snapshots.is_empty() {
                let (plan, index) = match &mut prune {
                    Some(p) => p,
                    None => {
                        let plan = engine.plan_prune(&loc, invs, failed, now);
                        let index = plan
                            .decisions
                            .iter()
                            .enumerate()
                            .map(|(i, d)| (d.snapshot.to_string(), i))
                            .collect();
                        prune.insert((plan, index))
                    }
                };
                for (label, short) in on_demand_snapshots {
                    let decision = index
                        .get(&format!("{}@{short}", ds.name))
                        .map(|&i| &plan.decisions[i]);
                    if let Some(l) = labels.get_mut(&label) {
                        l.kept.push(kept_status(short, decision));
                    }
                }
            }
            for (label, when) in next_due(
                &policy.schedule,
                policy.timezone,
                policy.scheduled_snapshots(ds),
                now,
            ) {
                if let Some(e) = labels.get_mut(label.as_str()) {
                    e.next_due = Some(when);
                }
            }
            datasets.push(DatasetStatus {
                location: loc.clone(),
                dataset: ds.name.to_string(),
                policy: pname.to_owned(),
                snapshots: ds.snapshots.len(),
                labels: labels.into_values().collect(),
                resumable: ds.props.receive_resume_token.is_some(),
            });
        }
    }
    let mut targets = Vec::new();
    for (name, t) in &config.targets {
        let TargetAddress::Dataset { host, .. } = &t.to else {
            continue;
        };
        if unreachable.iter().any(|u| u.targets.contains(name)) {
            continue;
        }
        let Some(entry) = config.datasets.iter().find(|e| e.root == t.source) else {
            continue;
        };
        let (Some(src), Some(dst)) = (invs.get(&entry.host.location()), invs.get(&host.location()))
        else {
            continue;
        };
        let Some(mapping) = t.mapping(entry) else {
            continue;
        };
        for ds in src.datasets.values().filter(|d| entry.selects(&d.name)) {
            let Ok(Some(tname)) = mapping.target_of(&ds.name) else {
                continue;
            };
            let tds = dst.dataset(&tname);
            // The base of the target's next incremental, as replication and pruning
            // see it (by guid, a bookmark on the source counting too).
            let common = tds
                .and_then(|t| zsnap_core::replicate::newest_common(ds, t))
                .map(|b| b.target());
            let lag = match (common, ds.newest()) {
                (Some(c), Some(n)) => Some((n.creation - c.creation).num_seconds()),
                _ => None,
            };
            targets.push(TargetStatus {
                target: name.clone(),
                source: ds.name.to_string(),
                dataset: tname.to_string(),
                newest_common: common.map(|s| s.name.to_string()),
                lag_seconds: lag,
                resume_pending: tds.is_some_and(|d| d.props.receive_resume_token.is_some()),
            });
        }
    }
    Ok(Status {
        now,
        datasets,
        targets,
        backups: Vec::new(),
        unreachable,
    })
}

/// `2026-12-09 10:00 UTC`.
fn utc_minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How the snapshots of an on-demand label are kept, in words, grouped: `kept until
/// 2026-12-09 10:00 UTC`, `kept: no expiry`, `2 kept until …; 1 kept: no expiry`. For a
/// declared label without snapshots, what a new one gets.
fn kept_text(l: &LabelStatus) -> String {
    if l.kept.is_empty() {
        return match l.on_demand_expiry.as_deref() {
            Some("never") => "new ones: no expiry (on_demand)".to_owned(),
            Some(span) => format!("new ones kept {span} (on_demand)"),
            None => "-".to_owned(),
        };
    }
    // In this order: kept until a time, without end, by rules, protected, going, not
    // pruned.
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    let mut groups: BTreeMap<(u8, String), usize> = BTreeMap::new();
    for k in &l.kept {
        let (order, text) = match (&k.verdict, k.kept_until) {
            (_, Some(t)) => {
                times.push(t);
                continue;
            }
            (None, None) => (5, "not pruned".to_owned()),
            (Some(Verdict::Destroy), None) => (4, "destroyed by the next prune".to_owned()),
            (Some(Verdict::Keep { reasons } | Verdict::Protect { reasons, .. }), None)
                if !reasons.is_empty() =>
            {
                let rules: Vec<String> = reasons
                    .iter()
                    .filter(|r| r.until.is_none())
                    .map(|r| r.rule.clone())
                    .collect();
                if !rules.is_empty() {
                    (2, format!("kept by {}", rules.join(", ")))
                } else if reasons
                    .iter()
                    .any(|r| r.until == Some(KeptUntil::BadExpiry))
                {
                    (1, "kept: zsnap:expires is not a time".to_owned())
                } else {
                    (1, "kept: no expiry".to_owned())
                }
            }
            (Some(Verdict::Protect { protections, .. }), None) => {
                let what: Vec<&str> = protections
                    .iter()
                    .map(|p| match p {
                        Protection::Held { .. } => "held",
                        Protection::Cloned { .. } | Protection::HiddenClones { .. } => "cloned",
                        Protection::Newest => "newest",
                        Protection::CommonWithTarget { .. }
                        | Protection::CommonWithSource { .. } => "common with a target",
                        Protection::Unmanaged => "unmanaged",
                        _ => "a safety rule",
                    })
                    .collect();
                (3, format!("protected ({})", what.join(", ")))
            }
            (Some(_), None) => (5, "not pruned".to_owned()),
        };
        *groups.entry((order, text)).or_default() += 1;
    }
    let mut parts: Vec<(usize, String)> = Vec::new();
    if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
        let text = if first == last {
            format!("kept until {}", utc_minute(*first))
        } else {
            format!("kept until {} … {}", utc_minute(*first), utc_minute(*last))
        };
        parts.push((times.len(), text));
    }
    parts.extend(groups.into_iter().map(|((_, text), n)| (n, text)));
    if parts.len() == 1 {
        return parts.remove(0).1;
    }
    parts
        .into_iter()
        .map(|(n, text)| format!("{n} {text}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `location:dataset`, or the dataset alone on this machine.
fn at(location: &Location, dataset: &str) -> String {
    if *location == Location::local() {
        dataset.to_owned()
    } else {
        format!("{location}:{dataset}")
    }
}

/// `zsnap status`. A root that cannot be listed is shown as unreachable, with the
/// error, and the rest as usual; the exit status is then 3 (partial failure).
///
/// # Errors
/// Config and selection failures, and listing failures when nothing could be listed.
pub fn status(req: &Request, config: &Config, out: &mut dyn Write) -> Result<u8, Failure> {
    let engine = Engine::new(config);
    let listing = listing(req, config, &engine)?;
    let roots: usize = engine.roots().values().map(Vec::len).sum();
    // Nothing could be listed (no `zfs`, no pool, no network): the error, with its
    // hint, says so better than a status of nothing.
    if roots > 0 && listing.failed.len() == roots {
        let mut listing = listing;
        return Err(Failure::from_zfs(
            zsnap_exec::job::JobError::from(listing.failed.swap_remove(0)).into(),
        ));
    }
    let mut st = compute(&engine, &listing, req.now)?;
    st.backups = crate::backup::backup_status(config, &listing.invs, req.now);
    let code = if st.unreachable.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    };
    if req.json {
        output::json(out, &st)?;
        return Ok(code);
    }
    let mut rows = vec![vec![
        "DATASET".to_owned(),
        "LABEL".to_owned(),
        "COUNT".to_owned(),
        "NEWEST".to_owned(),
        "AGE".to_owned(),
        "NEXT DUE".to_owned(),
        "KEPT".to_owned(),
    ]];
    for d in &st.datasets {
        let name = at(&d.location, &d.dataset);
        if d.labels.is_empty() {
            rows.push(vec![
                name.clone(),
                "-".into(),
                "0".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for l in &d.labels {
            rows.push(vec![
                name.clone(),
                l.label.clone(),
                l.count.to_string(),
                when(l.newest_time),
                l.age_seconds
                    .map_or("-".into(), |s| output::age(chrono::TimeDelta::seconds(s))),
                if l.on_demand {
                    "on demand".to_owned()
                } else {
                    when(l.next_due)
                },
                if l.on_demand {
                    kept_text(l)
                } else {
                    "-".to_owned()
                },
            ]);
        }
    }
    for u in &st.unreachable {
        for root in &u.datasets {
            rows.push(vec![
                at(&u.location, root),
                format!("unreachable: {}", u.error),
            ]);
        }
    }
    let mut s = output::table(&rows);
    let unreachable_targets: Vec<(&String, &UnreachableStatus)> = st
        .unreachable
        .iter()
        .flat_map(|u| u.targets.iter().map(move |t| (t, u)))
        .collect();
    if !st.targets.is_empty() || !unreachable_targets.is_empty() {
        s.push('\n');
        let mut rows = vec![vec![
            "TARGET".to_owned(),
            "SOURCE".to_owned(),
            "TARGET DATASET".to_owned(),
            "NEWEST COMMON".to_owned(),
            "LAG".to_owned(),
            "RESUME".to_owned(),
        ]];
        for t in &st.targets {
            rows.push(vec![
                t.target.clone(),
                t.source.clone(),
                t.dataset.clone(),
                t.newest_common.clone().unwrap_or_else(|| "none".into()),
                t.lag_seconds
                    .map_or("-".into(), |s| output::age(chrono::TimeDelta::seconds(s))),
                if t.resume_pending {
                    "pending".into()
                } else {
                    "-".into()
                },
            ]);
        }
        for (name, u) in unreachable_targets {
            let Some(t) = config.targets.get(name) else {
                continue;
            };
            let dataset = match &t.to {
                TargetAddress::Dataset { dataset, .. } => dataset.to_string(),
                other => other.to_string(),
            };
            rows.push(vec![
                name.clone(),
                t.source.to_string(),
                dataset,
                format!("unreachable: {}", u.error),
            ]);
        }
        s.push_str(&output::table(&rows));
    }
    if !st.backups.is_empty() {
        s.push('\n');
        let mut rows = vec![vec![
            "BACKUP".to_owned(),
            "DATASET".to_owned(),
            "RESTORABLE".to_owned(),
            "NEWEST".to_owned(),
            "AGE".to_owned(),
            "PROBLEMS".to_owned(),
        ]];
        for b in &st.backups {
            let mut problems = Vec::new();
            if let Some(e) = &b.error {
                problems.push(e.clone());
            }
            if b.unfinished > 0 {
                problems.push(format!("{} unfinished", b.unfinished));
            }
            if b.damaged > 0 {
                problems.push(format!("{} damaged or broken", b.damaged));
            }
            rows.push(vec![
                b.name.clone(),
                b.dataset.clone().unwrap_or_else(|| "-".into()),
                b.restorable.to_string(),
                when(b.newest),
                b.age_seconds
                    .map_or("-".into(), |s| output::age(chrono::TimeDelta::seconds(s))),
                if problems.is_empty() {
                    "-".into()
                } else {
                    problems.join(", ")
                },
            ]);
        }
        s.push_str(&output::table(&rows));
    }
    output::text(out, &s)?;
    Ok(code)
}

/// How far in the future a snapshot may be dated before `zsnap check` warns (clocks of
/// hosts over ssh drift a little).
const FUTURE_SLACK_SECONDS: i64 = 300;

/// The length of one period, for default thresholds.
pub fn nominal(p: Period) -> Span {
    Span::from_secs(match p {
        Period::Every(s) => s.seconds(),
        Period::Hourly => 3600,
        Period::Daily => 86_400,
        Period::Weekly => 7 * 86_400,
        Period::Monthly => 31 * 86_400,
        _ => 366 * 86_400,
    })
}

/// `zsnap check`: one line, Nagios exit codes.
///
/// # Errors
/// Only output failures: everything else is reported as UNKNOWN.
pub fn check(req: &Request, config: &Config, out: &mut dyn Write) -> Result<u8, Failure> {
    let engine = Engine::new(config);
    let mut crit = Vec::new();
    let mut warn = Vec::new();
    let st = match listing(req, config, &engine).and_then(|l| {
        // A root that cannot be listed is critical; the rest is checked as usual.
        for f in &l.failed {
            crit.push(error_chain(f));
        }
        let mut st = compute(&engine, &l, req.now)?;
        st.backups = crate::backup::backup_status(config, &l.invs, req.now);
        Ok(st)
    }) {
        Ok(st) => st,
        Err(f) => return unknown(req, &format!("{:#}", f.error), out),
    };
    last_runs(req, config, &engine, &mut crit, &mut warn);
    let mut checked = 0;
    for d in &st.datasets {
        let policy = &engine.policies()[&d.policy];
        for l in &d.labels {
            let Some(ls) = policy.schedule.get(&l.label) else {
                continue;
            };
            let label = l
                .label
                .parse()
                .expect("labels in a status come from the schedule");
            let th = config
                .check
                .freshness
                .get(&label)
                .copied()
                .unwrap_or_else(|| {
                    let p = nominal(ls.every()).seconds();
                    Thresholds::new(Span::from_secs(2 * p), Span::from_secs(4 * p))
                });
            checked += 1;
            match l.age_seconds {
                None => crit.push(format!("{} has no {} snapshot", d.dataset, l.label)),
                // Dated in the future (the clock was set back, or was ahead when it was
                // taken): the schedule takes no snapshot of this label until then.
                Some(age) if age < -FUTURE_SLACK_SECONDS => warn.push(format!(
                    "{} {} is dated {} in the future: no {} snapshot is taken until then (was the clock ahead?)",
                    d.dataset,
                    l.label,
                    output::age(chrono::TimeDelta::seconds(-age)),
                    l.label
                )),
                Some(age) => {
                    let age_u = u64::try_from(age).unwrap_or(0);
                    let said = output::age(chrono::TimeDelta::seconds(age));
                    if age_u > th.crit.seconds() {
                        crit.push(format!(
                            "{} {} is {said} old (crit {})",
                            d.dataset, l.label, th.crit
                        ));
                    } else if age_u > th.warn.seconds() {
                        warn.push(format!(
                            "{} {} is {said} old (warn {})",
                            d.dataset, l.label, th.warn
                        ));
                    }
                }
            }
        }
    }
    if let Some(th) = config.check.replication_lag {
        for t in &st.targets {
            checked += 1;
            match t.lag_seconds {
                None => crit.push(format!(
                    "{} has nothing in common with {}:{}",
                    t.source, t.target, t.dataset
                )),
                Some(lag) => {
                    let lag_u = u64::try_from(lag).unwrap_or(0);
                    let said = output::age(chrono::TimeDelta::seconds(lag));
                    if lag_u > th.crit.seconds() {
                        crit.push(format!(
                            "{} lags {said} on {} (crit {})",
                            t.source, t.target, th.crit
                        ));
                    } else if lag_u > th.warn.seconds() {
                        warn.push(format!(
                            "{} lags {said} on {} (warn {})",
                            t.source, t.target, th.warn
                        ));
                    }
                }
            }
        }
    }
    // Backups: no restorable backup, or the newest older than 2 (warn) or 4 (crit)
    // periods; an unreadable store is critical, damaged backups a warning.
    for b in &st.backups {
        checked += 1;
        let what = format!("backup {}", b.name);
        let Some(dataset) = &b.dataset else {
            crit.push(format!(
                "{what}: cannot read {}: {}",
                b.store,
                b.error.as_deref().unwrap_or("unknown")
            ));
            continue;
        };
        match b.age_seconds {
            None => crit.push(format!("{dataset} has no restorable backup in {what}")),
            Some(age) => {
                let age_u = u64::try_from(age).unwrap_or(0);
                let said = output::age(chrono::TimeDelta::seconds(age));
                if age_u > 4 * b.every_seconds {
                    crit.push(format!(
                        "{dataset} {what} is {said} old (crit {})",
                        Span::from_secs(4 * b.every_seconds)
                    ));
                } else if age_u > 2 * b.every_seconds {
                    warn.push(format!(
                        "{dataset} {what} is {said} old (warn {})",
                        Span::from_secs(2 * b.every_seconds)
                    ));
                }
            }
        }
        if b.damaged > 0 {
            warn.push(format!(
                "{dataset} has {} damaged or broken backup(s) in {what}",
                b.damaged
            ));
        }
    }
    let (word, code, items) = if !crit.is_empty() {
        ("CRITICAL", exit::NAGIOS_CRITICAL, [crit, warn].concat())
    } else if !warn.is_empty() {
        ("WARNING", exit::NAGIOS_WARNING, warn)
    } else {
        ("OK", exit::NAGIOS_OK, Vec::new())
    };
    let line = if items.is_empty() {
        format!(
            "ZSNAP OK - {} datasets, {checked} checks, all fresh\n",
            st.datasets.len()
        )
    } else {
        format!("ZSNAP {word} - {}\n", items.join("; "))
    };
    print_check(req.json, word, code, &line, out)?;
    Ok(code)
}

#[derive(Serialize)]
struct CheckJson<'a> {
    status: &'a str,
    code: u8,
    message: &'a str,
}

fn print_check(
    json: bool,
    word: &str,
    code: u8,
    line: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json {
        output::json(
            out,
            &CheckJson {
                status: word,
                code,
                message: line.trim_end(),
            },
        )
    } else {
        output::text(out, line)
    }
}

/// `zsnap check` could not check: `ZSNAP UNKNOWN - why` (as JSON with `--json`), exit
/// status 3.
///
/// # Errors
/// Only output failures.
pub fn unknown(req: &Request, why: &str, out: &mut dyn Write) -> Result<u8, Failure> {
    unknown_line(req.json, why, out)
}

/// [`unknown`] before a request exists (the arguments did not parse).
///
/// # Errors
/// Only output failures.
pub fn unknown_line(json: bool, why: &str, out: &mut dyn Write) -> Result<u8, Failure> {
    let line = format!("ZSNAP UNKNOWN - {}\n", why.trim_end());
    print_check(json, "UNKNOWN", exit::NAGIOS_UNKNOWN, &line, out)?;
    Ok(exit::NAGIOS_UNKNOWN)
}
