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
//!
//! # Expiries
//! A snapshot taken on demand may be given an expiry ([`plan_snapshot_on_demand`] with
//! `expire_in`): the step sets [`EXPIRES_PROPERTY`] to `now` plus that span, a UTC
//! time in RFC 3339 form, and the prune planner keeps the snapshot until then and
//! destroys it after (unless a rule naming its label keeps it; see [`crate::prune`]).
//! That holds only where the dataset's policy sees the label as taken on demand
//! ([`Policy::is_on_demand`]): the keep rules prune a scheduled label's snapshots, and
//! an expiry would only delay that, never destroy one. So an expiry for a label some
//! selected dataset's policy schedules is refused ([`check_expiry_label`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::duration::Span;
use crate::inventory::{utc_text, Dataset, Inventory, EXPIRES_PROPERTY, MANAGED_PROPERTY};
use crate::naming::{Label, NamingError};
use crate::plan::{Location, Note, Plan, SnapshotStep, Step};
use crate::policy::{resolve_policies, DatasetSelection, Policy, SelectionError, MANAGED_VALUE};
use crate::schedule::due;
use crate::zfs_names::{DatasetName, SnapshotName};

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
    /// An expiry was asked for a label that the dataset's policy does not see as taken
    /// on demand (see the module docs, "Expiries").
    #[error(
        "cannot give the {label} snapshot of {dataset} an expiry: policy {policy:?} {}, so its keep rules decide when those snapshots go and an expiry could only delay that; take it without an expiry, or with a label the policy does not schedule",
        if *scheduled { format!("schedules label {label}") } else { "takes no snapshots of its own and judges every label by its keep rules".to_owned() }
    )]
    ExpiryNotOnDemand {
        /// The dataset (a selection's root, or a selected dataset).
        dataset: DatasetName,
        /// The label.
        label: Label,
        /// The dataset's policy.
        policy: String,
        /// Whether the policy schedules the label (otherwise it takes no snapshots
        /// at all, and so cannot tell an on-demand label from another).
        scheduled: bool,
    },
    /// An expiry of zero, or one that ends past the year 9999 (which RFC 3339 cannot
    /// write).
    #[error("invalid expiry {expire_in} from {}: {problem}", utc_text(*now))]
    BadExpiry {
        /// The span asked for.
        expire_in: Span,
        /// When the snapshot is taken.
        now: DateTime<Utc>,
        /// What is wrong.
        problem: &'static str,
    },
}

/// When a snapshot taken at `now` with `expire_in` expires: `now + expire_in`, to the
/// second.
///
/// # Errors
/// [`SnapshotPlanError::BadExpiry`] for a zero span (the next prune would destroy the
/// snapshot at once) or an end past 9999-12-31T23:59:59Z.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::snapshot::expiry_time;
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
/// let t = expiry_time(now, "16d".parse().unwrap()).unwrap();
/// assert_eq!(t, Utc.with_ymd_and_hms(2026, 12, 9, 10, 0, 0).unwrap());
/// assert!(expiry_time(now, "0s".parse().unwrap()).is_err());
/// ```
pub fn expiry_time(
    now: DateTime<Utc>,
    expire_in: Span,
) -> Result<DateTime<Utc>, SnapshotPlanError> {
    let bad = |problem| SnapshotPlanError::BadExpiry {
        expire_in,
        now,
        problem,
    };
    if expire_in.seconds() == 0 {
        return Err(bad(
            "an expiry of 0 would let the next prune destroy the snapshot at once",
        ));
    }
    let last = DateTime::<Utc>::from_timestamp(253_402_300_799, 0)
        .expect("9999-12-31T23:59:59Z is a valid time");
    let secs = i64::try_from(expire_in.seconds()).ok();
    let end = secs
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .filter(|t| *t <= last)
        .ok_or_else(|| bad("it ends past the year 9999"))?;
    // Whole seconds, as the property is written.
    Ok(end - chrono::TimeDelta::nanoseconds(i64::from(end.timestamp_subsec_nanos())))
}

