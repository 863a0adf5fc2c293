//! Opening zsnap's own files (lock, journal, audit log, state) without being redirected.
//!
//! zsnap runs as root, and the directories it writes into may be shared (a NAS mount, a
//! world-writable `/tmp`). A symbolic link or hard link placed at a predictable name would
//! make it append to, truncate or read another file (a password file, a device).
//! Therefore every open here:
//!
//! - never follows a symbolic link in the last component (`O_NOFOLLOW`; the link itself
//!   is refused), and never blocks on a FIFO (`O_NONBLOCK` at open);
//! - checks with `fstat` on what was opened that it is a regular file with one link,
//!   owned by this user or root;
//! - for a file zsnap writes, first refuses a directory others can write
//!   ([`check_dir`]): group- or other-writable unless root-owned with the sticky bit
//!   (like `/tmp`), or owned by another user than this one or root;
//! - creates files `0600` and directories `0700`.
//!
//! Errors name the path and the reason, and never quote the file's contents.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// Why a directory is not safe to write into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirProblem {
    /// Group- or other-writable, and not a root-owned sticky directory.
    WritableByOthers {
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by a user that is neither this process's user nor root.
    OwnedByOther {
        /// The owner.
        uid: u32,
    },
    /// Not a directory.
    NotADirectory,
}

impl std::fmt::Display for DirProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirProblem::WritableByOthers { mode } => {
                write!(
                    f,
                    "it is writable by other users (mode {:04o})",
                    mode & 0o7777
                )
            }
            DirProblem::OwnedByOther { uid } => {
                write!(f, "it is owned by another user (uid {uid})")
            }
            DirProblem::NotADirectory => f.write_str("it is not a directory"),
        }
    }
}

/// Why an opened path is not the plain file it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileProblem {
    /// A symbolic link.
    Symlink,
    /// A directory, device, FIFO or socket.
    NotRegular,
    /// A regular file with more than one name (a hard link).
    HardLinked {
        /// Its link count.
        links: u64,
    },
    /// Owned by a user that is neither this process's user nor root.
    OwnedByOther {
        /// The owner.
        uid: u32,
    },
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Symlink => f.write_str("it is a symbolic link"),
            FileProblem::NotRegular => f.write_str("it is not a regular file"),
            FileProblem::HardLinked { links } => write!(f, "it has {links} hard links"),
            FileProblem::OwnedByOther { uid } => {
                write!(f, "it is owned by another user (uid {uid})")
            }
        }
    }
}

/// Opening a file safely failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafeFsError {
    /// The directory holding the file is not safe to write into.
    #[error("use the directory {path}: {problem}")]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        problem: DirProblem,
    },
    /// The path is not a plain file of this user.
    #[error("open {path}: {problem}")]
    UnsafeFile {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: FileProblem,
    },
    /// The system refused (missing, no permission, …).
    #[error("open {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl SafeFsError {
    fn io(path: &Path, source: impl Into<std::io::Error>) -> SafeFsError {
        SafeFsError::Io {
            path: path.to_owned(),
            source: source.into(),
        }
    }

    /// The underlying I/O error kind, when the system refused.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            SafeFsError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `uid` may own what zsnap writes: this user or root.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// Refuses a directory that others than its owner could write into (so they could
/// replace or link a file zsnap then opens), or owned by another user than this one or
/// root. A root-owned directory with the sticky bit (like `/tmp`) is accepted: others
/// cannot remove or rename what is in it.
///
/// # Errors
/// [`SafeFsError::UnsafeDirectory`] naming the reason, or [`SafeFsError::Io`] when it
/// cannot be examined.
pub fn check_dir(dir: &Path) -> Result<(), SafeFsError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let meta = std::fs::metadata(dir).map_err(|e| SafeFsError::io(dir, e))?;
    let problem = |problem| SafeFsError::UnsafeDirectory {
        path: dir.to_owned(),
        problem,
    };
    if !meta.is_dir() {
        return Err(problem(DirProblem::NotADirectory));
    }
    let (mode, uid) = (meta.mode(), meta.uid());
    if !trusted_owner(uid) {
        return Err(problem(DirProblem::OwnedByOther { uid }));
    }
    let sticky_root = uid == 0 && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky_root {
        return Err(problem(DirProblem::WritableByOthers { mode }));
    }
    Ok(())
}

