//! Running plans: order, progress events, what stops a run and what does not, the
//! journal, and the fake's state file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use zsnap_core::{
    DatasetName, DestroyStep, Guid, HoldStep, Location, Plan, SendSpec, ShortName, SnapshotRef,
    SnapshotStep, Step, TransferStep,
};
use zsnap_exec::apply::{apply, NoObserver, Observer, OneBackend, StepError, StepOutcome};
use zsnap_exec::failure::FailureKind;
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::journal::{unfinished, Journal, Record};
use zsnap_exec::ZfsBackend;

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid")
}

fn sn(s: &str) -> ShortName {
    s.parse().expect("valid")
}

fn fake() -> FakeZfs {
    let mut z = FakeZfs::new(
        5,
        Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
            .single()
            .expect("valid"),
    );
    z.set_stream_bytes(4096);
    z.add_pool("src").expect("pool");
    z.add_pool("dst").expect("pool");
    z.create(&ds("src/a"), false).expect("created");
    for n in ["s1", "s2", "s3"] {
        z.snapshot(&[ds("src/a").snapshot(&sn(n))], &BTreeMap::new())
            .expect("created");
    }
    z
}

fn refs(z: &FakeZfs, names: &[&str]) -> Vec<SnapshotRef> {
    let inv = z.list(&[ds("src/a")]).expect("listed");
    names
        .iter()
        .map(|n| {
            let s = inv.snapshot(&ds("src/a").snapshot(&sn(n))).expect("exists");
            SnapshotRef::new(sn(n), s.guid)
        })
        .collect()
}

fn here() -> Location {
    Location::local()
}

fn full(z: &FakeZfs, name: &str) -> Step {
    let r = refs(z, &[name]).remove(0);
    Step::Transfer(TransferStep::new(
        here(),
        here(),
        ds("src/a"),
        ds("dst/a"),
        SendSpec::Full { snapshot: r },
        "replicate",
    ))
}

#[derive(Default)]
struct Events(Vec<String>);

