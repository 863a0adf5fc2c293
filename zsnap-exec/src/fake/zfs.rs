//! [`FakeZfs`]: its commands (one per `zfs` invocation) and its [`ZfsBackend`]
//! implementation.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone as _, Utc};
use zsnap_core::{
    Bookmark, BookmarkName, Dataset, DatasetKind, DatasetName, Guid, Inventory, SendBase, SendSpec,
    ShortName, Snapshot, SnapshotName, SnapshotRef, EXPIRES_PROPERTY, MANAGED_PROPERTY,
};

use zsnap_core::zpool::{
    ConfigRow, DataErrors, Health, PoolHealth, PoolStatus, PoolUsage, Vdev, VdevErrors,
};

use super::fault::{effect_failure, garble, Fault, FaultEffect, FaultOp};
use super::state::{Ds, Partial, Snap, State, FORMAT};
use super::stream::{encode, Parsed, Reader, Section, Token, DONE_LEN};
use crate::backend::{
    check_property_name, destroy_with_retry, parse_get_value, read_pools, split_batches,
    AbortReceiveError, AttemptError, BookmarkError, CommandError, DestroyBookmarkError,
    DestroyError, DestroyReport, EstimateError, GetPropertyError, HoldError, HoldsError, ListError,
    PoolsError, PropertyTarget, ReceiveOutcome, ReceiveRequest, RecvError, ReleaseError,
    ResumeTokenError, SendCommand, SendError, SendRequest, SendStream, SetPropertyError, Skipped,
    SnapshotError, ZfsBackend,
};
use crate::failure::{Exit, ZfsFailure};
use crate::holds::parse_holds;
use crate::send_info::{parse_resume_token, parse_send_estimate, ResumeToken, SendEstimate};

/// Loading or saving the fake's state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The file could not be read or written.
    #[error("access fake zfs state file {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a fake zfs state.
    #[error("read fake zfs state file {path}")]
    Json {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The file was written by an incompatible version.
    #[error("read fake zfs state file {path}: format {found}, expected {expected}")]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// Its format number.
        found: u32,
        /// The one this version reads.
        expected: u32,
    },
}

/// An in-memory ZFS; see the [module docs](crate::fake).
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_exec::{fake::FakeZfs, ZfsBackend};
/// let mut z = FakeZfs::new(1, Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap());
/// z.add_pool("tank").unwrap();
/// z.create(&"tank/a".parse().unwrap(), false).unwrap();
/// z.create(&"tank/b".parse().unwrap(), false).unwrap();
/// let names = ["tank/a@s", "tank/b@s"].map(|n| n.parse().unwrap());
/// z.snapshot(&names, &BTreeMap::new()).unwrap();
/// let inv = z.list(&["tank".parse().unwrap()]).unwrap();
/// let txg = |d: &str| inv.dataset(&d.parse().unwrap()).unwrap().snapshots[0].createtxg;
/// assert_eq!(txg("tank/a"), txg("tank/b")); // one call, one txg
/// // Two snapshots of one dataset in one call: refused, like `zfs snapshot`.
/// let two = ["tank/a@x", "tank/a@y"].map(|n| n.parse().unwrap());
/// assert!(z.snapshot(&two, &BTreeMap::new()).is_err());
/// ```
#[derive(Debug)]
pub struct FakeZfs {
    state: RefCell<State>,
    /// `zfs destroy` argument budget in bytes.
    destroy_budget: usize,
    /// Where every change is saved as it happens, if anywhere.
    persist: Option<PathBuf>,
}

fn failure(text: String) -> ZfsFailure {
    ZfsFailure::new(Exit::Code(1), text + "\n")
}

fn no_dataset(name: &str) -> ZfsFailure {
    failure(format!("cannot open '{name}': dataset does not exist"))
}

/// What a "before" fault does to a command, if anything; Garbage only matters for
/// commands whose output is read.
fn before(fault: &Option<Fault>, what: &str) -> Result<(), ZfsFailure> {
    match fault {
        Some(f) if !f.after && f.at_byte.is_none() && f.effect != FaultEffect::Garbage => {
            Err(effect_failure(f.effect, what))
        }
        _ => Ok(()),
    }
}

fn after(fault: &Option<Fault>, what: &str) -> Result<(), ZfsFailure> {
    match fault {
        Some(f) if f.after && f.effect != FaultEffect::Garbage => {
            Err(effect_failure(f.effect, what))
        }
        _ => Ok(()),
    }
}

/// Ends this process at once, as `kill -9` would: no destructor, no final save.
fn die() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}

/// A fake pool's state.
fn pool_health(p: &super::state::Pool) -> Health {
    p.health
        .as_deref()
        .and_then(|h| h.parse().ok())
        .unwrap_or(Health::Online)
}

