//! zsnap runs `zfs` by the absolute path `[paths] zfs` names, never through `PATH`.

use std::path::Path;
use std::process::{Command, Output};

fn fake_zfs(dir: &Path, log: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("zfs");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit 1\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn zsnap(dir: &Path, config: &str) -> Output {
    std::fs::write(dir.join("zsnap.toml"), config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .env("PATH", dir.join("bin"))
        .arg("--config")
        .arg(dir.join("zsnap.toml"))
        .args(["--backend", "local", "plan", "snapshot"])
        .output()
        .unwrap()
}

const BODY: &str = "[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 5\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n";

#[test]
fn zfs_is_run_by_its_configured_path_never_from_path() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let from_path = dir.path().join("from-path.log");
    fake_zfs(&bin, &from_path);
    let configured = dir.path().join("configured");
    std::fs::create_dir(&configured).unwrap();
    let from_config = dir.path().join("from-config.log");
    fake_zfs(&configured, &from_config);

    // A `zfs` first in PATH is never run.
    let o = zsnap(dir.path(), BODY);
    assert!(!o.status.success());
    assert!(!from_path.exists(), "zfs was looked up in PATH");

    // The configured one is.
    let config = format!(
        "[paths]\nzfs = \"{}\"\n\n{BODY}",
        configured.join("zfs").display()
    );
    let o = zsnap(dir.path(), &config);
    assert!(!o.status.success(), "the fake zfs fails");
    let log = std::fs::read_to_string(&from_config).expect("the configured zfs ran");
    assert!(log.starts_with("list -H -p"), "{log}");
    assert!(!from_path.exists());
}
