//! `zsnap import zrepl`: zrepl.yml files in the style of zrepl's own examples translate
//! into configs zsnap accepts (and that round-trip), with notes for what has no zsnap
//! equivalent; and the translated keep rules decide like zrepl's rules restated by hand
//! in the engine's terms.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use zsnap_core::config::{import_zrepl, Config, Host, Imported};
use zsnap_core::policy::Policy;
use zsnap_core::retention::{evaluate, Candidate, KeepRule, RetentionPolicy};
use zsnap_core::{DatasetName, Guid, ShortName, Snapshot};

/// The fixtures are read at compile time: the crate's lints forbid `std::fs`.
fn fixture(name: &str) -> &'static str {
    match name {
        "zrepl-push-ssh.yml" => include_str!("fixtures/import/zrepl-push-ssh.yml"),
        "zrepl-local.yml" => include_str!("fixtures/import/zrepl-local.yml"),
        "zrepl-snap.yml" => include_str!("fixtures/import/zrepl-snap.yml"),
        "zrepl-source-pull.yml" => include_str!("fixtures/import/zrepl-source-pull.yml"),
        other => panic!("no fixture {other}"),
    }
}

fn import(name: &str) -> Imported {
    let imported = import_zrepl(fixture(name), name).unwrap_or_else(|e| panic!("{e}"));
    let text = imported.to_toml(name);
    let again = Config::from_toml(&text, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, imported.config);
    imported
}

#[test]
fn push_over_ssh() {
    let imported = import("zrepl-push-ssh.yml");
    insta::assert_snapshot!(imported.to_toml("zrepl.yml"));
}

#[test]
fn push_to_a_local_sink() {
    let imported = import("zrepl-local.yml");
    assert_eq!(imported.config.targets.len(), 1);
    insta::assert_snapshot!(imported.to_toml("zrepl.yml"));
}

#[test]
fn snap_job_with_filters() {
    let imported = import("zrepl-snap.yml");
    let c = &imported.config;
    let selected = |ds: &str| {
        c.entry_for(&Host::Local, &ds.parse::<DatasetName>().unwrap())
            .is_some()
    };
    // zrepl's filter, dataset by dataset.
    assert!(selected("tank/frequently_changed"));
    assert!(selected("tank/frequently_changed/a/b"));
    assert!(!selected("tank/frequently_changed/ignored"));
    assert!(selected("tank/frequently_changed/ignored/child"));
    assert!(!selected("tank/frequently_changed/tmp"));
    assert!(!selected("tank/frequently_changed/tmp/x"));
    assert!(selected("tank/vm"));
    assert!(!selected("tank/vm/disk0"));
    assert!(!selected("tank"));
    insta::assert_snapshot!(imported.to_toml("zrepl.yml"));
}

#[test]
fn source_and_pull_jobs() {
    let imported = import("zrepl-source-pull.yml");
    insta::assert_snapshot!(imported.to_toml("zrepl.yml"));
}

#[test]
fn notes_reach_json() {
    let imported = import("zrepl-push-ssh.yml");
    let json = serde_json::to_value(&imported).unwrap();
    assert_eq!(json["tool"], "zrepl");
    assert!(json["notes"].as_array().unwrap().len() >= 3, "{json}");
    assert!(json["config"]["policies"]["prod_to_backups"].is_object());
}

