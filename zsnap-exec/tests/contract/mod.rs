//! The contract suite: one set of tests, run against every [`ZfsBackend`] through a
//! [`TestBed`] (the fake in memory, the CLI backend on the `zfs` shim locally and over a
//! stand-in ssh, and the CLI backend on real OpenZFS over ssh).
//!
//! Every test works below its own fresh roots (`src/ct-<test>-<n>` and
//! `dst/ct-<test>-<n>`), so tests on a shared real pool do not collide, and the bed
//! destroys them when dropped.
//!
//! A test file runs the suite with `contract_tests!(factory)`, where `factory` is a
//! `fn(&str) -> Option<Box<dyn TestBed>>` given the test's name (`None` skips).
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support code"
)]

pub mod beds;
pub mod real;
#[path = "../support/skip.rs"]
pub mod skip;

use std::collections::BTreeMap;
use std::io::Read;

use zsnap_core::{
    BookmarkName, DatasetName, Guid, Inventory, RecvOptions, SendBase, SendSpec, ShortName,
    SnapshotName, SnapshotRef,
};
use zsnap_exec::backend::{
    PropertyTarget, ReadStream, ReceiveRequest, SendCommand, SendError, SendRequest, SendStream,
};
use zsnap_exec::failure::FailureKind;
use zsnap_exec::fake::{Fault, FaultEffect, FaultOp};
use zsnap_exec::ZfsBackend;

/// What a contract test needs besides the backend: setup that zsnap itself never does.
pub trait TestBed {
    /// The backend under test.
    fn backend(&mut self) -> &mut dyn ZfsBackend;
    /// This test's root on pool `src` (exists, empty).
    fn src(&self) -> DatasetName;
    /// This test's root on pool `dst` (exists, empty).
    fn dst(&self) -> DatasetName;
    /// `zfs create` (encrypted: `encryption=on` with a key the bed knows).
    fn create(&mut self, name: &DatasetName, encrypted: bool);
    /// `zfs unmount` + `zfs unload-key`.
    fn unload_key(&mut self, name: &DatasetName);
    /// `zfs clone`.
    fn clone_snapshot(&mut self, snapshot: &SnapshotName, name: &DatasetName);
    /// Writes some data into a filesystem.
    fn write(&mut self, name: &DatasetName);
    /// Injects a fault; `false` when the bed cannot (real ZFS).
    fn inject(&mut self, fault: Fault) -> bool;
    /// Whether a file exists where the backend's commands run.
    fn path_exists(&mut self, path: &str) -> bool;
    /// A fresh absolute path for a marker file where the backend's commands run.
    fn marker_path(&mut self) -> String;
}

pub fn ds(s: &str) -> DatasetName {
    s.parse().expect("a valid dataset name")
}

pub fn short(s: &str) -> ShortName {
    s.parse().expect("a valid short name")
}

pub fn child(parent: &DatasetName, c: &str) -> DatasetName {
    parent.child(c).expect("a valid child name")
}

pub fn snap(d: &DatasetName, s: &str) -> SnapshotName {
    d.snapshot(&short(s))
}

pub fn list(bed: &mut dyn TestBed, root: &DatasetName) -> Inventory {
    bed.backend()
        .list(std::slice::from_ref(root))
        .expect("listing works")
}

pub fn take(bed: &mut dyn TestBed, names: &[SnapshotName]) {
    bed.backend()
        .snapshot(names, &BTreeMap::new())
        .expect("snapshots are created");
}

pub fn guid_of(bed: &mut dyn TestBed, name: &SnapshotName) -> Guid {
    list(bed, name.dataset())
        .snapshot(name)
        .unwrap_or_else(|| panic!("{name} exists"))
        .guid
}

pub fn names_of(inv: &Inventory, d: &DatasetName) -> Vec<String> {
    inv.dataset(d)
        .map(|d| d.snapshots.iter().map(|s| s.name.to_string()).collect())
        .unwrap_or_default()
}

pub fn full(s: &SnapshotName, g: Guid) -> SendRequest {
    SendRequest::new(
        s.dataset().clone(),
        SendSpec::Full {
            snapshot: SnapshotRef::new(s.short().clone(), g),
        },
        false,
    )
}

pub fn incremental(base: SendBase, s: &SnapshotName, g: Guid, intermediates: bool) -> SendRequest {
    SendRequest::new(
        s.dataset().clone(),
        SendSpec::Incremental {
            base,
            snapshot: SnapshotRef::new(s.short().clone(), g),
            intermediates,
            expected: Vec::new(),
        },
        false,
    )
}

