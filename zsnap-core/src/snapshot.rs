//! The snapshot planner: which snapshots to take now.
//!
//! [`plan_snapshots`] matches every dataset of an inventory with its policy (see
//! [`crate::policy`]), asks the policy's schedule which labels are due (see
//! [`crate::schedule`]) and plans one snapshot per due label, named by the policy's
//! naming scheme at `now` and marked with [`MANAGED_PROPERTY`]` = yes`. Filesystems and
//! volumes alike.
//!
//! # How the snapshots are grouped into steps
//! A [`SnapshotStep`] is one atomic `zfs snapshot`, and ZFS takes an atomic group only
//! within one pool and with at most one snapshot per dataset (`zfs_ioc_snapshot`
//! refuses anything else). So the planner makes **one step per pool and round**: round
//! 1 holds the first due label of every dataset, round 2 the second due label of those
//! datasets that have two, and so on (labels in schedule order). With one label due and
//! one pool, that is a single `zfs snapshot` for everything; every snapshot of a round
//! on a pool shares one transaction group, so datasets are consistent with each other.
//! All names carry the same timestamp, `now`.
//!
//! The planner never plans a name that already exists: if a snapshot of that exact
//! name exists without counting for the schedule (it lacks the managed property), it
//! leaves a [`Note`] instead. A snapshot whose name would be over ZFS's length limit
//! (a long dataset found under a recursive root) is one of the plan's
//! [`problems`](Plan::problems): the job fails, naming it, and snapshots the rest.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::inventory::{Dataset, Inventory, MANAGED_PROPERTY};
use crate::names::{DatasetName, SnapshotName};
use crate::naming::{Label, NamingError};
use crate::plan::{Location, Note, Plan, SnapshotStep, Step};
use crate::policy::{resolve_policies, DatasetSelection, Policy, SelectionError, MANAGED_VALUE};
use crate::schedule::due;

/// Why snapshots could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotPlanError {
    /// The selections do not fit the inventory or the policies.
    #[error("invalid dataset selection at location {location}")]
    Selection {
        /// Where.
        location: Location,
        /// What is wrong.
        #[source]
        source: SelectionError,
    },
    /// The name of a snapshot could not be made.
    #[error("cannot name the {label} snapshot of {dataset}")]
    Naming {
        /// The dataset.
        dataset: DatasetName,
        /// The label.
        label: Label,
        /// Why.
        #[source]
        source: NamingError,
    },
}

/// The snapshots due at `now` on one location, as [`SnapshotStep`]s (see the module
/// docs for how they are grouped).
///
/// # Errors
/// [`SnapshotPlanError::Selection`] when a selection's root is not in `inv`, names an
/// undefined policy, or two selections of one root disagree;
/// [`SnapshotPlanError::Naming`] when `now` cannot be written in a name (outside the
/// years 0000–9999).
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::policy::{DatasetSelection, Policy};
/// use zsnap_core::schedule::{LabelSchedule, Period, Schedule};
/// use zsnap_core::snapshot::plan_snapshots;
/// use zsnap_core::{Dataset, DatasetKind, Guid, Inventory, Location, Step};
///
/// let mut inv = Inventory::new();
/// for (i, name) in ["tank", "tank/home", "tank/vm"].into_iter().enumerate() {
///     let kind = if name == "tank/vm" { DatasetKind::Volume } else { DatasetKind::Filesystem };
///     inv.insert(Dataset::new(name.parse().unwrap(), kind, Guid(i as u64)));
/// }
/// let schedule = Schedule::new(vec![
///     LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly),
///     LabelSchedule::new("daily".parse().unwrap(), Period::Daily),
/// ])
/// .unwrap();
/// let policies = BTreeMap::from([(
///     "standard".to_owned(),
///     Policy::new(schedule, Default::default(), chrono_tz::Europe::Berlin),
/// )]);
/// let selections =
///     [DatasetSelection::new("tank".parse().unwrap(), "standard").with_recursive(true)];
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
///
/// let plan = plan_snapshots(&inv, &selections, &policies, &Location::local(), now).unwrap();
/// // Two labels due: one `zfs snapshot` per label, each across all three datasets.
/// assert_eq!(plan.steps.len(), 2);
/// let Step::Snapshot(first) = &plan.steps[0] else { unreachable!() };
/// assert_eq!(first.names[0].to_string(), "tank@zsnap_hourly_20261123T150000Z");
/// assert_eq!(first.names.len(), 3);
///
/// // Once they exist, nothing more is due in this hour.
/// let after = plan.simulate(&inv).unwrap();
/// let again = plan_snapshots(&after, &selections, &policies, &Location::local(), now).unwrap();
/// assert!(again.is_empty());
/// ```
pub fn plan_snapshots(
    inv: &Inventory,
    selections: &[DatasetSelection],
    policies: &BTreeMap<String, Policy>,
    location: &Location,
    now: DateTime<Utc>,
) -> Result<Plan, SnapshotPlanError> {
    plan(
        inv,
        selections,
        policies,
        location,
        now,
        "due",
        |policy, ds| {
            due(
                &policy.schedule,
                policy.timezone,
                policy.scheduled_snapshots(ds),
                now,
            )
        },
    )
}

