//! Simulation: apply a [`Plan`] to a copy of an inventory exactly as ZFS would, and
//! refuse what ZFS would refuse.
//!
//! Every planner's output is simulated in tests, so a plan that would fail half-way on a
//! real pool fails here first, with the step and the reason. The rules, step by step
//! (each refusal is a [`Refusal`] variant):
//!
//! **Create snapshots** ([`Step::Snapshot`], one atomic `zfs snapshot`): every dataset
//! exists, no name exists yet, all names are on one pool (`lzc_snapshot` takes one pool
//! per call), at most one snapshot per dataset (ZFS refuses "multiple snapshots of same
//! fs"; the same full name twice counts once, as in ZFS's name list), only user
//! properties (`module:name`). If anything is refused, nothing is created. All new
//! snapshots share one createtxg, the highest createtxg of the location's inventory plus
//! one, and their creation time is [`Plan::now`]. Of the properties, the inventory keeps
//! [`MANAGED_PROPERTY`] and [`EXPIRES_PROPERTY`] (the ones `zfs list` reads).
//!
//! **Destroy** ([`Step::Destroy`], one `zfs destroy DATASET@a,b,c`): the dataset exists
//! and every named snapshot exists with the planned guid, has no hold and no clone
//! (hidden ones, such as an interrupted receive's `DATASET/%recv`, count);
//! otherwise the whole batch is refused, as `lzc_destroy_snaps` destroys all or none.
//! A missing snapshot is refused too: the plan named something it did not see.
//!
//! **Hold / release**: the snapshot exists with the planned guid. An inventory knows only
//! the number of holds (`userrefs`), not their tags, so the simulation keeps the count
//! and the tags placed by earlier steps of the same plan: a hold refuses a tag this plan
//! already placed and did not release; a release removes a tag this plan placed, or
//! else one of the snapshot's pre-existing holds, and is refused when no hold is left
//! to account for it. A duplicate of a tag that existed before the plan cannot be seen.
//!
//! **Bookmark**: the snapshot exists with the planned guid, the bookmark is in the same
//! dataset and its name is free. The bookmark takes the snapshot's guid, createtxg and
//! creation. **Destroy bookmark**: the bookmark exists with the planned guid.
//!
//! **Transfer** ([`Step::Transfer`]): the source dataset exists, the sent snapshot (and
//! the base, a snapshot or a bookmark, strictly older) exists on it with the planned
//! guid; a full or incremental send of an encrypted source is raw (ZFS would send it decrypted when its key is
//! loaded, zsnap never does); `-I` starts from a snapshot, never a bookmark. A target
//! holding an interrupted receive accepts only [`SendSpec::Resume`].
//! - *Full*: a missing target is created (its parent must exist when the inventory shows
//!   any ancestor of it, as `zfs recv` does not create parents); an existing target is
//!   refused without force (`-F`), and even with force when it has snapshots or is a
//!   clone.
//! - *Incremental*: the target exists and has a snapshot with the base's guid (a bookmark
//!   on the target does not count). Snapshots of the target newer than that base are
//!   rolled back (destroyed) with force, refused without it, and a held or cloned one
//!   blocks the rollback. `-i` creates the sent snapshot; `-I` creates every snapshot of
//!   the source after the base up to the sent one, and the step's `expected` list must
//!   name exactly those (including the sent snapshot, oldest first; it may be empty for
//!   `-i`). A name the target already has is refused.
//! - *Resume*: the target holds an interrupted receive with the same token; its known
//!   snapshot (if any) is created and the token is cleared.
//!
//! Received snapshots keep their name, guid and creation time and get new createtxgs,
//! one per snapshot, above everything in the target location's inventory. The stream
//! carries no user properties (no `-p` is ever planned), so a received snapshot is
//! managed only when the receive sets [`MANAGED_PROPERTY`] with `-o` (snapshots inherit
//! it from their dataset). A dataset created by a full receive is encrypted when the
//! send was raw from an encrypted source.
//!
//! **Backup** ([`Step::Backup`], `zfs send` into a store): the source dataset exists,
//! the sent snapshot (and the base, a snapshot or a bookmark, strictly older) exists on
//! it with the planned guid, an encrypted source is sent raw, and the send is a full or
//! a single incremental (`-i`), never `-I` or a resume. The inventory does not change.
//!
//! **Abort receive**: the dataset holds an interrupted receive; the token is cleared, and
//! a dataset without snapshots (one an interrupted full receive created) disappears.
//! Aborting or completing a resumed receive also removes the hidden `DATASET/%recv`
//! clone the interrupted receive left on its base snapshot.
//!
//! What an inventory cannot show is not modelled: data written to a target since its
//! newest snapshot (which a real incremental receive without `-F` refuses), space, busy
//! datasets, permissions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::backup::BackupStep;
use crate::inventory::{
    Bookmark, Dataset, DatasetProps, Guid, Inventory, Snapshot, EXPIRES_PROPERTY, MANAGED_PROPERTY,
};
use crate::plan::{
    AbortReceiveStep, BookmarkStep, DestroyBookmarkStep, DestroyStep, HoldStep, Location, Plan,
    SendBase, SendSpec, SnapshotRef, SnapshotStep, Step, TransferStep,
};
use crate::zfs_names::{BookmarkName, DatasetName, ShortName, SnapshotName};

