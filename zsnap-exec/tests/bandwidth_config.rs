//! A target's `bandwidth` in the config paces the transfers of its replication: the
//! job engine hands the limit to the runner, whose limiter sleeps on the injected clock
//! for the bytes moved (asserted on the limiter's sleeps, not on wall time).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::Step;
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::job::{Engine, Job, Reporters, Source};
use zsnap_exec::throttle::Clock;
use zsnap_exec::{Observer, OneBackend, StepOutcome};

/// A clock that only moves when slept on, and remembers the sleeps.
#[derive(Default)]
struct Manual {
    now: Mutex<Duration>,
    sleeps: Mutex<Vec<Duration>>,
}

impl Clock for Manual {
    fn elapsed(&self) -> Duration {
        *self.now.lock().expect("not poisoned")
    }
    fn sleep(&self, d: Duration) {
        *self.now.lock().expect("not poisoned") += d;
        self.sleeps.lock().expect("not poisoned").push(d);
    }
}

/// The bytes each transfer step reported when it was done.
#[derive(Default)]
struct Moved(Vec<Option<u64>>);

impl Observer for Moved {
    fn step_finished(&mut self, _index: usize, step: &Step, outcome: &StepOutcome) {
        if let (Step::Transfer(_), StepOutcome::Done { bytes }) = (step, outcome) {
            self.0.push(*bytes);
        }
    }
}

fn config(bandwidth: &str) -> Config {
    Config::from_toml(
        &format!(
            r#"
[policies.p]
snapshot = {{ hourly = "hourly" }}
keep_last = 3

[[datasets]]
root = "tank/home"
policy = "p"

[targets.backup]
source = "tank/home"
to = "backup/home"
policy = "p"
{bandwidth}
"#
        ),
        "c.toml",
    )
    .expect("valid")
}

/// Runs `zsnap run` once; the sleeps of the clock and the bytes of each transfer.
fn run(config: &Config) -> (Vec<Duration>, Vec<Option<u64>>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let mut z = FakeZfs::for_config(config, 5, now).expect("a fake");
    z.set_stream_bytes(300_000);
    let clock = Arc::new(Manual::default());
    let engine = Engine::new(config).with_clock(clock.clone());
    let mut moved = Moved::default();
    let mut reporters = Reporters::new(&mut moved);
    let outcome = engine
        .run(
            &Job::Run,
            now,
            false,
            Source::Backends(&mut OneBackend(&mut z)),
            &mut reporters,
        )
        .expect("runs");
    assert!(!outcome.failed(), "{outcome:?}");
    let sleeps = clock.sleeps.lock().expect("not poisoned").clone();
    (sleeps, moved.0)
}

#[test]
fn a_targets_bandwidth_paces_its_transfers() {
    let rate = 64 * 1024;
    let (sleeps, moved) = run(&config("bandwidth = \"64KiB/s\""));
    assert_eq!(moved.len(), 1, "one full transfer");
    let total = moved[0].expect("counted: the bytes passed through the limiter");
    assert!(total >= 300_000, "{total}");
    let slept: Duration = sleeps.iter().sum();
    // A quarter second of burst, then the rate: the sleeps are the transfer's time.
    let at_rate = Duration::from_secs_f64(total as f64 / rate as f64);
    let burst = Duration::from_millis(250);
    assert!(
        slept <= at_rate && slept + burst + Duration::from_millis(1) >= at_rate,
        "slept {slept:?} for {total} bytes at {rate} B/s ({at_rate:?})"
    );
    // Reads of an eighth of a second of bytes each.
    assert!(sleeps.len() >= 8, "{} sleeps", sleeps.len());
}

#[test]
fn without_bandwidth_nothing_waits() {
    let (sleeps, moved) = run(&config(""));
    assert_eq!(moved.len(), 1);
    assert!(sleeps.is_empty(), "{sleeps:?}");
}