fn epoch(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

impl FakeZfs {
    /// An empty fake: no pools; guids from `seed`; the clock at `now`.
    pub fn new(seed: u64, now: DateTime<Utc>) -> Self {
        FakeZfs {
            state: RefCell::new(State::new(seed, now)),
            destroy_budget: crate::cli::DEFAULT_DESTROY_BUDGET,
            persist: None,
        }
    }

    /// Reads a state saved by [`FakeZfs::save`].
    ///
    /// # Errors
    /// When the file cannot be read or is not a fake state of this version.
    pub fn load(path: &Path) -> Result<Self, StateError> {
        let text = std::fs::read(path).map_err(|source| StateError::Io {
            path: path.to_owned(),
            source,
        })?;
        let state: State = serde_json::from_slice(&text).map_err(|source| StateError::Json {
            path: path.to_owned(),
            source,
        })?;
        if state.format != FORMAT {
            return Err(StateError::Format {
                path: path.to_owned(),
                found: state.format,
                expected: FORMAT,
            });
        }
        Ok(FakeZfs {
            state: RefCell::new(state),
            destroy_budget: crate::cli::DEFAULT_DESTROY_BUDGET,
            persist: None,
        })
    }

    /// Writes the whole state as JSON (to a synced temporary file renamed over `path`,
    /// so a crash leaves the old state or the new one).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: path.to_owned(),
            source,
        };
        let json = serde_json::to_vec_pretty(&*self.state.borrow())
            .expect("the fake's state always serializes");
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        // The rename is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Saves the state to `path` after every command of the [`ZfsBackend`]
    /// implementation that may change it (each batch of a destroy, each receive), failed
    /// or not, the way a real pool keeps what a command did before it failed or zsnap was
    /// killed. Each save is atomic ([`FakeZfs::save`]). A failed save is not reported
    /// here: the caller's own final [`FakeZfs::save`] reports it.
    pub fn persist_to(&mut self, path: &Path) {
        self.persist = Some(path.to_owned());
    }

    /// Whether the next `op` call is planned to crash the process.
    fn crash_due(&self, op: FaultOp) -> bool {
        let st = self.state.borrow();
        let next = st.calls.get(&op).copied().unwrap_or(0) + 1;
        st.faults
            .iter()
            .any(|f| f.op == op && f.nth == next && f.effect == FaultEffect::Crash)
    }

    /// Runs one changing command, then persists what it did; dies where a
    /// [`FaultEffect::Crash`] says so.
    fn change<T>(&mut self, op: FaultOp, command: impl FnOnce(&mut Self) -> T) -> T {
        let crash = self.crash_due(op);
        let out = command(self);
        if let Some(path) = &self.persist {
            let _ = self.save(path);
        }
        if crash {
            die();
        }
        out
    }

    /// The clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.borrow().now
    }

    /// Sets the clock.
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.state.get_mut().now = now;
    }

    /// Payload bytes per snapshot in a full stream (incrementals carry a quarter);
    /// 64 KiB unless set.
    pub fn set_stream_bytes(&mut self, bytes: u64) {
        self.state.get_mut().section_bytes = bytes.max(4);
    }

    /// The `zfs destroy` argument budget used to split batches.
    pub fn set_destroy_budget(&mut self, bytes: usize) {
        self.destroy_budget = bytes;
    }

    /// Adds a fault.
    pub fn inject(&mut self, fault: Fault) {
        self.state.get_mut().faults.push(fault);
    }

    /// Removes all faults (the call counters go on).
    pub fn clear_faults(&mut self) {
        self.state.get_mut().faults.clear();
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: FaultOp) -> u64 {
        self.state.borrow().calls.get(&op).copied().unwrap_or(0)
    }

    /// Every snapshot destroyed so far, in order (by destroy or by `recv -F`).
    pub fn destroyed(&self) -> Vec<(SnapshotName, Guid)> {
        self.state.borrow().destroyed.clone()
    }

    /// Creates a pool with its root dataset.
    ///
    /// # Errors
    /// When it exists or the name is not a pool name.
    pub fn add_pool(&mut self, name: &str) -> Result<(), ZfsFailure> {
        let ds: DatasetName = name
            .parse()
            .map_err(|e| failure(format!("cannot create '{name}': {e}")))?;
        let st = self.state.get_mut();
        if ds.parent().is_some() || st.pools.contains_key(name) {
            return Err(failure(format!(
                "cannot create '{name}': pool already exists"
            )));
        }
        st.pools.insert(name.to_owned(), super::state::Pool::new());
        let guid = st.guid();
        let createtxg = st.txg(name);
        st.datasets
            .insert(ds, new_ds(DatasetKind::Filesystem, guid, createtxg, st.now));
        Ok(())
    }

    /// Sets what `zpool status` and `zpool list` say of pool `name`: its state, and
    /// its size and allocated bytes (`None`: 1 TiB, nothing allocated).
    ///
    /// # Errors
    /// When there is no such pool.
    pub fn set_pool_health(
        &mut self,
        name: &str,
        health: Health,
        space: Option<(u64, u64)>,
    ) -> Result<(), ZfsFailure> {
        let p = self.pool_mut(name)?;
        p.health = (health != Health::Online).then(|| health.to_string());
        p.space = space;
        Ok(())
    }

    /// Sets the checksum errors of pool `name`'s one device and its permanent data
    /// errors (what a scrub finds on damaged disks).
    ///
    /// # Errors
    /// When there is no such pool.
    pub fn set_pool_errors(
        &mut self,
        name: &str,
        cksum: u64,
        data_errors: u64,
    ) -> Result<(), ZfsFailure> {
        let p = self.pool_mut(name)?;
        p.cksum_errors = cksum;
        p.data_errors = data_errors;
        Ok(())
    }

    fn pool_mut(&mut self, name: &str) -> Result<&mut super::state::Pool, ZfsFailure> {
        self.state
            .get_mut()
            .pools
            .get_mut(name)
            .ok_or_else(|| failure(format!("cannot open '{name}': no such pool")))
    }

    /// `zpool list -H -p -o name,size,allocated,free,capacity,health`: the text it
    /// prints (every pool).
    ///
    /// # Errors
    /// An injected fault.
    pub fn cmd_zpool_list(&self) -> Result<String, ZfsFailure> {
        let fault = self.state.borrow_mut().tick(FaultOp::Zpool);
        before(&fault, "list pools")?;
        let st = self.state.borrow();
        let mut rows = Vec::new();
        for (name, p) in &st.pools {
            let Ok(ds) = name.parse::<DatasetName>() else {
                continue;
            };
            let (size, alloc) = p.space.unwrap_or((1 << 40, 0));
            let mut row = PoolUsage::new(ds, pool_health(p));
            row.size = Some(size);
            row.allocated = Some(alloc.min(size));
            row.free = Some(size - alloc.min(size));
            row.capacity = Some(alloc.min(size).saturating_mul(100) / size.max(1));
            rows.push(row);
        }
        let text = zsnap_core::zpool::render_pool_list(&rows);
        Ok(match fault {
            Some(f) if f.effect == FaultEffect::Garbage => garble(&text),
            _ => text,
        })
    }

    /// `zpool status -p`: the text it prints (every pool; each has one device,
    /// `fake0`, in the pool's state).
    ///
    /// # Errors
    /// An injected fault.
    pub fn cmd_zpool_status(&self) -> Result<String, ZfsFailure> {
        let fault = self.state.borrow_mut().tick(FaultOp::Zpool);
        before(&fault, "show pool status")?;
        let st = self.state.borrow();
        let mut pools = Vec::new();
        for (name, p) in &st.pools {
            let Ok(ds) = name.parse::<DatasetName>() else {
                continue;
            };
            let health = pool_health(p);
            let mut s = PoolStatus::new(ds, health.clone());
            if health != Health::Online {
                s.status = Some(format!("The fake pool is {health}."));
            }
            s.config
                .push(ConfigRow::Vdev(Vdev::new(name.clone(), 0, health.clone())));
            let mut dev = Vdev::new("fake0", 1, health);
            dev.errors = Some(VdevErrors::new(0, 0, p.cksum_errors));
            s.config.push(ConfigRow::Vdev(dev));
            s.errors = Some(if p.data_errors > 0 {
                DataErrors::Count(p.data_errors)
            } else {
                DataErrors::NoneKnown
            });
            pools.push(s);
        }
        let text = if pools.is_empty() {
            "no pools available\n".to_owned()
        } else {
            zsnap_core::zpool::render_pool_status(&pools)
        };
        Ok(match fault {
            Some(f) if f.effect == FaultEffect::Garbage => garble(&text),
            _ => text,
        })
    }

    /// `zfs create [-o encryption=on …] NAME`; children of encrypted datasets are
    /// encrypted too.
    ///
    /// # Errors
    /// When it exists or its parent does not.
    pub fn create(&mut self, name: &DatasetName, encrypted: bool) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        if st.datasets.contains_key(name) {
            return Err(failure(format!(
                "cannot create '{name}': dataset already exists"
            )));
        }
        let Some(parent) = name.parent() else {
            return Err(failure(format!(
                "cannot create '{name}': missing dataset name"
            )));
        };
        let Some(p) = st.datasets.get(&parent) else {
            return Err(failure(format!(
                "cannot create '{name}': parent does not exist"
            )));
        };
        let inherited = p.encryption.clone();
        let key_loaded = p.key_loaded || p.encryption.is_none();
        let guid = st.guid();
        let createtxg = st.txg(name.pool());
        let mut ds = new_ds(DatasetKind::Filesystem, guid, createtxg, st.now);
        if encrypted || inherited.is_some() {
            ds.encryption = Some(inherited.unwrap_or_else(|| "aes-256-gcm".to_owned()));
            ds.key_loaded = key_loaded || encrypted;
        }
        st.datasets.insert(name.clone(), ds);
        Ok(())
    }

    /// `zfs clone SNAPSHOT NAME`.
    ///
    /// # Errors
    /// When the snapshot is missing, or the clone or its parent is.
    pub fn clone_snapshot(
        &mut self,
        snapshot: &SnapshotName,
        name: &DatasetName,
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let Some(src) = st.datasets.get(snapshot.dataset()) else {
            return Err(no_dataset(snapshot.dataset().as_str()));
        };
        if src.snapshot(snapshot.short()).is_none() {
            return Err(no_dataset(&snapshot.to_string()));
        }
        let (kind, encryption, key_loaded) = (src.kind, src.encryption.clone(), src.key_loaded);
        if st.datasets.contains_key(name) {
            return Err(failure(format!(
                "cannot create '{name}': dataset already exists"
            )));
        }
        if !name.parent().is_some_and(|p| st.datasets.contains_key(&p)) {
            return Err(failure(format!(
                "cannot create '{name}': parent does not exist"
            )));
        }
        let guid = st.guid();
        let createtxg = st.txg(name.pool());
        let mut ds = new_ds(kind, guid, createtxg, st.now);
        ds.origin = Some(snapshot.clone());
        ds.encryption = encryption;
        ds.key_loaded = key_loaded;
        st.datasets.insert(name.clone(), ds);
        Ok(())
    }

    /// Writes to a dataset: it differs from its newest snapshot until the next one.
    ///
    /// # Errors
    /// When it does not exist.
    pub fn write(&mut self, name: &DatasetName) -> Result<(), ZfsFailure> {
        let ds = self
            .state
            .get_mut()
            .datasets
            .get_mut(name)
            .ok_or_else(|| no_dataset(name.as_str()))?;
        ds.dirty = true;
        Ok(())
    }

    /// Loads or unloads the key of an encrypted dataset.
    ///
    /// # Errors
    /// When it does not exist or is not encrypted.
    pub fn set_key_loaded(&mut self, name: &DatasetName, loaded: bool) -> Result<(), ZfsFailure> {
        let ds = self
            .state
            .get_mut()
            .datasets
            .get_mut(name)
            .ok_or_else(|| no_dataset(name.as_str()))?;
        if ds.encryption.is_none() {
            return Err(failure(format!(
                "Key load error: Keys are only available for encryption roots: '{name}'"
            )));
        }
        ds.key_loaded = loaded;
        Ok(())
    }

    /// `zfs destroy -r NAME`: the dataset, its children and all their snapshots.
    ///
    /// # Errors
    /// When it does not exist, or a snapshot in it is held or cloned from outside.
    pub fn destroy_recursive(&mut self, name: &DatasetName) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        if !st.datasets.contains_key(name) {
            return Err(no_dataset(name.as_str()));
        }
        let doomed: Vec<DatasetName> = st
            .datasets
            .keys()
            .filter(|d| name.contains(d))
            .cloned()
            .collect();
        for d in &doomed {
            let ds = &st.datasets[d];
            for s in &ds.snapshots {
                let full = d.snapshot(&s.name);
                if !s.holds.is_empty() {
                    return Err(failure(format!(
                        "cannot destroy snapshot {full}: dataset is busy"
                    )));
                }
                if st.clones_of(&full).iter().any(|c| !name.contains(c)) {
                    return Err(failure(format!(
                        "cannot destroy '{d}': filesystem has dependent clones\nuse '-R' to destroy the following datasets:"
                    )));
                }
            }
        }
        for d in doomed {
            if let Some(ds) = st.datasets.remove(&d) {
                for s in ds.snapshots {
                    st.destroyed.push((d.snapshot(&s.name), s.guid));
                }
            }
        }
        Ok(())
    }

    /// The hold tags of a snapshot (empty when it has none or does not exist).
    pub fn holds(&self, snapshot: &SnapshotName) -> Vec<String> {
        self.state
            .borrow()
            .datasets
            .get(snapshot.dataset())
            .and_then(|d| d.snapshot(snapshot.short()))
            .map(|s| s.holds.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The user property of a dataset (own or inherited), for tests.
    pub fn dataset_property(&self, name: &DatasetName, prop: &str) -> Option<String> {
        self.state.borrow().inherited(name, prop)
    }

    // ---- commands: one `zfs` invocation each --------------------------------------

    /// `zfs list -H -p -t … -o LIST_COLUMNS -r ROOT…`: the text it prints.
    ///
    /// # Errors
    /// When a root does not exist, or an injected fault.
    pub fn cmd_list(&self, roots: &[DatasetName]) -> Result<String, ZfsFailure> {
        let fault = self.state.borrow_mut().tick(FaultOp::List);
        before(&fault, "list")?;
        let inv = self.inventory(roots)?;
        let text = zsnap_core::zfs_list::render_list(&inv);
        after(&fault, "list")?;
        Ok(match fault {
            Some(f) if f.effect == FaultEffect::Garbage => garble(&text),
            _ => text,
        })
    }

    fn inventory(&self, roots: &[DatasetName]) -> Result<Inventory, ZfsFailure> {
        let st = self.state.borrow();
        for r in roots {
            if !st.datasets.contains_key(r) {
                return Err(no_dataset(r.as_str()));
            }
        }
        let mut inv = Inventory::new();
        for (name, d) in &st.datasets {
            if !roots.is_empty() && !roots.iter().any(|r| r.contains(name)) {
                continue;
            }
            let mut ds = Dataset::new(name.clone(), d.kind, d.guid);
            ds.props.encryption = Some(d.encryption.clone().unwrap_or_else(|| "off".to_owned()));
            ds.props.keystatus = d.encryption.as_ref().map(|_| {
                if d.key_loaded {
                    "available"
                } else {
                    "unavailable"
                }
                .to_owned()
            });
            ds.props.receive_resume_token = d.partial.as_ref().map(|p| p.token.clone());
            ds.props.origin = d.origin.clone();
            ds.props.mountpoint = (d.kind == DatasetKind::Filesystem).then(|| format!("/{name}"));
            ds.props.used = Some(st.section_bytes * (1 + d.snapshots.len() as u64));
            for s in &d.snapshots {
                let full = name.snapshot(&s.name);
                let mut snap = Snapshot::new(s.name.clone(), s.guid, s.createtxg, s.creation);
                snap.userrefs = s.holds.len() as u64;
                snap.clones = st.clones_of(&full);
                snap.managed = s
                    .props
                    .get(MANAGED_PROPERTY)
                    .cloned()
                    .or_else(|| st.inherited(name, MANAGED_PROPERTY));
                snap.expires = s
                    .props
                    .get(EXPIRES_PROPERTY)
                    .cloned()
                    .or_else(|| st.inherited(name, EXPIRES_PROPERTY));
                snap.used = Some(0);
                ds.insert_snapshot(snap);
            }
            for b in &d.bookmarks {
                ds.insert_bookmark(b.clone());
            }
            inv.insert(ds);
        }
        Ok(inv)
    }

    /// `zfs snapshot [-o P=V]… NAME…`: one atomic call, one txg.
    ///
    /// # Errors
    /// Like `zfs snapshot`: every problem is reported and nothing is created.
    pub fn cmd_snapshot(
        &mut self,
        names: &[SnapshotName],
        properties: &BTreeMap<String, String>,
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::Snapshot);
        let what = match names.first() {
            Some(n) => format!("create snapshot '{n}'"),
            None => "create snapshots".to_owned(),
        };
        before(&fault, &what)?;
        let Some(first) = names.first() else {
            return Err(failure("missing snapshot argument".to_owned()));
        };
        // zfs collects the names in an nvlist of unique names: a repeated full name is
        // one snapshot.
        let mut unique: Vec<&SnapshotName> = Vec::with_capacity(names.len());
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        let names = unique;
        let pool = first.dataset().pool();
        let mut seen = std::collections::HashSet::new();
        for &n in &names {
            if n.dataset().pool() != pool || !seen.insert(n.dataset()) {
                return Err(failure(
                    "cannot create snapshots : multiple snapshots of same fs not allowed"
                        .to_owned(),
                ));
            }
        }
        let mut errors = String::new();
        for &n in &names {
            let problem = match st.datasets.get(n.dataset()) {
                None => Some("dataset does not exist"),
                Some(d) if d.inconsistent => Some("dataset is busy"),
                Some(d) if d.snapshot(n.short()).is_some() => Some("dataset already exists"),
                Some(_) => None,
            };
            if let Some(p) = problem {
                errors.push_str(&format!("cannot create snapshot '{n}': {p}\n"));
            }
        }
        if !errors.is_empty() {
            if names.len() > 1 {
                errors.push_str("no snapshots were created\n");
            }
            return Err(ZfsFailure::new(Exit::Code(1), errors));
        }
        let txg = st.txg(pool);
        let now = st.now;
        for &n in &names {
            let guid = st.guid();
            let d = st
                .datasets
                .get_mut(n.dataset())
                .expect("checked above that every dataset exists");
            d.snapshots.push(Snap {
                name: n.short().clone(),
                guid,
                createtxg: txg,
                creation: now,
                holds: Default::default(),
                props: properties.clone(),
            });
            d.dirty = false;
        }
        after(&fault, &what)
    }

    /// `zfs destroy DATASET@a,b,c`: one atomic call; a held or cloned member fails the
    /// whole batch (every refused member is named on stderr); missing members are
    /// ignored unless all are missing.
    ///
    /// # Errors
    /// Like `zfs destroy`.
    pub fn cmd_destroy(
        &mut self,
        dataset: &DatasetName,
        names: &[ShortName],
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::Destroy);
        let what = match names.first() {
            Some(n) => format!("destroy snapshot {}", dataset.snapshot(n)),
            None => "destroy snapshots".to_owned(),
        };
        match &fault {
            Some(f) if !f.after && f.effect == FaultEffect::Busy => {
                // A member in use: refused by name, like EBUSY from the ioctl.
                return Err(effect_failure(FaultEffect::Busy, &what));
            }
            // Other errors concern the whole call, as OpenZFS 2.3 words them
            // ("cannot destroy snapshots: permission denied").
            _ => before(&fault, "destroy snapshots")?,
        }
        let st = self.state.get_mut();
        let Some(ds) = st.datasets.get(dataset) else {
            return Err(no_dataset(dataset.as_str()));
        };
        let present: Vec<&Snap> = names.iter().filter_map(|n| ds.snapshot(n)).collect();
        if present.is_empty() {
            return Err(failure(
                "could not find any snapshots to destroy; check snapshot names.".to_owned(),
            ));
        }
        // zfs's own pre-check refuses cloned members (naming each with its clones)
        // before the ioctl; the ioctl then refuses held members. Either way nothing is
        // destroyed. The newest snapshot of a dataset with a partial incremental receive
        // has the hidden clone `DATASET/%recv`.
        let mut errors = String::new();
        let newest = ds.snapshots.last().map(|s| s.guid);
        for s in &present {
            let full = dataset.snapshot(&s.name);
            let mut clones: Vec<String> = st
                .clones_of(&full)
                .iter()
                .map(ToString::to_string)
                .collect();
            if ds.partial.is_some() && !ds.inconsistent && newest == Some(s.guid) {
                clones.push(format!("{dataset}/%recv"));
            }
            if !clones.is_empty() {
                errors.push_str(&format!(
                    "cannot destroy '{full}': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\n{}\n",
                    clones.join("\n")
                ));
            }
        }
        if errors.is_empty() {
            for s in &present {
                let full = dataset.snapshot(&s.name);
                if !s.holds.is_empty() {
                    errors.push_str(&format!(
                        "cannot destroy snapshot {full}: it's being held. Run 'zfs holds -r {full}' to see holders.\n"
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(ZfsFailure::new(Exit::Code(1), errors));
        }
        let doomed: Vec<ShortName> = present.iter().map(|s| s.name.clone()).collect();
        let ds = st
            .datasets
            .get_mut(dataset)
            .expect("looked up above in the same borrow of the state");
        for n in doomed {
            if let Some(i) = ds.snapshots.iter().position(|s| s.name == n) {
                let s = ds.snapshots.remove(i);
                st.destroyed.push((dataset.snapshot(&s.name), s.guid));
            }
        }
        after(&fault, "destroy snapshots")
    }

    /// `zfs hold TAG SNAPSHOT`.
    ///
    /// # Errors
    /// Like `zfs hold`.
    pub fn cmd_hold(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ZfsFailure> {
        self.change_holds(FaultOp::Hold, snapshot, "hold snapshot", |holds| {
            holds
                .insert(tag.to_owned())
                .then_some(())
                .ok_or("tag already exists on this dataset")
        })
    }

    /// One `zfs hold` or `zfs release` on `snapshot`: the fault hooks around `change`
    /// of its tags, and OpenZFS's wording (`cannot WHAT 'SNAPSHOT': PROBLEM`) when the
    /// snapshot is missing or `change` refuses.
    fn change_holds(
        &mut self,
        op: FaultOp,
        snapshot: &SnapshotName,
        what: &str,
        change: impl FnOnce(&mut BTreeSet<String>) -> Result<(), &'static str>,
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(op);
        let what = format!("{what} '{snapshot}'");
        before(&fault, &what)?;
        let s = st
            .datasets
            .get_mut(snapshot.dataset())
            .and_then(|d| d.snapshot_mut(snapshot.short()))
            .ok_or_else(|| failure(format!("cannot {what}: dataset does not exist")))?;
        change(&mut s.holds).map_err(|problem| failure(format!("cannot {what}: {problem}")))?;
        after(&fault, &what)
    }

    /// `zfs holds -H -p SNAPSHOT…`: one line per hold, `SNAPSHOT<TAB>TAG<TAB>EPOCH`
    /// (the fake does not record when a hold was placed: it prints the clock). A
    /// missing snapshot fails the call, as with OpenZFS (which still lists the others).
    ///
    /// # Errors
    /// Like `zfs holds`.
    pub fn cmd_holds(&self, snapshots: &[SnapshotName]) -> Result<String, ZfsFailure> {
        use std::fmt::Write as _;
        let st = self.state.borrow();
        let mut out = String::new();
        let mut missing = String::new();
        for name in snapshots {
            match st
                .datasets
                .get(name.dataset())
                .and_then(|d| d.snapshot(name.short()))
            {
                Some(s) => {
                    for tag in &s.holds {
                        let _ = writeln!(out, "{name}\t{tag}\t{}", st.now.timestamp());
                    }
                }
                None => {
                    let _ = writeln!(missing, "cannot open '{name}': dataset does not exist");
                }
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(ZfsFailure::new(Exit::Code(1), missing))
        }
    }

    /// `zfs release TAG SNAPSHOT`.
    ///
    /// # Errors
    /// Like `zfs release`.
    pub fn cmd_release(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ZfsFailure> {
        self.change_holds(
            FaultOp::Release,
            snapshot,
            "release hold from snapshot",
            |holds| {
                holds
                    .remove(tag)
                    .then_some(())
                    .ok_or("no such tag on this dataset")
            },
        )
    }

    /// `zfs bookmark SNAPSHOT BOOKMARK`.
    ///
    /// # Errors
    /// Like `zfs bookmark`.
    pub fn cmd_bookmark(
        &mut self,
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::Bookmark);
        let what = format!("create bookmark '{bookmark}'");
        before(&fault, &what)?;
        if snapshot.dataset() != bookmark.dataset() {
            return Err(failure(format!(
                "cannot create bookmark '{bookmark}': must be in the same dataset as the snapshot"
            )));
        }
        let d = st
            .datasets
            .get_mut(snapshot.dataset())
            .ok_or_else(|| no_dataset(snapshot.dataset().as_str()))?;
        let Some(s) = d.snapshot(snapshot.short()) else {
            return Err(failure(format!(
                "cannot create bookmark '{bookmark}': snapshot '{snapshot}' does not exist"
            )));
        };
        if d.bookmarks.iter().any(|b| &b.name == bookmark.short()) {
            return Err(failure(format!(
                "cannot create bookmark '{bookmark}': bookmark exists"
            )));
        }
        let b = Bookmark::new(bookmark.short().clone(), s.guid, s.createtxg, s.creation);
        let at = d.bookmarks.partition_point(|x| x.createtxg <= b.createtxg);
        d.bookmarks.insert(at, b);
        after(&fault, &what)
    }

    /// `zfs destroy DATASET#NAME`.
    ///
    /// # Errors
    /// Like `zfs destroy`.
    pub fn cmd_destroy_bookmark(&mut self, bookmark: &BookmarkName) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::DestroyBookmark);
        let what = format!("destroy bookmark '{bookmark}'");
        before(&fault, &what)?;
        let d = st
            .datasets
            .get_mut(bookmark.dataset())
            .ok_or_else(|| no_dataset(bookmark.dataset().as_str()))?;
        let Some(i) = d.bookmarks.iter().position(|b| &b.name == bookmark.short()) else {
            return Err(failure(format!("bookmark '{bookmark}' does not exist.")));
        };
        d.bookmarks.remove(i);
        after(&fault, &what)
    }

    /// `zfs set NAME=VALUE TARGET` (user properties).
    ///
    /// # Errors
    /// Like `zfs set`.
    pub fn cmd_set(
        &mut self,
        target: &PropertyTarget,
        name: &str,
        value: &str,
    ) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::SetProperty);
        let what = format!("set property for '{target}'");
        before(&fault, &what)?;
        let props = match target {
            PropertyTarget::Dataset(d) => st.datasets.get_mut(d).map(|d| &mut d.props),
            PropertyTarget::Snapshot(s) => st
                .datasets
                .get_mut(s.dataset())
                .and_then(|d| d.snapshot_mut(s.short()))
                .map(|s| &mut s.props),
        }
        .ok_or_else(|| no_dataset(&target.to_string()))?;
        props.insert(name.to_owned(), value.to_owned());
        after(&fault, &what)
    }

    /// `zfs get -H -p -o value,source NAME TARGET`: the text it prints.
    ///
    /// # Errors
    /// Like `zfs get`.
    pub fn cmd_get(&self, target: &PropertyTarget, name: &str) -> Result<String, ZfsFailure> {
        let fault = self.state.borrow_mut().tick(FaultOp::GetProperty);
        let what = format!("get property of '{target}'");
        before(&fault, &what)?;
        let st = self.state.borrow();
        let (own, ds) = match target {
            PropertyTarget::Dataset(d) => (
                st.datasets.get(d).map(|x| x.props.get(name).cloned()),
                d.clone(),
            ),
            PropertyTarget::Snapshot(s) => (
                st.datasets
                    .get(s.dataset())
                    .and_then(|d| d.snapshot(s.short()))
                    .map(|x| x.props.get(name).cloned()),
                s.dataset().clone(),
            ),
        };
        let own = own.ok_or_else(|| no_dataset(&target.to_string()))?;
        let text = match own {
            Some(v) => format!("{v}\tlocal\n"),
            None => {
                let from = match target {
                    PropertyTarget::Dataset(d) => d.parent(),
                    PropertyTarget::Snapshot(_) => Some(ds),
                };
                match from.and_then(|p| st.inherited(&p, name).map(|v| (p, v))) {
                    Some((p, v)) => format!("{v}\tinherited from {p}\n"),
                    None => "-\t-\n".to_owned(),
                }
            }
        };
        after(&fault, &what)?;
        Ok(match fault {
            Some(f) if f.effect == FaultEffect::Garbage => "\u{1b}[0m garbage".to_owned(),
            _ => text,
        })
    }

    /// `zfs send [-w] [-i|-I BASE] DATASET@SNAP` or `zfs send -t TOKEN`: the stream it
    /// writes, with any injected fault applied.
    ///
    /// # Errors
    /// Like `zfs send`, before writing anything.
    pub fn cmd_send(&self, request: &SendRequest) -> Result<FakeSendStream, ZfsFailure> {
        let fault = self.state.borrow_mut().tick(FaultOp::Send);
        let what = format!("send '{}'", request.dataset);
        before(&fault, &what)?;
        let sections = self.sections(request)?;
        let bytes = encode(&sections);
        let mut stream = FakeSendStream {
            data: bytes,
            pos: 0,
            end: None,
            dataset: request.dataset.clone(),
        };
        match fault {
            Some(f) if f.at_byte.is_some() => {
                let at = usize::try_from(f.at_byte.unwrap_or(0))
                    .unwrap_or(usize::MAX)
                    .min(stream.data.len());
                if f.effect == FaultEffect::Garbage {
                    let n = stream.data.len() - at;
                    stream.data.truncate(at);
                    stream
                        .data
                        .extend((0..n).map(|i| (i as u8).wrapping_mul(31) ^ 0x5a));
                } else {
                    stream.data.truncate(at);
                    stream.end = Some(effect_failure(f.effect, &what));
                }
            }
            Some(f) if f.effect == FaultEffect::Garbage => {
                stream.data = b"\x1b[0mgarbage\n".to_vec();
            }
            _ => {}
        }
        Ok(stream)
    }

    fn sections(&self, request: &SendRequest) -> Result<Vec<Section>, ZfsFailure> {
        let st = self.state.borrow();
        let ds_name = &request.dataset;
        let full_bytes = st.section_bytes;
        let inc_bytes = (st.section_bytes / 4).max(1);
        let Some(ds) = st.datasets.get(ds_name) else {
            return Err(no_dataset(ds_name.as_str()));
        };
        let section = |s: &Snap, from: Option<Guid>, raw: bool, total: u64| Section {
            dataset: ds_name.to_string(),
            kind: ds.kind,
            snapshot: s.name.clone(),
            guid: s.guid,
            creation: s.creation.timestamp(),
            from_guid: from,
            raw,
            encryption: if raw { ds.encryption.clone() } else { None },
            total,
            offset: 0,
            resume: false,
        };
        let check_key = |snap: &str, raw: bool| {
            if ds.encryption.is_some() && !raw && !ds.key_loaded {
                Err(failure(format!(
                    "cannot send {snap}: encryption key not loaded; a raw send (-w) is required"
                )))
            } else {
                Ok(())
            }
        };
        let find = |r: &SnapshotRef| {
            ds.snapshot(&r.name).ok_or_else(|| {
                failure(format!(
                    "cannot open '{}': dataset does not exist",
                    ds_name.snapshot(&r.name)
                ))
            })
        };
        match &request.spec {
            SendSpec::Full { snapshot } => {
                let s = find(snapshot)?;
                check_key(&ds_name.snapshot(&s.name).to_string(), request.raw)?;
                Ok(vec![section(s, None, request.raw, full_bytes)])
            }
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates,
                ..
            } => {
                let s = find(snapshot)?;
                let full = ds_name.snapshot(&s.name).to_string();
                check_key(&full, request.raw)?;
                let (base_guid, base_txg) = match base {
                    SendBase::Snapshot { name, .. } => {
                        let b = find(&SnapshotRef::new(name.clone(), Guid(0)))?;
                        (b.guid, b.createtxg)
                    }
                    SendBase::Bookmark { name, .. } => {
                        if *intermediates {
                            return Err(failure(format!(
                                "cannot send '{full}': -I does not accept a bookmark as the incremental source"
                            )));
                        }
                        let b = ds
                            .bookmarks
                            .iter()
                            .find(|b| &b.name == name)
                            .ok_or_else(|| {
                                failure(format!(
                                    "cannot open '{ds_name}#{name}': dataset does not exist"
                                ))
                            })?;
                        (b.guid, b.createtxg)
                    }
                };
                if base_txg >= s.createtxg || base_guid == s.guid {
                    return Err(failure(format!(
                        "cannot send '{full}': incremental source must be an earlier snapshot"
                    )));
                }
                if *intermediates {
                    let mut out = Vec::new();
                    let mut from = base_guid;
                    for x in ds
                        .snapshots
                        .iter()
                        .filter(|x| x.createtxg > base_txg && x.createtxg <= s.createtxg)
                    {
                        out.push(section(x, Some(from), request.raw, inc_bytes));
                        from = x.guid;
                        if x.guid == s.guid {
                            break;
                        }
                    }
                    Ok(out)
                } else {
                    Ok(vec![section(s, Some(base_guid), request.raw, inc_bytes)])
                }
            }
            SendSpec::Resume { token, .. } => {
                let corrupt = || {
                    ZfsFailure::new(
                        Exit::Code(255),
                        "cannot resume send: resume token is corrupt (incorrect checksum)\n",
                    )
                };
                let t = Token::decode(token).ok_or_else(corrupt)?;
                let snap: SnapshotName = t.toname.parse().map_err(|_| corrupt())?;
                if snap.dataset() != ds_name {
                    return Err(failure(format!(
                        "cannot resume send: the token is for '{}', not '{ds_name}'",
                        snap.dataset()
                    )));
                }
                // The texts and the exit status of OpenZFS 2.3, in its order of checks.
                let stale = |text: String| ZfsFailure::new(Exit::Code(255), text + "\n");
                let s = match ds.snapshot(snap.short()) {
                    None => {
                        return Err(stale(format!(
                            "cannot resume send: '{snap}' used in the initial send no longer exists"
                        )))
                    }
                    Some(s) if s.guid != t.toguid => {
                        return Err(stale(format!(
                            "cannot resume send: '{snap}' is no longer the same snapshot used in the initial send"
                        )))
                    }
                    Some(s) => s,
                };
                if let Some(from) = t.fromguid {
                    let known = ds.snapshots.iter().any(|x| x.guid == from)
                        || ds.bookmarks.iter().any(|b| b.guid == from);
                    if !known {
                        return Err(stale(format!(
                            "cannot resume send: incremental source {:#x} no longer exists",
                            from.0
                        )));
                    }
                }
                check_key(&snap.to_string(), t.raw)?;
                let mut sec = section(s, t.fromguid, t.raw, t.total);
                sec.offset = t.bytes.min(t.total);
                sec.resume = true;
                Ok(vec![sec])
            }
            _ => Err(failure(format!(
                "cannot send '{ds_name}': unsupported send"
            ))),
        }
    }

    /// `zfs send -nvP …` (`-t TOKEN` too): what it prints on stdout, and how it ends. A
    /// resume token's contents are printed before its snapshots are checked, so a stale
    /// token prints them and fails, as with OpenZFS. Not counted as a send, and no
    /// fault applies.
    pub fn cmd_send_dry(&self, request: &SendRequest) -> (String, Result<(), ZfsFailure>) {
        use std::fmt::Write as _;
        let mut out = String::new();
        let fault = self.state.borrow_mut().tick(FaultOp::SendDry);
        if let Err(e) = before(&fault, &format!("send '{}'", request.dataset)) {
            return (out, Err(e));
        }
        if let SendSpec::Resume { token, .. } = &request.spec {
            match Token::decode(token) {
                None => {
                    return (
                        out,
                        Err(ZfsFailure::new(
                            Exit::Code(255),
                            "cannot resume send: resume token is corrupt (invalid format)\n",
                        )),
                    )
                }
                Some(t) => {
                    out.push_str("resume token contents:\nnvlist version: 0\n");
                    if let Some(f) = t.fromguid {
                        let _ = writeln!(out, "\tfromguid = {:#x}", f.0);
                    }
                    let _ = writeln!(out, "\tbytes = {:#x}", t.bytes);
                    let _ = writeln!(out, "\ttoguid = {:#x}", t.toguid.0);
                    let _ = writeln!(out, "\ttoname = {}", t.toname);
                    if t.raw {
                        out.push_str("\tcompressok = 1\n\trawok = 1\n");
                    }
                }
            }
        }
        let sections = match self.sections(request) {
            Ok(s) => s,
            Err(f) => return (out, Err(f)),
        };
        let st = self.state.borrow();
        let ds = st.datasets.get(&request.dataset);
        let ds_name = &request.dataset;
        let mut total = 0u64;
        for (i, sec) in sections.iter().enumerate() {
            // The stream's end marker is counted with its last snapshot, so the sizes
            // add up to the total, as with OpenZFS.
            let end = if i + 1 == sections.len() { 0 } else { DONE_LEN };
            let bytes = (encode(std::slice::from_ref(sec)).len() - end) as u64;
            total += bytes;
            let to = ds_name.snapshot(&sec.snapshot);
            match sec.from_guid {
                None => {
                    let _ = writeln!(out, "full\t{to}\t{bytes}");
                }
                Some(from) => {
                    // Like OpenZFS: the base by its full name, the previous snapshot of
                    // a `-I` range by its short name.
                    let name = if i > 0 {
                        sections[i - 1].snapshot.to_string()
                    } else {
                        let snap = ds.and_then(|d| d.snapshots.iter().find(|x| x.guid == from));
                        let mark = ds.and_then(|d| d.bookmarks.iter().find(|b| b.guid == from));
                        match (snap, mark, &request.spec) {
                            (
                                _,
                                Some(b),
                                SendSpec::Incremental {
                                    base: SendBase::Bookmark { .. },
                                    ..
                                },
                            )
                            | (None, Some(b), _) => format!("{ds_name}#{}", b.name),
                            (Some(x), _, _) => ds_name.snapshot(&x.name).to_string(),
                            (None, None, _) => format!("{:#x}", from.0),
                        }
                    };
                    let _ = writeln!(out, "incremental\t{name}\t{to}\t{bytes}");
                }
            }
        }
        let _ = writeln!(out, "size\t{total}");
        (out, Ok(()))
    }

    /// `zfs receive [-s] [-u] [-F] [-o P=V]… TARGET` reading `bytes`, with any injected
    /// receiver fault applied.
    ///
    /// # Errors
    /// Like `zfs receive`; with `resumable`, an interrupted stream leaves a token.
    pub fn cmd_receive(
        &mut self,
        request: &ReceiveRequest,
        bytes: &[u8],
    ) -> Result<(), ZfsFailure> {
        let fault = self.state.get_mut().tick(FaultOp::Receive);
        let what = format!("receive into '{}'", request.target);
        let mut stop = None;
        let mut bytes = bytes;
        match &fault {
            Some(f) if f.at_byte.is_some() => {
                let at = usize::try_from(f.at_byte.unwrap_or(0)).unwrap_or(usize::MAX);
                if at < bytes.len() {
                    bytes = &bytes[..at];
                    stop = Some(effect_failure(
                        f.effect,
                        &format!("receive into '{}'", request.target),
                    ));
                }
            }
            _ => before(&fault, &what)?,
        }
        let r = self.receive_bytes(request, bytes, stop);
        if r.is_ok() {
            after(&fault, &what)?;
        }
        r
    }

    fn receive_bytes(
        &mut self,
        request: &ReceiveRequest,
        bytes: &[u8],
        stop: Option<ZfsFailure>,
    ) -> Result<(), ZfsFailure> {
        let mut reader = Reader::new(bytes);
        let mut first = true;
        loop {
            match reader.next_section() {
                Parsed::Done if !first => return stop.map_or(Ok(()), Err),
                Parsed::Done | Parsed::Garbage => {
                    return Err(stop.unwrap_or_else(|| {
                        failure("cannot receive: invalid stream (bad magic number)".to_owned())
                    }))
                }
                Parsed::Truncated if first => {
                    return Err(stop.unwrap_or_else(|| {
                        failure("cannot receive: failed to read from stream".to_owned())
                    }))
                }
                Parsed::Truncated => {
                    return Err(stop.unwrap_or_else(|| {
                        failure(
                            "cannot receive incremental stream: checksum mismatch or incomplete stream."
                                .to_owned(),
                        )
                    }))
                }
                Parsed::Section(s) => {
                    self.check_section(request, &s, first)?;
                    self.apply_section(request, &s, first);
                    first = false;
                }
                Parsed::Partial {
                    section,
                    good,
                    corrupt,
                } => {
                    self.check_section(request, &section, first)?;
                    let kind = stream_kind(&section);
                    let mut text = if request.options.resumable || corrupt {
                        format!("cannot receive {kind} stream: checksum mismatch or incomplete stream.\n")
                    } else {
                        format!("cannot receive {kind} stream: incomplete stream\n")
                    };
                    if request.options.resumable {
                        let token = self.save_partial(request, &section, first, good);
                        text.push_str(&format!(
                            "Partially received snapshot is saved.\nA resuming stream can be generated on the sending system by running:\n    zfs send -t {token}\n"
                        ));
                    }
                    return Err(stop.unwrap_or_else(|| ZfsFailure::new(Exit::Code(1), text)));
                }
            }
        }
    }

    /// What `zfs receive` checks when a snapshot's BEGIN record arrives.
    fn check_section(
        &self,
        request: &ReceiveRequest,
        s: &Section,
        first: bool,
    ) -> Result<(), ZfsFailure> {
        if !first {
            return Ok(());
        }
        let st = self.state.borrow();
        let t = &request.target;
        let kind = stream_kind(s);
        let target = st.datasets.get(t);
        let fail = |why: String| Err(failure(format!("cannot receive {kind} stream: {why}")));
        if s.resume {
            return match target.and_then(|d| d.partial.as_ref()) {
                Some(p) if p.section.guid == s.guid && p.bytes == s.offset => Ok(()),
                Some(_) => fail(format!(
                    "destination {t} has a partially-received state for another stream"
                )),
                None => fail(format!(
                    "destination '{t}' has no partially-received state to resume"
                )),
            };
        }
        if let Some(d) = target {
            if d.partial.is_some() && (s.from_guid.is_some() || request.options.force) {
                return fail(format!(
                    "destination {t} contains partially-complete state from \"zfs receive -s\"."
                ));
            }
        }
        match (s.from_guid, target) {
            (None, Some(d)) => {
                if !request.options.force {
                    // Said even when the target only holds partial state.
                    return fail(format!(
                        "destination '{t}' exists\nmust specify -F to overwrite it"
                    ));
                }
                if let Some(first) = d.snapshots.first() {
                    return fail(format!(
                        "destination has snapshots (eg. {})\nmust destroy them to overwrite it",
                        t.snapshot(&first.name)
                    ));
                }
                Ok(())
            }
            (None, None) => match t.parent() {
                Some(p) if st.datasets.contains_key(&p) => Ok(()),
                Some(p) => Err(no_dataset(p.as_str())),
                None => fail(format!("destination '{t}' is a pool")),
            },
            (Some(_), None) => fail(format!("destination '{t}' does not exist")),
            (Some(from), Some(d)) => {
                if d.snapshot(&s.snapshot).is_some() {
                    return fail(format!("destination {t}@{} already exists", s.snapshot));
                }
                if s.raw && s.encryption.is_some() && d.encryption.is_none() {
                    return fail(format!(
                        "destination {t} is not encrypted but the raw stream is"
                    ));
                }
                if !s.raw && d.encryption.is_some() && !d.key_loaded {
                    return fail(format!(
                        "destination {t} is encrypted and its key is not loaded; only raw streams can be received"
                    ));
                }
                let newest = d.snapshots.last().map(|x| x.guid);
                if newest == Some(from) {
                    if d.dirty && !request.options.force {
                        return fail(format!(
                            "destination {t} has been modified\nsince most recent snapshot"
                        ));
                    }
                    return Ok(());
                }
                let Some(pos) = d.snapshots.iter().position(|x| x.guid == from) else {
                    return fail(format!(
                        "most recent snapshot of {t} does not\nmatch incremental source"
                    ));
                };
                if !request.options.force {
                    return fail(format!(
                        "destination {t} has been modified\nsince most recent snapshot"
                    ));
                }
                for x in &d.snapshots[pos + 1..] {
                    if !x.holds.is_empty() || !st.clones_of(&t.snapshot(&x.name)).is_empty() {
                        return fail("dataset is busy".to_owned());
                    }
                }
                Ok(())
            }
        }
    }

    /// Creates the snapshot a complete section carries (after [`Self::check_section`]).
    fn apply_section(&mut self, request: &ReceiveRequest, s: &Section, first: bool) {
        let st = self.state.get_mut();
        let t = &request.target;
        let now = st.now;
        if !st.datasets.contains_key(t) {
            let guid = st.guid();
            let txg = st.txg(t.pool());
            let mut d = new_ds(s.kind, guid, txg, now);
            d.encryption = s.encryption.clone();
            d.key_loaded = s.encryption.is_none();
            d.props = request.options.set_props.clone();
            st.datasets.insert(t.clone(), d);
        }
        if first && !s.resume {
            if let Some(from) = s.from_guid {
                if request.options.force {
                    let d = st.datasets.get_mut(t).expect("inserted or checked above");
                    if let Some(pos) = d.snapshots.iter().position(|x| x.guid == from) {
                        for x in d.snapshots.split_off(pos + 1) {
                            st.destroyed.push((t.snapshot(&x.name), x.guid));
                        }
                    }
                }
            } else {
                let d = st.datasets.get_mut(t).expect("inserted or checked above");
                d.encryption = s.encryption.clone();
                d.key_loaded = s.encryption.is_none();
            }
        }
        let txg = st.txg(t.pool());
        let d = st.datasets.get_mut(t).expect("inserted or checked above");
        d.partial = None;
        d.inconsistent = false;
        d.dirty = false;
        d.snapshots.push(Snap {
            name: s.snapshot.clone(),
            guid: s.guid,
            createtxg: txg,
            creation: epoch(s.creation),
            holds: Default::default(),
            props: BTreeMap::new(),
        });
    }

    /// Records the partial state of an interrupted section; returns the token.
    fn save_partial(
        &mut self,
        request: &ReceiveRequest,
        s: &Section,
        first: bool,
        good: u64,
    ) -> String {
        let st = self.state.get_mut();
        let t = &request.target;
        let bytes = s.offset + good;
        let token = Token {
            toname: format!("{}@{}", s.dataset, s.snapshot),
            toguid: s.guid,
            fromguid: s.from_guid,
            bytes,
            total: s.total,
            raw: s.raw,
        }
        .encode();
        let now = st.now;
        if !st.datasets.contains_key(t) {
            let guid = st.guid();
            let txg = st.txg(t.pool());
            let mut d = new_ds(s.kind, guid, txg, now);
            d.inconsistent = true;
            d.encryption = s.encryption.clone();
            d.key_loaded = s.encryption.is_none();
            d.props = request.options.set_props.clone();
            st.datasets.insert(t.clone(), d);
        }
        let d = st.datasets.get_mut(t).expect("inserted above when missing");
        if first && !s.resume && s.from_guid.is_some() && request.options.force {
            // `-F` rolls back before receiving, even if the stream is then cut.
            if let Some(pos) = d.snapshots.iter().position(|x| Some(x.guid) == s.from_guid) {
                for x in d.snapshots.split_off(pos + 1) {
                    st.destroyed.push((t.snapshot(&x.name), x.guid));
                }
            }
            d.dirty = false;
        }
        let mut section = s.clone();
        section.offset = 0;
        section.resume = false;
        d.partial = Some(Partial {
            token: token.clone(),
            section,
            bytes,
        });
        token
    }

    /// `zfs receive -A TARGET`.
    ///
    /// # Errors
    /// Like `zfs receive -A`.
    pub fn cmd_abort_receive(&mut self, dataset: &DatasetName) -> Result<(), ZfsFailure> {
        let st = self.state.get_mut();
        let fault = st.tick(FaultOp::AbortReceive);
        let what = format!("abort receive into '{dataset}'");
        before(&fault, &what)?;
        let d = st
            .datasets
            .get_mut(dataset)
            .ok_or_else(|| no_dataset(dataset.as_str()))?;
        if d.partial.take().is_none() {
            return Err(failure(format!(
                "'{dataset}' does not have any resumable receive state to abort"
            )));
        }
        if d.inconsistent {
            st.datasets.remove(dataset);
        }
        after(&fault, &what)
    }
}

