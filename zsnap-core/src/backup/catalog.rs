//! The catalog: what a store holds, read from its listing and its sidecars.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::marker::{PendingDeletion, STORE_MARKER_KEY};
use super::sidecar::Sidecar;
use super::stream::{StreamName, StreamNameError, SIDECAR_SUFFIX};
use crate::inventory::{Dataset, Guid};
use crate::plan::SendBase;
use crate::zfs_names::{DatasetName, ShortName};

/// One object of a store's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreObject {
    /// Its key below the store's root.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: DateTime<Utc>,
}

impl StoreObject {
    /// An object.
    pub fn new(key: impl Into<String>, size: u64, modified: DateTime<Utc>) -> Self {
        StoreObject {
            key: key.into(),
            size,
            modified,
        }
    }
}

/// The identity of one backup: its stream object's key (see [`StreamName`]), which is
/// unique in a store and never changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BackupId(String);

impl BackupId {
    /// The id (the stream key) as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&StreamName> for BackupId {
    fn from(name: &StreamName) -> Self {
        BackupId(name.key())
    }
}

impl FromStr for BackupId {
    type Err = StreamNameError;
    fn from_str(s: &str) -> Result<Self, StreamNameError> {
        let name: StreamName = s.parse()?;
        Ok(BackupId::from(&name))
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a stored stream is a usable backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryState {
    /// Its sidecar exists, parses, describes this stream and gives its listed size.
    Complete,
    /// It has no sidecar: an upload that did not finish (or is still running).
    /// Retention removes it once it is old enough.
    Unfinished,
    /// It has a sidecar that cannot be used (unreadable, invalid, from a newer zsnap,
    /// describing another stream, or giving another size). Never removed
    /// automatically: a person should look at it.
    Damaged {
        /// What is wrong, as a message.
        problem: String,
    },
    /// Its sidecar is in the store but its stream object is not: a backup the store
    /// records was lost (deleted or never fully copied by something else than zsnap).
    /// Never removed automatically, and a restore never silently goes back past it.
    Missing,
}

/// How a complete backup is restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "link", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Link {
    /// It is a full stream: restored on its own.
    Full,
    /// It is an incremental received after the backup `id`, which recreates its parent
    /// (same guid) and is itself restorable.
    Parent {
        /// The backup it is restored after.
        id: BackupId,
    },
    /// It is an incremental, and no restorable backup of this dataset recreates its
    /// parent: a broken chain.
    Broken {
        /// The parent's name, as the sidecar gives it.
        parent: ShortName,
        /// The guid no restorable backup has.
        guid: Guid,
    },
}

/// One stream object of a store and what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BackupEntry {
    /// Its identity (the stream key).
    pub id: BackupId,
    /// Its name, parsed.
    pub stream: StreamName,
    /// Listed size of the stream object.
    pub size: u64,
    /// When the stream object was last written.
    pub modified: DateTime<Utc>,
    /// Whether a sidecar object is listed beside it (even an unusable one).
    pub sidecar_listed: bool,
    /// The parsed sidecar, when it is usable.
    pub sidecar: Option<Sidecar>,
    /// Complete, unfinished or damaged.
    pub state: EntryState,
    /// For a complete backup: how it is restored.
    pub link: Option<Link>,
    /// For a restorable backup: how many streams a restore receives (1 for a full).
    pub chain_len: Option<usize>,
}

impl BackupEntry {
    /// The key of the stream object.
    pub fn key(&self) -> &str {
        self.id.as_str()
    }

    /// The key of its sidecar object.
    pub fn sidecar_key(&self) -> String {
        format!("{}{SIDECAR_SUFFIX}", self.id)
    }

    /// Whether it is a complete backup.
    pub fn is_complete(&self) -> bool {
        self.state == EntryState::Complete
    }

    /// Whether it can be restored: complete, and a full or an incremental whose chain
    /// reaches a full.
    pub fn is_restorable(&self) -> bool {
        matches!(self.link, Some(Link::Full | Link::Parent { .. }))
    }

    /// The snapshot's guid, from the sidecar.
    pub fn guid(&self) -> Option<Guid> {
        self.sidecar.as_ref().map(|s| s.guid)
    }

    /// The snapshot's createtxg, from the sidecar.
    pub fn createtxg(&self) -> Option<u64> {
        self.sidecar.as_ref().map(|s| s.createtxg)
    }
}