/// A snapshot of `label` now, on every selected dataset, whatever the schedules say
/// (`zsnap snapshot --label L`). Grouped like [`plan_snapshots`]: one step per pool.
///
/// # Errors
/// Those of [`plan_snapshots`].
pub fn plan_snapshot_on_demand(
    inv: &Inventory,
    selections: &[DatasetSelection],
    policies: &BTreeMap<String, Policy>,
    location: &Location,
    label: &Label,
    now: DateTime<Utc>,
) -> Result<Plan, SnapshotPlanError> {
    plan(
        inv,
        selections,
        policies,
        location,
        now,
        "on demand",
        |_, _| vec![label.clone()],
    )
}

/// The names of one step and the labels they stand for.
type Group = (Vec<SnapshotName>, BTreeSet<Label>);

fn plan(
    inv: &Inventory,
    selections: &[DatasetSelection],
    policies: &BTreeMap<String, Policy>,
    location: &Location,
    now: DateTime<Utc>,
    why: &str,
    labels_for: impl Fn(&Policy, &Dataset) -> Vec<Label>,
) -> Result<Plan, SnapshotPlanError> {
    let selected = resolve_policies(inv, selections, policies).map_err(|source| {
        SnapshotPlanError::Selection {
            location: location.clone(),
            source,
        }
    })?;
    let mut plan = Plan::new(now);
    // (round, pool) → names and the labels they stand for.
    let mut groups: BTreeMap<(usize, &str), Group> = BTreeMap::new();
    for (ds, _, policy) in selected {
        let mut round = 0;
        for label in labels_for(policy, ds) {
            let short =
                policy
                    .naming
                    .name(&label, now)
                    .map_err(|source| SnapshotPlanError::Naming {
                        dataset: ds.name.clone(),
                        label: label.clone(),
                        source,
                    })?;
            if ds.snapshot(&short).is_some() {
                plan.notes.push(Note::new(
                    Some(ds.name.clone()),
                    format!(
                        "{}@{short} exists but does not count as a {label} snapshot (it lacks \
                         {MANAGED_PROPERTY}={MANAGED_VALUE}); not taking it again",
                        ds.name
                    ),
                ));
                continue;
            }
            let name = match SnapshotName::new(ds.name.clone(), short) {
                Ok(name) => name,
                Err(e) => {
                    // A person must hear of it: the dataset goes unprotected.
                    plan.problems.push(Note::new(
                        Some(ds.name.clone()),
                        format!(
                            "no {label} snapshot can be taken: {e}; shorten the dataset's \
                             name or the policy's snapshot names"
                        ),
                    ));
                    continue;
                }
            };
            let (names, labels) = groups.entry((round, ds.name.pool())).or_default();
            names.push(name);
            labels.insert(label);
            round += 1;
        }
    }
    let properties = BTreeMap::from([(MANAGED_PROPERTY.to_owned(), MANAGED_VALUE.to_owned())]);
    for (names, labels) in groups.into_values() {
        let labels: Vec<&str> = labels.iter().map(Label::as_str).collect();
        let reason = format!("{why}: {}", labels.join(", "));
        plan.steps.push(Step::Snapshot(SnapshotStep::new(
            location.clone(),
            names,
            properties.clone(),
            reason,
        )));
    }
    Ok(plan)
}
