//! Running a plan: [`apply`].
//!
//! Steps run in order. Each is journaled before and after it runs (when a
//! [`Journal`] is given), reported to an [`Observer`], and ends as one [`StepOutcome`].
//! Consecutive steps that one `zfs` call can do run as one backend call: holds (or
//! releases) of one tag at one location ([`ZfsBackend::hold_many`],
//! [`ZfsBackend::release_many`]), and destroys at one location
//! ([`ZfsBackend::destroy_many`], whose guids are re-checked with one listing); each
//! step is still journaled and reported on its own.
//!
//! # When the run stops
//! A failed step stops the run (every later step is [`StepOutcome::Skipped`]) unless
//! nothing later can depend on it: steps that only remove something — destroying
//! snapshots or bookmarks, releasing a hold — fail alone and the run goes on. A destroy
//! in which ZFS refused some members (held, cloned, busy) or some members changed since
//! planning is not a failure at all: it is [`StepOutcome::Partial`] and lists them.
//!
//! Interruptions are safe to re-plan: every step is idempotent once re-planned from a
//! fresh listing (a snapshot that exists is not taken again; a transfer resumes from
//! the target's token or from the newest common snapshot). For the same reason, a
//! release of a hold tag the snapshot does not carry ([`FailureKind::NoSuchTag`]), and
//! a hold of a tag it carries already ([`FailureKind::AlreadyExists`]), is done: what
//! the step wants is already true.
//!
//! # Options
//! [`apply_with`] takes [`ApplyOptions`]: a bandwidth limit on transfers (their bytes
//! then pass through zsnap, paced by a [`RateLimiter`]). [`estimate_transfers`] fills
//! the plan's transfer size estimates beforehand (`zfs send -nvP`), so an observer can
//! show progress against a total.

use std::collections::BTreeMap;
use std::sync::Arc;

use zsnap_core::backup::StoreUrl;
use zsnap_core::{Location, Plan, Step};

use crate::backend::EstimateError;
use crate::backend::{
    AbortReceiveError, BookmarkError, DestroyBookmarkError, DestroyError, DestroyReport, HoldError,
    ReceiveRequest, RecvError, ReleaseError, SendError, SendRequest, SnapshotError, ZfsBackend,
};
use crate::backup::{run_backup, BackupError, BackupOptions};
use crate::failure::{FailureKind, ZfsFailure};
use crate::journal::{Journal, JournalError, Record};
use crate::store::BackupStore;
use crate::throttle::{Clock, RateLimiter, SystemClock, Throttled};

/// How [`apply_with`] runs a plan.
#[derive(Clone)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Bytes per second each transfer may move; `None` for no limit. A limited
    /// transfer's bytes pass through zsnap.
    pub bandwidth_limit: Option<u64>,
    /// Unused allowance (bytes) a limited transfer may save up while idle; by default
    /// a quarter of a second's worth at the limit.
    pub burst: Option<u64>,
    /// The clock the limiter reads and sleeps on.
    pub clock: Arc<dyn Clock>,
    /// How backup steps run (read-back verification).
    pub backup: BackupOptions,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            bandwidth_limit: None,
            burst: None,
            clock: Arc::new(SystemClock::new()),
            backup: BackupOptions::default(),
        }
    }
}

impl std::fmt::Debug for ApplyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyOptions")
            .field("bandwidth_limit", &self.bandwidth_limit)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl ApplyOptions {
    /// Limits every transfer to `bytes_per_second` (`None`: no limit).
    #[must_use]
    pub fn with_bandwidth_limit(mut self, bytes_per_second: Option<u64>) -> Self {
        self.bandwidth_limit = bytes_per_second;
        self
    }

    /// Runs backup steps with these options.
    #[must_use]
    pub fn with_backup(mut self, backup: BackupOptions) -> Self {
        self.backup = backup;
        self
    }

    /// Uses `clock` for pacing (tests inject one that records its sleeps).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn limiter(&self) -> Option<RateLimiter> {
        self.bandwidth_limit.map(|rate| {
            let burst = self.burst.unwrap_or(rate / 4);
            RateLimiter::new(rate, burst)
        })
    }
}

/// The backends of a run, by location, and the backup stores it writes to.
pub trait Backends {
    /// The backend for `location`, if there is one.
    fn backend(&mut self, location: &Location) -> Option<&mut dyn ZfsBackend>;

