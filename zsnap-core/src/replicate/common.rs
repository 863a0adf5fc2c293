//! What a source and a target dataset have in common, by guid.
//!
//! Identity is the guid (names can be renamed), order is the createtxg order of each
//! side's listing. Every lookup here goes through a `HashMap` keyed by guid, so
//! comparing two datasets of `n` snapshots costs `O(n)`, not `O(n²)` (65,000 snapshots
//! in a few milliseconds).

use std::collections::HashMap;

use crate::inventory::{Bookmark, Dataset, Guid, Snapshot};

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
