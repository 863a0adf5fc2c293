//! Running backups: writing a [`BackupStep`]'s stream to a store, reading it back to
//! verify it, receiving a chain of stored streams, and deleting backups in a safe order.
//!
//! ```text
//!   zfs send ──► [zstd] ──► SHA-256 + count ──► store upload ──► (verify) ──► sidecar
//!   store object ──► SHA-256 + count ──► [unzstd] ──► hold back the tail ──► zfs recv
//! ```
//!
//! # Why a restore cannot apply a damaged stream
//! While receiving, the bytes of each stream are hashed and the last [`HOLD_BACK`]
//! bytes are kept back until the whole object has been read and its size and digest
//! matched the sidecar: a `zfs receive` only commits a snapshot after the stream's END
//! record, which lies in those last bytes, so a damaged object (or a read that failed
//! half-way) makes the receive fail with nothing committed. Before the first stream of
//! a chain is received, every later one is read and checked ([`verify_entry`]), so a
//! damaged stream anywhere leaves the target untouched — not half-restored.

use std::io::{self, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sha2::Digest as _;
use zsnap_core::backup::{
    BackupEntry, BackupStep, Compression, Deletion, PendingDeletion, Sha256, Sidecar, SidecarError,
    StoreUrl,
};
use zsnap_core::{DatasetName, Guid, SendSpec, SnapshotName};

use crate::backend::{
    ListError, ReceiveOutcome, ReceiveRequest, RecvError, SendCommand, SendError, SendRequest,
    SendStream, ZfsBackend,
};
use crate::store::{BackupStore, StoreError, StoreOp};
use crate::stream_check::{stream_guids, StreamCheck, StreamGuids};

/// The zstd level of compressed streams: zstd's default, fast enough to keep up with
/// a disk-bound `zfs send` on one core.
pub const ZSTD_LEVEL: i32 = 3;

/// Bytes of a restored stream kept back from `zfs receive` until its digest matched.
/// A send stream ends with its END record (a few hundred bytes), always inside these.
pub const HOLD_BACK: usize = 64 * 1024;

/// The size of the buffers bytes move through.
const CHUNK: usize = 1 << 20;

/// How to run a backup step.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Read the stream back after uploading it and compare size and digest before
    /// writing the sidecar.
    pub verify: bool,
}

impl BackupOptions {
    /// The same options with read-back verification on or off.
    #[must_use]
    pub fn with_verify(mut self, verify: bool) -> Self {
        self.verify = verify;
        self
    }
}

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupOutcome {
    /// The stream object's key.
    pub key: String,
    /// Bytes `zfs send` produced.
    pub sent: u64,
    /// The sidecar written (stored size and digest in it).
    pub sidecar: Sidecar,
    /// Whether the object was read back and checked.
    pub verified: bool,
}

/// Why a backup step failed. No sidecar was written in any of these cases: the stream
/// object, if one is left, is an unfinished backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The step does not name a snapshot (a resume spec), which backups never use.
    #[error("backup of {dataset}: the step names no snapshot")]
    NoSnapshot {
        /// The dataset.
        dataset: DatasetName,
    },
    /// The source could not be listed to check the snapshot.
    #[error("backup of {dataset}: list the source")]
    List {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// The snapshot or the base changed since planning (gone, or another guid).
    #[error("backup of {snapshot}: {what} changed since planning; plan again")]
    Changed {
        /// The snapshot backed up.
        snapshot: SnapshotName,
        /// What changed.
        what: String,
    },
    /// `zfs send` could not start, or failed.
    #[error("backup of {dataset}: zfs send")]
    Send {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: SendError,
    },
    /// Reading the stream or compressing it failed.
    #[error("backup of {dataset}: read the send stream")]
    Stream {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The store refused or failed.
    #[error("backup of {dataset}")]
    Store {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The object read back differs from what was written.
    #[error("backup of {dataset}: {key} in {store} reads back differently than written ({problem}); no sidecar written")]
    VerifyMismatch {
        /// The dataset.
        dataset: DatasetName,
        /// The store.
        store: StoreUrl,
        /// The object.
        key: String,
        /// Size or digest, expected and found.
        problem: String,
    },
    /// The sidecar could not be made (the step is not one the planner makes).
    #[error("backup of {dataset}: make the sidecar")]
    Sidecar {
        /// The dataset.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: SidecarError,
    },
}

/// Counts and hashes what passes through to `inner`.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts and hashes what is read from `inner`.
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    bytes: u64,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: sha2::Sha256::new(),
            bytes: 0,
        }
    }

    fn digest(&self) -> Sha256 {
        Sha256::from_bytes(self.hasher.clone().finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Copies `from` into `to` in large chunks, calling `progress` with the bytes so far.
fn copy(from: &mut dyn Read, to: &mut dyn Write, progress: &mut dyn FnMut(u64)) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress(total);
    }
}

