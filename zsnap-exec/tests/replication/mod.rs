//! Replication scenarios for [`run_replication`], run on every contract [`TestBed`]
//! (the fake, the CLI backend on the `zfs` shim, real OpenZFS in the testbed): pool to
//! pool through one backend, full then incremental, a transfer killed midway and
//! resumed, a stale token given up, encrypted raw sends, a bookmark base, a diverged
//! target refused, the cursor hold moving on.
//!
//! After every run, what the target and source look like is compared with what
//! [`Plan::simulate_at`] predicted from the listings the run planned on: the same
//! datasets, snapshots (names, guids, holds) and bookmarks.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support code"
)]

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, TimeZone, Utc};
use zsnap_core::replicate::{cursor_hold_tag, Cursor, ReplicationError, ReplicationRequest};
use zsnap_core::{
    BookmarkName, DatasetMapping, DatasetName, Guid, Inventory, Location, SendBase, SendSpec,
    SnapshotName, SnapshotRef, Step,
};
use zsnap_exec::backend::{
    AbortReceiveError, BookmarkError, DestroyBookmarkError, DestroyError, DestroyReport,
    EstimateError, GetPropertyError, HoldError, HoldsError, ListError, PropertyTarget,
    ReceiveOutcome, ReceiveRequest, RecvError, ReleaseError, ResumeTokenError, SendCommand,
    SendError, SendRequest, SendStream, SetPropertyError, SnapshotError,
};
use zsnap_exec::replicate::{run_replication, ReplicateError, ReplicateOptions, ReplicationRun};
use zsnap_exec::send_info::{ResumeToken, SendEstimate};
use zsnap_exec::{NoObserver, OneBackend, ZfsBackend};

use crate::contract::{child, guid_of, snap, take, TestBed};

/// The target's name in these scenarios (it names the cursor hold `zsnap:backup`).
pub const TARGET: &str = "backup";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("valid")
}

/// A backend that cuts every send stream after `cut_after` bytes, as if the sender
/// died there: the receiver sees the stream end early, and the sender is stopped.
pub struct Interrupting<'a> {
    pub inner: &'a mut dyn ZfsBackend,
    pub cut_after: u64,
}

struct CutAfter {
    inner: Box<dyn SendStream>,
    left: u64,
}

impl Read for CutAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl SendStream for CutAfter {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }
    fn finish(self: Box<Self>) -> Result<(), SendError> {
        self.inner.finish()
    }
}

impl ZfsBackend for Interrupting<'_> {
    fn list(&self, roots: &[DatasetName]) -> Result<Inventory, ListError> {
        self.inner.list(roots)
    }
    fn snapshot(
        &mut self,
        names: &[SnapshotName],
        properties: &BTreeMap<String, String>,
    ) -> Result<(), SnapshotError> {
        self.inner.snapshot(names, properties)
    }
    fn destroy(
        &mut self,
        dataset: &DatasetName,
        snapshots: &[SnapshotRef],
    ) -> Result<DestroyReport, DestroyError> {
        self.inner.destroy(dataset, snapshots)
    }
    fn hold(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), HoldError> {
        self.inner.hold(snapshot, tag)
    }
    fn release(&mut self, snapshot: &SnapshotName, tag: &str) -> Result<(), ReleaseError> {
        self.inner.release(snapshot, tag)
    }
    fn bookmark(
        &mut self,
        snapshot: &SnapshotName,
        bookmark: &BookmarkName,
    ) -> Result<(), BookmarkError> {
        self.inner.bookmark(snapshot, bookmark)
    }
    fn destroy_bookmark(&mut self, bookmark: &BookmarkName) -> Result<(), DestroyBookmarkError> {
        self.inner.destroy_bookmark(bookmark)
    }
    fn set_property(
        &mut self,
        target: &PropertyTarget,
        name: &str,
        value: &str,
    ) -> Result<(), SetPropertyError> {
        self.inner.set_property(target, name, value)
    }
    fn property(
        &self,
        target: &PropertyTarget,
        name: &str,
    ) -> Result<Option<String>, GetPropertyError> {
        self.inner.property(target, name)
    }
    fn send(&self, request: &SendRequest) -> Result<Box<dyn SendStream>, SendError> {
        let inner = self.inner.send(request)?;
        Ok(Box::new(CutAfter {
            inner,
            left: self.cut_after,
        }))
    }
    fn receive(
        &mut self,
        request: &ReceiveRequest,
        stream: Box<dyn SendStream>,
        progress: Option<&mut dyn FnMut(u64)>,
    ) -> Result<ReceiveOutcome, RecvError> {
        self.inner.receive(request, stream, progress)
    }
    fn abort_receive(&mut self, dataset: &DatasetName) -> Result<(), AbortReceiveError> {
        self.inner.abort_receive(dataset)
    }
    fn estimate_send(&self, request: &SendRequest) -> Result<SendEstimate, EstimateError> {
        self.inner.estimate_send(request)
    }
    fn resume_token(&self, token: &str) -> Result<ResumeToken, ResumeTokenError> {
        self.inner.resume_token(token)
    }
    fn holds(&self, snapshots: &[SnapshotName]) -> Result<Vec<(SnapshotName, String)>, HoldsError> {
        self.inner.holds(snapshots)
    }

    fn pools(
        &self,
        pools: &[DatasetName],
    ) -> Result<Vec<zsnap_core::zpool::PoolHealth>, zsnap_exec::backend::PoolsError> {
        self.inner.pools(pools)
    }
}

