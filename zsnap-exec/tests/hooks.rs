//! The config's hooks as real processes: their environment, exit statuses, output,
//! timeouts that kill the whole process group, holding over the snapshots, and what a
//! failure does to the phase around it (on the fake pool).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::hooks::{hook_calls, HookEvent, HookSubject};
use zsnap_core::Step;
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::hooks::{run_call, start_held, HookOutcome};
use zsnap_exec::job::{Engine, Job, Outcome, PhaseKind, Reporters, Source};
use zsnap_exec::{NoObserver, OneBackend, ZfsBackend};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap()
}

/// A config managing tank/db and tank/www hourly, plus `hooks` (TOML tables).
fn config(hooks: &str) -> Config {
    let text = format!(
        r#"
[policies.p]
snapshot = {{ hourly = "hourly" }}
keep_last = 1

[[datasets]]
root = "tank"
recursive = true
children_only = true
policy = "p"
{hooks}
"#
    );
    Config::from_toml(&text, "zsnap.toml").unwrap()
}

/// A pool with tank/db and tank/www.
fn pool(config: &Config) -> FakeZfs {
    let mut z = FakeZfs::for_config(config, 7, t0()).unwrap();
    for d in ["tank/db", "tank/www"] {
        z.create(&d.parse().unwrap(), false).unwrap();
    }
    z
}

fn run(config: &Config, z: &mut FakeZfs, job: &Job, now: DateTime<Utc>) -> Outcome {
    z.set_now(now);
    let mut observer = NoObserver;
    let mut reporters = Reporters::new(&mut observer);
    Engine::new(config)
        .run(
            job,
            now,
            false,
            Source::Backends(&mut OneBackend(z)),
            &mut reporters,
        )
        .unwrap()
}

fn snapshots_of(z: &FakeZfs, dataset: &str) -> usize {
    let inv = z.list(&["tank".parse().unwrap()]).unwrap();
    inv.dataset(&dataset.parse().unwrap())
        .map_or(0, |d| d.snapshots.len())
}

fn sh(script: &str) -> String {
    format!("run = [\"/bin/sh\", \"-c\", {}]", toml_str(script))
}

fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

fn one_call(config: &Config, event: HookEvent) -> zsnap_core::hooks::HookCall {
    let subjects = [HookSubject::new(
        "tank/db".parse().unwrap(),
        vec!["tank/db@a".to_owned()],
    )];
    let mut calls = hook_calls(&config.hooks, event, None, &subjects);
    assert_eq!(calls.len(), 1);
    calls.remove(0)
}

#[test]
fn a_call_sees_its_environment_and_its_output_is_kept() {
    let c = config(&format!(
        "[hooks.env]\nwhen = \"pre_snapshot\"\n{}\n",
        sh("echo \"$ZSNAP_HOOK $ZSNAP_EVENT $ZSNAP_DATASET $ZSNAP_SNAPSHOTS\"; echo oops >&2; exit 3")
    ));
    let run = run_call(&one_call(&c, HookEvent::PreSnapshot));
    assert_eq!(run.outcome, HookOutcome::Failed { code: Some(3) });
    assert_eq!(run.output, "env pre_snapshot tank/db tank/db@a\noops\n");
    assert_eq!(
        run.describe(),
        "hook env (pre_snapshot, tank/db) exited with status 3: oops"
    );
}

#[test]
fn a_missing_program_is_not_started() {
    let c = config("[hooks.gone]\nwhen = \"pre_snapshot\"\nrun = [\"/nonexistent/hook\"]\n");
    let run = run_call(&one_call(&c, HookEvent::PreSnapshot));
    assert!(
        matches!(run.outcome, HookOutcome::NotStarted { .. }),
        "{run:?}"
    );
}

#[test]
fn a_timeout_kills_the_hooks_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let c = config(&format!(
        "[hooks.slow]\nwhen = \"pre_snapshot\"\ntimeout = \"1s\"\n{}\n",
        sh(&format!("sleep 60 & echo $! > {}; wait", pidfile.display()))
    ));
    let started = Instant::now();
    let run = run_call(&one_call(&c, HookEvent::PreSnapshot));
    assert_eq!(run.outcome, HookOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The hook's child (`sleep 60`, in the hook's group) is gone too.
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !alive(pid)
    });
    assert!(gone, "the hook's child {pid} survived the timeout");
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_held_hook_is_ready_then_released() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let c = config(&format!(
        "[hooks.lock]\nwhen = \"pre_snapshot\"\nhold = true\ntimeout = \"10s\"\n{}\n",
        sh(&format!(
            "echo locked >> {0}; echo ready; cat > /dev/null; echo unlocked >> {0}",
            log.display()
        ))
    ));
    let held = start_held(&one_call(&c, HookEvent::PreSnapshot)).unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "locked\n");
    let run = held.release();
    assert_eq!(run.outcome, HookOutcome::Ok, "{run:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "locked\nunlocked\n");
}

