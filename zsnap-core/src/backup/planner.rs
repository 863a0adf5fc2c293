//! [`plan_backup`]: which stream to write, from which base, and the bookmarks around it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::catalog::{BackupId, Catalog, EntryState};
use super::step::BackupStep;
use super::store::{StoreUrl, MAX_S3_KEY};
use super::stream::{
    Compression, StreamKind, StreamName, StreamNameError, MAX_KEY_COMPONENT, SIDECAR_SUFFIX,
};
use crate::inventory::{Dataset, Guid, Snapshot, MANAGED_PROPERTY};
use crate::naming::{Label, NamingError, NamingScheme};
use crate::plan::{
    BookmarkStep, DestroyBookmarkStep, Location, Note, Plan, SendBase, SendSpec, SnapshotRef,
    SnapshotStep, Step,
};
use crate::policy::MANAGED_VALUE;
use crate::zfs_names::{BookmarkName, DatasetName, NameError, ShortName, SnapshotName};

/// What the names of the bookmarks that backups keep on the source begin with.
pub const BACKUP_BOOKMARK_PREFIX: &str = "zsnap-backup";

/// The label of the snapshots the backup planner takes, unless the request names
/// another.
pub const DEFAULT_BACKUP_LABEL: &str = "backup";

/// The bookmark a backup to `store` keeps of the snapshot with `guid`:
/// `zsnap-backup_<store tag>_<guid in 16 hex digits>` (see [`StoreUrl::tag`]). One per
/// store: each backup to a store releases that store's older one.
pub fn backup_bookmark_name(store: &StoreUrl, guid: Guid) -> ShortName {
    format!("{BACKUP_BOOKMARK_PREFIX}_{}_{:016x}", store.tag(), guid.0)
        .parse()
        .expect("prefix, hex tag and hex guid are name characters, 43 bytes in all")
}

/// Which base a backup is sent from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupMode {
    /// A full stream.
    Full,
    /// An incremental from the newest snapshot that has a restorable backup in the
    /// store and is still on the source (as a snapshot or a bookmark, matched by
    /// guid); a full stream when there is none.
    AutoIncremental,
    /// An incremental from this snapshot of the dataset, which must have a restorable
    /// backup in the store.
    Since(ShortName),
}

impl BackupMode {
    /// The mode when several are asked for at once: `--since` wins over
    /// `--auto-incremental`, which wins over a full backup.
    pub fn from_flags(since: Option<ShortName>, auto_incremental: bool) -> BackupMode {
        match (since, auto_incremental) {
            (Some(base), _) => BackupMode::Since(base),
            (None, true) => BackupMode::AutoIncremental,
            (None, false) => BackupMode::Full,
        }
    }
}

/// A `--since` argument that does not name a snapshot of the backed-up dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SinceError {
    /// `other@snap` for another dataset.
    #[error(
        "--since {input:?} names a snapshot of {other}, but the backup is of {dataset}; \
         give the name of a snapshot of {dataset}, without '@'"
    )]
    OtherDataset {
        /// The argument, verbatim.
        input: String,
        /// The backed-up dataset.
        dataset: DatasetName,
        /// The dataset the argument names.
        other: String,
    },
    /// A bookmark (`#name`).
    #[error("--since {input:?} names a bookmark; give the name of a snapshot")]
    Bookmark {
        /// The argument, verbatim.
        input: String,
    },
    /// Not a snapshot name.
    #[error("--since {input:?} is not a snapshot name")]
    Invalid {
        /// The argument, verbatim.
        input: String,
        /// Why.
        #[source]
        source: NameError,
    },
}

/// Reads a `--since` argument for a backup of `dataset`: a snapshot's short name
/// (`snap`), optionally written `@snap` or `DATASET@snap` with exactly this dataset.
/// A snapshot of another dataset, a bookmark, or a name with `/` is refused.
///
/// # Errors
/// A [`SinceError`] saying which.
///
/// # Example
/// ```
/// use zsnap_core::backup::parse_since;
/// let ds = "tank/home".parse().unwrap();
/// assert_eq!(parse_since(&ds, "daily").unwrap().as_str(), "daily");
/// assert_eq!(parse_since(&ds, "tank/home@daily").unwrap().as_str(), "daily");
/// assert!(parse_since(&ds, "tank/other@daily").is_err());
/// assert!(parse_since(&ds, "a/b").is_err());
/// ```
pub fn parse_since(dataset: &DatasetName, input: &str) -> Result<ShortName, SinceError> {
    if input.contains('#') {
        return Err(SinceError::Bookmark {
            input: input.to_owned(),
        });
    }
    let short = match input.split_once('@') {
        Some((ds, short)) if ds.is_empty() || ds == dataset.as_str() => short,
        Some((ds, _)) => {
            return Err(SinceError::OtherDataset {
                input: input.to_owned(),
                dataset: dataset.clone(),
                other: ds.to_owned(),
            })
        }
        None => input,
    };
    short.parse().map_err(|source| SinceError::Invalid {
        input: input.to_owned(),
        source,
    })
}

