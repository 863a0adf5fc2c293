//! A kernel lock that makes two runs over the same datasets impossible at once.
//!
//! The lock is `flock(2)` on a file ([`std::fs::File::try_lock`]): the kernel releases
//! it when its holder exits, however it exits (`kill -9`, a crash, a power cut), so a
//! dead holder never blocks a later run and there is no stale lock to break. The file
//! itself stays (it is never removed: removing a locked file races with a process that
//! just opened it); after locking, the holder writes its pid into it so a refused run can
//! say who holds it. That pid is information only: an empty or garbled file is a free
//! lock, not an error.
//!
//! The file is opened through [`crate::safe_fs`]: never through a link, only in a
//! directory others cannot write, and its content is never echoed beyond a pid.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::safe_fs::{self, SafeFsError};

/// Taking the lock failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another live process holds it.
    #[error("take the lock {path}: held by {}", holder(*pid))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder, when it has already written its pid.
        pid: Option<u32>,
    },
    /// The file is not safe to use (a link, in a directory others can write, …) or
    /// cannot be opened.
    #[error("take the lock")]
    Open(#[source] SafeFsError),
    /// The file could not be locked or written.
    #[error("take the lock {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_owned(),
    }
}

/// A held lock; dropping it releases it (the file stays).
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: File,
}

/// The pid a lock file names, if it names one. Reads at most a few bytes: the file is
/// never quoted.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut buf = [0u8; 24];
    file.rewind().ok()?;
    let n = file.read(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

impl Lock {
    /// Takes the lock at `path`, creating the file (`0600`) if needed. Never waits.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process (or another [`Lock`] of this one) holds
    /// it; [`LockError::Open`] when the path is a link, not a plain file, or in a
    /// directory others can write; [`LockError::Io`] when locking fails otherwise.
    ///
    /// # Example
    /// ```
    /// use zsnap_exec::lock::{Lock, LockError};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("zsnap.lock");
    /// let held = Lock::acquire(&path).unwrap();
    /// assert!(matches!(Lock::acquire(&path), Err(LockError::Held { pid, .. }) if pid == Some(std::process::id())));
    /// drop(held);
    /// assert!(Lock::acquire(&path).is_ok());
    /// ```
    pub fn acquire(path: &Path) -> Result<Lock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = safe_fs::open_rw(path).map_err(LockError::Open)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    path: path.to_owned(),
                    pid: read_pid(&mut file),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io)?;
        Ok(Lock {
            path: path.to_owned(),
            file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still holding it: clear the pid so nobody reads a finished run as the holder.
        // Closing the file (right after) releases the lock.
        let _ = self.file.set_len(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The environment variable telling [`child_holds_the_lock`] which file to lock.
    const HOLD_ENV: &str = "ZSNAP_LOCK_TEST_HOLD";

    /// Not a test by itself: run in a child process by the tests below, it takes the
    /// lock named by `HOLD_ENV` and holds it until killed.
    #[test]
    #[ignore = "a helper run in a child process"]
    fn child_holds_the_lock() {
        let Some(path) = std::env::var_os(HOLD_ENV) else {
            return;
        };
        let _lock = Lock::acquire(Path::new(&path)).expect("the lock is free for the child");
        std::thread::sleep(std::time::Duration::from_secs(300));
    }

    /// [`Lock::acquire`] right after this process dropped its lock on `path`, retried
    /// for a while: another test of this binary that starts a process at that moment
    /// forks a copy of the lock's descriptor, which holds the `flock` until the child's
    /// exec closes it (the lock's own semantics, not a fault of it).
    fn acquire_after_drop(path: &Path) -> Result<Lock, LockError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Lock::acquire(path) {
                Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Starts a child process holding the lock at `path`, once it holds it.
    fn holding_child(path: &Path) -> std::process::Child {
        let exe = std::env::current_exe().expect("the test binary");
        let child = std::process::Command::new(exe)
            .args([
                "lock::tests::child_holds_the_lock",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env(HOLD_ENV, path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the test binary runs");
        let want = child.id().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read_to_string(path).unwrap_or_default().trim() != want {
            assert!(
                std::time::Instant::now() < deadline,
                "the child never took the lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    #[test]
    fn a_live_holder_blocks_and_a_killed_one_does_not() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("zsnap.lock");
        let mut child = holding_child(&path);
        let err = Lock::acquire(&path).unwrap_err();
        assert!(
            matches!(err, LockError::Held { pid: Some(p), .. } if p == child.id()),
            "{err}"
        );
        let shown = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>")
            .replace(&child.id().to_string(), "<pid>");
        insta::assert_snapshot!(shown, @"take the lock <dir>/zsnap.lock: held by process <pid>");
        // kill -9: nothing runs in the child to clean up, the kernel releases the lock.
        child.kill().expect("killed");
        child.wait().expect("reaped");
        let lock = Lock::acquire(&path).expect("a dead holder never blocks");
        assert_eq!(
            std::fs::read_to_string(lock.path()).expect("readable"),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn second_acquire_names_the_holder_and_the_file_stays() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let lock = Lock::acquire(&path).expect("free");
        assert!(matches!(
            Lock::acquire(&path),
            Err(LockError::Held { pid: Some(p), .. }) if p == std::process::id()
        ));
        drop(lock);
        assert!(path.exists(), "the file is never removed");
        assert!(acquire_after_drop(&path).is_ok());
    }

    #[test]
    fn garbage_or_empty_files_are_free_locks_and_never_echoed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        for content in ["", "not a pid", "root:$6$secret-hash:19000:0:99999:7:::\n"] {
            std::fs::write(&path, content).expect("writable");
            let lock = acquire_after_drop(&path).expect("an unlocked file is a free lock");
            // Held, with a file whose content is not a pid: no pid, nothing quoted.
            std::fs::write(&path, content).expect("writable");
            let err = Lock::acquire(&path).unwrap_err();
            assert!(matches!(err, LockError::Held { pid: None, .. }), "{err}");
            assert!(!err.to_string().contains("hash"), "{err}");
            drop(lock);
        }
    }

    #[test]
    fn a_link_is_refused_without_reading_its_target() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("shadow");
        std::fs::write(&secret, "root:$6$secret-hash").expect("writable");
        let path = dir.path().join("zsnap.lock");
        std::os::unix::fs::symlink(&secret, &path).expect("a link");
        let err = Lock::acquire(&path).unwrap_err();
        let chain = crate::failure::error_chain(&err);
        assert!(!chain.contains("hash"), "{chain}");
        assert!(chain.contains("symbolic link"), "{chain}");
        assert_eq!(
            std::fs::read_to_string(&secret).expect("kept"),
            "root:$6$secret-hash"
        );
    }

    #[test]
    fn racing_acquirers_only_ever_see_held() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("l");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut taken = 0;
                    for _ in 0..25 {
                        match Lock::acquire(&path) {
                            Ok(lock) => {
                                taken += 1;
                                drop(lock);
                            }
                            Err(LockError::Held { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    taken
                })
            })
            .collect();
        let taken: usize = threads
            .into_iter()
            .map(|t| t.join().expect("no panic"))
            .sum();
        assert!(taken > 0);
    }
}
