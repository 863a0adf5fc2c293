//! The fake backend's state file keeps each change as it happens, like a pool: a command
//! that fails or a zsnap that is killed leaves the state real ZFS would show.

use std::path::PathBuf;
use std::process::{Command, Output};

use chrono::{TimeDelta, TimeZone, Utc};
use zsnap_exec::fake::FakeZfs;

const CONFIG: &str = r#"
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly" }
keep_counts = { hourly = 2 }

[[datasets]]
root = "tank/a"
policy = "standard"

[[datasets]]
root = "tank/b"
policy = "standard"
"#;

const REPLICATED: &str = r#"
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly" }
keep_counts = { hourly = 6 }

[[datasets]]
root = "tank/home"
policy = "standard"

[targets.backup]
to = "backup/home"
policy = "standard"
"#;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env::with(CONFIG)
    }

    fn with(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zsnap.toml"), config).unwrap();
        Env { dir }
    }

    /// Snapshots of `dataset` carrying the hold `tag`.
    fn held(&self, dataset: &str, tag: &str) -> Vec<String> {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state()).unwrap()).unwrap();
        state["datasets"][dataset]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| {
                s["holds"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|t| t == tag))
            })
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zsnap"));
        cmd.arg("--config")
            .arg(self.dir.path().join("zsnap.toml"))
            .arg("--backend")
            .arg(format!("fake:{}", self.state().display()))
            .args(args);
        cmd
    }

    fn zsnap(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Snapshot names of `dataset` in the saved state.
    fn snapshots(&self, dataset: &str) -> Vec<String> {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state()).unwrap()).unwrap();
        state["datasets"][dataset]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Adds a fault to the saved state, on the `nth` call of `op` from now.
    fn inject(&self, op: &str, nth: u64, effect: &str) {
        let mut state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.state()).unwrap()).unwrap();
        let done = state["calls"][op].as_u64().unwrap_or(0);
        let fault = serde_json::json!({
            "op": op, "nth": done + nth, "at_byte": null, "effect": effect, "after": false,
        });
        state["faults"].as_array_mut().unwrap().push(fault);
        std::fs::write(self.state(), serde_json::to_vec(&state).unwrap()).unwrap();
    }
}

fn at(hours: i64) -> String {
    (Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + TimeDelta::hours(hours)).to_rfc3339()
}

#[test]
fn a_crash_between_two_destroys_keeps_the_first() {
    let env = Env::new();
    for h in 0..4 {
        let o = env.zsnap(&["snapshot", "--now", &at(h)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(env.snapshots("tank/a").len(), 4);
    assert_eq!(env.snapshots("tank/b").len(), 4);
    // The prune destroys two snapshots of each dataset, one `zfs destroy` per dataset;
    // zsnap dies (as with kill -9) just before the second.
    env.inject("destroy", 2, "crash");
    let o = env.zsnap(&["prune", "--now", &at(3)]);
    assert_eq!(o.status.code(), None, "killed by a signal");
    let mut counts = [env.snapshots("tank/a").len(), env.snapshots("tank/b").len()];
    counts.sort_unstable();
    assert_eq!(
        counts,
        [2, 4],
        "the destroy done before the crash is in the state"
    );
    assert!(FakeZfs::load(&env.state()).is_ok());
    // The next prune finishes the job.
    let o = env.zsnap(&["prune", "--now", &at(3)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.snapshots("tank/a").len(), 2);
    assert_eq!(env.snapshots("tank/b").len(), 2);
}

#[test]
fn a_failed_run_keeps_what_it_did() {
    let env = Env::new();
    for h in 0..3 {
        assert!(env.zsnap(&["run", "--now", &at(h)]).status.success());
    }
    // The run's snapshot succeeds, its first destroy fails (permission denied): the
    // snapshot is in the state even though the run failed.
    env.inject("destroy", 1, "permission_denied");
    let o = env.zsnap(&["run", "--now", &at(3)]);
    assert!(!o.status.success());
    assert!(env
        .snapshots("tank/a")
        .iter()
        .any(|n| n.contains("20261123T030000Z")));
}

#[test]
fn kill_9_at_any_moment_leaves_a_parseable_state() {
    let env = Env::new();
    assert!(env.zsnap(&["run", "--now", &at(0)]).status.success());
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40].into_iter().enumerate() {
        let hour = at(1 + i as i64);
        let mut child = env.command(&["run", "--now", &hour]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        FakeZfs::load(&env.state()).expect("the state is whole after kill -9");
    }
    // And the next run converges.
    let o = env.zsnap(&["run", "--now", &at(10)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.snapshots("tank/a").len(), 2);
}

#[test]
fn a_cursor_hold_whose_release_failed_is_released_by_the_next_run() {
    let env = Env::with(REPLICATED);
    let o = env.zsnap(&["run", "--now", &at(0)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(env.held("tank/home", "zsnap:backup").len(), 1);
    // The next run moves the cursor; releasing the old one fails.
    env.inject("release", 1, "permission_denied");
    let o = env.zsnap(&["run", "--now", &at(1)]);
    assert!(!o.status.success(), "the failed release is reported");
    assert_eq!(
        env.held("tank/home", "zsnap:backup").len(),
        2,
        "the old cursor kept its hold"
    );
    // The run after releases every cursor hold but the current one.
    let o = env.zsnap(&["run", "--now", &at(2)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let held = env.held("tank/home", "zsnap:backup");
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].contains("20261123T020000Z"), "{held:?}");
}