/// A request to back up one dataset to one store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackupRequest {
    /// Where the dataset lives.
    pub location: Location,
    /// The dataset.
    pub dataset: DatasetName,
    /// The store.
    pub store: StoreUrl,
    /// Full, automatic incremental, or incremental since a snapshot.
    pub mode: BackupMode,
    /// The snapshot to back up; `None` takes a new one, named by `naming` and `label`.
    pub snapshot: Option<ShortName>,
    /// The label of a new snapshot.
    pub label: Label,
    /// How a new snapshot is named.
    pub naming: NamingScheme,
    /// Compression of the stored stream.
    pub compression: Compression,
}

impl BackupRequest {
    /// A backup of `dataset` on the local machine to `store`, taking a new snapshot
    /// labelled [`DEFAULT_BACKUP_LABEL`] with the default naming scheme, uncompressed.
    pub fn new(dataset: DatasetName, store: StoreUrl, mode: BackupMode) -> Self {
        BackupRequest {
            location: Location::local(),
            dataset,
            store,
            mode,
            snapshot: None,
            label: DEFAULT_BACKUP_LABEL
                .parse()
                .expect("\"backup\" is a valid label"),
            naming: NamingScheme::default(),
            compression: Compression::None,
        }
    }

    /// The same request for an existing snapshot (or, with `None`, a new one).
    #[must_use]
    pub fn with_snapshot(mut self, snapshot: Option<ShortName>) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// The same request with another label for a new snapshot.
    #[must_use]
    pub fn with_label(mut self, label: Label) -> Self {
        self.label = label;
        self
    }

    /// The same request with another naming scheme for a new snapshot.
    #[must_use]
    pub fn with_naming(mut self, naming: NamingScheme) -> Self {
        self.naming = naming;
        self
    }

    /// The same request with compression.
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The same request for a dataset at another location.
    #[must_use]
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = location;
        self
    }
}

/// What to do for a backup: take its snapshot first, or send it.
#[must_use = "a plan does nothing until it is applied"]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupPlan {
    /// The snapshot to back up does not exist yet. Apply `plan` (one
    /// [`Step::Snapshot`]), list the source again and plan again with
    /// [`BackupRequest::with_snapshot`]`(Some(snapshot.short()))`: the backup and its
    /// bookmark name the snapshot by guid, which only exists once it is taken.
    /// Everything else was already checked as if the snapshot existed.
    TakeSnapshot {
        /// The snapshot step.
        plan: Plan,
        /// The snapshot it takes.
        snapshot: SnapshotName,
    },
    /// Apply `plan`: a [`Step::Backup`], then a [`Step::Bookmark`] of the backed-up
    /// snapshot and a [`Step::DestroyBookmark`] of each older backup bookmark of this
    /// store.
    Send {
        /// The steps.
        plan: Plan,
        /// The stream it writes.
        stream: StreamName,
    },
}

impl BackupPlan {
    /// The steps of either stage.
    pub fn plan(&self) -> &Plan {
        match self {
            BackupPlan::TakeSnapshot { plan, .. } | BackupPlan::Send { plan, .. } => plan,
        }
    }
}

