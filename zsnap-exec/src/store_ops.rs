//! What `zsnap backups list`, `zsnap backups verify` and `zsnap restore --save` do with
//! a store's backups, as request → outcome functions any front end calls: the
//! catalog filtered ([`list_backups`]), every backup re-read and every chain checked
//! ([`verify_store`]), one restore point's own stream saved to a file
//! ([`save_point`]), deletions made in order and logged ([`delete_logged`]; deleting
//! and pruning plan with [`zsnap_core::backup`]). A store named by its URL alone is
//! opened with the config's settings for it and a front-end's overrides
//! ([`open_catalog`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use zsnap_core::backup::{
    resolve_restore_with, BackupEntry, BackupId, Catalog, EntryState, Link, RestoreError,
    RestoreTarget,
};
use zsnap_core::backup::{Deletion, StoreUrl};
use zsnap_core::config::Config;
use zsnap_core::{DatasetName, Guid, ShortName};

use crate::audit::{AuditError, AuditLog};
use crate::backup::{delete_in_order, save_entry, verify_entry, Deletions, VerifyError};
use crate::failure::error_chain;
use crate::store::{
    open_initialised, read_catalog, settings_for_url, BackupStore, OpenStoreError,
    OpenStoreProblem, S3Settings, SpecSettingsError, StoreError,
};

/// What a front-end says about an S3 store beside its URL (the CLI's `--s3-*` flags):
/// each setting given wins over the config's `[backups.NAME]` for that store and over
/// the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Overrides {
    /// The service's URL.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint.
    pub allow_http: bool,
}

impl S3Overrides {
    /// No override.
    pub fn new() -> Self {
        S3Overrides::default()
    }

    /// With the endpoint, if given.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// With the region, if given.
    #[must_use]
    pub fn with_region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }

    /// Allowing plain http, or not.
    #[must_use]
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }
}

/// The S3 settings for `url`: the overrides, else the config's `[backups.NAME]` with
/// this store, else the environment (read for anything unset when the store opens).
///
/// # Errors
/// An unreadable secret key file.
pub fn store_settings(
    url: &StoreUrl,
    overrides: &S3Overrides,
    config: Option<&Config>,
) -> Result<S3Settings, SpecSettingsError> {
    let mut s = settings_for_url(url, config)?;
    if let Some(e) = &overrides.endpoint {
        s = s.with_endpoint(e.clone());
    }
    if let Some(r) = &overrides.region {
        s = s.with_region(r.clone());
    }
    if overrides.allow_http {
        s = s.with_allow_http(true);
    }
    Ok(s)
}

/// An initialised store could not be opened or its catalog read. Reads after
/// "failed to …".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenCatalogError {
    /// Its settings are unusable.
    #[error(transparent)]
    Settings(SpecSettingsError),
    /// It cannot be opened, or was never initialised.
    #[error(transparent)]
    Open(OpenStoreError),
    /// Its catalog cannot be read.
    #[error("read the catalog of {store}")]
    Catalog {
        /// The store.
        store: StoreUrl,
        /// The cause.
        #[source]
        source: StoreError,
    },
}

impl OpenCatalogError {
    /// Whether the store exists but was never initialised (`zsnap backups init`).
    pub fn not_initialised(&self) -> bool {
        matches!(
            self,
            OpenCatalogError::Open(OpenStoreError {
                problem: OpenStoreProblem::NotInitialised { .. },
                ..
            })
        )
    }
}

/// Opens the initialised store at `url` ([`store_settings`]) and reads its catalog.
///
/// # Errors
/// See [`OpenCatalogError`].
pub fn open_catalog(
    url: &StoreUrl,
    overrides: &S3Overrides,
    config: Option<&Config>,
) -> Result<(Arc<dyn BackupStore>, Catalog), OpenCatalogError> {
    let settings = store_settings(url, overrides, config).map_err(OpenCatalogError::Settings)?;
    let (store, _) = open_initialised(url, &settings).map_err(OpenCatalogError::Open)?;
    let (_, catalog) = read_catalog(&*store).map_err(|source| OpenCatalogError::Catalog {
        store: url.clone(),
        source,
    })?;
    Ok((Arc::from(store), catalog))
}

/// What [`delete_logged`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoggedDeletions {
    /// The deletions tried, and the one that failed.
    pub done: Deletions,
    /// Why their audit lines could not all be written.
    pub unlogged: Option<AuditError>,
}