/// Checks that the snapshot of `step` (and the base of an incremental) still exist on
/// the source with the guids planned.
fn check_source(step: &BackupStep, backend: &dyn ZfsBackend) -> Result<(), BackupError> {
    let dataset = &step.dataset;
    let Some(snapshot) = step.snapshot() else {
        return Err(BackupError::NoSnapshot {
            dataset: dataset.clone(),
        });
    };
    let inventory = backend
        .list(std::slice::from_ref(dataset))
        .map_err(|source| BackupError::List {
            dataset: dataset.clone(),
            source,
        })?;
    let name = dataset.snapshot(&snapshot.name);
    let changed = |what: String| BackupError::Changed {
        snapshot: name.clone(),
        what,
    };
    let Some(ds) = inventory.dataset(dataset) else {
        return Err(changed(format!("the dataset {dataset}")));
    };
    match ds.snapshot(&snapshot.name) {
        Some(s) if s.guid == snapshot.guid => {}
        Some(s) => {
            return Err(changed(format!(
                "the snapshot (guid {} planned, {} now)",
                snapshot.guid, s.guid
            )))
        }
        None => return Err(changed("the snapshot (it is gone)".to_owned())),
    }
    if let SendSpec::Incremental { base, .. } = &step.send {
        let found = match base {
            zsnap_core::SendBase::Snapshot { name, .. } => ds.snapshot(name).map(|s| s.guid),
            zsnap_core::SendBase::Bookmark { name, .. } => ds
                .bookmarks
                .iter()
                .find(|b| &b.name == name)
                .map(|b| b.guid),
        };
        if found != Some(base.guid()) {
            return Err(changed(format!(
                "the base {base:?} (guid {} planned, {} now)",
                base.guid(),
                found.map_or_else(|| "gone".to_owned(), |g| g.to_string())
            )));
        }
    }
    Ok(())
}

/// Runs one backup step: checks the source, sends, compresses, uploads while hashing,
/// optionally reads the object back, and writes the sidecar last.
///
/// `progress` is called with the bytes `zfs send` produced so far.
///
/// # Errors
/// See [`BackupError`]; none of them leaves a sidecar, and a failed upload is aborted
/// (a directory store may keep the partial object, which listings show as unfinished).
pub fn run_backup(
    step: &BackupStep,
    backend: &dyn ZfsBackend,
    store: &dyn BackupStore,
    options: &BackupOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<BackupOutcome, BackupError> {
    let dataset = &step.dataset;
    check_source(step, backend)?;
    let request = SendRequest::new(dataset.clone(), step.send.clone(), step.raw);
    let mut stream = backend.send(&request).map_err(|source| BackupError::Send {
        dataset: dataset.clone(),
        source,
    })?;
    let key = step.stream.key();
    let store_err = |source| BackupError::Store {
        dataset: dataset.clone(),
        source,
    };
    let upload = match store.upload(&key) {
        Ok(u) => u,
        Err(e) => {
            drop(stream.finish());
            return Err(store_err(e));
        }
    };
    let mut sink = HashingWriter {
        inner: upload,
        hasher: sha2::Sha256::new(),
        bytes: 0,
    };
    let mut checked = Checking {
        inner: &mut stream,
        check: StreamCheck::new(),
        problem: None,
    };
    let copied = match step.stream.compression() {
        Compression::Zstd => zstd::Encoder::new(&mut sink, ZSTD_LEVEL).and_then(|mut enc| {
            let n = copy(&mut checked, &mut enc, progress)?;
            enc.finish()?;
            Ok(n)
        }),
        _ => copy(&mut checked, &mut sink, progress),
    };
    // A sender that exited 0 after writing something that is not the whole stream
    // asked for (a wrapper script, a broken zfs, bytes damaged on the way) must not
    // leave a "complete" backup that no restore can receive: every record and
    // checksum is checked before the object is completed.
    let Checking { check, problem, .. } = checked;
    let sent = stream.finish();
    let damaged = match (problem, &copied, &sent) {
        // Found while copying: the copy stopped there, and any failure of the sender
        // (a broken pipe) follows from that.
        (Some(problem), _, _) => Some(problem),
        (None, Ok(_), Ok(())) => check_sent(
            check.finish(),
            step.snapshot().map(|s| s.guid),
            step.base_guid(),
        )
        .err(),
        _ => None,
    };
    let HashingWriter {
        inner: upload,
        hasher,
        bytes,
    } = sink;
    let sent = match (copied, sent, damaged) {
        (Ok(n), Ok(()), None) => n,
        (copied, sent, damaged) => {
            // Never complete an object whose stream is not whole.
            drop(upload.abort());
            return Err(match (damaged, sent) {
                (Some(problem), _) => BackupError::Stream {
                    dataset: dataset.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{problem}; nothing was stored as a backup"),
                    ),
                },
                (None, Err(source)) => BackupError::Send {
                    dataset: dataset.clone(),
                    source,
                },
                (None, Ok(())) => BackupError::Stream {
                    dataset: dataset.clone(),
                    source: copied
                        .err()
                        .unwrap_or_else(|| io::Error::other("copy failed")),
                },
            });
        }
    };
    let stored = upload.finish().map_err(store_err)?;
    let digest = Sha256::from_bytes(hasher.finalize().into());
    if stored != bytes {
        return Err(BackupError::VerifyMismatch {
            dataset: dataset.clone(),
            store: store.url().clone(),
            key,
            problem: format!("the store took {stored} bytes, {bytes} were written"),
        });
    }
    if options.verify {
        let (size, read_digest) = read_digest(store, &key).map_err(store_err)?;
        if size != bytes || read_digest != digest {
            return Err(BackupError::VerifyMismatch {
                dataset: dataset.clone(),
                store: store.url().clone(),
                key,
                problem: format!(
                    "{bytes} bytes with SHA-256 {digest} written, {size} bytes with SHA-256 {read_digest} read"
                ),
            });
        }
    }
    let sidecar = step
        .sidecar(bytes, digest, env!("CARGO_PKG_VERSION"))
        .map_err(|source| BackupError::Sidecar {
            dataset: dataset.clone(),
            source,
        })?;
    store
        .put(&step.stream.sidecar_key(), sidecar.to_json().as_bytes())
        .map_err(store_err)?;
    Ok(BackupOutcome {
        key,
        sent,
        sidecar,
        verified: options.verify,
    })
}