/// Why a backup cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackupPlanError {
    /// The source listing given is of another dataset.
    #[error("the backup is of {requested} but the listing given is of {listed}")]
    WrongDataset {
        /// The dataset of the request.
        requested: DatasetName,
        /// The dataset listed.
        listed: DatasetName,
    },
    /// `--snapshot` names a snapshot the source does not have.
    #[error("snapshot {snapshot} does not exist")]
    SnapshotMissing {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// The new snapshot cannot be named.
    #[error("cannot name a new snapshot of {dataset}")]
    Naming {
        /// The dataset.
        dataset: DatasetName,
        /// Why.
        #[source]
        source: NamingError,
    },
    /// The new snapshot's name (or its bookmark's) is too long for this dataset.
    #[error("cannot name a snapshot or bookmark of {dataset}")]
    Name {
        /// The dataset.
        dataset: DatasetName,
        /// Why.
        #[source]
        source: NameError,
    },
    /// The name a new snapshot would get is taken by a snapshot zsnap does not manage.
    #[error("snapshot {snapshot} exists already; back it up with --snapshot {}", .snapshot.short())]
    NewSnapshotExists {
        /// The snapshot.
        snapshot: SnapshotName,
    },
    /// The `--since` base does not exist.
    #[error("the --since base {base} does not exist")]
    SinceMissing {
        /// The base.
        base: SnapshotName,
    },
    /// The `--since` base is not older than the backed-up snapshot.
    #[error("the --since base {base} is not older than {snapshot}")]
    SinceNotOlder {
        /// The base.
        base: SnapshotName,
        /// The snapshot backed up.
        snapshot: SnapshotName,
    },
    /// The `--since` base has no restorable backup in the store.
    #[error(
        "the --since base {base} has no restorable backup in {store}, so an incremental \
         from it could never be restored; back it up first, or make a full backup"
    )]
    SinceNotInStore {
        /// The base.
        base: SnapshotName,
        /// The store.
        store: StoreUrl,
    },
    /// The snapshot is backed up in the store already.
    #[error("{snapshot} is backed up in {store} already, as {id}")]
    AlreadyBackedUp {
        /// The snapshot.
        snapshot: SnapshotName,
        /// The store.
        store: StoreUrl,
        /// The backup.
        id: BackupId,
    },
    /// The key the stream would get holds a damaged backup.
    #[error(
        "{store} holds a damaged backup under the same key, {id}; look at it and delete it first"
    )]
    KeyTaken {
        /// The store.
        store: StoreUrl,
        /// The backup.
        id: BackupId,
    },
    /// The key differs from an existing one only in case.
    #[error(
        "the key {key} differs only in case from {existing} in {store}; \
         they would be one file on a case-insensitive filesystem"
    )]
    CaseCollision {
        /// The new key.
        key: String,
        /// The existing key.
        existing: String,
        /// The store.
        store: StoreUrl,
    },
    /// The key is too long for a filesystem or an object store.
    #[error("the key {key} is too long: {problem}")]
    KeyTooLong {
        /// The key.
        key: String,
        /// Which part, and the limit.
        problem: String,
    },
    /// The stream cannot be named (a creation time outside the years 0000–9999).
    #[error("cannot name the stream of {snapshot}")]
    Stream {
        /// The snapshot.
        snapshot: SnapshotName,
        /// Why (boxed: it is large and rare).
        #[source]
        source: Box<StreamNameError>,
    },
    /// A bookmark of the name a backup bookmark would get exists with another guid.
    #[error(
        "bookmark {bookmark} exists with guid {actual}, not {expected}; zsnap will not replace it"
    )]
    BookmarkConflict {
        /// The bookmark.
        bookmark: BookmarkName,
        /// The backed-up snapshot's guid.
        expected: Guid,
        /// The bookmark's guid.
        actual: Guid,
    },
}

