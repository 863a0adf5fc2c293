//! The prune planner: which snapshots to destroy, by each dataset's retention policy and
//! the safety rules that hold for every policy.
//!
//! For each dataset a selection selects (the most specific selection wins, see
//! [`crate::policy`]), [`plan_prune`]:
//! 1. classifies every snapshot with [`Policy::classify`]: managed (zsnap took it),
//!    adopted (a recognizer of the policy reads its name) or unmanaged;
//! 2. sets aside the snapshots the rules do not judge, and keeps them with their
//!    reason:
//!    - **on-demand snapshots**: zsnap's snapshots whose label the policy does not
//!      schedule ([`Policy::is_on_demand`]; `zsnap snapshot --label pre-upgrade`, or any
//!      other front-end). Label-agnostic rules (`last N`, calendar buckets, the grid,
//!      `newer than`, regexes) never destroy them; a rule naming their label
//!      ([`RetentionPolicy::names_label`](crate::retention::RetentionPolicy::names_label):
//!      per-label counts, sanoid's types, `last N (label L)`) judges them like any
//!      other. Otherwise one is kept until its expiry ([`Snapshot::expiry`]) has
//!      passed, and then destroyed in a step of its own (`expired at …`); without an
//!      expiry it is kept until destroyed by hand;
//!    - with sanoid's rule, sanoid snapshots of a type sanoid has no settings for
//!      (`autosnap_…_bogusly`): sanoid 2.x prunes only the types of its config, so
//!      they are kept;
//!
//!    and evaluates the policy's retention on the other managed and adopted ones
//!    (oldest first, by createtxg) at `now` in the policy's time zone. A snapshot with
//!    an expiry still ahead is kept at least until then, whatever its label;
//! 3. applies the **safety rules**, which no policy can switch off. It never destroys:
//!    - a snapshot with user holds (`userrefs > 0`),
//!    - a snapshot with clones, visible or hidden (an interrupted receive's `%recv`),
//!    - a snapshot zsnap does not manage and the policy does not adopt,
//!    - the newest snapshot of the dataset (the highest createtxg, managed or not),
//!    - the newest snapshot the dataset has in common with each target (the guids in
//!      [`PruneRequest::protected`]),
//!    - anything in a dataset whose listing failed, or one below it
//!      ([`PruneRequest::failed`]), or a dataset absent from the inventory — those get
//!      a [`Note`] instead,
//!    - anything in a dataset that replicates to a target whose listing failed
//!      ([`PruneRequest::unknown_base`]: the base of its next incremental is unknown),
//!    - anything in a dataset whose policy says `prune = false` ([`Policy::prune`]).
//!
//!    What a location's targets need is computed from their listings by
//!    [`TargetProtection::of`](crate::replicate::TargetProtection::of), which also
//!    says what each target has received ([`PruneRequest::received`]) for the keep
//!    rule `not replicated to T`.
//!
//! Every snapshot of a selected dataset gets one [`Decision`]: `Keep` with the rules that
//! keep it, `Protect` with the safety rules (and any rules that keep it too), or
//! `Destroy`. The destroyed ones of a dataset go into [`Step::Destroy`] batches, oldest
//! first, each `DATASET@a,b,c` argument at most [`PruneRequest::destroy_arg_budget`]
//! bytes (a batch always holds at least one snapshot, so a budget under 256 bytes, the
//! longest possible name, may be exceeded by a single name).
//!
//! # Convergence
//! Planning again on the result of applying the plan ([`Plan::simulate`]) at the same
//! `now` destroys nothing more for every rule whose verdict on the snapshots it keeps
//! does not depend on the snapshots it drops: `last`, per-label counts, calendar buckets
//! (each kept snapshot is the newest of a bucket that still has it, and the newest
//! buckets stay the same), sanoid counts, `newer than`, `regex`, `not regex`, `not
//! replicated to` (by createtxg, given the same [`PruneRequest::received`]) and
//! `keep_oldest`, and each of them behind a regex filter. The zrepl grid converges too
//! as long as the newest candidate it sees (through its filter) survives: it is the
//! grid's anchor, and when it is destroyed (it can be, when it is not the dataset's
//! newest snapshot and no rule keeps it) the grid moves and a second run may destroy
//! more.
//! Safety rules give the same answer in both runs.
//!
//! # Cost
//! One pass over the selected datasets, O(n log n) in the snapshots of each (the
//! retention evaluation), no copy of the inventory.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::inventory::{utc_text, Dataset, Guid, Inventory, Snapshot, EXPIRES_PROPERTY};
use crate::plan::{
    Decision, DestroyStep, KeepReason, KeptUntil, Location, Note, Plan, Protection, SnapshotRef,
    Step, Verdict,
};
use crate::policy::{DatasetSelection, Ownership, Policy};
use crate::retention::{evaluate_with, Candidate, Replicated};
use crate::zfs_names::DatasetName;

