//! What zsnap predicted against what ZFS did.
//!
//! A prediction is the listing taken before a run with every phase of the dry-run plan
//! (`zsnap plan --json`) applied by [`Plan::simulate_at`]. It must equal the listing
//! taken after the real run in everything an inventory records, except what nobody can
//! predict: the guids ZFS gives new snapshots. Those are compared up to renaming: every
//! guid the simulation invented must stand for one real new guid, the same one wherever
//! it appears (a received snapshot shares its guid with its source), and guids that
//! existed before the run must be unchanged.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use zsnap_core::{Guid, Inventory, Location, Plan};

/// The plans of every phase of a `--json` outcome (`zsnap plan|run … --json`), in order.
pub fn phase_plans(outcome: &Value) -> Vec<Plan> {
    outcome["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no phases in zsnap's JSON output: {outcome}"))
        .iter()
        .map(|p| {
            serde_json::from_value(p["plan"].clone())
                .unwrap_or_else(|e| panic!("a phase's plan does not deserialize: {e}\n{p}"))
        })
        .collect()
}

/// The `reason` of every step of every phase: what a dry run and the real run must
/// agree on.
pub fn step_reasons(outcome: &Value) -> Vec<Vec<String>> {
    phase_plans(outcome)
        .iter()
        .map(|p| p.steps.iter().map(|s| s.reason().to_owned()).collect())
        .collect()
}

/// `before` with every phase's plan simulated in order (each after `fix`).
pub fn predict(before: &Inventory, outcome: &Value, fix: &dyn Fn(&mut Plan)) -> Inventory {
    let mut invs = BTreeMap::from([(Location::local(), before.clone())]);
    for (i, mut plan) in phase_plans(outcome).into_iter().enumerate() {
        fix(&mut plan);
        invs = plan.simulate_at(&invs).unwrap_or_else(|e| {
            panic!(
                "phase {} of the dry run does not simulate: {e}\n{}",
                i + 1,
                outcome["phases"][i]
            )
        });
    }
    invs.remove(&Location::local())
        .expect("simulate_at returns every location it was given")
}

/// Every guid of a snapshot or bookmark in `inv`.
pub fn guids(inv: &Inventory) -> HashSet<Guid> {
    inv.datasets
        .values()
        .flat_map(|d| {
            d.snapshots
                .iter()
                .map(|s| s.guid)
                .chain(d.bookmarks.iter().map(|b| b.guid))
        })
        .collect()
}

/// One line per dataset, snapshot and bookmark with everything compared. Guids in
/// `known` are written as they are; any other guid as `new#k`, numbered in order of
/// first appearance (datasets by name, snapshots by createtxg), so two inventories
/// render alike exactly when a one-to-one renaming of their new guids makes them equal.
pub fn render(inv: &Inventory, known: &HashSet<Guid>) -> Vec<String> {
    let mut fresh: HashMap<Guid, usize> = HashMap::new();
    let mut label = |g: Guid| {
        if known.contains(&g) {
            g.to_string()
        } else {
            let n = fresh.len();
            format!("new#{}", *fresh.entry(g).or_insert(n))
        }
    };
    let mut out = Vec::new();
    for d in inv.datasets.values() {
        out.push(format!(
            "{} {:?} encrypted={} resume_token={}",
            d.name,
            d.kind,
            d.props.is_encrypted(),
            d.props.receive_resume_token.is_some()
        ));
        for s in &d.snapshots {
            out.push(format!(
                "  @{} guid={} userrefs={} clones={:?} hidden_clones={:?} managed={:?}",
                s.name,
                label(s.guid),
                s.userrefs,
                s.clones.iter().map(ToString::to_string).collect::<Vec<_>>(),
                s.hidden_clones,
                s.managed
            ));
        }
        for b in &d.bookmarks {
            out.push(format!("  #{} guid={}", b.name, label(b.guid)));
        }
    }
    out
}

/// Panics with both renderings when `actual` is not `predicted` up to new guids.
pub fn assert_same(what: &str, before: &Inventory, predicted: &Inventory, actual: &Inventory) {
    let known = guids(before);
    let p = render(predicted, &known);
    let a = render(actual, &known);
    assert!(
        p == a,
        "{what}: zfs list after the run differs from what zsnap's plan predicted\n\
         --- predicted\n{}\n--- actual\n{}",
        p.join("\n"),
        a.join("\n")
    );
}

/// The snapshot names of one dataset of `inv`, oldest first.
pub fn names(inv: &Inventory, dataset: &str) -> Vec<String> {
    let ds = dataset.parse().expect("a valid dataset name");
    inv.dataset(&ds)
        .unwrap_or_else(|| panic!("{dataset} is not in the listing"))
        .snapshots
        .iter()
        .map(|s| s.name.to_string())
        .collect()
}

/// Name → guid of the snapshots of one dataset of `inv`.
pub fn guid_map(inv: &Inventory, dataset: &str) -> BTreeMap<String, Guid> {
    let ds = dataset.parse().expect("a valid dataset name");
    inv.dataset(&ds)
        .unwrap_or_else(|| panic!("{dataset} is not in the listing"))
        .snapshots
        .iter()
        .map(|s| (s.name.to_string(), s.guid))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zsnap_core::parse_list;

    fn inv(rows: &[(&str, &str, u64)]) -> Inventory {
        let mut text = String::new();
        for (name, kind, guid) in rows {
            text.push_str(&format!(
                "{name}\t{kind}\t{guid}\t{guid}\t1700000000\t0\t-\t-\toff\t-\t-\t-\t0\t-\t-\n"
            ));
        }
        parse_list(&text).expect("a valid listing")
    }

    #[test]
    fn new_guids_compare_up_to_a_consistent_renaming() {
        let before = inv(&[("p/a", "filesystem", 1), ("p/a@old", "snapshot", 10)]);
        let predicted = inv(&[
            ("p/a", "filesystem", 1),
            ("p/a@old", "snapshot", 10),
            ("p/a@new", "snapshot", 500),
            ("p/b", "filesystem", 2),
            ("p/b@new", "snapshot", 500),
        ]);
        let actual = inv(&[
            ("p/a", "filesystem", 1),
            ("p/a@old", "snapshot", 10),
            ("p/a@new", "snapshot", 77),
            ("p/b", "filesystem", 3),
            ("p/b@new", "snapshot", 77),
        ]);
        assert_same("renamed", &before, &predicted, &actual);

        // The same invented guid standing for two different real ones is a difference.
        let split = inv(&[
            ("p/a", "filesystem", 1),
            ("p/a@old", "snapshot", 10),
            ("p/a@new", "snapshot", 77),
            ("p/b", "filesystem", 3),
            ("p/b@new", "snapshot", 78),
        ]);
        let known = guids(&before);
        assert_ne!(render(&predicted, &known), render(&split, &known));
        // A known guid must stay itself.
        let changed = inv(&[
            ("p/a", "filesystem", 1),
            ("p/a@old", "snapshot", 11),
            ("p/a@new", "snapshot", 77),
            ("p/b", "filesystem", 3),
            ("p/b@new", "snapshot", 77),
        ]);
        assert_ne!(render(&predicted, &known), render(&changed, &known));
    }
}
