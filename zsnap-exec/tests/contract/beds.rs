//! Test beds for the contract suite on the fake and on the `zfs` shim.
#![allow(dead_code, reason = "each test file uses a different bed")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone, Utc};
use zsnap_core::{DatasetName, SnapshotName};
use zsnap_exec::cli::{CliZfs, SshTarget};
use zsnap_exec::fake::{FakeZfs, Fault};
use zsnap_exec::ZfsBackend;

use super::TestBed;

#[path = "../zfs-shim/state_lock.rs"]
mod state_lock;

static COUNTER: AtomicU64 = AtomicU64::new(1);

fn roots(test: &str) -> (DatasetName, DatasetName) {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = format!("ct-{test}-{}-{n}", std::process::id());
    (
        format!("src/{id}").parse().expect("valid"),
        format!("dst/{id}").parse().expect("valid"),
    )
}

fn new_fake() -> FakeZfs {
    let mut z = FakeZfs::new(
        42,
        Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
            .single()
            .expect("valid"),
    );
    z.set_stream_bytes(16 * 1024);
    z.add_pool("src").expect("new pool");
    z.add_pool("dst").expect("new pool");
    z
}

/// The fake, in memory.
pub struct FakeBed {
    zfs: FakeZfs,
    src: DatasetName,
    dst: DatasetName,
    dir: tempfile::TempDir,
}

impl FakeBed {
    pub fn boxed(test: &str) -> Option<Box<dyn TestBed>> {
        let mut zfs = new_fake();
        let (src, dst) = roots(test);
        zfs.create(&src, false).expect("created");
        zfs.create(&dst, false).expect("created");
        Some(Box::new(FakeBed {
            zfs,
            src,
            dst,
            dir: tempfile::tempdir().expect("a temp dir"),
        }))
    }
}

impl TestBed for FakeBed {
    fn backend(&mut self) -> &mut dyn ZfsBackend {
        &mut self.zfs
    }
    fn src(&self) -> DatasetName {
        self.src.clone()
    }
    fn dst(&self) -> DatasetName {
        self.dst.clone()
    }
    fn create(&mut self, name: &DatasetName, encrypted: bool) {
        self.zfs.create(name, encrypted).expect("created");
    }
    fn unload_key(&mut self, name: &DatasetName) {
        self.zfs.set_key_loaded(name, false).expect("unloaded");
    }
    fn clone_snapshot(&mut self, snapshot: &SnapshotName, name: &DatasetName) {
        self.zfs.clone_snapshot(snapshot, name).expect("cloned");
    }
    fn write(&mut self, name: &DatasetName) {
        self.zfs.write(name).expect("written");
    }
    fn inject(&mut self, fault: Fault) -> bool {
        self.zfs.clear_faults();
        let op = fault.op;
        let mut fault = fault;
        fault.nth += self.zfs.calls(op);
        self.zfs.inject(fault);
        true
    }
    fn path_exists(&mut self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
    fn marker_path(&mut self) -> String {
        self.dir.path().join("marker").display().to_string()
    }
}

/// The `zfs` shim built with this package.
pub fn shim_program() -> String {
    env!("CARGO_BIN_EXE_zsnap-zfs-shim").to_owned()
}

/// A stand-in for ssh: skips the options up to `--`, drops the host, and hands the rest
/// to `sh -c` joined by spaces, exactly as sshd hands a command to the login shell.
const FAKE_SSH: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -O) exit 0 ;;
    -o|-F|-i|-p|-l) shift 2 ;;
    *) shift ;;
  esac
done
shift
exec sh -c "$*"
"#;

/// The CLI backend on the shim, locally or through the stand-in ssh.
pub struct ShimBed {
    zfs: CliZfs,
    state: PathBuf,
    src: DatasetName,
    dst: DatasetName,
    dir: tempfile::TempDir,
}

