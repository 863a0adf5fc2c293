//! Backup stores: where zsnap keeps send streams and their sidecars.
//!
//! [`BackupStore`] is the small, blocking, object-safe surface the backup executor
//! needs from a store: list, read a small object, write a small object atomically,
//! stream a large object in and out, delete. Two implementations:
//!
//! - [`DirStore`]: a directory on a mounted filesystem (keys are file paths verbatim,
//!   nothing below the root is reached through a symbolic link, files are private,
//!   writes are fsynced);
//! - `ObjectStoreBackup` (with the cargo feature `s3`): any `object_store::ObjectStore`
//!   below a prefix, which is an S3-compatible bucket ([`open_store`] with
//!   [`S3Settings`]) or an in-memory store for tests and simulations
//!   (`ObjectStoreBackup::in_memory`).
//!
//! # Without the feature `s3`
//! The S3 client (an HTTP client, TLS and an async runtime) is only built with the
//! cargo feature `s3`, which the `zsnap` command enables. Without it, [`open_store`],
//! [`open_initialised`] and [`init_store`] refuse `s3://` URLs with
//! [`OpenStoreProblem::NoS3Support`]; directory stores work the same either way.
//!
//! The store of a `[backups.NAME]` of the config opens with [`open_spec`] (its S3
//! settings from the entry: [`spec_settings`]).
//!
//! [`read_catalog`] lists a store, reads its sidecars and builds the
//! [`Catalog`] that every backup decision starts from.
//!
//! # Initialised stores
//! A store exists once `zsnap backups init` ([`init_store`]) wrote its marker
//! ([`StoreMarker`] at [`STORE_MARKER_KEY`]). [`open_initialised`] refuses a store
//! without one, so a backup never fills the empty mount point of an unmounted disk
//! (nor the root filesystem under it), and nothing creates a store's directory with
//! its parents.
//!
//! # Bounds
//! A listing holds at most [`MAX_LISTED_OBJECTS`] objects (some 200 MB of keys); a
//! larger store is refused with [`StoreProblem::TooManyObjects`] rather than
//! exhausting memory. Listings are read page by page as they arrive and never held
//! twice.
//!
//! # Keys
//! A key is a `/`-separated path relative to the store's root, used verbatim as the
//! file path or object key: nothing is percent-decoded, so the escaped dataset of a
//! stream name (`tank%2Fhome/…`) stays one path part. Keys with an empty part, a `.` or
//! `..` part, a leading or trailing `/`, or a control character are refused, and so is
//! a part starting with [`TEMP_PREFIX`] (the names of a directory store's temporary
//! files).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sha2::Digest as _;
use zsnap_core::backup::{
    Catalog, MarkerError, PendingDeletion, StoreMarker, StoreObject, StoreUrl, MAX_MARKER_BYTES,
    MAX_PENDING_BYTES, MAX_SIDECAR_BYTES, STORE_MARKER_KEY,
};

mod dir;
#[cfg(feature = "s3")]
mod object;
mod spec;

pub use dir::DirStore;
#[cfg(feature = "s3")]
pub use object::ObjectStoreBackup;
pub use spec::{
    open_spec, read_spec_catalog, settings_for_url, spec_settings, OpenSpecError, SpecCatalogError,
    SpecSettingsError,
};

/// The default size of the parts of an S3 upload: 32 MiB, so one upload may hold
/// [`MAX_PARTS`]` × 32 MiB` ≈ 312 GiB.
pub const DEFAULT_PART_SIZE: usize = 32 << 20;

/// The most parts one S3 multipart upload may have.
pub const MAX_PARTS: usize = 10_000;

/// How many parts of one S3 upload are sent at the same time (one more is being
/// filled).
pub const MAX_PARTS_IN_FLIGHT: usize = 3;

/// The start of the names of the temporary files a [`DirStore`] writes (and renames)
/// in [`BackupStore::put`]; [`BackupStore::list`] leaves them out, and no key part may
/// start with it.
pub const TEMP_PREFIX: &str = ".zsnap-tmp-";

