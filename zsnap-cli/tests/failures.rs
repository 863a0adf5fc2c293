//! How `zsnap` fails, on the fake backend: a location that cannot be listed stops only
//! its own phases; exit statuses follow the README's table; `--json` errors are one
//! JSON object; `zsnap check` sees the last run's outcome; every change is audited;
//! reasons name the right policy and side.

use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::Value;

/// Hourly snapshots keeping one; a target keeping dailies by the policy `archive`.
const CONFIG: &str = r#"
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly" }
keep_counts = { hourly = 1 }

[policies.archive]
keep = { daily = 1 }

[[datasets]]
root = "tank/home"
recursive = true
policy = "standard"

[targets.backup]
to = "backup/home"
policy = "archive"
"#;

mod common;
use common::Env;

/// What these tests add to the harness.
impl Env {
    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.status(&a, code);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Edits the fake's saved state.
    fn edit_state(&self, f: impl FnOnce(&mut Value)) {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(self.state()).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(self.state(), serde_json::to_string(&v).unwrap()).unwrap();
    }

    /// Exports the pool `pool` of the fake (its datasets vanish with it).
    fn export_pool(&self, pool: &str) {
        self.edit_state(|v| {
            v["pools"].as_object_mut().unwrap().remove(pool);
            v["datasets"]
                .as_object_mut()
                .unwrap()
                .retain(|k, _| k != pool && !k.starts_with(&format!("{pool}/")));
        });
    }

    /// Injects a fault on the `ahead`th next call of `op` (1 = the next one).
    fn fault(&self, op: &str, ahead: u64, effect: &str) {
        self.edit_state(|v| {
            let done = v["calls"][op].as_u64().unwrap_or(0);
            v["faults"].as_array_mut().unwrap().push(serde_json::json!({
                "op": op, "nth": done + ahead, "at_byte": null, "effect": effect, "after": false
            }));
        });
    }

    /// Every snapshot of `dataset` in the fake, by short name.
    fn snapshots(&self, dataset: &str) -> Vec<String> {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(self.state()).unwrap()).unwrap();
        v["datasets"][dataset]["snapshots"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn audit_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn journal_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.path("journal")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                for l in std::fs::read_to_string(&p).unwrap().lines() {
                    out.push(serde_json::from_str(l).unwrap());
                }
            }
        }
        out
    }
}

fn at(hours: i64) -> String {
    (Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + TimeDelta::hours(hours)).to_rfc3339()
}

fn at_min(minutes: i64) -> String {
    (Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + TimeDelta::minutes(minutes))
        .to_rfc3339()
}

fn phase<'a>(outcome: &'a Value, name: &str) -> &'a Value {
    outcome["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            let k = &p["phase"];
            let n = match k["kind"].as_str().unwrap() {
                "replicate" => format!("replicate to {}", k["target"].as_str().unwrap()),
                kind => format!("{kind} at {}", k["location"].as_str().unwrap()),
            };
            n == name
        })
        .unwrap_or_else(|| panic!("no phase {name} in {outcome:#}"))
}