    /// The open store for `url`, if the run has one (none by default: a plan with
    /// backup steps then fails at them with [`StepError::NoStore`]).
    fn store(&mut self, url: &StoreUrl) -> Option<Arc<dyn BackupStore>> {
        let _ = url;
        None
    }
}

/// Backends with backup stores: `inner` for the ZFS side, `stores` by URL.
pub struct WithStores<'a> {
    /// The ZFS backends.
    pub inner: &'a mut dyn Backends,
    /// The stores.
    pub stores: BTreeMap<StoreUrl, Arc<dyn BackupStore>>,
}

impl Backends for WithStores<'_> {
    fn backend(&mut self, location: &Location) -> Option<&mut dyn ZfsBackend> {
        self.inner.backend(location)
    }

    fn store(&mut self, url: &StoreUrl) -> Option<Arc<dyn BackupStore>> {
        self.stores.get(url).cloned()
    }
}

impl Backends for BTreeMap<Location, Box<dyn ZfsBackend>> {
    fn backend(&mut self, location: &Location) -> Option<&mut dyn ZfsBackend> {
        self.get_mut(location)
            .map(|b| &mut **b as &mut dyn ZfsBackend)
    }
}

impl Backends for BTreeMap<Location, &mut dyn ZfsBackend> {
    fn backend(&mut self, location: &Location) -> Option<&mut dyn ZfsBackend> {
        match self.get_mut(location) {
            Some(b) => Some(&mut **b),
            None => None,
        }
    }
}

/// One backend for every location (tests, and a single-host run).
pub struct OneBackend<'a>(pub &'a mut dyn ZfsBackend);

impl Backends for OneBackend<'_> {
    fn backend(&mut self, _location: &Location) -> Option<&mut dyn ZfsBackend> {
        Some(&mut *self.0)
    }
}

/// Watches a run. Every method has an empty default.
pub trait Observer {
    /// Step `index` is about to run.
    fn step_started(&mut self, index: usize, step: &Step) {
        let _ = (index, step);
    }

    /// Transfer step `index` has moved `bytes` so far (only when
    /// [`Observer::wants_bytes`]).
    fn transfer_progress(&mut self, index: usize, bytes: u64) {
        let _ = (index, bytes);
    }

    /// Step `index` ended (or was skipped).
    fn step_finished(&mut self, index: usize, step: &Step, outcome: &StepOutcome) {
        let _ = (index, step, outcome);
    }