/// The default byte budget of one `DATASET@a,b,c` argument: far under Linux's 128 KiB
/// limit of one argument (`MAX_ARG_STRLEN`) and the platforms' `ARG_MAX`, with room for
/// `ssh` and the remote shell's quoting.
pub const DEFAULT_DESTROY_ARG_BUDGET: usize = 100_000;

static NO_PROTECTED: BTreeMap<DatasetName, Vec<(String, Guid)>> = BTreeMap::new();
static NO_FAILED: BTreeSet<DatasetName> = BTreeSet::new();
static NO_UNKNOWN: BTreeMap<DatasetName, String> = BTreeMap::new();
static NO_RECEIVED: BTreeMap<DatasetName, Vec<(String, Option<u64>)>> = BTreeMap::new();

/// What [`plan_prune`] needs to know about one location.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::policy::{DatasetSelection, Policy};
/// use zsnap_core::prune::{plan_prune, PruneRequest};
/// use zsnap_core::retention::{KeepRule, RetentionPolicy};
/// use zsnap_core::{Dataset, DatasetKind, Guid, Inventory, Location, Snapshot, Step};
///
/// // Five hourly snapshots taken by zsnap; the policy keeps the newest two.
/// let mut ds = Dataset::new("tank/a".parse().unwrap(), DatasetKind::Filesystem, Guid(1));
/// for h in 0..5u32 {
///     let at = Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap();
///     let name = format!("zsnap_hourly_20261123T{h:02}0000Z").parse().unwrap();
///     let mut s = Snapshot::new(name, Guid(10 + u64::from(h)), 100 + u64::from(h), at);
///     s.managed = Some("yes".to_owned());
///     ds.insert_snapshot(s);
/// }
/// let mut inv = Inventory::new();
/// inv.insert(ds);
/// let retention = RetentionPolicy::new(vec![KeepRule::last(2)]);
/// let policies = BTreeMap::from([(
///     "p".to_owned(),
///     Policy::new(Default::default(), retention, chrono_tz::UTC),
/// )]);
/// let selections = [DatasetSelection::new("tank/a".parse().unwrap(), "p")];
/// let req = PruneRequest::new(Location::local(), &inv, &selections, &policies);
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
/// let plan = plan_prune(&req, now);
/// let Step::Destroy(d) = &plan.steps[0] else { panic!("a destroy step") };
/// let names: Vec<&str> = d.snapshots.iter().map(|s| s.name.as_str()).collect();
/// assert_eq!(names, ["zsnap_hourly_20261123T000000Z", "zsnap_hourly_20261123T010000Z", "zsnap_hourly_20261123T020000Z"]);
/// assert_eq!(plan.decisions.len(), 5);
/// // The result converges: planning on what remains destroys nothing.
/// let after = plan.simulate(&inv).unwrap();
/// let req = PruneRequest::new(Location::local(), &after, &selections, &policies);
/// assert!(plan_prune(&req, now).is_empty());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PruneRequest<'a> {
    /// Where the inventory was listed; every step and decision names it.
    pub location: Location,
    /// What exists there.
    pub inventory: &'a Inventory,
    /// Which datasets are pruned by which policy.
    pub selections: &'a [DatasetSelection],
    /// The policies by name.
    pub policies: &'a BTreeMap<String, Policy>,
    /// Per dataset, the newest snapshot it has in common with each of its targets:
    /// `(target, guid)`. These are never destroyed.
    pub protected: &'a BTreeMap<DatasetName, Vec<(String, Guid)>>,
    /// Datasets whose listing failed or that are missing: nothing in them or below them
    /// is pruned.
    pub failed: &'a BTreeSet<DatasetName>,
    /// Datasets that replicate to a target whose listing failed, with that target:
    /// which snapshot the target still shares (the base of its next incremental) is
    /// unknown, so none of theirs is destroyed.
    pub unknown_base: &'a BTreeMap<DatasetName, String>,
    /// Per dataset, what each target that receives it has: `(target, createtxg of the
    /// newest snapshot or bookmark they share)`, `None` when it has nothing yet. The
    /// keep rule `not replicated to T` keeps what `T` has not received; a dataset
    /// without an entry for `T` is not received by it, and the rule keeps none of it.
    pub received: &'a BTreeMap<DatasetName, Vec<(String, Option<u64>)>>,
    /// The longest `DATASET@a,b,c` argument of one destroy step, in bytes.
    pub destroy_arg_budget: usize,
}