/// A transfer failed on one side or the other (a fake sender fails at once, a process
/// only when it runs).
#[derive(Debug)]
pub enum TransferError {
    Send(SendError),
    Recv(zsnap_exec::backend::RecvError),
}

impl TransferError {
    pub fn failure(&self) -> Option<&zsnap_exec::ZfsFailure> {
        match self {
            TransferError::Send(e) => e.failure(),
            TransferError::Recv(e) => e.failure(),
        }
    }
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransferError::Send(e) => write!(f, "{e}: {:?}", e.failure()),
            TransferError::Recv(e) => write!(f, "{e}: {:?}", e.failure()),
        }
    }
}

/// Sends and receives on the same backend.
pub fn transfer(
    bed: &mut dyn TestBed,
    req: &SendRequest,
    target: &DatasetName,
) -> Result<(), TransferError> {
    let stream = bed.backend().send(req).map_err(TransferError::Send)?;
    bed.backend()
        .receive(
            &ReceiveRequest::new(target.clone(), RecvOptions::safe()),
            stream,
            None,
        )
        .map(drop)
        .map_err(TransferError::Recv)
}

/// A stream cut after `keep` of its bytes, as if the sender died there.
pub struct Cut {
    data: std::io::Cursor<Vec<u8>>,
}

impl Read for Cut {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.data.read(buf)
    }
}

impl SendStream for Cut {
    fn take_command(&mut self) -> Option<SendCommand> {
        None
    }
    fn finish(self: Box<Self>) -> Result<(), SendError> {
        Ok(())
    }
}

/// Reads a whole send stream, then keeps `num/den` of it.
pub fn cut_stream(bed: &mut dyn TestBed, req: &SendRequest, num: usize, den: usize) -> Box<Cut> {
    let mut stream = bed.backend().send(req).expect("the send starts");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("the stream reads");
    stream.finish().expect("the sender succeeds");
    assert!(
        all.len() > 64,
        "a stream of {} bytes is too short to cut",
        all.len()
    );
    all.truncate(all.len() * num / den);
    Box::new(Cut {
        data: std::io::Cursor::new(all),
    })
}

fn kind_of<E: std::fmt::Display>(r: Option<&zsnap_exec::ZfsFailure>, e: &E) -> FailureKind {
    r.unwrap_or_else(|| panic!("no classified failure in: {e}"))
        .kind
}

// ---- the tests ------------------------------------------------------------------------

pub fn listing_round_trip(bed: &mut dyn TestBed) {
    let root = bed.src();
    let a = child(&root, "a");
    let spaced = child(&a, "with space");
    bed.create(&a, false);
    bed.create(&spaced, false);
    let mut props = BTreeMap::new();
    props.insert("zsnap:managed".to_owned(), "yes".to_owned());
    props.insert(
        "zsnap:expires".to_owned(),
        "2026-12-23T15:00:00Z".to_owned(),
    );
    bed.backend()
        .snapshot(&[snap(&a, "zsnap_hourly_20261123T150000Z")], &props)
        .expect("created");
    take(bed, &[snap(&spaced, "snap with space")]);
    let inv = list(bed, &root);
    inv.validate().expect("a valid inventory");
    assert!(inv.dataset(&root).is_some());
    assert_eq!(names_of(&inv, &a), ["zsnap_hourly_20261123T150000Z"]);
    assert_eq!(names_of(&inv, &spaced), ["snap with space"]);
    let s = inv
        .snapshot(&snap(&a, "zsnap_hourly_20261123T150000Z"))
        .expect("listed");
    assert_eq!(s.managed.as_deref(), Some("yes"));
    assert_eq!(s.expires.as_deref(), Some("2026-12-23T15:00:00Z"));
    assert_ne!(s.guid, Guid(0));
    let spaced_snap = inv
        .snapshot(&snap(&spaced, "snap with space"))
        .expect("listed");
    assert_eq!(spaced_snap.managed, None);
    assert_eq!(spaced_snap.expires, None);
    // A second listing is identical, and a root lists only its subtree.
    assert_eq!(list(bed, &root), inv);
    let sub = list(bed, &spaced);
    assert_eq!(sub.datasets.keys().collect::<Vec<_>>(), [&spaced]);
    // A missing root is an error, classified.
    let err = bed.backend().list(&[child(&root, "missing")]).unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchDataset);
}

