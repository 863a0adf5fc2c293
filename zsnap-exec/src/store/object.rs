//! [`ObjectStoreBackup`]: backups in an `object_store` (S3-compatible, or in memory),
//! behind the blocking [`BackupStore`] API.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use zsnap_core::backup::{StoreObject, StoreUrl};

use super::{
    check_key, BackupStore, OpenStoreError, OpenStoreProblem, S3Settings, StoreError, StoreOp,
    StoreProblem, Upload, DEFAULT_PART_SIZE, MAX_LISTED_OBJECTS, MAX_PARTS, MAX_PARTS_IN_FLIGHT,
};

/// The smallest part S3 accepts (except the last).
const MIN_PART_SIZE: usize = 5 << 20;

/// The largest part S3 accepts.
const MAX_PART_SIZE: usize = 5 << 30;

/// How long a stalled read (no byte from the service) may last before it is retried.
/// There is no limit on a whole request: a part on a slow uplink, or a long stream
/// read as slowly as `zfs receive` takes it, may take as long as it needs.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How long dropping an unfinished upload waits for the abort of its multipart upload.
const DROP_ABORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Backups in any [`ObjectStore`] below a prefix: an S3-compatible bucket
/// ([`ObjectStoreBackup::s3`]) or memory ([`ObjectStoreBackup::in_memory`]).
///
/// Keys are object paths below the prefix, verbatim (`%2F` stays `%2F` in the key
/// text). The store owns a small tokio runtime (2 worker threads) and blocks on it, so
/// its methods must not be called from inside another tokio runtime.
pub struct ObjectStoreBackup {
    url: StoreUrl,
    store: Arc<dyn ObjectStore>,
    /// Without leading or trailing `/`; empty for the whole store.
    prefix: String,
    part_size: usize,
    /// Shared with the readers [`BackupStore::open`] hands out, which outlive `self`.
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for ObjectStoreBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The inner store's Debug may show its credentials: its Display does not.
        f.debug_struct("ObjectStoreBackup")
            .field("url", &self.url)
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// The prefix of a store's keys inside an object store of its own.
fn url_prefix(url: &StoreUrl) -> String {
    match url {
        StoreUrl::S3 { prefix, .. } => prefix.clone(),
        StoreUrl::Dir { path } => path.trim_matches('/').to_owned(),
        _ => String::new(),
    }
}

impl ObjectStoreBackup {
    /// The store `url`, made of the objects of `store` below `prefix` (a relative
    /// `/`-separated path, or empty for all of `store`), uploading in parts of
    /// [`DEFAULT_PART_SIZE`].
    pub fn new(
        url: StoreUrl,
        store: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
    ) -> Result<Self, OpenStoreError> {
        let prefix = prefix.into();
        if !prefix.is_empty() {
            if let Err(StoreProblem::InvalidKey { reason }) = check_key(&prefix) {
                return Err(OpenStoreError::new(
                    &url,
                    OpenStoreProblem::Prefix { prefix, reason },
                ));
            }
        }
        Self::build(url, store, prefix)
    }

    fn build(
        url: StoreUrl,
        store: Arc<dyn ObjectStore>,
        prefix: String,
    ) -> Result<Self, OpenStoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zsnap-store")
            .enable_all()
            .build()
            .map_err(|e| OpenStoreError::new(&url, OpenStoreProblem::Runtime(e)))?;
        Ok(ObjectStoreBackup {
            url,
            store,
            prefix,
            part_size: DEFAULT_PART_SIZE,
            runtime: Arc::new(runtime),
        })
    }

    /// An empty store in memory, for tests and simulations; its keys live below the
    /// URL's prefix (S3) or path (dir).
    ///
    /// # Panics
    /// When the store's runtime threads cannot be started.
    pub fn in_memory(url: StoreUrl) -> Self {
        let prefix = url_prefix(&url);
        Self::build(url, Arc::new(InMemory::new()), prefix)
            .expect("the in-memory store's runtime threads start")
    }

