//! Exclusive access to the shim's state file, shared by the shim and the tests that
//! edit the state between commands (a `STATE.lock` file created with `O_EXCL`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while the state file is read and written.
pub struct StateLock {
    path: PathBuf,
}

impl StateLock {
    /// Waits (up to 30 s) for the lock of `state`.
    pub fn take(state: &Path) -> StateLock {
        let mut path = state.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return StateLock { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    assert!(
                        Instant::now() < deadline,
                        "the shim state lock {} stayed taken for 30 s",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