/// Passes a stream through a [`StreamCheck`]; the first damage found stops the copy.
struct Checking<'a> {
    inner: &'a mut dyn Read,
    check: StreamCheck,
    problem: Option<String>,
}

impl Read for Checking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(problem) = self.check.feed(&buf[..n]) {
            self.problem = Some(format!(
                "the sender's output is not a whole ZFS send stream: {problem}"
            ));
            return Err(io::Error::new(io::ErrorKind::InvalidData, "damaged stream"));
        }
        Ok(n)
    }
}

/// Checks that a whole stream recreates the snapshot (and base) the backup was
/// planned for; `Err` says what is wrong.
fn check_sent(
    found: Result<StreamGuids, String>,
    to: Option<Guid>,
    from: Option<Guid>,
) -> Result<(), String> {
    match found {
        // A compound stream's header names no snapshot; zsnap does not ask for one.
        Ok(None) => Ok(()),
        Ok(Some(_)) if to.is_none() => Ok(()),
        Ok(Some((t, f))) if Some(t) == to && f == from => Ok(()),
        Ok(Some((t, f))) => Err(format!(
            "the sender wrote a stream of the snapshot with guid {t}{}, not the one planned ({}{})",
            f.map_or_else(String::new, |g| format!(" from {g}")),
            to.map_or_else(|| "unknown".to_string(), |g| format!("guid {g}")),
            from.map_or_else(String::new, |g| format!(" from {g}")),
        )),
        Err(e) => Err(format!(
            "the sender's output is not a whole ZFS send stream: {e}"
        )),
    }
}

/// Reads a whole object, returning its size and SHA-256.
fn read_digest(store: &dyn BackupStore, key: &str) -> Result<(u64, Sha256), StoreError> {
    let mut hashing = HashingReader::new(store.open(key)?);
    copy(&mut hashing, &mut io::sink(), &mut |_| {})
        .map_err(|e| StoreError::from_io(store.url(), StoreOp::Read, Some(key), e))?;
    Ok((hashing.bytes, hashing.digest()))
}

/// Why a stored backup failed its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The backup has no usable sidecar to check against.
    #[error("{key}: no usable sidecar to check against")]
    NoSidecar {
        /// The stream object.
        key: String,
    },
    /// It could not be read.
    #[error("{key}: read")]
    Store {
        /// The stream object.
        key: String,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// Size or digest differ from the sidecar's.
    #[error("{key}: {problem}")]
    Mismatch {
        /// The stream object.
        key: String,
        /// Expected and found.
        problem: String,
    },
}

/// Re-reads the stream of `entry`, compares its size and SHA-256 with its sidecar, and
/// checks the stream itself: every record and checksum whole, and the snapshot (and
/// base) its header names the sidecar's — a stream swapped in with a matching sidecar
/// has the right size and digest, but not the right guids, and a stream stored damaged
/// matches its sidecar but not its own checksums.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify_entry(store: &dyn BackupStore, entry: &BackupEntry) -> Result<u64, VerifyError> {
    let key = entry.key().to_owned();
    let Some(sidecar) = &entry.sidecar else {
        return Err(VerifyError::NoSidecar { key });
    };
    let read_err = |e: io::Error| VerifyError::Store {
        key: key.clone(),
        source: StoreError::from_io(store.url(), StoreOp::Read, Some(&key), e),
    };
    let reader = store.open(&key).map_err(|source| VerifyError::Store {
        key: key.clone(),
        source,
    })?;
    let raw = HashingReader::new(reader);
    let mut body = match sidecar.compression {
        Compression::Zstd => Body::Zstd(Box::new(zstd::Decoder::new(raw).map_err(read_err)?)),
        _ => Body::Plain(raw),
    };
    let mut check = StreamCheck::new();
    let mut buf = vec![0; CHUNK];
    let mut problem = None;
    loop {
        match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = check.feed(&buf[..n]) {
                    problem = Some(e);
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                problem = Some(format!("the stored bytes do not decompress: {e}"));
                break;
            }
        }
    }
    // Whatever the stream looked like, the object as a whole is compared first.
    let (size, digest) = body.finish().map_err(read_err)?;
    if size != sidecar.size || digest != sidecar.sha256 {
        return Err(VerifyError::Mismatch {
            key,
            problem: mismatch((sidecar.size, sidecar.sha256), size, digest),
        });
    }
    let found = match problem {
        Some(p) => Err(p),
        None => check.finish(),
    };
    let expected = (sidecar.guid, sidecar.parent.as_ref().map(|p| p.guid));
    match found {
        Ok(None) => Ok(size),
        Ok(Some(found)) if found == expected => Ok(size),
        Ok(Some((t, _))) => Err(VerifyError::Mismatch {
            key,
            problem: format!(
                "the stream recreates the snapshot with guid {t}, but its sidecar says guid {}: \
                 the stream was swapped or replaced",
                expected.0
            ),
        }),
        Err(problem) => Err(VerifyError::Mismatch {
            key,
            problem: format!(
                "the object matches its sidecar, but the stream in it is damaged (it was \
                 stored damaged, or altered together with its sidecar): {problem}"
            ),
        }),
    }
}