impl<'a> PruneRequest<'a> {
    /// A request with nothing protected, nothing failed and the default budget
    /// ([`DEFAULT_DESTROY_ARG_BUDGET`]).
    pub fn new(
        location: Location,
        inventory: &'a Inventory,
        selections: &'a [DatasetSelection],
        policies: &'a BTreeMap<String, Policy>,
    ) -> Self {
        PruneRequest {
            location,
            inventory,
            selections,
            policies,
            protected: &NO_PROTECTED,
            failed: &NO_FAILED,
            unknown_base: &NO_UNKNOWN,
            received: &NO_RECEIVED,
            destroy_arg_budget: DEFAULT_DESTROY_ARG_BUDGET,
        }
    }

    /// The same request protecting these `(target, guid)` per dataset.
    #[must_use]
    pub fn with_protected(
        mut self,
        protected: &'a BTreeMap<DatasetName, Vec<(String, Guid)>>,
    ) -> Self {
        self.protected = protected;
        self
    }

    /// The same request leaving alone every snapshot of these datasets, which replicate
    /// to a target (named) whose listing failed
    /// ([`TargetProtection::unknown`](crate::replicate::TargetProtection::unknown)).
    #[must_use]
    pub fn with_unknown_base(mut self, unknown: &'a BTreeMap<DatasetName, String>) -> Self {
        self.unknown_base = unknown;
        self
    }

    /// The same request, knowing what each target of each dataset has received
    /// ([`TargetProtection::received`](crate::replicate::TargetProtection::received)),
    /// for the keep rule `not replicated to T`.
    #[must_use]
    pub fn with_received(
        mut self,
        received: &'a BTreeMap<DatasetName, Vec<(String, Option<u64>)>>,
    ) -> Self {
        self.received = received;
        self
    }

    /// The same request, leaving these datasets (and everything below them) alone.
    #[must_use]
    pub fn with_failed(mut self, failed: &'a BTreeSet<DatasetName>) -> Self {
        self.failed = failed;
        self
    }

    /// The same request with another destroy argument budget.
    #[must_use]
    pub fn with_destroy_arg_budget(mut self, bytes: usize) -> Self {
        self.destroy_arg_budget = bytes;
        self
    }

    /// The failed dataset at or above `name`, if any.
    fn failed_at_or_above(&self, name: &DatasetName) -> Option<&'a DatasetName> {
        if self.failed.is_empty() {
            return None;
        }
        if let Some(f) = self.failed.get(name) {
            return Some(f);
        }
        let mut up = name.parent();
        while let Some(p) = up {
            if let Some(f) = self.failed.get(&p) {
                return Some(f);
            }
            up = p.parent();
        }
        None
    }
}