    /// Whether to count transfer bytes; then zsnap sits between `zfs send` and
    /// `zfs recv` (moving the bytes with splice(2) on Linux) instead of joining them
    /// directly.
    fn wants_bytes(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// No backend for the step's location.
    #[error("run a step at location {location}: no backend for it")]
    NoBackend {
        /// The location.
        location: Location,
    },
    /// Writing the journal failed, so the step was not run.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// See [`SnapshotError`].
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// See [`DestroyError`].
    #[error(transparent)]
    Destroy(#[from] DestroyError),
    /// See [`HoldError`].
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// See [`ReleaseError`].
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// See [`BookmarkError`].
    #[error(transparent)]
    Bookmark(#[from] BookmarkError),
    /// See [`DestroyBookmarkError`].
    #[error(transparent)]
    DestroyBookmark(#[from] DestroyBookmarkError),
    /// See [`SendError`].
    #[error(transparent)]
    Send(#[from] SendError),
    /// See [`RecvError`].
    #[error(transparent)]
    Receive(#[from] RecvError),
    /// See [`AbortReceiveError`].
    #[error(transparent)]
    AbortReceive(#[from] AbortReceiveError),
    /// No store is open for a backup step's store.
    #[error("back up to {store}: the store is not open in this run")]
    NoStore {
        /// The store.
        store: StoreUrl,
    },
    /// See [`BackupError`].
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// A step kind this version cannot run.
    #[error("run a step of a kind this version does not know")]
    Unknown,
}

impl StepError {
    /// The classified failure, when a process ran and failed.
    pub fn failure(&self) -> Option<&ZfsFailure> {
        match self {
            StepError::Snapshot(e) => e.failure(),
            StepError::Destroy(e) => e.failure(),
            StepError::Hold(e) => e.failure(),
            StepError::Release(e) => e.failure(),
            StepError::Bookmark(e) => e.failure(),
            StepError::DestroyBookmark(e) => e.failure(),
            StepError::Send(e) => e.failure(),
            StepError::Receive(e) => e.failure(),
            StepError::AbortReceive(e) => e.failure(),
            StepError::Backup(BackupError::Send { source, .. }) => source.failure(),
            StepError::NoBackend { .. }
            | StepError::NoStore { .. }
            | StepError::Backup(_)
            | StepError::Journal(_)
            | StepError::Unknown => None,
        }
    }
}

/// How one step ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum StepOutcome {
    /// Done.
    Done {
        /// Bytes moved, for a transfer whose bytes were counted.
        bytes: Option<u64>,
    },
    /// A destroy that left some members: refused by ZFS, or changed since planning.
    Partial {
        /// What was destroyed, refused and skipped.
        report: DestroyReport,
    },
    /// Failed.
    Failed {
        /// Why.
        error: StepError,
        /// Whether the run stopped here.
        stopped_run: bool,
    },
    /// Not run because step `after` failed.
    Skipped {
        /// The failed step that stopped the run.
        after: usize,
    },
}

impl StepOutcome {
    /// A short word for journals and tables: `done`, `partial`, `failed`, `skipped`.
    pub fn word(&self) -> &'static str {
        match self {
            StepOutcome::Done { .. } => "done",
            StepOutcome::Partial { .. } => "partial",
            StepOutcome::Failed { .. } => "failed",
            StepOutcome::Skipped { .. } => "skipped",
        }
    }
}

/// One step of a [`Report`].
#[derive(Debug)]
#[non_exhaustive]
pub struct StepReport {
    /// Its index in the plan.
    pub index: usize,
    /// How it ended.
    pub outcome: StepOutcome,
}

/// What [`apply`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// One entry per step of the plan, in order.
    pub steps: Vec<StepReport>,
}

impl Report {
    /// Whether every step was done (fully or partially).
    pub fn is_success(&self) -> bool {
        self.steps.iter().all(|s| {
            matches!(
                s.outcome,
                StepOutcome::Done { .. } | StepOutcome::Partial { .. }
            )
        })
    }

    /// The failed steps.
    pub fn failures(&self) -> impl Iterator<Item = (usize, &StepError)> {
        self.steps.iter().filter_map(|s| match &s.outcome {
            StepOutcome::Failed { error, .. } => Some((s.index, error)),
            _ => None,
        })
    }

    /// How many steps ended with this outcome word (see [`StepOutcome::word`]).
    pub fn count(&self, word: &str) -> usize {
        self.steps
            .iter()
            .filter(|s| s.outcome.word() == word)
            .count()
    }
}

/// Whether a failure of this step leaves the rest of the plan safe to run.
fn failure_is_contained(step: &Step) -> bool {
    matches!(
        step,
        Step::Destroy(_) | Step::DestroyBookmark(_) | Step::Release(_)
    )
}

fn backend<'a>(
    backends: &'a mut dyn Backends,
    location: &Location,
) -> Result<&'a mut dyn ZfsBackend, StepError> {
    backends
        .backend(location)
        .ok_or_else(|| StepError::NoBackend {
            location: location.clone(),
        })
}

/// The end (exclusive) of the group of steps starting at `start` that run as one `zfs`
/// call: consecutive holds (or releases) of one tag at one location, or consecutive
/// destroys at one location. Any other step is a group of one.
fn group_end(steps: &[Step], start: usize) -> usize {
    let same = |a: &Step, b: &Step| match (a, b) {
        (Step::Hold(a), Step::Hold(b)) | (Step::Release(a), Step::Release(b)) => {
            a.location == b.location && a.tag == b.tag
        }
        (Step::Destroy(a), Step::Destroy(b)) => a.location == b.location,
        _ => false,
    };
    let first = &steps[start];
    start
        + 1
        + steps[start + 1..]
            .iter()
            .take_while(|s| same(first, s))
            .count()
}

/// Runs a group of [`group_end`] as one backend call; one result per step.
fn run_group(group: &[Step], backends: &mut dyn Backends) -> Vec<Result<StepOutcome, StepError>> {
    let location = match &group[0] {
        Step::Hold(h) | Step::Release(h) => &h.location,
        Step::Destroy(d) => &d.location,
        _ => unreachable!("group_end groups only holds, releases and destroys"),
    };
    let backend = match backend(backends, location) {
        Ok(b) => b,
        Err(e) => {
            let mut out = vec![Err(e)];
            out.extend(group[1..].iter().map(|_| {
                Err(StepError::NoBackend {
                    location: location.clone(),
                })
            }));
            return out;
        }
    };
    let done = || StepOutcome::Done { bytes: None };
    match &group[0] {
        Step::Hold(first) => {
            let names: Vec<_> = group
                .iter()
                .filter_map(|s| match s {
                    Step::Hold(h) => Some(h.snapshot.clone()),
                    _ => None,
                })
                .collect();
            backend
                .hold_many(&names, &first.tag)
                .into_iter()
                .map(|r| hold_result(r).map(|()| done()))
                .collect()
        }
        Step::Release(first) => {
            let names: Vec<_> = group
                .iter()
                .filter_map(|s| match s {
                    Step::Release(h) => Some(h.snapshot.clone()),
                    _ => None,
                })
                .collect();
            backend
                .release_many(&names, &first.tag)
                .into_iter()
                .map(|r| release_result(r).map(|()| done()))
                .collect()
        }
        _ => {
            let batches: Vec<_> = group
                .iter()
                .filter_map(|s| match s {
                    Step::Destroy(d) => Some((&d.dataset, d.snapshots.as_slice())),
                    _ => None,
                })
                .collect();
            backend
                .destroy_many(&batches)
                .into_iter()
                .map(|r| r.map(destroy_outcome).map_err(StepError::from))
                .collect()
        }
    }
}

/// A hold that exists already is what the step wants (a group call placed it, or a
/// run that died before its journal said so).
fn hold_result(r: Result<(), HoldError>) -> Result<(), StepError> {
    match r {
        Err(e)
            if e.failure()
                .is_some_and(|f| f.kind == FailureKind::AlreadyExists) =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// A release of a tag the snapshot does not carry is done: see the module docs.
fn release_result(r: Result<(), ReleaseError>) -> Result<(), StepError> {
    match r {
        Err(e)
            if e.failure()
                .is_some_and(|f| f.kind == FailureKind::NoSuchTag) =>
        {
            Ok(())
        }
        other => Ok(other?),
    }
}

fn destroy_outcome(report: DestroyReport) -> StepOutcome {
    if report.refused.is_empty() && report.skipped.is_empty() {
        StepOutcome::Done { bytes: None }
    } else {
        StepOutcome::Partial { report }
    }
}

fn run_step(
    index: usize,
    step: &Step,
    backends: &mut dyn Backends,
    observer: &mut dyn Observer,
    options: &ApplyOptions,
) -> Result<StepOutcome, StepError> {
    let done = StepOutcome::Done { bytes: None };
    match step {
        Step::Snapshot(s) => {
            backend(backends, &s.location)?.snapshot(&s.names, &s.properties)?;
            Ok(done)
        }
        Step::Destroy(d) => {
            let report = backend(backends, &d.location)?.destroy(&d.dataset, &d.snapshots)?;
            Ok(destroy_outcome(report))
        }
        Step::Hold(h) => {
            hold_result(backend(backends, &h.location)?.hold(&h.snapshot, &h.tag))?;
            Ok(done)
        }
        Step::Release(h) => {
            release_result(backend(backends, &h.location)?.release(&h.snapshot, &h.tag))?;
            Ok(done)
        }
        Step::Bookmark(b) => {
            backend(backends, &b.location)?.bookmark(&b.snapshot, &b.bookmark)?;
            Ok(done)
        }
        Step::DestroyBookmark(b) => {
            backend(backends, &b.location)?.destroy_bookmark(&b.bookmark)?;
            Ok(done)
        }
        Step::AbortReceive(a) => {
            backend(backends, &a.location)?.abort_receive(&a.dataset)?;
            Ok(done)
        }
        Step::Transfer(t) => {
            let request = SendRequest::new(t.source.clone(), t.send.clone(), t.raw);
            let mut stream = backend(backends, &t.from)?.send(&request)?;
            if let Some(limiter) = options.limiter() {
                stream = Box::new(Throttled::new(stream, limiter, options.clock.clone()));
            }
            let to = backend(backends, &t.to)?;
            let receive = ReceiveRequest::new(t.target.clone(), t.recv.clone());
            let outcome = if observer.wants_bytes() {
                let mut progress = |bytes| observer.transfer_progress(index, bytes);
                to.receive(&receive, stream, Some(&mut progress))?
            } else {
                to.receive(&receive, stream, None)?
            };
            Ok(StepOutcome::Done {
                bytes: outcome.bytes,
            })
        }
        Step::Backup(b) => {
            let Some(store) = backends.store(&b.store) else {
                return Err(StepError::NoStore {
                    store: b.store.clone(),
                });
            };
            let from = backend(backends, &b.location)?;
            let wants = observer.wants_bytes();
            let mut progress = |bytes| {
                if wants {
                    observer.transfer_progress(index, bytes);
                }
            };
            let outcome = run_backup(b, from, &*store, &options.backup, &mut progress)?;
            Ok(StepOutcome::Done {
                bytes: Some(outcome.sent),
            })
        }
        _ => Err(StepError::Unknown),
    }
}

/// Runs `plan` step by step; see the [module docs](self) for when it stops.
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::{Location, Plan, SnapshotStep, Step};
/// use zsnap_exec::{apply::{apply, NoObserver, OneBackend}, fake::FakeZfs};
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let mut z = FakeZfs::new(7, now);
/// z.add_pool("tank").unwrap();
/// let mut plan = Plan::new(now);
/// let names = vec!["tank@a".parse().unwrap()];
/// plan.steps.push(Step::Snapshot(SnapshotStep::new(Location::local(), names, BTreeMap::new(), "due")));
/// // The same name again: refused by ZFS, and the run stops there.
/// let again = vec!["tank@a".parse().unwrap()];
/// plan.steps.push(Step::Snapshot(SnapshotStep::new(Location::local(), again, BTreeMap::new(), "again")));
/// plan.steps.push(Step::Snapshot(SnapshotStep::new(Location::local(), vec!["tank@b".parse().unwrap()], BTreeMap::new(), "after")));
/// let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
/// let words: Vec<_> = report.steps.iter().map(|s| s.outcome.word()).collect();
/// assert_eq!(words, ["done", "failed", "skipped"]);
/// ```
pub fn apply(
    plan: &Plan,
    backends: &mut dyn Backends,
    observer: &mut dyn Observer,
    journal: Option<&mut Journal>,
) -> Report {
    apply_with(plan, backends, observer, journal, &ApplyOptions::default())
}

/// [`apply`] with options (a bandwidth limit).
pub fn apply_with(
    plan: &Plan,
    backends: &mut dyn Backends,
    observer: &mut dyn Observer,
    mut journal: Option<&mut Journal>,
    options: &ApplyOptions,
) -> Report {
    let mut report = Report::default();
    let mut stopped: Option<usize> = None;
    if let Some(j) = journal.as_deref_mut() {
        if let Err(e) = j.run_started(plan.steps.len()) {
            // Without a journal the run could not be explained later: run nothing.
            stopped = Some(0);
            let step = plan.steps.first();
            let outcome = StepOutcome::Failed {
                error: StepError::Journal(e),
                stopped_run: true,
            };
            if let Some(step) = step {
                observer.step_finished(0, step, &outcome);
            }
            report.steps.push(StepReport { index: 0, outcome });
        }
    }
    let mut index = 0;
    while index < plan.steps.len() {
        let step = &plan.steps[index];
        if index == 0 && stopped.is_some() {
            index += 1;
            continue;
        }
        if let Some(after) = stopped {
            let outcome = StepOutcome::Skipped { after };
            observer.step_finished(index, step, &outcome);
            if let Some(j) = journal.as_deref_mut() {
                let _ = j.write(&step_finished(index, &outcome));
            }
            report.steps.push(StepReport { index, outcome });
            index += 1;
            continue;
        }
        // Steps that one `zfs` call can do together (holds or releases of one tag,
        // destroys at one location) run as one group: each is journaled and reported
        // on its own, as if run alone.
        let end = group_end(&plan.steps, index);
        let mut results: Vec<Result<StepOutcome, StepError>> = Vec::new();
        let mut started = index;
        for (k, member) in plan.steps[index..end].iter().enumerate() {
            observer.step_started(index + k, member);
            if let Some(j) = journal.as_deref_mut() {
                if let Err(e) = j.step_started(index + k, member) {
                    results.push(Err(StepError::from(e)));
                    break;
                }
            }
            started = index + k + 1;
        }
        let journal_failed = results.pop();
        let ran = if started - index == 1 {
            vec![run_step(index, step, backends, observer, options)]
        } else if started > index {
            run_group(&plan.steps[index..started], backends)
        } else {
            Vec::new()
        };
        results.extend(ran);
        results.extend(journal_failed);
        for (k, result) in results.into_iter().enumerate() {
            let (index, step) = (index + k, &plan.steps[index + k]);
            let outcome = match result {
                Ok(o) => o,
                Err(error) => {
                    let contained =
                        failure_is_contained(step) && !matches!(error, StepError::Journal(_));
                    if !contained && stopped.is_none() {
                        stopped = Some(index);
                    }
                    StepOutcome::Failed {
                        error,
                        stopped_run: !contained,
                    }
                }
            };
            if let Some(j) = journal.as_deref_mut() {
                if let Err(e) = j.write(&step_finished(index, &outcome)) {
                    // The step ran but its end is not recorded: stop rather than run on
                    // unjournaled.
                    if stopped.is_none() {
                        stopped = Some(index);
                    }
                    let _ = e;
                }
            }
            observer.step_finished(index, step, &outcome);
            report.steps.push(StepReport { index, outcome });
        }
        index = report.steps.len();
    }
    if let Some(j) = journal {
        let _ = j.write(&run_finished(&report));
    }
    report
}

/// The journal's record of a finished step.
fn step_finished(index: usize, outcome: &StepOutcome) -> Record {
    let (mut error, mut kind, mut bytes) = (None, None, None);
    let (mut destroyed, mut left) = (Vec::new(), Vec::new());
    match outcome {
        StepOutcome::Done { bytes: b } => bytes = *b,
        StepOutcome::Partial { report } => {
            destroyed.clone_from(&report.destroyed);
            left.extend(report.refused.iter().map(|r| r.name.clone()));
            left.extend(report.skipped.iter().map(|s| s.name.clone()));
        }
        StepOutcome::Failed { error: e, .. } => {
            error = Some(crate::failure::error_chain(e));
            kind = e.failure().map(|f| f.kind);
        }
        StepOutcome::Skipped { .. } => {}
    }
    Record::StepFinished {
        at: crate::journal::now(),
        index,
        outcome: outcome.word().to_owned(),
        error,
        kind,
        bytes,
        destroyed,
        left,
    }
}

/// The journal's record of a finished run.
fn run_finished(report: &Report) -> Record {
    Record::RunFinished {
        at: crate::journal::now(),
        done: report.count("done") + report.count("partial"),
        failed: report.count("failed"),
        skipped: report.count("skipped"),
    }
}

/// A transfer whose size could not be estimated.
#[derive(Debug)]
#[non_exhaustive]
pub struct EstimateFailure {
    /// The step's index in the plan.
    pub index: usize,
    /// Why.
    pub error: EstimateFailureCause,
}

/// Why [`estimate_transfers`] could not estimate a step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstimateFailureCause {
    /// No backend for the source location.
    #[error("estimate a transfer from location {location}: no backend for it")]
    NoBackend {
        /// The location.
        location: Location,
    },
    /// See [`EstimateError`].
    #[error(transparent)]
    Estimate(#[from] EstimateError),
}

/// Fills `estimated_bytes` of every transfer step of `plan` that has none, with one
/// `zfs send -nvP` at its source each. Estimating changes nothing, so a failure only
/// leaves that step without an estimate: the failures are returned, not raised.
///
/// Run it before [`apply`] for progress with a total ([`Observer::step_started`] sees
/// the estimate). Every estimate is made on the source as it is before the plan runs,
/// which is where all of a replication plan's sends come from.
pub fn estimate_transfers(plan: &mut Plan, backends: &mut dyn Backends) -> Vec<EstimateFailure> {
    let mut failures = Vec::new();
    for (index, step) in plan.steps.iter_mut().enumerate() {
        let Step::Transfer(t) = step else { continue };
        if t.estimated_bytes.is_some() {
            continue;
        }
        let Some(b) = backends.backend(&t.from) else {
            failures.push(EstimateFailure {
                index,
                error: EstimateFailureCause::NoBackend {
                    location: t.from.clone(),
                },
            });
            continue;
        };
        let request = SendRequest::new(t.source.clone(), t.send.clone(), t.raw);
        match b.estimate_send(&request) {
            Ok(e) => t.estimated_bytes = Some(e.total),
            Err(e) => failures.push(EstimateFailure {
                index,
                error: e.into(),
            }),
        }
    }
    failures
}