/// A plan step that ZFS would refuse, with the step's position and what is wrong.
///
/// Reads after "failed to simulate the plan: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {} ({action} at {location}): {refusal}", .index + 1)]
#[non_exhaustive]
pub struct SimulateError {
    /// Index of the refused step in [`Plan::steps`] (0-based; messages count from 1, as
    /// rendered plans do).
    pub index: usize,
    /// The kind of step: `snapshot`, `destroy`, `hold`, `release`, `bookmark`,
    /// `destroy bookmark`, `transfer`, `abort receive`, `backup`.
    pub action: &'static str,
    /// Where the step runs; `from → to` for transfers.
    pub location: String,
    /// What ZFS (or the simulation) refuses (boxed: it is large and errors are rare).
    pub refusal: Box<Refusal>,
}

/// Why a step cannot run. Names are full names at the step's location (the source's
/// or the target's for transfers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// [`Plan::simulate`] covers one location; the plan touches another.
    #[error("the plan also runs at {found}, but this simulation covers only {expected} (simulate every location at once)")]
    OtherLocation {
        /// The location of the first step.
        expected: Location,
        /// The other location.
        found: Location,
    },
    /// [`Plan::simulate_at`] was given no inventory for a location the plan uses.
    #[error("no inventory for location {location}")]
    UnknownLocation {
        /// The location.
        location: Location,
    },
    /// The plan creates snapshots but has no `now` to date them.
    #[error("the plan has no `now`, so the new snapshots would have no creation time")]
    MissingNow,
    /// A step that names nothing.
    #[error("the step names no snapshot")]
    EmptyStep,
    /// One `zfs snapshot` call across pools.
    #[error("snapshots {first} and {other} are on different pools; one atomic `zfs snapshot` takes one pool")]
    CrossPool {
        /// The first name.
        first: SnapshotName,
        /// A name on another pool.
        other: SnapshotName,
    },
    /// One `zfs snapshot` call with two snapshots of one dataset.
    #[error("{first} and {second} are two snapshots of one dataset in one atomic `zfs snapshot`")]
    SameDatasetTwice {
        /// The first name.
        first: SnapshotName,
        /// The second name.
        second: SnapshotName,
    },
    /// A snapshot property that is not a user property.
    #[error("property {property:?} is not a user property (`module:name`), the only kind a snapshot takes at creation")]
    NotUserProperty {
        /// The property.
        property: String,
    },
    /// The dataset does not exist.
    #[error("dataset {dataset} does not exist")]
    DatasetMissing {
        /// The dataset.
        dataset: DatasetName,
    },
    /// A snapshot to create exists already.
    #[error("snapshot {snapshot} already exists")]
    SnapshotExists {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// A snapshot the step acts on does not exist.
    #[error("snapshot {snapshot} does not exist")]
    SnapshotMissing {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// A snapshot the step acts on is not the one planned.
    #[error("snapshot {snapshot} has guid {actual}, not the planned {planned}")]
    GuidMismatch {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The guid in the plan.
        planned: Guid,
        /// The guid in the inventory.
        actual: Guid,
    },
    /// Destroying a held snapshot.
    #[error("snapshot {snapshot} is held ({userrefs} holds)")]
    Held {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Its holds.
        userrefs: u64,
    },
    /// Destroying a snapshot with clones, visible or hidden.
    #[error("snapshot {snapshot} has clones ({})", .clones.join(", "))]
    Cloned {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Its clones: datasets, then hidden ones (`DATASET/%recv`) verbatim.
        clones: Vec<String>,
    },
    /// A hold tag placed twice.
    #[error("snapshot {snapshot} already has a hold with tag {tag:?}")]
    DuplicateHold {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The tag.
        tag: String,
    },
    /// A release with no hold left to release.
    #[error("snapshot {snapshot} has no hold with tag {tag:?}")]
    NoSuchHold {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The tag.
        tag: String,
    },
    /// A bookmark in another dataset than its snapshot.
    #[error("bookmark {bookmark} is not in the dataset of {snapshot}")]
    BookmarkElsewhere {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The bookmark.
        bookmark: BookmarkName,
    },
    /// A bookmark to create exists already.
    #[error("bookmark {bookmark} already exists")]
    BookmarkExists {
        /// The bookmark.
        bookmark: BookmarkName,
    },
    /// A bookmark the step uses does not exist.
    #[error("bookmark {dataset}#{name} does not exist")]
    BookmarkMissing {
        /// Its dataset.
        dataset: DatasetName,
        /// The part after `#`.
        name: ShortName,
    },
    /// A bookmark the step uses is not the one planned.
    #[error("bookmark {dataset}#{name} has guid {actual}, not the planned {planned}")]
    BookmarkGuidMismatch {
        /// Its dataset.
        dataset: DatasetName,
        /// The part after `#`.
        name: ShortName,
        /// The guid in the plan.
        planned: Guid,
        /// The guid in the inventory.
        actual: Guid,
    },
    /// A non-raw send of an encrypted dataset.
    #[error("source {dataset} is encrypted and the send is not raw (-w)")]
    NotRaw {
        /// The source dataset.
        dataset: DatasetName,
    },
    /// `-I` from a bookmark.
    #[error("`zfs send -I` cannot start from bookmark {dataset}#{name}; only -i can")]
    IntermediatesFromBookmark {
        /// Its dataset.
        dataset: DatasetName,
        /// The part after `#`.
        name: ShortName,
    },
    /// A backup step whose send is not a full or a single incremental.
    #[error("a backup of {dataset} must be a full or a single incremental (-i) send")]
    NotABackupSend {
        /// The source dataset.
        dataset: DatasetName,
    },
    /// The incremental base is not older than the sent snapshot.
    #[error("base {base} is not earlier than {snapshot}")]
    BaseNotEarlier {
        /// The base, `dataset@name` or `dataset#name`.
        base: String,
        /// The sent snapshot.
        snapshot: SnapshotName,
    },
    /// A full receive into an existing dataset without force.
    #[error("target {target} exists; a full receive overwrites it only with force (-F)")]
    TargetExists {
        /// The target.
        target: DatasetName,
    },
    /// A full receive into a dataset with snapshots.
    #[error("target {target} has snapshots (e.g. {example}); a full receive does not overwrite them, even with -F")]
    TargetHasSnapshots {
        /// The target.
        target: DatasetName,
        /// One of them.
        example: ShortName,
    },
    /// A full receive into a clone.
    #[error("target {target} is a clone; a full receive cannot overwrite it")]
    TargetIsClone {
        /// The target.
        target: DatasetName,
    },
    /// A full receive whose target's parent does not exist.
    #[error("parent {parent} of target {target} does not exist")]
    ParentMissing {
        /// The target.
        target: DatasetName,
        /// Its missing parent.
        parent: DatasetName,
    },
    /// A full receive into a pool's root dataset that does not exist.
    #[error("target {target} is the root of a pool that does not exist")]
    PoolMissing {
        /// The target.
        target: DatasetName,
    },
    /// An incremental or resumed receive into a missing dataset.
    #[error("target {target} does not exist, and only a full stream creates a dataset")]
    TargetMissing {
        /// The target.
        target: DatasetName,
    },
    /// A new receive into a dataset that holds an interrupted one.
    #[error("target {target} holds the state of an interrupted receive; resume or abort it first")]
    ResumeStatePresent {
        /// The target.
        target: DatasetName,
    },
    /// Resume or abort without an interrupted receive.
    #[error("{dataset} holds no interrupted receive")]
    NoResumeState {
        /// The dataset.
        dataset: DatasetName,
    },
    /// Resume with another token than the target's.
    #[error("the resume token of the step is not the one {target} holds")]
    ResumeTokenMismatch {
        /// The target.
        target: DatasetName,
    },
    /// The target lacks the incremental base.
    #[error("target {target} has no snapshot with the base's guid {guid}")]
    BaseMissingOnTarget {
        /// The target.
        target: DatasetName,
        /// The base's guid.
        guid: Guid,
    },
    /// The target has snapshots newer than the base and the receive is not forced.
    #[error("target {target} has {count} snapshot(s) newer than the base {base} (the first is {newer}); only a forced receive (-F) rolls them back")]
    TargetDiverged {
        /// The target.
        target: DatasetName,
        /// The base on the target.
        base: ShortName,
        /// The oldest newer snapshot.
        newer: ShortName,
        /// How many newer snapshots.
        count: usize,
    },
    /// A forced receive would roll back a held or cloned snapshot.
    #[error(
        "the forced rollback of the target would destroy {snapshot}, which is held or has clones"
    )]
    RollbackBlocked {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// `-I` would create other snapshots than the step expects.
    #[error("`-I` into {target} would create {} as snapshot #{position}, but the step expects {}", or_nothing(.actual), or_nothing(.planned))]
    ExpectedMismatch {
        /// The target.
        target: DatasetName,
        /// The 1-based position in the list of received snapshots.
        position: usize,
        /// What the step expects there.
        planned: Option<ShortName>,
        /// What the stream carries there.
        actual: Option<ShortName>,
    },
}