/// A chain: a full backup and every backup restored through it, by createtxg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Chain {
    /// The full backup at its root.
    pub full: BackupId,
    /// The full, then every restorable backup whose restore starts from it, oldest
    /// first.
    pub members: Vec<BackupId>,
}

/// The backups of one dataset in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DatasetBackups {
    /// The dataset.
    pub dataset: DatasetName,
    /// Every stream object of the dataset, ordered by key (that is, by snapshot time).
    pub entries: Vec<BackupEntry>,
}

impl DatasetBackups {
    /// The entry with this id.
    pub fn entry(&self, id: &BackupId) -> Option<&BackupEntry> {
        self.position(id).map(|i| &self.entries[i])
    }

    pub(crate) fn position(&self, id: &BackupId) -> Option<usize> {
        self.entries
            .binary_search_by(|e| e.id.as_str().cmp(id.as_str()))
            .ok()
    }

    /// The chains, ordered by their full's createtxg.
    pub fn chains(&self) -> Vec<Chain> {
        let mut roots: BTreeMap<(u64, usize), Vec<usize>> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !e.is_restorable() {
                continue;
            }
            let path = self.restore_path(i);
            let root = path[0];
            let txg = self.entries[root].createtxg().unwrap_or(0);
            roots.entry((txg, root)).or_default().push(i);
        }
        roots
            .into_iter()
            .map(|((_, root), mut members)| {
                members.sort_by_key(|&i| (self.entries[i].createtxg(), i != root, i));
                Chain {
                    full: self.entries[root].id.clone(),
                    members: members
                        .into_iter()
                        .map(|i| self.entries[i].id.clone())
                        .collect(),
                }
            })
            .collect()
    }

    /// The complete backups that cannot be restored (broken chains), by key.
    pub fn broken(&self) -> impl Iterator<Item = &BackupEntry> {
        self.entries
            .iter()
            .filter(|e| matches!(e.link, Some(Link::Broken { .. })))
    }

    /// The indices of the entries a restore of entry `i` receives, full first. Empty
    /// when `i` is not restorable.
    pub(crate) fn restore_path(&self, i: usize) -> Vec<usize> {
        let mut path = Vec::new();
        let mut at = Some(i);
        while let Some(j) = at {
            match &self.entries[j].link {
                Some(Link::Full) => {
                    path.push(j);
                    at = None;
                }
                Some(Link::Parent { id }) => {
                    path.push(j);
                    at = self.position(id);
                    if at.is_none() {
                        return Vec::new();
                    }
                }
                _ => return Vec::new(),
            }
        }
        path.reverse();
        path
    }
}

/// Everything in one store, by dataset.
///
/// Built by [`Catalog::build`] from a listing and the sidecars' bytes; a pure value
/// that the listing, verify, prune, delete and restore decisions read.
///
/// Invariants: the entries of a dataset are ordered by key (time order); a backup is
/// linked to its parent **by guid** (an incremental's `parent.guid` is the guid of an
/// earlier restorable backup of the same dataset, earlier meaning a lower createtxg),
/// never by name; when several backups recreate the parent, the one with the shortest
/// chain is chosen (then the lowest key), so every restore receives as few streams as
/// the store allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Catalog {
    /// Backups by dataset.
    pub datasets: BTreeMap<DatasetName, DatasetBackups>,
    /// Sidecar keys whose stream object is gone and that a pending deletion names (a
    /// prune or delete that stopped between the stream and its sidecar); the next
    /// prune finishes them. A sidecar without stream that no pending deletion names is
    /// an entry in [`EntryState::Missing`] instead.
    pub orphan_sidecars: Vec<String>,
    /// The keys of the [`super::PendingDeletion`] records in the store.
    pub pending: Vec<String>,
    /// Keys zsnap did not write; never touched.
    pub foreign: Vec<String>,
}

/// A backed-up snapshot the source still has, to send the next incremental from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupBase {
    /// The backup that recreates it.
    pub id: BackupId,
    /// Its snapshot (or bookmark) on the source, with its guid.
    pub base: SendBase,
    /// Its createtxg on the source.
    pub createtxg: u64,
}

/// The message of an error and of all its causes, joined by `: `.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// How a complete backup is restored, by index into the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    Full,
    Parent(usize),
    Broken,
}