fn stream_kind(s: &Section) -> &'static str {
    if s.resume {
        "resume"
    } else if s.from_guid.is_some() {
        "incremental"
    } else {
        "new filesystem"
    }
}

fn new_ds(kind: DatasetKind, guid: Guid, createtxg: u64, now: DateTime<Utc>) -> Ds {
    Ds {
        kind,
        guid,
        createtxg,
        creation: now,
        encryption: None,
        key_loaded: true,
        origin: None,
        dirty: false,
        inconsistent: false,
        props: BTreeMap::new(),
        snapshots: Vec::new(),
        bookmarks: Vec::new(),
        partial: None,
    }
}

/// The fake's send stream: the bytes of [`FakeZfs::cmd_send`] and how the sender ends.
#[derive(Debug)]
pub struct FakeSendStream {
    data: Vec<u8>,
    pos: usize,
    end: Option<ZfsFailure>,
    dataset: DatasetName,
}

impl FakeSendStream {
    /// All the bytes the sender writes (before it fails, if it does).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How the sender ends: `Some` when it fails after writing [`Self::bytes`].
    pub fn failure(&self) -> Option<&ZfsFailure> {
        self.end.as_ref()
    }
}

impl Read for FakeSendStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl SendStream for FakeSendStream {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }

    fn finish(self: Box<Self>) -> Result<(), SendError> {
        match self.end {
            None => Ok(()),
            Some(f) => Err(SendError::Command {
                dataset: self.dataset,
                source: CommandError::Failed(f),
            }),
        }
    }
}