/// How the bytes read (`size`, `digest`) differ from what the sidecar says.
fn mismatch((want_size, want_digest): (u64, Sha256), size: u64, digest: Sha256) -> String {
    if size == want_size {
        format!(
            "SHA-256 is {digest}, the sidecar says {want_digest} (same size, {size} bytes): the object is corrupt"
        )
    } else {
        format!(
            "{size} bytes read, the sidecar says {want_size}: the object is truncated or replaced"
        )
    }
}

/// What went wrong with the digest of a stream being received, shared between the
/// reader given to `zfs receive` and the caller.
type Verdict = Arc<Mutex<Option<String>>>;

/// The stream of one stored backup as a [`SendStream`]: decompressed, with its tail held
/// back until the stored bytes matched the sidecar.
struct StoredStream {
    body: Body,
    expected: (u64, Sha256),
    /// The snapshot (and base) the sidecar says the stream recreates; checked against
    /// the stream's own header before any byte is handed out.
    guids: (Guid, Option<Guid>),
    header_checked: bool,
    key: String,
    dataset: DatasetName,
    /// Decompressed bytes not yet handed out; the last [`HOLD_BACK`] of them stay
    /// until the end is checked.
    pending: Vec<u8>,
    start: usize,
    ended: bool,
    verdict: Verdict,
}

/// The stored bytes as read, counted and hashed.
type Raw = HashingReader<Box<dyn Read + Send>>;

/// The stored bytes, through a zstd decoder when compressed.
enum Body {
    Plain(Raw),
    Zstd(Box<zstd::Decoder<'static, BufReader<Raw>>>),
}

impl Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Body::Plain(r) => r.read(buf),
            Body::Zstd(d) => d.read(buf),
        }
    }

    /// Reads whatever stored bytes are left (none in a well-formed object) and returns
    /// the stored size and digest.
    fn finish(&mut self) -> io::Result<(u64, Sha256)> {
        let raw = match self {
            Body::Plain(r) => r,
            Body::Zstd(d) => {
                let buffered = d.get_mut();
                io::copy(buffered, &mut io::sink())?;
                buffered.get_mut()
            }
        };
        io::copy(raw, &mut io::sink())?;
        Ok((raw.bytes, raw.digest()))
    }
}