fn or_nothing(name: &Option<ShortName>) -> String {
    match name {
        Some(n) => n.to_string(),
        None => "nothing".to_owned(),
    }
}

impl Plan {
    /// Applies every step to a copy of `inv`, the inventory of the one location every
    /// step runs at, as ZFS would (see the [module docs](crate::simulate) for each rule).
    ///
    /// # Errors
    /// The first step ZFS would refuse; a step at another location than the first step's
    /// ([`Refusal::OtherLocation`]; use [`Plan::simulate_at`] for those plans).
    pub fn simulate(&self, inv: &Inventory) -> Result<Inventory, SimulateError> {
        let Some(first) = self.steps.first() else {
            return Ok(inv.clone());
        };
        let location = step_locations(first).0.clone();
        for (index, step) in self.steps.iter().enumerate() {
            let (a, b) = step_locations(step);
            for found in [Some(a), b].into_iter().flatten() {
                if found != &location {
                    return Err(error(
                        index,
                        step,
                        Refusal::OtherLocation {
                            expected: location.clone(),
                            found: found.clone(),
                        },
                    ));
                }
            }
        }
        let mut sim = Sim::new(BTreeMap::from([(location.clone(), inv.clone())]), self.now);
        sim.run(&self.steps)?;
        Ok(sim
            .invs
            .remove(&location)
            .expect("the location was inserted above and is never removed"))
    }