/// Links the complete entries that are not `gone`: see [`Catalog`]'s invariants. Gives
/// for each entry its link and its chain length (0 when broken), `None` when it is not
/// complete or gone.
pub(crate) fn resolve(entries: &[BackupEntry], gone: &[bool]) -> Vec<Option<(Resolved, usize)>> {
    let sidecar = |i: usize| -> &Sidecar {
        entries[i]
            .sidecar
            .as_ref()
            .expect("only complete entries, which have a sidecar, are linked")
    };
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| !gone[i] && entries[i].is_complete() && entries[i].sidecar.is_some())
        .collect();
    order.sort_by_key(|&i| (sidecar(i).createtxg, i));
    let mut best: HashMap<Guid, (usize, usize)> = HashMap::new();
    let mut out: Vec<Option<(Resolved, usize)>> = vec![None; entries.len()];
    let mut start = 0;
    while start < order.len() {
        let txg = sidecar(order[start]).createtxg;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| sidecar(i).createtxg == txg)
                .count();
        // A parent must have a strictly lower createtxg: link the whole group against
        // the backups before it, then offer the group as parents.
        for &i in &order[start..end] {
            out[i] = Some(match &sidecar(i).parent {
                None => (Resolved::Full, 1),
                Some(p) => match best.get(&p.guid) {
                    Some(&(len, j)) => (Resolved::Parent(j), len + 1),
                    None => (Resolved::Broken, 0),
                },
            });
        }
        for &i in &order[start..end] {
            if let Some((r, len)) = out[i] {
                if r != Resolved::Broken {
                    let slot = best.entry(sidecar(i).guid).or_insert((len, i));
                    if len < slot.0 {
                        *slot = (len, i);
                    }
                }
            }
        }
        start = end;
    }
    out
}

fn link_entries(entries: &mut [BackupEntry]) {
    let gone = vec![false; entries.len()];
    let resolved = resolve(entries, &gone);
    let ids: Vec<BackupId> = entries.iter().map(|e| e.id.clone()).collect();
    for (e, r) in entries.iter_mut().zip(resolved) {
        (e.link, e.chain_len) = match r {
            None => (None, None),
            Some((Resolved::Full, len)) => (Some(Link::Full), Some(len)),
            Some((Resolved::Parent(j), len)) => {
                (Some(Link::Parent { id: ids[j].clone() }), Some(len))
            }
            Some((Resolved::Broken, _)) => {
                let p = e
                    .sidecar
                    .as_ref()
                    .and_then(|s| s.parent.as_ref())
                    .expect("only an incremental, which has a parent, can be broken");
                (
                    Some(Link::Broken {
                        parent: p.snapshot.clone(),
                        guid: p.guid,
                    }),
                    None,
                )
            }
        };
    }
}

fn judge(name: &StreamName, size: u64, sidecar: Option<&[u8]>) -> (Option<Sidecar>, EntryState) {
    let Some(bytes) = sidecar else {
        let problem = "its sidecar is listed but was not read".to_owned();
        return (None, EntryState::Damaged { problem });
    };
    let sc = match Sidecar::parse(bytes) {
        Ok(sc) => sc,
        Err(e) => {
            let problem = format!("unusable sidecar: {}", error_chain(&e));
            return (None, EntryState::Damaged { problem });
        }
    };
    if let Err(e) = sc.check_stream(name) {
        let problem = format!("unusable sidecar: {}", error_chain(&e));
        return (None, EntryState::Damaged { problem });
    }
    if sc.size != size {
        let problem = format!(
            "the stream object has {size} bytes but its sidecar says {}",
            sc.size
        );
        return (None, EntryState::Damaged { problem });
    }
    (Some(sc), EntryState::Complete)
}

impl Catalog {
    /// The sidecar keys of a listing: the objects whose bytes [`Catalog::build`] needs.
    pub fn sidecar_keys(objects: &[StoreObject]) -> Vec<String> {
        objects
            .iter()
            .filter(|o| {
                o.key
                    .strip_suffix(SIDECAR_SUFFIX)
                    .is_some_and(|k| k.parse::<StreamName>().is_ok())
            })
            .map(|o| o.key.clone())
            .collect()
    }