/// Creates `dir` and its missing parents, new ones `0700`, then checks it with
/// [`check_dir`].
///
/// # Errors
/// When it cannot be created, or is not safe.
pub fn create_dir_all(dir: &Path) -> Result<(), SafeFsError> {
    if !dir.as_os_str().is_empty() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| SafeFsError::io(dir, e))?;
    }
    check_dir(dir)
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Opens with `flags` plus no-follow and close-on-exec, then checks what was opened.
fn open_checked(path: &Path, flags: OFlags) -> Result<File, SafeFsError> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => fd,
        // ELOOP is how O_NOFOLLOW says the last component is a link.
        Err(e) if e == rustix::io::Errno::LOOP => {
            return Err(SafeFsError::UnsafeFile {
                path: path.to_owned(),
                problem: FileProblem::Symlink,
            })
        }
        Err(e) => return Err(SafeFsError::io(path, e)),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| SafeFsError::io(path, e))?;
    let problem = if !meta.file_type().is_file() {
        Some(FileProblem::NotRegular)
    } else if meta.nlink() > 1 {
        Some(FileProblem::HardLinked {
            links: meta.nlink(),
        })
    } else if !trusted_owner(meta.uid()) {
        Some(FileProblem::OwnedByOther { uid: meta.uid() })
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(SafeFsError::UnsafeFile {
            path: path.to_owned(),
            problem,
        });
    }
    // Back to blocking I/O: O_NONBLOCK was only there so opening a FIFO cannot hang.
    rustix::fs::fcntl_setfl(
        &file,
        rustix::fs::fcntl_getfl(&file).map_err(|e| SafeFsError::io(path, e))? - OFlags::NONBLOCK,
    )
    .map_err(|e| SafeFsError::io(path, e))?;
    Ok(file)
}

/// Opens `path` for appending, creating it `0600`, in a directory [`check_dir`] accepts.
///
/// # Errors
/// When the directory is unsafe, the path is a link or not a plain file of this user, or
/// the system refuses.
///
/// # Example
/// ```
/// use std::io::Write;
/// use zsnap_exec::safe_fs;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("audit.jsonl");
/// safe_fs::open_append(&path).unwrap().write_all(b"{}\n").unwrap();
/// std::os::unix::fs::symlink(&path, dir.path().join("link")).unwrap();
/// let err = safe_fs::open_append(&dir.path().join("link")).unwrap_err();
/// assert!(err.to_string().ends_with("link: it is a symbolic link"));
/// ```
pub fn open_append(path: &Path) -> Result<File, SafeFsError> {
    check_dir(parent(path))?;
    open_checked(path, OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE)
}

/// Opens `path` for reading and writing, creating it `0600` (never truncating), in a
/// directory [`check_dir`] accepts. For lock files.
///
/// # Errors
/// As [`open_append`].
pub fn open_rw(path: &Path) -> Result<File, SafeFsError> {
    check_dir(parent(path))?;
    open_checked(path, OFlags::RDWR | OFlags::CREATE)
}

/// Creates `path` `0600`, failing when anything (a file or a link) is already there, in a
/// directory [`check_dir`] accepts. For temporary files renamed into place.
///
/// # Errors
/// As [`open_append`]; [`std::io::ErrorKind::AlreadyExists`] when the name is taken.
pub fn create_new(path: &Path) -> Result<File, SafeFsError> {
    check_dir(parent(path))?;
    open_checked(path, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)
}