pub fn atomic_multi_snapshot(bed: &mut dyn TestBed) {
    let root = bed.src();
    let (a, b) = (child(&root, "a"), child(&root, "b"));
    bed.create(&a, false);
    bed.create(&b, false);
    take(bed, &[snap(&a, "x"), snap(&b, "x")]);
    let inv = list(bed, &root);
    let (sa, sb) = (
        inv.snapshot(&snap(&a, "x")).expect("listed"),
        inv.snapshot(&snap(&b, "x")).expect("listed"),
    );
    assert_eq!(sa.createtxg, sb.createtxg, "one call, one txg");
    assert_eq!(sa.creation, sb.creation);
    assert_ne!(sa.guid, sb.guid);
    // One name exists: nothing is created.
    let err = bed
        .backend()
        .snapshot(&[snap(&a, "y"), snap(&b, "x")], &BTreeMap::new())
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::AlreadyExists);
    let inv = list(bed, &root);
    assert_eq!(names_of(&inv, &a), ["x"], "a@y was not created: {err}");
    // Two snapshots of one dataset in one call: refused.
    assert!(bed
        .backend()
        .snapshot(&[snap(&a, "p"), snap(&a, "q")], &BTreeMap::new())
        .is_err());
    assert_eq!(names_of(&list(bed, &a), &a), ["x"]);
    // A later call gets a later txg.
    take(bed, &[snap(&a, "later")]);
    let inv = list(bed, &a);
    let d = inv.dataset(&a).expect("listed");
    assert!(d.snapshots[1].createtxg > d.snapshots[0].createtxg);
}

pub fn destroy_batch_with_one_held_member(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    for n in ["s1", "s2", "s3", "s4", "s5"] {
        take(bed, &[snap(&a, n)]);
    }
    bed.backend().hold(&snap(&a, "s2"), "keep").expect("held");
    let inv = list(bed, &a);
    let refs: Vec<SnapshotRef> = inv.dataset(&a).expect("listed").snapshots[..4]
        .iter()
        .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
        .collect();
    // s4 is planned with a guid it no longer has: it must be skipped, not destroyed.
    let mut refs = refs;
    refs[3] = SnapshotRef::new(short("s4"), Guid(refs[3].guid.0 ^ 1));
    let report = bed.backend().destroy(&a, &refs).expect("the batch runs");
    let destroyed: Vec<&str> = report.destroyed.iter().map(ShortName::as_str).collect();
    assert_eq!(destroyed, ["s1", "s3"]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].name.as_str(), "s2");
    assert_eq!(
        report.refused[0].failure.kind,
        FailureKind::Held,
        "{}",
        report.refused[0].failure
    );
    assert!(
        !report.refused[0].failure.stderr.is_empty(),
        "the stderr is kept"
    );
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].name.as_str(), "s4");
    assert_eq!(names_of(&list(bed, &a), &a), ["s2", "s4", "s5"]);
    bed.backend()
        .release(&snap(&a, "s2"), "keep")
        .expect("released");
}

pub fn destroy_refuses_cloned_members(bed: &mut dyn TestBed) {
    let root = bed.src();
    let a = child(&root, "a");
    bed.create(&a, false);
    take(bed, &[snap(&a, "s1")]);
    take(bed, &[snap(&a, "s2")]);
    bed.clone_snapshot(&snap(&a, "s1"), &child(&root, "c"));
    let inv = list(bed, &root);
    assert_eq!(
        inv.snapshot(&snap(&a, "s1")).expect("listed").clones,
        [child(&root, "c")]
    );
    let refs: Vec<SnapshotRef> = inv
        .dataset(&a)
        .expect("listed")
        .snapshots
        .iter()
        .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
        .collect();
    let report = bed.backend().destroy(&a, &refs).expect("the batch runs");
    assert_eq!(report.destroyed, [short("s2")]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].failure.kind, FailureKind::HasClones);
}