/// Deletes `deletions` in order ([`delete_in_order`]) and logs each one tried in
/// `audit` (when given) as `(command, phase)`.
pub fn delete_logged(
    store: &dyn BackupStore,
    deletions: &[Deletion],
    now: DateTime<Utc>,
    audit: Option<&mut AuditLog>,
    (command, phase): (&str, &str),
) -> LoggedDeletions {
    let done = delete_in_order(store, deletions, now);
    let unlogged = audit.and_then(|a| {
        a.record_deletions(now, command, phase, &store.url().to_string(), &done.tried)
            .err()
    });
    LoggedDeletions { done, unlogged }
}

/// Which backups [`list_backups`] shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListFilter {
    /// Only this dataset's.
    pub dataset: Option<DatasetName>,
    /// Only backups of snapshots taken at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only backups of snapshots taken at or before this time.
    pub until: Option<DateTime<Utc>>,
}

impl ListFilter {
    /// Every backup.
    pub fn new() -> Self {
        ListFilter::default()
    }

    /// Only `dataset`'s backups (every dataset's with `None`).
    #[must_use]
    pub fn with_dataset(mut self, dataset: Option<DatasetName>) -> Self {
        self.dataset = dataset;
        self
    }

    /// Only backups of snapshots taken in `since..=until` (either end open with `None`).
    #[must_use]
    pub fn with_times(
        mut self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Self {
        self.since = since;
        self.until = until;
        self
    }
}

/// One backup of a listing (a row of `zsnap backups list --json`).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct ListedBackup<'c> {
    /// The catalog's entry.
    #[serde(flatten)]
    pub entry: &'c BackupEntry,
    /// Its dataset.
    pub dataset: &'c DatasetName,
    /// Its snapshot.
    pub snapshot: &'c ShortName,
    /// When its snapshot was taken.
    pub created: DateTime<Utc>,
}

/// The backups of `catalog` that `filter` selects, per dataset, in the catalog's order.
pub fn list_backups<'c>(catalog: &'c Catalog, filter: &ListFilter) -> Vec<ListedBackup<'c>> {
    let mut rows = Vec::new();
    for (name, backups) in &catalog.datasets {
        if filter.dataset.as_ref().is_some_and(|d| d != name) {
            continue;
        }
        for e in &backups.entries {
            let created = e.stream.created();
            if filter.since.is_some_and(|t| created < t)
                || filter.until.is_some_and(|t| created > t)
            {
                continue;
            }
            rows.push(ListedBackup {
                entry: e,
                dataset: name,
                snapshot: e.stream.snapshot(),
                created,
            });
        }
    }
    rows
}

/// What an interrupted prune or delete left, when it left something.
pub fn interrupted_note(catalog: &Catalog) -> Option<String> {
    (!catalog.orphan_sidecars.is_empty()).then(|| {
        format!(
            "{} sidecar(s) left by an interrupted prune or delete (their streams are gone); \
             the next `zsnap backups prune` (or run) finishes the deletion",
            catalog.orphan_sidecars.len()
        )
    })
}

/// One thing [`verify_store`] found wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyProblem {
    /// A complete backup does not match its sidecar, or cannot be read.
    #[error(transparent)]
    Mismatch(#[from] VerifyError),
    /// A stream without its sidecar: an upload that did not finish.
    #[error("{id}: unfinished (no sidecar)")]
    Unfinished {
        /// The backup.
        id: BackupId,
    },
    /// A backup the catalog found damaged.
    #[error("{id}: damaged: {problem}")]
    Damaged {
        /// The backup.
        id: BackupId,
        /// What is wrong.
        problem: String,
    },
    /// A sidecar whose stream is gone.
    #[error("{id}: MISSING: its sidecar is in the store but its stream is gone")]
    Missing {
        /// The backup.
        id: BackupId,
    },
    /// An incremental no restorable backup recreates the parent of.
    #[error("{id}: broken chain: no restorable backup of its parent {parent} (guid {guid})")]
    BrokenChain {
        /// The backup.
        id: BackupId,
        /// Its parent's name.
        parent: ShortName,
        /// Its parent's guid.
        guid: Guid,
    },
}

impl Serialize for VerifyProblem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&error_chain(self))
    }
}

