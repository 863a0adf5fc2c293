//! Prune planning for one location.
//!
//! Interim: the engine's own prune planner (`zsnap_core::prune`) is being written in
//! parallel; until it lands, this module plans pruning from the same parts — policy
//! ownership ([`Policy::classify`]), retention ([`evaluate`]) and the safety rules of the
//! architecture (never destroy a held or cloned snapshot, one zsnap does not own, the
//! newest of a dataset, or the newest one a source shares with each of its targets) —
//! and is replaced by a call to the core planner once it exists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use zsnap_core::config::TargetAddress;
use zsnap_core::policy::resolve_policies;
use zsnap_core::retention::{evaluate, Candidate};
use zsnap_core::{
    Decision, DestroyStep, Guid, Inventory, Location, Plan, Protection, SnapshotRef, Step, Verdict,
};

use crate::backends::location;
use crate::engine::Engine;

/// For each source dataset at `loc`: the guids it shares with each target, newest
/// first is what matters, so the newest common guid per target.
fn common_with_targets(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
) -> BTreeMap<zsnap_core::DatasetName, Vec<(String, Guid)>> {
    let mut out: BTreeMap<_, Vec<(String, Guid)>> = BTreeMap::new();
    let config = engine.config();
    let Some(src_inv) = invs.get(loc) else {
        return out;
    };
    for (name, t) in &config.targets {
        let TargetAddress::Dataset { host, .. } = &t.to else {
            continue;
        };
        let Some(entry) = config.datasets.iter().find(|e| e.root == t.source) else {
            continue;
        };
        if &location(&entry.host) != loc {
            continue;
        }
        let Some(mapping) = t.mapping(entry) else {
            continue;
        };
        let Some(dst_inv) = invs.get(&location(host)) else {
            continue;
        };
        for ds in src_inv.datasets.values() {
            let Ok(Some(tname)) = mapping.target_of(&ds.name) else {
                continue;
            };
            let Some(tds) = dst_inv.dataset(&tname) else {
                continue;
            };
            let theirs: BTreeSet<Guid> = tds.snapshots.iter().map(|s| s.guid).collect();
            if let Some(newest) = ds.snapshots.iter().rev().find(|s| theirs.contains(&s.guid)) {
                out.entry(ds.name.clone())
                    .or_default()
                    .push((name.clone(), newest.guid));
            }
        }
    }
    out
}

/// Plans pruning at `loc`.
///
/// # Errors
/// When the selections do not fit the inventory.
pub fn plan(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let mut plan = Plan::new(now);
    let empty = Inventory::new();
    let inv = invs.get(loc).unwrap_or(&empty);
    let host = engine.host_of(loc);
    let selections = engine.config().selections(&host);
    let common = common_with_targets(engine, loc, invs);
    for (ds, policy_name, policy) in resolve_policies(inv, &selections, engine.policies())? {
        if !engine.config().policies[policy_name].prune {
            continue;
        }
        let owned: Vec<(usize, Option<String>)> = ds
            .snapshots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let o = policy.classify(s);
                o.is_owned().then(|| (i, o.label().map(str::to_owned)))
            })
            .collect();
        let cands: Vec<Candidate<'_>> = owned
            .iter()
            .map(|(i, label)| {
                let s = &ds.snapshots[*i];
                Candidate::new(&s.name, s.guid, s.createtxg, s.creation, label.as_deref())
            })
            .collect();
        let kept = evaluate(&policy.retention, &cands, now, policy.timezone);
        let newest = ds.snapshots.last().map(|s| s.guid);
        let shared = common.get(&ds.name);
        let mut destroy = Vec::new();
        for ((i, _), reasons) in owned.iter().zip(kept) {
            let s = &ds.snapshots[*i];
            let mut protections = Vec::new();
            if s.userrefs > 0 {
                protections.push(Protection::Held {
                    userrefs: s.userrefs,
                });
            }
            if !s.clones.is_empty() {
                protections.push(Protection::Cloned {
                    clones: s.clones.clone(),
                });
            }
            if s.is_pinned() && protections.is_empty() {
                protections.push(Protection::Held { userrefs: 0 });
            }
            if Some(s.guid) == newest {
                protections.push(Protection::Newest);
            }
            for (target, guid) in shared.into_iter().flatten() {
                if *guid == s.guid {
                    protections.push(Protection::CommonWithTarget {
                        target: target.clone(),
                    });
                }
            }
            let verdict = if !protections.is_empty() {
                Verdict::Protect {
                    protections,
                    reasons,
                }
            } else if reasons.is_empty() {
                destroy.push(SnapshotRef::new(s.name.clone(), s.guid));
                Verdict::Destroy
            } else {
                Verdict::Keep { reasons }
            };
            plan.decisions.push(Decision::new(
                loc.clone(),
                ds.snapshot_name(s),
                s.guid,
                s.creation,
                verdict,
            ));
        }
        if !destroy.is_empty() {
            plan.steps.push(Step::Destroy(DestroyStep::new(
                loc.clone(),
                ds.name.clone(),
                destroy,
                format!("no rule of policy {policy_name} keeps them"),
            )));
        }
    }
    Ok(plan)
}
