//! Computing a [`Status`] from a listing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, TargetAddress};
use zsnap_core::policy::{resolve_policies, Ownership, SelectionError};
use zsnap_core::schedule::next_due;
use zsnap_core::{Decision, KeptUntil, Location, Plan, Verdict};

use super::value::{
    DatasetStatus, KeptStatus, LabelStatus, Status, TargetStatus, UnreachableStatus,
};
use crate::failure::error_chain;
use crate::job::{Engine, ListFailure, Listing};

/// A status could not be computed. Reads after "failed to …"; render it with every
/// cause with [`error_chain`](crate::failure::error_chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The datasets of a location do not fit the config's selections and policies.
    #[error("match datasets with policies at {location}")]
    Policies {
        /// Where.
        location: Location,
        /// The cause.
        #[source]
        source: SelectionError,
    },
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
/// out. The backups are left empty: [`backup_status`](super::backup_status) reads
/// them.
///
/// # Errors
/// Selections that do not fit the inventories ([`StatusError::Policies`]).
pub fn status(
    engine: &Engine<'_>,
    listing: &Listing,
    now: DateTime<Utc>,
) -> Result<Status, StatusError> {
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
        for (ds, pname, policy) in
            resolve_policies(inv, &selections, engine.policies()).map_err(|source| {
                StatusError::Policies {
                    location: loc.clone(),
                    source,
                }
            })?
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
        pools: Vec::new(),
    })
}
