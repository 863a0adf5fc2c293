//! What exists at one location: datasets, their snapshots and bookmarks.
//!
//! Invariants, upheld by every constructor in this crate and checked by
//! [`Inventory::validate`]:
//! - the snapshots of a [`Dataset`] are ordered by `createtxg` (ties, which happen when
//!   one `zfs snapshot` call created several, keep the listing's order) and unique by
//!   guid and by name within the dataset;
//! - bookmarks are ordered by `createtxg` and unique by name.
//!
//! An inventory is built from one `zfs list` (see [`crate::zfs_list`]) and is a plain
//! serde value, so it can be saved, diffed and fed to the planners offline.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::zfs_names::{BookmarkName, DatasetName, ShortName, SnapshotName};

/// The user property zsnap sets on every snapshot it creates.
///
/// Only snapshots carrying it (or adopted by an explicit pattern in a policy) are ever
/// pruned.
pub const MANAGED_PROPERTY: &str = "zsnap:managed";

/// The user property holding when a snapshot expires, set when it is taken with an
/// expiry (`zsnap snapshot --label L --expire-in 30d`): a UTC time in RFC 3339 form,
/// such as `2026-12-31T02:05:00Z`. Until then no rule destroys the snapshot; after
/// it, an on-demand snapshot no rule keeps is destroyed.
pub const EXPIRES_PROPERTY: &str = "zsnap:expires";

/// `t` as [`EXPIRES_PROPERTY`] holds it, and as plans print times in reasons:
/// RFC 3339 in UTC, to the second (`2026-12-31T02:05:00Z`).
pub(crate) fn utc_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A ZFS guid: the identity of a snapshot across pools (names can be renamed, guids not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Guid(pub u64);

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Filesystem or volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[expect(
    clippy::exhaustive_enums,
    reason = "ZFS has exactly these two kinds of dataset that carry snapshots"
)]
pub enum DatasetKind {
    /// A mountable filesystem.
    Filesystem,
    /// A block device.
    Volume,
}

/// The properties of a dataset that zsnap's decisions depend on. Unset (`-`) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DatasetProps {
    /// Token left by an interrupted `zfs recv -s`; resume with `zfs send -t`.
    pub receive_resume_token: Option<String>,
    /// `encryption` (`off`, `aes-256-gcm`, …); `None` when unknown.
    pub encryption: Option<String>,
    /// `keystatus` (`available`, `unavailable`) of an encrypted dataset.
    pub keystatus: Option<String>,
    /// `mountpoint` of a filesystem.
    pub mountpoint: Option<String>,
    /// `origin` snapshot of a clone.
    pub origin: Option<SnapshotName>,
    /// `used` in bytes.
    pub used: Option<u64>,
}

impl DatasetProps {
    /// Whether the dataset is encrypted, i.e. sends of it must be raw.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.encryption.as_deref(), Some(e) if e != "off")
    }
}

/// One snapshot as `zfs list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The part after `@`.
    pub name: ShortName,
    /// Identity across pools.
    pub guid: Guid,
    /// Transaction group that created it: the order of snapshots.
    pub createtxg: u64,
    /// Creation time (one-second resolution: several snapshots may share one).
    pub creation: DateTime<Utc>,
    /// Number of user holds (`userrefs`); a held snapshot cannot be destroyed.
    pub userrefs: u64,
    /// Clones of this snapshot; a snapshot with clones cannot be destroyed.
    pub clones: Vec<DatasetName>,
    /// Clones zfs keeps hidden, verbatim: names whose last component starts with `%`,
    /// such as the `DATASET/%recv` that an interrupted resumable `zfs recv -s` of an
    /// incremental stream leaves on its base snapshot. They pin the snapshot like
    /// [`clones`](Self::clones), but are not dataset names zsnap may act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden_clones: Vec<String>,
    /// Value of [`MANAGED_PROPERTY`], if set.
    pub managed: Option<String>,
    /// Value of [`EXPIRES_PROPERTY`], if set (verbatim; see [`Snapshot::expiry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `used` in bytes, when listed.
    pub used: Option<u64>,
}

