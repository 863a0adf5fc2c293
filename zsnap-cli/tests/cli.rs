//! End-to-end tests of the `zsnap` binary on the fake backend, its state persisted in a
//! temporary directory between invocations.

use std::path::Path;
use std::process::Command;

use chrono::{TimeDelta, TimeZone, Utc};

const CONFIG: &str = r#"
[paths]
audit_log = "audit.jsonl"
journal_dir = "journal"
lock_file = "zsnap.lock"

[policies.standard]
snapshot = { hourly = "hourly", daily = "daily" }
keep_counts = { hourly = 6, daily = 3 }

[policies.archive]
keep = { daily = 10 }

[[datasets]]
root = "tank/home"
recursive = true
policy = "standard"

[targets.backup]
to = "backup/home"
policy = "archive"

[check]
freshness = { hourly = { warn = "90m", crit = "3h" } }
replication_lag = { warn = "2h", crit = "1d" }
"#;

mod common;
use common::Env;

fn at(hours: i64) -> String {
    (Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + TimeDelta::hours(hours)).to_rfc3339()
}

fn status_json(env: &Env, now: &str) -> serde_json::Value {
    serde_json::from_str(&env.ok(&["status", "--json", "--now", now])).unwrap()
}

fn label_count(status: &serde_json::Value, dataset: &str, label: &str) -> u64 {
    status["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataset"] == dataset)
        .and_then(|d| {
            d["labels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["label"] == label)
        })
        .map_or(0, |l| l["count"].as_u64().unwrap())
}

#[test]
fn hourly_runs_keep_what_the_policy_says_and_replicate() {
    let env = Env::new(CONFIG);
    for h in 0..30 {
        env.ok(&["run", "--now", &at(h)]);
    }
    let st = status_json(&env, &at(29));
    assert_eq!(label_count(&st, "tank/home", "hourly"), 6);
    assert_eq!(label_count(&st, "tank/home", "daily"), 2);
    let target = &st["targets"][0];
    assert_eq!(target["target"], "backup");
    assert_eq!(target["dataset"], "backup/home");
    assert_eq!(target["lag_seconds"], 0);
    // Every change is in the audit log, one JSON object per line.
    let audit = std::fs::read_to_string(env.path("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["step"]["step"] == "snapshot" && l["result"] == "done"));
    assert!(lines.iter().any(|l| l["step"]["step"] == "destroy"));
    assert!(lines.iter().any(|l| l["step"]["step"] == "transfer"));
    assert!(std::fs::read_dir(env.path("journal")).unwrap().count() >= 30);
    // The lock is released after each run (the file stays: it is a kernel lock).
    assert!(zsnap_exec::lock::Lock::acquire(&env.path("zsnap.lock")).is_ok());
}

#[test]
fn the_binary_matches_the_library_loop() {
    // 48 hourly invocations of the binary end in the state the library loop (which
    // `year.rs` runs for a year) reaches for the same hours.
    let env = Env::new(CONFIG);
    for h in 0..48 {
        env.ok(&["run", "--now", &at(h)]);
    }
    let st = status_json(&env, &at(47));
    let config = zsnap_core::config::Config::from_toml(CONFIG, "c.toml").unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    let sim = zsnap_exec::rehearsal::rehearse(
        &config,
        start,
        2,
        zsnap_core::duration::Span::from_secs(3600),
    )
    .unwrap();
    for d in &sim.datasets {
        for l in &d.labels {
            if d.dataset == "tank/home" {
                assert_eq!(
                    label_count(&st, "tank/home", &l.label),
                    l.count as u64,
                    "{}",
                    l.label
                );
            }
        }
    }
    let home = sim
        .datasets
        .iter()
        .find(|d| d.dataset == "tank/home")
        .unwrap();
    assert_eq!(home.snapshots.len(), 6 + 2);
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn dry_run_changes_nothing() {
    let env = Env::new(CONFIG);
    for h in 0..3 {
        env.ok(&["run", "--now", &at(h)]);
    }
    let before = sha(&env.state());
    let audit_before = sha(&env.path("audit.jsonl"));
    for args in [
        &["run", "-n", "--now", &at(30)][..],
        &["snapshot", "--dry-run", "--now", &at(30)],
        &["snapshot", "-n", "--label", "manual", "--now", &at(30)],
        &["prune", "-n", "--now", &at(400)],
        &["replicate", "-n", "--now", &at(30)],
        &["plan", "--now", &at(30)],
        &["plan", "prune", "--json", "--now", &at(400)],
        &["status", "--now", &at(30)],
        &["check", "--now", &at(3)],
    ] {
        let o = env.zsnap(args);
        assert!(o.status.code().is_some(), "{args:?}");
        assert_eq!(
            sha(&env.state()),
            before,
            "zsnap {args:?} changed the state"
        );
    }
    assert_eq!(sha(&env.path("audit.jsonl")), audit_before);
    // And the dry run did plan something.
    let plan = env.ok(&["run", "-n", "--now", &at(30)]);
    assert!(plan.contains("destroy"), "{plan}");
}

#[test]
fn json_output_parses_and_is_stable() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(0)]);
    let plan: serde_json::Value =
        serde_json::from_str(&env.ok(&["plan", "--json", "--now", &at(1)])).unwrap();
    insta::assert_json_snapshot!("plan_run", plan);
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "--json", "--now", &at(1)])).unwrap();
    insta::assert_json_snapshot!("status", status);
    let check: serde_json::Value =
        serde_json::from_str(&env.ok(&["check", "--json", "--now", &at(1)])).unwrap();
    insta::assert_json_snapshot!("check", check);
    let config: serde_json::Value =
        serde_json::from_str(&env.ok(&["config", "check", "--json"])).unwrap();
    assert_eq!(config["targets"]["backup"]["to"], "backup/home");
    let sim: serde_json::Value = serde_json::from_str(&env.ok(&[
        "simulate",
        "--days",
        "2",
        "--step",
        "1h",
        "--json",
        "--now",
        &at(0),
    ]))
    .unwrap();
    assert_eq!(sim["runs"], 48);
    assert_eq!(sim["timeline"].as_array().unwrap().len(), 2);
}

