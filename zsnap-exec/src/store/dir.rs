//! [`DirStore`]: backups in a directory, with `std::fs`.
//!
//! Durability: a backup is only as good as the last fsync before zsnap says it is done,
//! so every change is synced before the call returns, in this order:
//! - a new directory is fsynced in its parent (its entry would otherwise be lost with
//!   everything below it);
//! - [`BackupStore::put`] writes a temporary file in the target's own directory (a
//!   rename is atomic only within one filesystem), fsyncs it, renames it over the
//!   target, and fsyncs the directory so the rename itself survives a crash: readers
//!   and crashes see the old object or the whole new one, never a torn sidecar;
//! - an [`Upload`] writes the final name directly (a crash leaves an unfinished
//!   backup, which is visible and removed by retention, rather than a hidden
//!   temporary file nobody cleans up); `finish` fsyncs the file, then the directory,
//!   and only then does the executor write the sidecar that makes the backup complete;
//! - [`BackupStore::delete`] fsyncs the directory after the unlink, so deletions that
//!   a plan orders (a stream before its sidecar, an incremental before its parent)
//!   reach the disk in that order.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use zsnap_core::backup::{StoreObject, StoreUrl};

use super::{
    check_key, BackupStore, OpenStoreError, OpenStoreProblem, StoreError, StoreOp, StoreProblem,
    Upload, TEMP_PREFIX,
};

/// Buffer of an [`Upload`] to a directory: large writes, few system calls.
const UPLOAD_BUFFER: usize = 1 << 20;

/// A directory holding backups: keys are file paths below it, verbatim.
///
/// `object_store`'s `LocalFileSystem` is not used: it percent-decodes keys into nested
/// directories (`tank%2Fhome` would become `tank/home`) and does not fsync.
#[derive(Debug)]
pub struct DirStore {
    url: StoreUrl,
    root: PathBuf,
}

impl DirStore {
    /// Opens the directory store `url` (a `dir:` URL). With `create`, the directory
    /// (and its missing parents) is made; otherwise a missing directory is an error.
    pub fn open(url: &StoreUrl, create: bool) -> Result<Self, OpenStoreError> {
        let fail = |problem| OpenStoreError::new(url, problem);
        let StoreUrl::Dir { path } = url else {
            return Err(fail(OpenStoreProblem::Kind { expected: "dir" }));
        };
        let root = PathBuf::from(path);
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(fail(OpenStoreProblem::NotDirectory { path: path.clone() }));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                create_dirs(&root).map_err(|source| {
                    fail(OpenStoreProblem::Dir {
                        path: path.clone(),
                        source,
                    })
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(OpenStoreProblem::Missing { path: path.clone() }));
            }
            Err(source) => {
                return Err(fail(OpenStoreProblem::Dir {
                    path: path.clone(),
                    source,
                }));
            }
        }
        Ok(DirStore {
            url: url.clone(),
            root,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, op: StoreOp, key: Option<&str>, problem: impl Into<StoreProblem>) -> StoreError {
        StoreError::new(&self.url, op, key, problem)
    }

    /// The file of `key`, after checking the key.
    fn path(&self, op: StoreOp, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key).map_err(|p| self.err(op, Some(key), p))?;
        Ok(self.root.join(key))
    }

    fn list_into(&self, dir: &Path, prefix: &str, out: &mut Vec<StoreObject>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // A name that is not UTF-8 cannot be a key: zsnap never writes one.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let key = format!("{prefix}{name}");
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                self.list_into(&entry.path(), &format!("{key}/"), out)?;
                continue;
            }
            // Symbolic links count as the file they point to (and are never followed
            // into directories, so there are no loops).
            let meta = match fs::metadata(entry.path()) {
                Ok(m) => m,
                // Deleted since read_dir, or a dangling link: not an object.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_file() {
                let modified = DateTime::<Utc>::from(meta.modified()?);
                out.push(StoreObject::new(key, meta.len(), modified));
            }
        }
        Ok(())
    }

    /// Opens the regular file of `key` for reading.
    fn open_file(&self, key: &str) -> Result<(File, u64), StoreError> {
        let path = self.path(StoreOp::Read, key)?;
        let fail = |e: io::Error| {
            if e.kind() == io::ErrorKind::NotFound {
                self.err(StoreOp::Read, Some(key), StoreProblem::NotFound)
            } else {
                self.err(StoreOp::Read, Some(key), e)
            }
        };
        let file = File::open(&path).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if !meta.is_file() {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(self.err(StoreOp::Read, Some(key), e));
        }
        Ok((file, meta.len()))
    }
}

