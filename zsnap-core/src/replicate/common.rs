//! What a source and a target dataset have in common, by guid.
//!
//! Identity is the guid (names can be renamed), order is the createtxg order of each
//! side's listing. Every lookup here goes through a `HashMap` keyed by guid, so
//! comparing two datasets of `n` snapshots costs `O(n)`, not `O(n²)` (65,000 snapshots
//! in a few milliseconds).

use std::collections::{BTreeMap, HashMap};

use crate::inventory::{Bookmark, Dataset, Guid, Inventory, Snapshot};
use crate::replicate::DatasetMapping;
use crate::zfs_names::DatasetName;

/// A snapshot both sides have: the same guid on the source and on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommonSnapshot<'a> {
    /// The source's snapshot.
    pub source: &'a Snapshot,
    /// The target's snapshot of the same guid (its name may differ).
    pub target: &'a Snapshot,
}

/// The base an incremental send to a target can start from: the newest target snapshot
/// whose guid the source still has, as a snapshot or, when the source destroyed the
/// snapshot, as a bookmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::exhaustive_enums,
    reason = "an incremental send starts from exactly a snapshot or a bookmark"
)]
pub enum CommonBase<'a> {
    /// The source still has the snapshot.
    Snapshot {
        /// The source's snapshot.
        source: &'a Snapshot,
        /// The target's snapshot of the same guid.
        target: &'a Snapshot,
    },
    /// The source only has a bookmark of it.
    Bookmark {
        /// The source's bookmark.
        source: &'a Bookmark,
        /// The target's snapshot of the same guid.
        target: &'a Snapshot,
    },
}

impl<'a> CommonBase<'a> {
    /// The guid both sides share.
    pub fn guid(&self) -> Guid {
        self.target().guid
    }

    /// The target's snapshot: the one target pruning must never destroy.
    pub fn target(&self) -> &'a Snapshot {
        match self {
            CommonBase::Snapshot { target, .. } | CommonBase::Bookmark { target, .. } => target,
        }
    }

    /// The source's snapshot, when the source still has it as a snapshot.
    pub fn source_snapshot(&self) -> Option<&'a Snapshot> {
        match self {
            CommonBase::Snapshot { source, .. } => Some(source),
            CommonBase::Bookmark { .. } => None,
        }
    }
}

/// Index of a dataset's snapshots by guid.
pub(crate) fn snapshot_index(ds: &Dataset) -> HashMap<Guid, usize> {
    let mut map = HashMap::with_capacity(ds.snapshots.len());
    for (i, s) in ds.snapshots.iter().enumerate() {
        map.entry(s.guid).or_insert(i);
    }
    map
}

/// Index of a dataset's bookmarks by guid (the newest bookmark wins when several share
/// one guid; any of them is an equally good base).
pub(crate) fn bookmark_index(ds: &Dataset) -> HashMap<Guid, usize> {
    let mut map = HashMap::with_capacity(ds.bookmarks.len());
    for (i, b) in ds.bookmarks.iter().enumerate() {
        map.insert(b.guid, i);
    }
    map
}

/// The snapshots of `source` that `target` has too (same guid), oldest first in the
/// source's createtxg order.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::replicate::common_snapshots;
/// use zsnap_core::{Dataset, DatasetKind, Guid, Snapshot};
///
/// let t = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
/// let snap = |n: &str, g, txg| Snapshot::new(n.parse().unwrap(), Guid(g), txg, t);
/// let mut src = Dataset::new("tank/a".parse().unwrap(), DatasetKind::Filesystem, Guid(1));
/// src.snapshots = vec![snap("a", 10, 1), snap("b", 11, 2), snap("c", 12, 3)];
/// let mut dst = Dataset::new("backup/a".parse().unwrap(), DatasetKind::Filesystem, Guid(2));
/// // renamed on the target: still the same snapshot, because the guid is the same
/// dst.snapshots = vec![snap("a", 10, 7), snap("b-renamed", 11, 8)];
///
/// let common = common_snapshots(&src, &dst);
/// let names: Vec<_> = common.iter().map(|c| c.target.name.as_str()).collect();
/// assert_eq!(names, ["a", "b-renamed"]);
/// ```
pub fn common_snapshots<'a>(source: &'a Dataset, target: &'a Dataset) -> Vec<CommonSnapshot<'a>> {
    let on_target = snapshot_index(target);
    source
        .snapshots
        .iter()
        .filter_map(|s| {
            on_target.get(&s.guid).map(|&i| CommonSnapshot {
                source: s,
                target: &target.snapshots[i],
            })
        })
        .collect()
}

/// The newest snapshot of `target` (in the target's createtxg order) whose guid the
/// source has as a snapshot or, failing that, as a bookmark: the base of the next
/// incremental send, and the snapshot target-side pruning must keep.
///
/// Every target snapshot newer than the returned one is unknown to the source, i.e. the
/// target has diverged (see [`crate::replicate::ReplicationError::Diverged`]).
///
/// For source-side pruning, protect [`CommonBase::source_snapshot`]: when the base is
/// only a bookmark on the source, no source snapshot needs protecting for this target.
pub fn newest_common<'a>(source: &'a Dataset, target: &'a Dataset) -> Option<CommonBase<'a>> {
    newest_common_in(
        source,
        &snapshot_index(source),
        &bookmark_index(source),
        target.snapshots.iter(),
    )
}

