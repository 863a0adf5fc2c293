//! `[paths]` names the programs zsnap runs by absolute path: nothing is looked up in
//! `PATH` (zsnap runs as root).
use zsnap_core::config::Config;

const BASE: &str =
    "\n[policies.p]\nkeep_last = 5\n\n[[datasets]]\nroot = \"tank\"\npolicy = \"p\"\n";

#[test]
fn programs_default_to_absolute_paths_and_can_be_set() {
    let c = Config::from_toml(BASE, "zsnap.toml").unwrap();
    assert_eq!(c.paths.zfs, "/usr/sbin/zfs");
    assert_eq!(c.paths.remote_zfs, "/usr/sbin/zfs");
    assert_eq!(c.paths.ssh, "/usr/bin/ssh");
    let c = Config::from_toml(
        &format!("[paths]\nzfs = \"/sbin/zfs\"\nremote_zfs = \"/usr/local/sbin/zfs\"\nssh = \"/opt/bin/ssh\"\n{BASE}"),
        "zsnap.toml",
    )
    .unwrap();
    assert_eq!(
        [c.paths.zfs.as_str(), &c.paths.remote_zfs, &c.paths.ssh],
        ["/sbin/zfs", "/usr/local/sbin/zfs", "/opt/bin/ssh"]
    );
}

#[test]
fn a_program_looked_up_in_path_is_a_config_error() {
    let err = |text: &str| match Config::from_toml(&format!("{text}{BASE}"), "zsnap.toml") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.snippet(),
    };
    insta::assert_snapshot!(err("[paths]\nzfs = \"zfs\"\n"), @r#"
        error: invalid `paths.zfs`: the program must be an absolute path (zsnap never looks programs up in PATH), as in "/usr/sbin/zfs"
         --> zsnap.toml:2:7
          |
        2 | zfs = "zfs"
          |       ^^^^^
        "#);
    let ssh = err("[paths]\nssh = \"bin/ssh\"\n");
    assert!(ssh.contains("as in \"/usr/bin/ssh\""), "{ssh}");
    assert!(ssh.contains("zsnap.toml:2:7"), "{ssh}");
    assert!(err("[paths]\nremote_zfs = \"zfs\"\n").contains("`paths.remote_zfs`"));
}