    /// The catalog of a store from its listing (keys relative to the store's root) and
    /// the bytes of its sidecars, keyed by sidecar key (see [`Catalog::sidecar_keys`];
    /// a listed sidecar missing from `sidecars` makes its backup damaged, not
    /// unfinished).
    ///
    /// Keys that are neither a [`StreamName`] nor one plus [`SIDECAR_SUFFIX`] go to
    /// [`Catalog::foreign`]. Nothing in a sidecar is trusted: see [`Sidecar::parse`]
    /// and [`EntryState`].
    ///
    /// # Example
    /// ```
    /// use std::collections::BTreeMap;
    /// use chrono::{TimeZone, Utc};
    /// use zsnap_core::backup::{Catalog, EntryState, StoreObject};
    ///
    /// let t = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
    /// let objects = [
    ///     StoreObject::new("tank/20261123T150000Z_a.full.zfs", 10, t),
    ///     StoreObject::new("tank/README", 5, t),
    /// ];
    /// let catalog = Catalog::build(&objects, &BTreeMap::new());
    /// let tank = catalog.dataset(&"tank".parse().unwrap()).unwrap();
    /// assert_eq!(tank.entries[0].state, EntryState::Unfinished);
    /// assert_eq!(catalog.foreign, ["tank/README"]);
    /// ```
    pub fn build(objects: &[StoreObject], sidecars: &BTreeMap<String, Vec<u8>>) -> Catalog {
        Catalog::build_with_pending(objects, sidecars, &BTreeSet::new())
    }

    /// [`Catalog::build`], knowing the keys that pending deletions (interrupted prunes
    /// or deletes, see [`super::PendingDeletion`]) were removing: a sidecar without
    /// stream among them is an [`Catalog::orphan_sidecars`] entry to finish; any other
    /// sidecar without stream is a lost backup ([`EntryState::Missing`]).
    pub fn build_with_pending(
        objects: &[StoreObject],
        sidecars: &BTreeMap<String, Vec<u8>>,
        pending: &BTreeSet<String>,
    ) -> Catalog {
        let mut streams: BTreeMap<&str, (StreamName, &StoreObject)> = BTreeMap::new();
        let mut listed_sidecars: BTreeMap<&str, &StoreObject> = BTreeMap::new();
        let mut foreign: BTreeSet<String> = BTreeSet::new();
        let mut pending_records: Vec<String> = Vec::new();
        for o in objects {
            if o.key == STORE_MARKER_KEY {
                continue;
            }
            if PendingDeletion::is_key(&o.key) {
                pending_records.push(o.key.clone());
                continue;
            }
            if let Some(stream_key) = o.key.strip_suffix(SIDECAR_SUFFIX) {
                if stream_key.parse::<StreamName>().is_ok() {
                    listed_sidecars.insert(stream_key, o);
                    continue;
                }
            }
            match o.key.parse::<StreamName>() {
                Ok(name) => {
                    streams.insert(&o.key, (name, o));
                }
                Err(_) => {
                    foreign.insert(o.key.clone());
                }
            }
        }
        let mut datasets: BTreeMap<DatasetName, DatasetBackups> = BTreeMap::new();
        for (key, (name, o)) in &streams {
            let (sidecar, state) = if listed_sidecars.contains_key(key) {
                let sidecar_key = format!("{key}{SIDECAR_SUFFIX}");
                judge(name, o.size, sidecars.get(&sidecar_key).map(Vec::as_slice))
            } else {
                (None, EntryState::Unfinished)
            };
            let entry = BackupEntry {
                id: BackupId::from(name),
                stream: name.clone(),
                size: o.size,
                modified: o.modified,
                sidecar_listed: listed_sidecars.contains_key(key),
                sidecar,
                state,
                link: None,
                chain_len: None,
            };
            datasets
                .entry(name.dataset().clone())
                .or_insert_with(|| DatasetBackups {
                    dataset: name.dataset().clone(),
                    entries: Vec::new(),
                })
                .entries
                .push(entry);
        }
        let mut orphan_sidecars = Vec::new();
        for (key, o) in &listed_sidecars {
            if streams.contains_key(key) {
                continue;
            }
            let sidecar_key = format!("{key}{SIDECAR_SUFFIX}");
            if pending.contains(&sidecar_key) || pending.contains(*key) {
                orphan_sidecars.push(sidecar_key);
                continue;
            }
            let name: StreamName = key.parse().expect("only stream names are listed sidecars");
            let sidecar = sidecars
                .get(&sidecar_key)
                .and_then(|b| Sidecar::parse(b).ok())
                .filter(|sc| sc.check_stream(&name).is_ok());
            let entry = BackupEntry {
                id: BackupId::from(&name),
                stream: name.clone(),
                size: sidecar.as_ref().map_or(0, |s| s.size),
                modified: o.modified,
                sidecar_listed: true,
                sidecar,
                state: EntryState::Missing,
                link: None,
                chain_len: None,
            };
            let ds = datasets
                .entry(name.dataset().clone())
                .or_insert_with(|| DatasetBackups {
                    dataset: name.dataset().clone(),
                    entries: Vec::new(),
                });
            let at = ds
                .entries
                .binary_search_by(|e| e.id.as_str().cmp(entry.id.as_str()))
                .unwrap_or_else(|i| i);
            ds.entries.insert(at, entry);
        }
        for ds in datasets.values_mut() {
            // `streams` is ordered by key, and missing entries were inserted in key
            // order, so each dataset's entries are too.
            link_entries(&mut ds.entries);
        }
        Catalog {
            datasets,
            orphan_sidecars,
            pending: pending_records,
            foreign: foreign.into_iter().collect(),
        }
    }