/// Plans the pruning of every selected dataset of `req.inventory` at `now` (see the
/// [module docs](crate::prune) for the rules).
///
/// Never fails: what cannot be pruned safely (a failed listing, a missing root, an
/// undefined or ambiguous policy) is left alone and explained in [`Plan::notes`].
pub fn plan_prune(req: &PruneRequest<'_>, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::new(now);
    let mut noted: BTreeSet<&DatasetName> = BTreeSet::new();
    for f in req.failed {
        let selected = req
            .selections
            .iter()
            .any(|s| s.selects(f) || f.is_ancestor_of(&s.root));
        if selected && req.inventory.dataset(f).is_none() && noted.insert(f) {
            plan.notes.push(Note::new(
                Some(f.clone()),
                "its listing failed; nothing in it or below it is pruned",
            ));
        }
    }
    let selected = select(req, &mut plan.notes);
    // Policies with `prune = false` → how many datasets they leave unpruned.
    let mut unpruned: BTreeMap<&String, usize> = BTreeMap::new();
    // One decision per snapshot: reserve once rather than grow a large vector often.
    plan.decisions
        .reserve(selected.iter().map(|(ds, _)| ds.snapshots.len()).sum());
    for (ds, choice) in selected {
        let sel = match choice {
            Choice::One(sel) => sel,
            Choice::Ambiguous(a, b) => {
                plan.notes.push(Note::new(
                    Some(ds.name.clone()),
                    format!(
                        "two selections of {} name different policies ({:?} and {:?}); not pruned",
                        a.root, a.policy, b.policy
                    ),
                ));
                continue;
            }
        };
        if let Some(f) = req.failed_at_or_above(&ds.name) {
            if noted.insert(&ds.name) {
                let message = if f == &ds.name {
                    "its listing failed; nothing in it or below it is pruned".to_owned()
                } else {
                    format!("the listing of {f} failed; not pruned")
                };
                plan.notes.push(Note::new(Some(ds.name.clone()), message));
            }
            continue;
        }
        if let Some(target) = req.unknown_base.get(&ds.name) {
            plan.notes.push(Note::new(
                Some(ds.name.clone()),
                format!(
                    "not pruned: target {target} could not be listed, so the snapshot it \
                     shares with {} is unknown",
                    ds.name
                ),
            ));
            continue;
        }
        let Some((policy_name, policy)) = req.policies.get_key_value(&sel.policy) else {
            plan.notes.push(Note::new(
                Some(ds.name.clone()),
                format!("policy {:?} is not defined; not pruned", sel.policy),
            ));
            continue;
        };
        if !policy.prune {
            *unpruned.entry(policy_name).or_default() += 1;
            continue;
        }
        prune_dataset(req, ds, policy_name, policy, now, &mut plan);
    }
    for (policy, n) in unpruned {
        let what = if n == 1 { "dataset" } else { "datasets" };
        plan.notes.push(Note::new(
            None,
            format!("policy {policy} says prune = false: its {n} {what} not pruned"),
        ));
    }
    plan
}

/// The selection that wins a dataset, or two that tie with different policies.
enum Choice<'a> {
    One(&'a DatasetSelection),
    Ambiguous(&'a DatasetSelection, &'a DatasetSelection),
}

/// Every selected dataset with its winning selection, in name order; a note for each
/// selection whose root is missing (and not explained by a failed listing).
fn select<'a>(req: &PruneRequest<'a>, notes: &mut Vec<Note>) -> Vec<(&'a Dataset, Choice<'a>)> {
    let inv = req.inventory;
    let mut best: BTreeMap<&'a DatasetName, (&'a Dataset, Choice<'a>)> = BTreeMap::new();
    for sel in req.selections {
        if inv.dataset(&sel.root).is_none() {
            if req.failed_at_or_above(&sel.root).is_none() {
                notes.push(Note::new(
                    Some(sel.root.clone()),
                    "selected but not in the inventory; nothing pruned under it",
                ));
            }
            continue;
        }
        let candidates: Box<dyn Iterator<Item = &'a Dataset>> = if sel.recursive {
            Box::new(inv.subtree(&sel.root))
        } else {
            Box::new(inv.dataset(&sel.root).into_iter())
        };
        for ds in candidates.filter(|d| sel.selects(&d.name)) {
            let entry = best.entry(&ds.name);
            match entry {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert((ds, Choice::One(sel)));
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let cur = match &o.get().1 {
                        Choice::One(c) | Choice::Ambiguous(c, _) => *c,
                    };
                    let (cur_len, new_len) = (cur.root.as_str().len(), sel.root.as_str().len());
                    if new_len > cur_len {
                        o.insert((ds, Choice::One(sel)));
                    } else if new_len == cur_len && cur.policy != sel.policy {
                        o.insert((ds, Choice::Ambiguous(cur, sel)));
                    }
                }
            }
        }
    }
    best.into_values().collect()
}

/// The bytes `DATASET@` and each `name,` add to a destroy argument.
fn arg_len(dataset: &DatasetName, names_len: usize, count: usize) -> usize {
    dataset.as_str().len() + 1 + names_len + count.saturating_sub(1)
}

