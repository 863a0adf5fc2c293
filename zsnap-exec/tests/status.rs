//! `zsnap status` and `zsnap check` as library values: a [`Status`] and a
//! [`CheckReport`] computed on a fake pool, without the command.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::job::{Engine, Job, Listing, Reporters, Source};
use zsnap_exec::last_run::RunRecord;
use zsnap_exec::status::{check, status, CheckReport, Level, Status};
use zsnap_exec::{NoObserver, OneBackend};

const CONFIG: &str = r#"
[policies.p]
snapshot = { hourly = "hourly" }
keep_last = 3

[[datasets]]
root = "tank/home"
policy = "p"

[targets.backup]
to = "backup/home"
policy = "p"

[check]
freshness = { hourly = { warn = "90m", crit = "3h" } }
replication_lag = { warn = "2h", crit = "1d" }
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn run(engine: &Engine<'_>, z: &mut FakeZfs, job: &Job, now: DateTime<Utc>) {
    z.set_now(now);
    let mut observer = NoObserver;
    let mut reporters = Reporters::new(&mut observer);
    let outcome = engine
        .run(
            job,
            now,
            false,
            Source::Backends(&mut OneBackend(z)),
            &mut reporters,
        )
        .unwrap();
    assert!(!outcome.failed());
}

fn list(engine: &Engine<'_>, z: &mut FakeZfs, now: DateTime<Utc>) -> Listing {
    z.set_now(now);
    engine
        .list_each(&mut Source::Backends(&mut OneBackend(z)))
        .unwrap()
}

fn status_at(engine: &Engine<'_>, z: &mut FakeZfs, now: DateTime<Utc>) -> Status {
    let listing = list(engine, z, now);
    status(engine, &listing, now).unwrap()
}

fn check_of(engine: &Engine<'_>, st: &Status) -> CheckReport {
    check(engine, st, Ok(&BTreeMap::new()))
}

#[test]
fn counts_lag_and_freshness() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let mut z = FakeZfs::for_config(&config, 3, t0()).unwrap();
    run(&engine, &mut z, &Job::Run, t0());
    run(&engine, &mut z, &Job::Run, t0() + TimeDelta::hours(1));

    let now = t0() + TimeDelta::hours(1);
    let st = status_at(&engine, &mut z, now);
    assert!(st.unreachable.is_empty());
    assert_eq!(st.datasets.len(), 1);
    let d = &st.datasets[0];
    assert_eq!(d.dataset, "tank/home");
    assert_eq!(d.policy, "p");
    assert_eq!(d.snapshots, 2);
    let hourly = &d.labels[0];
    assert_eq!(hourly.label, "hourly");
    assert_eq!(hourly.count, 2);
    assert_eq!(hourly.age_seconds, Some(0));
    assert_eq!(hourly.next_due, Some(now + TimeDelta::hours(1)));
    assert_eq!(st.targets.len(), 1);
    let t = &st.targets[0];
    assert_eq!(
        (t.target.as_str(), t.dataset.as_str()),
        ("backup", "backup/home")
    );
    assert_eq!(t.newest_common, hourly.newest);
    assert_eq!(t.lag_seconds, Some(0));
    // The JSON `zsnap status --json` prints.
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["datasets"][0]["labels"][0]["count"], 2);
    assert_eq!(json["targets"][0]["lag_seconds"], 0);
    assert!(json.get("unreachable").is_none() && json.get("backups").is_none());

    let report = check_of(&engine, &st);
    assert_eq!(report.level(), Level::Ok);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.summary(), "1 datasets, 2 checks, all fresh");

    // A snapshot without replication: the target lags an hour (under the 2h warning).
    let later = t0() + TimeDelta::hours(2);
    run(
        &engine,
        &mut z,
        &Job::Snapshot {
            label: None,
            expire_in: None,
        },
        later,
    );
    let st = status_at(&engine, &mut z, later);
    assert_eq!(st.datasets[0].labels[0].count, 3);
    assert_eq!(st.targets[0].lag_seconds, Some(3600));
    assert_eq!(check_of(&engine, &st).level(), Level::Ok);

    // Two hours later: past the 90m warning. Four: past the 3h critical threshold.
    let st = status_at(&engine, &mut z, later + TimeDelta::hours(2));
    let report = check_of(&engine, &st);
    assert_eq!(report.level(), Level::Warning);
    assert_eq!(report.summary(), "tank/home hourly is 2h old (warn 1h30m)");
    let st = status_at(&engine, &mut z, later + TimeDelta::hours(4));
    assert_eq!(st.datasets[0].labels[0].age_seconds, Some(4 * 3600));
    let report = check_of(&engine, &st);
    assert_eq!(report.level(), Level::Critical);
    assert_eq!(report.exit_code(), 2);
    let crit: Vec<&str> = report
        .at(Level::Critical)
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(crit, ["tank/home hourly is 4h old (crit 3h)"]);

    // The last runs are an input: a failed one is critical, one that failed in part a
    // warning.
    let mut runs = BTreeMap::new();
    runs.insert(
        "replicate".to_owned(),
        RunRecord::started(later).ended(1, ["replicate to backup: no route".to_owned()]),
    );
    runs.insert(
        "run".to_owned(),
        RunRecord::started(later).ended(3, ["prune: step 1: busy".to_owned()]),
    );
    let st = status_at(&engine, &mut z, later);
    let report = check(&engine, &st, Ok(&runs));
    assert_eq!(report.level(), Level::Critical);
    assert_eq!(
        report.summary(),
        "the last zsnap replicate (2026-11-23 12:00) failed: replicate to backup: no route; \
         the last zsnap run (2026-11-23 12:00) failed in part: prune: step 1: busy"
    );
}

#[test]
fn an_unreachable_target_is_reported_and_critical() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let mut z = FakeZfs::for_config(&config, 5, t0()).unwrap();
    run(&engine, &mut z, &Job::Run, t0());

    // Both roots are listed in one call; when it fails, one by one (tank/home, then
    // backup/home), so the failure names its root.
    let calls = z.calls(FaultOp::List);
    for nth in [calls + 1, calls + 3] {
        z.inject(Fault::on_call(
            FaultOp::List,
            nth,
            FaultEffect::PermissionDenied,
        ));
    }
    let st = status_at(&engine, &mut z, t0());
    assert_eq!(st.datasets.len(), 1);
    assert_eq!(st.datasets[0].labels[0].count, 1);
    assert!(st.targets.is_empty(), "{:?}", st.targets);
    assert_eq!(st.unreachable.len(), 1);
    let u = &st.unreachable[0];
    assert_eq!(u.root, "backup/home");
    assert_eq!(u.location, zsnap_core::Location::local());
    assert_eq!(u.targets, ["backup"]);
    assert!(u.datasets.is_empty());
    assert!(
        u.error
            .starts_with("list the datasets of backup/home at local: "),
        "{}",
        u.error
    );

    let report = check_of(&engine, &st);
    assert_eq!(report.level(), Level::Critical);
    assert_eq!(report.findings.len(), 1);
    assert_eq!(report.findings[0].message, u.error);
}
