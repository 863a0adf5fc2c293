//! `zsnap simulate`: a rehearsal of the config ([`zsnap_exec::rehearsal`]: days of
//! virtual time on an in-memory pool, with the very engine `zsnap run` uses), rendered:
//! what exists at the end and why, and the timeline.

use std::io::Write;

use chrono::{DateTime, Utc};
use zsnap_core::config::Config;
use zsnap_core::duration::Span;
use zsnap_core::Location;
use zsnap_exec::rehearsal::{aligned_start, rehearse, weekly};

use crate::exit;
use crate::failure::Failure;
use crate::output;
use crate::request::Request;

/// `zsnap simulate`.
///
/// # Errors
/// See [`rehearse`].
pub fn simulate(
    req: &Request,
    config: &Config,
    days: u32,
    step: Span,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    // Without --now, start at the last whole step.
    let start = if req.now_given {
        req.now
    } else {
        aligned_start(req.now, step)
    };
    let sim = rehearse(config, start, days, step)?;
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
        if weekly(days) { "week" } else { "day" }
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