    /// Applies every step to copies of the inventories of every location, for plans
    /// that span locations (transfers between hosts). Locations absent from the plan
    /// are returned unchanged.
    ///
    /// # Errors
    /// The first step ZFS would refuse, or a step at a location missing from `invs`
    /// ([`Refusal::UnknownLocation`]).
    pub fn simulate_at(
        &self,
        invs: &BTreeMap<Location, Inventory>,
    ) -> Result<BTreeMap<Location, Inventory>, SimulateError> {
        for (index, step) in self.steps.iter().enumerate() {
            let (a, b) = step_locations(step);
            for loc in [Some(a), b].into_iter().flatten() {
                if !invs.contains_key(loc) {
                    return Err(error(
                        index,
                        step,
                        Refusal::UnknownLocation {
                            location: loc.clone(),
                        },
                    ));
                }
            }
        }
        let mut sim = Sim::new(invs.clone(), self.now);
        sim.run(&self.steps)?;
        Ok(sim.invs)
    }
}

/// The step's location, and the target location of a transfer.
fn step_locations(step: &Step) -> (&Location, Option<&Location>) {
    match step {
        Step::Snapshot(s) => (&s.location, None),
        Step::Destroy(s) => (&s.location, None),
        Step::Hold(s) | Step::Release(s) => (&s.location, None),
        Step::Bookmark(s) => (&s.location, None),
        Step::DestroyBookmark(s) => (&s.location, None),
        Step::Transfer(s) => (&s.from, Some(&s.to)),
        Step::AbortReceive(s) => (&s.location, None),
        Step::Backup(s) => (&s.location, None),
    }
}

/// The short word for a step kind, as rendered plans print it.
pub(crate) fn action(step: &Step) -> &'static str {
    match step {
        Step::Snapshot(_) => "snapshot",
        Step::Destroy(_) => "destroy",
        Step::Hold(_) => "hold",
        Step::Release(_) => "release",
        Step::Bookmark(_) => "bookmark",
        Step::DestroyBookmark(_) => "destroy bookmark",
        Step::Transfer(_) => "transfer",
        Step::AbortReceive(_) => "abort receive",
        Step::Backup(_) => "backup",
    }
}

fn error(index: usize, step: &Step, refusal: Refusal) -> SimulateError {
    let location = match step_locations(step) {
        (a, Some(b)) => format!("{a} → {b}"),
        (a, None) => a.to_string(),
    };
    SimulateError {
        index,
        action: action(step),
        location,
        refusal: Box::new(refusal),
    }
}

/// The running state of a simulation.
struct Sim {
    invs: BTreeMap<Location, Inventory>,
    now: Option<DateTime<Utc>>,
    /// Highest createtxg per location (the txg counter every new snapshot goes above).
    max_txg: BTreeMap<Location, u64>,
    /// Hold tags placed by this plan and not released, per snapshot.
    tags: HashMap<(Location, DatasetName, Guid), BTreeSet<String>>,
}

type Outcome = Result<(), Refusal>;

impl Sim {
    fn new(invs: BTreeMap<Location, Inventory>, now: Option<DateTime<Utc>>) -> Self {
        let max_txg = invs
            .iter()
            .map(|(loc, inv)| {
                let max = inv
                    .datasets
                    .values()
                    .flat_map(|d| {
                        let s = d.snapshots.iter().map(|s| s.createtxg).max();
                        let b = d.bookmarks.iter().map(|b| b.createtxg).max();
                        s.into_iter().chain(b)
                    })
                    .max()
                    .unwrap_or(0);
                (loc.clone(), max)
            })
            .collect();
        Sim {
            invs,
            now,
            max_txg,
            tags: HashMap::new(),
        }
    }

    fn run(&mut self, steps: &[Step]) -> Result<(), SimulateError> {
        for (index, step) in steps.iter().enumerate() {
            let outcome = match step {
                Step::Snapshot(s) => self.snapshot(s),
                Step::Destroy(s) => self.destroy(s),
                Step::Hold(s) => self.hold(s),
                Step::Release(s) => self.release(s),
                Step::Bookmark(s) => self.bookmark(s),
                Step::DestroyBookmark(s) => self.destroy_bookmark(s),
                Step::Transfer(s) => self.transfer(s),
                Step::AbortReceive(s) => self.abort_receive(s),
                Step::Backup(s) => self.backup(s),
            };
            outcome.map_err(|refusal| error(index, step, refusal))?;
        }
        Ok(())
    }

    fn inv(&self, loc: &Location) -> &Inventory {
        self.invs
            .get(loc)
            .expect("every step's location was checked against the inventories before running")
    }

    fn inv_mut(&mut self, loc: &Location) -> &mut Inventory {
        self.invs
            .get_mut(loc)
            .expect("every step's location was checked against the inventories before running")
    }

    fn next_txg(&mut self, loc: &Location) -> u64 {
        let txg = self.max_txg.entry(loc.clone()).or_insert(0);
        *txg += 1;
        *txg
    }

