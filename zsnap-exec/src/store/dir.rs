//! [`DirStore`]: backups in a directory, opened without following symbolic links.
//!
//! # Links and permissions
//! zsnap runs as root, and a store on a NAS or a shared disk may be writable by
//! others, who could plant a symbolic link where zsnap is about to write or read. So
//! everything below the store's root is reached from a descriptor of the root, one
//! component at a time, with `openat(…, O_NOFOLLOW)`: a link at a dataset directory
//! or at an object is refused, never followed. Objects are created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (so never someone else's file), files `0600` and
//! directories `0700` (a stream holds every file of an unencrypted dataset), and what
//! is opened for reading is checked to be a regular file. The root itself is the
//! configured path and is opened as given.
//!
//! # Durability
//! A backup is only as good as the last fsync before zsnap says it is done, so every
//! change is synced before the call returns, in this order:
//! - a new directory is fsynced in its parent (its entry would otherwise be lost with
//!   everything below it);
//! - [`BackupStore::put`] writes a temporary file in the target's own directory (a
//!   rename is atomic only within one filesystem), fsyncs it, renames it over the
//!   target (a rename replaces a link, it does not follow it), and fsyncs the
//!   directory so the rename itself survives a crash: readers and crashes see the old
//!   object or the whole new one, never a torn sidecar;
//! - an [`Upload`] creates the final name exclusively (after removing a file an
//!   earlier attempt left there: `unlinkat` removes a link itself, never its target).
//!   A crash then leaves an unfinished backup, which is visible and removed by
//!   retention, rather than a hidden temporary file nobody cleans up; `finish` fsyncs
//!   the file, then the directory, and only then does the executor write the sidecar
//!   that makes the backup complete;
//! - [`BackupStore::delete`] fsyncs the directory after the unlink, so deletions that
//!   a plan orders (a stream before its sidecar, an incremental before its parent)
//!   reach the disk in that order.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use zsnap_core::backup::{StoreObject, StoreUrl};

use super::{
    check_key, BackupStore, OpenStoreError, OpenStoreProblem, StoreError, StoreOp, StoreProblem,
    Upload, MAX_LISTED_OBJECTS, TEMP_PREFIX,
};

/// Buffer of an [`Upload`] to a directory: large writes, few system calls.
const UPLOAD_BUFFER: usize = 1 << 20;

/// The mode of the files zsnap creates (before the umask).
const FILE_MODE: u32 = 0o600;

/// The mode of the directories zsnap creates (before the umask).
const DIR_MODE: u32 = 0o700;

/// A directory holding backups: keys are file paths below it, verbatim.
///
/// `object_store`'s `LocalFileSystem` is not used: it percent-decodes keys into nested
/// directories (`tank%2Fhome` would become `tank/home`), follows links and does not
/// fsync.
#[derive(Debug)]
pub struct DirStore {
    url: StoreUrl,
    root: PathBuf,
    /// The root, opened once: every path below is resolved from it.
    root_fd: OwnedFd,
}

/// An error for a component that is a link or not a directory (`openat` with
/// `O_NOFOLLOW | O_DIRECTORY` answers `ELOOP` or `ENOTDIR`).
fn refused_link(e: rustix::io::Errno, name: &str) -> io::Error {
    if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is a symbolic link or not a directory (links are not followed)"),
        )
    } else {
        e.into()
    }
}

/// Opens the directory `name` in `parent` without following a link.
fn open_dir_at(parent: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(|e| refused_link(e, name))
}

/// Opens the file `name` in `dir` for reading without following a link, and checks
/// that it is a regular file.
fn open_file_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<(File, u64)> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            not_regular(name)
        } else {
            io::Error::from(e)
        }
    })?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(name));
    }
    Ok((file, meta.len()))
}

fn not_regular(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name:?} is not a regular file (links are not followed)"),
    )
}

/// fsyncs a directory (its entries: new, renamed and removed names).
fn sync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    rustix::fs::fsync(dir).map_err(io::Error::from)
}

/// A file name for a temporary file in the same directory, unique among this process's
/// concurrent writes (and made with `O_EXCL`, so never someone else's).
fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}", std::process::id())
}

/// Creates `name` in `dir` exclusively, without following a link, mode 0600.
fn create_file_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NOCTTY;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(FILE_MODE))?;
    Ok(File::from(fd))
}