/// The most objects a listing holds (see the module docs).
pub const MAX_LISTED_OBJECTS: usize = 1_000_000;

/// The most sidecar bytes [`read_catalog`] holds at once (a sidecar is some 600 bytes:
/// far more than [`MAX_LISTED_OBJECTS`] of them).
pub const MAX_CATALOG_SIDECAR_BYTES: usize = 1 << 30;

/// How many sidecars [`read_catalog`] reads at the same time.
pub const CATALOG_READERS: usize = 8;

/// A place that holds backups: a directory or a bucket below a prefix.
///
/// Every method blocks until it is done. Object-safe, and `Send + Sync`, so one store
/// may be shared by threads.
pub trait BackupStore: Send + Sync {
    /// The store's URL (for messages and bookmark tags).
    fn url(&self) -> &StoreUrl;

    /// Every object below the store root: keys relative to the root, exactly as
    /// written (no percent-decoding!), with size and modification time. Temporary
    /// files of [`BackupStore::put`] are not listed. Sorted by key.
    fn list(&self) -> Result<Vec<StoreObject>, StoreError>;

    /// A whole small object; refuses ([`StoreProblem::TooLarge`]) an object larger
    /// than `max` bytes without reading it all.
    fn get(&self, key: &str, max: usize) -> Result<Vec<u8>, StoreError>;

    /// Writes a small object atomically: readers see the old state or the whole new
    /// object (dir: temp file in the same directory, fsync, rename, fsync the
    /// directory).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// Starts a streaming upload of a large object. Bytes are sent as they are
    /// written (S3: multipart, parts of `part_size`, a few in flight; memory bounded by
    /// a few parts; never buffered whole in memory or on local disk).
    ///
    /// Dir: writes straight to the final file name (creating the dataset directory),
    /// so a killed upload leaves a visible stream object without sidecar = "unfinished
    /// backup", which zsnap's listing shows and retention removes; `finish` fsyncs file
    /// and directory. S3: the object appears only at `finish` (complete multipart);
    /// `abort` aborts the multipart upload. Dropping an [`Upload`] without `finish` or
    /// `abort` aborts it best-effort (S3) or leaves the partial file (dir).
    fn upload(&self, key: &str) -> Result<Box<dyn Upload + '_>, StoreError>;

    /// A streaming reader of an object (S3: GET streamed chunk by chunk, not buffered
    /// whole; each `read` returns what has arrived). The reader owns what it needs
    /// (`'static`): a restore hands it to [`crate::backend::ZfsBackend::receive`].
    fn open(&self, key: &str) -> Result<Box<dyn std::io::Read + Send>, StoreError>;

    /// Deletes an object; `Ok(false)` when it was not there.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
}

/// A streaming upload started by [`BackupStore::upload`].
///
/// Errors of `write` are [`std::io::Error`]s whose inner error is a [`StoreError`]
/// (naming the store and the key).
pub trait Upload: std::io::Write + Send {
    /// Makes the object visible and durable; returns the bytes written.
    fn finish(self: Box<Self>) -> Result<u64, StoreError>;

    /// Gives up: removes what was written (dir: the partial file; S3: abort the
    /// multipart upload).
    fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// What a store was asked to do when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// [`BackupStore::list`].
    List,
    /// [`BackupStore::get`] and [`BackupStore::open`] (and the reads of an open object).
    Read,
    /// [`BackupStore::put`].
    Write,
    /// [`BackupStore::upload`] and its [`Upload`].
    Upload,
    /// [`BackupStore::delete`].
    Delete,
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreOp::List => "list",
            StoreOp::Read => "read",
            StoreOp::Write => "write",
            StoreOp::Upload => "upload",
            StoreOp::Delete => "delete",
        })
    }
}

