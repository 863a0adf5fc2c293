//! `zsnap check` as a value: what a [`Status`] and the last runs say against the
//! config's `[check]` thresholds, with Nagios levels.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde::Serialize;
use zsnap_core::config::Thresholds;
use zsnap_core::duration::Span;
use zsnap_core::schedule::Period;

use super::value::{age, Status};
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
    /// freshness of each label, replication lag, backups.
    pub findings: Vec<Finding>,
    /// The datasets checked.
    pub datasets: usize,
    /// How many thresholds were checked.
    pub checks: usize,
}

impl CheckReport {
    /// The overall level: the worst finding's, [`Level::Ok`] without findings.
    pub fn level(&self) -> Level {
        if self.at(Level::Critical).next().is_some() {
            Level::Critical
        } else if self.at(Level::Warning).next().is_some() {
            Level::Warning
        } else {
            Level::Ok
        }
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
    /// critical findings then the warnings, separated by `; `, or how much was checked
    /// when all is well.
    pub fn summary(&self) -> String {
        if self.findings.is_empty() {
            return format!(
                "{} datasets, {} checks, all fresh",
                self.datasets, self.checks
            );
        }
        self.at(Level::Critical)
            .chain(self.at(Level::Warning))
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
    report
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
