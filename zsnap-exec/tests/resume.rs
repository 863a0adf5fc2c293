//! A transfer killed midway leaves a resumable receive; the next `run` asks the source
//! what the token brings and resumes it instead of starting over. The job engine's
//! replication is the library's runner: transfers are estimated, and a token the
//! source cannot read is reported.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::{SendSpec, Step};
use zsnap_exec::apply::{Observer, OneBackend};
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::job::{Engine, Job, Outcome, Phase, PhaseKind, Reporters, Source};

const CONFIG: &str = r#"
[policies.p]
snapshot = { hourly = "hourly" }
keep_last = 5

[[datasets]]
root = "tank/home"
policy = "p"

[targets.backup]
to = "backup/home"
policy = "p"
"#;

/// A progress display (`watching`, as on a terminal: transfers are estimated and
/// their bytes counted) or none.
struct Display {
    watching: bool,
}
impl Observer for Display {
    fn wants_bytes(&self) -> bool {
        self.watching
    }
}

/// `zsnap run` on the fake at `t0` plus `h` hours.
fn run_at(engine: &Engine<'_>, z: &mut FakeZfs, t0: DateTime<Utc>, h: i64) -> Outcome {
    run_shown(engine, z, t0, h, false)
}

fn run_shown(
    engine: &Engine<'_>,
    z: &mut FakeZfs,
    t0: DateTime<Utc>,
    h: i64,
    watching: bool,
) -> Outcome {
    let now = t0 + TimeDelta::hours(h);
    z.set_now(now);
    let mut display = Display { watching };
    let mut reporters = Reporters::new(&mut display);
    engine
        .run(
            &Job::Run,
            now,
            false,
            Source::Backends(&mut OneBackend(z)),
            &mut reporters,
        )
        .unwrap()
}

fn transfers(phases: &[Phase]) -> Vec<&SendSpec> {
    phases
        .iter()
        .filter(|p| matches!(p.phase, PhaseKind::Replicate { .. }))
        .flat_map(|p| p.plan.steps.iter())
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(&t.send),
            _ => None,
        })
        .collect()
}

#[test]
fn a_killed_transfer_is_resumed_by_the_next_run() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let mut z = FakeZfs::for_config(&config, 1, t0).unwrap();
    z.set_stream_bytes(1 << 20);
    let run = |z: &mut FakeZfs, h: i64| run_at(&engine, z, t0, h);

    let first = run(&mut z, 0);
    assert!(!first.failed());
    assert!(matches!(
        transfers(&first.phases)[..],
        [SendSpec::Full { .. }]
    ));

    // The next send dies after 1000 bytes.
    let sends = z.calls(FaultOp::Send);
    z.inject(Fault::at_byte(
        FaultOp::Send,
        sends + 1,
        1000,
        FaultEffect::Killed,
    ));
    let second = run(&mut z, 1);
    assert!(second.failed(), "the transfer was killed");
    let invs = engine
        .list(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    let target = invs[&zsnap_core::Location::local()]
        .dataset(&"backup/home".parse().unwrap())
        .unwrap();
    assert!(
        target.props.receive_resume_token.is_some(),
        "a resumable receive is left"
    );

    let third = run(&mut z, 2);
    assert!(!third.failed(), "{:#?}", third.phases);
    let sent = transfers(&third.phases);
    assert!(
        matches!(sent.first(), Some(SendSpec::Resume { .. })),
        "{sent:?}"
    );
    let invs = engine
        .list(&mut Source::Backends(&mut OneBackend(&mut z)))
        .unwrap();
    let inv = &invs[&zsnap_core::Location::local()];
    let src: Vec<_> = inv
        .dataset(&"tank/home".parse().unwrap())
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.guid)
        .collect();
    let dst: Vec<_> = inv
        .dataset(&"backup/home".parse().unwrap())
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.guid)
        .collect();
    assert_eq!(dst, src, "the target caught up");
    assert!(inv
        .dataset(&"backup/home".parse().unwrap())
        .unwrap()
        .props
        .receive_resume_token
        .is_none());
}

/// The engine's replication goes through the library's runner: with a progress display
/// every transfer carries a size estimate (the display's total; without one, none is
/// made: an estimate is one more `zfs send` per transfer), and a resume token the
/// source cannot read for another reason than being stale fails the replication,
/// naming the token's dataset, instead of being dropped silently.
#[test]
fn transfers_are_estimated_and_unreadable_tokens_are_reported() {
    let config = Config::from_toml(CONFIG, "c.toml").unwrap();
    let engine = Engine::new(&config);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let mut z = FakeZfs::for_config(&config, 1, t0).unwrap();
    z.set_stream_bytes(1 << 20);
    let run = |z: &mut FakeZfs, h: i64| run_shown(&engine, z, t0, h, true);
    let first = run(&mut z, 0);
    assert!(!first.failed(), "{:#?}", first.phases);
    let estimates: Vec<Option<u64>> = first
        .phases
        .iter()
        .flat_map(|p| p.plan.steps.iter())
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(t.estimated_bytes),
            _ => None,
        })
        .collect();
    assert!(!estimates.is_empty());
    assert!(
        estimates.iter().all(|e| e.is_some_and(|n| n > 0)),
        "{estimates:?}"
    );
    // Unwatched, nothing is estimated: no `zfs send -nvP` at all.
    let mut quiet = FakeZfs::for_config(&config, 1, t0).unwrap();
    let unwatched = run_at(&engine, &mut quiet, t0, 0);
    assert!(!unwatched.failed());
    assert_eq!(quiet.calls(FaultOp::SendDry), 0);
    assert!(quiet.calls(FaultOp::Send) > 0);

    // A killed transfer leaves a token; then the source's ssh drops while the token
    // is read (the first `zfs send -nvP` of the next run: `send -nvP -t TOKEN`).
    let sends = z.calls(FaultOp::Send);
    z.inject(Fault::at_byte(
        FaultOp::Send,
        sends + 1,
        1000,
        FaultEffect::Killed,
    ));
    assert!(run(&mut z, 1).failed());
    let dry = z.calls(FaultOp::SendDry);
    z.inject(Fault::on_call(
        FaultOp::SendDry,
        dry + 1,
        FaultEffect::SshDropped,
    ));
    let third = run(&mut z, 2);
    let repl = third
        .phases
        .iter()
        .find(|p| matches!(p.phase, PhaseKind::Replicate { .. }))
        .unwrap();
    let err = repl.error.as_deref().unwrap_or_default();
    assert!(
        err.contains("resume token") && err.contains("backup/home"),
        "{:#?}",
        third.phases
    );
    assert!(
        transfers(std::slice::from_ref(repl)).is_empty(),
        "nothing is sent blindly"
    );
    // The token is still there for the next run, which resumes it.
    let fourth = run(&mut z, 3);
    assert!(!fourth.failed(), "{:#?}", fourth.phases);
    assert!(matches!(
        transfers(&fourth.phases).first(),
        Some(SendSpec::Resume { .. })
    ));
}
