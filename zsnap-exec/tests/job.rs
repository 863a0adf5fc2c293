//! The job engine as a library: a whole `zsnap run` on a fake pool, a job refused
//! before it runs, and a root that cannot be listed failing only the phases that need
//! it, with typed errors.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::Location;
use zsnap_exec::failure::error_chain;
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::job::{Engine, Job, JobError, Outcome, PhaseKind, Reporters, Source};
use zsnap_exec::{FailureKind, NoObserver, OneBackend};

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
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

fn run(
    engine: &Engine<'_>,
    z: &mut FakeZfs,
    job: &Job,
    now: DateTime<Utc>,
) -> Result<Outcome, Box<JobError>> {
    z.set_now(now);
    let mut observer = NoObserver;
    let mut applied = 0;
    let mut count = |_: &zsnap_exec::job::Phase| applied += 1;
    let mut reporters = Reporters::new(&mut observer).on_applied(&mut count);
    let outcome = engine
        .run(
            job,
            now,
            false,
            Source::Backends(&mut OneBackend(z)),
            &mut reporters,
        )
        .map_err(Box::new);
    if let Ok(o) = &outcome {
        // Every phase that could be planned was applied, and reported to the hook.
        let planned = o.phases.iter().filter(|p| p.results.is_some()).count();
        assert_eq!(applied, planned);
    }
    outcome
}

#[test]
fn a_run_snapshots_replicates_and_prunes_and_an_hour_later_sends_an_increment() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let mut z = FakeZfs::for_config(&config, 7, t0()).unwrap();

    let first = run(&engine, &mut z, &Job::Run, t0()).unwrap();
    assert!(!first.failed());
    assert!(first.did_something());
    let kinds: Vec<&PhaseKind> = first.phases.iter().map(|p| &p.phase).collect();
    assert_eq!(
        kinds,
        [
            &PhaseKind::Snapshot {
                location: Location::local()
            },
            &PhaseKind::Replicate {
                target: "backup".into()
            },
            &PhaseKind::Prune {
                location: Location::local()
            },
        ]
    );

    // Nothing is due again within the hour.
    let again = run(&engine, &mut z, &Job::Run, t0()).unwrap();
    assert!(!again.failed());
    assert!(!again.did_something());

    let later = run(&engine, &mut z, &Job::Run, t0() + TimeDelta::hours(1)).unwrap();
    assert!(!later.failed());
    let inv = engine
        .list(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    let target = inv[&Location::local()]
        .dataset(&"backup/home".parse().unwrap())
        .expect("replicated");
    assert_eq!(target.snapshots.len(), 2);
}

#[test]
fn an_unknown_target_is_refused_before_anything_runs() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let job = Job::Replicate {
        targets: vec!["offsite".into()],
    };
    let e = engine.phases(&job).unwrap_err();
    assert!(
        matches!(&e, JobError::UnknownTarget { name, known } if name == "offsite" && known == &["backup"])
    );
    assert_eq!(
        e.to_string(),
        r#"unknown target "offsite"; the config defines backup"#
    );
    let mut z = FakeZfs::for_config(&config, 7, t0()).unwrap();
    let e = run(&engine, &mut z, &job, t0()).unwrap_err();
    assert!(matches!(*e, JobError::UnknownTarget { .. }));
    assert_eq!(z.calls(FaultOp::Snapshot), 0);
}

/// Makes the next listing of the two roots fail for the second one: the call listing
/// both, then (after the first root's own call) the second root's own call.
fn fail_second_root(z: &mut FakeZfs) {
    let calls = z.calls(FaultOp::List);
    for nth in [calls + 1, calls + 3] {
        z.inject(Fault::on_call(
            FaultOp::List,
            nth,
            FaultEffect::PermissionDenied,
        ));
    }
}

#[test]
fn a_target_that_cannot_be_listed_fails_its_replication_only() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let mut z = FakeZfs::for_config(&config, 7, t0()).unwrap();

    // Both roots are listed in one call; when it fails, one by one (tank/home, then
    // backup/home), so the failure names its root.
    fail_second_root(&mut z);
    let listing = engine
        .list_each(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    assert_eq!(listing.failed.len(), 1);
    let f = &listing.failed[0];
    assert_eq!(f.root.as_str(), "backup/home");
    assert_eq!(
        f.error.failure().map(|f| f.kind),
        Some(FailureKind::PermissionDenied)
    );
    assert!(error_chain(f).starts_with("list the datasets of backup/home at local: "));

    fail_second_root(&mut z);
    let e = engine
        .list(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap_err();
    assert!(matches!(&e, JobError::List { root, .. } if root.as_str() == "backup/home"));

    // A run after a first one, within the hour: no snapshot is due, so nothing is
    // listed again after the failed listing.
    assert!(!run(&engine, &mut z, &Job::Run, t0()).unwrap().failed());
    fail_second_root(&mut z);
    let outcome = run(&engine, &mut z, &Job::Run, t0()).unwrap();
    assert!(outcome.failed());
    let [snap, repl, prune] = &outcome.phases[..] else {
        panic!("three phases: {:?}", outcome.phases);
    };
    assert!(!snap.failed() && !snap.did_something());
    let error = repl.error.as_deref().unwrap();
    assert!(
        error.starts_with("list the datasets of backup/home at local: ")
            && error.ends_with("; cannot replicate without listing both sides"),
        "{error}"
    );
    assert!(!prune.failed(), "{:?}", prune.error);
}