/// What [`verify_store`] found (`zsnap backups verify --json`).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Verification {
    /// Complete backups read back and matched.
    pub checked: usize,
    /// Bytes read.
    pub bytes: u64,
    /// What is wrong, each rendered with its causes in JSON.
    pub problems: Vec<VerifyProblem>,
    /// What an interrupted deletion left ([`interrupted_note`]).
    pub notes: Vec<String>,
}

impl Verification {
    /// Whether every backup matched and every chain is whole.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads back every complete backup of `catalog` (of `dataset` only, when given) from
/// `store` and compares it with its sidecar ([`verify_entry`]), and checks every chain.
pub fn verify_store(
    store: &dyn BackupStore,
    catalog: &Catalog,
    dataset: Option<&DatasetName>,
) -> Verification {
    let mut v = Verification {
        checked: 0,
        bytes: 0,
        problems: Vec::new(),
        notes: interrupted_note(catalog).into_iter().collect(),
    };
    for (name, backups) in &catalog.datasets {
        if dataset.is_some_and(|d| d != name) {
            continue;
        }
        for e in &backups.entries {
            let id = e.id.clone();
            match &e.state {
                EntryState::Complete => match verify_entry(store, e) {
                    Ok(n) => {
                        v.checked += 1;
                        v.bytes += n;
                    }
                    Err(err) => v.problems.push(err.into()),
                },
                EntryState::Unfinished => v.problems.push(VerifyProblem::Unfinished { id }),
                EntryState::Damaged { problem } => v.problems.push(VerifyProblem::Damaged {
                    id,
                    problem: problem.clone(),
                }),
                EntryState::Missing => v.problems.push(VerifyProblem::Missing { id }),
                _ => {}
            }
            if let Some(Link::Broken { parent, guid }) = &e.link {
                v.problems.push(VerifyProblem::BrokenChain {
                    id: e.id.clone(),
                    parent: parent.clone(),
                    guid: *guid,
                });
            }
        }
    }
    v
}

/// What [`save_point`] saved (or, dry, would save).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Saved {
    /// The backup whose stream it is.
    pub id: BackupId,
    /// Its bytes (`None` in a dry run).
    pub bytes: Option<u64>,
    /// How many streams of its chain must be received before it (0 for a full).
    pub earlier: usize,
}

/// Why [`save_point`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// No backup restores to the point asked for.
    #[error(transparent)]
    Resolve(#[from] RestoreError),
    /// The temporary file beside the destination cannot be made.
    #[error("create a temporary file in {}", .dir.display())]
    Temp {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stream cannot be read, or does not match its sidecar.
    #[error(transparent)]
    Read(#[from] VerifyError),
    /// The saved stream cannot be synced.
    #[error("sync the saved stream")]
    Sync(#[source] std::io::Error),
    /// The file cannot be put in place.
    #[error("save the stream as {}", .path.display())]
    Persist {
        /// The destination.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Writes the own stream (decompressed, checked) of the backup of `dataset` that
/// restores to `point` into the file `path`, through a temporary file beside it, so
/// `path` holds a whole stream or nothing. With `allow_older`, the newest restorable
/// point when a newer backup cannot be restored. A dry run only resolves the point.
///
/// # Errors
/// No such point, or the stream cannot be read, checked or written.
pub fn save_point(
    store: &dyn BackupStore,
    catalog: &Catalog,
    dataset: &DatasetName,
    point: &RestoreTarget,
    allow_older: bool,
    path: &Path,
    dry_run: bool,
) -> Result<Saved, SaveError> {
    let chain = resolve_restore_with(catalog, dataset, point, allow_older)?;
    let entry = chain.last().expect("a resolved chain is not empty");
    let mut saved = Saved {
        id: entry.id.clone(),
        bytes: None,
        earlier: chain.len() - 1,
    };
    if dry_run {
        return Ok(saved);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| SaveError::Temp {
        dir: dir.to_owned(),
        source,
    })?;
    let n = save_entry(store, entry, tmp.as_file_mut(), &mut |_| {})?;
    tmp.as_file().sync_all().map_err(SaveError::Sync)?;
    tmp.persist(path).map_err(|e| SaveError::Persist {
        path: path.to_owned(),
        source: e.error,
    })?;
    saved.bytes = Some(n);
    Ok(saved)
}