    /// The backups of `dataset`.
    pub fn dataset(&self, dataset: &DatasetName) -> Option<&DatasetBackups> {
        self.datasets.get(dataset)
    }

    /// The backup with this id.
    pub fn entry(&self, id: &BackupId) -> Option<&BackupEntry> {
        let name: StreamName = id.as_str().parse().ok()?;
        self.datasets.get(name.dataset())?.entry(id)
    }

    /// Every key the store holds that this catalog knows of: streams, sidecars (of
    /// missing backups too), orphan sidecars, pending-deletion records and foreign
    /// keys (not the marker).
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        let entries = self.datasets.values().flat_map(|d| &d.entries);
        entries
            .flat_map(|e| {
                let stream = (e.state != EntryState::Missing).then(|| e.id.to_string());
                let sidecar = e.sidecar_listed.then(|| e.sidecar_key());
                stream.into_iter().chain(sidecar)
            })
            .chain(self.orphan_sidecars.iter().cloned())
            .chain(self.pending.iter().cloned())
            .chain(self.foreign.iter().cloned())
    }

    /// The base for an automatic incremental backup of `source`: the newest restorable
    /// backup (by the source's createtxg) whose snapshot the source still has, as a
    /// snapshot (preferred) or as a bookmark, matched by guid. `None` when there is
    /// none, and a full backup is needed.
    pub fn newest_with_guid_in(&self, source: &Dataset) -> Option<BackupBase> {
        self.newest_base_before(source, u64::MAX)
    }

    /// Like [`Catalog::newest_with_guid_in`], among bases with a createtxg below
    /// `before`.
    pub(crate) fn newest_base_before(&self, source: &Dataset, before: u64) -> Option<BackupBase> {
        let backups = self.datasets.get(&source.name)?;
        let mut restorable: HashMap<Guid, &BackupEntry> = HashMap::new();
        for e in backups.entries.iter().filter(|e| e.is_restorable()) {
            let guid = e.guid().expect("a restorable backup has a sidecar");
            let slot = restorable.entry(guid).or_insert(e);
            if e.chain_len < slot.chain_len {
                *slot = e;
            }
        }
        let on_snapshots = source.snapshots.iter().filter_map(|s| {
            let e = restorable.get(&s.guid)?;
            let base = SendBase::Snapshot {
                name: s.name.clone(),
                guid: s.guid,
            };
            Some((s.createtxg, 1, e, base))
        });
        let on_bookmarks = source.bookmarks.iter().filter_map(|b| {
            let e = restorable.get(&b.guid)?;
            let base = SendBase::Bookmark {
                name: b.name.clone(),
                guid: b.guid,
            };
            Some((b.createtxg, 0, e, base))
        });
        on_snapshots
            .chain(on_bookmarks)
            .filter(|(txg, ..)| *txg < before)
            .max_by_key(|(txg, prefer, ..)| (*txg, *prefer))
            .map(|(createtxg, _, e, base)| BackupBase {
                id: e.id.clone(),
                base,
                createtxg,
            })
    }
}