pub fn holds(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    let s = snap(&a, "s");
    take(bed, std::slice::from_ref(&s));
    let hostile = "-r; touch x $(id) `id` 'q' \"dq\"";
    for tag in ["zsnap", "keep", hostile] {
        bed.backend().hold(&s, tag).expect("held");
    }
    let err = bed.backend().hold(&s, "zsnap").unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::AlreadyExists);
    assert_eq!(list(bed, &a).snapshot(&s).expect("listed").userrefs, 3);
    let spaced = snap(&a, "s 2");
    take(bed, std::slice::from_ref(&spaced));
    bed.backend().hold(&spaced, "odd\ttag").expect("held");
    let mut tags = bed
        .backend()
        .holds(&[s.clone(), spaced.clone()])
        .expect("listed");
    tags.sort();
    let want = |n: &SnapshotName, t: &str| (n.clone(), t.to_owned());
    let mut expected = vec![
        want(&s, "zsnap"),
        want(&s, "keep"),
        want(&s, hostile),
        want(&spaced, "odd\ttag"),
    ];
    expected.sort();
    assert_eq!(tags, expected);
    let err = bed
        .backend()
        .holds(&[snap(&a, "missing"), s.clone()])
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchDataset);
    bed.backend()
        .release(&spaced, "odd\ttag")
        .expect("released");
    bed.backend().release(&s, hostile).expect("released");
    bed.backend().release(&s, "keep").expect("released");
    let err = bed.backend().release(&s, "keep").unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchTag);
    assert_eq!(list(bed, &a).snapshot(&s).expect("listed").userrefs, 1);
    bed.backend().release(&s, "zsnap").expect("released");
    let err = bed.backend().hold(&snap(&a, "missing"), "t").unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchDataset);
}

pub fn bookmarks(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    let s = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s));
    let b: BookmarkName = format!("{a}#b1").parse().expect("valid");
    bed.backend().bookmark(&s, &b).expect("bookmarked");
    let err = bed.backend().bookmark(&s, &b).unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::AlreadyExists);
    let inv = list(bed, &a);
    let d = inv.dataset(&a).expect("listed");
    assert_eq!(d.bookmarks.len(), 1);
    assert_eq!(
        (d.bookmarks[0].guid, d.bookmarks[0].createtxg),
        (d.snapshots[0].guid, d.snapshots[0].createtxg)
    );
    // The bookmark outlives its snapshot.
    let r = SnapshotRef::new(short("s1"), d.snapshots[0].guid);
    bed.backend().destroy(&a, &[r]).expect("destroyed");
    let inv = list(bed, &a);
    assert!(inv.dataset(&a).expect("listed").snapshots.is_empty());
    assert_eq!(inv.dataset(&a).expect("listed").bookmarks.len(), 1);
    bed.backend().destroy_bookmark(&b).expect("destroyed");
    assert!(list(bed, &a)
        .dataset(&a)
        .expect("listed")
        .bookmarks
        .is_empty());
    assert!(bed.backend().destroy_bookmark(&b).is_err());
}

pub fn incremental_from_bookmark(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    let g1 = guid_of(bed, &s1);
    transfer(bed, &full(&s1, g1), &t).expect("full send");
    let b: BookmarkName = format!("{a}#s1").parse().expect("valid");
    bed.backend().bookmark(&s1, &b).expect("bookmarked");
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(short("s1"), g1)])
        .expect("destroyed");
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let g2 = guid_of(bed, &s2);
    let req = incremental(
        SendBase::Bookmark {
            name: short("s1"),
            guid: g1,
        },
        &s2,
        g2,
        false,
    );
    transfer(bed, &req, &t).expect("incremental from the bookmark");
    let inv = list(bed, &t);
    let got: Vec<(String, Guid)> = inv
        .dataset(&t)
        .expect("received")
        .snapshots
        .iter()
        .map(|s| (s.name.to_string(), s.guid))
        .collect();
    assert_eq!(got, [("s1".to_owned(), g1), ("s2".to_owned(), g2)]);
    // A base the target does not have (by guid) is refused.
    take(bed, &[snap(&a, "s3")]);
    let g3 = guid_of(bed, &snap(&a, "s3"));
    bed.backend()
        .bookmark(&snap(&a, "s3"), &format!("{a}#s3").parse().expect("valid"))
        .expect("ok");
    take(bed, &[snap(&a, "s4")]);
    let g4 = guid_of(bed, &snap(&a, "s4"));
    let req = incremental(
        SendBase::Bookmark {
            name: short("s3"),
            guid: g3,
        },
        &snap(&a, "s4"),
        g4,
        false,
    );
    assert!(transfer(bed, &req, &t).is_err(), "the target lacks s3");
    // -I from a snapshot brings every snapshot in between.
    let req = incremental(
        SendBase::Snapshot {
            name: short("s2"),
            guid: g2,
        },
        &snap(&a, "s4"),
        g4,
        true,
    );
    transfer(bed, &req, &t).expect("-I s2 s4");
    assert_eq!(names_of(&list(bed, &t), &t), ["s1", "s2", "s3", "s4"]);
}