/// How a snapshot's own circumstances (rather than the policy's rules) decide it.
enum Exempt {
    /// Judged by the rules like any other.
    No,
    /// Kept whatever the rules say, for this reason; not a candidate of the rules.
    Keep(KeepReason),
    /// Taken on demand, no rule names its label and its expiry has passed: destroyed,
    /// with this reason.
    Expired(String),
}

/// Whether `snap` escapes the policy's rules (see the module docs): an on-demand
/// snapshot no label rule names, or a sanoid snapshot of a type sanoid has no
/// settings for.
fn exemption(policy: &Policy, snap: &Snapshot, own: &Ownership, now: DateTime<Utc>) -> Exempt {
    match own {
        Ownership::Managed { label, .. }
            if policy.is_on_demand(label.as_str())
                && !policy.retention.names_label(label.as_str()) =>
        {
            // The expiry set when it was taken, else the one its label is declared
            // with (`on_demand = { pre-upgrade = "30d" }`), counted from its creation.
            let declared = policy
                .on_demand
                .get(label)
                .copied()
                .flatten()
                .and_then(|span| i64::try_from(span.seconds()).ok())
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| snap.creation.checked_add_signed(d));
            let (expiry, source) = match (snap.expiry(), declared) {
                (Some(e), _) => (Some(e), "expiry set when taken".to_owned()),
                (None, Some(t)) => (
                    Some(Ok(t)),
                    format!("on_demand expiry of label {:?}", label.as_str()),
                ),
                (None, None) => (None, String::new()),
            };
            let on_demand = format!(
                "taken on demand (label {:?} is not scheduled)",
                label.as_str()
            );
            match expiry {
                None => Exempt::Keep(
                    KeepReason::new(on_demand, "kept until destroyed by hand or expired")
                        .with_until(KeptUntil::NoExpiry),
                ),
                Some(Err(value)) => Exempt::Keep(
                    KeepReason::new(
                        on_demand,
                        format!("kept: its {EXPIRES_PROPERTY} value {value:?} is not a time"),
                    )
                    .with_until(KeptUntil::BadExpiry),
                ),
                Some(Ok(t)) if t > now => Exempt::Keep(
                    KeepReason::new(source, format!("kept until {}", utc_text(t)))
                        .with_until(KeptUntil::Time { time: t }),
                ),
                Some(Ok(t)) => Exempt::Expired(format!("{on_demand}; expired at {}", utc_text(t))),
            }
        }
        Ownership::Adopted {
            label: Some(label),
            tool: "sanoid",
            ..
        } if policy.retention.has_sanoid() && !SANOID_TYPES.contains(&label.as_str()) => {
            Exempt::Keep(KeepReason::new(
                format!("sanoid type {label:?}"),
                "sanoid has no settings for it and never prunes it",
            ))
        }
        _ => Exempt::No,
    }
}

/// The snapshot types sanoid 2.x has settings for (and so prunes).
const SANOID_TYPES: [&str; 6] = [
    "frequently",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
];

