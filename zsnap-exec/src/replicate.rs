//! [`run_replication`]: one replication run from a source to a target, start to end.
//!
//! 1. List both sides: one `zfs list` per location with every mapped root there (a
//!    source and a target on one host share one listing). A target root that does not
//!    exist yet is simply absent; only then are the roots listed one by one. A job
//!    that listed them already in this run passes its inventories instead
//!    ([`run_replication_on`]).
//! 2. Decode the target's resume tokens on the source (`zfs send -nvP -t TOKEN`): a
//!    usable token gives [`ReplicationRequest::resume_guids`], so the planner resumes
//!    *and* plans what follows in the same run; a stale one (its snapshot or base gone
//!    or replaced on the source, or corrupt) goes to
//!    [`ReplicationRequest::stale_tokens`], so the planner aborts it and starts afresh.
//! 3. Read which source snapshots carry this target's cursor hold (one `zfs holds` of
//!    the snapshots that have holds at all, none when none do), so the planner releases
//!    every stale cursor, including one left by a run that died between its transfers
//!    and its cursor steps ([`ReplicationRequest::cursor_holds`]).
//! 4. Plan with [`plan_replication`], estimate each transfer's size (`zfs send -nvP`),
//!    and [`apply_with`] the plan.
//! 5. When a resume failed because its token turned out stale during the run, list,
//!    plan and apply once more with that token given up. Never more than once: a
//!    second failure is reported, not retried.
//!
//! # Interruptions
//! Receives are resumable (`zfs recv -s`), so a transfer that dies midway leaves a
//! `receive_resume_token` on the target and the next run resumes it. The cursor on the
//! source (the planner's hold or bookmark on the newest common snapshot) moves only
//! after the transfers of its dataset succeeded; and when a round fails after part of
//! a `-I` range arrived, the newest snapshot the target now has is protected too
//! ([`ReplicationRound::protected`]). So the source never loses the base of the next
//! incremental, whatever step or byte the interruption hit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use zsnap_core::replicate::{
    cursor_bookmark_name, cursor_hold_tag, newest_common, plan_replication, CommonBase, Cursor,
    DatasetMapping, ReplicationError, ReplicationRequest,
};
use zsnap_core::{
    BookmarkStep, Dataset, DatasetName, Guid, HoldStep, Inventory, Location, Plan, SendSpec,
    SnapshotName, Step,
};

use crate::apply::{
    apply_with, estimate_transfers, ApplyOptions, Backends, EstimateFailure, Observer, Report,
    StepError,
};
use crate::backend::{ListError, RecvError, ResumeTokenError, SendError, ZfsBackend};
use crate::failure::{FailureKind, ZfsFailure};
use crate::journal::Journal;

/// How [`run_replication`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicateOptions {
    /// Estimate every transfer's size before applying (one `zfs send -nvP` each), so
    /// the observer sees a total. On by default; done only for an observer that counts
    /// bytes ([`Observer::wants_bytes`]), as nothing else shows a total.
    pub estimate: bool,
    /// How the plan is applied (bandwidth limit).
    pub apply: ApplyOptions,
}

impl Default for ReplicateOptions {
    fn default() -> Self {
        ReplicateOptions {
            estimate: true,
            apply: ApplyOptions::default(),
        }
    }
}

impl ReplicateOptions {
    /// Whether to estimate transfer sizes first.
    #[must_use]
    pub fn with_estimate(mut self, estimate: bool) -> Self {
        self.estimate = estimate;
        self
    }

    /// How to apply.
    #[must_use]
    pub fn with_apply(mut self, apply: ApplyOptions) -> Self {
        self.apply = apply;
        self
    }
}

/// One list → plan → apply round of a run.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReplicationRound {
    /// After a round that failed: the cursor steps that protected the newest snapshot
    /// each target now shares with the source, when interrupted transfers moved it past
    /// the cursor (a `-I` range cut after some of its snapshots arrived), and what
    /// applying them did. `None` when the round succeeded, nothing needed protecting, or
    /// the sides could not be listed again.
    pub protected: Option<(Plan, Report)>,
    /// What the listings showed before planning, by location (one inventory when
    /// source and target share a location). `plan.simulate_at(&inventories)` predicts
    /// what the round leaves.
    pub inventories: BTreeMap<Location, Inventory>,
    /// The plan, as applied (with its size estimates).
    pub plan: Plan,
    /// What applying it did.
    pub report: Report,
    /// Transfers whose size could not be estimated (they ran without a total).
    pub estimate_failures: Vec<EstimateFailure>,
}