pub fn resume_after_killed_transfer(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    let g1 = guid_of(bed, &s1);
    let cut = cut_stream(bed, &full(&s1, g1), 1, 2);
    let err = bed
        .backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            cut,
            None,
        )
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::StreamCorrupt);
    let dst = bed.dst();
    let inv = list(bed, &dst);
    let token = inv
        .dataset(&t)
        .and_then(|d| d.props.receive_resume_token.clone())
        .expect("a resume token on the target");
    assert!(names_of(&inv, &t).is_empty());
    // A new full stream is refused while the partial state is there.
    assert!(transfer(bed, &full(&s1, g1), &t).is_err());
    let req = SendRequest::new(
        a.clone(),
        SendSpec::Resume {
            token,
            snapshot: Some(SnapshotRef::new(short("s1"), g1)),
        },
        false,
    );
    transfer(bed, &req, &t).expect("the resumed send completes");
    let inv = list(bed, &t);
    let d = inv.dataset(&t).expect("received");
    assert_eq!(d.props.receive_resume_token, None);
    assert_eq!(d.snapshots[0].guid, g1);

    // Interrupted incremental: partial state; an incremental into it is refused as
    // resume state present; aborting clears it and the incremental then works.
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let g2 = guid_of(bed, &s2);
    let req = incremental(
        SendBase::Snapshot {
            name: short("s1"),
            guid: g1,
        },
        &s2,
        g2,
        false,
    );
    let cut = cut_stream(bed, &req, 1, 2);
    let err = bed
        .backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            cut,
            None,
        )
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::StreamCorrupt);
    let err = transfer(bed, &req, &t).unwrap_err();
    assert_eq!(
        kind_of(err.failure(), &err),
        FailureKind::ResumeStatePresent
    );
    bed.backend().abort_receive(&t).expect("aborted");
    assert_eq!(
        list(bed, &t)
            .dataset(&t)
            .expect("still there")
            .props
            .receive_resume_token,
        None
    );
    transfer(bed, &req, &t).expect("the incremental now works");
    assert_eq!(names_of(&list(bed, &t), &t), ["s1", "s2"]);
}

pub fn raw_send_of_encrypted_dataset(bed: &mut dyn TestBed) {
    let e = child(&bed.src(), "enc");
    let t = child(&bed.dst(), "enc");
    bed.create(&e, true);
    bed.write(&e);
    let s1 = snap(&e, "s1");
    take(bed, std::slice::from_ref(&s1));
    let g1 = guid_of(bed, &s1);
    bed.unload_key(&e);
    let inv = list(bed, &e);
    let d = inv.dataset(&e).expect("listed");
    assert!(d.props.is_encrypted());
    assert_eq!(d.props.keystatus.as_deref(), Some("unavailable"));
    // Without the key, only a raw send works.
    assert!(transfer(bed, &full(&s1, g1), &t).is_err());
    let mut req = full(&s1, g1);
    req.raw = true;
    transfer(bed, &req, &t).expect("raw send");
    let inv = list(bed, &t);
    let d = inv.dataset(&t).expect("received");
    assert!(d.props.is_encrypted(), "still encrypted on the target");
    assert_eq!(d.props.keystatus.as_deref(), Some("unavailable"));
    assert_eq!(d.snapshots[0].guid, g1);
    take(bed, &[snap(&e, "s2")]);
    let g2 = guid_of(bed, &snap(&e, "s2"));
    let mut req = incremental(
        SendBase::Snapshot {
            name: short("s1"),
            guid: g1,
        },
        &snap(&e, "s2"),
        g2,
        false,
    );
    req.raw = true;
    transfer(bed, &req, &t).expect("raw incremental");
    assert_eq!(names_of(&list(bed, &t), &t), ["s1", "s2"]);
}