impl Snapshot {
    /// A snapshot with no holds, clones or properties.
    pub fn new(name: ShortName, guid: Guid, createtxg: u64, creation: DateTime<Utc>) -> Self {
        Snapshot {
            name,
            guid,
            createtxg,
            creation,
            userrefs: 0,
            clones: Vec::new(),
            hidden_clones: Vec::new(),
            managed: None,
            expires: None,
            used: None,
        }
    }

    /// When it expires: `None` without [`EXPIRES_PROPERTY`], `Some(Err(value))` when the
    /// value is not an RFC 3339 time.
    pub fn expiry(&self) -> Option<Result<DateTime<Utc>, &str>> {
        let v = self.expires.as_deref()?;
        Some(
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| v),
        )
    }

    /// Whether ZFS would refuse to destroy it right now (held or cloned).
    pub fn is_pinned(&self) -> bool {
        self.userrefs > 0 || !self.clones.is_empty() || !self.hidden_clones.is_empty()
    }
}

/// One bookmark: a snapshot's guid and txg that outlive the snapshot, usable as the
/// base of an incremental send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bookmark {
    /// The part after `#`.
    pub name: ShortName,
    /// The guid of the snapshot it was made from.
    pub guid: Guid,
    /// The txg of the snapshot it was made from.
    pub createtxg: u64,
    /// The creation time of the snapshot it was made from.
    pub creation: DateTime<Utc>,
}

impl Bookmark {
    /// A bookmark.
    pub fn new(name: ShortName, guid: Guid, createtxg: u64, creation: DateTime<Utc>) -> Self {
        Bookmark {
            name,
            guid,
            createtxg,
            creation,
        }
    }
}

/// A filesystem or volume with its snapshots and bookmarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dataset {
    /// Full name.
    pub name: DatasetName,
    /// Filesystem or volume.
    pub kind: DatasetKind,
    /// The dataset's own guid.
    pub guid: Guid,
    /// Properties zsnap reads.
    pub props: DatasetProps,
    /// Snapshots ordered by createtxg.
    pub snapshots: Vec<Snapshot>,
    /// Bookmarks ordered by createtxg.
    pub bookmarks: Vec<Bookmark>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new(name: DatasetName, kind: DatasetKind, guid: Guid) -> Self {
        Dataset {
            name,
            kind,
            guid,
            props: DatasetProps::default(),
            snapshots: Vec::new(),
            bookmarks: Vec::new(),
        }
    }

    /// The snapshot with this short name.
    pub fn snapshot(&self, name: &ShortName) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| &s.name == name)
    }

    /// The snapshot with this guid.
    pub fn snapshot_by_guid(&self, guid: Guid) -> Option<&Snapshot> {
        self.snapshots.iter().find(|s| s.guid == guid)
    }

    /// The newest snapshot (highest createtxg; the last listed among equals).
    pub fn newest(&self) -> Option<&Snapshot> {
        self.snapshots.last()
    }

    /// The full name of one of its snapshots.
    pub fn snapshot_name(&self, snap: &Snapshot) -> SnapshotName {
        self.name.snapshot(&snap.name)
    }

    /// The full name of one of its bookmarks.
    pub fn bookmark_name(&self, b: &Bookmark) -> BookmarkName {
        BookmarkName::new(self.name.clone(), b.name.clone())
            .expect("a listed bookmark name was valid and so within the length limit")
    }

    /// Inserts a snapshot at its createtxg position (after existing equals).
    pub fn insert_snapshot(&mut self, snap: Snapshot) {
        let at = self
            .snapshots
            .partition_point(|s| s.createtxg <= snap.createtxg);
        self.snapshots.insert(at, snap);
    }

    /// Inserts a bookmark at its createtxg position.
    pub fn insert_bookmark(&mut self, b: Bookmark) {
        let at = self
            .bookmarks
            .partition_point(|x| x.createtxg <= b.createtxg);
        self.bookmarks.insert(at, b);
    }
}

/// Everything under the listed roots at one location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Inventory {
    /// Datasets by name.
    pub datasets: BTreeMap<DatasetName, Dataset>,
}