/// Plans a backup of `source` (the listing of `request.dataset` at
/// `request.location`) into the store whose catalog is `catalog`, at `now`.
///
/// The base follows [`BackupRequest::mode`]: `--since` names it (it must exist, be
/// older than the backed-up snapshot and have a restorable backup, so the new
/// incremental is restorable); automatic incremental takes the newest restorable
/// backed-up snapshot the source still has by guid, as a snapshot or as a bookmark
/// ([`Catalog::newest_with_guid_in`]), else sends in full (with a [`Note`]); full
/// sends in full. Encrypted sources are sent raw. After the stream, the plan bookmarks
/// the backed-up snapshot and releases the store's older backup bookmarks (see
/// [`backup_bookmark_name`]), unless a newer snapshot already has this store's
/// bookmark (backing up an older snapshot leaves it alone).
///
/// # Errors
/// A [`BackupPlanError`]; nothing is planned unless everything checks out, including
/// for a snapshot still to be taken ([`BackupPlan::TakeSnapshot`]).
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::backup::{plan_backup, BackupMode, BackupPlan, BackupRequest, Catalog};
/// use zsnap_core::{Dataset, DatasetKind, Guid, Snapshot, Step};
///
/// let t = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let mut ds = Dataset::new("tank/home".parse().unwrap(), DatasetKind::Filesystem, Guid(1));
/// ds.insert_snapshot(Snapshot::new("a".parse().unwrap(), Guid(10), 100, t));
/// let request = BackupRequest::new(ds.name.clone(), "dir:/backup".parse().unwrap(), BackupMode::AutoIncremental)
///     .with_snapshot(Some("a".parse().unwrap()));
/// let plan = plan_backup(&request, &ds, &Catalog::default(), t).unwrap();
/// let BackupPlan::Send { plan, stream } = plan else { unreachable!() };
/// // Nothing in the store yet: a full stream, then the bookmark for the next one.
/// assert_eq!(stream.to_string(), "tank%2Fhome/20261123T150000Z_a.full.zfs");
/// assert!(matches!(plan.steps[0], Step::Backup(_)));
/// assert!(matches!(plan.steps[1], Step::Bookmark(_)));
/// assert!(plan.notes[0].message.contains("in full"));
/// plan.simulate_at(&BTreeMap::from([(request.location.clone(), {
///     let mut inv = zsnap_core::Inventory::new();
///     inv.insert(ds.clone());
///     inv
/// })])).unwrap();
/// ```
pub fn plan_backup(
    request: &BackupRequest,
    source: &Dataset,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> Result<BackupPlan, BackupPlanError> {
    if source.name != request.dataset {
        return Err(BackupPlanError::WrongDataset {
            requested: request.dataset.clone(),
            listed: source.name.clone(),
        });
    }
    if let Some(short) = &request.snapshot {
        let Some(snap) = source.snapshot(short) else {
            return Err(BackupPlanError::SnapshotMissing {
                snapshot: source.name.snapshot(short),
            });
        };
        let (plan, stream) = plan_send(request, source, catalog, snap, now)?;
        return Ok(BackupPlan::Send { plan, stream });
    }
    let short = request
        .naming
        .name(&request.label, now)
        .map_err(|source_err| BackupPlanError::Naming {
            dataset: source.name.clone(),
            source: source_err,
        })?;
    let name = SnapshotName::new(source.name.clone(), short.clone()).map_err(|e| {
        BackupPlanError::Name {
            dataset: source.name.clone(),
            source: e,
        }
    })?;
    if let Some(existing) = source.snapshot(&short) {
        // The same name and label at the same second: zsnap took it already in this run
        // (for a backup of this dataset to another store). Back that one up.
        if existing.managed.as_deref() == Some("yes") {
            let (mut plan, stream) = plan_send(request, source, catalog, existing, now)?;
            plan.notes.insert(
                0,
                Note::new(
                    Some(source.name.clone()),
                    format!("{name} was taken already this second by zsnap (a backup to another store): backed up as it is"),
                ),
            );
            return Ok(BackupPlan::Send { plan, stream });
        }
        return Err(BackupPlanError::NewSnapshotExists { snapshot: name });
    }
    // Check everything else against the dataset as it will be once the snapshot exists:
    // a txg above every other and a guid no snapshot or bookmark has.
    let mut future = source.clone();
    let txg = source
        .snapshots
        .iter()
        .map(|s| s.createtxg)
        .chain(source.bookmarks.iter().map(|b| b.createtxg))
        .max()
        .map_or(1, |t| t.saturating_add(1));
    let taken = |g: u64| {
        source.snapshots.iter().any(|s| s.guid.0 == g)
            || source.bookmarks.iter().any(|b| b.guid.0 == g)
    };
    let guid = (1..=u64::MAX).rev().find(|&g| !taken(g)).unwrap_or(1);
    future.insert_snapshot(Snapshot::new(short.clone(), Guid(guid), txg, now));
    let snap = future
        .snapshot(&short)
        .expect("the snapshot was inserted just above");
    // Only the checks matter: the real plan needs the real guid.
    let (_checked, _) = plan_send(request, &future, catalog, snap, now)?;
    let mut plan = Plan::new(now);
    let properties = BTreeMap::from([(MANAGED_PROPERTY.to_owned(), MANAGED_VALUE.to_owned())]);
    plan.steps.push(Step::Snapshot(SnapshotStep::new(
        request.location.clone(),
        vec![name.clone()],
        properties,
        format!("backup to {}", request.store),
    )));
    Ok(BackupPlan::TakeSnapshot {
        plan,
        snapshot: name,
    })
}

/// The base of an incremental: where to send from, the parent's short name for the
/// stream name, and the reason's wording.
type Base = (SendBase, ShortName, String);

fn choose_base(
    request: &BackupRequest,
    source: &Dataset,
    catalog: &Catalog,
    snap: &Snapshot,
    notes: &mut Vec<Note>,
) -> Result<Option<Base>, BackupPlanError> {
    let store = &request.store;
    let backups = catalog.dataset(&source.name);
    let restorable_of = |guid: Guid| {
        backups.and_then(|d| {
            d.entries
                .iter()
                .filter(|e| e.is_restorable() && e.guid() == Some(guid))
                .min_by_key(|e| e.chain_len)
        })
    };
    match &request.mode {
        BackupMode::Full => Ok(None),
        BackupMode::Since(b) => {
            let Some(base) = source.snapshot(b) else {
                return Err(BackupPlanError::SinceMissing {
                    base: source.name.snapshot(b),
                });
            };
            if base.createtxg >= snap.createtxg {
                return Err(BackupPlanError::SinceNotOlder {
                    base: source.name.snapshot(b),
                    snapshot: source.name.snapshot(&snap.name),
                });
            }
            if restorable_of(base.guid).is_none() {
                return Err(BackupPlanError::SinceNotInStore {
                    base: source.name.snapshot(b),
                    store: store.clone(),
                });
            }
            let send = SendBase::Snapshot {
                name: base.name.clone(),
                guid: base.guid,
            };
            Ok(Some((
                send,
                base.name.clone(),
                format!("since {}", base.name),
            )))
        }
        BackupMode::AutoIncremental => {
            if let Some(e) = restorable_of(snap.guid) {
                return Err(BackupPlanError::AlreadyBackedUp {
                    snapshot: source.name.snapshot(&snap.name),
                    store: store.clone(),
                    id: e.id.clone(),
                });
            }
            let Some(found) = catalog.newest_base_before(source, snap.createtxg) else {
                notes.push(Note::new(
                    Some(source.name.clone()),
                    format!(
                        "no snapshot or bookmark of {} has a restorable backup in {store}: \
                         sending {} in full",
                        source.name, snap.name
                    ),
                ));
                return Ok(None);
            };
            let parent = catalog
                .entry(&found.id)
                .and_then(|e| e.sidecar.as_ref())
                .map(|s| s.snapshot.clone())
                .expect("the base was found among the catalog's restorable backups");
            let via = match &found.base {
                SendBase::Snapshot { name, .. } => format!("from {name}"),
                SendBase::Bookmark { name, .. } => format!("from bookmark {name} of {parent}"),
            };
            Ok(Some((found.base, parent, format!("auto, {via}"))))
        }
    }
}

/// Refuses keys that clash with the store's keys or are too long.
fn check_key(
    stream: &StreamName,
    store: &StoreUrl,
    catalog: &Catalog,
) -> Result<(), BackupPlanError> {
    let key = stream.key();
    if let Some(backups) = catalog.dataset(stream.dataset()) {
        if let Some(e) = backups.entry(&BackupId::from(stream)) {
            match e.state {
                EntryState::Complete => {
                    return Err(BackupPlanError::AlreadyBackedUp {
                        snapshot: stream.snapshot_name(),
                        store: store.clone(),
                        id: e.id.clone(),
                    })
                }
                EntryState::Damaged { .. } => {
                    return Err(BackupPlanError::KeyTaken {
                        store: store.clone(),
                        id: e.id.clone(),
                    })
                }
                // An upload that did not finish is replaced.
                _ => {}
            }
        }
    }
    let lower = key.to_ascii_lowercase();
    let lower_sidecar = format!("{lower}{SIDECAR_SUFFIX}");
    let own_sidecar = stream.sidecar_key();
    for existing in catalog.keys() {
        let l = existing.to_ascii_lowercase();
        if (l == lower || l == lower_sidecar) && existing != key && existing != own_sidecar {
            return Err(BackupPlanError::CaseCollision {
                key,
                existing,
                store: store.clone(),
            });
        }
    }
    let (dataset_part, file) = stream.key_parts();
    let too_long = |problem: String| {
        Err(BackupPlanError::KeyTooLong {
            key: key.clone(),
            problem,
        })
    };
    if dataset_part.len() > MAX_KEY_COMPONENT {
        return too_long(format!(
            "its dataset part has {} bytes, more than the {MAX_KEY_COMPONENT} a file name may have",
            dataset_part.len()
        ));
    }
    let sidecar_file = file.len() + SIDECAR_SUFFIX.len();
    if sidecar_file > MAX_KEY_COMPONENT {
        return too_long(format!(
            "its sidecar's file name has {sidecar_file} bytes, more than the {MAX_KEY_COMPONENT} a file name may have"
        ));
    }
    if let StoreUrl::S3 { .. } = store {
        let full = store.object_path(&own_sidecar).len();
        if full > MAX_S3_KEY {
            return too_long(format!(
                "its sidecar's object key has {full} bytes, more than the {MAX_S3_KEY} S3 allows"
            ));
        }
    }
    Ok(())
}

fn plan_send(
    request: &BackupRequest,
    source: &Dataset,
    catalog: &Catalog,
    snap: &Snapshot,
    now: DateTime<Utc>,
) -> Result<(Plan, StreamName), BackupPlanError> {
    let mut plan = Plan::new(now);
    let store = &request.store;
    let base = choose_base(request, source, catalog, snap, &mut plan.notes)?;
    let kind = match &base {
        None => StreamKind::Full,
        Some((_, parent, _)) => StreamKind::Incremental {
            parent: parent.clone(),
        },
    };
    let snapshot_name = source.name.snapshot(&snap.name);
    let stream = StreamName::new(
        source.name.clone(),
        snap.name.clone(),
        snap.creation,
        kind,
        request.compression,
    )
    .map_err(|e| BackupPlanError::Stream {
        snapshot: snapshot_name.clone(),
        source: Box::new(e),
    })?;
    check_key(&stream, store, catalog)?;
    if let Some(e) = catalog
        .dataset(&source.name)
        .and_then(|d| d.entry(&BackupId::from(&stream)))
    {
        plan.notes.push(Note::new(
            Some(source.name.clone()),
            format!("replaces the unfinished upload {}", e.id),
        ));
    }
    let snapshot = SnapshotRef::new(snap.name.clone(), snap.guid);
    let (send, reason) = match base {
        None => (
            SendSpec::Full { snapshot },
            format!("full backup to {store}"),
        ),
        Some((base, _, why)) => (
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates: false,
                expected: Vec::new(),
            },
            format!("incremental backup to {store} ({why})"),
        ),
    };
    plan.steps.push(Step::Backup(BackupStep::new(
        request.location.clone(),
        source.name.clone(),
        send,
        snap.createtxg,
        source.props.is_encrypted(),
        store.clone(),
        stream.clone(),
        reason,
    )));
    bookmark_steps(request, source, snap, &mut plan)?;
    Ok((plan, stream))
}