pub fn error_classes(bed: &mut dyn TestBed) {
    let root = bed.src();
    let a = child(&root, "a");
    bed.create(&a, false);
    take(bed, &[snap(&a, "s1")]);
    // Natural failures.
    let err = bed
        .backend()
        .destroy(&child(&root, "missing"), &[])
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchDataset);
    let err = bed
        .backend()
        .snapshot(&[snap(&a, "s1")], &BTreeMap::new())
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::AlreadyExists);
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let g = child(&bed.dst(), "g");
    let err = bed
        .backend()
        .receive(
            &ReceiveRequest::new(g, RecvOptions::safe()),
            Box::new(ReadStream::new(std::io::Cursor::new(garbage))),
            None,
        )
        .unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::StreamCorrupt);
    // Injected failures, where the bed can inject them.
    let s2 = snap(&a, "s2");
    let cases = [
        (
            FaultOp::Snapshot,
            FaultEffect::NoSpace,
            FailureKind::NoSpace,
        ),
        (
            FaultOp::Snapshot,
            FaultEffect::PermissionDenied,
            FailureKind::PermissionDenied,
        ),
        (
            FaultOp::Snapshot,
            FaultEffect::SshDropped,
            FailureKind::SshUnreachable,
        ),
        (FaultOp::Snapshot, FaultEffect::Killed, FailureKind::Killed),
        (FaultOp::Snapshot, FaultEffect::Busy, FailureKind::Busy),
    ];
    for (op, effect, want) in cases {
        if !bed.inject(Fault::on_call(op, 1, effect)) {
            return;
        }
        let err = bed
            .backend()
            .snapshot(std::slice::from_ref(&s2), &BTreeMap::new())
            .unwrap_err();
        assert_eq!(
            kind_of(err.failure(), &err),
            want,
            "{effect:?}: {err}: {:?}",
            err.failure()
        );
        assert!(names_of(&list(bed, &a), &a) == ["s1"], "nothing created");
    }
    // A busy member of a destroy batch is refused by name; the others go.
    take(bed, std::slice::from_ref(&s2));
    let inv = list(bed, &a);
    let refs: Vec<SnapshotRef> = inv
        .dataset(&a)
        .expect("listed")
        .snapshots
        .iter()
        .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
        .collect();
    assert!(bed.inject(Fault::on_call(FaultOp::Destroy, 1, FaultEffect::Busy)));
    let report = bed.backend().destroy(&a, &refs).expect("the batch runs");
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].failure.kind, FailureKind::Busy);
    assert_eq!(report.destroyed, [short("s2")]);
    // Garbage on stdout of a listing is a parse error, never a wrong inventory.
    assert!(bed.inject(Fault::on_call(FaultOp::List, 1, FaultEffect::Garbage)));
    let err = bed.backend().list(std::slice::from_ref(&a)).unwrap_err();
    assert!(err.failure().is_none(), "a parse error: {err}");
}

/// Values that would run something if any shell between zsnap and zfs saw them
/// unquoted; each tries to create the marker file.
fn hostile_values(marker: &str) -> Vec<String> {
    vec![
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!("x; touch {marker}"),
        format!("x'; touch {marker}; '"),
        format!("x\"; touch {marker}; \""),
        format!("line1\ntouch {marker}\nline3"),
        format!("a | touch {marker}"),
        "$HOME ${HOME} \\ ' \" * ? ~ ! # %".to_owned(),
        "tab\tinside".to_owned(),
    ]
}

pub fn hostile_names_and_values(bed: &mut dyn TestBed) {
    let marker = bed.marker_path();
    let root = bed.src();
    let weird = child(&root, "-dash with  spaces:and.dots");
    bed.create(&weird, false);
    let s = snap(&weird, "-s with space");
    take(bed, std::slice::from_ref(&s));
    let inv = list(bed, &weird);
    assert_eq!(names_of(&inv, &weird), ["-s with space"]);
    for (i, v) in hostile_values(&marker).iter().enumerate() {
        let name = format!("zsnap:test-{i}");
        for t in [
            PropertyTarget::Dataset(weird.clone()),
            PropertyTarget::Snapshot(s.clone()),
        ] {
            bed.backend().set_property(&t, &name, v).expect("set");
            let got = bed.backend().property(&t, &name).expect("read");
            assert_eq!(got.as_deref(), Some(v.as_str()), "{t} {name}");
        }
        bed.backend().hold(&s, v).expect("held with a hostile tag");
        bed.backend().release(&s, v).expect("released");
    }
    let mut props = BTreeMap::new();
    props.insert("zsnap:note".to_owned(), hostile_values(&marker)[0].clone());
    let s2 = snap(&weird, "s2");
    bed.backend()
        .snapshot(std::slice::from_ref(&s2), &props)
        .expect("created");
    let got = bed
        .backend()
        .property(&PropertyTarget::Snapshot(s2.clone()), "zsnap:note")
        .expect("read");
    assert_eq!(got, Some(hostile_values(&marker)[0].clone()));
    assert_eq!(
        bed.backend()
            .property(&PropertyTarget::Snapshot(s2), "zsnap:unset")
            .expect("read"),
        None
    );
    // Destroys and transfers of oddly named datasets work too.
    let g = guid_of(bed, &s);
    let t = child(&bed.dst(), "-target with space");
    transfer(bed, &full(&s, g), &t).expect("sent");
    assert_eq!(names_of(&list(bed, &t), &t), ["-s with space"]);
    let report = bed
        .backend()
        .destroy(&weird, &[SnapshotRef::new(short("-s with space"), g)])
        .expect("ok");
    assert_eq!(report.destroyed, [short("-s with space")]);
    assert!(!bed.path_exists(&marker), "a hostile value was executed");
}

