//! Policies (when to take snapshots, which to keep, how to name them, whose snapshots
//! to adopt) and the selection of the datasets each policy applies to.
//!
//! # Which policy applies to a dataset
//! A [`DatasetSelection`] names a root dataset, whether its descendants are included
//! (`recursive`, optionally `children_only`), descendants to leave out (`exclude`, each
//! with everything below it) and a policy by name. When several selections select one
//! dataset, **the one with the most specific root wins** — the deepest root, which is
//! the longest name since the roots all contain the dataset. A selection that excludes a
//! dataset does not select it, so a less specific selection may still do so:
//!
//! ```text
//! { root = "tank",    recursive = true,                         policy = "standard" }
//! { root = "tank/db", recursive = true, exclude = ["tank/db/tmp"], policy = "database" }
//!
//! tank, tank/home, tank/db/tmp  → standard
//! tank/db, tank/db/logs         → database
//! ```
//!
//! Two selections with the same root that both select a dataset must name the same
//! policy; otherwise [`resolve_policies`] refuses with
//! [`SelectionError::Ambiguous`].
//!
//! # Which snapshots a policy owns
//! [`Policy::classify`] sorts every snapshot into [`Ownership::Managed`] (zsnap took
//! it: the [`MANAGED_PROPERTY`](crate::inventory::MANAGED_PROPERTY) is `yes` and the name parses in the policy's naming
//! scheme), [`Ownership::Adopted`] (a recognizer in `adopt` reads its name) or
//! [`Ownership::Unmanaged`] — which no planner ever destroys. A snapshot that carries
//! the property but whose name no longer parses (say the prefix changed) is unmanaged
//! until the policy adopts it, e.g. with [`Recognizer::Zsnap`] and the old prefix.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::inventory::{Dataset, Inventory, Snapshot};
use crate::naming::{Label, NamingScheme, Recognizer};
use crate::retention::RetentionPolicy;
use crate::schedule::Schedule;
use crate::zfs_names::DatasetName;

/// The value of [`MANAGED_PROPERTY`](crate::inventory::MANAGED_PROPERTY) on the snapshots zsnap takes.
pub const MANAGED_VALUE: &str = "yes";

/// A named policy: schedule, retention, time zone, naming and adoption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// Which labels are taken how often.
    #[serde(default)]
    pub schedule: Schedule,
    /// Which snapshots are kept.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// The zone of calendar periods, calendar buckets and local-time names of adopted
    /// snapshots.
    #[serde(default = "utc_zone")]
    pub timezone: Tz,
    /// How zsnap names its snapshots.
    #[serde(default)]
    pub naming: NamingScheme,
    /// Other tools' snapshots this policy treats as its own (for schedules and
    /// retention), recognized by name.
    #[serde(default)]
    pub adopt: Vec<Recognizer>,
    /// Labels declared as taken on demand (`zsnap snapshot --label L`), each with the
    /// expiry a new snapshot of it gets (`None`: it never expires). Declaring a label
    /// lets keep rules name it; undeclared labels are on demand too (see
    /// [`Policy::is_on_demand`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on_demand: BTreeMap<Label, Option<Span>>,
    /// Labels that other schedules take under this policy without being in
    /// [`schedule`](Self::schedule): the label of the `[backups.*]` of its datasets.
    /// Snapshots of these labels are not on demand.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub also_scheduled: BTreeSet<Label>,
    /// Whether its datasets are pruned at all (`prune = false` only takes snapshots, or
    /// only receives them on a target): prune planning and target pruning plan no
    /// destroy for them.
    #[serde(default = "yes")]
    pub prune: bool,
}

fn utc_zone() -> Tz {
    chrono_tz::UTC
}

fn yes() -> bool {
    true
}

/// Whose a snapshot is, as one policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ownership {
    /// zsnap took it under this policy's naming scheme.
    Managed {
        /// The label in its name.
        label: Label,
        /// The time in its name.
        time: DateTime<Utc>,
    },
    /// Another tool took it and the policy adopts that tool's snapshots.
    Adopted {
        /// The label in its name, if it has one.
        label: Option<String>,
        /// The time in its name, resolved in the policy's zone.
        time: DateTime<Utc>,
        /// The tool whose naming matched ([`Recognizer::tool`]).
        tool: &'static str,
    },
    /// Neither: no planner destroys it.
    Unmanaged,
}

impl Ownership {
    /// The label, for managed and adopted snapshots that have one.
    pub fn label(&self) -> Option<&str> {
        match self {
            Ownership::Managed { label, .. } => Some(label.as_str()),
            Ownership::Adopted { label, .. } => label.as_deref(),
            Ownership::Unmanaged => None,
        }
    }