/// What [`run_replication`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct ReplicationRun {
    /// One round, or two when a resume token turned out stale while applying.
    pub rounds: Vec<ReplicationRound>,
    /// The snapshot each target dataset's resume token brings (decoded `toguid`).
    pub resume_guids: BTreeMap<DatasetName, Guid>,
    /// Target datasets whose resume token was given up (aborted and planned afresh).
    pub stale_tokens: BTreeSet<DatasetName>,
}

impl ReplicationRun {
    /// The last round.
    pub fn last(&self) -> &ReplicationRound {
        self.rounds
            .last()
            .expect("a run that returns has applied at least one round")
    }

    /// Whether every step of the last round was done.
    pub fn is_success(&self) -> bool {
        self.last().report.is_success()
    }
}

/// [`run_replication`] could not plan or start a round. Reads after "failed to …".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicateError {
    /// No backend for a location of the request.
    #[error("replicate: no backend for location {location}")]
    NoBackend {
        /// The location.
        location: Location,
    },
    /// Listing a side failed.
    #[error("list the datasets to replicate at {location}")]
    List {
        /// Where.
        location: Location,
        /// The cause.
        #[source]
        source: ListError,
    },
    /// A target's resume token could not be decoded, for another reason than being
    /// stale (the source unreachable, `zfs` failing).
    #[error("read the resume token of {dataset}")]
    ResumeToken {
        /// The target dataset holding the token.
        dataset: DatasetName,
        /// The cause.
        #[source]
        source: ResumeTokenError,
    },
    /// The planner refused (a diverged target, an encrypted source not to be sent raw,
    /// conflicting mappings …).
    #[error("plan replication to target {target_name:?}")]
    Plan {
        /// The target's name.
        target_name: String,
        /// The cause.
        #[source]
        source: ReplicationError,
    },
    /// The round after giving up stale resume tokens could not be planned or started;
    /// the first round was applied.
    #[error("re-plan replication after giving up the stale resume tokens of {datasets}")]
    Replan {
        /// The target datasets whose tokens were given up, comma-separated.
        datasets: String,
        /// The first round, as applied.
        applied: Box<ReplicationRound>,
        /// The cause.
        #[source]
        source: Box<ReplicateError>,
    },
}

/// Lists, plans and applies one replication; see the [module docs](self).
///
/// `template` says what to replicate where and how: its locations, target name,
/// mappings, policies, filter, options, and any stale tokens, decoded tokens and cursor
/// holds the caller already knows. Its `source` and `target` inventories are NOT used:
/// both sides are listed afresh (build the template on empty inventories).
///
/// # Errors
/// A listing that fails, a token that cannot be read for another reason than being
/// stale, or a plan the planner refuses. A step that fails is not an error: it is in
/// the round's [`Report`] ([`ReplicationRun::is_success`]).
///
/// # Example
/// Pool to pool through one fake; the second run has nothing to do.
/// ```
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::{replicate::ReplicationRequest, DatasetMapping, Inventory, Location};
/// use zsnap_exec::{fake::FakeZfs, replicate::{run_replication, ReplicateOptions}, NoObserver, OneBackend, ZfsBackend};
/// let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
/// let mut z = FakeZfs::new(1, now);
/// z.add_pool("src").unwrap();
/// z.add_pool("dst").unwrap();
/// z.create(&"src/a".parse().unwrap(), false).unwrap();
/// z.snapshot(&["src/a@s1".parse().unwrap()], &Default::default()).unwrap();
/// let empty = Inventory::new();
/// let map = DatasetMapping::new("src/a".parse().unwrap(), "dst/a".parse().unwrap());
/// let template = ReplicationRequest::new(Location::local(), &empty, Location::local(), "backup", &empty, vec![map]);
/// let opts = ReplicateOptions::default();
/// let run = run_replication(&mut OneBackend(&mut z), &template, now, &opts, &mut NoObserver, None).unwrap();
/// assert!(run.is_success());
/// assert!(z.list(&["dst/a".parse().unwrap()]).unwrap().snapshot(&"dst/a@s1".parse().unwrap()).is_some());
/// let again = run_replication(&mut OneBackend(&mut z), &template, now, &opts, &mut NoObserver, None).unwrap();
/// assert!(again.last().plan.is_empty());
/// ```
pub fn run_replication(
    backends: &mut dyn Backends,
    template: &ReplicationRequest<'_>,
    now: DateTime<Utc>,
    options: &ReplicateOptions,
    observer: &mut dyn Observer,
    journal: Option<&mut Journal>,
) -> Result<ReplicationRun, ReplicateError> {
    run_replication_on(backends, template, None, now, options, observer, journal)
}