/// [`newest_common`] over any list of target snapshots (oldest first), with the source's
/// indexes built once by the caller.
pub(crate) fn newest_common_in<'a, I>(
    source: &'a Dataset,
    snaps: &HashMap<Guid, usize>,
    bookmarks: &HashMap<Guid, usize>,
    target: I,
) -> Option<CommonBase<'a>>
where
    I: DoubleEndedIterator<Item = &'a Snapshot>,
{
    for t in target.rev() {
        if let Some(&i) = snaps.get(&t.guid) {
            return Some(CommonBase::Snapshot {
                source: &source.snapshots[i],
                target: t,
            });
        }
        if let Some(&i) = bookmarks.get(&t.guid) {
            return Some(CommonBase::Bookmark {
                source: &source.bookmarks[i],
                target: t,
            });
        }
    }
    None
}

/// One target of the datasets being pruned, as source-side pruning sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TargetSide<'a> {
    /// The target's name, for reasons and notes.
    pub name: &'a str,
    /// Which source datasets it receives, and under which names.
    pub mapping: &'a DatasetMapping,
    /// What it has; `None` when its listing failed.
    pub inventory: Option<&'a Inventory>,
}

impl<'a> TargetSide<'a> {
    /// A target side.
    pub fn new(
        name: &'a str,
        mapping: &'a DatasetMapping,
        inventory: Option<&'a Inventory>,
    ) -> Self {
        TargetSide {
            name,
            mapping,
            inventory,
        }
    }
}

/// What the targets of a location's datasets need kept there: give
/// [`common`](Self::common) to [`PruneRequest::with_protected`](crate::prune::PruneRequest::with_protected)
/// and [`unknown`](Self::unknown) to
/// [`PruneRequest::with_unknown_base`](crate::prune::PruneRequest::with_unknown_base).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TargetProtection {
    /// Per source dataset, the snapshot each target's next incremental starts from:
    /// `(target, guid)` ([`newest_common`]'s source snapshot; none when the base is
    /// only a bookmark on the source, which serves as well).
    pub common: BTreeMap<DatasetName, Vec<(String, Guid)>>,
    /// Source datasets that replicate to a target whose listing failed, with the
    /// first such target: none of their snapshots is destroyed.
    pub unknown: BTreeMap<DatasetName, String>,
    /// Per source dataset, every listed target that receives it: `(target,
    /// createtxg)`, the source createtxg of the newest snapshot or bookmark it shares
    /// with the target (by guid), `None` when the target has nothing of it yet. What
    /// the keep rule `not replicated to T` needs: give it to
    /// [`PruneRequest::with_received`](crate::prune::PruneRequest::with_received).
    pub received: BTreeMap<DatasetName, Vec<(String, Option<u64>)>>,
}

impl TargetProtection {
    /// What `targets` need of the datasets of `source`. One pass over each target's
    /// datasets, `O(n)` in the snapshots of each pair (by guid).
    ///
    /// # Example
    /// ```
    /// use zsnap_core::replicate::{TargetProtection, TargetSide};
    /// use zsnap_core::{Dataset, DatasetKind, DatasetMapping, Guid, Inventory, Snapshot};
    /// let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    /// let snap = |n: &str, g, txg| Snapshot::new(n.parse().unwrap(), Guid(g), txg, t);
    /// let mut src = Dataset::new("tank/a".parse().unwrap(), DatasetKind::Filesystem, Guid(1));
    /// src.snapshots = vec![snap("s1", 11, 1), snap("s2", 12, 2), snap("s3", 13, 3)];
    /// let mut dst = Dataset::new("bak/a".parse().unwrap(), DatasetKind::Filesystem, Guid(2));
    /// dst.snapshots = vec![snap("s1", 11, 7), snap("s2", 12, 8)];
    /// let (mut source, mut target) = (Inventory::new(), Inventory::new());
    /// source.insert(src);
    /// target.insert(dst);
    /// let mapping = DatasetMapping::new("tank/a".parse().unwrap(), "bak/a".parse().unwrap());
    /// let p = TargetProtection::of(&source, &[TargetSide::new("bak", &mapping, Some(&target))]);
    /// assert_eq!(p.common[&"tank/a".parse().unwrap()], [("bak".to_owned(), Guid(12))]);
    /// // s3 (createtxg 3) is newer than what bak shares: createtxg 2.
    /// assert_eq!(p.received[&"tank/a".parse().unwrap()], [("bak".to_owned(), Some(2))]);
    /// let p = TargetProtection::of(&source, &[TargetSide::new("bak", &mapping, None)]);
    /// assert_eq!(p.unknown[&"tank/a".parse().unwrap()], "bak");
    /// ```
    pub fn of(source: &Inventory, targets: &[TargetSide<'_>]) -> Self {
        let mut out = TargetProtection::default();
        for t in targets {
            for ds in source.datasets.values() {
                let Ok(Some(tname)) = t.mapping.target_of(&ds.name) else {
                    continue;
                };
                let Some(inventory) = t.inventory else {
                    out.unknown
                        .entry(ds.name.clone())
                        .or_insert_with(|| t.name.to_owned());
                    continue;
                };
                let received = out.received.entry(ds.name.clone()).or_default();
                let Some(tds) = inventory.dataset(&tname) else {
                    received.push((t.name.to_owned(), None));
                    continue;
                };
                let base = newest_common(ds, tds);
                received.push((
                    t.name.to_owned(),
                    base.map(|b| match b {
                        CommonBase::Snapshot { source, .. } => source.createtxg,
                        CommonBase::Bookmark { source, .. } => source.createtxg,
                    }),
                ));
                if let Some(s) = base.and_then(|b| b.source_snapshot()) {
                    out.common
                        .entry(ds.name.clone())
                        .or_default()
                        .push((t.name.to_owned(), s.guid));
                }
            }
        }
        out
    }
}