    /// The time its name gives, for managed and adopted snapshots.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Ownership::Managed { time, .. } | Ownership::Adopted { time, .. } => Some(*time),
            Ownership::Unmanaged => None,
        }
    }

    /// Whether the policy owns it (managed or adopted), so its retention rules apply.
    pub fn is_owned(&self) -> bool {
        !matches!(self, Ownership::Unmanaged)
    }
}

impl Policy {
    /// A policy with zsnap's default naming that adopts nothing.
    pub fn new(schedule: Schedule, retention: RetentionPolicy, timezone: Tz) -> Self {
        Policy {
            schedule,
            retention,
            timezone,
            naming: NamingScheme::default(),
            adopt: Vec::new(),
            on_demand: BTreeMap::new(),
            also_scheduled: BTreeSet::new(),
            prune: true,
        }
    }

    /// The same policy pruning its datasets (`true`, the default) or never (`false`).
    #[must_use]
    pub fn with_prune(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// The same policy declaring these on-demand labels, each with its default expiry.
    #[must_use]
    pub fn with_on_demand(mut self, on_demand: BTreeMap<Label, Option<Span>>) -> Self {
        self.on_demand = on_demand;
        self
    }

    /// The same policy with these labels counted as scheduled (taken by backups).
    #[must_use]
    pub fn with_also_scheduled(mut self, labels: BTreeSet<Label>) -> Self {
        self.also_scheduled = labels;
        self
    }

    /// Whether `label` is taken on a schedule under this policy: in its `snapshot`
    /// table or in [`also_scheduled`](Self::also_scheduled).
    pub fn is_scheduled(&self, label: &str) -> bool {
        self.schedule
            .labels()
            .iter()
            .any(|l| l.label().as_str() == label)
            || self.also_scheduled.iter().any(|l| l.as_str() == label)
    }

    /// Whether a zsnap snapshot of `label` was taken on demand, as this policy sees it:
    /// the label is not scheduled. A policy that takes no snapshots at all (no schedule,
    /// nothing declared on demand: one that only prunes, say a replication target's)
    /// cannot tell and judges every label by its rules.
    pub fn is_on_demand(&self, label: &str) -> bool {
        let takes_snapshots = !self.schedule.labels().is_empty()
            || !self.also_scheduled.is_empty()
            || !self.on_demand.is_empty();
        takes_snapshots && !self.is_scheduled(label)
    }

    /// The same policy with another naming scheme.
    #[must_use]
    pub fn with_naming(mut self, naming: NamingScheme) -> Self {
        self.naming = naming;
        self
    }

    /// The same policy adopting the snapshots these recognizers read.
    #[must_use]
    pub fn with_adopt(mut self, adopt: Vec<Recognizer>) -> Self {
        self.adopt = adopt;
        self
    }

    /// Whose `snap` is (see the module docs).
    ///
    /// # Example
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::naming::Recognizer;
    /// use zsnap_core::policy::{Ownership, Policy};
    /// use zsnap_core::{Guid, Snapshot};
    /// let policy = Policy::new(Default::default(), Default::default(), chrono_tz::Europe::Berlin)
    ///     .with_adopt(vec![Recognizer::sanoid()]);
    /// let at = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
    /// let snap = |name: &str, managed: Option<&str>| {
    ///     let mut s = Snapshot::new(name.parse().unwrap(), Guid(1), 1, at);
    ///     s.managed = managed.map(str::to_owned);
    ///     s
    /// };
    /// let own = policy.classify(&snap("zsnap_hourly_20261123T150000Z", Some("yes")));
    /// assert_eq!(own.label(), Some("hourly"));
    /// // The same name without the property is not zsnap's.
    /// assert_eq!(policy.classify(&snap("zsnap_hourly_20261123T150000Z", None)), Ownership::Unmanaged);
    /// // sanoid wrote 16:00 local time, which is 15:00 UTC in Berlin in November.
    /// let sanoid = policy.classify(&snap("autosnap_2026-11-23_16:00:00_daily", None));
    /// assert_eq!(sanoid.time(), Some(at));
    /// assert_eq!(policy.classify(&snap("before-upgrade", Some("yes"))), Ownership::Unmanaged);
    /// ```
    pub fn classify(&self, snap: &Snapshot) -> Ownership {
        let name = snap.name.as_str();
        if snap.managed.as_deref() == Some(MANAGED_VALUE) {
            if let Some((label, time)) = self.naming.parse_parts(name) {
                return Ownership::Managed { label, time };
            }
        }
        for r in &self.adopt {
            if let Some(rec) = r.recognize(name) {
                if let Some(time) = rec.time.resolve(self.timezone) {
                    return Ownership::Adopted {
                        label: rec.label,
                        time,
                        tool: r.tool(),
                    };
                }
            }
        }
        Ownership::Unmanaged
    }

    /// The (label, time) of every snapshot of `ds` that counts for this policy's
    /// schedule: managed and adopted snapshots whose name has a label.
    pub fn scheduled_snapshots<'a>(
        &'a self,
        ds: &'a Dataset,
    ) -> impl Iterator<Item = (String, DateTime<Utc>)> + 'a {
        ds.snapshots.iter().filter_map(|s| match self.classify(s) {
            Ownership::Managed { label, time } => Some((label.to_string(), time)),
            Ownership::Adopted {
                label: Some(label),
                time,
                ..
            } => Some((label, time)),
            _ => None,
        })
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A root dataset (maybe with its descendants) and the name of its policy.
///
/// In a config: `{ root = "tank/home", recursive = true, exclude = ["tank/home/tmp"],
/// policy = "standard" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DatasetSelection {
    /// The root dataset.
    pub root: DatasetName,
    /// Whether descendants of `root` are selected too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
    /// With `recursive`: the descendants but not `root` itself.
    #[serde(default, skip_serializing_if = "is_false")]
    pub children_only: bool,
    /// Descendants left out, each with everything below it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<DatasetName>,
    /// The name of the policy.
    pub policy: String,
}

