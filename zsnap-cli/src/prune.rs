//! Prune planning for one location: the core planner ([`plan_prune`]) fed with the
//! location's targets from the config ([`TargetProtection`]: each target's base is
//! kept, and nothing replicating to a target that could not be listed is pruned).
//! Every rule, `prune = false` included, is core's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use zsnap_core::config::TargetAddress;
use zsnap_core::prune::{plan_prune, PruneRequest};
use zsnap_core::replicate::{DatasetMapping, TargetProtection, TargetSide};
use zsnap_core::{DatasetName, Inventory, Location, Plan};

use crate::backends::location;
use crate::engine::{Engine, ListFailure};

/// The targets of the datasets at `loc`: name, mapping and (when listed) inventory.
fn targets_of<'i>(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &'i BTreeMap<Location, Inventory>,
    failed: &[ListFailure],
) -> Vec<(String, DatasetMapping, Option<&'i Inventory>)> {
    let config = engine.config();
    let unlisted = engine.unlisted_targets(failed);
    let mut out = Vec::new();
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
        let inventory = if unlisted.contains_key(name) {
            None
        } else {
            // A target location absent from the listings has no datasets yet.
            Some(invs.get(&location(host)).unwrap_or(&EMPTY))
        };
        out.push((name.clone(), mapping, inventory));
    }
    out
}

static EMPTY: Inventory = Inventory::new();

/// Plans pruning at `loc`. Datasets under a root that could not be listed are left
/// alone (a note says why), and so are the sources of a target that could not be.
///
/// # Errors
/// None today; kept for the planning steps that may fail.
pub fn plan(
    engine: &Engine<'_>,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
    failed: &[ListFailure],
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let inv = invs.get(loc).unwrap_or(&EMPTY);
    let host = engine.host_of(loc);
    let mut selections = engine.config().selections(&host);
    let targets = targets_of(engine, loc, invs, failed);
    let sides: Vec<TargetSide<'_>> = targets
        .iter()
        .map(|(name, mapping, inventory)| TargetSide::new(name, mapping, *inventory))
        .collect();
    let protection = TargetProtection::of(inv, &sides);
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
        .with_protected(&protection.common)
        .with_unknown_base(&protection.unknown)
        .with_failed(&failed_here);
    Ok(plan_prune(&req, now))
}