/// Opens an existing `path` for reading, refusing a link or anything but a plain file of
/// this user or root. The directory is not checked: reading is harmless where writing
/// is not, and the file is never quoted in errors.
///
/// # Errors
/// When the path is a link or not a plain file, or the system refuses.
pub fn open_read(path: &Path) -> Result<File, SafeFsError> {
    open_checked(path, OFlags::RDONLY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::PermissionsExt as _;

    fn shown(e: &SafeFsError, dir: &Path) -> String {
        e.to_string().replace(&dir.display().to_string(), "<dir>")
    }

    #[test]
    fn links_are_refused_and_their_target_untouched() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "root:$6$hash").expect("writable");
        let link = dir.path().join("zsnap.lock");
        std::os::unix::fs::symlink(&secret, &link).expect("a link");
        for r in [
            open_append(&link),
            open_rw(&link),
            open_read(&link),
            create_new(&link),
        ] {
            let e = r.unwrap_err();
            let text = shown(&e, dir.path());
            assert!(!text.contains("hash"), "{text}");
            if !matches!(e, SafeFsError::Io { .. }) {
                assert_eq!(text, "open <dir>/zsnap.lock: it is a symbolic link");
            } else {
                assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AlreadyExists));
            }
        }
        assert_eq!(
            std::fs::read_to_string(&secret).expect("kept"),
            "root:$6$hash"
        );
        // A dangling link (the target would be created through it) is refused too.
        let dangling = dir.path().join("journal");
        std::os::unix::fs::symlink(dir.path().join("new"), &dangling).expect("a link");
        assert!(open_append(&dangling).is_err());
        assert!(!dir.path().join("new").exists());
    }

    #[test]
    fn hard_links_fifos_and_directories_are_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "x").expect("writable");
        let hard = dir.path().join("audit");
        std::fs::hard_link(&secret, &hard).expect("a hard link");
        let e = open_append(&hard).unwrap_err();
        insta::assert_snapshot!(shown(&e, dir.path()), @"open <dir>/audit: it has 2 hard links");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("a dir");
        let e = open_read(&sub).unwrap_err();
        insta::assert_snapshot!(shown(&e, dir.path()), @"open <dir>/sub: it is not a regular file");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Would hang forever without O_NONBLOCK.
            assert!(matches!(
                open_read(&fifo),
                Err(SafeFsError::UnsafeFile {
                    problem: FileProblem::NotRegular,
                    ..
                })
            ));
        }
    }

    #[test]
    fn files_are_private_and_appended() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sub = dir.path().join("a/b");
        create_dir_all(&sub).expect("created");
        let mode = std::fs::metadata(&sub)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = sub.join("log");
        open_append(&path)
            .expect("opened")
            .write_all(b"1\n")
            .expect("written");
        open_append(&path)
            .expect("opened")
            .write_all(b"2\n")
            .expect("written");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut text = String::new();
        open_read(&path)
            .expect("opened")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "1\n2\n");
        assert_eq!(
            create_new(&path).unwrap_err().io_kind(),
            Some(std::io::ErrorKind::AlreadyExists)
        );
    }

    #[test]
    fn directories_others_can_write_are_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("a dir");
        for mode in [0o777, 0o770, 0o1777] {
            if mode == 0o1777 && euid() == 0 {
                continue; // root-owned and sticky: accepted, see below
            }
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            let e = open_append(&shared.join("journal")).unwrap_err();
            assert!(
                matches!(
                    e,
                    SafeFsError::UnsafeDirectory {
                        problem: DirProblem::WritableByOthers { .. },
                        ..
                    }
                ),
                "{mode:o}: {e}"
            );
            assert!(!shared.join("journal").exists());
        }
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = open_rw(&shared.join("l")).unwrap_err();
        insta::assert_snapshot!(shown(&e, dir.path()), @"use the directory <dir>/shared: it is writable by other users (mode 0777)");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(open_append(&shared.join("journal")).is_ok());
        // A root-owned sticky directory (like /tmp) is accepted.
        let tmp = Path::new("/tmp");
        if std::fs::metadata(tmp).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o1000 != 0) {
            assert!(check_dir(tmp).is_ok());
        }
    }
}
