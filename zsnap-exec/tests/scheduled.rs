//! The library side of `zsnap run`'s scheduled backups, of `zsnap simulate` (a
//! rehearsal) and of opening a config's backends: on the fake backend, directory
//! stores and in-memory stores.

use std::io::Read;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::backup::{StoreObject, StoreUrl};
use zsnap_core::config::{Config, Host};
use zsnap_core::duration::Span;
use zsnap_core::Location;
use zsnap_exec::backup::delete_in_order;
use zsnap_exec::connect::connect_config;
use zsnap_exec::fake::{FakeZfs, FaultOp};
use zsnap_exec::job::{Engine, Job, PhaseKind, Reporters, Source};
use zsnap_exec::rehearsal::{fresh_pool, rehearse, RehearsalError};
use zsnap_exec::scheduled::{run_scheduled, run_with_backups, ScheduledError};
use zsnap_exec::store::{
    init_store, read_catalog, BackupStore, DirStore, OpenSpecError, OpenStoreProblem, S3Settings,
    StoreError, StoreOp, Upload,
};
use zsnap_exec::{NoObserver, OneBackend};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

const POLICY: &str = r#"
[policies.p]
snapshot = { hourly = "hourly" }
keep_last = 3

[[datasets]]
root = "tank/home"
policy = "p"
"#;

/// A directory store below `dir`, initialised when `init`.
fn dir_store(dir: &std::path::Path, name: &str, init: bool) -> StoreUrl {
    let url: StoreUrl = format!("dir:{}", dir.join(name).display()).parse().unwrap();
    if init {
        init_store(&url, &S3Settings::new(), t0()).unwrap();
    }
    url
}

fn backups(entries: &[(&str, &StoreUrl)]) -> String {
    let mut s = POLICY.to_owned();
    for (name, url) in entries {
        s.push_str(&format!(
            "\n[backups.{name}]\nsource = \"tank/home\"\nto = \"{url}\"\nevery = \"1d\"\n"
        ));
    }
    s
}

#[test]
fn entries_sharing_a_source_list_it_once_and_a_given_listing_is_not_listed_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir_store(dir.path(), "a", true);
    let b = dir_store(dir.path(), "b", true);
    let config = Config::from_toml(&backups(&[("a", &a), ("b", &b)]), "c.toml").unwrap();
    let mut z = fresh_pool(&config, t0()).unwrap();

    // Dry runs: each due backup lists its dataset once to plan it.
    let before = z.calls(FaultOp::List);
    let own = run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        true,
        None,
        &mut |_| {},
    );
    let own_lists = z.calls(FaultOp::List) - before;
    assert!(own.ok(), "{own:?}");
    assert_eq!(own.stores.len(), 2);
    for st in &own.stores {
        assert_eq!(st.backups.len(), 1, "{st:?}");
        assert_eq!(st.backups[0].dataset.to_string(), "tank/home");
    }

    let listed = Engine::new(&config)
        .list(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    let before = z.calls(FaultOp::List);
    let given = run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        true,
        Some(&listed),
        &mut |_| {},
    );
    let given_lists = z.calls(FaultOp::List) - before;
    assert!(given.ok(), "{given:?}");
    assert_eq!(given_lists, 2, "one planning listing per backup");
    assert_eq!(own_lists, given_lists + 1, "the shared source listed once");
}

#[test]
fn a_due_backup_is_made_logged_and_then_not_due() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir_store(dir.path(), "a", true);
    let config = Config::from_toml(&backups(&[("a", &a)]), "c.toml").unwrap();
    let mut z = fresh_pool(&config, t0()).unwrap();
    let mut phases = Vec::new();
    let done = run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        false,
        None,
        &mut |p| phases.push(p.phase.clone()),
    );
    assert!(done.ok(), "{done:?}");
    assert!(done.did_something());
    let r = &done.stores[0].backups[0];
    assert!(r.ok && r.stream.is_some(), "{r:?}");
    // The snapshot's plan, then the send's, each reported as a backup phase.
    assert_eq!(phases.len(), 2);
    assert!(phases
        .iter()
        .all(|p| matches!(p, PhaseKind::Backup { store } if *store == a.to_string())));
    let store = DirStore::open(&a).unwrap();
    let (_, catalog) = read_catalog(&store).unwrap();
    assert_eq!(catalog.datasets.len(), 1);

    let again = run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        false,
        None,
        &mut |_| {},
    );
    assert!(again.ok());
    assert!(again.stores[0].backups.is_empty(), "{again:?}");
    assert!(!again.did_something());
}