/// Bytes of a whole send stream, read through zsnap.
fn stream_len(bed: &mut dyn TestBed, req: &SendRequest) -> u64 {
    let mut stream = bed.backend().send(req).expect("the send starts");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("the stream reads");
    stream.finish().expect("the sender succeeds");
    all.len() as u64
}

pub fn send_estimates(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    bed.write(&a);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    bed.write(&a);
    let s2 = snap(&a, "s 2");
    take(bed, std::slice::from_ref(&s2));
    take(bed, &[snap(&a, "s3")]);
    let (g1, g2) = (guid_of(bed, &s1), guid_of(bed, &s2));
    let g3 = guid_of(bed, &snap(&a, "s3"));
    let base1 = SendBase::Snapshot {
        name: short("s1"),
        guid: g1,
    };
    let cases = [
        full(&s1, g1),
        incremental(base1.clone(), &s2, g2, false),
        incremental(base1, &snap(&a, "s3"), g3, true),
    ];
    let mut totals = Vec::new();
    for req in &cases {
        let e = bed.backend().estimate_send(req).expect("estimated");
        let actual = stream_len(bed, req);
        // An estimate, not a count: the right order of magnitude.
        assert!(
            e.total >= actual / 2 && e.total <= actual * 2,
            "{:?}: estimate {} for {actual} bytes",
            req.spec,
            e.total
        );
        assert_eq!(e.total, e.streams.iter().map(|s| s.bytes).sum::<u64>());
        totals.push(e.total);
    }
    assert!(totals[1] < totals[0], "one write less than two: {totals:?}");
    assert_eq!(
        bed.backend()
            .estimate_send(&cases[2])
            .expect("estimated")
            .streams
            .len(),
        2,
        "-I estimates each snapshot"
    );
    let missing = full(&snap(&a, "nope"), Guid(0));
    let err = bed.backend().estimate_send(&missing).unwrap_err();
    assert_eq!(kind_of(err.failure(), &err), FailureKind::NoSuchDataset);
}

pub fn resume_tokens_decode_and_go_stale(bed: &mut dyn TestBed) {
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    bed.write(&a);
    let s1 = snap(&a, "s1");
    take(bed, std::slice::from_ref(&s1));
    let g1 = guid_of(bed, &s1);
    transfer(bed, &full(&s1, g1), &t).expect("full send");
    bed.write(&a);
    bed.write(&a);
    let s2 = snap(&a, "s2");
    take(bed, std::slice::from_ref(&s2));
    let g2 = guid_of(bed, &s2);
    let req = incremental(
        SendBase::Snapshot {
            name: short("s1"),
            guid: g1,
        },
        &s2,
        g2,
        false,
    );
    let whole = bed.backend().estimate_send(&req).expect("estimated").total;
    let cut = cut_stream(bed, &req, 1, 2);
    bed.backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            cut,
            None,
        )
        .expect_err("a cut stream fails");
    let token = list(bed, &t)
        .dataset(&t)
        .and_then(|d| d.props.receive_resume_token.clone())
        .expect("a resume token");
    let decoded = bed.backend().resume_token(&token).expect("decoded");
    assert_eq!(decoded.toname, s2);
    assert_eq!((decoded.toguid, decoded.fromguid), (g2, Some(g1)));
    assert!(!decoded.raw);
    let resume = SendRequest::new(
        a.clone(),
        SendSpec::Resume {
            token: token.clone(),
            snapshot: None,
        },
        false,
    );
    let left = bed
        .backend()
        .estimate_send(&resume)
        .expect("estimated")
        .total;
    assert!(
        left < whole,
        "what is left ({left}) is less than all ({whole})"
    );

    // The base pruned but bookmarked: still usable. The bookmark gone too: stale.
    let b: BookmarkName = format!("{a}#s1").parse().expect("valid");
    bed.backend().bookmark(&s1, &b).expect("bookmarked");
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(short("s1"), g1)])
        .expect("destroyed");
    assert_eq!(
        bed.backend()
            .resume_token(&token)
            .expect("still usable")
            .toguid,
        g2
    );
    bed.backend().destroy_bookmark(&b).expect("destroyed");
    let err = bed.backend().resume_token(&token).unwrap_err();
    assert!(err.is_stale(), "{err}: {:?}", err.failure());
    assert_eq!(
        err.decoded().map(|d| d.toguid),
        Some(g2),
        "contents still shown"
    );
    let err = transfer(bed, &resume, &t).unwrap_err();
    let sender_stale = match &err {
        TransferError::Send(e) => e.failure(),
        TransferError::Recv(zsnap_exec::backend::RecvError::Command { sender, source, .. }) => {
            sender
                .as_deref()
                .and_then(SendError::failure)
                .or(source.failure())
        }
        TransferError::Recv(e) => e.failure(),
    };
    assert_eq!(
        sender_stale.map(|f| f.kind),
        Some(FailureKind::StaleResumeToken),
        "{err}"
    );
    // The snapshot itself gone.
    bed.backend()
        .destroy(&a, &[SnapshotRef::new(short("s2"), g2)])
        .expect("destroyed");
    assert!(bed.backend().resume_token(&token).unwrap_err().is_stale());
    // Garbage is not a token.
    let err = bed.backend().resume_token("1-garbage").unwrap_err();
    assert!(err.is_stale(), "{err}");
    assert!(err.decoded().is_none());
    bed.backend().abort_receive(&t).expect("aborted");
}