/// [`run_replication`] whose first round plans on inventories the caller listed in the
/// same run (a job that listed every location once), instead of listing both sides
/// again: `listed` has the source's and the target's location (one entry when they are
/// the same), each covering the mapped roots. A second round (after a stale token) and
/// the protection after a failed round list afresh. The inventories come back in the
/// first round's [`ReplicationRound::inventories`].
///
/// # Errors
/// As [`run_replication`].
pub fn run_replication_on(
    backends: &mut dyn Backends,
    template: &ReplicationRequest<'_>,
    listed: Option<BTreeMap<Location, Inventory>>,
    now: DateTime<Utc>,
    options: &ReplicateOptions,
    observer: &mut dyn Observer,
    mut journal: Option<&mut Journal>,
) -> Result<ReplicationRun, ReplicateError> {
    let mut run = ReplicationRun {
        rounds: Vec::new(),
        resume_guids: BTreeMap::new(),
        stale_tokens: BTreeSet::new(),
    };
    let first = round(
        backends,
        template,
        listed,
        now,
        options,
        observer,
        journal.as_deref_mut(),
        &mut run,
    )?;
    let stale: BTreeSet<DatasetName> = stale_resumes(&first.plan, &first.report)
        .into_iter()
        .filter(|d| !run.stale_tokens.contains(d))
        .collect();
    run.rounds.push(first);
    if stale.is_empty() {
        return Ok(run);
    }
    let mut datasets = String::new();
    for (i, d) in stale.iter().enumerate() {
        if i > 0 {
            datasets.push_str(", ");
        }
        let _ = write!(datasets, "{d}");
    }
    for d in &stale {
        run.resume_guids.remove(d);
    }
    run.stale_tokens.extend(stale);
    match round(
        backends, template, None, now, options, observer, journal, &mut run,
    ) {
        Ok(second) => {
            run.rounds.push(second);
            Ok(run)
        }
        Err(source) => Err(ReplicateError::Replan {
            datasets,
            applied: Box::new(run.rounds.remove(0)),
            source: Box::new(source),
        }),
    }
}

/// Asks the source what only it knows about a replication planned on inventories the
/// caller has (listed, or simulated by a dry run), and puts it into `req`: the snapshot
/// each target dataset's resume token brings, the tokens that are stale, and the source
/// snapshots carrying this target's cursor hold. [`run_replication`] does the same
/// before each of its rounds; a dry run calls this, then [`plan_replication`].
///
/// # Errors
/// A resume token the source cannot read for another reason than being stale (the
/// source unreachable, `zfs` failing): planning without it would resume blindly.
pub fn ask_source(
    sender: &dyn ZfsBackend,
    req: &mut ReplicationRequest<'_>,
) -> Result<(), ReplicateError> {
    let (mut resume_guids, mut stale_tokens) = (BTreeMap::new(), BTreeSet::new());
    decode_tokens(sender, req, &mut resume_guids, &mut stale_tokens)?;
    req.resume_guids.extend(resume_guids);
    req.stale_tokens.extend(stale_tokens);
    if req.cursor_holds.is_none() {
        req.cursor_holds = cursor_holds(sender, req);
    }
    Ok(())
}

