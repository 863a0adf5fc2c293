//! `zsnap check` as a value: what a [`Status`] and the last runs say against the
//! config's `[check]` thresholds, with Nagios levels.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::Serialize;
use zsnap_core::config::Thresholds;
use zsnap_core::duration::Span;
use zsnap_core::schedule::Period;

use zsnap_core::config::CheckSpec;
use zsnap_core::zpool::{DataErrors, Health, PoolHealth};
use zsnap_core::Location;

use super::value::{age, PoolsAt, Status};
use crate::failure::error_chain;
use crate::job::Engine;
use crate::last_run::{LastRunError, RunRecord};

/// How far in the future a snapshot may be dated before a check warns (clocks of hosts
/// over ssh drift a little).
const FUTURE_SLACK_SECONDS: i64 = 300;

/// A Nagios level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// All is well.
    Ok,
    /// A warning threshold is crossed.
    Warning,
    /// A critical threshold is crossed.
    Critical,
    /// The check itself could not run.
    Unknown,
}

impl Level {
    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`.
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    /// The Nagios plugin exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }
}

/// One thing a check found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// [`Level::Warning`] or [`Level::Critical`].
    pub level: Level,
    /// What, in words (`tank/home hourly is 5h old (crit 4h)`).
    pub message: String,
}

/// What [`check`] found.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Every finding, in the order checked: unreachable roots, the last runs, the
    /// freshness of each label, replication lag, backups, pools.
    pub findings: Vec<Finding>,
    /// The datasets checked.
    pub datasets: usize,
    /// How many thresholds were checked.
    pub checks: usize,
    /// Each pool checked (from [`Status::pools`]), with its level.
    pub pools: Vec<PoolResult>,
}

/// What [`check`] says of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PoolResult {
    /// Where.
    pub location: Location,
    /// The pool.
    pub pool: String,
    /// The worst of its findings; [`Level::Unknown`] when zpool could not be asked.
    pub level: Level,
    /// Its state (`ONLINE`, `DEGRADED`, …), when known.
    pub health: Option<String>,
    /// Its capacity in percent, when known.
    pub capacity: Option<u64>,
}

impl CheckReport {
    /// The overall level: the worst finding's, [`Level::Ok`] without findings. Worst
    /// first: critical, warning, unknown (as the monitoring plugins' `max_state_alt`
    /// orders them: something known to be wrong outweighs something not known).
    pub fn level(&self) -> Level {
        [Level::Critical, Level::Warning, Level::Unknown]
            .into_iter()
            .find(|l| self.at(*l).next().is_some())
            .unwrap_or(Level::Ok)
    }

    /// The overall level's Nagios exit code.
    pub fn exit_code(&self) -> u8 {
        self.level().exit_code()
    }

    /// The findings of one level, in order.
    pub fn at(&self, level: Level) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.level == level)
    }

    /// The report in one line, as a Nagios plugin gives it after `ZSNAP LEVEL - `: the
    /// critical findings, the warnings, then the unknowns, separated by `; `, or how
    /// much was checked when all is well.
    pub fn summary(&self) -> String {
        if self.findings.is_empty() {
            let pools = match self.pools.len() {
                0 => String::new(),
                1 => ", 1 pool healthy".to_owned(),
                n => format!(", {n} pools healthy"),
            };
            return format!(
                "{} datasets, {} checks, all fresh{pools}",
                self.datasets, self.checks
            );
        }
        self.at(Level::Critical)
            .chain(self.at(Level::Warning))
            .chain(self.at(Level::Unknown))
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn push(&mut self, level: Level, message: String) {
        self.findings.push(Finding { level, message });
    }
}

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

/// How long a run may go without ending before a check warns: twice the shortest
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

/// Checks `status` (computed at `status.now`) against the config's `[check]`
/// thresholds, and the last run of each changing command (`last_runs`, or why they
/// could not be read: [`crate::last_run::read`]).
///
/// Critical: a root that could not be listed, a last run that failed, a scheduled
/// label without snapshots or older than its `crit` threshold (default: 4 periods), a
/// target with nothing in common with its source or lagging more than
/// `replication_lag`'s `crit`, a `[backups.NAME]` store that cannot be read or holds
/// no restorable backup of a dataset, or one older than 4 periods. Warning: the `warn`
/// thresholds (default: 2 periods), a last run that failed in part or has not ended
/// after [`run_stale_after`], unreadable last runs, a snapshot dated in the future,
/// damaged backups.
pub fn check(
    engine: &Engine<'_>,
    status: &Status,
    last_runs: Result<&BTreeMap<String, RunRecord>, &LastRunError>,
) -> CheckReport {
    let config = engine.config();
    let now = status.now;
    let mut report = CheckReport {
        findings: Vec::new(),
        datasets: status.datasets.len(),
        checks: 0,
        pools: Vec::new(),
    };
    // A root that cannot be listed is critical; the rest is checked as usual.
    for u in &status.unreachable {
        report.push(Level::Critical, u.error.clone());
    }
    match last_runs {
        Ok(runs) => check_runs(engine, runs, now, &mut report),
        Err(e) => report.push(
            Level::Warning,
            format!("cannot read the last runs' outcome: {}", error_chain(e)),
        ),
    }
    for d in &status.datasets {
        let Some(policy) = engine.policies().get(&d.policy) else {
            continue;
        };
        for l in &d.labels {
            let Some(ls) = policy.schedule.get(&l.label) else {
                continue;
            };
            let th = l
                .label
                .parse()
                .ok()
                .and_then(|label| config.check.freshness.get(&label).copied())
                .unwrap_or_else(|| {
                    let p = nominal(ls.every()).seconds();
                    Thresholds::new(Span::from_secs(2 * p), Span::from_secs(4 * p))
                });
            report.checks += 1;
            match l.age_seconds {
                None => report.push(
                    Level::Critical,
                    format!("{} has no {} snapshot", d.dataset, l.label),
                ),
                // Dated in the future (the clock was set back, or was ahead when it was
                // taken): the schedule takes no snapshot of this label until then.
                Some(a) if a < -FUTURE_SLACK_SECONDS => report.push(
                    Level::Warning,
                    format!(
                        "{} {} is dated {} in the future: no {} snapshot is taken until then (was the clock ahead?)",
                        d.dataset,
                        l.label,
                        age(TimeDelta::seconds(-a)),
                        l.label
                    ),
                ),
                Some(a) => {
                    let a_u = u64::try_from(a).unwrap_or(0);
                    let said = age(TimeDelta::seconds(a));
                    if a_u > th.crit.seconds() {
                        report.push(
                            Level::Critical,
                            format!("{} {} is {said} old (crit {})", d.dataset, l.label, th.crit),
                        );
                    } else if a_u > th.warn.seconds() {
                        report.push(
                            Level::Warning,
                            format!("{} {} is {said} old (warn {})", d.dataset, l.label, th.warn),
                        );
                    }
                }
            }
        }
    }
    if let Some(th) = config.check.replication_lag {
        for t in &status.targets {
            report.checks += 1;
            match t.lag_seconds {
                None => report.push(
                    Level::Critical,
                    format!(
                        "{} has nothing in common with {}:{}",
                        t.source, t.target, t.dataset
                    ),
                ),
                Some(lag) => {
                    let lag_u = u64::try_from(lag).unwrap_or(0);
                    let said = age(TimeDelta::seconds(lag));
                    if lag_u > th.crit.seconds() {
                        report.push(
                            Level::Critical,
                            format!(
                                "{} lags {said} on {} (crit {})",
                                t.source, t.target, th.crit
                            ),
                        );
                    } else if lag_u > th.warn.seconds() {
                        report.push(
                            Level::Warning,
                            format!(
                                "{} lags {said} on {} (warn {})",
                                t.source, t.target, th.warn
                            ),
                        );
                    }
                }
            }
        }
    }
    // Backups: no restorable backup, or the newest older than 2 (warn) or 4 (crit)
    // periods; an unreadable store is critical, damaged backups a warning.
    for b in &status.backups {
        report.checks += 1;
        let what = format!("backup {}", b.name);
        let Some(dataset) = &b.dataset else {
            report.push(
                Level::Critical,
                format!(
                    "{what}: cannot read {}: {}",
                    b.store,
                    b.error.as_deref().unwrap_or("unknown")
                ),
            );
            continue;
        };
        match b.age_seconds {
            None => report.push(
                Level::Critical,
                format!("{dataset} has no restorable backup in {what}"),
            ),
            Some(a) => {
                let a_u = u64::try_from(a).unwrap_or(0);
                let said = age(TimeDelta::seconds(a));
                if a_u > 4 * b.every_seconds {
                    report.push(
                        Level::Critical,
                        format!(
                            "{dataset} {what} is {said} old (crit {})",
                            Span::from_secs(4 * b.every_seconds)
                        ),
                    );
                } else if a_u > 2 * b.every_seconds {
                    report.push(
                        Level::Warning,
                        format!(
                            "{dataset} {what} is {said} old (warn {})",
                            Span::from_secs(2 * b.every_seconds)
                        ),
                    );
                }
            }
        }
        if b.damaged > 0 {
            report.push(
                Level::Warning,
                format!(
                    "{dataset} has {} damaged or broken backup(s) in {what}",
                    b.damaged
                ),
            );
        }
    }
    for at in &status.pools {
        check_pools(&config.check, at, &mut report);
    }
    report
}

/// `pool tank` on this machine, `pool tank at host` elsewhere.
fn pool_words(location: &Location, pool: &str) -> String {
    if *location == Location::local() {
        format!("pool {pool}")
    } else {
        format!("pool {pool} at {location}")
    }
}

/// The pools of one location against `[check]`'s `pool_health` and `pool_capacity`.
///
/// Health, as sanoid judges it: `ONLINE` is well, `DEGRADED` a warning, any other state
/// (`FAULTED`, `UNAVAIL`, `SUSPENDED`, `OFFLINE`, `REMOVED`, one zsnap does not know)
/// critical. An `ONLINE` pool with a device not `ONLINE` (an unavailable spare) and a
/// device with read, write or checksum errors are warnings; permanent data errors are
/// critical. A pool not imported is critical; a location zpool could not be asked at
/// leaves its pools unknown.
fn check_pools(check: &CheckSpec, at: &PoolsAt, report: &mut CheckReport) {
    let loc = &at.location;
    if let Some(e) = &at.error {
        let names: Vec<String> = at.wanted.iter().map(ToString::to_string).collect();
        let what = match names.as_slice() {
            [one] => pool_words(loc, one),
            many => format!(
                "pools {}{}",
                many.join(", "),
                if *loc == Location::local() {
                    String::new()
                } else {
                    format!(" at {loc}")
                }
            ),
        };
        report.push(Level::Unknown, format!("{what}: health unknown: {e}"));
        for p in &at.wanted {
            report.pools.push(PoolResult {
                location: loc.clone(),
                pool: p.to_string(),
                level: Level::Unknown,
                health: None,
                capacity: None,
            });
        }
        return;
    }
    for w in &at.wanted {
        let before = report.findings.len();
        let words = pool_words(loc, w.as_str());
        let Some(p) = at.pools.iter().find(|p| p.name() == w) else {
            report.checks += 1;
            report.push(Level::Critical, format!("{words} is not imported"));
            report.pools.push(PoolResult {
                location: loc.clone(),
                pool: w.to_string(),
                level: Level::Critical,
                health: None,
                capacity: None,
            });
            continue;
        };
        if check.pool_health {
            report.checks += 1;
            pool_health(&words, p, report);
        }
        if let Some(th) = check.pool_capacity {
            report.checks += 1;
            match p.usage.capacity {
                None => report.push(Level::Unknown, format!("{words}: capacity unknown")),
                Some(c) if c >= u64::from(th.crit) => report.push(
                    Level::Critical,
                    format!("{words} is {c}% full (crit {}%)", th.crit),
                ),
                Some(c) if c >= u64::from(th.warn) => report.push(
                    Level::Warning,
                    format!("{words} is {c}% full (warn {}%)", th.warn),
                ),
                Some(_) => {}
            }
        }
        let found = &report.findings[before..];
        let level = [Level::Critical, Level::Warning, Level::Unknown]
            .into_iter()
            .find(|l| found.iter().any(|f| f.level == *l))
            .unwrap_or(Level::Ok);
        report.pools.push(PoolResult {
            location: loc.clone(),
            pool: w.to_string(),
            level,
            health: Some(p.state().to_string()),
            capacity: p.usage.capacity,
        });
    }
}

/// The state, devices and data errors of one pool (see [`check_pools`]).
fn pool_health(words: &str, p: &PoolHealth, report: &mut CheckReport) {
    let state = p.state();
    let vdevs: Vec<_> = p.status.iter().flat_map(|s| s.vdevs()).collect();
    let not_online: Vec<String> = vdevs
        .iter()
        .skip(1)
        .filter(|v| !matches!(v.state, Health::Online | Health::Avail | Health::InUse))
        .map(|v| format!("{} {}", v.name, v.state))
        .collect();
    let devices = if not_online.is_empty() {
        String::new()
    } else {
        format!(": {}", not_online.join(", "))
    };
    match state {
        Health::Online if not_online.is_empty() => {}
        Health::Online => report.push(
            Level::Warning,
            format!("{words} is ONLINE, but not every device is{devices}"),
        ),
        Health::Degraded => report.push(Level::Warning, format!("{words} is DEGRADED{devices}")),
        other => report.push(Level::Critical, format!("{words} is {other}{devices}")),
    }
    let with_errors: Vec<String> = vdevs
        .iter()
        .filter_map(|v| {
            let e = v.errors.filter(|e| e.any())?;
            Some(format!(
                "{} ({} read, {} write, {} checksum)",
                v.name, e.read, e.write, e.cksum
            ))
        })
        .collect();
    if !with_errors.is_empty() {
        report.push(
            Level::Warning,
            format!(
                "{words} has device errors: {} (zpool clear once resolved)",
                with_errors.join(", ")
            ),
        );
    }
    match p.status.as_ref().and_then(|s| s.errors.as_ref()) {
        Some(DataErrors::Count(n)) if *n > 0 => report.push(
            Level::Critical,
            format!(
                "{words} has {n} permanent data errors (zpool status -v {} lists them)",
                p.name()
            ),
        ),
        Some(DataErrors::Other(text)) => report.push(
            Level::Warning,
            format!("{words}: errors: {}", text.replace('\n', " ")),
        ),
        _ => {}
    }
}

/// What the last run of each changing command says: a failed one is critical, one that
/// failed in part or never ended a warning.
fn check_runs(
    engine: &Engine<'_>,
    runs: &BTreeMap<String, RunRecord>,
    now: chrono::DateTime<chrono::Utc>,
    report: &mut CheckReport,
) {
    let stale = run_stale_after(engine);
    for (command, r) in runs {
        let first = r.errors.first().map_or("", String::as_str);
        let more = match r.errors.len() {
            0 | 1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        if r.failed() {
            report.push(
                Level::Critical,
                format!(
                    "the last zsnap {command} ({}) failed: {first}{more}",
                    r.started.format("%Y-%m-%d %H:%M")
                ),
            );
        } else if r.partial() {
            report.push(
                Level::Warning,
                format!(
                    "the last zsnap {command} ({}) failed in part: {first}{more}",
                    r.started.format("%Y-%m-%d %H:%M")
                ),
            );
        } else if r.status.is_none() {
            let a = (now - r.started).num_seconds();
            if u64::try_from(a).is_ok_and(|a| a > stale.seconds()) {
                report.push(
                    Level::Warning,
                    format!(
                        "zsnap {command} started {} ago (process {}) and has not ended: still running and holding the lock, or killed (warn {stale})",
                        age(TimeDelta::seconds(a)),
                        r.pid
                    ),
                );
            }
        }
    }
}