impl Observer for Events {
    fn step_started(&mut self, index: usize, _step: &Step) {
        self.0.push(format!("start {index}"));
    }
    fn transfer_progress(&mut self, index: usize, bytes: u64) {
        if !self
            .0
            .last()
            .is_some_and(|l| l.starts_with(&format!("bytes {index}")))
        {
            self.0.push(format!("bytes {index}"));
        }
        assert!(bytes > 0);
    }
    fn step_finished(&mut self, index: usize, _step: &Step, outcome: &StepOutcome) {
        self.0.push(format!("end {index} {}", outcome.word()));
    }
    fn wants_bytes(&self) -> bool {
        true
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_held_member_does_not_stop_the_run_a_failed_transfer_does() {
    let mut z = fake();
    z.hold(&ds("src/a").snapshot(&sn("s2")), "keep")
        .expect("held");
    let mut plan = Plan::new(z.now());
    plan.steps.push(full(&z, "s3"));
    plan.steps.push(Step::Destroy(DestroyStep::new(
        here(),
        ds("src/a"),
        refs(&z, &["s1", "s2"]),
        "prune",
    )));
    // A second full send into the now existing target: refused, and the run stops.
    plan.steps.push(full(&z, "s3"));
    plan.steps.push(Step::Release(HoldStep::new(
        here(),
        ds("src/a").snapshot(&sn("s2")),
        Guid(0),
        "keep",
        "release",
    )));
    let mut events = Events::default();
    let out = Shared::default();
    let mut journal = Journal::to_writer(Box::new(out.clone()));
    let report = apply(
        &plan,
        &mut OneBackend(&mut z),
        &mut events,
        Some(&mut journal),
    );
    let words: Vec<&str> = report.steps.iter().map(|s| s.outcome.word()).collect();
    assert_eq!(words, ["done", "partial", "failed", "skipped"]);
    assert_eq!(
        events.0,
        [
            "start 0",
            "bytes 0",
            "end 0 done",
            "start 1",
            "end 1 partial",
            "start 2",
            "bytes 2",
            "end 2 failed",
            "end 3 skipped"
        ]
    );
    match &report.steps[1].outcome {
        StepOutcome::Partial { report } => {
            assert_eq!(report.destroyed, [sn("s1")]);
            assert_eq!(report.refused[0].failure.kind, FailureKind::Held);
        }
        other => panic!("{other:?}"),
    }
    match &report.steps[2].outcome {
        StepOutcome::Failed { error, stopped_run } => {
            assert!(*stopped_run);
            assert_eq!(
                error.failure().map(|f| f.kind),
                Some(FailureKind::AlreadyExists),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!report.is_success());
    // The journal: a start and an end for every step that ran, an end for the skipped.
    let text = String::from_utf8(out.0.lock().expect("not poisoned").clone()).expect("utf-8");
    let records: Vec<Record> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect();
    let kinds: Vec<String> = records
        .iter()
        .map(|r| match r {
            Record::RunStarted { steps, .. } => format!("run {steps}"),
            Record::StepStarted { index, .. } => format!("start {index}"),
            Record::StepFinished { index, outcome, .. } => format!("end {index} {outcome}"),
            Record::RunFinished {
                done,
                failed,
                skipped,
                ..
            } => format!("done {done} {failed} {skipped}"),
            _ => "?".to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run 4",
            "start 0",
            "end 0 done",
            "start 1",
            "end 1 partial",
            "start 2",
            "end 2 failed",
            "end 3 skipped",
            "done 2 1 1"
        ]
    );
    assert!(unfinished(&records).is_empty());
    let failed = records.iter().find_map(|r| match r {
        Record::StepFinished {
            error: Some(e),
            kind,
            ..
        } => Some((e.clone(), *kind)),
        _ => None,
    });
    let (error, kind) = failed.expect("the failure is journaled");
    assert_eq!(kind, Some(FailureKind::AlreadyExists));
    assert!(
        error.contains("must specify -F"),
        "the stderr is in the journal: {error}"
    );
}

#[test]
fn contained_failures_let_the_run_go_on() {
    let mut z = fake();
    z.inject(Fault::on_call(
        FaultOp::Destroy,
        1,
        FaultEffect::PermissionDenied,
    ));
    let mut plan = Plan::new(z.now());
    plan.steps.push(Step::Destroy(DestroyStep::new(
        here(),
        ds("src/a"),
        refs(&z, &["s1"]),
        "prune",
    )));
    plan.steps.push(Step::Snapshot(SnapshotStep::new(
        here(),
        vec![ds("src/a").snapshot(&sn("s4"))],
        BTreeMap::new(),
        "due",
    )));
    let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
    let words: Vec<&str> = report.steps.iter().map(|s| s.outcome.word()).collect();
    assert_eq!(words, ["failed", "done"]);
    assert!(matches!(
        report.steps[0].outcome,
        StepOutcome::Failed {
            stopped_run: false,
            ..
        }
    ));
}

#[test]
fn a_missing_backend_is_a_failed_step() {
    let mut z = fake();
    let mut plan = Plan::new(z.now());
    plan.steps.push(Step::Snapshot(SnapshotStep::new(
        Location("elsewhere".to_owned()),
        vec![ds("src/a").snapshot(&sn("x"))],
        BTreeMap::new(),
        "due",
    )));
    let mut map: BTreeMap<Location, &mut dyn ZfsBackend> = BTreeMap::new();
    map.insert(here(), &mut z);
    let report = apply(&plan, &mut map, &mut NoObserver, None);
    assert!(matches!(
        &report.steps[0].outcome,
        StepOutcome::Failed {
            error: StepError::NoBackend { .. },
            ..
        }
    ));
    insta::assert_snapshot!(
        report.failures().next().expect("one").1.to_string(),
        @"run a step at location elsewhere: no backend for it"
    );
}

#[test]
fn an_interrupted_run_is_explained_by_its_journal() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("journal.jsonl");
    let mut z = fake();
    let mut plan = Plan::new(z.now());
    plan.steps.push(Step::Snapshot(SnapshotStep::new(
        here(),
        vec![ds("src/a").snapshot(&sn("x"))],
        BTreeMap::new(),
        "due",
    )));
    let mut journal = Journal::open(&path).expect("opened");
    apply(
        &plan,
        &mut OneBackend(&mut z),
        &mut NoObserver,
        Some(&mut journal),
    );
    drop(journal);
    // A second run dies after announcing its step, mid-write of the next record.
    let step = plan.steps[0].clone();
    let mut journal = Journal::open(&path).expect("opened");
    journal
        .write(&Record::RunStarted {
            at: z.now(),
            pid: 1,
            steps: 1,
        })
        .expect("written");
    journal
        .write(&Record::StepStarted {
            at: z.now(),
            index: 0,
            step: Box::new(step),
        })
        .expect("written");
    drop(journal);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("opened");
    std::io::Write::write_all(&mut f, b"{\"event\":\"step_fini").expect("written");
    let records = Journal::read(&path).expect("a torn last line is tolerated");
    assert_eq!(records.len(), 4 + 2, "a whole first run, then two records");
    assert_eq!(unfinished(&records), [0]);
    // A corrupt line in the middle is an error, with its line number.
    std::fs::write(&path, "{}\n{\"event\":\"run_finished\"}\n").expect("written");
    let err = Journal::read(&path).unwrap_err();
    assert!(
        err.to_string().ends_with("line 1 is not a journal record"),
        "{err}"
    );
}

#[test]
fn the_fake_state_survives_a_save_and_load() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("state.json");
    let mut z = fake();
    z.hold(&ds("src/a").snapshot(&sn("s1")), "keep")
        .expect("held");
    let next = z.calls(FaultOp::Snapshot) + 1;
    z.inject(Fault::on_call(
        FaultOp::Snapshot,
        next,
        FaultEffect::NoSpace,
    ));
    z.save(&path).expect("saved");
    let mut back = FakeZfs::load(&path).expect("loaded");
    assert_eq!(
        back.list(&[ds("src")]).expect("listed"),
        z.list(&[ds("src")]).expect("listed")
    );
    assert_eq!(back.holds(&ds("src/a").snapshot(&sn("s1"))), ["keep"]);
    // The fault and the counters came along; guids keep coming from the same sequence.
    let err = back
        .snapshot(&[ds("src/a").snapshot(&sn("s9"))], &BTreeMap::new())
        .unwrap_err();
    assert_eq!(err.failure().map(|f| f.kind), Some(FailureKind::NoSpace));
    std::fs::write(&path, "{\"format\": 99}").expect("written");
    assert!(FakeZfs::load(&path).is_err());
}

#[test]
fn releasing_a_tag_that_is_not_there_is_done() {
    let mut z = fake();
    let s1 = ds("src/a").snapshot(&sn("s1"));
    z.hold(&s1, "zsnap:backup").expect("held");
    let mut plan = Plan::new(z.now());
    for tag in ["zsnap:backup", "zsnap:backup", "zsnap:never"] {
        plan.steps.push(Step::Release(HoldStep::new(
            here(),
            s1.clone(),
            Guid(0),
            tag,
            "release",
        )));
    }
    // A missing snapshot is still a failure: it is not the same as a missing tag.
    plan.steps.push(Step::Release(HoldStep::new(
        here(),
        ds("src/a").snapshot(&sn("gone")),
        Guid(0),
        "zsnap:backup",
        "release",
    )));
    let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
    let words: Vec<&str> = report.steps.iter().map(|s| s.outcome.word()).collect();
    assert_eq!(words, ["done", "done", "done", "failed"]);
    assert!(z.holds(&s1).is_empty());
}

#[test]
fn estimates_fill_transfers_and_failures_leave_them_empty() {
    let z = fake();
    let mut plan = Plan::new(z.now());
    plan.steps.push(full(&z, "s1"));
    plan.steps.push(Step::Transfer(TransferStep::new(
        here(),
        here(),
        ds("src/a"),
        ds("dst/a"),
        SendSpec::Full {
            snapshot: SnapshotRef::new(sn("missing"), Guid(1)),
        },
        "replicate",
    )));
    let mut far = full(&z, "s2");
    if let Step::Transfer(t) = &mut far {
        t.from = Location("elsewhere".to_owned());
    }
    plan.steps.push(far);
    let mut z = z;
    let failures = zsnap_exec::estimate_transfers(&mut plan, &mut OneBackend(&mut z));
    let estimates: Vec<Option<u64>> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::Transfer(t) => t.estimated_bytes,
            _ => None,
        })
        .collect();
    // OneBackend serves every location, so only the missing snapshot fails.
    assert!(estimates[0].is_some_and(|b| b > 4096));
    assert_eq!(estimates[1], None);
    assert!(estimates[2].is_some());
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].index, 1);
    insta::assert_snapshot!(
        zsnap_exec::apply::EstimateFailureCause::to_string(&failures[0].error),
        @"estimate the size of a send from src/a"
    );
    let mut backends: BTreeMap<Location, &mut dyn ZfsBackend> = BTreeMap::new();
    backends.insert(here(), &mut z);
    let mut plan2 = Plan::new(Utc::now());
    plan2.steps.push(plan.steps[2].clone());
    if let Step::Transfer(t) = &mut plan2.steps[0] {
        t.estimated_bytes = None;
    }
    let failures = zsnap_exec::estimate_transfers(&mut plan2, &mut backends);
    insta::assert_snapshot!(failures[0].error, @"estimate a transfer from location elsewhere: no backend for it");
}
