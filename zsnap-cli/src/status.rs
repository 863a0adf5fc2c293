//! `zsnap status` and `zsnap check`: gathering their inputs (the listing, the backup
//! stores' catalogs, the last runs' records) and rendering what
//! [`zsnap_exec::status`] computes.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::config::{Config, Host, TargetAddress};
use zsnap_core::{KeptUntil, Location, Protection, Verdict};
use zsnap_exec::apply::OneBackend;
use zsnap_exec::job::{Engine, Source};
use zsnap_exec::report::{gather_check, gather_status, ReportError};
use zsnap_exec::session::SessionFiles;
use zsnap_exec::status::{LabelStatus, Level, PoolResult, UnreachableStatus};

use crate::backends::load_fake;
use crate::exit;
use crate::failure::Failure;
use crate::load::read_inventory;
use crate::output;
use crate::request::{BackendSpec, Request};
use zsnap_exec::connect::connect_config;

/// Runs `f` on what `--inventory` or `--backend` names: a saved listing, a fake pool
/// (read only), or this machine or a host with the config's other locations.
fn with_source<R>(
    req: &Request,
    config: &Config,
    f: impl FnOnce(&mut Source<'_>) -> Result<R, ReportError>,
) -> Result<R, Failure> {
    let zfs = |e: ReportError| Failure::from_zfs(e.into());
    if let Some(path) = &req.inventory {
        let mut saved = Some(read_inventory(path)?);
        return f(&mut Source::Saved(&mut saved)).map_err(zfs);
    }
    let host = match &req.backend {
        BackendSpec::Fake(path) => {
            let (mut z, _) = load_fake(path, config, req.now)?;
            return f(&mut Source::Backends(&mut OneBackend(&mut z))).map_err(zfs);
        }
        BackendSpec::Local => Host::Local,
        BackendSpec::Ssh(h) => h.clone(),
    };
    f(&mut Source::Backends(&mut connect_config(config, &host)?)).map_err(zfs)
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
    let st = with_source(req, config, |source| {
        gather_status(&engine, source, req.now)
    })?;
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

/// `zsnap check`: one line, Nagios exit codes.
///
/// # Errors
/// Only output failures: everything else is reported as UNKNOWN.
pub fn check(req: &Request, config: &Config, out: &mut dyn Write) -> Result<u8, Failure> {
    let engine = Engine::new(config);
    let base = req.config.parent().unwrap_or(std::path::Path::new("."));
    let files = SessionFiles::of(&config.paths, base);
    let report = match with_source(req, config, |source| {
        gather_check(&engine, source, &files, req.now)
    }) {
        Ok(report) => report,
        Err(f) => return unknown(req, &format!("{:#}", f.error), out),
    };
    let level = report.level();
    let line = format!("ZSNAP {} - {}\n", level.word(), report.summary());
    print_check(req.json, level, &line, &report.pools, out)?;
    Ok(level.exit_code())
}

#[derive(Serialize)]
struct CheckJson<'a> {
    status: &'a str,
    code: u8,
    message: &'a str,
    #[serde(skip_serializing_if = "<[PoolResult]>::is_empty")]
    pools: &'a [PoolResult],
}

fn print_check(
    json: bool,
    level: Level,
    line: &str,
    pools: &[PoolResult],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json {
        output::json(
            out,
            &CheckJson {
                status: level.word(),
                code: level.exit_code(),
                message: line.trim_end(),
                pools,
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
    print_check(json, Level::Unknown, &line, &[], out)?;
    Ok(Level::Unknown.exit_code())
}