/// What a scenario replicates: `source` to `target`, both at one location.
pub struct Setup {
    pub mapping: DatasetMapping,
    pub cursor: Cursor,
    /// Resume guids the caller claims to know (skips decoding those tokens).
    pub known_resume: BTreeMap<DatasetName, Guid>,
}

impl Setup {
    pub fn new(source: &DatasetName, target: &DatasetName) -> Self {
        Setup {
            mapping: DatasetMapping::new(source.clone(), target.clone()),
            cursor: Cursor::Hold,
            known_resume: BTreeMap::new(),
        }
    }

    pub fn recursive(source: &DatasetName, target: &DatasetName) -> Self {
        Setup {
            mapping: DatasetMapping::recursive(source.clone(), target.clone(), Vec::new()),
            ..Setup::new(source, target)
        }
    }
}

/// Runs one replication through `backend` (cutting streams after `cut` bytes when
/// given).
#[expect(
    clippy::result_large_err,
    reason = "the library's own error, returned as it is"
)]
pub fn replicate_with(
    backend: &mut dyn ZfsBackend,
    setup: &Setup,
    cut: Option<u64>,
) -> Result<ReplicationRun, ReplicateError> {
    let empty = Inventory::new();
    let here = Location::local();
    let mut template = ReplicationRequest::new(
        here.clone(),
        &empty,
        here,
        TARGET,
        &empty,
        vec![setup.mapping.clone()],
    );
    template.options.cursor = setup.cursor;
    template.resume_guids = setup.known_resume.clone();
    let options = ReplicateOptions::default();
    match cut {
        Some(cut_after) => {
            let mut cutting = Interrupting {
                inner: backend,
                cut_after,
            };
            run_replication(
                &mut OneBackend(&mut cutting),
                &template,
                now(),
                &options,
                &mut NoObserver,
                None,
            )
        }
        // A progress display: transfers are estimated and their bytes counted.
        None => run_replication(
            &mut OneBackend(backend),
            &template,
            now(),
            &options,
            &mut Watching,
            None,
        ),
    }
}

/// An observer that shows progress, as a terminal does.
struct Watching;

impl zsnap_exec::apply::Observer for Watching {
    fn wants_bytes(&self) -> bool {
        true
    }
}

/// One dataset's state as compared: snapshots (name, guid, holds) and bookmarks (name,
/// guid), and whether it has a resume token.
pub type Shape = BTreeMap<String, (Vec<(String, u64, u64)>, Vec<(String, u64)>, bool)>;