impl ShimBed {
    fn build(test: &str, over_ssh: bool) -> ShimBed {
        let dir = tempfile::tempdir().expect("a temp dir");
        let state = dir.path().join("state.json");
        let mut fake = new_fake();
        let (src, dst) = roots(test);
        fake.create(&src, false).expect("created");
        fake.create(&dst, false).expect("created");
        fake.save(&state).expect("saved");
        let zfs = if over_ssh {
            let ssh = dir.path().join("ssh");
            std::fs::write(&ssh, FAKE_SSH).expect("written");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            CliZfs::ssh(SshTarget::new("testhost").expect("valid"))
                .expect("a control dir")
                .with_ssh_program(ssh.display().to_string())
        } else {
            CliZfs::local()
        };
        // The shim answers as `zpool` when run under that name.
        let zpool = dir.path().join("zpool");
        std::os::unix::fs::symlink(shim_program(), &zpool).expect("symlinked");
        let zfs = zfs
            .with_zfs_program(shim_program())
            .with_zpool_program(zpool.display().to_string())
            .with_env("ZSNAP_SHIM_STATE", state.display().to_string())
            .with_env(
                "ZSNAP_SHIM_LOG",
                dir.path().join("log.jsonl").display().to_string(),
            )
            .with_env(
                "ZSNAP_SHIM_SCRIPT",
                dir.path().join("script.json").display().to_string(),
            );
        ShimBed {
            zfs,
            state,
            src,
            dst,
            dir,
        }
    }

    pub fn local(test: &str) -> Option<Box<dyn TestBed>> {
        Some(Box::new(Self::build(test, false)))
    }

    pub fn over_ssh(test: &str) -> Option<Box<dyn TestBed>> {
        Some(Box::new(Self::build(test, true)))
    }

    /// The bed itself, not boxed (for tests of the CLI backend beyond the contract).
    pub fn unboxed(test: &str, over_ssh: bool) -> ShimBed {
        Self::build(test, over_ssh)
    }

    /// Reconfigures the CLI backend.
    pub fn map_cli(&mut self, f: impl FnOnce(CliZfs) -> CliZfs) {
        let zfs = std::mem::replace(&mut self.zfs, CliZfs::local());
        self.zfs = f(zfs);
    }

    /// Scripted answers of the shim (see the shim's docs): a JSON array of rules.
    pub fn script(&self, rules: serde_json::Value) {
        let _lock = state_lock::StateLock::take(&self.state);
        std::fs::write(self.dir.path().join("script.json"), rules.to_string()).expect("written");
    }

    /// Edits the state file under the shim's lock.
    pub fn edit<T>(&mut self, f: impl FnOnce(&mut FakeZfs) -> T) -> T {
        let _lock = state_lock::StateLock::take(&self.state);
        let mut z = FakeZfs::load(&self.state).expect("loaded");
        let out = f(&mut z);
        z.save(&self.state).expect("saved");
        out
    }

    /// Every invocation of the shim so far: (argv, LC_ALL).
    pub fn log(&self) -> Vec<(Vec<String>, Option<String>)> {
        let text = std::fs::read_to_string(self.dir.path().join("log.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a log line");
                let argv = v["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("a string").to_owned())
                    .collect();
                (argv, v["lc_all"].as_str().map(str::to_owned))
            })
            .collect()
    }
}

impl TestBed for ShimBed {
    fn backend(&mut self) -> &mut dyn ZfsBackend {
        &mut self.zfs
    }
    fn src(&self) -> DatasetName {
        self.src.clone()
    }
    fn dst(&self) -> DatasetName {
        self.dst.clone()
    }
    fn create(&mut self, name: &DatasetName, encrypted: bool) {
        self.edit(|z| z.create(name, encrypted)).expect("created");
    }
    fn unload_key(&mut self, name: &DatasetName) {
        self.edit(|z| z.set_key_loaded(name, false))
            .expect("unloaded");
    }
    fn clone_snapshot(&mut self, snapshot: &SnapshotName, name: &DatasetName) {
        self.edit(|z| z.clone_snapshot(snapshot, name))
            .expect("cloned");
    }
    fn write(&mut self, name: &DatasetName) {
        self.edit(|z| z.write(name)).expect("written");
    }
    fn inject(&mut self, fault: Fault) -> bool {
        self.edit(|z| {
            z.clear_faults();
            let mut fault = fault;
            fault.nth += z.calls(fault.op);
            z.inject(fault);
        });
        true
    }
    fn path_exists(&mut self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
    fn marker_path(&mut self) -> String {
        self.dir.path().join("marker").display().to_string()
    }
}
