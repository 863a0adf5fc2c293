//! The contract suite's bed on real OpenZFS, over ssh to the testbed guest.
//!
//! Needs `ZSNAP_TESTBED_SSH_CONFIG` (an ssh_config) and `ZSNAP_TESTBED_HOST` (its host
//! alias); the guest has pools `src` and `dst`. Without them each test prints why it is
//! skipped, except under `CI=true`, where it fails: CI always has the testbed.
#![allow(dead_code, reason = "each test file uses a different part of the bed")]
#![expect(clippy::print_stderr, reason = "skipped tests say so")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use zsnap_core::{DatasetName, SnapshotName};
use zsnap_exec::cli::{CliZfs, SshTarget};
use zsnap_exec::fake::Fault;
use zsnap_exec::quote::quote;
use zsnap_exec::ZfsBackend;

use super::TestBed;

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Where the guest keeps the contract suite's key (hex, 32 bytes) and markers.
const KEY: &str = "/tmp/zsnap-contract.key";

pub struct RealBed {
    zfs: CliZfs,
    config: PathBuf,
    host: String,
    src: DatasetName,
    dst: DatasetName,
    markers: u64,
}

impl RealBed {
    pub fn boxed(test: &str) -> Option<Box<dyn TestBed>> {
        let (Some(config), Some(host)) = (
            std::env::var_os("ZSNAP_TESTBED_SSH_CONFIG"),
            std::env::var("ZSNAP_TESTBED_HOST").ok(),
        ) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but ZSNAP_TESTBED_SSH_CONFIG/ZSNAP_TESTBED_HOST are not set: the real-OpenZFS testbed did not start"
            );
            super::skip::skipped(
                test,
                "set ZSNAP_TESTBED_SSH_CONFIG and ZSNAP_TESTBED_HOST (see testbed/) to run this test on real OpenZFS",
            );
            return None;
        };
        let config = PathBuf::from(config);
        let mut target = SshTarget::new(&host).expect("a usable host alias");
        target.config_file = Some(config.clone());
        let zfs = CliZfs::ssh(target).expect("a control dir");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("ct-{test}-{}-{n}", std::process::id());
        let bed = RealBed {
            zfs,
            config,
            host,
            src: format!("src/{id}").parse().expect("valid"),
            dst: format!("dst/{id}").parse().expect("valid"),
            markers: 0,
        };
        let (src, dst) = (bed.src.to_string(), bed.dst.to_string());
        bed.sh(&[
            "sh",
            "-c",
            &format!("test -f {KEY} || od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > {KEY}"),
        ]);
        bed.sh(&["zfs", "create", &src]);
        bed.sh(&["zfs", "create", &dst]);
        Some(Box::new(bed))
    }

    /// Runs a command on the guest; returns whether it succeeded.
    pub fn try_sh(&self, argv: &[&str]) -> bool {
        let mut remote = String::from("LC_ALL=C");
        for w in argv {
            remote.push(' ');
            remote.push_str(&quote(w));
        }
        // The guest's dropbear now and then closes a new session without running it or
        // sending an exit status (ssh exits 255 and says nothing, mkj/dropbear#173):
        // such a session ran nothing, so it is tried again.
        for attempt in 1..=3 {
            let out = std::process::Command::new("ssh")
                .args(["-o", "BatchMode=yes", "-F"])
                .arg(&self.config)
                .args(["--", &self.host, &remote])
                .output()
                .expect("ssh runs");
            if out.status.code() == Some(255) && out.stderr.is_empty() && attempt < 3 {
                eprintln!("{remote}: the session closed without an exit status; again");
                continue;
            }
            if !out.status.success() {
                eprintln!(
                    "{remote}: exited {:?}: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            return out.status.success();
        }
        false
    }

    pub fn sh(&self, argv: &[&str]) {
        assert!(self.try_sh(argv), "{argv:?} failed on the guest");
    }
}

impl Drop for RealBed {
    fn drop(&mut self) {
        // Release every hold below the roots, then destroy them.
        for root in [&self.src, &self.dst] {
            let script = format!(
                "zfs list -H -o name -t snapshot -r {r} | while IFS= read -r s; do zfs holds -H \"$s\" | cut -f2 | while IFS= read -r t; do zfs release -- \"$t\" \"$s\"; done; done; zfs destroy -r {r}",
                r = quote(root.as_str())
            );
            let _ = self.try_sh(&["sh", "-c", &script]);
        }
    }
}

impl TestBed for RealBed {
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
        let name = name.to_string();
        let keylocation = format!("keylocation=file://{KEY}");
        if encrypted {
            self.sh(&[
                "zfs",
                "create",
                "-o",
                "encryption=on",
                "-o",
                "keyformat=hex",
                "-o",
                &keylocation,
                &name,
            ]);
        } else {
            self.sh(&["zfs", "create", &name]);
        }
    }
    fn unload_key(&mut self, name: &DatasetName) {
        let name = name.to_string();
        self.sh(&["zfs", "unmount", &name]);
        self.sh(&["zfs", "unload-key", &name]);
    }
    fn clone_snapshot(&mut self, snapshot: &SnapshotName, name: &DatasetName) {
        self.sh(&["zfs", "clone", &snapshot.to_string(), &name.to_string()]);
    }
    fn write(&mut self, name: &DatasetName) {
        self.markers += 1;
        let script = format!(
            "mp=$(zfs get -H -o value mountpoint {n}) && dd if=/dev/urandom of=\"$mp/data-{m}\" bs=64k count=8 2>/dev/null",
            n = quote(name.as_str()),
            m = self.markers
        );
        self.sh(&["sh", "-c", &script]);
    }
    fn inject(&mut self, _fault: Fault) -> bool {
        false
    }
    fn path_exists(&mut self, path: &str) -> bool {
        self.try_sh(&["test", "-e", path])
    }
    fn marker_path(&mut self) -> String {
        self.markers += 1;
        format!(
            "/tmp/zsnap-contract-marker-{}-{}",
            std::process::id(),
            self.markers
        )
    }
}