impl StoredStream {
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start >= self.pending.len() / 2 {
            self.pending.drain(..self.start);
            self.start = 0;
        }
        let old = self.pending.len();
        self.pending.resize(old + CHUNK, 0);
        let n = loop {
            match self.body.read(&mut self.pending[old..]) {
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.pending.truncate(old + *n.as_ref().unwrap_or(&0));
        let n = n.map_err(|e| self.fail(format!("read {}: {e}", self.key)))?;
        if n == 0 {
            let (size, digest) = self
                .body
                .finish()
                .map_err(|e| self.fail(format!("read {}: {e}", self.key)))?;
            if (size, digest) != self.expected {
                let problem = mismatch(self.expected, size, digest);
                return Err(self.fail(format!("{}: {problem}", self.key)));
            }
            self.ended = true;
        }
        Ok(())
    }

    fn fail(&self, message: String) -> io::Error {
        let mut v = self
            .verdict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        v.get_or_insert_with(|| message.clone());
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl StoredStream {
    /// Checks the stream's header against the sidecar; called before the first byte
    /// is released, when at least [`HOLD_BACK`] bytes (or the whole stream) are here.
    fn check_header(&mut self) -> io::Result<()> {
        self.header_checked = true;
        let found = stream_guids(&self.pending[self.start..]);
        let (to, from) = self.guids;
        let problem = match found {
            Ok(None) => return Ok(()),
            Ok(Some((t, f))) if t == to && f == from => return Ok(()),
            Ok(Some((t, f))) => format!(
                "{}: the stream recreates the snapshot with guid {t}{}, but its sidecar \
                 says guid {to}{}: the stream was swapped or replaced; nothing was received",
                self.key,
                f.map_or_else(String::new, |g| format!(" from {g}")),
                from.map_or_else(String::new, |g| format!(" from {g}")),
            ),
            Err(e) => format!("{}: {e}; nothing was received", self.key),
        };
        Err(self.fail(problem))
    }
}

impl Read for StoredStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let available = self.pending.len() - self.start;
            let releasable = if self.ended {
                available
            } else {
                available.saturating_sub(HOLD_BACK)
            };
            if releasable > 0 && !self.header_checked {
                self.check_header()?;
            }
            if releasable > 0 {
                let n = releasable.min(buf.len());
                buf[..n].copy_from_slice(&self.pending[self.start..self.start + n]);
                self.start += n;
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

impl SendStream for StoredStream {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }

    fn finish(self: Box<Self>) -> Result<(), SendError> {
        let verdict = self
            .verdict
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match verdict {
            None => Ok(()),
            Some(message) => Err(SendError::Stream {
                dataset: self.dataset.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, message),
            }),
        }
    }
}

/// Opens the stream of a complete backup for reading: decompressed, checked against the
/// sidecar as it is read, and with its last [`HOLD_BACK`] bytes released only once the
/// digest matched (a mismatch is a read error instead).
///
/// # Errors
/// When the backup has no usable sidecar or the object cannot be opened.
pub fn open_stream(
    store: &dyn BackupStore,
    entry: &BackupEntry,
) -> Result<Box<dyn SendStream>, VerifyError> {
    let key = entry.key().to_owned();
    let Some(sidecar) = &entry.sidecar else {
        return Err(VerifyError::NoSidecar { key });
    };
    let reader = store.open(&key).map_err(|source| VerifyError::Store {
        key: key.clone(),
        source,
    })?;
    let raw = HashingReader::new(reader);
    let body = match sidecar.compression {
        Compression::Zstd => Body::Zstd(Box::new(zstd::Decoder::new(raw).map_err(|e| {
            VerifyError::Store {
                key: key.clone(),
                source: StoreError::from_io(store.url(), StoreOp::Read, Some(&key), e),
            }
        })?)),
        _ => Body::Plain(raw),
    };
    Ok(Box::new(StoredStream {
        body,
        expected: (sidecar.size, sidecar.sha256),
        guids: (sidecar.guid, sidecar.parent.as_ref().map(|p| p.guid)),
        header_checked: false,
        key,
        dataset: sidecar.dataset.clone(),
        pending: Vec::new(),
        start: 0,
        ended: false,
        verdict: Arc::new(Mutex::new(None)),
    }))
}

/// Why receiving a stored stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveStoredError {
    /// The stream could not be opened.
    #[error("restore {key} into {target}")]
    Open {
        /// The stream object.
        key: String,
        /// The target.
        target: DatasetName,
        /// The cause.
        #[source]
        source: VerifyError,
    },
    /// The stored bytes did not match the sidecar (or could not be read): the receive
    /// was cut short before the stream's end, so nothing of it was committed.
    #[error("restore {key} into {target}: {problem}; the receive was stopped before the end of the stream, nothing of it was applied")]
    Damaged {
        /// The stream object.
        key: String,
        /// The target.
        target: DatasetName,
        /// What was wrong.
        problem: String,
        /// How `zfs receive` ended.
        #[source]
        source: RecvError,
    },
    /// `zfs receive` failed.
    #[error("restore {key} into {target}")]
    Receive {
        /// The stream object.
        key: String,
        /// The target.
        target: DatasetName,
        /// The cause.
        #[source]
        source: RecvError,
    },
}

/// Receives the stream of one complete backup (`zfs receive` per `request`), checked
/// against its sidecar as it flows (see the module docs).
///
/// # Errors
/// See [`ReceiveStoredError`].
pub fn receive_entry(
    store: &dyn BackupStore,
    entry: &BackupEntry,
    backend: &mut dyn ZfsBackend,
    request: &ReceiveRequest,
    progress: Option<&mut dyn FnMut(u64)>,
) -> Result<ReceiveOutcome, ReceiveStoredError> {
    let key = entry.key().to_owned();
    let target = request.target.clone();
    let stream = open_stream(store, entry).map_err(|source| ReceiveStoredError::Open {
        key: key.clone(),
        target: target.clone(),
        source,
    })?;
    backend
        .receive(request, stream, progress)
        .map_err(|source| match damaged(&source) {
            Some(problem) => ReceiveStoredError::Damaged {
                key: key.clone(),
                target: target.clone(),
                problem,
                source,
            },
            None => ReceiveStoredError::Receive {
                key: key.clone(),
                target: target.clone(),
                source,
            },
        })
}

/// The digest problem a failed receive of a [`StoredStream`] carries, if any.
fn damaged(e: &RecvError) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::InvalidData {
                return Some(io.to_string());
            }
        }
        cur = err.source();
    }
    if let RecvError::Command {
        sender: Some(sender),
        ..
    } = e
    {
        return damaged_send(sender);
    }
    None
}

fn damaged_send(e: &SendError) -> Option<String> {
    match e {
        SendError::Stream { source, .. } if source.kind() == io::ErrorKind::InvalidData => {
            Some(source.to_string())
        }
        _ => None,
    }
}

