//! The harness the CLI's tests share: a temporary directory holding a config and the
//! fake backend's state file, and the `zsnap` binary run against both.
#![allow(
    dead_code,
    reason = "each test binary uses the part of the harness it needs"
)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A directory with `zsnap.toml`; the fake pool lives in `state.json` beside it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A directory with this config.
    pub fn new(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zsnap.toml"), config).unwrap();
        Env { dir }
    }

    /// A file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The fake backend's state file.
    pub fn state(&self) -> PathBuf {
        self.path("state.json")
    }

    /// `zsnap --config … --backend fake:… ARGS`.
    pub fn zsnap(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_zsnap"))
            .arg("--config")
            .arg(self.path("zsnap.toml"))
            .arg("--backend")
            .arg(format!("fake:{}", self.state().display()))
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and asserts the exit status; returns stdout.
    pub fn status(&self, args: &[&str], code: i32) -> String {
        let o = self.zsnap(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "zsnap {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.status(args, 0)
    }
}