/// Item 6: an exported target pool fails only its replication; the snapshot is still
/// taken, the source is not pruned (its common base with the target is unknown), the
/// exit status is 3, and the output, the journal and `check` name the target.
#[test]
fn an_exported_target_pool_stops_only_its_own_phases() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    env.status(&["run", "--now", &at(1)], 0);
    assert_eq!(env.snapshots("tank/home").len(), 1, "keeps one hourly");
    env.export_pool("backup");

    let out = env.json(&["run", "--now", &at(2)], 3);
    let snap = phase(&out, "snapshot at local");
    assert_eq!(snap["results"][0]["outcome"], "done");
    let repl = phase(&out, "replicate to backup");
    let err = repl["error"].as_str().unwrap();
    assert!(err.contains("backup/home"), "{err}");
    let prune = phase(&out, "prune at local");
    assert!(prune.get("error").is_none(), "{prune:#}");
    assert!(
        prune["plan"]["steps"].as_array().unwrap().is_empty(),
        "nothing is destroyed while the target's base is unknown: {prune:#}"
    );
    let notes = prune["plan"]["notes"].to_string();
    assert!(
        notes.contains("target backup could not be listed"),
        "{notes}"
    );
    assert_eq!(
        env.snapshots("tank/home"),
        [
            "zsnap_hourly_20261123T010000Z",
            "zsnap_hourly_20261123T020000Z"
        ],
        "the new snapshot was taken and the last common one kept"
    );

    // In human output, too.
    let text = env.status(&["run", "--now", &at(3)], 3);
    assert!(
        text.contains(
            "== replicate to backup ==\nerror: list the datasets of backup/home at local"
        ),
        "{text}"
    );

    let failed: Vec<Value> = env
        .journal_events()
        .into_iter()
        .filter(|e| e["event"] == "phase_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0]["phase"], "replicate to backup");

    let o = env.zsnap(&["check", "--now", &at_min(3 * 60 + 5)]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("ZSNAP CRITICAL - list the datasets of backup/home at local"),
        "{line}"
    );
    assert!(line.contains("the last zsnap run"), "{line}");

    // `zsnap snapshot` does not need the target at all.
    env.status(&["snapshot", "--now", &at(4)], 0);
}

/// Item 6: an ssh `zfs list` that fails (the connection drops) on the target is the
/// same: the snapshot is taken, exit status 3.
#[test]
fn a_failing_target_listing_does_not_stop_the_snapshot() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    // The run lists both roots in one call; when that fails, each alone: tank/home,
    // then backup/home. (After the snapshot it lists only the new snapshot.)
    env.fault("list", 1, "ssh_dropped");
    env.fault("list", 3, "ssh_dropped");
    let out = env.json(&["run", "--now", &at(1)], 3);
    assert_eq!(
        phase(&out, "snapshot at local")["results"][0]["outcome"],
        "done"
    );
    let err = phase(&out, "replicate to backup")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(err.contains("backup/home"), "{err}");
    assert!(env
        .snapshots("tank/home")
        .contains(&"zsnap_hourly_20261123T010000Z".to_owned()));
    // The next run, with the target back, converges.
    env.status(&["run", "--now", &at(2)], 0);
    assert_eq!(
        env.snapshots("tank/home"),
        ["zsnap_hourly_20261123T020000Z"]
    );

    // Taking snapshots does not list the target at all (an unreachable host's ssh
    // timeout would only delay it): tank/home, once (nothing is listed after the last
    // phase).
    let lists = |env: &Env| {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(env.state()).unwrap()).unwrap();
        v["calls"]["list"].as_u64().unwrap()
    };
    let before = lists(&env);
    env.status(&["snapshot", "--now", &at(3)], 0);
    assert_eq!(lists(&env) - before, 1);
}

