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
use crate::engine::Engine;

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

/// Plans pruning at `loc`.
///
/// # Errors
/// When the selections do not fit the inventory (policies with `prune = false` are
/// looked up through them).
pub fn plan(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let empty = Inventory::new();
    let inv = invs.get(loc).unwrap_or(&empty);
    let host = engine.host_of(loc);
    let selections = engine.config().selections(&host);
    let protected = common_with_targets(engine, loc, invs);
    let req = PruneRequest::new(loc.clone(), inv, &selections, engine.policies())
        .with_protected(&protected);
    let mut plan = plan_prune(&req, now);
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