/// An operation on a store that failed: which store, which key, what was done, why.
///
/// The message reads like `read "tank%2Fhome/….zfs.json" in s3://bucket/prefix`, and
/// the cause ([`StoreError::problem`]) is chained as its source.
#[derive(Debug, thiserror::Error)]
#[error("{op} {} in {store}", key_text(.key))]
#[non_exhaustive]
pub struct StoreError {
    /// The store.
    pub store: StoreUrl,
    /// What was done.
    pub op: StoreOp,
    /// The key, for operations on one object (`None` for a listing).
    pub key: Option<String>,
    /// Why it failed.
    #[source]
    pub problem: StoreProblem,
}

fn key_text(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("{k:?}"),
        None => "the objects".to_owned(),
    }
}

impl StoreError {
    /// An error of `op` on `key` (or the whole store) of `store`.
    pub fn new(
        store: &StoreUrl,
        op: StoreOp,
        key: Option<&str>,
        problem: impl Into<StoreProblem>,
    ) -> Self {
        StoreError {
            store: store.clone(),
            op,
            key: key.map(str::to_owned),
            problem: problem.into(),
        }
    }

    /// Whether the object was not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self.problem, StoreProblem::NotFound)
    }

    /// Whether the object was larger than the caller allowed.
    pub fn is_too_large(&self) -> bool {
        matches!(self.problem, StoreProblem::TooLarge { .. })
    }

    /// The [`StoreError`] inside an I/O error of a reader from [`BackupStore::open`]
    /// or of an [`Upload`] (which already names store, key and operation), or else a
    /// new one of `op` on `key` of `store` with `e` as its cause.
    pub fn from_io(store: &StoreUrl, op: StoreOp, key: Option<&str>, e: std::io::Error) -> Self {
        if e.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<StoreError>().is_some())
        {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<StoreError>().expect("checked above");
        }
        StoreError::new(store, op, key, e)
    }

    /// This error as an [`std::io::Error`] (for [`std::io::Read`] and
    /// [`std::io::Write`]), keeping it as the inner error.
    pub fn into_io(self) -> std::io::Error {
        let kind = match &self.problem {
            StoreProblem::NotFound => std::io::ErrorKind::NotFound,
            StoreProblem::Io(e) => e.kind(),
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, self)
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreProblem {
    /// The object does not exist.
    #[error("no such object")]
    NotFound,
    /// The object is larger than the caller allows.
    #[error("the object has {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its size (at least this many bytes).
        size: u64,
        /// The most the caller accepts.
        max: usize,
    },
    /// The key cannot name an object of a store.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An S3 upload would need more parts than S3 allows.
    #[error(
        "the object is larger than {max_parts} parts of {part_size} bytes (raise the part size)"
    )]
    TooManyParts {
        /// The part size.
        part_size: usize,
        /// The most parts of one upload, [`MAX_PARTS`].
        max_parts: usize,
    },
    /// A listing found more objects than [`MAX_LISTED_OBJECTS`].
    #[error("the store holds more than {max} objects, more than zsnap lists")]
    TooManyObjects {
        /// The limit.
        max: usize,
    },
    /// An earlier write of this upload failed, and the upload was aborted.
    #[error("an earlier write of this upload failed; the upload was aborted")]
    Failed,
    /// The filesystem refused.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The object store refused (or could not be reached). Only with the feature `s3`.
    #[cfg(feature = "s3")]
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
}

/// A store that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("open the store {store}")]
#[non_exhaustive]
pub struct OpenStoreError {
    /// The store.
    pub store: StoreUrl,
    /// Why.
    #[source]
    pub problem: OpenStoreProblem,
}