    fn snapshot(&mut self, step: &SnapshotStep) -> Outcome {
        let now = self.now.ok_or(Refusal::MissingNow)?;
        let first = step.names.first().ok_or(Refusal::EmptyStep)?;
        if let Some(property) = step.properties.keys().find(|p| !p.contains(':')) {
            return Err(Refusal::NotUserProperty {
                property: property.clone(),
            });
        }
        let inv = self.inv(&step.location);
        let mut by_dataset: HashMap<&DatasetName, &SnapshotName> = HashMap::new();
        let mut names: Vec<&SnapshotName> = Vec::with_capacity(step.names.len());
        for name in &step.names {
            if name.dataset().pool() != first.dataset().pool() {
                return Err(Refusal::CrossPool {
                    first: first.clone(),
                    other: name.clone(),
                });
            }
            if let Some(prev) = by_dataset.insert(name.dataset(), name) {
                if prev == name {
                    continue;
                }
                return Err(Refusal::SameDatasetTwice {
                    first: prev.clone(),
                    second: name.clone(),
                });
            }
            let Some(ds) = inv.dataset(name.dataset()) else {
                return Err(Refusal::DatasetMissing {
                    dataset: name.dataset().clone(),
                });
            };
            if ds.snapshot(name.short()).is_some() {
                return Err(Refusal::SnapshotExists {
                    snapshot: name.clone(),
                });
            }
            names.push(name);
        }
        let managed = step.properties.get(MANAGED_PROPERTY).cloned();
        let expires = step.properties.get(EXPIRES_PROPERTY).cloned();
        let names: Vec<SnapshotName> = names.into_iter().cloned().collect();
        let txg = self.next_txg(&step.location);
        let inv = self.inv_mut(&step.location);
        for name in names {
            let ds = inv
                .dataset_mut(name.dataset())
                .expect("checked above that every dataset exists");
            let mut snap = Snapshot::new(name.short().clone(), fresh_guid(&name, txg), txg, now);
            snap.managed = managed.clone();
            snap.expires = expires.clone();
            ds.insert_snapshot(snap);
        }
        Ok(())
    }

    fn destroy(&mut self, step: &DestroyStep) -> Outcome {
        if step.snapshots.is_empty() {
            return Err(Refusal::EmptyStep);
        }
        let inv = self.inv(&step.location);
        let Some(ds) = inv.dataset(&step.dataset) else {
            return Err(Refusal::DatasetMissing {
                dataset: step.dataset.clone(),
            });
        };
        let by_name: HashMap<&ShortName, &Snapshot> =
            ds.snapshots.iter().map(|s| (&s.name, s)).collect();
        let mut doomed: HashSet<&ShortName> = HashSet::with_capacity(step.snapshots.len());
        for r in &step.snapshots {
            let full = || step.dataset.snapshot(&r.name);
            let Some(snap) = by_name.get(&r.name) else {
                return Err(Refusal::SnapshotMissing { snapshot: full() });
            };
            check_guid(snap, r.guid, full)?;
            if snap.userrefs > 0 {
                return Err(Refusal::Held {
                    snapshot: full(),
                    userrefs: snap.userrefs,
                });
            }
            if !snap.clones.is_empty() || !snap.hidden_clones.is_empty() {
                let clones = snap.clones.iter().map(DatasetName::to_string);
                return Err(Refusal::Cloned {
                    snapshot: full(),
                    clones: clones.chain(snap.hidden_clones.iter().cloned()).collect(),
                });
            }
            doomed.insert(&r.name);
        }
        let doomed: HashSet<ShortName> = doomed.into_iter().cloned().collect();
        let ds = self
            .inv_mut(&step.location)
            .dataset_mut(&step.dataset)
            .expect("checked above that the dataset exists");
        ds.snapshots.retain(|s| !doomed.contains(&s.name));
        Ok(())
    }

    /// The snapshot a hold, release or bookmark step names, checked against its guid.
    fn named(&self, loc: &Location, name: &SnapshotName, guid: Guid) -> Result<&Snapshot, Refusal> {
        let Some(ds) = self.inv(loc).dataset(name.dataset()) else {
            return Err(Refusal::DatasetMissing {
                dataset: name.dataset().clone(),
            });
        };
        let Some(snap) = ds.snapshot(name.short()) else {
            return Err(Refusal::SnapshotMissing {
                snapshot: name.clone(),
            });
        };
        check_guid(snap, guid, || name.clone())?;
        Ok(snap)
    }

    fn named_mut(&mut self, loc: &Location, name: &SnapshotName) -> &mut Snapshot {
        self.inv_mut(loc)
            .dataset_mut(name.dataset())
            .and_then(|d| d.snapshots.iter_mut().find(|s| &s.name == name.short()))
            .expect("the snapshot was checked to exist just before")
    }

    fn hold(&mut self, step: &HoldStep) -> Outcome {
        self.named(&step.location, &step.snapshot, step.guid)?;
        let key = (
            step.location.clone(),
            step.snapshot.dataset().clone(),
            step.guid,
        );
        let placed = self.tags.entry(key).or_default();
        if !placed.insert(step.tag.clone()) {
            return Err(Refusal::DuplicateHold {
                snapshot: step.snapshot.clone(),
                tag: step.tag.clone(),
            });
        }
        self.named_mut(&step.location, &step.snapshot).userrefs += 1;
        Ok(())
    }