fn prune_dataset(
    req: &PruneRequest<'_>,
    ds: &Dataset,
    policy_name: &str,
    policy: &Policy,
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    let owns: Vec<Ownership> = ds.snapshots.iter().map(|s| policy.classify(s)).collect();
    let exempt: Vec<Exempt> = ds
        .snapshots
        .iter()
        .zip(&owns)
        .map(|(s, o)| exemption(policy, s, o, now))
        .collect();
    let judged = |o: &Ownership, e: &Exempt| o.is_owned() && matches!(e, Exempt::No);
    let candidates: Vec<Candidate<'_>> = ds
        .snapshots
        .iter()
        .zip(owns.iter().zip(&exempt))
        .filter(|(_, (o, e))| judged(o, e))
        .map(|(s, (o, _))| Candidate::new(&s.name, s.guid, s.createtxg, s.creation, o.label()))
        .collect();
    let replicated = req
        .received
        .get(&ds.name)
        .into_iter()
        .flatten()
        .fold(Replicated::new(), |r, (target, txg)| {
            r.with_target(target.as_str(), *txg)
        });
    let mut kept = evaluate_with(
        &policy.retention,
        &candidates,
        now,
        policy.timezone,
        &replicated,
    )
    .into_iter();
    drop(candidates);

    let newest_txg = ds.snapshots.iter().map(|s| s.createtxg).max();
    let common: &[(String, Guid)] = req.protected.get(&ds.name).map_or(&[], Vec::as_slice);
    let mut doomed: Vec<(&Snapshot, Option<String>)> = Vec::new();
    for ((snap, own), ex) in ds.snapshots.iter().zip(&owns).zip(exempt) {
        let mut reasons: Vec<KeepReason> = if judged(own, &ex) {
            kept.next()
                .expect("evaluate returns one entry per candidate, and each judged snapshot is one")
        } else {
            Vec::new()
        };
        let mut expired_reason = None;
        match ex {
            Exempt::No => {
                // A scheduled snapshot taken with an expiry stays at least until then.
                if let Some(Ok(t)) = snap.expiry().filter(|_| own.is_owned()) {
                    if t > now {
                        reasons.push(
                            KeepReason::new(
                                "expiry set when taken",
                                format!("kept until {}", utc_text(t)),
                            )
                            .with_until(KeptUntil::Time { time: t }),
                        );
                    }
                }
            }
            Exempt::Keep(r) => reasons.push(r),
            Exempt::Expired(why) => expired_reason = Some(why),
        }
        let protections = protections(snap, own, Some(snap.createtxg) == newest_txg, common);
        let verdict = if !protections.is_empty() {
            Verdict::Protect {
                protections,
                reasons,
            }
        } else if !reasons.is_empty() {
            Verdict::Keep { reasons }
        } else {
            doomed.push((snap, expired_reason));
            Verdict::Destroy
        };
        plan.decisions.push(Decision::new(
            req.location.clone(),
            ds.snapshot_name(snap),
            snap.guid,
            snap.creation,
            verdict,
        ));
    }
    // Snapshots are listed by createtxg, so `doomed` is oldest first already. Expiries
    // are rare and each has its own time: an expired snapshot gets a step (and reason)
    // of its own, in its place in that order.
    let reason = format!("no rule of policy {policy_name:?} keeps them");
    let mut batch: Vec<SnapshotRef> = Vec::new();
    let mut names_len = 0;
    let flush = |batch: &mut Vec<SnapshotRef>, plan: &mut Plan| {
        if !batch.is_empty() {
            plan.steps.push(Step::Destroy(DestroyStep::new(
                req.location.clone(),
                ds.name.clone(),
                std::mem::take(batch),
                reason.clone(),
            )));
        }
    };
    for (snap, why) in doomed {
        if let Some(why) = why {
            flush(&mut batch, plan);
            names_len = 0;
            plan.steps.push(Step::Destroy(DestroyStep::new(
                req.location.clone(),
                ds.name.clone(),
                vec![SnapshotRef::new(snap.name.clone(), snap.guid)],
                why,
            )));
            continue;
        }
        let len = snap.name.as_str().len();
        if !batch.is_empty()
            && arg_len(&ds.name, names_len + len, batch.len() + 1) > req.destroy_arg_budget
        {
            flush(&mut batch, plan);
            names_len = 0;
        }
        names_len += len;
        batch.push(SnapshotRef::new(snap.name.clone(), snap.guid));
    }
    flush(&mut batch, plan);
}

/// The safety rules that keep `snap`, in a fixed order.
fn protections(
    snap: &Snapshot,
    own: &Ownership,
    newest: bool,
    common: &[(String, Guid)],
) -> Vec<Protection> {
    let mut out = Vec::new();
    if snap.userrefs > 0 {
        out.push(Protection::Held {
            userrefs: snap.userrefs,
        });
    }
    if !snap.clones.is_empty() {
        out.push(Protection::Cloned {
            clones: snap.clones.clone(),
        });
    }
    if !snap.hidden_clones.is_empty() {
        out.push(Protection::HiddenClones {
            clones: snap.hidden_clones.clone(),
        });
    }
    if newest {
        out.push(Protection::Newest);
    }
    for (target, guid) in common {
        if *guid == snap.guid {
            out.push(Protection::CommonWithTarget {
                target: target.clone(),
            });
        }
    }
    if !own.is_owned() {
        out.push(Protection::Unmanaged);
    }
    out
}