/// Writes the stream of one complete backup, decompressed (as `zfs send` wrote it), to
/// `to`; the last [`HOLD_BACK`] bytes are written only once the digest matched.
/// Returns the bytes written. Write to a temporary file and keep it only on success.
///
/// # Errors
/// When the backup cannot be read or does not match its sidecar, or `to` fails.
pub fn save_entry(
    store: &dyn BackupStore,
    entry: &BackupEntry,
    to: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, VerifyError> {
    let key = entry.key().to_owned();
    let mut stream = open_stream(store, entry)?;
    let copied = copy(&mut stream, to, progress).and_then(|n| to.flush().map(|()| n));
    let checked = stream.finish();
    match (copied, checked) {
        (_, Err(e)) => Err(VerifyError::Mismatch {
            key,
            problem: std::error::Error::source(&e)
                .map_or_else(|| e.to_string(), ToString::to_string),
        }),
        (Err(e), Ok(())) => Err(VerifyError::Store {
            key: key.clone(),
            source: StoreError::from_io(store.url(), StoreOp::Read, Some(&key), e),
        }),
        (Ok(n), Ok(())) => Ok(n),
    }
}

/// What [`delete_objects`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct DeleteReport {
    /// Keys deleted (or already gone).
    pub deleted: Vec<String>,
    /// The deletion that failed; the ones after it were not tried, so the order's
    /// guarantee (nothing kept loses its parent) still holds. The record of the
    /// deletion stays, so the next prune recognises and finishes what is left.
    pub failed: Option<(String, StoreError)>,
}

/// Deletes objects in the order given (the order [`zsnap_core::backup`]'s plans
/// make safe to interrupt), stopping at the first failure.
///
/// Before the first deletion the keys are recorded in the store (a
/// [`PendingDeletion`]), and the record is removed after the last: a sidecar that an
/// interruption leaves without its stream is then known to be part of a deletion,
/// which the next prune finishes, and any other sidecar without its stream is a lost
/// backup that listings and verify report. When the record cannot be written,
/// nothing is deleted.
pub fn delete_objects(
    store: &dyn BackupStore,
    deletions: &[Deletion],
    now: DateTime<Utc>,
) -> DeleteReport {
    let mut report = DeleteReport::default();
    if deletions.is_empty() {
        return report;
    }
    let record = PendingDeletion::new(now, deletions.iter().map(|d| d.key.clone()).collect());
    let record_key = record.key(&crate::store::random_token());
    if let Err(e) = store.put(&record_key, record.to_json().as_bytes()) {
        report.failed = Some((record_key, e));
        return report;
    }
    for d in deletions {
        match store.delete(&d.key) {
            Ok(_) => report.deleted.push(d.key.clone()),
            Err(e) => {
                report.failed = Some((d.key.clone(), e));
                return report;
            }
        }
    }
    // Left behind on failure, the record only makes the next prune delete it.
    if let Err(e) = store.delete(&record_key) {
        report.failed = Some((record_key, e));
    }
    report
}

/// One deletion from a store tried by [`delete_in_order`], as an audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletedObject {
    /// The key.
    pub key: String,
    /// Why it was to go (the plan's reason).
    pub reason: String,
    /// Why it failed, with every cause, if it did.
    pub error: Option<String>,
}

/// The deletion that stopped [`delete_in_order`].
#[derive(Debug, thiserror::Error)]
#[error("delete {key}; the deletions after it were left (the next prune finishes them)")]
#[non_exhaustive]
pub struct DeletionError {
    /// The key that could not be deleted.
    pub key: String,
    /// The cause.
    #[source]
    pub source: StoreError,
}

/// What [`delete_in_order`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Deletions {
    /// Every deletion tried, in order: the ones done, then the one that failed.
    pub tried: Vec<DeletedObject>,
    /// The deletion that failed (the ones after it were not tried).
    pub error: Option<DeletionError>,
}

impl Deletions {
    /// The keys deleted, in order.
    pub fn deleted(&self) -> Vec<String> {
        self.tried
            .iter()
            .filter(|d| d.error.is_none())
            .map(|d| d.key.clone())
            .collect()
    }
}

/// Deletes `deletions` in their order, safe to interrupt ([`delete_objects`]), and
/// says what was tried, with each deletion's reason.
pub fn delete_in_order(
    store: &dyn BackupStore,
    deletions: &[Deletion],
    now: DateTime<Utc>,
) -> Deletions {
    let report = delete_objects(store, deletions, now);
    let reason = |key: &str| {
        deletions
            .iter()
            .find(|d| d.key == key)
            .map_or_else(String::new, |d| d.reason.clone())
    };
    let mut done = Deletions::default();
    for key in report.deleted {
        done.tried.push(DeletedObject {
            reason: reason(&key),
            key,
            error: None,
        });
    }
    if let Some((key, source)) = report.failed {
        done.tried.push(DeletedObject {
            reason: reason(&key),
            key: key.clone(),
            error: Some(crate::failure::error_chain(&source)),
        });
        done.error = Some(DeletionError { key, source });
    }
    done
}