    /// The S3 store `url` (an `s3://` URL), configured from `settings` and, for what
    /// they leave out, the `AWS_*` environment variables. Path-style requests; no
    /// request is made here.
    pub fn s3(url: &StoreUrl, settings: &S3Settings) -> Result<Self, OpenStoreError> {
        let fail = |problem| OpenStoreError::new(url, problem);
        let StoreUrl::S3 { bucket, prefix } = url else {
            return Err(fail(OpenStoreProblem::Kind { expected: "s3" }));
        };
        let part_size = settings.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(fail(OpenStoreProblem::PartSize { part_size }));
        }
        // Set before the environment is read, so AWS_TIMEOUT etc. still win.
        let client = ClientOptions::new()
            .with_timeout_disabled()
            .with_read_timeout(READ_TIMEOUT);
        let mut b = AmazonS3Builder::new().with_client_options(client);
        // What AmazonS3Builder::from_env does, on top of our client options.
        for (key, value) in std::env::vars_os() {
            let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else {
                continue;
            };
            if key.starts_with("AWS_") {
                if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, value);
                }
            }
        }
        b = b
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(false);
        if let Some(v) = &settings.endpoint {
            b = b.with_endpoint(v);
        }
        if let Some(v) = &settings.region {
            b = b.with_region(v);
        }
        if let Some(v) = &settings.access_key_id {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = &settings.secret_access_key {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = &settings.session_token {
            b = b.with_token(v);
        }
        if settings.allow_http {
            b = b.with_allow_http(true);
        }
        let s3 = b.build().map_err(|e| fail(OpenStoreProblem::S3(e)))?;
        let mut store = Self::build(url.clone(), Arc::new(s3), prefix.clone())?;
        store.part_size = part_size;
        Ok(store)
    }

    /// The same store, uploading in parts of `part_size` bytes (S3 needs at least
    /// 5 MiB; memory takes any size above 0).
    ///
    /// # Panics
    /// When `part_size` is 0.
    #[must_use]
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        assert!(part_size > 0, "an upload part has at least one byte");
        self.part_size = part_size;
        self
    }

    /// The size of the parts of an upload.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// The object store underneath (to inspect or fake things in tests).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object path of `key`, after checking the key.
    fn path(&self, op: StoreOp, key: &str) -> Result<Path, StoreError> {
        check_key(key).map_err(|p| self.err(op, Some(key), p))?;
        let full = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        };
        // Parsed, not built from parts: the key text is the object key, verbatim.
        Path::parse(full).map_err(|e| self.err(op, Some(key), object_store::Error::from(e)))
    }

    fn err(&self, op: StoreOp, key: Option<&str>, problem: impl Into<StoreProblem>) -> StoreError {
        StoreError::new(&self.url, op, key, problem)
    }

    fn os_err(&self, op: StoreOp, key: Option<&str>, e: object_store::Error) -> StoreError {
        os_err(&self.url, op, key, e)
    }

    /// Starts a GET of `key`: its size and its bytes as they arrive.
    fn get_stream(
        &self,
        key: &str,
    ) -> Result<(u64, BoxStream<'static, object_store::Result<Bytes>>), StoreError> {
        let path = self.path(StoreOp::Read, key)?;
        let result = self
            .runtime
            .block_on(self.store.get(&path))
            .map_err(|e| self.os_err(StoreOp::Read, Some(key), e))?;
        Ok((result.meta.size, result.into_stream()))
    }
}