fn bookmark_steps(
    request: &BackupRequest,
    source: &Dataset,
    snap: &Snapshot,
    plan: &mut Plan,
) -> Result<(), BackupPlanError> {
    let store = &request.store;
    let prefix = format!("{BACKUP_BOOKMARK_PREFIX}_{}_", store.tag());
    let ours: Vec<_> = source
        .bookmarks
        .iter()
        .filter(|b| b.name.as_str().starts_with(&prefix))
        .collect();
    if let Some(newer) = ours.iter().find(|b| b.createtxg > snap.createtxg) {
        plan.notes.push(Note::new(
            Some(source.name.clone()),
            format!(
                "bookmark {} of a newer backup stays the base for the next incremental to {store}",
                newer.name
            ),
        ));
        return Ok(());
    }
    let short = backup_bookmark_name(store, snap.guid);
    let bookmark = BookmarkName::new(source.name.clone(), short.clone()).map_err(|e| {
        BackupPlanError::Name {
            dataset: source.name.clone(),
            source: e,
        }
    })?;
    match source.bookmarks.iter().find(|b| b.name == short) {
        Some(b) if b.guid != snap.guid => {
            return Err(BackupPlanError::BookmarkConflict {
                bookmark,
                expected: snap.guid,
                actual: b.guid,
            })
        }
        Some(_) => {}
        None => plan.steps.push(Step::Bookmark(BookmarkStep::new(
            request.location.clone(),
            source.name.snapshot(&snap.name),
            snap.guid,
            bookmark,
            format!("base of the next incremental backup to {store}"),
        ))),
    }
    for old in ours.into_iter().filter(|b| b.name != short) {
        let name = BookmarkName::new(source.name.clone(), old.name.clone())
            .expect("a listed bookmark's name is within the length limit");
        plan.steps
            .push(Step::DestroyBookmark(DestroyBookmarkStep::new(
                request.location.clone(),
                name,
                old.guid,
                format!("superseded by the bookmark of {} for {store}", snap.name),
            )));
    }
    Ok(())
}
