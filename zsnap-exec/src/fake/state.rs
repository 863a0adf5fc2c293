//! The fake's whole state, serializable as JSON.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zsnap_core::{Bookmark, DatasetKind, DatasetName, Guid, ShortName, SnapshotName};

use super::fault::{Fault, FaultOp};
use super::stream::Section;

/// The version of the JSON layout.
pub(crate) const FORMAT: u32 = 1;

/// One pool: its txg counter, and what `zpool list` and `zpool status` say of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pool {
    /// The next transaction group.
    pub next_txg: u64,
    /// Its state (`ONLINE` unless set).
    #[serde(default)]
    pub health: Option<String>,
    /// Size and allocated bytes (1 TiB, nothing allocated, unless set).
    #[serde(default)]
    pub space: Option<(u64, u64)>,
    /// Checksum errors of its one device.
    #[serde(default)]
    pub cksum_errors: u64,
    /// Permanent data errors.
    #[serde(default)]
    pub data_errors: u64,
}

impl Pool {
    pub(crate) fn new() -> Self {
        Pool {
            next_txg: 1,
            health: None,
            space: None,
            cksum_errors: 0,
            data_errors: 0,
        }
    }
}

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snap {
    pub name: ShortName,
    pub guid: Guid,
    pub createtxg: u64,
    pub creation: DateTime<Utc>,
    #[serde(default)]
    pub holds: BTreeSet<String>,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
}

/// The partial state of an interrupted `zfs receive -s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Partial {
    /// What `receive_resume_token` shows.
    pub token: String,
    /// The section being received (its header).
    pub section: Section,
    /// Payload bytes received so far.
    pub bytes: u64,
}

/// One filesystem or volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ds {
    pub kind: DatasetKind,
    pub guid: Guid,
    pub createtxg: u64,
    pub creation: DateTime<Utc>,
    /// `None` when not encrypted.
    pub encryption: Option<String>,
    /// Whether the key is loaded (encrypted datasets only).
    pub key_loaded: bool,
    pub origin: Option<SnapshotName>,
    /// Written to since the newest snapshot.
    pub dirty: bool,
    /// Created by an interrupted full receive: no snapshot yet, not usable.
    pub inconsistent: bool,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    #[serde(default)]
    pub snapshots: Vec<Snap>,
    #[serde(default)]
    pub bookmarks: Vec<Bookmark>,
    pub partial: Option<Partial>,
}

impl Ds {
    pub(crate) fn snapshot(&self, name: &ShortName) -> Option<&Snap> {
        self.snapshots.iter().find(|s| &s.name == name)
    }

    pub(crate) fn snapshot_mut(&mut self, name: &ShortName) -> Option<&mut Snap> {
        self.snapshots.iter_mut().find(|s| &s.name == name)
    }
}

/// Everything the fake knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub format: u32,
    /// The injected clock.
    pub now: DateTime<Utc>,
    /// The guid generator's state (splitmix64).
    pub rng: u64,
    /// Bytes of payload per snapshot in a full stream (incrementals carry a quarter).
    pub section_bytes: u64,
    pub pools: BTreeMap<String, Pool>,
    pub datasets: BTreeMap<DatasetName, Ds>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub calls: BTreeMap<FaultOp, u64>,
    /// Every snapshot ever destroyed, in order.
    #[serde(default)]
    pub destroyed: Vec<(SnapshotName, Guid)>,
}

impl State {
    pub(crate) fn new(seed: u64, now: DateTime<Utc>) -> Self {
        State {
            format: FORMAT,
            now,
            rng: seed,
            section_bytes: 64 * 1024,
            pools: BTreeMap::new(),
            datasets: BTreeMap::new(),
            faults: Vec::new(),
            calls: BTreeMap::new(),
            destroyed: Vec::new(),
        }
    }

    /// A fresh non-zero guid, unique in the fake.
    pub(crate) fn guid(&mut self) -> Guid {
        loop {
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            if z != 0 && !self.guid_in_use(Guid(z)) {
                return Guid(z);
            }
        }
    }

    fn guid_in_use(&self, g: Guid) -> bool {
        self.datasets
            .values()
            .any(|d| d.guid == g || d.snapshots.iter().any(|s| s.guid == g))
    }

    /// Takes the next txg of `pool`.
    pub(crate) fn txg(&mut self, pool: &str) -> u64 {
        let p = self.pools.entry(pool.to_owned()).or_insert_with(Pool::new);
        let t = p.next_txg;
        p.next_txg += 1;
        t
    }

    /// Datasets cloned from this snapshot.
    pub(crate) fn clones_of(&self, snap: &SnapshotName) -> Vec<DatasetName> {
        self.datasets
            .iter()
            .filter(|(_, d)| d.origin.as_ref() == Some(snap))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A user property of a dataset, or inherited from an ancestor.
    pub(crate) fn inherited(&self, ds: &DatasetName, name: &str) -> Option<String> {
        let mut cur = Some(ds.clone());
        while let Some(n) = cur {
            if let Some(v) = self.datasets.get(&n).and_then(|d| d.props.get(name)) {
                return Some(v.clone());
            }
            cur = n.parent();
        }
        None
    }

    /// Counts a call of `op` and returns the fault planned for it, if any.
    pub(crate) fn tick(&mut self, op: FaultOp) -> Option<Fault> {
        let n = self.calls.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        self.faults
            .iter()
            .find(|f| f.op == op && f.nth == n)
            .cloned()
    }
}