/// Reads a whole stream in 1 MiB buffers, reporting progress.
pub(crate) fn read_all(
    stream: &mut dyn SendStream,
    progress: &mut Option<&mut dyn FnMut(u64)>,
) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; crate::cli::COPY_BUFFER];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(p) = progress.as_mut() {
                    p(out.len() as u64);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl ZfsBackend for FakeZfs {
    fn list(&self, roots: &[DatasetName]) -> Result<Inventory, ListError> {
        let text = self
            .cmd_list(roots)
            .map_err(|f| ListError::command(roots, f.into()))?;
        zsnap_core::zfs_list::parse_list(&text).map_err(|e| ListError::parse(roots, &text, e))
    }

    fn snapshot(
        &mut self,
        names: &[SnapshotName],
        properties: &BTreeMap<String, String>,
    ) -> Result<(), SnapshotError> {
        if names.is_empty() {
            return Err(SnapshotError::Empty);
        }
        for p in properties.keys() {
            check_property_name(p).map_err(|source| SnapshotError::Property {
                names: names
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                source,
            })?;
        }
        self.change(FaultOp::Snapshot, |z| z.cmd_snapshot(names, properties))
            .map_err(|f| SnapshotError::command(names, f.into()))
    }

    fn destroy(
        &mut self,
        dataset: &DatasetName,
        snapshots: &[SnapshotRef],
    ) -> Result<DestroyReport, DestroyError> {
        let mut report = DestroyReport::default();
        let holds: HashMap<ShortName, u64>;
        let mut batch = Vec::new();
        {
            let st = self.state.borrow();
            let Some(ds) = st.datasets.get(dataset) else {
                return Err(DestroyError::Recheck {
                    dataset: dataset.clone(),
                    source: no_dataset(dataset.as_str()).into(),
                });
            };
            holds = ds
                .snapshots
                .iter()
                .map(|s| (s.name.clone(), s.holds.len() as u64))
                .collect();
            for r in snapshots {
                match ds.snapshot(&r.name) {
                    Some(s) if s.guid == r.guid => batch.push((r.name.clone(), r.guid)),
                    other => report.skipped.push(Skipped {
                        name: r.name.clone(),
                        planned: r.guid,
                        now: other.map(|s| s.guid),
                    }),
                }
            }
        }
        let userrefs = |n: &ShortName| holds.get(n).copied().unwrap_or(0);
        for chunk in split_batches(dataset, batch, self.destroy_budget) {
            destroy_with_retry(dataset, chunk, &mut report, &userrefs, &mut |names| {
                self.change(FaultOp::Destroy, |z| z.cmd_destroy(dataset, names))
                    .map_err(|f| AttemptError::from_failure(dataset, names, f))
            })?;
        }
        Ok(report)
    }

    fn hold(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), HoldError> {
        HoldError::check_args(snapshot, tag)?;
        self.change(FaultOp::Hold, |z| z.cmd_hold(snapshot, tag))
            .map_err(|f| HoldError::Command {
                snapshot: snapshot.clone(),
                tag: tag.to_owned(),
                source: f.into(),
            })
    }

    fn release(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ReleaseError> {
        ReleaseError::check_args(snapshot, tag)?;
        self.change(FaultOp::Release, |z| z.cmd_release(snapshot, tag))
            .map_err(|f| ReleaseError::Command {
                snapshot: snapshot.clone(),
                tag: tag.to_owned(),
                source: f.into(),
            })
    }

    fn bookmark(
        &mut self,
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), BookmarkError> {
        BookmarkError::check_args(snapshot, bookmark)?;
        self.change(FaultOp::Bookmark, |z| z.cmd_bookmark(snapshot, bookmark))
            .map_err(|f| BookmarkError::Command {
                snapshot: snapshot.clone(),
                bookmark: bookmark.clone(),
                source: f.into(),
            })
    }

    fn destroy_bookmark(&mut self, bookmark: &BookmarkName) -> Result<(), DestroyBookmarkError> {
        self.change(FaultOp::DestroyBookmark, |z| {
            z.cmd_destroy_bookmark(bookmark)
        })
        .map_err(|f| DestroyBookmarkError::Command {
            bookmark: bookmark.clone(),
            source: f.into(),
        })
    }

    fn set_property(
        &mut self,
        target: &PropertyTarget,
        name: &str,
        value: &str,
    ) -> Result<(), SetPropertyError> {
        check_property_name(name).map_err(|source| SetPropertyError::Name {
            target: target.clone(),
            source,
        })?;
        self.change(FaultOp::SetProperty, |z| z.cmd_set(target, name, value))
            .map_err(|f| SetPropertyError::Command {
                target: target.clone(),
                name: name.to_owned(),
                source: f.into(),
            })
    }

    fn property(
        &self,
        target: &PropertyTarget,
        name: &str,
    ) -> Result<Option<String>, GetPropertyError> {
        check_property_name(name).map_err(|source| GetPropertyError::Name {
            target: target.clone(),
            source,
        })?;
        let text = self
            .cmd_get(target, name)
            .map_err(|f| GetPropertyError::Command {
                target: target.clone(),
                name: name.to_owned(),
                source: f.into(),
            })?;
        parse_get_value(&text).ok_or_else(|| GetPropertyError::Parse {
            target: target.clone(),
            name: name.to_owned(),
            output: text,
        })
    }

    fn send(&self, request: &SendRequest) -> Result<Box<dyn SendStream>, SendError> {
        let stream = self.cmd_send(request).map_err(|f| SendError::Command {
            dataset: request.dataset.clone(),
            source: f.into(),
        })?;
        Ok(Box::new(stream))
    }

    fn receive(
        &mut self,
        request: &ReceiveRequest,
        mut stream: Box<dyn SendStream>,
        mut progress: Option<&mut dyn FnMut(u64)>,
    ) -> Result<ReceiveOutcome, RecvError> {
        let read = read_all(&mut *stream, &mut progress);
        let sender = stream.finish().err();
        let bytes = match read {
            Ok(b) => b,
            Err(source) => {
                return Err(RecvError::Copy {
                    target: request.target.clone(),
                    source,
                })
            }
        };
        let count = bytes.len() as u64;
        match self.change(FaultOp::Receive, |z| z.cmd_receive(request, &bytes)) {
            Err(f) => Err(RecvError::Command {
                target: request.target.clone(),
                sender: sender.map(Box::new),
                source: f.into(),
            }),
            Ok(()) => match sender {
                Some(source) => Err(RecvError::Sender {
                    target: request.target.clone(),
                    source,
                }),
                None => Ok(ReceiveOutcome { bytes: Some(count) }),
            },
        }
    }

    fn abort_receive(&mut self, dataset: &DatasetName) -> Result<(), AbortReceiveError> {
        self.change(FaultOp::AbortReceive, |z| z.cmd_abort_receive(dataset))
            .map_err(|f| AbortReceiveError::Command {
                dataset: dataset.clone(),
                source: f.into(),
            })
    }

    fn estimate_send(&self, request: &SendRequest) -> Result<SendEstimate, EstimateError> {
        let dataset = &request.dataset;
        let (out, end) = self.cmd_send_dry(request);
        end.map_err(|f| EstimateError::Command {
            dataset: dataset.clone(),
            source: f.into(),
        })?;
        parse_send_estimate(&out).map_err(|source| EstimateError::Parse {
            dataset: dataset.clone(),
            output: out.chars().take(4096).collect(),
            source,
        })
    }

    fn pools(&self, pools: &[DatasetName]) -> Result<Vec<PoolHealth>, PoolsError> {
        let command = |command| {
            move |f: ZfsFailure| PoolsError::Command {
                command,
                source: f.into(),
            }
        };
        let list = self.cmd_zpool_list().map_err(command("list"))?;
        let status = self.cmd_zpool_status().map_err(command("status"))?;
        read_pools(&list, &status, pools)
    }

    fn holds(&self, snapshots: &[SnapshotName]) -> Result<Vec<(SnapshotName, String)>, HoldsError> {
        let text = self
            .cmd_holds(snapshots)
            .map_err(|f| HoldsError::command(snapshots, f.into()))?;
        parse_holds(&text, snapshots).map_err(|e| HoldsError::parse(snapshots, e))
    }

    fn resume_token(&self, token: &str) -> Result<ResumeToken, ResumeTokenError> {
        // `zfs send -t` finds the dataset in the token itself.
        let dataset = Token::decode(token)
            .and_then(|t| t.toname.parse::<SnapshotName>().ok())
            .map(|s| s.dataset().clone());
        let (out, end) = match dataset {
            Some(dataset) => {
                let spec = SendSpec::Resume {
                    token: token.to_owned(),
                    snapshot: None,
                };
                self.cmd_send_dry(&SendRequest::new(dataset, spec, false))
            }
            None => (
                String::new(),
                Err(ZfsFailure::new(
                    Exit::Code(255),
                    "cannot resume send: resume token is corrupt (invalid format)\n",
                )),
            ),
        };
        let decoded = parse_resume_token(&out);
        match (decoded, end) {
            (Ok(t), Ok(())) => Ok(t),
            (decoded, Err(f)) => Err(ResumeTokenError::command(token, decoded.ok(), f.into())),
            (Err(source), Ok(())) => Err(ResumeTokenError::parse(token, &out, source)),
        }
    }
}