/// One list → decode → plan → apply round (planned on `listed` when given);
/// learned tokens accumulate in `run`.
#[expect(
    clippy::too_many_arguments,
    reason = "the runner's inputs and what it learned so far; a struct would only rename them"
)]
fn round(
    backends: &mut dyn Backends,
    template: &ReplicationRequest<'_>,
    listed: Option<BTreeMap<Location, Inventory>>,
    now: DateTime<Utc>,
    options: &ReplicateOptions,
    observer: &mut dyn Observer,
    mut journal: Option<&mut Journal>,
    run: &mut ReplicationRun,
) -> Result<ReplicationRound, ReplicateError> {
    let inventories = match listed {
        Some(listed) => listed,
        None => list_sides(backends, template)?,
    };
    let empty = Inventory::new();
    let source = inventories.get(&template.source_location).unwrap_or(&empty);
    let target = inventories.get(&template.target_location).unwrap_or(&empty);

    let mut req: ReplicationRequest<'_> = template.clone();
    req.source = source;
    req.target = target;
    {
        let sender = backend(backends, &template.source_location)?;
        decode_tokens(&*sender, &req, &mut run.resume_guids, &mut run.stale_tokens)?;
        if req.cursor_holds.is_none() {
            req.cursor_holds = cursor_holds(&*sender, &req);
        }
    }
    req.stale_tokens.extend(run.stale_tokens.iter().cloned());
    for (d, g) in &run.resume_guids {
        req.resume_guids.entry(d.clone()).or_insert(*g);
    }
    let mut plan = plan_replication(&req, now).map_err(|source| ReplicateError::Plan {
        target_name: template.target_name.clone(),
        source,
    })?;
    // Estimates (one `zfs send -nvP` per transfer) serve only a progress display.
    let estimate_failures = if options.estimate && observer.wants_bytes() {
        estimate_transfers(&mut plan, backends)
    } else {
        Vec::new()
    };
    let report = apply_with(
        &plan,
        backends,
        observer,
        journal.as_deref_mut(),
        &options.apply,
    );
    let protected = if report.is_success() {
        None
    } else {
        protect_bases(backends, template, now, options, observer, journal)
    };
    Ok(ReplicationRound {
        protected,
        inventories,
        plan,
        report,
        estimate_failures,
    })
}

/// After a failed round, protects the newest snapshot each target shares with the
/// source (as the planner's cursor would), when it is not protected yet: what arrived
/// before the failure is the base of the next run, and the source must keep it. The
/// next run's plan releases the cursors it no longer needs. Applied like any plan (the
/// observer and the journal see it). Best effort: `None` when nothing needed
/// protecting or the sides cannot be listed.
fn protect_bases(
    backends: &mut dyn Backends,
    template: &ReplicationRequest<'_>,
    now: DateTime<Utc>,
    options: &ReplicateOptions,
    observer: &mut dyn Observer,
    journal: Option<&mut Journal>,
) -> Option<(Plan, Report)> {
    let inventories = list_sides(backends, template).ok()?;
    let empty = Inventory::new();
    let mut req: ReplicationRequest<'_> = template.clone();
    req.source = inventories.get(&template.source_location).unwrap_or(&empty);
    req.target = inventories.get(&template.target_location).unwrap_or(&empty);
    let holds = match req.options.cursor {
        Cursor::Hold => {
            let sender = backends.backend(&template.source_location)?;
            Some(cursor_holds(&*sender, &req)?)
        }
        _ => None,
    };
    let here = &template.source_location;
    let tag = cursor_hold_tag(&template.target_name);
    let mut plan = Plan::new(now);
    for src in mapped_sources(&req) {
        for target in req
            .mappings
            .iter()
            .filter_map(|m| m.target_of(&src.name).ok().flatten())
        {
            let Some(tgt) = req.target.dataset(&target) else {
                continue;
            };
            let Some(CommonBase::Snapshot { source: s, .. }) = newest_common(src, tgt) else {
                continue;
            };
            let name = src.snapshot_name(s);
            let reason = format!(
                "protect @{}, the newest snapshot {target} shares with {} after an interrupted run",
                s.name, src.name
            );
            match (&holds, req.options.cursor) {
                (Some(held), Cursor::Hold) if !held.contains(&s.guid) => {
                    plan.steps.push(Step::Hold(HoldStep::new(
                        here.clone(),
                        name,
                        s.guid,
                        tag.clone(),
                        reason,
                    )));
                }
                (_, Cursor::Bookmark) => {
                    let Ok(mark) = cursor_bookmark_name(&src.name, &template.target_name, s.guid)
                    else {
                        continue;
                    };
                    if !src.bookmarks.iter().any(|b| &b.name == mark.short()) {
                        plan.steps.push(Step::Bookmark(BookmarkStep::new(
                            here.clone(),
                            name,
                            s.guid,
                            mark,
                            reason,
                        )));
                    }
                }
                _ => {}
            }
        }
    }
    if plan.steps.is_empty() {
        return None;
    }
    let report = apply_with(&plan, backends, observer, journal, &options.apply);
    Some((plan, report))
}

