//! A lock file that makes two runs over the same datasets impossible at once.
//!
//! The file is created with `O_EXCL` and holds the holder's pid (and, on Linux, the
//! process's start time, so a reused pid is not mistaken for the holder). A second
//! [`Lock::acquire`] fails naming the holder. A lock whose holder is gone is *stale*: it
//! is reported as [`LockError::Stale`], never taken over silently; the operator (or a
//! caller that decided so) breaks it with [`Lock::acquire_breaking_stale`].
//!
//! Breaking is not atomic: between reading the stale file and removing it, another
//! process could break it too and take the lock. The file is therefore removed only if
//! it still has the stale content, and the new lock is created with `O_EXCL`, so at most
//! one of two breakers wins; the window left is that of two operators breaking the same
//! stale lock at the same instant.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Taking the lock failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another live process holds it.
    #[error("take the lock {path}: held by process {pid}")]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder.
        pid: u32,
    },
    /// The process that took it is gone.
    #[error("take the lock {path}: stale lock of process {pid}, which is no longer running (break it explicitly to go on)")]
    Stale {
        /// The lock file.
        path: PathBuf,
        /// The former holder.
        pid: u32,
    },
    /// The file does not say who holds it.
    #[error("take the lock {path}: unreadable lock file content {content:?}")]
    Unreadable {
        /// The lock file.
        path: PathBuf,
        /// What it holds (up to 256 bytes).
        content: String,
    },
    /// The file could not be created, read or written.
    #[error("take the lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; dropping it removes the file.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    content: String,
}

/// Who a lock file names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    start: Option<u64>,
}

impl Holder {
    fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start: start_time(pid),
        }
    }

    fn render(&self) -> String {
        match self.start {
            Some(s) => format!("{} {s}\n", self.pid),
            None => format!("{}\n", self.pid),
        }
    }

    fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let start = match words.next() {
            Some(w) => Some(w.parse().ok()?),
            None => None,
        };
        if words.next().is_some() {
            return None;
        }
        Some(Holder { pid, start })
    }

    /// Whether the named process still runs.
    fn alive(&self) -> bool {
        if Path::new("/proc/self").exists() {
            if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                return false;
            }
            // Same pid, different start time: the pid was reused.
            return match (self.start, start_time(self.pid)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
        }
        // Without /proc, ask the kernel; a failure for lack of permission still means
        // the process exists, so only a clear "no such process" counts as gone.
        match std::process::Command::new("kill")
            .args(["-0", &self.pid.to_string()])
            .stderr(std::process::Stdio::piped())
            .output()
        {
            Ok(out) => {
                out.status.success()
                    || !String::from_utf8_lossy(&out.stderr).contains("No such process")
            }
            Err(_) => true,
        }
    }
}

/// The start time of a process in clock ticks since boot (Linux `/proc/PID/stat`
/// field 22), when known.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

impl Lock {
    /// Takes the lock at `path`.
    ///
    /// # Errors
    /// [`LockError::Held`] when a live process holds it, [`LockError::Stale`] when its
    /// holder is gone, and the others when the file cannot be used.
    ///
    /// # Example
    /// ```
    /// use zsnap_exec::lock::{Lock, LockError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("zsnap.lock");
    /// let held = Lock::acquire(&path).unwrap();
    /// assert!(matches!(Lock::acquire(&path), Err(LockError::Held { pid, .. }) if pid == std::process::id()));
    /// drop(held);
    /// assert!(Lock::acquire(&path).is_ok());
    /// ```
    pub fn acquire(path: &Path) -> Result<Lock, LockError> {
        Self::take(path, false)
    }

    /// Takes the lock at `path`, first removing it if its holder is gone.
    ///
    /// # Errors
    /// As [`Lock::acquire`], except that a stale lock is broken.
    pub fn acquire_breaking_stale(path: &Path) -> Result<Lock, LockError> {
        Self::take(path, true)
    }