impl DatasetSelection {
    /// `root` alone, under `policy`.
    pub fn new(root: DatasetName, policy: impl Into<String>) -> Self {
        DatasetSelection {
            root,
            recursive: false,
            children_only: false,
            exclude: Vec::new(),
            policy: policy.into(),
        }
    }

    /// The same selection, with or without the descendants of the root.
    #[must_use]
    pub fn with_recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// The same selection, with or without the root itself (when recursive).
    #[must_use]
    pub fn with_children_only(mut self, children_only: bool) -> Self {
        self.children_only = children_only;
        self
    }

    /// The same selection, leaving out these datasets and everything below them.
    #[must_use]
    pub fn with_exclude(mut self, exclude: Vec<DatasetName>) -> Self {
        self.exclude = exclude;
        self
    }

    /// Whether this selection selects `ds`.
    ///
    /// # Example
    /// ```
    /// use zsnap_core::policy::DatasetSelection;
    /// let sel = DatasetSelection::new("tank/a".parse().unwrap(), "p")
    ///     .with_recursive(true)
    ///     .with_exclude(vec!["tank/a/tmp".parse().unwrap()]);
    /// let yes = |s: &str| sel.selects(&s.parse().unwrap());
    /// assert!(yes("tank/a") && yes("tank/a/b") && yes("tank/a/tmpfiles"));
    /// assert!(!yes("tank/a/tmp") && !yes("tank/a/tmp/x") && !yes("tank/ab") && !yes("tank"));
    /// ```
    pub fn selects(&self, ds: &DatasetName) -> bool {
        if self.exclude.iter().any(|e| e.contains(ds)) {
            return false;
        }
        if ds == &self.root {
            return !(self.recursive && self.children_only);
        }
        self.recursive && self.root.is_ancestor_of(ds)
    }
}

/// Why the datasets of a location could not be matched with their policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// A selection's root is not in the inventory (not listed, or listing it failed).
    #[error("selection root {root} is not in the inventory")]
    RootMissing {
        /// The root.
        root: DatasetName,
    },
    /// A selection names a policy that is not defined.
    #[error("the selection of {root} names policy {policy:?}, which is not defined")]
    UnknownPolicy {
        /// The root of the selection.
        root: DatasetName,
        /// The policy name.
        policy: String,
    },
    /// Two selections of the same root select a dataset with different policies.
    #[error("dataset {dataset} is selected by two selections of {root} with different policies ({first:?} and {second:?})")]
    Ambiguous {
        /// The dataset.
        dataset: DatasetName,
        /// The root both selections share.
        root: DatasetName,
        /// The first selection's policy.
        first: String,
        /// The second selection's policy.
        second: String,
    },
}

/// One selected dataset with the selection that won it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selected<'a> {
    /// The dataset.
    pub dataset: &'a Dataset,
    /// The most specific selection that selects it.
    pub selection: &'a DatasetSelection,
}