/// An inventory that breaks one of the invariants in the module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// Two snapshots of one dataset share a guid.
    #[error("dataset {dataset}: snapshots {first} and {second} share guid {guid}")]
    DuplicateGuid {
        /// Dataset.
        dataset: DatasetName,
        /// First snapshot.
        first: ShortName,
        /// Second snapshot.
        second: ShortName,
        /// The shared guid.
        guid: Guid,
    },
    /// Two snapshots or two bookmarks of one dataset share a name.
    #[error("dataset {dataset}: {name} is listed twice")]
    DuplicateName {
        /// Dataset.
        dataset: DatasetName,
        /// The name listed twice.
        name: ShortName,
    },
    /// Snapshots or bookmarks are not ordered by createtxg.
    #[error("dataset {dataset}: {name} (createtxg {createtxg}) is listed after a later one")]
    Order {
        /// Dataset.
        dataset: DatasetName,
        /// The first item out of order.
        name: ShortName,
        /// Its createtxg.
        createtxg: u64,
    },
    /// The map key and the dataset's own name disagree.
    #[error("dataset listed under {key} is named {name}")]
    KeyMismatch {
        /// Key in the map.
        key: DatasetName,
        /// The dataset's name.
        name: DatasetName,
    },
}

impl Inventory {
    /// An empty inventory.
    pub const fn new() -> Self {
        Inventory {
            datasets: BTreeMap::new(),
        }
    }

    /// The dataset of this name.
    pub fn dataset(&self, name: &DatasetName) -> Option<&Dataset> {
        self.datasets.get(name)
    }

    /// The dataset of this name, mutably.
    pub fn dataset_mut(&mut self, name: &DatasetName) -> Option<&mut Dataset> {
        self.datasets.get_mut(name)
    }

    /// Adds or replaces a dataset.
    pub fn insert(&mut self, ds: Dataset) {
        self.datasets.insert(ds.name.clone(), ds);
    }

    /// The snapshot of this full name.
    pub fn snapshot(&self, name: &SnapshotName) -> Option<&Snapshot> {
        self.datasets.get(name.dataset())?.snapshot(name.short())
    }

    /// Number of snapshots in all datasets.
    pub fn snapshot_count(&self) -> usize {
        self.datasets.values().map(|d| d.snapshots.len()).sum()
    }

    /// `root` and every dataset below it, in name order.
    pub fn subtree<'a>(&'a self, root: &'a DatasetName) -> impl Iterator<Item = &'a Dataset> + 'a {
        self.datasets
            .range(root.clone()..)
            .map(|(_, d)| d)
            .take_while(move |d| d.name.as_str().starts_with(root.as_str()))
            .filter(move |d| root.contains(&d.name))
    }

    /// Checks the invariants in the module docs.
    ///
    /// # Errors
    /// The first broken invariant.
    pub fn validate(&self) -> Result<(), InventoryError> {
        for (key, ds) in &self.datasets {
            if key != &ds.name {
                return Err(InventoryError::KeyMismatch {
                    key: key.clone(),
                    name: ds.name.clone(),
                });
            }
            let mut by_guid: std::collections::HashMap<Guid, &ShortName> =
                std::collections::HashMap::with_capacity(ds.snapshots.len());
            let mut names = std::collections::HashSet::with_capacity(ds.snapshots.len());
            let mut last = 0;
            for s in &ds.snapshots {
                if s.createtxg < last {
                    return Err(InventoryError::Order {
                        dataset: ds.name.clone(),
                        name: s.name.clone(),
                        createtxg: s.createtxg,
                    });
                }
                last = s.createtxg;
                if let Some(first) = by_guid.insert(s.guid, &s.name) {
                    return Err(InventoryError::DuplicateGuid {
                        dataset: ds.name.clone(),
                        first: first.clone(),
                        second: s.name.clone(),
                        guid: s.guid,
                    });
                }
                if !names.insert(&s.name) {
                    return Err(InventoryError::DuplicateName {
                        dataset: ds.name.clone(),
                        name: s.name.clone(),
                    });
                }
            }
            let mut names = std::collections::HashSet::with_capacity(ds.bookmarks.len());
            let mut last = 0;
            for b in &ds.bookmarks {
                if b.createtxg < last {
                    return Err(InventoryError::Order {
                        dataset: ds.name.clone(),
                        name: b.name.clone(),
                        createtxg: b.createtxg,
                    });
                }
                last = b.createtxg;
                if !names.insert(&b.name) {
                    return Err(InventoryError::DuplicateName {
                        dataset: ds.name.clone(),
                        name: b.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}