/// Issue 12: `zsnap status` with one root that cannot be listed (the target pool
/// exported, then the source's listing failing) shows everything else as usual and
/// that root as unreachable, with the error, in the table and in `--json`, and exits 3
/// (a partial failure, as the README's table says); `check` calls it critical, not
/// unknown. When nothing can be listed at all, status fails (1).
#[test]
fn status_shows_an_unlisted_location_as_unreachable() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    env.export_pool("backup");

    let st = env.json(&["status", "--now", &at(1)], 3);
    let datasets = st["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{st:#}");
    assert_eq!(datasets[0]["dataset"], "tank/home");
    assert_eq!(datasets[0]["labels"][0]["count"], 1);
    assert_eq!(st["targets"], serde_json::json!([]), "{st:#}");
    let u = &st["unreachable"][0];
    assert_eq!(u["location"], "local");
    assert_eq!(u["root"], "backup/home");
    assert_eq!(u["datasets"], serde_json::json!([]));
    assert_eq!(u["targets"], serde_json::json!(["backup"]));
    let error = u["error"].as_str().unwrap();
    assert!(
        error.starts_with("list the datasets of backup/home at local: "),
        "{error}"
    );

    let table = env.status(&["status", "--now", &at(1)], 3);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tank/home") && l.contains("hourly")),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("backup ")
            && l.contains("tank/home")
            && l.contains("unreachable: list the datasets of backup/home at local")),
        "{table}"
    );

    // The source's listing fails (the target is back): its datasets are unreachable,
    // and so is the target, whose common snapshot with it is unknown.
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    env.fault("list", 1, "ssh_dropped");
    env.fault("list", 2, "ssh_dropped");
    let st = env.json(&["status", "--now", &at(1)], 3);
    assert_eq!(st["datasets"], serde_json::json!([]), "{st:#}");
    let u = &st["unreachable"][0];
    assert_eq!(u["root"], "tank/home");
    assert_eq!(u["datasets"], serde_json::json!(["tank/home"]));
    assert_eq!(u["targets"], serde_json::json!(["backup"]));
    env.fault("list", 1, "ssh_dropped");
    env.fault("list", 2, "ssh_dropped");
    let table = env.status(&["status", "--now", &at(1)], 3);
    assert!(
        table
            .lines()
            .any(|l| l
                .starts_with("tank/home  unreachable: list the datasets of tank/home at local")),
        "{table}"
    );
    env.fault("list", 1, "ssh_dropped");
    let o = env.zsnap(&["check", "--now", &at_min(5)]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with("ZSNAP CRITICAL - list the datasets of tank/home at local"),
        "{line}"
    );

    // Nothing listed at all: an error, as for a run.
    env.export_pool("backup");
    env.export_pool("tank");
    env.status(&["status", "--now", &at(1)], 1);
}

/// Item 10: a destroy ZFS did only in part exits 3, not 0; the audit log has it.
#[test]
fn a_partial_destroy_exits_3() {
    let env = Env::new(CONFIG);
    for h in 0..3 {
        env.status(&["snapshot", "--now", &at(h)], 0);
    }
    assert_eq!(env.snapshots("tank/home").len(), 3);
    // A busy first member: the rest of the batch goes.
    env.fault("destroy", 1, "busy");
    let out = env.json(&["prune", "--now", &at(2)], 3);
    assert_eq!(
        phase(&out, "prune at local")["results"][0]["outcome"],
        "partial"
    );
    assert_eq!(env.snapshots("tank/home").len(), 2);
    let audit = env.audit_lines();
    assert_eq!(audit.last().unwrap()["result"], "partial");
}

/// Item 10: a failure after a phase changed something exits 3 ("some steps were
/// done"), not 1 ("changed nothing"): here the listing after the snapshot fails.
#[test]
fn a_failure_after_a_change_exits_3() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    // Listings: both roots; after the snapshot, the new snapshot, which fails, so
    // both roots again (in one call, then each alone), which fail too.
    for ahead in 2..=5 {
        env.fault("list", ahead, "ssh_dropped");
    }
    let out = env.json(&["run", "--now", &at(1)], 3);
    assert_eq!(
        phase(&out, "snapshot at local")["results"][0]["outcome"],
        "done"
    );
    assert!(phase(&out, "replicate to backup")["error"].is_string());
    assert!(phase(&out, "prune at local")["error"].is_string());
    // A replication alone that fails to list (the target) changed nothing: 1.
    env.fault("list", 1, "ssh_dropped");
    env.fault("list", 3, "ssh_dropped");
    env.status(&["replicate", "--now", &at(1)], 1);
}

/// Item 10: `zsnap check` with bad arguments is UNKNOWN (3) for the monitoring system,
/// not 2 (CRITICAL).
#[test]
fn check_usage_errors_are_unknown() {
    let env = Env::new(CONFIG);
    for args in [
        &["check", "--bogus"][..],
        &["check", "--now", "yesterday"],
        &["--backend", "nfs://x", "check"],
        &["check", "extra"],
    ] {
        let out = env.status(args, 3);
        assert!(out.starts_with("ZSNAP UNKNOWN - "), "{args:?}: {out}");
    }
    let v = env.json(&["check", "--bogus"], 3);
    assert_eq!(v["status"], "UNKNOWN");
    assert_eq!(v["code"], 3);
    // Help is not an error.
    env.status(&["check", "--help"], 0);
}