#[test]
fn errors_say_where() {
    let err = import_zrepl(
        "jobs:\n- name: a\n  type: snap\n  filesystems: [1, 2]\n",
        "zrepl.yml",
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"zrepl.yml:4: not a zrepl config: jobs[0].filesystems: invalid type: sequence, expected a map at line 4 column 16");
    let err = import_zrepl("jobs:\n- name: a\n  type: bogus\n", "zrepl.yml").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"zrepl.yml: job `a`: unknown job type `bogus` (expected snap, push, pull, sink or source)");
    let two = "jobs:\n- name: a\n  type: snap\n  filesystems: {\"tank<\": true}\n  snapshotting: {type: manual}\n  pruning: {keep: [{type: last_n, count: 3}]}\n\
               - name: b\n  type: snap\n  filesystems: {\"tank<\": true}\n  snapshotting: {type: manual}\n  pruning: {keep: [{type: last_n, count: 5}]}\n";
    let err = import_zrepl(two, "zrepl.yml").unwrap_err();
    assert!(err.to_string().contains("managed by job `a` too"), "{err}");
    let err = import_zrepl("jobs: []\n", "zrepl.yml").unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"zrepl.yml: no snap, push or source job with `filesystems`: nothing to translate");
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Thirty days of zrepl's own snapshots every 10 minutes, zsnap's for the last
/// `zsnap_hours` (after the switch), and some taken by hand.
fn history(end: DateTime<Utc>, prefix: &str, zsnap_hours: i64) -> Vec<Snapshot> {
    let mut snaps = Vec::new();
    let mut t = end - Duration::days(30);
    let mut txg = 1;
    while t <= end {
        let name = if end - t < Duration::hours(zsnap_hours) {
            format!("{prefix}periodic_{}", t.format("%Y%m%dT%H%M%SZ"))
        } else if txg % 97 == 0 {
            format!("manual-{txg}")
        } else {
            format!("{prefix}{}", t.format("%Y%m%d_%H%M%S_000"))
        };
        let zsnaps = name.contains("periodic_");
        let name: ShortName = name.parse().unwrap();
        let mut snap = Snapshot::new(name, Guid(txg), txg, t);
        if zsnaps {
            snap.managed = Some("yes".to_owned());
        }
        snaps.push(snap);
        txg += 1;
        t += Duration::minutes(10);
    }
    snaps
}

/// The names `retention` keeps of the snapshots `policy` owns.
fn kept(
    policy: &Policy,
    retention: &RetentionPolicy,
    snaps: &[Snapshot],
    now: DateTime<Utc>,
) -> BTreeSet<String> {
    let owned: Vec<(&Snapshot, Option<String>)> = snaps
        .iter()
        .filter_map(|s| {
            let o = policy.classify(s);
            o.is_owned().then(|| (s, o.label().map(str::to_owned)))
        })
        .collect();
    let cands: Vec<Candidate> = owned
        .iter()
        .map(|(s, l)| Candidate::new(&s.name, s.guid, s.createtxg, s.creation, l.as_deref()))
        .collect();
    evaluate(retention, &cands, now, policy.timezone)
        .iter()
        .zip(&owned)
        .filter(|(reasons, _)| !reasons.is_empty())
        .map(|(_, (s, _))| s.name.to_string())
        .collect()
}

fn rules(texts: &[&str]) -> RetentionPolicy {
    RetentionPolicy::new(
        texts
            .iter()
            .map(|t| t.parse::<KeepRule>().unwrap_or_else(|e| panic!("{t}: {e}")))
            .collect(),
    )
}

#[test]
fn imported_rules_decide_like_zrepls() {
    let now = at(2026, 11, 23, 15, 0);
    // The local sink's receiver policy: zrepl's keep_receiver grid.
    let imported = import("zrepl-local.yml");
    let spec = &imported.config.policies["backup_system-receiver"];
    let policy = spec.to_policy();
    let snaps = history(now, "zrepl_", 2);
    let got = kept(&policy, &policy.retention, &snaps, now);
    let oracle = kept(
        &policy,
        &rules(&["grid 1x1h(keep=all) | 24x1h | 360x1d (regex ^zrepl_)"]),
        &snaps,
        now,
    );
    assert_eq!(got, oracle);
    assert!(!got.is_empty() && got.len() < snaps.len());

    // The snap job: last_n, a filtered grid and a negated regex.
    let imported = import("zrepl-snap.yml");
    let spec = &imported.config.policies["snapjob"];
    let policy = spec.to_policy();
    // zrepl's names with this prefix are not adopted (yet): three days of zsnap's.
    let snaps = history(now, "zrepl_snapjob_", 72);
    let got = kept(&policy, &policy.retention, &snaps, now);
    let oracle = kept(
        &policy,
        &rules(&[
            "last 60",
            "grid 1x1h(keep=all) | 24x1h | 14x1d (regex ^zrepl_snapjob_)",
            "not regex ^zrepl_snapjob_",
        ]),
        &snaps,
        now,
    );
    assert_eq!(got, oracle);
    assert!(!got.is_empty() && got.len() < snaps.len());
}