/// How to run a restore.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Let the first receive roll the target back (`zfs receive -F`): discards its
    /// snapshots after the newest one it shares with the restore, or replaces a target
    /// that has no snapshots. A target with snapshots of its own is never overwritten.
    pub force: bool,
    /// Let `Latest` / `At` restore a point older than a newer backup the store records
    /// but cannot restore (see [`zsnap_core::backup::resolve_restore_with`]).
    pub allow_older: bool,
    /// Mount the restored dataset (at the mountpoint it inherits: the stream's own
    /// `mountpoint` is never taken). Off: received with `-u`, not mounted.
    pub mount: bool,
    /// Plan only: resolve the chain and check the target, receive nothing.
    pub dry_run: bool,
}

impl RestoreOptions {
    /// With `-F` allowed or not.
    #[must_use]
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Allowing an older point than the newest backup recorded, or not.
    #[must_use]
    pub fn with_allow_older(mut self, allow: bool) -> Self {
        self.allow_older = allow;
        self
    }

    /// Mounting the restored dataset, or not.
    #[must_use]
    pub fn with_mount(mut self, mount: bool) -> Self {
        self.mount = mount;
        self
    }

    /// Planning only, or not.
    #[must_use]
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// What [`restore`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreRun {
    /// The plan.
    pub plan: zsnap_core::backup::RestorePlan,
    /// The keys received, in order (none in a dry run).
    pub received: Vec<String>,
    /// Bytes received.
    pub bytes: u64,
    /// Whether the restored dataset was left unmounted (`zfs receive -u`).
    pub unmounted: bool,
}