pub fn shape(inv: &Inventory, roots: &[DatasetName]) -> Shape {
    let mut out = Shape::new();
    for root in roots {
        for d in inv.subtree(root) {
            out.insert(
                d.name.to_string(),
                (
                    d.snapshots
                        .iter()
                        .map(|s| (s.name.to_string(), s.guid.0, s.userrefs))
                        .collect(),
                    d.bookmarks
                        .iter()
                        .map(|b| (b.name.to_string(), b.guid.0))
                        .collect(),
                    d.props.receive_resume_token.is_some(),
                ),
            );
        }
    }
    out
}

/// Lists `roots` as they are now (missing roots are left out).
pub fn actual(bed: &mut dyn TestBed, roots: &[DatasetName]) -> Inventory {
    let mut inv = Inventory::new();
    for r in roots {
        if let Ok(part) = bed.backend().list(std::slice::from_ref(r)) {
            for (_, d) in part.datasets {
                inv.insert(d);
            }
        }
    }
    inv
}

/// The last round of `run` succeeded, and the source and target roots now look
/// exactly as its plan's simulation predicted.
pub fn check_converged(bed: &mut dyn TestBed, run: &ReplicationRun, roots: &[DatasetName]) {
    let round = run.last();
    assert!(
        round.report.is_success(),
        "failures: {:?}",
        round.report.failures().collect::<Vec<_>>()
    );
    check_prediction(bed, run, roots);
}

/// The roots look exactly as the last round's simulation predicted.
pub fn check_prediction(bed: &mut dyn TestBed, run: &ReplicationRun, roots: &[DatasetName]) {
    let round = run.last();
    let predicted = round
        .plan
        .simulate_at(&round.inventories)
        .expect("the applied plan simulates");
    let predicted = &predicted[&Location::local()];
    let now = actual(bed, roots);
    assert_eq!(
        shape(&now, roots),
        shape(predicted, roots),
        "actual (left) vs predicted (right)"
    );
}

/// Replicates and checks convergence; returns the run.
pub fn replicate(bed: &mut dyn TestBed, setup: &Setup) -> ReplicationRun {
    let run = replicate_with(bed.backend(), setup, None).expect("planned");
    let roots = [
        setup.mapping.source_root.clone(),
        setup.mapping.target_root.clone(),
    ];
    check_converged(bed, &run, &roots);
    run
}

fn snapshots(inv: &Inventory, d: &DatasetName) -> Vec<(String, Guid)> {
    inv.dataset(d)
        .map(|d| {
            d.snapshots
                .iter()
                .map(|s| (s.name.to_string(), s.guid))
                .collect()
        })
        .unwrap_or_default()
}

fn userrefs(bed: &mut dyn TestBed, s: &SnapshotName) -> u64 {
    actual(bed, &[s.dataset().clone()])
        .snapshot(s)
        .unwrap_or_else(|| panic!("{s} exists"))
        .userrefs
}