    fn release(&mut self, step: &HoldStep) -> Outcome {
        let userrefs = self
            .named(&step.location, &step.snapshot, step.guid)?
            .userrefs;
        let key = (
            step.location.clone(),
            step.snapshot.dataset().clone(),
            step.guid,
        );
        let placed = self.tags.entry(key).or_default();
        // Holds not placed by this plan have unknown tags: any of them may carry `tag`.
        let unknown = userrefs.saturating_sub(placed.len() as u64);
        if !placed.remove(&step.tag) && unknown == 0 {
            return Err(Refusal::NoSuchHold {
                snapshot: step.snapshot.clone(),
                tag: step.tag.clone(),
            });
        }
        self.named_mut(&step.location, &step.snapshot).userrefs -= 1;
        Ok(())
    }

    fn bookmark(&mut self, step: &BookmarkStep) -> Outcome {
        let snap = self.named(&step.location, &step.snapshot, step.guid)?;
        if step.bookmark.dataset() != step.snapshot.dataset() {
            return Err(Refusal::BookmarkElsewhere {
                snapshot: step.snapshot.clone(),
                bookmark: step.bookmark.clone(),
            });
        }
        let b = Bookmark::new(
            step.bookmark.short().clone(),
            snap.guid,
            snap.createtxg,
            snap.creation,
        );
        let ds = self
            .inv_mut(&step.location)
            .dataset_mut(step.snapshot.dataset())
            .expect("checked above that the dataset exists");
        if ds
            .bookmarks
            .iter()
            .any(|x| &x.name == step.bookmark.short())
        {
            return Err(Refusal::BookmarkExists {
                bookmark: step.bookmark.clone(),
            });
        }
        ds.insert_bookmark(b);
        Ok(())
    }

    fn destroy_bookmark(&mut self, step: &DestroyBookmarkStep) -> Outcome {
        let dataset = step.bookmark.dataset();
        let Some(ds) = self.inv_mut(&step.location).dataset_mut(dataset) else {
            return Err(Refusal::DatasetMissing {
                dataset: dataset.clone(),
            });
        };
        let Some(at) = ds
            .bookmarks
            .iter()
            .position(|b| &b.name == step.bookmark.short())
        else {
            return Err(Refusal::BookmarkMissing {
                dataset: dataset.clone(),
                name: step.bookmark.short().clone(),
            });
        };
        if ds.bookmarks[at].guid != step.guid {
            return Err(Refusal::BookmarkGuidMismatch {
                dataset: dataset.clone(),
                name: step.bookmark.short().clone(),
                planned: step.guid,
                actual: ds.bookmarks[at].guid,
            });
        }
        ds.bookmarks.remove(at);
        Ok(())
    }

    fn abort_receive(&mut self, step: &AbortReceiveStep) -> Outcome {
        let inv = self.inv_mut(&step.location);
        let Some(ds) = inv.dataset_mut(&step.dataset) else {
            return Err(Refusal::DatasetMissing {
                dataset: step.dataset.clone(),
            });
        };
        if ds.props.receive_resume_token.take().is_none() {
            return Err(Refusal::NoResumeState {
                dataset: step.dataset.clone(),
            });
        }
        drop_partial_receive(ds);
        if ds.snapshots.is_empty() {
            inv.datasets.remove(&step.dataset);
        }
        Ok(())
    }