/// Why a store cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreProblem {
    /// A store of another kind than the implementation opening it.
    #[error("not a {expected} store")]
    Kind {
        /// The kind expected: `dir` or `s3`.
        expected: &'static str,
    },
    /// A directory store whose directory does not exist (and `create` was not asked).
    #[error("the directory {path} does not exist")]
    Missing {
        /// The directory.
        path: String,
    },
    /// A directory store whose path is not a directory.
    #[error("{path} is not a directory")]
    NotDirectory {
        /// The path.
        path: String,
    },
    /// The directory could not be examined or created.
    #[error("cannot use the directory {path}")]
    Dir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A prefix that cannot hold keys (see [`check_key`]).
    #[error("invalid prefix {prefix:?}: {reason}")]
    Prefix {
        /// The prefix.
        prefix: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An S3 part size S3 would refuse.
    #[error("the S3 part size {part_size} is outside 5 MiB to 5 GiB")]
    PartSize {
        /// The part size asked for.
        part_size: usize,
    },
    /// The S3 client could not be configured (endpoint, region, credentials…). Only
    /// with the feature `s3`.
    #[cfg(feature = "s3")]
    #[error("cannot configure the S3 client")]
    S3(#[source] object_store::Error),
    /// An `s3://` store, in a build of zsnap-exec without its cargo feature `s3`.
    #[error("this build has no S3 support: build zsnap-exec with its cargo feature `s3`")]
    NoS3Support,
    /// The store's I/O threads could not be started.
    #[error("cannot start the store's I/O runtime")]
    Runtime(#[source] std::io::Error),
    /// The store has no marker: it was never initialised (or is not mounted).
    #[error("{store} is not an initialised zsnap store (it has no {STORE_MARKER_KEY}): if it is on a disk, is the disk mounted?")]
    NotInitialised {
        /// The store, for the hint.
        store: StoreUrl,
    },
    /// The marker cannot be read.
    #[error("read its marker {STORE_MARKER_KEY}")]
    Marker(#[source] Box<StoreError>),
    /// The marker cannot be written (`init`; for S3, does the bucket exist?).
    #[error("write its marker {STORE_MARKER_KEY}")]
    WriteMarker(#[source] Box<StoreError>),
    /// The marker cannot be used.
    #[error("unusable marker {STORE_MARKER_KEY}")]
    BadMarker(#[source] MarkerError),
}

impl OpenStoreError {
    pub(crate) fn new(store: &StoreUrl, problem: OpenStoreProblem) -> Self {
        OpenStoreError {
            store: store.clone(),
            problem,
        }
    }
}

/// Settings of an S3-compatible service (from the configuration or the environment).
///
/// Values left `None` come from the usual environment variables: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` (and the other `AWS_*` variables
/// `object_store` reads). Requests are path-style (`endpoint/bucket/key`), which every
/// S3-compatible service accepts. Secrets never appear in `Debug` output.
///
/// Present in every build, so that callers compile either way; only a build with the
/// cargo feature `s3` opens S3 stores with them.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct S3Settings {
    /// The service's URL, e.g. `https://s3.eu-central-1.amazonaws.com` or
    /// `http://127.0.0.1:3900`.
    pub endpoint: Option<String>,
    /// The region (signing region for S3-compatible services).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (never printed).
    pub secret_access_key: Option<String>,
    /// A session token for temporary credentials (never printed).
    pub session_token: Option<String>,
    /// Allow plain `http://` endpoints (otherwise only `AWS_ALLOW_HTTP` allows them).
    pub allow_http: bool,
    /// The size of the parts of an upload; default [`DEFAULT_PART_SIZE`]. One upload
    /// holds at most [`MAX_PARTS`] parts, and about [`MAX_PARTS_IN_FLIGHT`]` + 1` parts
    /// are in memory at a time.
    pub part_size: Option<usize>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl S3Settings {
    /// No settings: everything from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// With this endpoint URL.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// With this region.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// With this access key id.
    #[must_use]
    pub fn with_access_key_id(mut self, id: impl Into<String>) -> Self {
        self.access_key_id = Some(id.into());
        self
    }

    /// With this secret access key.
    #[must_use]
    pub fn with_secret_access_key(mut self, secret: impl Into<String>) -> Self {
        self.secret_access_key = Some(secret.into());
        self
    }

    /// With this session token.
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Allowing (or not) plain `http://` endpoints.
    #[must_use]
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// With this upload part size.
    #[must_use]
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = Some(part_size);
        self
    }
}

/// Opens the store at `url`, without checking that it was initialised (see
/// [`open_initialised`]).
///
/// A directory store's directory must exist; nothing is created. An S3 store is
/// configured from `s3` and the environment, without any request: the bucket is never
/// created, and a missing bucket or bad credentials show at the first operation.
///
/// # Errors
/// A directory that cannot be used; S3 settings that cannot be used; an `s3://` URL in
/// a build without the feature `s3` ([`OpenStoreProblem::NoS3Support`]).
pub fn open_store(url: &StoreUrl, s3: &S3Settings) -> Result<Box<dyn BackupStore>, OpenStoreError> {
    match url {
        StoreUrl::S3 { .. } => open_s3(url, s3),
        _ => Ok(Box::new(DirStore::open(url)?)),
    }
}

/// The S3 store `url`.
#[cfg(feature = "s3")]
fn open_s3(url: &StoreUrl, s3: &S3Settings) -> Result<Box<dyn BackupStore>, OpenStoreError> {
    Ok(Box::new(ObjectStoreBackup::s3(url, s3)?))
}

/// No S3 store in this build: [`OpenStoreProblem::NoS3Support`].
#[cfg(not(feature = "s3"))]
fn open_s3(url: &StoreUrl, _: &S3Settings) -> Result<Box<dyn BackupStore>, OpenStoreError> {
    Err(OpenStoreError::new(url, OpenStoreProblem::NoS3Support))
}

/// Opens the store at `url` ([`open_store`]) and reads its marker: a store that was
/// never initialised is refused ([`OpenStoreProblem::NotInitialised`], with a hint).
pub fn open_initialised(
    url: &StoreUrl,
    s3: &S3Settings,
) -> Result<(Box<dyn BackupStore>, StoreMarker), OpenStoreError> {
    let store = match open_store(url, s3) {
        Err(e) if matches!(e.problem, OpenStoreProblem::Missing { .. }) => {
            return Err(OpenStoreError::new(
                url,
                OpenStoreProblem::NotInitialised { store: url.clone() },
            ))
        }
        other => other?,
    };
    let marker = read_marker(&*store)?;
    Ok((store, marker))
}

/// The marker of `store`.
///
/// # Errors
/// [`OpenStoreProblem::NotInitialised`] when it has none; a marker that cannot be
/// read or used.
pub fn read_marker(store: &dyn BackupStore) -> Result<StoreMarker, OpenStoreError> {
    let url = store.url();
    let bytes = match store.get(STORE_MARKER_KEY, MAX_MARKER_BYTES) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(OpenStoreError::new(
                url,
                OpenStoreProblem::NotInitialised { store: url.clone() },
            ))
        }
        Err(e) => {
            return Err(OpenStoreError::new(
                url,
                OpenStoreProblem::Marker(Box::new(e)),
            ))
        }
    };
    StoreMarker::parse(&bytes).map_err(|e| OpenStoreError::new(url, OpenStoreProblem::BadMarker(e)))
}

/// What [`init_store`] did.
#[non_exhaustive]
pub struct InitOutcome {
    /// The store, opened.
    pub store: Box<dyn BackupStore>,
    /// Its marker (the one found, or the one written).
    pub marker: StoreMarker,
    /// Whether it was initialised now (`false`: it already was).
    pub created: bool,
}

impl fmt::Debug for InitOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitOutcome")
            .field("store", self.store.url())
            .field("marker", &self.marker)
            .field("created", &self.created)
            .finish()
    }
}