fn transfers(run: &ReplicationRun) -> Vec<&zsnap_core::TransferStep> {
    run.rounds
        .iter()
        .flat_map(|r| r.plan.steps.iter())
        .filter_map(|s| match s {
            Step::Transfer(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn token_of(bed: &mut dyn TestBed, d: &DatasetName) -> Option<String> {
    actual(bed, std::slice::from_ref(d))
        .dataset(d)
        .and_then(|d| d.props.receive_resume_token.clone())
}

// ---- the scenarios --------------------------------------------------------------------

/// Full, then one `-I` range, then nothing; the cursor hold moves to the newest
/// snapshot and the old one is released; a child dataset follows its parent.
pub fn full_then_incremental(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let c = child(&a, "c");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.create(&c, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, &[s1.clone(), snap(&c, "s1")]);
    let setup = Setup::recursive(&a, &t);

    let run = replicate(bed, &setup);
    let kinds: Vec<&str> = transfers(&run)
        .iter()
        .map(|t| match t.send {
            SendSpec::Full { .. } => "full",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["full", "full"], "parent and child");
    assert!(
        transfers(&run).iter().all(|t| t.estimated_bytes.is_some()),
        "every transfer estimated"
    );
    let g1 = guid_of(bed, &s1);
    let inv = actual(bed, std::slice::from_ref(&t));
    assert_eq!(snapshots(&inv, &t), [("s1".to_owned(), g1)]);
    assert!(inv.dataset(&child(&t, "c")).is_some(), "the child too");
    assert_eq!(userrefs(bed, &s1), 1, "the cursor hold");
    let hold = run.rounds[0]
        .plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Hold(h) => Some(h.tag.clone()),
            _ => None,
        })
        .expect("a hold step");
    assert_eq!(hold, cursor_hold_tag(TARGET));

    bed.write(&a);
    take(bed, &[snap(&a, "s2")]);
    bed.write(&a);
    let s3 = snap(&a, "s3");
    take(bed, std::slice::from_ref(&s3));
    let run = replicate(bed, &setup);
    let sends: Vec<String> = transfers(&run)
        .iter()
        .map(|t| match &t.send {
            SendSpec::Incremental {
                base,
                snapshot,
                intermediates,
                ..
            } => format!(
                "{} {} {}",
                if *intermediates { "-I" } else { "-i" },
                base.guid() == g1,
                snapshot.name
            ),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(sends, ["-I true s3"]);
    let names: Vec<String> = snapshots(&actual(bed, std::slice::from_ref(&t)), &t)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["s1", "s2", "s3"]);
    assert_eq!(userrefs(bed, &s1), 0, "the old cursor released");
    assert_eq!(userrefs(bed, &s3), 1, "the new cursor held");

    let run = replicate(bed, &setup);
    assert!(run.last().plan.is_empty(), "{:?}", run.last().plan.steps);
}

/// A `-I` transfer killed in its second snapshot: the first is received, the second
/// leaves a resume token; the source keeps its cursor; the next run resumes from the
/// token and converges.
pub fn killed_transfer_resumes(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    let setup = Setup::new(&a, &t);
    replicate(bed, &setup);
    let g1 = guid_of(bed, &s1);

    for name in ["s2", "s3"] {
        bed.write(&a);
        bed.write(&a);
        take(bed, &[snap(&a, name)]);
    }
    let (s2, s3) = (snap(&a, "s2"), snap(&a, "s3"));
    let (g2, g3) = (guid_of(bed, &s2), guid_of(bed, &s3));
    let size = |bed: &mut dyn TestBed, from: (&str, Guid), to: &SnapshotName, g: Guid| {
        let req = SendRequest::new(
            a.clone(),
            SendSpec::Incremental {
                base: SendBase::Snapshot {
                    name: from.0.parse().expect("valid"),
                    guid: from.1,
                },
                snapshot: SnapshotRef::new(to.short().clone(), g),
                intermediates: false,
                expected: Vec::new(),
            },
            false,
        );
        bed.backend().estimate_send(&req).expect("estimated").total
    };
    let first = size(bed, ("s1", g1), &s2, g2);
    let second = size(bed, ("s2", g2), &s3, g3);
    let cut = first + second / 2;

    let run = replicate_with(bed.backend(), &setup, Some(cut)).expect("planned");
    assert!(!run.is_success(), "the transfer was cut");
    let inv = actual(bed, std::slice::from_ref(&t));
    assert_eq!(
        snapshots(&inv, &t),
        [("s1".to_owned(), g1), ("s2".to_owned(), g2)],
        "@s2 arrived whole before the cut"
    );
    let token = token_of(bed, &t).expect("the cut left a resume token");
    assert_eq!(
        bed.backend().resume_token(&token).expect("decoded").toguid,
        g3
    );
    assert_eq!(userrefs(bed, &s1), 1, "the source keeps its cursor");
    assert_eq!(
        userrefs(bed, &s2),
        1,
        "and protects @s2, the newest snapshot the target has now"
    );
    assert!(run.last().protected.is_some());

    let run = replicate(bed, &setup);
    assert_eq!(run.resume_guids.get(&t), Some(&g3));
    let first = &transfers(&run)[0];
    assert!(
        matches!(&first.send, SendSpec::Resume { snapshot: Some(s), .. } if s.guid == g3),
        "{:?}",
        first.send
    );
    assert_eq!(
        snapshots(&actual(bed, std::slice::from_ref(&t)), &t),
        [
            ("s1".to_owned(), g1),
            ("s2".to_owned(), g2),
            ("s3".to_owned(), g3)
        ]
    );
    assert_eq!(token_of(bed, &t), None);
    assert_eq!((userrefs(bed, &s1), userrefs(bed, &s3)), (0, 1));
}

/// A resume token whose snapshot is gone on the source is given up: found stale when
/// decoded, aborted, and the replication planned afresh, in one round.
pub fn stale_token_aborted(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    take(bed, &[snap(&a, "s1")]);
    let setup = Setup::new(&a, &t);
    replicate(bed, &setup);
    bed.write(&a);
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let g2 = guid_of(bed, &s2);
    let run = replicate_with(bed.backend(), &setup, Some(4096)).expect("planned");
    assert!(!run.is_success());
    assert!(token_of(bed, &t).is_some());
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(s2.short().clone(), g2)])
        .expect("destroyed");
    bed.write(&a);
    take(bed, &[snap(&a, "s3")]);

    let run = replicate(bed, &setup);
    assert_eq!(run.rounds.len(), 1, "found stale before planning");
    assert!(run.stale_tokens.contains(&t));
    assert!(matches!(run.last().plan.steps[0], Step::AbortReceive(_)));
    let names: Vec<String> = snapshots(&actual(bed, std::slice::from_ref(&t)), &t)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["s1", "s3"]);
    assert_eq!(token_of(bed, &t), None);
}

/// A resume the caller believed in fails as stale while applying: the run gives the
/// token up and plans again, once.
pub fn stale_token_replanned(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    take(bed, &[snap(&a, "s1")]);
    let mut setup = Setup::new(&a, &t);
    replicate(bed, &setup);
    bed.write(&a);
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let g2 = guid_of(bed, &s2);
    replicate_with(bed.backend(), &setup, Some(4096)).expect("planned");
    // The snapshot is replaced by another of the same name.
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(s2.short().clone(), g2)])
        .expect("destroyed");
    take(bed, std::slice::from_ref(&s2));
    let new_g2 = guid_of(bed, &s2);
    // A caller that believes the token brings the new @s2 skips decoding it.
    setup.known_resume.insert(t.clone(), new_g2);
    let run = replicate_with(bed.backend(), &setup, None).expect("planned");
    assert_eq!(run.rounds.len(), 2, "re-planned once");
    assert!(run.stale_tokens.contains(&t));
    assert!(!run.rounds[0].report.is_success());
    let roots = [a.clone(), t.clone()];
    check_converged(bed, &run, &roots);
    assert_eq!(
        snapshots(&actual(bed, std::slice::from_ref(&t)), &t)
            .into_iter()
            .map(|(n, g)| (n, g == new_g2))
            .collect::<Vec<_>>(),
        [("s1".to_owned(), false), ("s2".to_owned(), true)]
    );
}

