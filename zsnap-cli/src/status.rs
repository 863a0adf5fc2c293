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
use zsnap_core::{Inventory, Location};
use zsnap_exec::apply::OneBackend;

use crate::backends::{load_fake, location, real_backends};
use crate::commands::read_inventory;
use crate::engine::{Engine, Listing, Source};
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
}

fn inventories(
    req: &Request,
    config: &Config,
    engine: &Engine<'_>,
) -> Result<BTreeMap<Location, Inventory>, Failure> {
    let listing = listing(req, config, engine)?;
    match listing.failed.into_iter().next() {
        Some(f) => Err(Failure::from_zfs(f.error)),
        None => Ok(listing.invs),
    }
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

/// The status of every managed dataset and target.
///
/// # Errors
/// Selections that do not fit the inventories.
pub fn compute(
    engine: &Engine<'_>,
    invs: &BTreeMap<Location, Inventory>,
    now: DateTime<Utc>,
) -> anyhow::Result<Status> {
    let config = engine.config();
    let mut datasets = Vec::new();
    for host in config.source_hosts() {
        let loc = location(&host);
        let Some(inv) = invs.get(&loc) else { continue };
        let selections = config.selections(&host);
        for (ds, pname, policy) in resolve_policies(inv, &selections, engine.policies())
            .with_context(|| format!("match datasets with policies at {loc}"))?
        {
            let mut labels: BTreeMap<String, LabelStatus> = BTreeMap::new();
            for ls in policy.schedule.labels() {
                labels.insert(
                    ls.label().to_string(),
                    LabelStatus {
                        label: ls.label().to_string(),
                        newest: None,
                        newest_time: None,
                        age_seconds: None,
                        next_due: None,
                        count: 0,
                        on_demand: false,
                    },
                );
            }
            for s in &ds.snapshots {
                let o = policy.classify(s);
                let (Some(label), Some(time)) = (o.label(), o.time()) else {
                    continue;
                };
                if matches!(o, Ownership::Unmanaged) {
                    continue;
                }
                let e = labels
                    .entry(label.to_owned())
                    .or_insert_with(|| LabelStatus {
                        label: label.to_owned(),
                        newest: None,
                        newest_time: None,
                        age_seconds: None,
                        next_due: None,
                        count: 0,
                        on_demand: matches!(o, Ownership::Managed { .. })
                            && policy.is_on_demand(label),
                    });
                e.count += 1;
                if e.newest_time.is_none_or(|t| time >= t) {
                    e.newest = Some(s.name.to_string());
                    e.newest_time = Some(time);
                    e.age_seconds = Some((now - time).num_seconds());
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
        let Some(entry) = config.datasets.iter().find(|e| e.root == t.source) else {
            continue;
        };
        let (Some(src), Some(dst)) = (invs.get(&location(&entry.host)), invs.get(&location(host)))
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
    })
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `zsnap status`.
///
/// # Errors
/// Config, listing and selection failures.
pub fn status(req: &Request, config: &Config, out: &mut dyn Write) -> Result<u8, Failure> {
    let engine = Engine::new(config);
    let invs = inventories(req, config, &engine)?;
    let mut st = compute(&engine, &invs, req.now)?;
    st.backups = crate::backup::backup_status(config, &invs, req.now);
    if req.json {
        output::json(out, &st)?;
        return Ok(exit::OK);
    }
    let mut rows = vec![vec![
        "DATASET".to_owned(),
        "LABEL".to_owned(),
        "COUNT".to_owned(),
        "NEWEST".to_owned(),
        "AGE".to_owned(),
        "NEXT DUE".to_owned(),
    ]];
    for d in &st.datasets {
        let name = if d.location == Location::local() {
            d.dataset.clone()
        } else {
            format!("{}:{}", d.location, d.dataset)
        };
        if d.labels.is_empty() {
            rows.push(vec![
                name.clone(),
                "-".into(),
                "0".into(),
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
            ]);
        }
    }
    let mut s = output::table(&rows);
    if !st.targets.is_empty() {
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
    Ok(exit::OK)
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
            crit.push(format!("{:#}", f.error));
        }
        let mut st = compute(&engine, &l.invs, req.now)?;
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