/// Item 10: with `--json`, an error is one JSON object on stdout: message, causes,
/// hint, exit code (and the usual text on stderr).
#[test]
fn json_errors_are_one_object_on_stdout() {
    let env = Env::new("[policies.standard]\nkep = { daily = 7 }\n");
    let o = env.zsnap(&["--json", "run", "--now", &at(0)]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &v["error"];
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("load the config"),
        "{v:#}"
    );
    assert!(!e["causes"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(
        e["hint"].as_str().unwrap().contains("zsnap config check"),
        "{v:#}"
    );
    assert_eq!(e["exit_code"], 2);
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: load the config"));

    // A clap usage error too.
    let env = Env::new(CONFIG);
    let v = env.json(&["run", "--bogus"], 2);
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("--bogus"),
        "{v:#}"
    );
    // And a job that could list nothing at all (exit 1).
    env.status(&["run", "--now", &at(0)], 0);
    for ahead in 1..=3 {
        env.fault("list", ahead, "permission_denied");
    }
    let v = env.json(&["replicate", "--now", &at(1)], 1);
    assert_eq!(v["error"]["exit_code"], 1, "{v:#}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("list the datasets of tank/home at local"),
        "{v:#}"
    );
    // One that failed only in part prints its outcome, with the failed phase in it.
    env.fault("list", 1, "permission_denied");
    env.fault("list", 3, "permission_denied");
    let v = env.json(&["replicate", "--now", &at(1)], 1);
    assert!(v["phases"][0]["error"].is_string(), "{v:#}");
}

/// Item 14: a run that exits 3 on a diverged target makes `check` warn (with the
/// error); one that failed outright is critical; one that never ended warns once it
/// is older than twice the shortest period; a good run clears it.
#[test]
fn check_sees_the_last_runs() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    assert!(env
        .status(&["check", "--now", &at_min(5)], 0)
        .starts_with("ZSNAP OK"));

    // Diverge the target: a snapshot of its own, newer than the common one.
    let mut z = zsnap_exec::fake::FakeZfs::load(&env.state()).unwrap();
    z.cmd_snapshot(
        &["backup/home@local-change".parse().unwrap()],
        &BTreeMap::new(),
    )
    .unwrap();
    z.save(&env.state()).unwrap();

    let out = env.json(&["run", "--now", &at(1)], 3);
    assert!(
        phase(&out, "replicate to backup")["error"].is_string() || {
            let r = &phase(&out, "replicate to backup")["results"];
            r.to_string().contains("failed")
        }
    );
    let o = env.zsnap(&["check", "--now", &at_min(65)]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1), "{line}");
    assert!(line.starts_with("ZSNAP WARNING - the last zsnap run (2026-11-23 01:00) failed in part: replicate to backup"), "{line}");

    // A replication alone that fails changes nothing: exit 1, CRITICAL.
    env.status(&["replicate", "--now", &at_min(70)], 1);
    let o = env.zsnap(&["check", "--now", &at_min(75)]);
    let line = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(2), "{line}");
    assert!(
        line.contains("the last zsnap replicate (2026-11-23 01:10) failed: replicate to backup"),
        "{line}"
    );

    // A run that started and never ended (killed, or stuck holding the lock).
    let record = env.path("journal/last-run.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    v["snapshot"] = serde_json::json!({"pid": 4_000_000, "started": at(2)});
    std::fs::write(&record, v.to_string()).unwrap();
    let line = env.status(&["check", "--now", &at_min(2 * 60 + 30)], 2);
    assert!(!line.contains("has not ended"), "not yet stale: {line}");
    let line = env.status(&["check", "--now", &at(5)], 2);
    assert!(
        line.contains("zsnap snapshot started 3h ago (process 4000000) and has not ended"),
        "{line}"
    );

    // The record is bounded and holds nothing but zsnap's own words.
    assert!(std::fs::metadata(&record).unwrap().len() < 16 * 1024);
}