/// Initialises the store at `url` (`zsnap backups init`): a directory store's
/// directory is made if missing (only its last component, 0700: its parent must
/// exist), an S3 bucket must exist; then the marker is written, unless the store
/// already has one (then it is kept and returned). Existing backups in the place are
/// left as they are, so a store from before markers is adopted by initialising it.
///
/// # Errors
/// When the place cannot be made or written, or holds an unusable marker.
pub fn init_store(
    url: &StoreUrl,
    s3: &S3Settings,
    now: DateTime<Utc>,
) -> Result<InitOutcome, OpenStoreError> {
    let store: Box<dyn BackupStore> = match url {
        StoreUrl::S3 { .. } => open_s3(url, s3)?,
        _ => Box::new(DirStore::init(url)?.0),
    };
    match read_marker(&*store) {
        Ok(marker) => {
            return Ok(InitOutcome {
                store,
                marker,
                created: false,
            })
        }
        Err(e) if matches!(e.problem, OpenStoreProblem::NotInitialised { .. }) => {}
        Err(e) => return Err(e),
    }
    let marker = StoreMarker::new(url, random_token(), now);
    store
        .put(STORE_MARKER_KEY, marker.to_json().as_bytes())
        .map_err(|e| OpenStoreError::new(url, OpenStoreProblem::WriteMarker(Box::new(e))))?;
    Ok(InitOutcome {
        store,
        marker,
        created: true,
    })
}