/// Whether snapshots of `label` may be taken with an expiry on `dataset`, whose policy
/// is `policy_name`: only when the policy sees the label as taken on demand (see the
/// module docs, "Expiries").
///
/// # Errors
/// [`SnapshotPlanError::ExpiryNotOnDemand`] otherwise.
pub fn check_expiry_label(
    dataset: &DatasetName,
    label: &Label,
    policy_name: &str,
    policy: &Policy,
) -> Result<(), SnapshotPlanError> {
    if policy.is_on_demand(label.as_str()) {
        return Ok(());
    }
    Err(SnapshotPlanError::ExpiryNotOnDemand {
        dataset: dataset.clone(),
        label: label.clone(),
        policy: policy_name.to_owned(),
        scheduled: policy.is_scheduled(label.as_str()),
    })
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
/// With `expire_in`, every snapshot gets [`EXPIRES_PROPERTY`] = [`expiry_time`]`(now,
/// expire_in)`, and the steps' reason says until when (see the module docs,
/// "Expiries").
///
/// # Errors
/// Those of [`plan_snapshots`]; with `expire_in`, those of [`expiry_time`], and
/// [`SnapshotPlanError::ExpiryNotOnDemand`] when the policy of a selected dataset
/// schedules `label` (nothing is planned then).
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::policy::{DatasetSelection, Policy};
/// use zsnap_core::schedule::{LabelSchedule, Period, Schedule};
/// use zsnap_core::snapshot::plan_snapshot_on_demand;
/// use zsnap_core::{Dataset, DatasetKind, Guid, Inventory, Location, Step, EXPIRES_PROPERTY};
///
/// let mut inv = Inventory::new();
/// inv.insert(Dataset::new("tank".parse().unwrap(), DatasetKind::Filesystem, Guid(1)));
/// let schedule =
///     Schedule::new(vec![LabelSchedule::new("hourly".parse().unwrap(), Period::Hourly)]).unwrap();
/// let policies = BTreeMap::from([(
///     "p".to_owned(),
///     Policy::new(schedule, Default::default(), chrono_tz::UTC),
/// )]);
/// let selections = [DatasetSelection::new("tank".parse().unwrap(), "p")];
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
/// let label = "pre-upgrade".parse().unwrap();
/// let plan = plan_snapshot_on_demand(
///     &inv, &selections, &policies, &Location::local(), &label, Some("16d".parse().unwrap()), now,
/// )
/// .unwrap();
/// let Step::Snapshot(s) = &plan.steps[0] else { unreachable!() };
/// assert_eq!(s.properties[EXPIRES_PROPERTY], "2026-12-09T10:00:00Z");
/// assert_eq!(s.reason, "on demand: pre-upgrade, kept until 2026-12-09T10:00:00Z");
///
/// // `hourly` is scheduled: its snapshots are the keep rules' to prune.
/// let hourly = "hourly".parse().unwrap();
/// let e = plan_snapshot_on_demand(
///     &inv, &selections, &policies, &Location::local(), &hourly, Some("2h".parse().unwrap()), now,
/// )
/// .unwrap_err();
/// assert!(e.to_string().contains(r#"policy "p" schedules label hourly"#));
/// ```
pub fn plan_snapshot_on_demand(
    inv: &Inventory,
    selections: &[DatasetSelection],
    policies: &BTreeMap<String, Policy>,
    location: &Location,
    label: &Label,
    expire_in: Option<Span>,
    now: DateTime<Utc>,
) -> Result<Plan, SnapshotPlanError> {
    let mut plan = plan(
        inv,
        selections,
        policies,
        location,
        now,
        "on demand",
        |_, _| vec![label.clone()],
    )?;
    let Some(span) = expire_in else {
        return Ok(plan);
    };
    let until = utc_text(expiry_time(now, span)?);
    let selected = resolve_policies(inv, selections, policies).map_err(|source| {
        SnapshotPlanError::Selection {
            location: location.clone(),
            source,
        }
    })?;
    for (ds, policy_name, policy) in selected {
        check_expiry_label(&ds.name, label, policy_name, policy)?;
    }
    for step in &mut plan.steps {
        if let Step::Snapshot(s) = step {
            s.properties
                .insert(EXPIRES_PROPERTY.to_owned(), until.clone());
            s.reason = format!("{}, kept until {until}", s.reason);
        }
    }
    Ok(plan)
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
