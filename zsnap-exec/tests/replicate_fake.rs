//! The replication scenarios on the fake (in memory) and on the CLI backend driving the
//! `zfs` shim, plus what only a fake can show: estimates against the exact stream, a
//! bandwidth limit's sleeps on an injected clock.

#[macro_use]
mod contract;
#[macro_use]
mod replication;

mod on_fake {
    use crate::contract::beds::FakeBed;
    replication_scenarios!(FakeBed::boxed);
}

mod on_shim {
    use crate::contract::beds::ShimBed;
    replication_scenarios!(ShimBed::local);
}

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::replicate::ReplicationRequest;
use zsnap_core::{
    DatasetMapping, DatasetName, Inventory, Location, SnapshotName, SnapshotRef, Step,
};
use zsnap_exec::apply::{ApplyOptions, Observer, StepOutcome};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::replicate::{run_replication, ReplicateError, ReplicateOptions};
use zsnap_exec::throttle::Clock;
use zsnap_exec::{NoObserver, OneBackend, ZfsBackend};

use replication::{replicate_with, shape, Setup};

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid")
}

fn fake() -> FakeZfs {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("valid");
    let mut z = FakeZfs::new(9, now);
    z.add_pool("src").expect("new pool");
    z.add_pool("dst").expect("new pool");
    z.create(&ds("src/a"), false).expect("created");
    z
}

fn take(z: &mut FakeZfs, name: &str) {
    z.write(&ds("src/a")).expect("written");
    let s: SnapshotName = format!("src/a@{name}").parse().expect("valid");
    z.snapshot(&[s], &BTreeMap::new()).expect("taken");
}

fn template(empty: &Inventory) -> ReplicationRequest<'_> {
    ReplicationRequest::new(
        Location::local(),
        empty,
        Location::local(),
        "backup",
        empty,
        vec![DatasetMapping::new(ds("src/a"), ds("dst/a"))],
    )
}

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

/// Records the estimate each transfer started with and the bytes it ended with.
#[derive(Default)]
struct Totals {
    estimates: Vec<Option<u64>>,
    last_bytes: BTreeMap<usize, u64>,
}

impl Observer for Totals {
    fn step_started(&mut self, _index: usize, step: &Step) {
        if let Step::Transfer(t) = step {
            self.estimates.push(t.estimated_bytes);
        }
    }
    fn transfer_progress(&mut self, index: usize, bytes: u64) {
        self.last_bytes.insert(index, bytes);
    }
    fn wants_bytes(&self) -> bool {
        true
    }
}

#[test]
fn progress_ends_at_the_estimate() {
    let mut z = fake();
    let now = z.now();
    z.set_stream_bytes(100_000);
    take(&mut z, "s1");
    take(&mut z, "s2");
    let empty = Inventory::new();
    let mut totals = Totals::default();
    let run = run_replication(
        &mut OneBackend(&mut z),
        &template(&empty),
        now,
        &ReplicateOptions::default(),
        &mut totals,
        None,
    )
    .expect("planned");
    assert!(run.is_success());
    let ended: Vec<Option<u64>> = totals.last_bytes.values().map(|b| Some(*b)).collect();
    assert_eq!(totals.estimates.len(), 2, "full, then incremental");
    // The fake's estimate is the exact stream size, as a bare pipeline would carry it.
    assert_eq!(totals.estimates, ended);
    assert!(totals.estimates.iter().all(|e| e.is_some_and(|b| b > 0)));

    let no_estimates = ReplicateOptions::default().with_estimate(false);
    take(&mut z, "s3");
    let run = run_replication(
        &mut OneBackend(&mut z),
        &template(&empty),
        now,
        &no_estimates,
        &mut NoObserver,
        None,
    )
    .expect("planned");
    let Step::Transfer(t) = &run.last().plan.steps[0] else {
        panic!("a transfer first");
    };
    assert_eq!(t.estimated_bytes, None);
}

#[test]
fn bandwidth_limit_paces_every_transfer() {
    let mut z = fake();
    let now = z.now();
    z.set_stream_bytes(200_000);
    take(&mut z, "s1");
    take(&mut z, "s2");
    let clock = Arc::new(Manual::default());
    let rate = 64 * 1024;
    let options = ReplicateOptions::default().with_apply(
        ApplyOptions::default()
            .with_bandwidth_limit(Some(rate))
            .with_clock(clock.clone()),
    );
    let empty = Inventory::new();
    let run = run_replication(
        &mut OneBackend(&mut z),
        &template(&empty),
        now,
        &options,
        &mut NoObserver,
        None,
    )
    .expect("planned");
    assert!(run.is_success());
    let moved: Vec<u64> = run
        .last()
        .report
        .steps
        .iter()
        .filter_map(|s| match &s.outcome {
            StepOutcome::Done { bytes: Some(b) } => Some(*b),
            _ => None,
        })
        .collect();
    assert_eq!(
        moved.len(),
        2,
        "both transfers counted (they passed through zsnap)"
    );
    let total: u64 = moved.iter().sum();
    let slept: Duration = clock.sleeps.lock().expect("not poisoned").iter().sum();
    // Each transfer starts with a quarter second of burst, then runs at the rate; the
    // clock only moves by sleeping, so the sleeps are the whole transfer time.
    let burst = Duration::from_millis(250);
    let at_rate = Duration::from_secs_f64(total as f64 / rate as f64);
    assert!(
        slept <= at_rate && slept + 2 * burst + Duration::from_millis(1) >= at_rate,
        "slept {slept:?} for {total} bytes at {rate} B/s ({at_rate:?})"
    );
    // Smooth: no sleep longer than one read's worth (an eighth of a second).
    let longest = clock
        .sleeps
        .lock()
        .expect("not poisoned")
        .iter()
        .copied()
        .max()
        .expect("it slept");
    assert!(longest <= Duration::from_millis(126), "{longest:?}");
}

