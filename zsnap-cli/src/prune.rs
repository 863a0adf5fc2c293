//! Prune planning for one location: the core planner ([`plan_prune`]) fed with what
//! only the CLI knows — which snapshot each source shares with each of its targets (so
//! the newest common one is never destroyed) and which policies say `prune = false`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use zsnap_core::config::TargetAddress;
use zsnap_core::policy::resolve_selections;
use zsnap_core::prune::{plan_prune, PruneRequest};
use zsnap_core::{DatasetName, Guid, Inventory, Location, Plan, Step};

use crate::backends::location;
use crate::engine::{Engine, ListFailure};

/// For each source dataset at `loc`: the newest snapshot it shares (by guid) with each
/// of its targets.
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

/// The source datasets at `loc` that replicate to a target whose listing failed, with
/// that target and its error. Nothing says which of their snapshots the target still
/// shares (the base of its next incremental), so none of them is destroyed: keeping a
/// few snapshots one run longer is cheap, losing the common base forces a full send.
fn replicating_to_unlisted(
    engine: &Engine<'_>,
    loc: &Location,
    inv: &Inventory,
    failed: &[ListFailure],
) -> BTreeMap<DatasetName, (String, String)> {
    let config = engine.config();
    let unlisted = engine.unlisted_targets(failed);
    let mut out = BTreeMap::new();
    for (name, error) in &unlisted {
        let t = &config.targets[name];
        let Some(entry) = config.datasets.iter().find(|e| e.root == t.source) else {
            continue;
        };
        if &location(&entry.host) != loc {
            continue;
        }
        let Some(mapping) = t.mapping(entry) else {
            continue;
        };
        for ds in inv.datasets.values() {
            if matches!(mapping.target_of(&ds.name), Ok(Some(_))) {
                out.entry(ds.name.clone())
                    .or_insert_with(|| (name.clone(), error.clone()));
            }
        }
    }
    out
}

/// Plans pruning at `loc`. Datasets under a root that could not be listed are left
/// alone (a note says why), and so are the sources of a target that could not be.
///
/// # Errors
/// When the selections do not fit the inventory (policies with `prune = false` are
/// looked up through them).
pub fn plan(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
    failed: &[ListFailure],
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let empty = Inventory::new();
    let inv = invs.get(loc).unwrap_or(&empty);
    let host = engine.host_of(loc);
    let mut selections = engine.config().selections(&host);
    let protected = common_with_targets(engine, loc, invs);
    let failed_here: BTreeSet<DatasetName> = failed
        .iter()
        .filter(|f| &f.location == loc)
        .map(|f| f.root.clone())
        .collect();
    // A selection under a failed root has no datasets in the inventory: the planner
    // notes it through `failed_here` instead of refusing a missing root.
    selections.retain(|s| {
        !failed_here
            .iter()
            .any(|f| f.contains(&s.root) || s.root.contains(f))
            || inv.dataset(&s.root).is_some()
    });
    let req = PruneRequest::new(loc.clone(), inv, &selections, engine.policies())
        .with_protected(&protected)
        .with_failed(&failed_here);
    let mut plan = plan_prune(&req, now);
    let unknown_base = replicating_to_unlisted(engine, loc, inv, failed);
    if !unknown_base.is_empty() {
        let mut noted = BTreeSet::new();
        plan.steps.retain(|st| match st {
            Step::Destroy(d) => !unknown_base.contains_key(&d.dataset),
            _ => true,
        });
        plan.decisions.retain(|d| {
            let ds = d.snapshot.dataset();
            let Some((target, _)) = unknown_base.get(ds) else {
                return true;
            };
            if noted.insert(ds.clone()) {
                plan.notes.push(zsnap_core::Note::new(
                    Some(ds.clone()),
                    format!(
                        "not pruned: target {target} could not be listed, so the snapshot it shares with {ds} is unknown"
                    ),
                ));
            }
            false
        });
    }
    let keep_all: BTreeSet<DatasetName> = resolve_selections(inv, &selections)?
        .into_iter()
        .filter(|s| {
            engine
                .config()
                .policy(&s.selection.policy)
                .is_some_and(|p| !p.prune)
        })
        .map(|s| s.dataset.name.clone())
        .collect();
    if !keep_all.is_empty() {
        plan.steps
            .retain(|st| !matches!(st, Step::Destroy(d) if keep_all.contains(&d.dataset)));
        plan.decisions
            .retain(|d| !keep_all.contains(d.snapshot.dataset()));
    }
    Ok(plan)
}