/// `pools`: one `zpool list` and one `zpool status` answer for the pools asked for, in
/// that order, leaving out a pool that does not exist; a failed command is an error
/// with its failure.
pub fn pool_health(bed: &mut dyn TestBed) {
    let (src, dst) = (bed.src(), bed.dst());
    let src_pool = ds(src.pool());
    let dst_pool = ds(dst.pool());
    let pools = bed
        .backend()
        .pools(&[
            dst_pool.clone(),
            ds("nosuchpool"),
            src_pool.clone(),
            dst_pool.clone(),
        ])
        .expect("zpool list and status work");
    let names: Vec<&str> = pools.iter().map(|p| p.name().as_str()).collect();
    assert_eq!(names, [dst_pool.as_str(), src_pool.as_str()]);
    for p in &pools {
        assert_eq!(p.state(), &zsnap_core::zpool::Health::Online, "{p:?}");
        let size = p.usage.size.expect("a size");
        let alloc = p.usage.allocated.expect("allocated bytes");
        assert!(alloc <= size);
        assert!(p.usage.capacity.is_some_and(|c| c <= 100));
        let status = p.status.as_ref().expect("zpool status shows it");
        assert_eq!(
            status.errors,
            Some(zsnap_core::zpool::DataErrors::NoneKnown)
        );
        let root = status.vdevs().next().expect("the pool's own row");
        assert_eq!((root.name.as_str(), root.depth), (p.name().as_str(), 0));
        assert!(status.vdevs().count() >= 2, "the pool has a device");
    }
    assert_eq!(
        bed.backend()
            .pools(&[ds("nosuchpool")])
            .expect("works")
            .len(),
        0
    );
    if bed.inject(Fault::on_call(FaultOp::Zpool, 2, FaultEffect::SshDropped)) {
        let e = bed
            .backend()
            .pools(&[src_pool])
            .expect_err("zpool status fails");
        assert!(e.failure().is_some(), "{e:?}");
        assert!(e.to_string().contains("zpool status"), "{e}");
    }
}

/// Expands to one `#[test]` per contract test, each with a fresh bed from `$factory`
/// (a `fn(&str) -> Option<Box<dyn TestBed>>`; `None` skips).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory,
            listing_round_trip,
            atomic_multi_snapshot,
            destroy_batch_with_one_held_member,
            destroy_refuses_cloned_members,
            holds,
            bookmarks,
            incremental_from_bookmark,
            resume_after_killed_transfer,
            raw_send_of_encrypted_dataset,
            error_classes,
            hostile_names_and_values,
            send_estimates,
            resume_tokens_decode_and_go_stale,
            pool_health,
        );
    };
    (@each $factory:expr, $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let factory: fn(&str) -> Option<Box<dyn $crate::contract::TestBed>> = $factory;
                if let Some(mut bed) = factory(stringify!($name)) {
                    $crate::contract::$name(&mut *bed);
                }
            }
        )*
    };
}