/// Item 13: every change a job makes to a pool is in the audit log: snapshots,
/// transfers, holds and releases, destroys on the source and on the target.
#[test]
fn every_change_is_audited() {
    let env = Env::new(CONFIG);
    let mut steps = 0;
    for h in [0, 1, 2, 26, 27, 50] {
        let out = env.json(&["run", "--now", &at(h)], 0);
        for p in out["phases"].as_array().unwrap() {
            steps += p["results"].as_array().map_or(0, Vec::len);
        }
    }
    for (cmd, h) in [("snapshot", 51), ("replicate", 51), ("prune", 51)] {
        let out = env.json(&[cmd, "--now", &at(h)], 0);
        for p in out["phases"].as_array().unwrap() {
            steps += p["results"].as_array().map_or(0, Vec::len);
        }
    }
    let audit = env.audit_lines();
    assert_eq!(audit.len(), steps);
    let kinds: std::collections::BTreeSet<String> = audit
        .iter()
        .map(|l| l["step"]["step"].as_str().unwrap().to_owned())
        .collect();
    for k in ["snapshot", "transfer", "destroy"] {
        assert!(kinds.contains(k), "{k} in {kinds:?}");
    }
    let commands: std::collections::BTreeSet<&str> = audit
        .iter()
        .map(|l| l["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["prune", "replicate", "run", "snapshot"]
            .into_iter()
            .collect()
    );
    // A dry run changes nothing and logs nothing.
    env.json(&["run", "-n", "--now", &at(52)], 0);
    assert_eq!(env.audit_lines().len(), steps);
}

/// Item 17: the target's pruning names the target's policy, and protects the newest
/// snapshot shared with "the source", not with a "target local (source)".
#[test]
fn reasons_name_the_right_policy_and_side() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    let human = env.status(&["plan", "run", "--now", &at(24)], 0);
    let out = env.json(&["run", "--now", &at(24)], 0);
    let text = out.to_string();
    assert!(
        text.contains(r#"no rule of policy \"archive\" keeps them"#),
        "{text}"
    );
    assert!(!text.contains(r#"policy \"backup\""#), "{text}");
    assert!(!text.contains("(source)"), "{text}");
    assert!(text.contains("common_with_source"), "{text}");
    assert!(human.contains("policy \"archive\""), "{human}");
    assert!(
        human.contains("in common with the source at local"),
        "{human}"
    );
}

/// Item 11: a dataset found under a recursive root whose snapshot names would be over
/// ZFS's 255-byte limit is never snapshotted; that fails the run (exit 3) naming it,
/// in the output, the journal and `check`, while every other dataset is snapshotted.
#[test]
fn a_dataset_too_long_to_snapshot_fails_the_run_naming_it() {
    let env = Env::new(CONFIG);
    env.status(&["run", "--now", &at(0)], 0);
    let long = format!("tank/home/{}", "d".repeat(230));
    let mut z = zsnap_exec::fake::FakeZfs::load(&env.state()).unwrap();
    z.create(&long.parse().unwrap(), false).unwrap();
    z.save(&env.state()).unwrap();

    let out = env.json(&["snapshot", "--now", &at(1)], 3);
    let snap = phase(&out, "snapshot at local");
    let err = snap["error"].as_str().unwrap();
    assert!(err.contains(&long), "{err}");
    assert!(err.contains("longer than 255 bytes"), "{err}");
    assert_eq!(snap["results"][0]["outcome"], "done", "{snap:#}");
    assert_eq!(
        env.snapshots("tank/home").len(),
        2,
        "the others are snapshotted"
    );
    assert!(env.snapshots(&long).is_empty());
    let text = String::from_utf8(env.zsnap(&["plan", "snapshot", "--now", &at(2)]).stdout).unwrap();
    assert!(text.contains("problems:"), "{text}");
    assert!(
        env.journal_events()
            .iter()
            .any(|e| e.to_string().contains("longer than 255 bytes")),
        "the journal names it"
    );
    let check = String::from_utf8(env.zsnap(&["check", "--now", &at(1)]).stdout).unwrap();
    assert!(check.contains(&long), "check names it: {check}");
}
