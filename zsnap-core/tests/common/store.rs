//! Hand-built backup stores for the tests of the backup decisions: sidecars of backups
//! whose guid, createtxg and creation hour follow one number, and a listing with
//! sidecar bytes that `Catalog::build` reads like a real store's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::backup::{
    BackupId, Catalog, Compression, Sha256, Sidecar, StoreObject, StreamKind, StreamName,
};
use zsnap_core::{DatasetName, Guid, ShortName};

/// `hours` after 2026-11-23 00:00 UTC.
pub fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + TimeDelta::hours(hours)
}

pub fn short(s: &str) -> ShortName {
    s.parse().unwrap()
}

pub fn dsn(s: &str) -> DatasetName {
    s.parse().unwrap()
}

/// The sidecar of a backup of `dataset@snap` (guid and createtxg `n`, created at hour
/// `n`), full or incremental from `parent` (name, guid).
pub fn sidecar(dataset: &str, snap: &str, n: u64, parent: Option<(&str, u64)>) -> Sidecar {
    sidecar_at(dataset, snap, n, n, t(n as i64), parent)
}

/// Like [`sidecar`], with guid, createtxg and creation given separately.
pub fn sidecar_at(
    dataset: &str,
    snap: &str,
    guid: u64,
    createtxg: u64,
    created: DateTime<Utc>,
    parent: Option<(&str, u64)>,
) -> Sidecar {
    let kind = match parent {
        None => StreamKind::Full,
        Some((p, _)) => StreamKind::Incremental { parent: short(p) },
    };
    let name =
        StreamName::new(dsn(dataset), short(snap), created, kind, Compression::None).unwrap();
    Sidecar::new(
        &name,
        Guid(guid),
        createtxg,
        parent.map(|(_, g)| Guid(g)),
        false,
        1000 + guid,
        Sha256::from_bytes([guid as u8; 32]),
        "0.1.0",
    )
    .unwrap()
}

/// A store being filled: objects and sidecar bytes.
#[derive(Default)]
pub struct Store {
    pub objects: Vec<StoreObject>,
    pub sidecars: BTreeMap<String, Vec<u8>>,
    /// Keys an interrupted deletion was removing (its pending-deletion record).
    pub pending: BTreeSet<String>,
}

impl Store {
    /// A complete backup; returns its id.
    pub fn put(&mut self, sc: &Sidecar) -> BackupId {
        let name = sc.stream_name().unwrap();
        self.objects
            .push(StoreObject::new(name.key(), sc.size, t(100)));
        self.objects
            .push(StoreObject::new(name.sidecar_key(), 300, t(100)));
        self.sidecars
            .insert(name.sidecar_key(), sc.to_json().into_bytes());
        BackupId::from(&name)
    }

    /// A stream without sidecar (an upload that did not finish), last written at
    /// `written`.
    pub fn put_unfinished(&mut self, sc: &Sidecar, written: DateTime<Utc>) -> BackupId {
        let name = sc.stream_name().unwrap();
        self.objects.push(StoreObject::new(name.key(), 5, written));
        BackupId::from(&name)
    }

    /// Any object with these bytes (listed as a sidecar when its key is one).
    pub fn put_raw(&mut self, key: &str, bytes: &[u8]) {
        self.objects
            .push(StoreObject::new(key, bytes.len() as u64, t(100)));
        self.sidecars.insert(key.to_owned(), bytes.to_vec());
    }

    pub fn remove(&mut self, key: &str) {
        self.objects.retain(|o| o.key != key);
        self.sidecars.remove(key);
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::build_with_pending(&self.objects, &self.sidecars, &self.pending)
    }
}