    fn take(path: &Path, break_stale: bool) -> Result<Lock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let content = Holder::me().render();
        // Two attempts: the second after breaking a stale lock (or after the holder
        // released it between our create and our read).
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(content.as_bytes()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok(Lock {
                        path: path.to_owned(),
                        content,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
            let existing = match std::fs::read_to_string(path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            let Some(holder) = Holder::parse(&existing) else {
                return Err(LockError::Unreadable {
                    path: path.to_owned(),
                    content: existing.chars().take(256).collect(),
                });
            };
            if holder.alive() {
                return Err(LockError::Held {
                    path: path.to_owned(),
                    pid: holder.pid,
                });
            }
            if !break_stale {
                return Err(LockError::Stale {
                    path: path.to_owned(),
                    pid: holder.pid,
                });
            }
            // Remove only what we judged stale.
            if std::fs::read_to_string(path).ok().as_deref() == Some(existing.as_str()) {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
        }
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        match Holder::parse(&existing) {
            Some(h) => Err(LockError::Held {
                path: path.to_owned(),
                pid: h.pid,
            }),
            None => Err(LockError::Unreadable {
                path: path.to_owned(),
                content: existing.chars().take(256).collect(),
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Only remove the file if it is still ours (it may have been broken as stale
        // by an operator and re-taken).
        if std::fs::read_to_string(&self.path).ok().as_deref() == Some(self.content.as_str()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that is certainly not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let pid = child.id();
        child.wait().expect("reaped");
        pid
    }

    #[test]
    fn second_acquire_names_the_holder() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let lock = Lock::acquire(&path).expect("free");
        let err = Lock::acquire(&path).unwrap_err();
        assert!(matches!(err, LockError::Held { pid, .. } if pid == std::process::id()));
        let shown = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>");
        insta::assert_snapshot!(shown.replace(&std::process::id().to_string(), "<pid>"), @"take the lock <dir>/l: held by process <pid>");
        // Breaking only breaks stale locks.
        assert!(matches!(
            Lock::acquire_breaking_stale(&path),
            Err(LockError::Held { .. })
        ));
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn stale_locks_are_reported_then_broken_on_request() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let pid = dead_pid();
        std::fs::write(&path, format!("{pid}\n")).expect("writable");
        let err = Lock::acquire(&path).unwrap_err();
        assert!(
            matches!(err, LockError::Stale { pid: p, .. } if p == pid),
            "{err}"
        );
        assert!(
            path.exists(),
            "a stale lock is not removed by a plain acquire"
        );
        let shown = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>")
            .replace(&pid.to_string(), "<pid>");
        insta::assert_snapshot!(shown, @"take the lock <dir>/l: stale lock of process <pid>, which is no longer running (break it explicitly to go on)");
        let lock = Lock::acquire_breaking_stale(&path).expect("broken");
        let content = std::fs::read_to_string(lock.path()).expect("readable");
        assert!(
            content.starts_with(&format!("{} ", std::process::id())),
            "{content}"
        );
    }

    #[test]
    fn reused_pid_with_another_start_time_is_stale() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let me = Holder::me();
        let Some(start) = me.start else {
            return; // no /proc here
        };
        std::fs::write(&path, format!("{} {}\n", me.pid, start + 1)).expect("writable");
        assert!(matches!(Lock::acquire(&path), Err(LockError::Stale { .. })));
    }

    #[test]
    fn garbage_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        std::fs::write(&path, "not a pid").expect("writable");
        for r in [Lock::acquire(&path), Lock::acquire_breaking_stale(&path)] {
            assert!(matches!(r, Err(LockError::Unreadable { .. })));
        }
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "not a pid");
    }

    #[test]
    fn drop_leaves_a_lock_that_is_no_longer_ours() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let lock = Lock::acquire(&path).expect("free");
        std::fs::write(&path, "1\n").expect("writable");
        drop(lock);
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "1\n");
    }
}