/// An encrypted source is sent raw; the copy stays encrypted, its key not loaded.
pub fn encrypted_raw(bed: &mut dyn TestBed) {
    let e = child(&bed.src(), "enc");
    let t = child(&bed.dst(), "enc");
    bed.create(&e, true);
    bed.write(&e);
    take(bed, &[snap(&e, "e1")]);
    let setup = Setup::new(&e, &t);
    let run = replicate(bed, &setup);
    bed.write(&e);
    take(bed, &[snap(&e, "e2")]);
    let run2 = replicate(bed, &setup);
    let all: Vec<_> = transfers(&run)
        .into_iter()
        .chain(transfers(&run2))
        .collect();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|t| t.raw), "every send raw");
    let inv = actual(bed, std::slice::from_ref(&t));
    let d = inv.dataset(&t).expect("received");
    assert!(d.props.is_encrypted(), "{:?}", d.props.encryption);
    assert_eq!(d.props.keystatus.as_deref(), Some("unavailable"));
    assert_eq!(
        snapshots(&inv, &t),
        [
            ("e1".to_owned(), guid_of(bed, &snap(&e, "e1"))),
            ("e2".to_owned(), guid_of(bed, &snap(&e, "e2")))
        ]
    );
}

/// With a bookmark cursor, the source may prune the snapshot it sent last; the next
/// run sends incrementally from the bookmark.
pub fn bookmark_base(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    let mut setup = Setup::new(&a, &t);
    setup.cursor = Cursor::Bookmark;
    replicate(bed, &setup);
    let g1 = guid_of(bed, &s1);
    let marks = |bed: &mut dyn TestBed| -> Vec<u64> {
        actual(bed, std::slice::from_ref(&a))
            .dataset(&a)
            .expect("listed")
            .bookmarks
            .iter()
            .map(|b| b.guid.0)
            .collect()
    };
    assert_eq!(marks(bed), [g1.0], "the cursor bookmark");
    assert_eq!(userrefs(bed, &s1), 0, "no hold with a bookmark cursor");
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(s1.short().clone(), g1)])
        .expect("the source prunes @s1");
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let run = replicate(bed, &setup);
    let sends = transfers(&run);
    assert_eq!(sends.len(), 1);
    assert!(
        matches!(&sends[0].send, SendSpec::Incremental { base: SendBase::Bookmark { guid, .. }, .. } if *guid == g1),
        "{:?}",
        sends[0].send
    );
    let g2 = guid_of(bed, &s2);
    assert_eq!(
        snapshots(&actual(bed, std::slice::from_ref(&t)), &t),
        [("s1".to_owned(), g1), ("s2".to_owned(), g2)]
    );
    assert_eq!(
        marks(bed),
        [g2.0],
        "the cursor moved, the old one destroyed"
    );
}