/// The directory parts and the file name of a (checked) key.
fn split_key(key: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = key.split('/').collect();
    let file = parts.pop().expect("split gives at least one part");
    (parts, file)
}

/// The modification time of a `stat`.
#[allow(
    clippy::useless_conversion,
    reason = "the fields' types differ between targets (c_long, u32, i64)"
)]
fn modified(st: &rustix::fs::Stat) -> DateTime<Utc> {
    let secs = i64::try_from(st.st_mtime).unwrap_or(0);
    let nanos = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
    DateTime::from_timestamp(secs, nanos).unwrap_or_default()
}

impl DirStore {
    /// Opens the directory store `url` (a `dir:` URL) whose directory exists. Nothing
    /// is created: `zsnap backups init` ([`DirStore::init`]) makes a store.
    pub fn open(url: &StoreUrl) -> Result<Self, OpenStoreError> {
        let fail = |problem| OpenStoreError::new(url, problem);
        let StoreUrl::Dir { path } = url else {
            return Err(fail(OpenStoreProblem::Kind { expected: "dir" }));
        };
        let root = PathBuf::from(path);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::open(&root, flags, Mode::empty()) {
            Ok(root_fd) => Ok(DirStore {
                url: url.clone(),
                root,
                root_fd,
            }),
            Err(rustix::io::Errno::NOENT) => {
                Err(fail(OpenStoreProblem::Missing { path: path.clone() }))
            }
            Err(rustix::io::Errno::NOTDIR) => {
                Err(fail(OpenStoreProblem::NotDirectory { path: path.clone() }))
            }
            Err(e) => Err(fail(OpenStoreProblem::Dir {
                path: path.clone(),
                source: e.into(),
            })),
        }
    }

    /// Makes the directory of `url` if it does not exist: only its last component,
    /// mode 0700; its parent must exist (an unmounted disk's mount point is not
    /// filled with a new tree). Returns the opened store and whether the directory
    /// was made.
    pub fn init(url: &StoreUrl) -> Result<(Self, bool), OpenStoreError> {
        let fail = |problem| OpenStoreError::new(url, problem);
        let StoreUrl::Dir { path } = url else {
            return Err(fail(OpenStoreProblem::Kind { expected: "dir" }));
        };
        let root = Path::new(path);
        let (Some(parent), Some(name)) = (root.parent(), root.file_name()) else {
            // `/` itself: it exists.
            return Ok((Self::open(url)?, false));
        };
        let parent_str = parent.display().to_string();
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let parent_fd = match rustix::fs::open(parent, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Err(fail(OpenStoreProblem::Missing { path: parent_str }))
            }
            Err(e) => {
                return Err(fail(OpenStoreProblem::Dir {
                    path: parent_str,
                    source: e.into(),
                }))
            }
        };
        let made = match rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => {
                sync_dir(parent_fd.as_fd()).map_err(|source| {
                    fail(OpenStoreProblem::Dir {
                        path: parent_str.clone(),
                        source,
                    })
                })?;
                true
            }
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => {
                return Err(fail(OpenStoreProblem::Dir {
                    path: path.clone(),
                    source: e.into(),
                }))
            }
        };
        Ok((Self::open(url)?, made))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, op: StoreOp, key: Option<&str>, problem: impl Into<StoreProblem>) -> StoreError {
        StoreError::new(&self.url, op, key, problem)
    }

    /// An I/O error of `op` on `key`, a missing file told apart.
    fn io_err(&self, op: StoreOp, key: &str, e: io::Error) -> StoreError {
        if e.kind() == io::ErrorKind::NotFound {
            self.err(op, Some(key), StoreProblem::NotFound)
        } else {
            self.err(op, Some(key), e)
        }
    }

    /// The directory of `key` (after checking the key) and its file name; with
    /// `create`, missing directories are made (0700, each synced in its parent).
    fn dir_of<'k>(
        &self,
        op: StoreOp,
        key: &'k str,
        create: bool,
    ) -> Result<(OwnedFd, &'k str), StoreError> {
        check_key(key).map_err(|p| self.err(op, Some(key), p))?;
        let (dirs, file) = split_key(key);
        let mut fd = self
            .root_fd
            .try_clone()
            .map_err(|e| self.err(op, Some(key), e))?;
        for part in dirs {
            let next = match open_dir_at(fd.as_fd(), part) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    match rustix::fs::mkdirat(&fd, part, Mode::from_raw_mode(DIR_MODE)) {
                        Ok(()) => sync_dir(fd.as_fd()).map_err(|e| self.err(op, Some(key), e))?,
                        // Made at the same time by someone else: fine, they sync it.
                        Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(self.err(op, Some(key), io::Error::from(e))),
                    }
                    open_dir_at(fd.as_fd(), part)
                }
                other => other,
            };
            fd = next.map_err(|e| self.io_err(op, key, e))?;
        }
        Ok((fd, file))
    }

    fn list_into(
        &self,
        dir: &OwnedFd,
        prefix: &str,
        out: &mut Vec<StoreObject>,
    ) -> Result<(), StoreError> {
        let fail = |e: io::Error| self.err(StoreOp::List, None, e);
        let entries = rustix::fs::Dir::read_from(dir).map_err(|e| fail(e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| fail(e.into()))?;
            // A name that is not UTF-8 cannot be a key: zsnap never writes one.
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let key = format!("{prefix}{name}");
            let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Deleted since it was read.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(fail(e.into())),
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let sub = match open_dir_at(dir.as_fd(), name) {
                        Ok(fd) => fd,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(fail(e)),
                    };
                    self.list_into(&sub, &format!("{key}/"), out)?;
                }
                // A link is listed as itself, never followed: as a stream or a sidecar
                // it is an object that cannot be read, which verify and the catalog
                // report, rather than something hidden.
                FileType::RegularFile | FileType::Symlink => {
                    if out.len() >= MAX_LISTED_OBJECTS {
                        return Err(self.err(
                            StoreOp::List,
                            None,
                            StoreProblem::TooManyObjects {
                                max: MAX_LISTED_OBJECTS,
                            },
                        ));
                    }
                    #[allow(
                        clippy::useless_conversion,
                        reason = "st_size's type differs between targets"
                    )]
                    let size = u64::try_from(st.st_size).unwrap_or(0);
                    out.push(StoreObject::new(key, size, modified(&st)));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens the regular file of `key` for reading.
    fn open_file(&self, key: &str) -> Result<(File, u64), StoreError> {
        let (dir, file) = self.dir_of(StoreOp::Read, key, false)?;
        open_file_at(dir.as_fd(), file).map_err(|e| self.io_err(StoreOp::Read, key, e))
    }
}