/// 32 hex digits that differ between calls, processes and machines (the time, the
/// process, a counter and the host's randomised hasher keys, hashed): ids of stores
/// and of deletion records, not secrets.
pub(crate) fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut h = sha2::Sha256::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    h.update(hasher.finish().to_le_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lists `store`, reads every sidecar [`Catalog::sidecar_keys`] names, and builds the
/// catalog; also returns the listing.
///
/// Up to [`CATALOG_READERS`] sidecars are read at the same time. Each is read with a
/// limit of [`MAX_SIDECAR_BYTES`]: an oversized sidecar, or one deleted since the
/// listing, or one that is not a regular file (a link in a directory store), is left
/// out, so the catalog shows that backup as damaged rather than failing the whole
/// listing. Any other failure is returned.
///
/// The records of pending deletions ([`PendingDeletion`]) are read too, so that
/// the sidecars an interrupted prune left are told apart from lost backups.
pub fn read_catalog(store: &dyn BackupStore) -> Result<(Vec<StoreObject>, Catalog), StoreError> {
    let objects = store.list()?;
    let mut pending = std::collections::BTreeSet::new();
    for o in objects.iter().filter(|o| PendingDeletion::is_key(&o.key)) {
        match store.get(&o.key, MAX_PENDING_BYTES) {
            // An unreadable record names nothing: its sidecars stay missing backups,
            // which is loud rather than silent.
            Ok(bytes) => {
                if let Ok(p) = PendingDeletion::parse(&bytes) {
                    pending.extend(p.keys);
                }
            }
            Err(e) if skippable(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let keys = Catalog::sidecar_keys(&objects);
    let next = AtomicUsize::new(0);
    let sidecars: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());
    let held = AtomicUsize::new(0);
    let failure: Mutex<Option<StoreError>> = Mutex::new(None);
    let readers = CATALOG_READERS.min(keys.len());
    std::thread::scope(|scope| {
        for _ in 0..readers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else { break };
                if lock(&failure).is_some() {
                    break;
                }
                match store.get(key, MAX_SIDECAR_BYTES) {
                    Ok(bytes) => {
                        let total = held.fetch_add(bytes.len(), Ordering::Relaxed) + bytes.len();
                        if total > MAX_CATALOG_SIDECAR_BYTES {
                            let max = MAX_CATALOG_SIDECAR_BYTES;
                            let problem = StoreProblem::TooLarge {
                                size: total as u64,
                                max,
                            };
                            lock(&failure).get_or_insert(StoreError::new(
                                store.url(),
                                StoreOp::List,
                                None,
                                problem,
                            ));
                            break;
                        }
                        lock(&sidecars).insert(key.clone(), bytes);
                    }
                    Err(e) if skippable(&e) => {}
                    Err(e) => {
                        lock(&failure).get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let sidecars = sidecars.into_inner().unwrap_or_else(|p| p.into_inner());
    let catalog = Catalog::build_with_pending(&objects, &sidecars, &pending);
    Ok((objects, catalog))
}

/// A read that fails for this one object only (too large, gone, not a regular file).
fn skippable(e: &StoreError) -> bool {
    e.is_too_large()
        || e.is_not_found()
        || matches!(&e.problem, StoreProblem::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput)
}

/// Locks `m`, going on after a panic of another reader (the data stays consistent:
/// every critical section is one insert).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks that `key` is a relative `/`-separated path every store can hold verbatim.
pub fn check_key(key: &str) -> Result<(), StoreProblem> {
    let fail = |reason| Err(StoreProblem::InvalidKey { reason });
    if key.is_empty() {
        return fail("the key is empty");
    }
    if key.starts_with('/') {
        return fail("the key begins with '/'");
    }
    if key.chars().any(char::is_control) {
        return fail("the key contains a control character");
    }
    for part in key.split('/') {
        if part.is_empty() {
            return fail("the key has an empty part ('//' or a trailing '/')");
        }
        if part == "." || part == ".." {
            return fail("the key has a '.' or '..' part");
        }
        if part.starts_with(TEMP_PREFIX) {
            return fail("a key part begins with \".zsnap-tmp-\", reserved for temporary files");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for ok in [
            "a",
            "tank%2Fhome/20261123T150000Z_a.full.zfs",
            "a/b/c",
            "a..b/.c",
        ] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "./a",
            "a/..",
            "a\0b",
            "a\nb",
            "a\u{85}b",
            "d/.zsnap-tmp-1-2",
        ] {
            assert!(
                matches!(check_key(bad), Err(StoreProblem::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn settings_debug_hides_secrets() {
        let s = S3Settings::new()
            .with_access_key_id("GKid")
            .with_secret_access_key("s3cr3t-value")
            .with_session_token("t0ken-value");
        let debug = format!("{s:?}");
        assert!(debug.contains("GKid"), "{debug}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(!debug.contains("t0ken-value"), "{debug}");
        assert!(debug.contains("<hidden>"), "{debug}");
    }

    #[test]
    fn errors_name_store_key_and_operation() {
        let url: StoreUrl = "s3://bucket/prefix".parse().unwrap();
        let e = StoreError::new(
            &url,
            StoreOp::Read,
            Some("tank%2Fhome/x.json"),
            StoreProblem::NotFound,
        );
        assert_eq!(
            e.to_string(),
            r#"read "tank%2Fhome/x.json" in s3://bucket/prefix"#
        );
        assert_eq!(
            std::error::Error::source(&e).unwrap().to_string(),
            "no such object"
        );
        let e = StoreError::new(&url, StoreOp::List, None, StoreProblem::NotFound);
        assert_eq!(e.to_string(), "list the objects in s3://bucket/prefix");
    }

    #[test]
    fn io_errors_carry_the_store_error_through() {
        let url: StoreUrl = "dir:/mnt/zsnap".parse().unwrap();
        let inner = StoreError::new(&url, StoreOp::Read, Some("a/b"), StoreProblem::NotFound);
        let io = inner.into_io();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let back = StoreError::from_io(&url, StoreOp::Upload, Some("c/d"), io);
        assert_eq!((back.op, back.key.as_deref()), (StoreOp::Read, Some("a/b")));
        assert!(back.is_not_found());
        let plain = std::io::Error::other("disk on fire");
        let wrapped = StoreError::from_io(&url, StoreOp::Upload, Some("c/d"), plain);
        assert_eq!(wrapped.to_string(), r#"upload "c/d" in dir:/mnt/zsnap"#);
        assert!(matches!(wrapped.problem, StoreProblem::Io(_)));
    }
}