impl BackupStore for ObjectStoreBackup {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn list(&self) -> Result<Vec<StoreObject>, StoreError> {
        let fail = |e| self.os_err(StoreOp::List, None, e);
        let prefix = if self.prefix.is_empty() {
            None
        } else {
            Some(Path::parse(&self.prefix).map_err(|e| fail(e.into()))?)
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        // Page by page as the service sends them, keeping only what a listing needs.
        let mut pages = self.store.list(prefix.as_ref());
        let mut out: Vec<StoreObject> = Vec::new();
        while let Some(meta) = self.runtime.block_on(pages.next()) {
            let m = meta.map_err(fail)?;
            let Some(key) = m.location.as_ref().strip_prefix(strip.as_str()) else {
                continue;
            };
            if out.len() >= MAX_LISTED_OBJECTS {
                return Err(self.err(
                    StoreOp::List,
                    None,
                    StoreProblem::TooManyObjects {
                        max: MAX_LISTED_OBJECTS,
                    },
                ));
            }
            out.push(StoreObject::new(key, m.size, m.last_modified));
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn get(&self, key: &str, max: usize) -> Result<Vec<u8>, StoreError> {
        let (size, mut stream) = self.get_stream(key)?;
        if size > max as u64 {
            // Dropping the stream closes the response unread.
            return Err(self.err(
                StoreOp::Read,
                Some(key),
                StoreProblem::TooLarge { size, max },
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = self.runtime.block_on(stream.next()) {
            let chunk = chunk.map_err(|e| self.os_err(StoreOp::Read, Some(key), e))?;
            if bytes.len() + chunk.len() > max {
                let size = (bytes.len() + chunk.len()) as u64;
                let problem = StoreProblem::TooLarge { size, max };
                return Err(self.err(StoreOp::Read, Some(key), problem));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(StoreOp::Write, key)?;
        // One PUT: S3 makes the object visible whole or not at all.
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        self.runtime
            .block_on(self.store.put(&path, payload))
            .map_err(|e| self.os_err(StoreOp::Write, Some(key), e))?;
        Ok(())
    }

    fn upload(&self, key: &str) -> Result<Box<dyn Upload + '_>, StoreError> {
        let path = self.path(StoreOp::Upload, key)?;
        let multipart = self
            .runtime
            .block_on(self.store.put_multipart(&path))
            .map_err(|e| self.os_err(StoreOp::Upload, Some(key), e))?;
        Ok(Box::new(ObjectUpload {
            backup: self,
            key: key.to_owned(),
            writer: Some(WriteMultipart::new_with_chunk_size(
                multipart,
                self.part_size,
            )),
            written: 0,
        }))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let (_, stream) = self.get_stream(key)?;
        Ok(Box::new(ObjectReader {
            url: self.url.clone(),
            runtime: Arc::clone(&self.runtime),
            key: key.to_owned(),
            stream,
            chunk: Bytes::new(),
            done: false,
        }))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(StoreOp::Delete, key)?;
        // S3 answers a DELETE of a missing key with success: ask first.
        match self.runtime.block_on(self.store.head(&path)) {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.os_err(StoreOp::Delete, Some(key), e)),
        }
        self.runtime
            .block_on(self.store.delete(&path))
            .map_err(|e| self.os_err(StoreOp::Delete, Some(key), e))?;
        Ok(true)
    }
}

/// An `object_store` failure, with a missing object told apart when reading or
/// deleting one (when writing or listing, "not found" is the bucket's, and the
/// service's message says so).
fn os_err(url: &StoreUrl, op: StoreOp, key: Option<&str>, e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { .. } if matches!(op, StoreOp::Read | StoreOp::Delete) => {
            StoreError::new(url, op, key, StoreProblem::NotFound)
        }
        e => StoreError::new(url, op, key, e),
    }
}

/// A streamed GET: each `read` hands out what has arrived, waiting only when nothing
/// is left. Owns what it needs, so it may outlive its store.
struct ObjectReader {
    url: StoreUrl,
    runtime: Arc<tokio::runtime::Runtime>,
    key: String,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    /// What arrived and was not read yet.
    chunk: Bytes,
    done: bool,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    let e = os_err(&self.url, StoreOp::Read, Some(&self.key), e);
                    return Err(e.into_io());
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// A multipart upload: parts go out as they fill, at most [`MAX_PARTS_IN_FLIGHT`] at a
/// time, so memory holds a few parts whatever the object's size.
struct ObjectUpload<'a> {
    backup: &'a ObjectStoreBackup,
    key: String,
    /// `None` once finished, aborted or failed.
    writer: Option<WriteMultipart>,
    written: u64,
}

impl ObjectUpload<'_> {
    fn err(&self, problem: impl Into<StoreProblem>) -> StoreError {
        self.backup.err(StoreOp::Upload, Some(&self.key), problem)
    }

    /// Aborts the multipart upload after a failure, best-effort, and gives `e` back.
    fn fail(&mut self, e: StoreError) -> io::Error {
        if let Some(w) = self.writer.take() {
            let _ = self.backup.runtime.block_on(w.abort());
        }
        e.into_io()
    }
}

impl Write for ObjectUpload<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let part_size = self.backup.part_size;
        // Every finished part has exactly `part_size` bytes, so this is how full the
        // part being filled is; take no more than fits in it, so one large write
        // cannot start more parts than the limit allows.
        let filled = (self.written % part_size as u64) as usize;
        let n = buf.len().min(part_size - filled);
        if self.written + n as u64 > (part_size as u64).saturating_mul(MAX_PARTS as u64) {
            let e = self.err(StoreProblem::TooManyParts {
                part_size,
                max_parts: MAX_PARTS,
            });
            return Err(self.fail(e));
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(self.err(StoreProblem::Failed).into_io());
        };
        let sent = self.backup.runtime.block_on(async {
            w.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
            // Inside the runtime: a full part is spawned as an upload task.
            w.write(&buf[..n]);
            Ok::<(), object_store::Error>(())
        });
        if let Err(e) = sent {
            let e = self.err(e);
            return Err(self.fail(e));
        }
        self.written += n as u64;
        Ok(n)
    }

    /// Nothing to do: S3 takes whole parts only; [`Upload::finish`] sends the rest.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Upload for ObjectUpload<'_> {
    fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let Some(w) = self.writer.take() else {
            return Err(self.err(StoreProblem::Failed));
        };
        // On failure, WriteMultipart::finish aborts the multipart upload itself.
        self.backup
            .runtime
            .block_on(w.finish())
            .map_err(|e| self.err(e))?;
        Ok(self.written)
    }

    fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        self.backup
            .runtime
            .block_on(w.abort())
            .map_err(|e| self.err(e))
    }
}

impl Drop for ObjectUpload<'_> {
    /// Neither finished nor aborted (an error or a panic on the way): the object never
    /// appears; abort the multipart upload so its parts do not linger (best-effort,
    /// bounded in time; a bucket lifecycle rule cleans what a killed process leaves).
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            let _ = self
                .backup
                .runtime
                .block_on(async { tokio::time::timeout(DROP_ABORT_TIMEOUT, w.abort()).await });
        }
    }
}