fn backend<'a>(
    backends: &'a mut dyn Backends,
    location: &Location,
) -> Result<&'a mut dyn ZfsBackend, ReplicateError> {
    backends
        .backend(location)
        .ok_or_else(|| ReplicateError::NoBackend {
            location: location.clone(),
        })
}

/// The mapped roots at each location, without roots inside other roots.
fn roots(template: &ReplicationRequest<'_>) -> BTreeMap<Location, Vec<DatasetName>> {
    let mut map: BTreeMap<Location, Vec<DatasetName>> = BTreeMap::new();
    let mut add = |loc: &Location, root: &DatasetName| {
        let roots = map.entry(loc.clone()).or_default();
        if !roots.iter().any(|r| r.contains(root)) {
            roots.retain(|r| !root.contains(r));
            roots.push(root.clone());
        }
    };
    for m in &template.mappings {
        add(&template.source_location, &m.source_root);
        add(&template.target_location, &m.target_root);
    }
    // Both sides are listed even without mappings, so the run has inventories to show.
    map.entry(template.source_location.clone()).or_default();
    map.entry(template.target_location.clone()).or_default();
    map
}

fn is_missing(e: &ListError) -> bool {
    e.failure()
        .is_some_and(|f| f.kind == FailureKind::NoSuchDataset)
}

fn list_sides(
    backends: &mut dyn Backends,
    template: &ReplicationRequest<'_>,
) -> Result<BTreeMap<Location, Inventory>, ReplicateError> {
    let mut out = BTreeMap::new();
    for (location, roots) in roots(template) {
        let b = backend(backends, &location)?;
        let inv = list_roots(&*b, &roots).map_err(|source| ReplicateError::List {
            location: location.clone(),
            source,
        })?;
        out.insert(location, inv);
    }
    Ok(out)
}

