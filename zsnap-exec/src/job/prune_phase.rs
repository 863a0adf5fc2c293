//! Prune planning for one location: the core planner ([`plan_prune`]) fed with the
//! location's targets from the config ([`TargetProtection`]: each target's base is
//! kept, and nothing replicating to a target that could not be listed is pruned).
//! Every rule, `prune = false` included, is core's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use zsnap_core::config::{Config, Host, TargetAddress};
use zsnap_core::policy::Policy;
use zsnap_core::prune::{plan_prune, PruneRequest};
use zsnap_core::replicate::{DatasetMapping, TargetProtection, TargetSide};
use zsnap_core::{DatasetName, Inventory, Location, Plan};

use super::listing::ListFailure;
use crate::failure::error_chain;

static EMPTY: Inventory = Inventory::new();

/// The dataset targets of `config` whose root could not be listed, with why: nothing
/// is known of what they share with their source, so the source must not be pruned.
pub fn unlisted_targets(config: &Config, failed: &[ListFailure]) -> BTreeMap<String, String> {
    config
        .targets
        .iter()
        .filter_map(|(name, t)| {
            let TargetAddress::Dataset { host, dataset } = &t.to else {
                return None;
            };
            let loc = host.location();
            failed
                .iter()
                .find(|f| {
                    f.location == loc && (f.root.contains(dataset) || dataset.contains(&f.root))
                })
                .map(|f| (name.clone(), error_chain(f)))
        })
        .collect()
}

/// The targets of the datasets at `loc`: name, mapping and (when listed) inventory.
fn targets_of<'i>(
    config: &Config,
    loc: &Location,
    invs: &'i BTreeMap<Location, Inventory>,
    failed: &[ListFailure],
) -> Vec<(String, DatasetMapping, Option<&'i Inventory>)> {
    let unlisted = unlisted_targets(config, failed);
    let mut out = Vec::new();
    for (name, t) in &config.targets {
        let TargetAddress::Dataset { host, .. } = &t.to else {
            continue;
        };
        let Some(entry) = config.datasets.iter().find(|e| e.root == t.source) else {
            continue;
        };
        if &entry.host.location() != loc {
            continue;
        }
        let Some(mapping) = t.mapping(entry) else {
            continue;
        };
        let inventory = if unlisted.contains_key(name) {
            None
        } else {
            // A target location absent from the listings has no datasets yet.
            Some(invs.get(&host.location()).unwrap_or(&EMPTY))
        };
        out.push((name.clone(), mapping, inventory));
    }
    out
}

/// Plans pruning at `loc` (the location of `host`) with the config's converted
/// `policies`. Datasets under a root that could not be listed are left alone (a note
/// says why), and so are the sources of a target that could not be.
pub fn plan(
    config: &Config,
    policies: &BTreeMap<String, Policy>,
    host: &Host,
    loc: &Location,
    invs: &BTreeMap<Location, Inventory>,
    failed: &[ListFailure],
    now: DateTime<Utc>,
) -> Plan {
    let inv = invs.get(loc).unwrap_or(&EMPTY);
    let mut selections = config.selections(host);
    let targets = targets_of(config, loc, invs, failed);
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
    let req = PruneRequest::new(loc.clone(), inv, &selections, policies)
        .with_protected(&protection.common)
        .with_unknown_base(&protection.unknown)
        .with_received(&protection.received)
        .with_failed(&failed_here);
    plan_prune(&req, now)
}