#[test]
fn errors_before_anything_runs() {
    let mut z = fake();
    let now = z.now();
    take(&mut z, "s1");
    let empty = Inventory::new();
    let mut t = template(&empty);
    t.target_location = Location("offsite".to_owned());
    let mut backends: BTreeMap<Location, &mut dyn ZfsBackend> = BTreeMap::new();
    backends.insert(Location::local(), &mut z);
    let err = run_replication(
        &mut backends,
        &t,
        now,
        &ReplicateOptions::default(),
        &mut NoObserver,
        None,
    )
    .unwrap_err();
    insta::assert_snapshot!(err, @"replicate: no backend for location offsite");

    let mut t = template(&empty);
    t.mappings = vec![DatasetMapping::new(ds("src/nope"), ds("dst/nope"))];
    let err = run_replication(
        &mut OneBackend(&mut z),
        &t,
        now,
        &ReplicateOptions::default(),
        &mut NoObserver,
        None,
    )
    .unwrap_err();
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err).expect("a cause")
    );
    insta::assert_snapshot!(chain, @r#"plan replication to target "backup": source dataset src/nope is not in the source inventory"#);
    assert!(matches!(err, ReplicateError::Plan { .. }));
}

proptest! {
    /// Interrupted at any byte (of streams of about `512 × (later + 1)` bytes), once or
    /// twice, with the snapshot being resumed sometimes destroyed in between: after
    /// every run the newest snapshot the target shares with the source is still on the
    /// source and held, and the next clean run converges to exactly the source's
    /// snapshots, as predicted, leaving one cursor hold and nothing more to do.
    #[test]
    fn interrupted_runs_converge(
        first in 1usize..3,
        later in 1usize..5,
        cuts in proptest::collection::vec((0u64..=1000, any::<bool>()), 1..3),
    ) {
        let mut z = fake();
        z.set_stream_bytes(512);
        for i in 0..first {
            take(&mut z, &format!("a{i}"));
        }
        let setup = Setup::new(&ds("src/a"), &ds("dst/a"));
        prop_assert!(replicate_with(&mut z, &setup, None).expect("planned").is_success());
        for i in 0..later {
            take(&mut z, &format!("b{i}"));
        }
        let mut extra = 0;
        for (per_mille, destroy_resumed) in cuts {
            let total: u64 = (512 * (later as u64 + 1)).max(1);
            let cut = total * per_mille / 1000;
            let _ = replicate_with(&mut z, &setup, Some(cut)).expect("planned");
            let after = z.list(&[ds("src/a"), ds("dst/a")]).expect("listed");
            let src = after.dataset(&ds("src/a")).expect("source");
            let dst = after.dataset(&ds("dst/a")).expect("target");
            // The newest snapshot both have is still on the source, and held.
            let common = dst
                .snapshots
                .iter()
                .rev()
                .find_map(|t| src.snapshots.iter().find(|s| s.guid == t.guid));
            prop_assert!(common.is_some_and(|s| s.userrefs > 0), "{:?}", after);
            if destroy_resumed {
                if let Some(token) = &dst.props.receive_resume_token {
                    let t = z.resume_token(token).expect("usable");
                    let name = t.toname.short().clone();
                    let gone = z.destroy(&ds("src/a"), &[SnapshotRef::new(name, t.toguid)]).expect("destroyed");
                    prop_assert_eq!(gone.destroyed.len(), 1);
                    take(&mut z, &format!("c{extra}"));
                    extra += 1;
                }
            }
        }
        let run = replicate_with(&mut z, &setup, None).expect("planned");
        prop_assert!(run.is_success(), "{:?}", run.last().report);
        let roots = [ds("src/a"), ds("dst/a")];
        let inv = z.list(&roots).expect("listed");
        let predicted = run.last().plan.simulate_at(&run.last().inventories).expect("simulates");
        let predicted = &predicted[&Location::local()];
        prop_assert_eq!(shape(&inv, &roots), shape(predicted, &roots));
        let src = inv.dataset(&ds("src/a")).expect("source");
        let dst = inv.dataset(&ds("dst/a")).expect("target");
        let guids = |d: &zsnap_core::Dataset| d.snapshots.iter().map(|s| s.guid).collect::<Vec<_>>();
        prop_assert_eq!(guids(dst), guids(src));
        prop_assert_eq!(dst.props.receive_resume_token.as_ref(), None);
        let held: Vec<u64> = src.snapshots.iter().map(|s| s.userrefs).collect();
        let mut one_at_end = vec![0; held.len()];
        *one_at_end.last_mut().expect("snapshots") = 1;
        prop_assert_eq!(held, one_at_end);
        prop_assert!(replicate_with(&mut z, &setup, None).expect("planned").last().plan.is_empty());
    }
}