    fn backup(&mut self, step: &BackupStep) -> Outcome {
        let Some(source) = self.inv(&step.location).dataset(&step.dataset) else {
            return Err(Refusal::DatasetMissing {
                dataset: step.dataset.clone(),
            });
        };
        if source.props.is_encrypted() && !step.raw {
            return Err(Refusal::NotRaw {
                dataset: step.dataset.clone(),
            });
        }
        let (base, snapshot) = match &step.send {
            SendSpec::Full { snapshot } => (None, snapshot),
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates: false,
                ..
            } => (Some(base), snapshot),
            _ => {
                return Err(Refusal::NotABackupSend {
                    dataset: step.dataset.clone(),
                })
            }
        };
        let snap = source_snapshot(source, snapshot)?;
        if let Some(base) = base {
            source_base(source, base, snap)?;
        }
        Ok(())
    }

    fn transfer(&mut self, step: &TransferStep) -> Outcome {
        let src = self.inv(&step.from);
        let Some(source) = src.dataset(&step.source) else {
            return Err(Refusal::DatasetMissing {
                dataset: step.source.clone(),
            });
        };
        let target = self.inv(&step.to).dataset(&step.target);
        let received: Vec<Snapshot> = match &step.send {
            SendSpec::Full { snapshot } => {
                check_raw(step, source)?;
                let snap = source_snapshot(source, snapshot)?;
                if let Some(t) = target {
                    if t.props.receive_resume_token.is_some() {
                        return Err(Refusal::ResumeStatePresent {
                            target: step.target.clone(),
                        });
                    }
                    if !step.recv.force {
                        return Err(Refusal::TargetExists {
                            target: step.target.clone(),
                        });
                    }
                    if let Some(example) = t.snapshots.first() {
                        return Err(Refusal::TargetHasSnapshots {
                            target: step.target.clone(),
                            example: example.name.clone(),
                        });
                    }
                    if t.props.origin.is_some() {
                        return Err(Refusal::TargetIsClone {
                            target: step.target.clone(),
                        });
                    }
                } else {
                    check_parent(self.inv(&step.to), &step.target)?;
                }
                vec![snap.clone()]
            }
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates,
                expected,
            } => {
                check_raw(step, source)?;
                let snap = source_snapshot(source, snapshot)?;
                if let (true, SendBase::Bookmark { name, .. }) = (*intermediates, base) {
                    return Err(Refusal::IntermediatesFromBookmark {
                        dataset: step.source.clone(),
                        name: name.clone(),
                    });
                }
                let base_txg = source_base(source, base, snap)?;
                let stream: Vec<Snapshot> = if *intermediates {
                    source
                        .snapshots
                        .iter()
                        .filter(|s| s.createtxg > base_txg && s.createtxg <= snap.createtxg)
                        .cloned()
                        .collect()
                } else {
                    vec![snap.clone()]
                };
                check_expected(&step.target, *intermediates, expected, &stream)?;
                let Some(t) = target else {
                    return Err(Refusal::TargetMissing {
                        target: step.target.clone(),
                    });
                };
                if t.props.receive_resume_token.is_some() {
                    return Err(Refusal::ResumeStatePresent {
                        target: step.target.clone(),
                    });
                }
                let Some(at) = t.snapshots.iter().position(|s| s.guid == base.guid()) else {
                    return Err(Refusal::BaseMissingOnTarget {
                        target: step.target.clone(),
                        guid: base.guid(),
                    });
                };
                let base_on_target = &t.snapshots[at];
                // Snapshots sharing the base's txg were taken with it, not after it.
                let newer: Vec<&Snapshot> = t.snapshots[at + 1..]
                    .iter()
                    .filter(|s| s.createtxg > base_on_target.createtxg)
                    .collect();
                if let Some(first) = newer.first() {
                    if !step.recv.force {
                        return Err(Refusal::TargetDiverged {
                            target: step.target.clone(),
                            base: base_on_target.name.clone(),
                            newer: first.name.clone(),
                            count: newer.len(),
                        });
                    }
                    if let Some(p) = newer.iter().find(|s| s.is_pinned()) {
                        return Err(Refusal::RollbackBlocked {
                            snapshot: step.target.snapshot(&p.name),
                        });
                    }
                }
                let rolled_back: HashSet<Guid> = newer.iter().map(|s| s.guid).collect();
                let staying: HashSet<&ShortName> = t
                    .snapshots
                    .iter()
                    .filter(|x| !rolled_back.contains(&x.guid))
                    .map(|x| &x.name)
                    .collect();
                for s in &stream {
                    if staying.contains(&s.name) {
                        return Err(Refusal::SnapshotExists {
                            snapshot: step.target.snapshot(&s.name),
                        });
                    }
                }
                let target = step.target.clone();
                let to = step.to.clone();
                let ds = self
                    .inv_mut(&to)
                    .dataset_mut(&target)
                    .expect("checked above that the target exists");
                ds.snapshots.retain(|s| !rolled_back.contains(&s.guid));
                stream
            }
            SendSpec::Resume { token, snapshot } => {
                let Some(t) = target else {
                    return Err(Refusal::TargetMissing {
                        target: step.target.clone(),
                    });
                };
                match &t.props.receive_resume_token {
                    None => {
                        return Err(Refusal::NoResumeState {
                            dataset: step.target.clone(),
                        })
                    }
                    Some(held) if held != token => {
                        return Err(Refusal::ResumeTokenMismatch {
                            target: step.target.clone(),
                        })
                    }
                    Some(_) => {}
                }
                let stream = match snapshot {
                    Some(r) => {
                        let snap = source_snapshot(source, r)?;
                        if t.snapshot(&snap.name).is_some() {
                            return Err(Refusal::SnapshotExists {
                                snapshot: step.target.snapshot(&snap.name),
                            });
                        }
                        vec![snap.clone()]
                    }
                    None => Vec::new(),
                };
                let (to, target) = (step.to.clone(), step.target.clone());
                let ds = self
                    .inv_mut(&to)
                    .dataset_mut(&target)
                    .expect("checked above that the target exists");
                ds.props.receive_resume_token = None;
                drop_partial_receive(ds);
                stream
            }
        };
        self.receive(step, received);
        Ok(())
    }

    /// Creates the target if needed and adds the received snapshots to it.
    fn receive(&mut self, step: &TransferStep, received: Vec<Snapshot>) {
        let source = self
            .inv(&step.from)
            .dataset(&step.source)
            .expect("the source was checked to exist");
        let (kind, encryption) = (source.kind, source.props.encryption.clone());
        let managed = step.recv.set_props.get(MANAGED_PROPERTY).cloned();
        let new_guid = Guid(fresh_dataset_guid(&step.target));
        let to = step.to.clone();
        let mut txgs = Vec::with_capacity(received.len());
        for _ in &received {
            txgs.push(self.next_txg(&to));
        }
        let inv = self.inv_mut(&to);
        let ds = inv.datasets.entry(step.target.clone()).or_insert_with(|| {
            let mut ds = Dataset::new(step.target.clone(), kind, new_guid);
            ds.props = DatasetProps::default();
            if step.raw {
                ds.props.encryption = encryption;
            }
            ds
        });
        for (s, txg) in received.into_iter().zip(txgs) {
            let mut snap = Snapshot::new(s.name, s.guid, txg, s.creation);
            snap.managed = managed.clone();
            ds.insert_snapshot(snap);
        }
    }
}