/// Makes `dir` and its missing parents, fsyncing each new directory's parent.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Made at the same time by someone else: fine, they sync it too.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// fsyncs a directory (its entries: new, renamed and removed names).
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path` (a key's file, so it always has one).
fn parent(path: &Path) -> &Path {
    path.parent()
        .expect("a key's file is below the store's root")
}

/// A file name for a temporary file in the same directory, unique among this process's
/// concurrent writes (and made with `create_new`, so never someone else's).
fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}", std::process::id())
}

impl BackupStore for DirStore {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn list(&self) -> Result<Vec<StoreObject>, StoreError> {
        let mut out = Vec::new();
        self.list_into(&self.root, "", &mut out)
            .map_err(|e| self.err(StoreOp::List, None, e))?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn get(&self, key: &str, max: usize) -> Result<Vec<u8>, StoreError> {
        let (file, size) = self.open_file(key)?;
        if size > max as u64 {
            return Err(self.err(
                StoreOp::Read,
                Some(key),
                StoreProblem::TooLarge { size, max },
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // One byte more than allowed tells a file that grew since the stat.
        file.take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.err(StoreOp::Read, Some(key), e))?;
        if bytes.len() > max {
            let size = bytes.len() as u64;
            return Err(self.err(
                StoreOp::Read,
                Some(key),
                StoreProblem::TooLarge { size, max },
            ));
        }
        Ok(bytes)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path(StoreOp::Write, key)?;
        let fail = |e: io::Error| self.err(StoreOp::Write, Some(key), e);
        let dir = parent(&path);
        create_dirs(dir).map_err(fail)?;
        let (tmp, mut file) = loop {
            let tmp = dir.join(temp_name());
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(fail(e)),
            }
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(fail(e));
        }
        sync_dir(dir).map_err(fail)
    }

    fn upload(&self, key: &str) -> Result<Box<dyn Upload + '_>, StoreError> {
        let path = self.path(StoreOp::Upload, key)?;
        let fail = |e: io::Error| self.err(StoreOp::Upload, Some(key), e);
        create_dirs(parent(&path)).map_err(fail)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(fail)?;
        Ok(Box::new(DirUpload {
            store: self,
            key: key.to_owned(),
            path,
            file: Some(BufWriter::with_capacity(UPLOAD_BUFFER, file)),
            written: 0,
        }))
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let (file, _) = self.open_file(key)?;
        Ok(Box::new(DirReader {
            url: self.url.clone(),
            key: key.to_owned(),
            file,
        }))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path(StoreOp::Delete, key)?;
        let fail = |e: io::Error| self.err(StoreOp::Delete, Some(key), e);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(fail(e)),
        }
        sync_dir(parent(&path)).map_err(fail)?;
        Ok(true)
    }
}

/// Reads a file; errors name the store and the key.
struct DirReader {
    url: StoreUrl,
    key: String,
    file: File,
}

impl Read for DirReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file
            .read(buf)
            .map_err(|e| StoreError::new(&self.url, StoreOp::Read, Some(&self.key), e).into_io())
    }
}

/// An upload to a directory: the final file, written as it comes.
struct DirUpload<'a> {
    store: &'a DirStore,
    key: String,
    path: PathBuf,
    /// `None` once finished or aborted.
    file: Option<BufWriter<File>>,
    written: u64,
}

impl DirUpload<'_> {
    fn err(&self, e: io::Error) -> StoreError {
        self.store.err(StoreOp::Upload, Some(&self.key), e)
    }

    fn file(&mut self) -> io::Result<&mut BufWriter<File>> {
        match &mut self.file {
            Some(f) => Ok(f),
            None => {
                let problem = StoreProblem::Failed;
                let e = StoreError::new(&self.store.url, StoreOp::Upload, Some(&self.key), problem);
                Err(e.into_io())
            }
        }
    }
}

impl Write for DirUpload<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file()?.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.err(e).into_io()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file()?.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.err(e).into_io()),
        }
    }
}

impl Upload for DirUpload<'_> {
    fn finish(mut self: Box<Self>) -> Result<u64, StoreError> {
        let Some(file) = self.file.take() else {
            let problem = StoreProblem::Failed;
            return Err(self.store.err(StoreOp::Upload, Some(&self.key), problem));
        };
        let file = file.into_inner().map_err(|e| self.err(e.into_error()))?;
        file.sync_all().map_err(|e| self.err(e))?;
        sync_dir(parent(&self.path)).map_err(|e| self.err(e))?;
        Ok(self.written)
    }

    fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        // Closed first (its buffer goes to a file about to be removed).
        drop(self.file.take());
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.err(e)),
        }
        sync_dir(parent(&self.path)).map_err(|e| self.err(e))
    }
}