/// Every dataset of `inv` that some selection selects, with the winning selection, in
/// dataset name order.
///
/// # Errors
/// [`SelectionError::RootMissing`] for a root not in `inv`,
/// [`SelectionError::Ambiguous`] for two selections of one root disagreeing on a
/// dataset's policy.
pub fn resolve_selections<'a>(
    inv: &'a Inventory,
    selections: &'a [DatasetSelection],
) -> Result<Vec<Selected<'a>>, SelectionError> {
    let mut best: BTreeMap<&'a DatasetName, Selected<'a>> = BTreeMap::new();
    for sel in selections {
        if inv.dataset(&sel.root).is_none() {
            return Err(SelectionError::RootMissing {
                root: sel.root.clone(),
            });
        }
        let candidates: Box<dyn Iterator<Item = &'a Dataset>> = if sel.recursive {
            Box::new(inv.subtree(&sel.root))
        } else {
            Box::new(inv.dataset(&sel.root).into_iter())
        };
        for ds in candidates.filter(|d| sel.selects(&d.name)) {
            match best.get(&ds.name) {
                Some(cur) if cur.selection.root.as_str().len() > sel.root.as_str().len() => {}
                Some(cur) if cur.selection.root == sel.root => {
                    if cur.selection.policy != sel.policy {
                        return Err(SelectionError::Ambiguous {
                            dataset: ds.name.clone(),
                            root: sel.root.clone(),
                            first: cur.selection.policy.clone(),
                            second: sel.policy.clone(),
                        });
                    }
                }
                _ => {
                    best.insert(
                        &ds.name,
                        Selected {
                            dataset: ds,
                            selection: sel,
                        },
                    );
                }
            }
        }
    }
    Ok(best.into_values().collect())
}