/// Removes the hidden `DATASET/%recv` clone an interrupted incremental receive left on
/// its base snapshot, once the receive is resumed to its end or aborted.
fn drop_partial_receive(ds: &mut Dataset) {
    let partial = format!("{}/%recv", ds.name);
    for s in &mut ds.snapshots {
        s.hidden_clones.retain(|c| c != &partial);
    }
}

fn check_guid(
    snap: &Snapshot,
    planned: Guid,
    name: impl FnOnce() -> SnapshotName,
) -> Result<(), Refusal> {
    if snap.guid != planned {
        return Err(Refusal::GuidMismatch {
            snapshot: name(),
            planned,
            actual: snap.guid,
        });
    }
    Ok(())
}

fn source_snapshot<'a>(source: &'a Dataset, r: &SnapshotRef) -> Result<&'a Snapshot, Refusal> {
    let Some(snap) = source.snapshot(&r.name) else {
        return Err(Refusal::SnapshotMissing {
            snapshot: source.name.snapshot(&r.name),
        });
    };
    check_guid(snap, r.guid, || source.name.snapshot(&r.name))?;
    Ok(snap)
}

/// The createtxg of an incremental send's base on the source: the snapshot or bookmark
/// exists with the planned guid and is strictly older than `snap`, as `zfs send -i`
/// requires.
fn source_base(source: &Dataset, base: &SendBase, snap: &Snapshot) -> Result<u64, Refusal> {
    let (txg, sep, name) = match base {
        SendBase::Snapshot { name, guid } => {
            let b = source_snapshot(source, &SnapshotRef::new(name.clone(), *guid))?;
            (b.createtxg, '@', name)
        }
        SendBase::Bookmark { name, guid } => {
            let Some(b) = source.bookmarks.iter().find(|b| &b.name == name) else {
                return Err(Refusal::BookmarkMissing {
                    dataset: source.name.clone(),
                    name: name.clone(),
                });
            };
            if b.guid != *guid {
                return Err(Refusal::BookmarkGuidMismatch {
                    dataset: source.name.clone(),
                    name: name.clone(),
                    planned: *guid,
                    actual: b.guid,
                });
            }
            (b.createtxg, '#', name)
        }
    };
    if txg >= snap.createtxg {
        return Err(Refusal::BaseNotEarlier {
            base: format!("{}{sep}{name}", source.name),
            snapshot: source.name.snapshot(&snap.name),
        });
    }
    Ok(txg)
}

fn check_raw(step: &TransferStep, source: &Dataset) -> Outcome {
    if source.props.is_encrypted() && !step.raw {
        return Err(Refusal::NotRaw {
            dataset: step.source.clone(),
        });
    }
    Ok(())
}

/// `zfs recv` does not create parents: refuse when the inventory shows an ancestor of
/// the target but not its parent. When it shows none, the inventory does not cover
/// that part of the pool and nothing can be said.
fn check_parent(inv: &Inventory, target: &DatasetName) -> Outcome {
    let Some(parent) = target.parent() else {
        if inv.datasets.keys().any(|d| d.pool() == target.pool()) {
            // A pool whose datasets are listed exists, and its root dataset with it.
            return Ok(());
        }
        return Err(Refusal::PoolMissing {
            target: target.clone(),
        });
    };
    if inv.dataset(&parent).is_some() {
        return Ok(());
    }
    let mut up = parent.parent();
    while let Some(a) = up {
        if inv.dataset(&a).is_some() {
            return Err(Refusal::ParentMissing {
                target: target.clone(),
                parent,
            });
        }
        up = a.parent();
    }
    Ok(())
}

fn check_expected(
    target: &DatasetName,
    intermediates: bool,
    expected: &[SnapshotRef],
    stream: &[Snapshot],
) -> Outcome {
    if !intermediates && expected.is_empty() {
        return Ok(());
    }
    let len = expected.len().max(stream.len());
    for i in 0..len {
        let planned = expected.get(i);
        let actual = stream.get(i);
        let same = match (planned, actual) {
            (Some(p), Some(a)) => p.name == a.name && p.guid == a.guid,
            _ => false,
        };
        if !same {
            return Err(Refusal::ExpectedMismatch {
                target: target.clone(),
                position: i + 1,
                planned: planned.map(|p| p.name.clone()),
                actual: actual.map(|a| a.name.clone()),
            });
        }
    }
    Ok(())
}

/// A deterministic guid for a snapshot created by the simulation: ZFS draws random
/// ones; a hash of the full name and the txg keeps simulations reproducible.
fn fresh_guid(name: &SnapshotName, txg: u64) -> Guid {
    let mut h = Fnv::default();
    h.write(name.to_string().as_bytes());
    h.write(&txg.to_le_bytes());
    Guid(h.0)
}

fn fresh_dataset_guid(name: &DatasetName) -> u64 {
    let mut h = Fnv::default();
    h.write(b"dataset:");
    h.write(name.as_str().as_bytes());
    h.0
}

/// FNV-1a, 64 bits: small, stable across Rust versions (unlike `DefaultHasher`).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