/// Why [`restore`] failed. Streams received before the failure stay received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreRunError {
    /// No chain leads to the point asked for.
    #[error(transparent)]
    Resolve(#[from] zsnap_core::backup::RestoreError),
    /// The target could not be listed.
    #[error("restore into {target}: list it")]
    List {
        /// The target.
        target: DatasetName,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// The target's state forbids the restore.
    #[error(transparent)]
    Plan(#[from] zsnap_core::backup::RestorePlanError),
    /// The partial state of an interrupted receive could not be discarded.
    #[error("restore into {target}: discard the partial state of an interrupted receive")]
    AbortPartial {
        /// The target.
        target: DatasetName,
        /// The cause.
        #[source]
        source: crate::backend::AbortReceiveError,
    },
    /// A later stream of the chain failed its check before anything was received.
    #[error("restore into {target}: a stream of the chain failed its check; nothing was received")]
    Verify {
        /// The target.
        target: DatasetName,
        /// The cause.
        #[source]
        source: VerifyError,
    },
    /// A stored stream is damaged (or is not the one its sidecar describes): running
    /// the restore again fails the same way.
    #[error("restore into {target}: {} stream(s) received before this one; it is damaged in the store, so restoring the same point again fails the same way: restore an earlier point (--snapshot) or repair the store (zsnap backups verify)", .received)]
    Damaged {
        /// The target.
        target: DatasetName,
        /// How many streams were received before it.
        received: usize,
        /// The cause.
        #[source]
        source: ReceiveStoredError,
    },
    /// Receiving a stream failed (after `received` streams were received).
    #[error("restore into {target}: {} stream(s) received before this failure; once the cause is fixed, the same restore continues after them", .received)]
    Receive {
        /// The target.
        target: DatasetName,
        /// How many streams were received before it.
        received: usize,
        /// The cause.
        #[source]
        source: ReceiveStoredError,
    },
    /// After a receive, the target does not hold the snapshot the sidecar describes
    /// (by name and guid).
    #[error("restore into {target}: after receiving {key}, {target}@{snapshot} {found}, but its sidecar says guid {expected}; the store holds another snapshot than it says")]
    Arrived {
        /// The target.
        target: DatasetName,
        /// The stream received.
        key: String,
        /// The snapshot expected.
        snapshot: zsnap_core::ShortName,
        /// Its guid, per the sidecar.
        expected: Guid,
        /// What the target holds instead.
        found: String,
    },
    /// The target could not be listed after a receive to confirm what arrived.
    #[error("restore into {target}: list it after receiving {key} to confirm what arrived")]
    Confirm {
        /// The target.
        target: DatasetName,
        /// The stream received.
        key: String,
        /// The cause.
        #[source]
        source: ListError,
    },
}

impl RestoreRunError {
    /// Whether the target was changed before the failure: streams were received (or
    /// the restore arrived but a later check failed), so what is there now differs
    /// from before.
    pub fn changed_target(&self) -> bool {
        matches!(
            self,
            RestoreRunError::Receive { received, .. }
                | RestoreRunError::Damaged { received, .. } if *received > 0
        ) || matches!(self, RestoreRunError::Arrived { .. })
    }
}

/// Restores `dataset` from the store at `point` into `target` on `backend`: resolves
/// the chain by guid (refusing to go back past a newer backup the store records but
/// cannot restore, unless [`RestoreOptions::allow_older`]), plans against the target
/// as it is ([`zsnap_core::backup::plan_restore`]: continues a restore that stopped,
/// refuses to overwrite without [`RestoreOptions::force`]), checks every stream after
/// the first against its sidecar, then receives them in order, each checked again as
/// it streams (see the module docs) and its header checked against the sidecar's
/// guids before a byte reaches `zfs receive`. Each receive is unmounted (`-u`, unless
/// [`RestoreOptions::mount`]) and never takes the stream's `mountpoint`
/// (`-x mountpoint`), so a stream carrying properties cannot mount over a system
/// path; after each, the target is listed to confirm the snapshot that arrived by
/// guid.
///
/// `progress` gets (stream index in the chain, streams in the chain, bytes of that
/// stream so far).
///
/// # Errors
/// See [`RestoreRunError`].
#[expect(
    clippy::too_many_arguments,
    reason = "one restore's inputs; a struct would only rename them"
)]
pub fn restore(
    store: &dyn BackupStore,
    catalog: &zsnap_core::backup::Catalog,
    dataset: &DatasetName,
    point: &zsnap_core::backup::RestoreTarget,
    target: &DatasetName,
    backend: &mut dyn ZfsBackend,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(usize, usize, u64),
) -> Result<RestoreRun, RestoreRunError> {
    let chain =
        zsnap_core::backup::resolve_restore_with(catalog, dataset, point, opts.allow_older)?;
    let existing = match backend.list(std::slice::from_ref(target)) {
        Ok(inv) => inv.dataset(target).cloned(),
        Err(e) if list_says_missing(&e) => None,
        Err(source) => {
            return Err(RestoreRunError::List {
                target: target.clone(),
                source,
            })
        }
    };
    let plan = zsnap_core::backup::plan_restore(chain, target, existing.as_ref(), opts.force)?;
    let mut run = RestoreRun {
        received: Vec::new(),
        bytes: 0,
        plan,
        unmounted: !opts.mount,
    };
    if opts.dry_run {
        return Ok(run);
    }
    if run.plan.abort_partial {
        backend
            .abort_receive(target)
            .map_err(|source| RestoreRunError::AbortPartial {
                target: target.clone(),
                source,
            })?;
    }
    // Every stream after the first is checked before anything is received. The first
    // needs no pass of its own: it is checked as it streams, and its tail (with the END
    // record without which `zfs receive` commits nothing) is held back until its
    // digest matched. So a damaged stream anywhere in the chain leaves the target as it
    // was, and a restore of a single stream reads it once.
    for entry in run.plan.remaining().iter().skip(1) {
        verify_entry(store, entry).map_err(|source| RestoreRunError::Verify {
            target: target.clone(),
            source,
        })?;
    }
    let remaining: Vec<BackupEntry> = run.plan.remaining().to_vec();
    for (i, entry) in remaining.iter().enumerate() {
        // Not resumable (partial state would block the next receive; a failed stream
        // is received again from its start).
        let mut options = zsnap_core::RecvOptions::default();
        options.force = run.plan.rollback && i == 0;
        options.unmounted = !opts.mount;
        options.resumable = false;
        options.exclude_props = vec!["mountpoint".to_owned()];
        let request = ReceiveRequest::new(target.clone(), options);
        let index = run.plan.done + i;
        let total = run.plan.chain.len();
        let mut each = |bytes| progress(index, total, bytes);
        let received = run.received.len();
        let outcome =
            receive_entry(store, entry, backend, &request, Some(&mut each)).map_err(|source| {
                if matches!(source, ReceiveStoredError::Damaged { .. }) {
                    RestoreRunError::Damaged {
                        target: target.clone(),
                        received,
                        source,
                    }
                } else {
                    RestoreRunError::Receive {
                        target: target.clone(),
                        received,
                        source,
                    }
                }
            })?;
        confirm_arrived(backend, target, entry)?;
        run.bytes += outcome.bytes.unwrap_or(0);
        run.received.push(entry.key().to_owned());
    }
    Ok(run)
}

/// Lists `target` after `entry` was received into it and checks that the snapshot the
/// sidecar names is there with the sidecar's guid.
fn confirm_arrived(
    backend: &dyn ZfsBackend,
    target: &DatasetName,
    entry: &BackupEntry,
) -> Result<(), RestoreRunError> {
    let Some(sidecar) = &entry.sidecar else {
        return Ok(());
    };
    let inv = backend
        .list(std::slice::from_ref(target))
        .map_err(|source| RestoreRunError::Confirm {
            target: target.clone(),
            key: entry.key().to_owned(),
            source,
        })?;
    let found = inv
        .dataset(target)
        .and_then(|ds| ds.snapshot(&sidecar.snapshot))
        .map(|s| s.guid);
    if found == Some(sidecar.guid) {
        return Ok(());
    }
    Err(RestoreRunError::Arrived {
        target: target.clone(),
        key: entry.key().to_owned(),
        snapshot: sidecar.snapshot.clone(),
        expected: sidecar.guid,
        found: found.map_or_else(|| "is not there".to_owned(), |g| format!("has guid {g}")),
    })
}

/// Whether a failed listing says the dataset does not exist.
fn list_says_missing(e: &ListError) -> bool {
    match e {
        ListError::Command { source, .. } => source
            .failure()
            .is_some_and(|f| f.kind == crate::failure::FailureKind::NoSuchDataset),
        _ => false,
    }
}