impl BackupStore for DirStore {
    fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn list(&self) -> Result<Vec<StoreObject>, StoreError> {
        let mut out = Vec::new();
        self.list_into(&self.root_fd, "", &mut out)?;
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
        let (dir, name) = self.dir_of(StoreOp::Write, key, true)?;
        let fail = |e: io::Error| self.err(StoreOp::Write, Some(key), e);
        let (tmp, mut file) = loop {
            let tmp = temp_name();
            match create_file_at(dir.as_fd(), &tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(fail(e)),
            }
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| rustix::fs::renameat(&dir, &tmp, &dir, name).map_err(io::Error::from));
        if let Err(e) = written {
            drop(file);
            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
            return Err(fail(e));
        }
        sync_dir(dir.as_fd()).map_err(fail)
    }

    fn upload(&self, key: &str) -> Result<Box<dyn Upload + '_>, StoreError> {
        let (dir, name) = self.dir_of(StoreOp::Upload, key, true)?;
        let fail = |e: io::Error| self.err(StoreOp::Upload, Some(key), e);
        // What an earlier attempt left (or a link someone planted) goes first: the new
        // stream is then created exclusively, so it is never written through a link.
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(fail(e.into())),
        }
        let file = create_file_at(dir.as_fd(), name).map_err(fail)?;
        Ok(Box::new(DirUpload {
            store: self,
            key: key.to_owned(),
            dir,
            name: name.to_owned(),
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
        let (dir, name) = match self.dir_of(StoreOp::Delete, key, false) {
            Ok(found) => found,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        let fail = |e: io::Error| self.err(StoreOp::Delete, Some(key), e);
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(fail(e.into())),
        }
        sync_dir(dir.as_fd()).map_err(fail)?;
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
    /// The directory holding it, opened without following links.
    dir: OwnedFd,
    name: String,
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
        sync_dir(self.dir.as_fd()).map_err(|e| self.err(e))?;
        Ok(self.written)
    }

    fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        // Closed first (its buffer goes to a file about to be removed).
        drop(self.file.take());
        match rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.err(e.into())),
        }
        sync_dir(self.dir.as_fd()).map_err(|e| self.err(e))
    }
}