#[test]
fn a_held_hook_that_never_gets_ready_times_out() {
    let c = config(&format!(
        "[hooks.lock]\nwhen = \"pre_snapshot\"\nhold = true\ntimeout = \"1s\"\n{}\n",
        sh("sleep 30")
    ));
    let run = start_held(&one_call(&c, HookEvent::PreSnapshot)).unwrap_err();
    assert_eq!(run.outcome, HookOutcome::TimedOut);
}

#[test]
fn a_failed_pre_snapshot_hook_skips_only_its_datasets_and_post_hooks_hear_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let post = dir.path().join("post");
    let c = config(&format!(
        "[hooks.db-check]\nwhen = \"pre_snapshot\"\ndatasets = [\"tank/db\"]\n{}\n\n\
         [hooks.notify]\nwhen = \"post_snapshot\"\nonce = true\n{}\n",
        sh("echo database not ready; exit 1"),
        sh(&format!(
            "echo \"$ZSNAP_STATUS $ZSNAP_DATASETS\" >> {}",
            post.display()
        ))
    ));
    let mut z = pool(&c);
    let snapshot = Job::Snapshot {
        label: None,
        expire_in: None,
    };
    let out = run(&c, &mut z, &snapshot, t0());
    assert_eq!(snapshots_of(&z, "tank/db"), 0);
    assert_eq!(snapshots_of(&z, "tank/www"), 1);
    let phase = &out.phases[0];
    assert!(matches!(phase.phase, PhaseKind::Snapshot { .. }));
    let error = phase.error.as_deref().unwrap();
    assert!(
        error.contains("hook db-check (pre_snapshot, tank/db) exited with status 1: database not ready; its datasets were left out of this phase"),
        "{error}"
    );
    assert_eq!(phase.hooks.len(), 2);
    // Only tank/www was snapshotted, and the post hook was told so.
    assert_eq!(std::fs::read_to_string(&post).unwrap(), "ok tank/www\n");
    assert!(out.failed());
}

#[test]
fn a_pre_prune_veto_keeps_its_datasets_snapshots() {
    let c = config(&format!(
        "[hooks.veto]\nwhen = \"pre_prune\"\ndatasets = [\"tank/db\"]\n{}\n",
        sh("exit 1")
    ));
    let mut z = pool(&c);
    let snapshot = Job::Snapshot {
        label: None,
        expire_in: None,
    };
    for h in 0..3 {
        run(&c, &mut z, &snapshot, t0() + chrono::TimeDelta::hours(h));
    }
    assert_eq!(snapshots_of(&z, "tank/db"), 3);
    let out = run(&c, &mut z, &Job::Prune, t0() + chrono::TimeDelta::hours(3));
    // keep_last = 1: tank/www is pruned, tank/db kept by the veto.
    assert_eq!(snapshots_of(&z, "tank/www"), 1);
    assert_eq!(snapshots_of(&z, "tank/db"), 3);
    let phase = &out.phases[0];
    assert!(!phase
        .plan
        .steps
        .iter()
        .any(|s| matches!(s, Step::Destroy(d) if d.dataset.as_str() == "tank/db")));
    assert!(phase.hooks[0].skipped);
}

#[test]
fn a_rehearsal_or_a_reporter_without_hooks_runs_none() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ran");
    let c = config(&format!(
        "[hooks.mark]\nwhen = \"pre_snapshot\"\n{}\n",
        sh(&format!("touch {}", mark.display()))
    ));
    let mut z = pool(&c);
    let mut observer = NoObserver;
    let mut reporters = Reporters::new(&mut observer).without_hooks();
    let out = Engine::new(&c)
        .run(
            &Job::Run,
            t0(),
            false,
            Source::Backends(&mut OneBackend(&mut z)),
            &mut reporters,
        )
        .unwrap();
    assert!(!out.failed());
    assert!(!Path::new(&mark).exists());
    assert_eq!(snapshots_of(&z, "tank/db"), 1);
}