/// One listing of `roots`; when one of them does not exist (a target not received
/// yet), each is listed alone and the missing ones are left out (the planner reports a
/// missing source).
fn list_roots(backend: &dyn ZfsBackend, roots: &[DatasetName]) -> Result<Inventory, ListError> {
    if roots.is_empty() {
        return Ok(Inventory::new());
    }
    match backend.list(roots) {
        Err(e) if is_missing(&e) && roots.len() > 1 => {
            let mut inv = Inventory::new();
            for root in roots {
                match backend.list(std::slice::from_ref(root)) {
                    Ok(part) => {
                        for (_, d) in part.datasets {
                            inv.insert(d);
                        }
                    }
                    Err(e) if is_missing(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(inv)
        }
        Err(e) if is_missing(&e) => Ok(Inventory::new()),
        other => other,
    }
}

/// Decodes the resume token of every mapped target dataset that has one and that
/// neither `req` nor what was learned before knows yet, adding what it learns to
/// `resume_guids` and `stale_tokens`.
fn decode_tokens(
    sender: &dyn ZfsBackend,
    req: &ReplicationRequest<'_>,
    resume_guids: &mut BTreeMap<DatasetName, Guid>,
    stale_tokens: &mut BTreeSet<DatasetName>,
) -> Result<(), ReplicateError> {
    for src in mapped_sources(req) {
        for target in req
            .mappings
            .iter()
            .filter_map(|m| m.target_of(&src.name).ok().flatten())
        {
            let Some(token) = req
                .target
                .dataset(&target)
                .and_then(|d| d.props.receive_resume_token.as_ref())
            else {
                continue;
            };
            if req.stale_tokens.contains(&target)
                || req.resume_guids.contains_key(&target)
                || stale_tokens.contains(&target)
                || resume_guids.contains_key(&target)
            {
                continue;
            }
            match sender.resume_token(token) {
                Ok(t) => {
                    resume_guids.insert(target, t.toguid);
                }
                Err(e) if e.is_stale() => {
                    stale_tokens.insert(target);
                }
                Err(source) => {
                    return Err(ReplicateError::ResumeToken {
                        dataset: target,
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

/// The source datasets the mappings replicate.
fn mapped_sources<'a>(req: &ReplicationRequest<'a>) -> Vec<&'a Dataset> {
    sources_under(req.source, &req.mappings)
}

fn sources_under<'a>(source: &'a Inventory, mappings: &[DatasetMapping]) -> Vec<&'a Dataset> {
    let mut out = Vec::new();
    for m in mappings {
        if m.recursive {
            let root = m.source_root.as_str();
            out.extend(
                source
                    .datasets
                    .range(m.source_root.clone()..)
                    .take_while(|(n, _)| n.as_str().starts_with(root))
                    .filter(|(n, _)| m.covers(n))
                    .map(|(_, d)| d),
            );
        } else {
            out.extend(source.dataset(&m.source_root));
        }
    }
    out
}

/// The guids of the mapped source snapshots that carry the request's target's cursor
/// hold (`zsnap:<target>`), from one `zfs holds` of the snapshots that have any hold
/// (none: no call): what [`ReplicationRequest::cursor_holds`] wants, so the planner
/// releases every cursor hold but the current one, including one a failed
/// `zfs release` left. `None` when that listing fails: the planner then assumes what a
/// completed run leaves.
fn cursor_holds(sender: &dyn ZfsBackend, req: &ReplicationRequest<'_>) -> Option<BTreeSet<Guid>> {
    let mut held: BTreeMap<SnapshotName, Guid> = BTreeMap::new();
    for d in mapped_sources(req) {
        for s in d.snapshots.iter().filter(|s| s.userrefs > 0) {
            held.insert(d.snapshot_name(s), s.guid);
        }
    }
    if held.is_empty() {
        return Some(BTreeSet::new());
    }
    let names: Vec<SnapshotName> = held.keys().cloned().collect();
    let tag = cursor_hold_tag(&req.target_name);
    let holds = sender.holds(&names).ok()?;
    Some(
        holds
            .into_iter()
            .filter(|(_, t)| *t == tag)
            .filter_map(|(s, _)| held.get(&s).copied())
            .collect(),
    )
}

fn stale(f: Option<&ZfsFailure>) -> bool {
    f.is_some_and(|f| f.kind == FailureKind::StaleResumeToken)
}

fn send_is_stale(e: &SendError) -> bool {
    stale(e.failure())
}

/// Whether a failed step failed because the resume token it sent is stale: the sender
/// said so, whatever the receiver then said about the empty stream.
pub fn step_error_is_stale_token(e: &StepError) -> bool {
    match e {
        StepError::Send(s) => send_is_stale(s),
        StepError::Receive(r) => match r {
            RecvError::Command { sender, source, .. } => {
                stale(source.failure()) || sender.as_deref().is_some_and(send_is_stale)
            }
            RecvError::Sender { source, .. } => send_is_stale(source),
            _ => false,
        },
        _ => false,
    }
}

/// The target datasets whose resume transfer failed on a stale token.
fn stale_resumes(plan: &Plan, report: &Report) -> BTreeSet<DatasetName> {
    report
        .failures()
        .filter_map(|(i, e)| match plan.steps.get(i) {
            Some(Step::Transfer(t))
                if matches!(t.send, SendSpec::Resume { .. }) && step_error_is_stale_token(e) =>
            {
                Some(t.target.clone())
            }
            _ => None,
        })
        .collect()
}