/// A target with a snapshot of its own, newer than the common one: refused, naming
/// both, and nothing changes.
pub fn diverged_target_refused(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    take(bed, &[snap(&a, "s1")]);
    let setup = Setup::new(&a, &t);
    replicate(bed, &setup);
    take(bed, &[snap(&t, "local change")]);
    bed.write(&a);
    take(bed, &[snap(&a, "s2")]);
    let roots = [a.clone(), t.clone()];
    let before = shape(&actual(bed, &roots), &roots);
    let err = replicate_with(bed.backend(), &setup, None).unwrap_err();
    let ReplicateError::Plan {
        source: ReplicationError::Diverged { newer, common, .. },
        ..
    } = &err
    else {
        panic!("not a divergence: {err}");
    };
    assert_eq!(common.as_ref().map(|c| c.as_str()), Some("s1"));
    assert_eq!(
        newer.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        ["local change"]
    );
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err).expect("a cause")
    )
    .replace(a.as_str(), "<src>")
    .replace(t.as_str(), "<dst>");
    insta::allow_duplicates! {
        insta::assert_snapshot!(text, @r#"plan replication to target "backup": target <dst> has diverged from <src>: after @s1, the newest snapshot they have in common, the target has 1 snapshot the source does not: @local change (allow rollback for target "backup" to destroy it)"#);
    }
    assert_eq!(
        shape(&actual(bed, &roots), &roots),
        before,
        "nothing changed"
    );
}

/// Runs one scenario on a bed from `factory` (skipped when it gives none).
pub fn run(factory: fn(&str) -> Option<Box<dyn TestBed>>, name: &str, f: fn(&mut dyn TestBed)) {
    if let Some(mut bed) = factory(name) {
        f(&mut *bed);
    }
}

/// Expands to one `#[test]` per scenario, each with a fresh bed from `$factory`.
#[macro_export]
macro_rules! replication_scenarios {
    ($factory:expr) => {
        $crate::replication_scenarios!(@each $factory,
            full_then_incremental,
            killed_transfer_resumes,
            stale_token_aborted,
            stale_token_replanned,
            encrypted_raw,
            bookmark_base,
            diverged_target_refused,
        );
    };
    (@each $factory:expr, $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::replication::run($factory, stringify!($name), $crate::replication::$name);
            }
        )*
    };
}