#[test]
fn a_store_that_cannot_be_opened_fails_only_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir_store(dir.path(), "a", false);
    let b = dir_store(dir.path(), "b", true);
    let config = Config::from_toml(&backups(&[("a", &a), ("b", &b)]), "c.toml").unwrap();
    let mut z = fresh_pool(&config, t0()).unwrap();
    let done = run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        true,
        None,
        &mut |_| {},
    );
    assert!(!done.ok());
    let err = done.stores[0].error.as_ref().expect("store a failed");
    assert!(
        matches!(err, ScheduledError::Open(OpenSpecError::Open(e))
            if matches!(e.problem, OpenStoreProblem::NotInitialised { .. })),
        "{err:?}"
    );
    assert!(done.stores[1].error.is_none());
    assert_eq!(done.stores[1].backups.len(), 1);
    // The JSON renders the error with its causes.
    let json = serde_json::to_value(&done).unwrap();
    let text = json["stores"][0]["error"].as_str().unwrap();
    assert!(text.contains("not an initialised zsnap store"), "{text}");
}

/// A store whose deletes of one key fail.
struct FailingDelete {
    inner: DirStore,
    key: String,
}

impl BackupStore for FailingDelete {
    fn url(&self) -> &StoreUrl {
        self.inner.url()
    }
    fn list(&self) -> Result<Vec<StoreObject>, StoreError> {
        self.inner.list()
    }
    fn get(&self, key: &str, max: usize) -> Result<Vec<u8>, StoreError> {
        self.inner.get(key, max)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes)
    }
    fn upload(&self, key: &str) -> Result<Box<dyn Upload + '_>, StoreError> {
        self.inner.upload(key)
    }
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        self.inner.open(key)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        if key == self.key {
            return Err(StoreError::from_io(
                self.url(),
                StoreOp::Delete,
                Some(key),
                std::io::Error::other("injected"),
            ));
        }
        self.inner.delete(key)
    }
}

#[test]
fn deletions_stop_at_the_first_failure_and_say_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir_store(dir.path(), "a", true);
    let config = Config::from_toml(&backups(&[("a", &a)]), "c.toml").unwrap();
    let mut z = fresh_pool(&config, t0()).unwrap();
    assert!(run_scheduled(
        &config,
        &mut OneBackend(&mut z),
        t0(),
        false,
        None,
        &mut |_| {}
    )
    .ok());
    let inner = DirStore::open(&a).unwrap();
    let (_, catalog) = read_catalog(&inner).unwrap();
    let entry = &catalog.datasets.values().next().unwrap().entries[0];
    let plan = catalog.plan_delete(&entry.id, false).unwrap();
    assert_eq!(plan.deletions.len(), 2, "{plan:?}");
    let failing = plan.deletions[1].key.clone();
    let store = FailingDelete {
        inner,
        key: failing.clone(),
    };
    let done = delete_in_order(&store, &plan.deletions, t0());
    assert_eq!(done.deleted(), vec![plan.deletions[0].key.clone()]);
    assert_eq!(done.tried.len(), 2);
    assert_eq!(done.tried[0].reason, plan.deletions[0].reason);
    assert!(done.tried[1]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("injected")));
    let e = done.error.expect("the second deletion failed");
    assert_eq!(e.key, failing);
    assert!(
        e.to_string().contains("the next prune finishes them"),
        "{e}"
    );
}

/// Rehearsed backups live in an in-memory object store: only with the feature `s3`.
#[cfg(feature = "s3")]
#[test]
fn a_rehearsal_runs_every_step_backs_up_on_schedule_and_repeats() {
    let config = Config::from_toml(
        &format!(
            "{POLICY}\n[backups.offsite]\nsource = \"tank/home\"\nto = \"s3://bucket/host\"\nevery = \"1d\"\n"
        ),
        "c.toml",
    )
    .unwrap();
    let step = Span::from_secs(3600);
    let midnight = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    let r = rehearse(&config, midnight, 5, step).unwrap();
    assert_eq!(r.runs, 5 * 24);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.timeline.len(), 5);
    assert_eq!(r.timeline.iter().map(|p| p.taken).sum::<usize>(), 5 * 24);
    let home = r
        .datasets
        .iter()
        .find(|d| d.dataset == "tank/home")
        .unwrap();
    // keep_last = 3 of the hourly snapshots, and the backups' own snapshots.
    let hourly = home.labels.iter().find(|l| l.label == "hourly").unwrap();
    assert_eq!(hourly.count, 3);
    assert_eq!(r.backups.len(), 1);
    assert_eq!(r.backups[0].taken, 5);
    assert_eq!(r.backups[0].backups, 5);
    // The same config and start give the same rehearsal.
    let again = rehearse(&config, midnight, 5, step).unwrap();
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        serde_json::to_value(&again).unwrap()
    );
}