#[test]
fn check_uses_nagios_codes() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(0)]);
    let code = |h: i64| {
        let o = env.zsnap(&["check", "--now", &at(h)]);
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stdout).unwrap(),
        )
    };
    let (c, line) = code(1);
    assert_eq!(c, 0, "{line}");
    assert!(line.starts_with("ZSNAP OK"), "{line}");
    let (c, line) = code(2);
    assert_eq!(c, 1, "{line}");
    insta::assert_snapshot!(line, @r#"ZSNAP WARNING - tank/home hourly is 2h old (warn 1h30m)"#);
    let (c, line) = code(5);
    assert_eq!(c, 2, "{line}");
    insta::assert_snapshot!(line, @r#"ZSNAP CRITICAL - tank/home hourly is 5h old (crit 3h)"#);
    // A snapshot dated in the future (the clock was ahead when it was taken) stops
    // the schedule of its label until then: check says so.
    let (c, line) = code(-3);
    assert_eq!(c, 1, "{line}");
    insta::assert_snapshot!(line, @"ZSNAP WARNING - tank/home daily is dated 3h in the future: no daily snapshot is taken until then (was the clock ahead?); tank/home hourly is dated 3h in the future: no hourly snapshot is taken until then (was the clock ahead?)");
    let broken = Env::new("[policies]\n");
    let o = broken.zsnap(&["check"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ZSNAP UNKNOWN"));
}

#[test]
fn config_errors_exit_2_with_the_place_and_a_hint() {
    let env = Env::new("[policies.standard]\nkep = { daily = 7 }\n");
    let o = env.zsnap(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr)
        .unwrap()
        .replace(&env.dir.path().display().to_string(), "TMP");
    insta::assert_snapshot!(err, @r#"
        error: load the config TMP/zsnap.toml
          caused by: unknown key `kep` in [policies.standard]; did you mean `keep`?
         --> TMP/zsnap.toml:2:1
          |
        2 | kep = { daily = 7 }
          | ^^^
          hint: fix the place shown above; `zsnap config check` validates a config without running anything
        "#);
    let missing = Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .args(["--config", "/nonexistent/zsnap.toml", "status"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(missing.stderr).unwrap(), @r#"
        error: read the config /nonexistent/zsnap.toml
          caused by: No such file or directory (os error 2)
          hint: pass --config FILE; commented examples are in the examples/ directory of the source
        "#);
    let bad_flag = env.zsnap(&["simulate", "--days", "3", "--step", "10x"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(bad_flag.stderr).unwrap(), @r#"
        error: invalid --step
          caused by: invalid duration "10x": unknown unit (use s, m, h, d or w); expected e.g. "90s", "15m", "1h30m", "7d" or "2w"
        "#);
}

#[test]
fn saved_listing_plans_offline() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(0)]);
    let cmd = env.ok(&["plan", "--print-list-command"]);
    insta::assert_snapshot!(cmd, @r#"zfs list -H -p -t filesystem,volume,snapshot,bookmark -o name,type,guid,createtxg,creation,userrefs,clones,origin,encryption,keystatus,receive_resume_token,mountpoint,used,zsnap:managed,zsnap:expires -r tank/home backup/home"#);
    // Capture the listing the way a user would on the host, from the fake.
    let state = zsnap_exec::fake::FakeZfs::load(&env.state()).unwrap();
    let listing = state.cmd_list(&["tank/home".parse().unwrap()]).unwrap();
    std::fs::write(env.path("listing.txt"), listing).unwrap();
    let before = sha(&env.state());
    let out = env.ok(&[
        "plan",
        "snapshot",
        "--inventory",
        env.path("listing.txt").to_str().unwrap(),
        "--now",
        &at(1),
    ]);
    assert!(out.contains("zsnap_hourly_20261123T010000Z"), "{out}");
    assert_eq!(sha(&env.state()), before);
}

#[test]
fn import_sanoid_prints_a_valid_config() {
    let env = Env::new(CONFIG);
    std::fs::write(
        env.path("sanoid.conf"),
        "[tank/home]\n  use_template = production\n  recursive = yes\n\n[template_production]\n  hourly = 36\n  daily = 30\n  monthly = 3\n",
    )
    .unwrap();
    let toml = env.ok(&[
        "import",
        "sanoid",
        env.path("sanoid.conf").to_str().unwrap(),
    ]);
    zsnap_core::config::Config::from_toml(&toml, "imported.toml").unwrap();
    assert!(toml.contains("adopt = [\"sanoid\"]"), "{toml}");
}

#[test]
fn import_sanoid_json_carries_the_notes() {
    let env = Env::new(CONFIG);
    std::fs::write(
        env.path("sanoid.conf"),
        "[tank/home]\n  hourly = 24\n  monitor_dont_warn = yes\n",
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&env.ok(&[
        "import",
        "sanoid",
        "--json",
        env.path("sanoid.conf").to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(json["tool"], "sanoid");
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("monitor_dont_warn")),
        "{json}"
    );
    assert_eq!(json["config"]["datasets"][0]["root"], "tank/home");
}

const ZREPL_YML: &str = r#"
jobs:
- name: snapjob
  type: snap
  filesystems: {
    "tank/home<": true,
    "tank/home/tmp<": false,
  }
  snapshotting:
    type: periodic
    interval: 15m
    prefix: zrepl_
  pruning:
    keep:
    - type: grid
      grid: 1x1h(keep=all) | 24x1h | 14x1d
      regex: "^zrepl_"
"#;

#[test]
fn import_zrepl_prints_a_valid_config() {
    let env = Env::new(CONFIG);
    std::fs::write(env.path("zrepl.yml"), ZREPL_YML).unwrap();
    let file = env.path("zrepl.yml");
    let toml = env.ok(&["import", "zrepl", file.to_str().unwrap()]);
    let config = zsnap_core::config::Config::from_toml(&toml, "imported.toml").unwrap();
    assert_eq!(config.datasets[0].exclude.len(), 1, "{toml}");
    assert!(toml.contains("adopt = [\"zrepl\"]"), "{toml}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["import", "zrepl", "--json", file.to_str().unwrap()]))
            .unwrap();
    assert_eq!(json["tool"], "zrepl");
    assert!(json["notes"].is_array());
    assert_eq!(
        json["config"]["policies"]["snapjob"]["keep_rules"][0]["regex"],
        "^zrepl_"
    );
}

#[test]
fn import_znapzend_prints_a_valid_config() {
    let env = Env::new(CONFIG);
    std::fs::write(
        env.path("export.txt"),
        "dst_a=root@backup:pool/home\ndst_a_plan=30days=>1day\nenabled=on\n\
         pre_znap_cmd=off\npost_znap_cmd=off\nrecursive=on\nsrc=tank/home\n\
         src_plan=1day=>1hour,7days=>1day\ntsformat=%Y-%m-%d-%H%M%S\n",
    )
    .unwrap();
    let file = env.path("export.txt");
    let toml = env.ok(&["import", "znapzend", file.to_str().unwrap()]);
    let config = zsnap_core::config::Config::from_toml(&toml, "imported.toml").unwrap();
    assert_eq!(config.targets.len(), 1, "{toml}");
    assert!(toml.contains("# note: tank/home: src_plan"), "{toml}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["import", "znapzend", "--json", file.to_str().unwrap()]))
            .unwrap();
    assert_eq!(json["tool"], "znapzend");
    assert!(!json["notes"].as_array().unwrap().is_empty());
}

#[test]
fn import_errors_name_the_file_and_line() {
    let env = Env::new(CONFIG);
    std::fs::write(env.path("export.txt"), "src=tank/home\nsrc_plan=1day\n").unwrap();
    let o = env.zsnap(&[
        "import",
        "znapzend",
        env.path("export.txt").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("export.txt:2: src_plan"), "{err}");
}

#[test]
fn completions_and_man_page() {
    let env = Env::new(CONFIG);
    let bash = env.ok(&["completions", "bash"]);
    assert!(bash.contains("simulate") && bash.contains("--dry-run"));
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH zsnap"), "{}", &man[..200.min(man.len())]);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new(CONFIG);
    let mut child = Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .args([
            "--config",
            env.path("zsnap.toml").to_str().unwrap(),
            "simulate",
            "--days",
            "20",
            "--json",
            "--now",
            &at(0),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn on_demand_label_and_unknown_target() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(0)]);
    let out = env.ok(&[
        "snapshot",
        "--label",
        "pre-upgrade",
        "--json",
        "--now",
        &at(0),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names = &v["phases"][0]["plan"]["steps"][0]["names"];
    assert_eq!(names[0], "tank/home@zsnap_pre-upgrade_20261123T000000Z");
    assert_eq!(v["phases"][0]["results"][0]["outcome"], "done");
    // The on-demand label has no schedule, so the policy's counts do not touch it.
    let st = status_json(&env, &at(1));
    assert_eq!(label_count(&st, "tank/home", "pre-upgrade"), 1);

    let bad = env.zsnap(&["snapshot", "--label", "Pre_Upgrade", "--now", &at(0)]);
    assert_eq!(bad.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(bad.stderr).unwrap(), @r#"
        error: invalid --label
          caused by: invalid label "Pre_Upgrade": character 'P' is not allowed (at byte 0); labels use a-z, 0-9 and '-'
        "#);
    let unknown = env.zsnap(&["replicate", "offsite", "--now", &at(1)]);
    assert_eq!(unknown.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(unknown.stderr).unwrap(), @r#"error: unknown target "offsite"; the config defines backup"#);
}

#[test]
fn a_held_lock_stops_a_second_run() {
    let env = Env::new(CONFIG);
    // A lock held by a live process (this test).
    let held = zsnap_exec::lock::Lock::acquire(&env.path("zsnap.lock")).unwrap();
    let o = env.zsnap(&["run", "--now", &at(0)]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8(o.stderr)
        .unwrap()
        .replace(&env.dir.path().display().to_string(), "TMP")
        .replace(&std::process::id().to_string(), "PID");
    insta::assert_snapshot!(err, @r#"
        error: take the lock TMP/zsnap.lock: held by process PID
          hint: another zsnap (process PID) is running; try again when it ends
        "#);
    assert!(!env.state().exists(), "nothing ran");
    // A dry run needs no lock.
    env.ok(&["run", "-n", "--now", &at(0)]);
    // A holder that died (its pid, or garbage, left in the file) never blocks a run.
    drop(held);
    for left in ["999999999\n", "", "garbage"] {
        std::fs::write(env.path("zsnap.lock"), left).unwrap();
        env.ok(&["run", "--now", &at(0)]);
    }
}

/// Issue 12, item 1: `zsnap snapshot --label pre-upgrade` at 02:05, then the timer's
/// `zsnap run`s: the on-demand snapshot survives (the policy's counts name only its
/// scheduled labels), and `status` shows its label as taken on demand.
#[test]
fn an_on_demand_snapshot_survives_the_next_runs() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(2)]);
    let five_past = (Utc.with_ymd_and_hms(2026, 11, 23, 2, 5, 0).unwrap()).to_rfc3339();
    env.ok(&["snapshot", "--label", "pre-upgrade", "--now", &five_past]);
    for h in 3..12 {
        env.ok(&["run", "--now", &at(h)]);
    }
    let st = status_json(&env, &at(12));
    assert_eq!(label_count(&st, "tank/home", "pre-upgrade"), 1);
    assert_eq!(label_count(&st, "tank/home", "hourly"), 6);
    let labels = st["datasets"][0]["labels"].as_array().unwrap();
    let pre = labels.iter().find(|l| l["label"] == "pre-upgrade").unwrap();
    assert_eq!(pre["on_demand"], true);
    assert_eq!(pre["kept"][0]["kept_until"], serde_json::Value::Null);
    assert_eq!(
        pre["kept"][0]["verdict"]["reasons"][0]["until"]["kind"],
        "no_expiry"
    );
    let table = env.ok(&["status", "--now", &at(12)]);
    assert!(
        table.lines().any(|l| l.contains("pre-upgrade")
            && l.contains("on demand")
            && l.ends_with("kept: no expiry")),
        "{table}"
    );
    let plan = env.ok(&["plan", "--now", &at(12)]);
    assert!(
        plan.contains("taken on demand (label \"pre-upgrade\" is not scheduled)"),
        "{plan}"
    );
}

/// The decision of the last `prune at local` phase of a job's `--json` outcome about
/// `snapshot`.
fn prune_decision(outcome: &serde_json::Value, snapshot: &str) -> serde_json::Value {
    outcome["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"]["kind"] == "prune")
        .flat_map(|p| p["plan"]["decisions"].as_array().unwrap().iter())
        .find(|d| d["snapshot"] == snapshot)
        .unwrap_or_else(|| panic!("no decision about {snapshot} in {outcome:#}"))
        .clone()
}

/// Issue 12: `zsnap snapshot --label pre-upgrade --expire-in 2h` writes the expiry on
/// the snapshot (the plan says so); a run an hour later keeps it, naming the expiry,
/// and one three hours later destroys it because it expired. An expiry for a scheduled
/// label, or without a label, is a usage error.
#[test]
fn an_on_demand_snapshot_with_an_expiry_goes_after_it() {
    let env = Env::new(CONFIG);
    env.ok(&["run", "--now", &at(0)]);
    let take = [
        "snapshot",
        "--label",
        "pre-upgrade",
        "--expire-in",
        "2h",
        "--now",
    ];
    let plan = env.ok(&[&take[..], &[&at(0), "-n"]].concat());
    assert!(
        plan.contains("on demand: pre-upgrade, kept until 2026-11-23T02:00:00Z"),
        "{plan}"
    );
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&[&take[..], &[&at(0), "--json"]].concat())).unwrap();
    let step = &out["phases"][0]["plan"]["steps"][0];
    assert_eq!(step["properties"]["zsnap:expires"], "2026-11-23T02:00:00Z");
    assert_eq!(step["properties"]["zsnap:managed"], "yes");
    assert_eq!(out["phases"][0]["results"][0]["outcome"], "done");
    let name = "tank/home@zsnap_pre-upgrade_20261123T000000Z";
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.state()).unwrap()).unwrap();
    let snaps = state["datasets"]["tank/home"]["snapshots"]
        .as_array()
        .unwrap();
    let taken = snaps
        .iter()
        .find(|s| s["name"] == "zsnap_pre-upgrade_20261123T000000Z")
        .unwrap();
    assert_eq!(taken["props"]["zsnap:expires"], "2026-11-23T02:00:00Z");

    // An hour later: kept until its expiry.
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--json", "--now", &at(1)])).unwrap();
    let d = prune_decision(&out, name);
    assert_eq!(d["verdict"]["verdict"], "keep", "{d:#}");
    assert_eq!(
        d["verdict"]["reasons"][0]["bucket"],
        "kept until 2026-11-23T02:00:00Z"
    );
    assert_eq!(d["verdict"]["reasons"][0]["rule"], "expiry set when taken");
    assert_eq!(
        d["verdict"]["reasons"][0]["until"],
        serde_json::json!({"kind": "time", "time": "2026-11-23T02:00:00Z"})
    );
    // `status` says until when, from the same plan.
    let st = status_json(&env, &at(1));
    assert_eq!(label_count(&st, "tank/home", "pre-upgrade"), 1);
    let pre = st["datasets"][0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "pre-upgrade")
        .unwrap();
    assert_eq!(
        pre["kept"][0]["snapshot"],
        "zsnap_pre-upgrade_20261123T000000Z"
    );
    assert_eq!(pre["kept"][0]["kept_until"], "2026-11-23T02:00:00Z");
    assert_eq!(pre["kept"][0]["verdict"]["verdict"], "keep");
    let table = env.ok(&["status", "--now", &at(1)]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tank/home  pre-upgrade")
                && l.ends_with("on demand         kept until 2026-11-23 02:00 UTC")),
        "{table}"
    );

    // Three hours later: expired, destroyed in a step that says so.
    let out: serde_json::Value =
        serde_json::from_str(&env.ok(&["run", "--json", "--now", &at(3)])).unwrap();
    assert_eq!(prune_decision(&out, name)["verdict"]["verdict"], "destroy");
    let steps: Vec<&serde_json::Value> = out["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phase"]["kind"] == "prune")
        .flat_map(|p| p["plan"]["steps"].as_array().unwrap().iter())
        .filter(|s| {
            s["snapshots"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|r| r["name"] == "zsnap_pre-upgrade_20261123T000000Z")
            })
        })
        .collect();
    assert_eq!(steps.len(), 1, "{out:#}");
    assert_eq!(
        steps[0]["reason"],
        "taken on demand (label \"pre-upgrade\" is not scheduled); expired at 2026-11-23T02:00:00Z"
    );
    assert_eq!(
        label_count(&status_json(&env, &at(3)), "tank/home", "pre-upgrade"),
        0
    );

    // A scheduled label's snapshots are the keep rules' to prune: refused, nothing taken.
    let before = std::fs::read(env.state()).unwrap();
    let o = env.zsnap(&[
        "snapshot",
        "--label",
        "hourly",
        "--expire-in",
        "2h",
        "--now",
        &at(4),
    ]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(o.stderr).unwrap(), @r#"
        error: invalid --expire-in
          caused by: cannot give the hourly snapshot of tank/home an expiry: policy "standard" schedules label hourly, so its keep rules decide when those snapshots go and an expiry could only delay that; take it without an expiry, or with a label the policy does not schedule
        "#);
    assert_eq!(std::fs::read(env.state()).unwrap(), before);
    let o = env.zsnap(&["snapshot", "--expire-in", "2h", "--now", &at(4)]);
    assert_eq!(o.status.code(), Some(2));
    let o = env.zsnap(&[
        "snapshot",
        "--label",
        "x",
        "--expire-in",
        "0s",
        "--now",
        &at(4),
    ]);
    assert_eq!(o.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(o.stderr).unwrap(), @r"
        error: invalid --expire-in
          caused by: invalid expiry 0s from 2026-11-23T04:00:00Z: an expiry of 0 would let the next prune destroy the snapshot at once
        ");
}

/// Issue 12: `status` shows, per on-demand label, how many snapshots it has and until
/// when they are kept: a declared label's expiry before any is taken, the expiry each
/// one got, none, or a mix.
#[test]
fn status_says_until_when_on_demand_snapshots_are_kept() {
    let config = CONFIG.replace(
        "keep_counts = { hourly = 6, daily = 3 }",
        "keep_counts = { hourly = 6, daily = 3 }\non_demand = { pre-upgrade = \"30d\", manual = \"never\" }",
    );
    let env = Env::new(&config);
    env.ok(&["run", "--now", &at(0)]);
    let kept_column = |table: &str, label: &str| -> String {
        let header = table.lines().next().unwrap();
        let at = header.find("KEPT").unwrap();
        table
            .lines()
            .find(|l| l.starts_with(&format!("tank/home  {label} ")))
            .unwrap_or_else(|| panic!("no {label} in\n{table}"))[at..]
            .to_owned()
    };
    let table = env.ok(&["status", "--now", &at(0)]);
    assert_eq!(
        kept_column(&table, "pre-upgrade"),
        "new ones kept 30d (on_demand)"
    );
    assert_eq!(
        kept_column(&table, "manual"),
        "new ones: no expiry (on_demand)"
    );
    assert_eq!(kept_column(&table, "hourly"), "-");
    let st = status_json(&env, &at(0));
    let labels = st["datasets"][0]["labels"].as_array().unwrap();
    let pre = labels.iter().find(|l| l["label"] == "pre-upgrade").unwrap();
    assert_eq!(pre["count"], 0);
    assert_eq!(pre["on_demand"], true);
    assert_eq!(pre["on_demand_expiry"], "30d");

    let ten_past = Utc
        .with_ymd_and_hms(2026, 11, 23, 0, 10, 0)
        .unwrap()
        .to_rfc3339();
    env.ok(&["snapshot", "--label", "pre-upgrade", "--now", &ten_past]);
    env.ok(&["snapshot", "--label", "manual", "--now", &at(1)]);
    env.ok(&[
        "snapshot",
        "--label",
        "manual",
        "--expire-in",
        "2h",
        "--now",
        &at(2),
    ]);
    env.ok(&["snapshot", "--label", "adhoc", "--now", &at(2)]);
    let table = env.ok(&["status", "--now", &at(3)]);
    assert_eq!(
        kept_column(&table, "pre-upgrade"),
        "kept until 2026-12-23 00:10 UTC"
    );
    assert_eq!(
        kept_column(&table, "manual"),
        "1 kept until 2026-11-23 04:00 UTC; 1 kept: no expiry"
    );
    assert_eq!(kept_column(&table, "adhoc"), "kept: no expiry");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tank/home  manual       2 ")),
        "{table}"
    );
    let st = status_json(&env, &at(3));
    let labels = st["datasets"][0]["labels"].as_array().unwrap();
    let pre = labels.iter().find(|l| l["label"] == "pre-upgrade").unwrap();
    assert_eq!(pre["kept"][0]["kept_until"], "2026-12-23T00:10:00Z");
    assert_eq!(
        pre["kept"][0]["verdict"]["reasons"][0]["rule"],
        "on_demand expiry of label \"pre-upgrade\""
    );
    // Once it has expired, the next prune destroys it: status says so before.
    let table = env.ok(&["status", "--now", &at(5)]);
    assert_eq!(
        kept_column(&table, "manual"),
        "1 kept: no expiry; 1 destroyed by the next prune"
    );
}