/// Every selected dataset of `inv` with the name and value of its policy, in dataset
/// name order: [`resolve_selections`] plus the policy lookup.
///
/// # Errors
/// Those of [`resolve_selections`], and [`SelectionError::UnknownPolicy`] for any
/// selection naming an undefined policy (even one that selects nothing).
pub fn resolve_policies<'a>(
    inv: &'a Inventory,
    selections: &'a [DatasetSelection],
    policies: &'a BTreeMap<String, Policy>,
) -> Result<Vec<(&'a Dataset, &'a str, &'a Policy)>, SelectionError> {
    if let Some(sel) = selections
        .iter()
        .find(|s| !policies.contains_key(&s.policy))
    {
        return Err(SelectionError::UnknownPolicy {
            root: sel.root.clone(),
            policy: sel.policy.clone(),
        });
    }
    Ok(resolve_selections(inv, selections)?
        .into_iter()
        .filter_map(|s| {
            let (name, policy) = policies.get_key_value(&s.selection.policy)?;
            Some((s.dataset, name.as_str(), policy))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{DatasetKind, Guid};

    fn inv(names: &[&str]) -> Inventory {
        let mut inv = Inventory::new();
        for (i, n) in names.iter().enumerate() {
            inv.insert(Dataset::new(
                n.parse().unwrap(),
                DatasetKind::Filesystem,
                Guid(i as u64),
            ));
        }
        inv
    }

    fn sel(root: &str, policy: &str) -> DatasetSelection {
        DatasetSelection::new(root.parse().unwrap(), policy)
    }

    fn resolved(inv: &Inventory, sels: &[DatasetSelection]) -> Vec<(String, String)> {
        resolve_selections(inv, sels)
            .unwrap()
            .into_iter()
            .map(|s| (s.dataset.name.to_string(), s.selection.policy.clone()))
            .collect()
    }

    #[test]
    fn most_specific_root_wins() {
        let inv = inv(&[
            "tank",
            "tank/home",
            "tank/db",
            "tank/db/logs",
            "tank/db/tmp",
            "tank/db/tmp/x",
            "tank/dbx",
            "other",
        ]);
        let sels = [
            sel("tank", "standard").with_recursive(true),
            sel("tank/db", "database")
                .with_recursive(true)
                .with_exclude(vec!["tank/db/tmp".parse().unwrap()]),
        ];
        let want = [
            ("tank", "standard"),
            ("tank/db", "database"),
            ("tank/db/logs", "database"),
            ("tank/db/tmp", "standard"),
            ("tank/db/tmp/x", "standard"),
            ("tank/dbx", "standard"),
            ("tank/home", "standard"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(resolved(&inv, &sels), want);
        // Order of the selections does not matter.
        let rev = [sels[1].clone(), sels[0].clone()];
        assert_eq!(resolved(&inv, &rev), want);
    }

    #[test]
    fn children_only_and_non_recursive() {
        let inv = inv(&["tank", "tank/a", "tank/a/b"]);
        let sels = [sel("tank", "kids")
            .with_recursive(true)
            .with_children_only(true)];
        assert_eq!(
            resolved(&inv, &sels),
            [
                ("tank/a".to_string(), "kids".to_string()),
                ("tank/a/b".to_string(), "kids".to_string())
            ]
        );
        let sels = [sel("tank/a", "just")];
        assert_eq!(
            resolved(&inv, &sels),
            [("tank/a".to_string(), "just".to_string())]
        );
        // children_only without recursive selects the root alone (it means nothing).
        let sels = [sel("tank/a", "just").with_children_only(true)];
        assert_eq!(resolved(&inv, &sels).len(), 1);
    }

    #[test]
    fn selection_errors() {
        let inv = inv(&["tank", "tank/a"]);
        let e = resolve_selections(&inv, &[sel("tank/missing", "p")]).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @"selection root tank/missing is not in the inventory");
        let sels = [sel("tank", "p").with_recursive(true), sel("tank", "q")];
        let e = resolve_selections(&inv, &sels).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"dataset tank is selected by two selections of tank with different policies ("p" and "q")"#);
        // Same root, same policy: fine.
        let sels = [sel("tank", "p").with_recursive(true), sel("tank", "p")];
        assert_eq!(resolved(&inv, &sels).len(), 2);
        let policies = BTreeMap::new();
        let e = resolve_policies(&inv, &[sel("tank", "nope")], &policies).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"the selection of tank names policy "nope", which is not defined"#);
    }

    #[test]
    fn policy_and_selection_serde() {
        let j = r#"{"schedule":[{"label":"hourly","every":"hourly"}],"timezone":"Europe/Berlin","adopt":[{"kind":"sanoid"}]}"#;
        let p: Policy = serde_json::from_str(j).unwrap();
        assert_eq!(p.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(p.naming, NamingScheme::default());
        assert_eq!(p.adopt, vec![Recognizer::sanoid()]);
        let back: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        let d: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(d.timezone, chrono_tz::UTC);
        assert!(serde_json::from_str::<Policy>(r#"{"tz":"UTC"}"#).is_err());
        let s: DatasetSelection =
            serde_json::from_str(r#"{"root":"tank/a","recursive":true,"policy":"p"}"#).unwrap();
        assert_eq!(s, sel("tank/a", "p").with_recursive(true));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"root":"tank/a","recursive":true,"policy":"p"}"#
        );
    }

    #[test]
    fn classify_prefers_own_names_then_adopters_in_order() {
        let at = DateTime::from_timestamp(1_795_446_000, 0).unwrap();
        let p = Policy::new(
            Schedule::default(),
            RetentionPolicy::default(),
            chrono_tz::UTC,
        )
        .with_naming(NamingScheme::new("auto").unwrap())
        .with_adopt(vec![
            Recognizer::Zsnap {
                prefix: "zsnap".into(),
            },
            Recognizer::zrepl(),
        ]);
        let snap = |name: &str, managed: Option<&str>| {
            let mut s = Snapshot::new(name.parse().unwrap(), Guid(1), 1, at);
            s.managed = managed.map(str::to_owned);
            s
        };
        assert!(matches!(
            p.classify(&snap("auto_daily_20261123T150000Z", Some("yes"))),
            Ownership::Managed { .. }
        ));
        // The old prefix, still marked managed: adopted through the Zsnap recognizer.
        let old = p.classify(&snap("zsnap_daily_20261123T150000Z", Some("yes")));
        assert_eq!(
            old,
            Ownership::Adopted {
                label: Some("daily".into()),
                time: at,
                tool: "zsnap"
            }
        );
        let z = p.classify(&snap("zrepl_20261123_150000_000", None));
        assert_eq!(z.label(), None);
        assert_eq!(z.time(), Some(at));
        assert!(z.is_owned());
        assert!(!p
            .classify(&snap("auto_daily_20261123T150000Z", Some("no")))
            .is_owned());
        let mut ds = Dataset::new("tank".parse().unwrap(), DatasetKind::Volume, Guid(9));
        ds.insert_snapshot(snap("auto_daily_20261123T150000Z", Some("yes")));
        let mut z = snap("zrepl_20261123_150000_000", None);
        z.createtxg = 2;
        z.guid = Guid(2);
        ds.insert_snapshot(z);
        let counted: Vec<_> = p.scheduled_snapshots(&ds).collect();
        assert_eq!(counted, vec![("daily".to_string(), at)]);
    }
}