/// Without the feature `s3` there is no in-memory store: a rehearsal of backups is
/// refused, saying so, rather than run without them.
#[cfg(not(feature = "s3"))]
#[test]
fn a_rehearsal_of_backups_needs_the_in_memory_store() {
    let config = Config::from_toml(
        &format!(
            "{POLICY}\n[backups.offsite]\nsource = \"tank/home\"\nto = \"s3://bucket/host\"\n"
        ),
        "c.toml",
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
    let e = rehearse(&config, start, 1, Span::from_secs(3600)).unwrap_err();
    assert!(matches!(e, RehearsalError::NoMemoryStore), "{e:?}");
}

#[test]
fn a_rehearsal_past_the_calendar_is_refused() {
    let config = Config::from_toml(POLICY, "c.toml").unwrap();
    let start = DateTime::<Utc>::MAX_UTC - TimeDelta::days(1);
    let e = rehearse(&config, start, 2, Span::from_secs(3600)).unwrap_err();
    assert!(
        matches!(e, RehearsalError::Calendar { days: 2, .. }),
        "{e:?}"
    );
}

#[test]
fn a_config_s_backends_are_one_per_location() {
    let config = Config::from_toml(
        &format!(
            "{POLICY}\n[targets.nas]\nsource = \"tank/home\"\nto = \"ssh://backup@nas.example:22/backup/home\"\npolicy = \"p\"\n"
        ),
        "c.toml",
    )
    .unwrap();
    let map = connect_config(&config, &Host::Local).unwrap();
    let locations: Vec<&Location> = map.keys().collect();
    assert_eq!(locations.len(), 2, "{locations:?}");
    assert!(map.contains_key(&Location::local()));
    let alone = Config::from_toml(POLICY, "c.toml").unwrap();
    assert_eq!(connect_config(&alone, &Host::Local).unwrap().len(), 1);
}

#[test]
fn a_fresh_pool_has_the_same_guids_for_the_same_config() {
    let config = Config::from_toml(POLICY, "c.toml").unwrap();
    let list = |z: &FakeZfs| z.cmd_list(&["tank/home".parse().unwrap()]).unwrap();
    let one = list(&fresh_pool(&config, t0()).unwrap());
    assert!(one.contains("tank/home"), "{one}");
    assert_eq!(one, list(&fresh_pool(&config, t0()).unwrap()));
    // Another seed gives other guids.
    let other = FakeZfs::for_config(&config, 1, t0()).unwrap();
    assert_ne!(one, list(&other));
}

#[test]
fn a_run_job_backs_up_after_its_phases_and_other_jobs_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir_store(dir.path(), "a", true);
    let config = Config::from_toml(&backups(&[("a", &a)]), "c.toml").unwrap();
    let engine = Engine::new(&config);
    let mut z = fresh_pool(&config, t0()).unwrap();
    let mut observer = NoObserver;
    let mut kinds = Vec::new();
    let mut applied = |p: &zsnap_exec::job::Phase| kinds.push(p.phase.clone());
    let mut reporters = Reporters::new(&mut observer).on_applied(&mut applied);
    let prune = run_with_backups(
        &engine,
        &Job::Prune,
        t0(),
        false,
        &mut OneBackend(&mut z),
        &mut reporters,
    )
    .unwrap();
    assert!(prune.backups.is_none());
    let run = run_with_backups(
        &engine,
        &Job::Run,
        t0(),
        false,
        &mut OneBackend(&mut z),
        &mut reporters,
    )
    .unwrap();
    assert!(!run.failed(), "{run:?}");
    assert!(run.did_something());
    let backups = run.backups.as_ref().expect("the run's backups");
    assert_eq!(backups.stores[0].backups.len(), 1);
    // The engine's phases, then the backup's plans, reach the same callback.
    let first_backup = kinds
        .iter()
        .position(|k| matches!(k, PhaseKind::Backup { .. }))
        .expect("a backup phase");
    assert!(first_backup > 0, "{kinds:?}");
    assert!(kinds[first_backup..]
        .iter()
        .all(|k| matches!(k, PhaseKind::Backup { .. })));
    // In JSON, the backups follow the outcome's fields.
    let json = serde_json::to_value(&run).unwrap();
    assert!(json["phases"].is_array() && json["backups"]["stores"].is_array());
}
