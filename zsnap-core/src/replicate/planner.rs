//! The replication planner: one pass over the mapped datasets, parents first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::inventory::{Dataset, DatasetKind, Guid, Snapshot, MANAGED_PROPERTY};
use crate::plan::{
    AbortReceiveStep, BookmarkStep, DestroyBookmarkStep, DestroyStep, HoldStep, Note, Plan,
    Protection, RecvOptions, SendBase, SendSpec, SnapshotRef, Step, TransferStep, Verdict,
};
use crate::policy::{DatasetSelection, Ownership, Policy, MANAGED_VALUE};
use crate::prune::{plan_prune, PruneRequest};
use crate::retention::{evaluate, Candidate};
use crate::zfs_names::{DatasetName, ShortName};

use super::common::{bookmark_index, newest_common_in, snapshot_index, CommonBase};
use super::cursor::{cursor_bookmark_name, cursor_hold_tag, is_cursor_bookmark};
use super::error::ReplicationError;
use super::request::{Cursor, RawMode, ReplicationRequest};

/// Properties that only filesystems have: `zfs recv -x` of one of them into a volume
/// is refused, so they are dropped from the exclusions of volumes.
const FILESYSTEM_ONLY: [&str; 4] = ["mountpoint", "canmount", "sharenfs", "sharesmb"];

/// Plans the replication of the mapped source datasets to the target.
///
/// For each mapped dataset, parents before children, the plan holds in this order (the
/// cursor steps of item 3 come last, after every dataset's transfers):
/// 1. the interrupted receive, if the target holds one: `zfs recv -A` when it is known
///    to be stale ([`ReplicationRequest::stale_tokens`], or its snapshot is gone on the
///    source), else a resume (`zfs send -t`). When the snapshot the resume produces is
///    unknown ([`ReplicationRequest::resume_guids`]), nothing else is planned for that
///    dataset: the next run continues from what the resume left;
/// 2. the transfers, comparing snapshots by guid and ordering them by createtxg:
///    - target missing: a full send of the oldest snapshot the target wants, then
///      incrementals up to the newest wanted one;
///    - target sharing a snapshot with the source (the newest common one is the
///      *base*, on the source as a snapshot or, when pruned there, as a bookmark):
///      incrementals from the base over the wanted snapshots newer than it. A run of
///      wanted snapshots with nothing unwanted in between is one `-I` range, an
///      unwanted one in between splits it with a `-i` step that skips it; so when every
///      snapshot is wanted, the whole update is one `-I base newest`. Nothing older
///      than the base is ever sent, and nothing the target does not want;
///    - target diverged (snapshots newer than the base, or none in common but
///      snapshots) or existing without snapshots: an error, unless rollback is allowed;
///      then the first incremental is forced (`-F`, which rolls the target back to the
///      base), or, with nothing in common, the target's snapshots are destroyed and a
///      forced full send overwrites it;
/// 3. the cursor on the source ([`Cursor`]): the newest snapshot in common after the
///    transfers is held or bookmarked, and the previous cursor released or destroyed.
///    The cursor steps of all datasets come after all their transfers, grouped by kind
///    (holds, bookmarks, releases, bookmark destroys), so the executor moves every
///    cursor with one `zfs hold` and one `zfs release` per run, whatever the number of
///    datasets. Until they run, the previous cursor still protects each base.
///
/// Every transfer receives with `-s -u`, the configured `-x`/`-o` properties, and is raw
/// for encrypted sources. Finally, with [`ReplicationOptions::prune_target`], the
/// target is pruned by its own policy as it will be after the transfers.
///
/// [`ReplicationOptions::prune_target`]: super::ReplicationOptions::prune_target
///
/// # Errors
/// See [`ReplicationError`]: a missing source root, conflicting mappings, a diverged
/// target without allowed rollback, an encrypted source that may not be sent raw. The
/// first dataset in error stops the whole plan.
///
/// # Example
/// The target has `@a`; the source has `@a` to `@f` and the target wants all but `@c`:
/// `-i a b`, `-i b d` (skipping `@c`), `-I d f` (with `@e`, as every snapshot between
/// is wanted), then the cursor hold goes to `@f`. Applied, the plan leaves nothing to
/// do.
/// ```
/// use std::collections::BTreeMap;
/// use chrono::{TimeZone, Utc};
/// use zsnap_core::replicate::{plan_replication, DatasetMapping, ReplicationRequest, SnapshotFilter};
/// use zsnap_core::{Dataset, DatasetKind, Guid, Inventory, Location, SendSpec, Snapshot, Step};
///
/// let at = |h| Utc.with_ymd_and_hms(2026, 11, 23, h, 0, 0).unwrap();
/// let dataset = |name: &str, snaps: &[(&str, u64)]| {
///     let mut d = Dataset::new(name.parse().unwrap(), DatasetKind::Filesystem, Guid(1));
///     for (i, (n, g)) in snaps.iter().enumerate() {
///         d.insert_snapshot(Snapshot::new(n.parse().unwrap(), Guid(*g), 10 + i as u64, at(i as u32)));
///     }
///     d
/// };
/// let mut src = Inventory::new();
/// src.insert(dataset("tank/a", &[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)]));
/// let mut dst = Inventory::new();
/// dst.insert(dataset("backup", &[]));
/// dst.insert(dataset("backup/a", &[("a", 1)]));
///
/// let not_c = |_: &Dataset, s: &Snapshot| s.name.as_str() != "c";
/// let (here, there) = (Location::local(), Location("backup-host".to_owned()));
/// let mut req = ReplicationRequest::new(
///     here.clone(), &src, there.clone(), "offsite", &dst,
///     vec![DatasetMapping::new("tank/a".parse().unwrap(), "backup/a".parse().unwrap())],
/// );
/// req.filter = Some(SnapshotFilter(&not_c));
/// let plan = plan_replication(&req, at(12)).unwrap();
///
/// let sends: Vec<String> = plan.steps.iter().filter_map(|s| match s {
///     Step::Transfer(t) => match &t.send {
///         SendSpec::Incremental { base, snapshot, intermediates, .. } => Some(format!(
///             "{} {} {}", if *intermediates { "-I" } else { "-i" }, base.guid(), snapshot.name)),
///         _ => None,
///     },
///     _ => None,
/// }).collect();
/// assert_eq!(sends, ["-i 1 b", "-i 2 d", "-I 4 f"]);
/// assert!(matches!(plan.steps.last(), Some(Step::Hold(h)) if h.tag == "zsnap:offsite"));
///
/// let after = plan.simulate_at(&BTreeMap::from([(here, src.clone()), (there.clone(), dst.clone())])).unwrap();
/// let mut again = req.clone();
/// let (src2, dst2) = (after[&Location::local()].clone(), after[&there].clone());
/// again.source = &src2;
/// again.target = &dst2;
/// assert!(plan_replication(&again, at(12)).unwrap().is_empty());
/// ```
pub fn plan_replication(
    req: &ReplicationRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Plan, ReplicationError> {
    let pairs = pairs(req)?;
    let mut planner = Planner {
        req,
        plan: Plan::new(now),
        exists_after: HashSet::new(),
        protected: BTreeMap::new(),
        pending_resume: HashSet::new(),
        cursor: Vec::new(),
    };
    for pair in &pairs {
        planner.dataset(pair)?;
    }
    // The cursors move after every transfer, holds first, then bookmarks, releases and
    // bookmark destroys: so that one `zfs hold` (and one `zfs release`) can move every
    // dataset's cursor at once. A run stopped by a failed transfer moves no cursor;
    // the old one still protects the base, and the runner protects what arrived.
    let rank = |s: &Step| match s {
        Step::Hold(_) => 0,
        Step::Bookmark(_) => 1,
        Step::Release(_) => 2,
        _ => 3,
    };
    let mut cursor = std::mem::take(&mut planner.cursor);
    cursor.sort_by_key(rank);
    planner.plan.steps.extend(cursor);
    if req.options.prune_target {
        planner.prune_target()?;
    }
    Ok(planner.plan)
}

/// One source dataset and the target dataset it is received as.
struct Pair<'a> {
    source: &'a Dataset,
    target: DatasetName,
    /// Whether `target` is its mapping's target root (whose parent the target inventory
    /// need not show).
    is_root: bool,
}

/// The mapped datasets in target name order, which puts every parent before its
/// children.
fn pairs<'a>(req: &ReplicationRequest<'a>) -> Result<Vec<Pair<'a>>, ReplicationError> {
    let mut by_target: BTreeMap<DatasetName, Pair<'a>> = BTreeMap::new();
    let mut by_source: HashMap<&DatasetName, DatasetName> = HashMap::new();
    for m in &req.mappings {
        if req.source.dataset(&m.source_root).is_none() {
            return Err(ReplicationError::SourceMissing {
                dataset: m.source_root.clone(),
            });
        }
        let sources: Vec<&'a Dataset> = if m.recursive {
            let source: &'a crate::inventory::Inventory = req.source;
            source
                .datasets
                .range(m.source_root.clone()..)
                .map(|(_, d)| d)
                .take_while(|d| d.name.as_str().starts_with(m.source_root.as_str()))
                .filter(|d| m.source_root.contains(&d.name))
                .collect()
        } else {
            req.source.dataset(&m.source_root).into_iter().collect()
        };
        for src in sources {
            let target = match m.target_of(&src.name) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(cause) => {
                    return Err(ReplicationError::TargetName {
                        source_dataset: src.name.clone(),
                        target_root: m.target_root.clone(),
                        cause,
                    })
                }
            };
            if let Some(first) = by_source.get(&src.name) {
                return Err(ReplicationError::MappedTwice {
                    source_dataset: src.name.clone(),
                    first: first.clone(),
                    second: target,
                });
            }
            if let Some(other) = by_target.get(&target) {
                return Err(ReplicationError::TargetConflict {
                    target_dataset: target,
                    first: other.source.name.clone(),
                    second: src.name.clone(),
                });
            }
            by_source.insert(&src.name, target.clone());
            let is_root = target == m.target_root;
            by_target.insert(
                target.clone(),
                Pair {
                    source: src,
                    target,
                    is_root,
                },
            );
        }
    }
    Ok(by_target.into_values().collect())
}

struct Planner<'r, 'a> {
    req: &'r ReplicationRequest<'a>,
    plan: Plan,
    /// Target datasets that exist once the steps planned so far have run.
    exists_after: HashSet<DatasetName>,
    /// Per target dataset, the guid of the newest snapshot it shares with the source
    /// once the plan has run: what target pruning must keep.
    protected: BTreeMap<DatasetName, Guid>,
    /// Target datasets left with a resume whose outcome is unknown: not pruned.
    pending_resume: HashSet<DatasetName>,
    /// The cursor steps of every dataset, planned after all transfers (see
    /// [`plan_replication`]).
    cursor: Vec<Step>,
}

/// Where the transfers of one dataset start.
enum Start<'a> {
    /// A full send; `force` when the target exists (without snapshots by then).
    Full { force: bool },
    /// Incrementals from the newest common snapshot or bookmark.
    Incremental(CommonBase<'a>),
}

/// What the previous transfer left the target with, as a base for the next one.
#[derive(Clone, Copy)]
enum Prev<'a> {
    /// The source snapshot at this index.
    Snapshot(usize),
    /// A source bookmark (`-I` cannot start from one).
    Bookmark(&'a crate::inventory::Bookmark),
}

impl<'r, 'a> Planner<'r, 'a> {
    fn dataset(&mut self, pair: &Pair<'a>) -> Result<(), ReplicationError> {
        let req = self.req;
        let src = pair.source;
        let tname = &pair.target;
        let tgt = req.target.dataset(tname);
        let encrypted = src.props.is_encrypted();
        let raw = match req.options.raw {
            RawMode::Auto => encrypted,
            RawMode::Always => true,
            RawMode::Never => {
                if encrypted {
                    return Err(ReplicationError::EncryptedNotRaw {
                        source_dataset: src.name.clone(),
                        target_name: req.target_name.clone(),
                    });
                }
                false
            }
        };
        if let Some(t) = tgt {
            if encrypted && !t.snapshots.is_empty() && t.props.encryption.as_deref() == Some("off")
            {
                return Err(ReplicationError::EncryptionMismatch {
                    source_dataset: src.name.clone(),
                    target_dataset: tname.clone(),
                });
            }
        }

        let snaps = snapshot_index(src);
        let bookmarks = bookmark_index(src);
        let mut steps: Vec<Step> = Vec::new();
        let mut exists = tgt.is_some();
        let mut resumed_guid: Option<Guid> = None;
        let mut tsnaps: Vec<&Snapshot> = tgt
            .map(|t| t.snapshots.iter().collect())
            .unwrap_or_default();

        // 1. An interrupted receive blocks every other receive into the dataset.
        if let Some((t, token)) =
            tgt.and_then(|t| t.props.receive_resume_token.as_ref().map(|tok| (t, tok)))
        {
            let toguid = req.resume_guids.get(tname).copied();
            let stale = if req.stale_tokens.contains(tname) {
                Some("an earlier resume of it failed, so its resume token is stale".to_owned())
            } else {
                toguid.filter(|g| !snaps.contains_key(g)).map(|g| {
                    format!(
                        "the snapshot it was receiving (guid {g}) is gone on {}",
                        src.name
                    )
                })
            };
            if let Some(why) = stale {
                let reason = format!("abort the interrupted receive into {tname}: {why}");
                self.plan.notes.push(Note::new(
                    Some(tname.clone()),
                    format!(
                        "the interrupted receive is aborted and replication planned afresh: {why}"
                    ),
                ));
                steps.push(Step::AbortReceive(AbortReceiveStep::new(
                    req.target_location.clone(),
                    tname.clone(),
                    reason,
                )));
                if t.snapshots.is_empty() {
                    // the abort removes the dataset an interrupted full receive created
                    exists = false;
                }
            } else {
                let resumed = toguid
                    .and_then(|g| snaps.get(&g))
                    .map(|&i| &src.snapshots[i]);
                let reason = match resumed {
                    Some(s) => {
                        format!("resume the interrupted receive of @{} into {tname}", s.name)
                    }
                    None => format!("resume the interrupted receive into {tname}"),
                };
                let mut step = TransferStep::new(
                    req.source_location.clone(),
                    req.target_location.clone(),
                    src.name.clone(),
                    tname.clone(),
                    SendSpec::Resume {
                        token: token.clone(),
                        snapshot: resumed.map(|s| SnapshotRef::new(s.name.clone(), s.guid)),
                    },
                    reason,
                );
                step.raw = raw;
                step.recv = self.recv_options(src, false);
                steps.push(Step::Transfer(step));
                match resumed {
                    Some(s) => {
                        resumed_guid = Some(s.guid);
                        tsnaps.push(s);
                    }
                    None => {
                        self.plan.notes.push(Note::new(
                            Some(tname.clone()),
                            format!("only the interrupted receive is resumed: which snapshot it brings is unknown (no decoded resume token), so the rest of {} is planned on the next run", src.name),
                        ));
                        self.plan.steps.extend(steps);
                        self.exists_after.insert(tname.clone());
                        self.pending_resume.insert(tname.clone());
                        return Ok(());
                    }
                }
            }
        }

        // 2. Where to start, and whether the target must be rolled back.
        let base = newest_common_in(src, &snaps, &bookmarks, tsnaps.iter().copied());
        let mut rollback: Option<String> = None;
        let mut destroy_first: Option<Step> = None;
        let start = match base {
            _ if !exists => Start::Full { force: false },
            None if tsnaps.is_empty() => {
                if !req.options.allow_rollback {
                    return Err(ReplicationError::TargetExists {
                        source_dataset: src.name.clone(),
                        target_dataset: tname.clone(),
                        target_name: req.target_name.clone(),
                    });
                }
                self.check_overwrite(src, tgt, tname, raw)?;
                rollback = Some(format!(
                    "overwrites {tname}, which exists without snapshots (rollback allowed for target {:?})",
                    req.target_name
                ));
                Start::Full { force: true }
            }
            None => {
                let newer = &tsnaps[..];
                self.check_divergence(src, tname, None, newer)?;
                self.check_overwrite(src, tgt, tname, raw)?;
                let refs = newer
                    .iter()
                    .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
                    .collect();
                destroy_first = Some(Step::Destroy(DestroyStep::new(
                    req.target_location.clone(),
                    tname.clone(),
                    refs,
                    format!(
                        "{tname} has nothing in common with {}: destroy its snapshots so a full send can overwrite it (rollback allowed for target {:?})",
                        src.name, req.target_name
                    ),
                )));
                Start::Full { force: true }
            }
            Some(b) => {
                let pos = tsnaps
                    .iter()
                    .rposition(|s| s.guid == b.guid())
                    .expect("the base was found among the target's snapshots");
                let newer = &tsnaps[pos + 1..];
                if !newer.is_empty() {
                    self.check_divergence(src, tname, Some(&b.target().name), newer)?;
                    rollback = Some(format!(
                        "rolls {tname} back to @{}, destroying {} (rollback allowed for target {:?})",
                        b.target().name,
                        list(newer.iter().map(|s| &s.name)),
                        req.target_name
                    ));
                }
                Start::Incremental(b)
            }
        };

        // 3. The wanted snapshots after the start, oldest first.
        let from = match &start {
            Start::Full { .. } => 0,
            Start::Incremental(CommonBase::Snapshot { source, .. }) => snaps[&source.guid] + 1,
            Start::Incremental(CommonBase::Bookmark { source, .. }) => src
                .snapshots
                .partition_point(|s| s.createtxg <= source.createtxg),
        };
        // What the target keeps of its own: everything up to the base (newer snapshots
        // are rolled back by the first receive).
        let kept_on_target: &[&Snapshot] = match &start {
            Start::Full { .. } => &[],
            Start::Incremental(b) => {
                let pos = tsnaps
                    .iter()
                    .rposition(|s| s.guid == b.guid())
                    .expect("the base was found among the target's snapshots");
                &tsnaps[..=pos]
            }
        };
        let wanted = self.wanted(src, kept_on_target, resumed_guid, from);
        let w: Vec<usize> = (from..src.snapshots.len()).filter(|&i| wanted[i]).collect();

        if w.is_empty() {
            if rollback.is_some() {
                self.plan.notes.push(Note::new(
                    Some(tname.clone()),
                    format!("not rolled back: {} has nothing new the target wants, so nothing is received", src.name),
                ));
            } else if matches!(start, Start::Full { .. }) && exists {
                self.plan.notes.push(Note::new(
                    Some(tname.clone()),
                    format!(
                        "left as it is: {} has no snapshot the target wants",
                        src.name
                    ),
                ));
            } else if !exists {
                self.plan.notes.push(Note::new(
                    Some(tname.clone()),
                    format!("not created: {} has no snapshot the target wants", src.name),
                ));
            }
        } else if !exists && !pair.is_root {
            if let Some(parent) = tname.parent() {
                if !self.exists_after.contains(&parent) && req.target.dataset(&parent).is_none() {
                    self.plan.notes.push(Note::new(
                        Some(tname.clone()),
                        format!("{} is not replicated: the parent {parent} does not exist on the target and this plan does not create it", src.name),
                    ));
                    self.plan.steps.extend(steps);
                    return Ok(());
                }
            }
        }

        steps.extend(destroy_first.filter(|_| !w.is_empty()));
        let mut force_next = rollback.clone();
        let mut prev = match start {
            Start::Full { force } => {
                if let Some(&first) = w.first() {
                    let s = &src.snapshots[first];
                    let mut reason = if exists {
                        format!(
                            "full send of @{}, the oldest snapshot the target wants",
                            s.name
                        )
                    } else {
                        format!(
                            "{tname} does not exist: full send of @{}, the oldest snapshot the target wants",
                            s.name
                        )
                    };
                    if let Some(r) = force_next.take() {
                        let _ = write!(reason, "; {r}");
                    }
                    steps.push(self.transfer(
                        src,
                        tname,
                        SendSpec::Full {
                            snapshot: SnapshotRef::new(s.name.clone(), s.guid),
                        },
                        raw,
                        force,
                        reason,
                    ));
                }
                w.first().map(|&i| Prev::Snapshot(i))
            }
            Start::Incremental(CommonBase::Snapshot { source, .. }) => {
                Some(Prev::Snapshot(snaps[&source.guid]))
            }
            Start::Incremental(CommonBase::Bookmark { source, .. }) => Some(Prev::Bookmark(source)),
        };
        let mut k = usize::from(matches!(start, Start::Full { .. }));
        while k < w.len() {
            let p = prev.expect("a full send set the previous snapshot before any incremental");
            let (send, next, mut reason) = match p {
                Prev::Bookmark(b) => {
                    let to = &src.snapshots[w[k]];
                    (
                        SendSpec::Incremental {
                            base: SendBase::Bookmark {
                                name: b.name.clone(),
                                guid: b.guid,
                            },
                            snapshot: SnapshotRef::new(to.name.clone(), to.guid),
                            intermediates: false,
                            expected: Vec::new(),
                        },
                        k,
                        format!(
                            "incremental from bookmark #{} (the snapshot is gone on the source) to @{}",
                            b.name, to.name
                        ),
                    )
                }
                Prev::Snapshot(p) => {
                    let base = &src.snapshots[p];
                    let base_ref = SendBase::Snapshot {
                        name: base.name.clone(),
                        guid: base.guid,
                    };
                    if w[k] == p + 1 {
                        let mut j = k;
                        while j + 1 < w.len() && w[j + 1] == w[j] + 1 {
                            j += 1;
                        }
                        let to = &src.snapshots[w[j]];
                        if j == k {
                            (
                                SendSpec::Incremental {
                                    base: base_ref,
                                    snapshot: SnapshotRef::new(to.name.clone(), to.guid),
                                    intermediates: false,
                                    expected: Vec::new(),
                                },
                                j,
                                format!("incremental from @{} to @{}", base.name, to.name),
                            )
                        } else {
                            let expected = w[k..=j]
                                .iter()
                                .map(|&i| {
                                    let s = &src.snapshots[i];
                                    SnapshotRef::new(s.name.clone(), s.guid)
                                })
                                .collect();
                            (
                                SendSpec::Incremental {
                                    base: base_ref,
                                    snapshot: SnapshotRef::new(to.name.clone(), to.guid),
                                    intermediates: true,
                                    expected,
                                },
                                j,
                                format!(
                                    "incremental from @{} up to @{}, every snapshot between them wanted",
                                    base.name,
                                    to.name
                                ),
                            )
                        }
                    } else {
                        let to = &src.snapshots[w[k]];
                        let skipped = w[k] - p - 1;
                        (
                            SendSpec::Incremental {
                                base: base_ref,
                                snapshot: SnapshotRef::new(to.name.clone(), to.guid),
                                intermediates: false,
                                expected: Vec::new(),
                            },
                            k,
                            format!(
                                "incremental from @{} to @{}, skipping {} the target does not want",
                                base.name,
                                to.name,
                                if skipped == 1 {
                                    "1 snapshot".to_owned()
                                } else {
                                    format!("{skipped} snapshots")
                                }
                            ),
                        )
                    }
                }
            };
            let force = force_next.is_some();
            if let Some(r) = force_next.take() {
                let _ = write!(reason, "; {r}");
            }
            steps.push(self.transfer(src, tname, send, raw, force, reason));
            prev = Some(Prev::Snapshot(w[next]));
            k = next + 1;
        }

        // 4. The cursor: the newest snapshot in common once the transfers have run.
        let base_snapshot = base.and_then(|b| b.source_snapshot());
        let cursor = w.last().map(|&i| &src.snapshots[i]).or(base_snapshot);
        let sent = !w.is_empty();
        if let Some(c) = cursor {
            let mut cursor = Vec::new();
            self.cursor_steps(src, c, base_snapshot, sent, &mut cursor)?;
            self.cursor.extend(cursor);
            self.protected.insert(tname.clone(), c.guid);
        } else if let Some(b) = base {
            self.protected.insert(tname.clone(), b.guid());
        }

        if exists || sent {
            self.exists_after.insert(tname.clone());
        }
        self.plan.steps.extend(steps);
        Ok(())
    }

    /// Appends the pruning of the target datasets, by the target's policy, on the target
    /// as the steps planned so far leave it, protecting the newest snapshot each shares
    /// with the source. Datasets left with a resume of unknown outcome are not pruned.
    fn prune_target(&mut self) -> Result<(), ReplicationError> {
        let req = self.req;
        let Some(policy) = req.target_policy else {
            return Err(ReplicationError::PruneWithoutPolicy {
                target_name: req.target_name.clone(),
            });
        };
        if !policy.prune {
            self.plan.notes.push(Note::new(
                None,
                format!(
                    "target {}: its policy says prune = false; the target is not pruned",
                    req.target_name
                ),
            ));
            return Ok(());
        }
        let invs = if req.source_location == req.target_location {
            // One location listed once or twice: the union of both listings.
            let mut inv = req.source.clone();
            for d in req.target.datasets.values() {
                inv.insert(d.clone());
            }
            BTreeMap::from([(req.target_location.clone(), inv)])
        } else {
            BTreeMap::from([
                (req.source_location.clone(), req.source.clone()),
                (req.target_location.clone(), req.target.clone()),
            ])
        };
        let mut after = self
            .plan
            .simulate_at(&invs)
            .map_err(|cause| ReplicationError::Simulation { cause })?;
        let target = after
            .remove(&req.target_location)
            .expect("simulate_at returns every location it was given");
        let policy_name = req
            .target_policy_name
            .clone()
            .unwrap_or_else(|| req.target_name.clone());
        let selections: Vec<DatasetSelection> = self
            .exists_after
            .iter()
            .filter(|d| !self.pending_resume.contains(*d) && target.dataset(d).is_some())
            .map(|d| DatasetSelection::new(d.clone(), policy_name.clone()))
            .collect();
        let policies = BTreeMap::from([(policy_name.clone(), policy.clone())]);
        // The prune planner protects "common with target X"; on a target the other side
        // is its source, which the decisions then say.
        let common_with = format!("{} (source)", req.source_location);
        let protected: BTreeMap<DatasetName, Vec<(String, Guid)>> = self
            .protected
            .iter()
            .map(|(d, g)| (d.clone(), vec![(common_with.clone(), *g)]))
            .collect();
        let prune = PruneRequest::new(req.target_location.clone(), &target, &selections, &policies)
            .with_protected(&protected);
        let mut pruned = plan_prune(&prune, self.plan_now());
        for d in &mut pruned.decisions {
            if let Verdict::Protect { protections, .. } = &mut d.verdict {
                for p in protections.iter_mut() {
                    if matches!(p, Protection::CommonWithTarget { target } if *target == common_with)
                    {
                        *p = Protection::CommonWithSource {
                            source: req.source_location.to_string(),
                        };
                    }
                }
            }
        }
        self.plan.extend(pruned);
        Ok(())
    }

    /// Refuses a divergence unless rollback is allowed and possible.
    fn check_divergence(
        &self,
        src: &Dataset,
        tname: &DatasetName,
        common: Option<&ShortName>,
        newer: &[&Snapshot],
    ) -> Result<(), ReplicationError> {
        if !self.req.options.allow_rollback {
            return Err(ReplicationError::Diverged {
                source_dataset: src.name.clone(),
                target_dataset: tname.clone(),
                target_name: self.req.target_name.clone(),
                common: common.cloned(),
                newer: newer.iter().map(|s| s.name.clone()).collect(),
            });
        }
        if let Some(pinned) = newer.iter().find(|s| s.is_pinned()) {
            return Err(ReplicationError::RollbackBlocked {
                source_dataset: src.name.clone(),
                target_dataset: tname.clone(),
                snapshot: pinned.name.clone(),
            });
        }
        Ok(())
    }

    /// Refuses a forced full receive that ZFS refuses: into a clone, or when either
    /// side is encrypted.
    fn check_overwrite(
        &self,
        src: &Dataset,
        tgt: Option<&Dataset>,
        tname: &DatasetName,
        raw: bool,
    ) -> Result<(), ReplicationError> {
        if let Some(origin) = tgt.and_then(|t| t.props.origin.as_ref()) {
            return Err(ReplicationError::TargetIsClone {
                source_dataset: src.name.clone(),
                target_dataset: tname.clone(),
                origin: origin.clone(),
            });
        }
        let target_encrypted = tgt.is_some_and(|t| t.props.is_encrypted());
        if target_encrypted || (raw && src.props.is_encrypted()) {
            return Err(ReplicationError::CannotOverwriteEncrypted {
                source_dataset: src.name.clone(),
                target_dataset: tname.clone(),
            });
        }
        Ok(())
    }

    /// One flag per source snapshot: whether the target wants it (see
    /// [`ReplicationRequest::target_policy`]); always false before `from`.
    ///
    /// The target policy is evaluated on the target as it will be: its own snapshots up
    /// to the base (`kept`, of which the one with guid `resumed` comes from the source
    /// by a resumed receive) followed by the source snapshots from `from` on. Retention
    /// is idempotent (evaluating the kept set keeps all of it), so what is wanted here
    /// is kept by the target's pruning once received.
    fn wanted(
        &self,
        src: &Dataset,
        kept: &[&Snapshot],
        resumed: Option<Guid>,
        from: usize,
    ) -> Vec<bool> {
        let req = self.req;
        let mut flags = vec![false; src.snapshots.len()];
        for (i, s) in src.snapshots.iter().enumerate().skip(from) {
            flags[i] = req.filter.is_none_or(|f| (f.0)(src, s));
        }
        let keeps_everything = |p: &Policy| {
            // `prune = false` without a keep rule: the target never prunes, so it
            // wants every snapshot its policy owns (there is no rule to thin them by).
            !p.prune && p.retention.rules.is_empty() && !p.retention.keep_oldest
        };
        if let Some(policy) = req.target_policy.filter(|p| keeps_everything(p)) {
            let managed = self.recv_managed();
            for (f, s) in flags.iter_mut().zip(&src.snapshots).skip(from) {
                if *f {
                    let mut seen = s.clone();
                    seen.managed.clone_from(&managed);
                    *f = policy.classify(&seen).is_owned();
                }
            }
        } else if let Some(policy) = req.target_policy {
            // Snapshots as the target sees them: the stream carries no user properties
            // and the receive sets the managed marker on the dataset.
            let managed = self.recv_managed();
            let classify = |s: &Snapshot, received: bool| {
                if !received || s.managed == managed {
                    policy.classify(s)
                } else {
                    let mut seen = s.clone();
                    seen.managed.clone_from(&managed);
                    policy.classify(&seen)
                }
            };
            // (index in the source, or None for the target's own, snapshot, ownership)
            let mut owned: Vec<(Option<usize>, &Snapshot, Ownership)> = Vec::new();
            for s in kept {
                let own = classify(s, Some(s.guid) == resumed);
                if own.is_owned() {
                    owned.push((None, s, own));
                }
            }
            for (i, s) in src.snapshots.iter().enumerate().skip(from) {
                if flags[i] {
                    let own = classify(s, true);
                    if own.is_owned() {
                        owned.push((Some(i), s, own));
                    }
                }
            }
            // Two pools' txgs do not compare: the position is the order.
            let candidates: Vec<Candidate<'_>> = owned
                .iter()
                .enumerate()
                .map(|(pos, (_, s, own))| {
                    Candidate::new(&s.name, s.guid, pos as u64, s.creation, own.label())
                })
                .collect();
            let verdicts = evaluate(
                &policy.retention,
                &candidates,
                self.plan_now(),
                policy.timezone,
            );
            flags.iter_mut().for_each(|f| *f = false);
            for ((i, _, _), reasons) in owned.iter().zip(verdicts) {
                if let Some(i) = i {
                    flags[*i] = !reasons.is_empty();
                }
            }
        } else if let Some(policy) = req.source_policy {
            for (f, s) in flags.iter_mut().zip(&src.snapshots).skip(from) {
                *f = *f && policy.classify(s).is_owned();
            }
        }
        flags
    }

    /// The value of the managed marker on received snapshots.
    fn recv_managed(&self) -> Option<String> {
        self.recv_set_props().get(MANAGED_PROPERTY).cloned()
    }

    /// `-o` properties of every receive: the configured ones, plus the managed marker
    /// when the target has a policy.
    fn recv_set_props(&self) -> BTreeMap<String, String> {
        let mut props = self.req.options.set_props.clone();
        if self.req.target_policy.is_some() {
            props
                .entry(MANAGED_PROPERTY.to_owned())
                .or_insert_with(|| MANAGED_VALUE.to_owned());
        }
        props
    }

    fn plan_now(&self) -> DateTime<Utc> {
        self.plan
            .now
            .expect("the plan was made with Plan::new(now)")
    }

    fn recv_options(&self, src: &Dataset, force: bool) -> RecvOptions {
        let mut recv = RecvOptions::safe();
        recv.force = force;
        recv.exclude_props = self
            .req
            .options
            .exclude_props
            .iter()
            .filter(|p| {
                src.kind == DatasetKind::Filesystem || !FILESYSTEM_ONLY.contains(&p.as_str())
            })
            .cloned()
            .collect();
        recv.set_props = self.recv_set_props();
        recv
    }

    fn transfer(
        &self,
        src: &Dataset,
        tname: &DatasetName,
        send: SendSpec,
        raw: bool,
        force: bool,
        reason: String,
    ) -> Step {
        let mut step = TransferStep::new(
            self.req.source_location.clone(),
            self.req.target_location.clone(),
            src.name.clone(),
            tname.clone(),
            send,
            reason,
        );
        step.raw = raw;
        step.recv = self.recv_options(src, force);
        Step::Transfer(step)
    }

    /// Moves the cursor to `cursor`, the newest snapshot the target has in common with
    /// the source once the transfers ran; `base` is the newest common snapshot before
    /// them, `sent` whether anything is sent.
    fn cursor_steps(
        &self,
        src: &Dataset,
        cursor: &Snapshot,
        base: Option<&Snapshot>,
        sent: bool,
        steps: &mut Vec<Step>,
    ) -> Result<(), ReplicationError> {
        let req = self.req;
        let at = &req.source_location;
        let tag = cursor_hold_tag(&req.target_name);
        let target = &req.target_name;
        // Holds of this target's tag, other than the new cursor, to release.
        let mut releases: Vec<&Snapshot> = Vec::new();
        match &req.cursor_holds {
            // With a bookmark cursor, every hold of the tag goes (left from a hold cursor).
            Some(held) => releases.extend(src.snapshots.iter().filter(|s| {
                held.contains(&s.guid)
                    && (s.guid != cursor.guid || req.options.cursor == Cursor::Bookmark)
            })),
            None if req.options.cursor == Cursor::Hold => {
                releases.extend(base.filter(|b| b.guid != cursor.guid && b.userrefs > 0))
            }
            None => {}
        }
        match req.options.cursor {
            Cursor::Hold => {
                let held = match &req.cursor_holds {
                    Some(held) => held.contains(&cursor.guid),
                    // Unknown tags: a snapshot just sent carries no hold of ours yet;
                    // the old base does when the last run completed.
                    None => !sent && cursor.userrefs > 0,
                };
                if !held {
                    steps.push(Step::Hold(HoldStep::new(
                        at.clone(),
                        src.snapshot_name(cursor),
                        cursor.guid,
                        tag.clone(),
                        format!("keep @{}, the newest snapshot in common with target {target:?}, as the base of the next send", cursor.name),
                    )));
                }
            }
            Cursor::Bookmark => {
                let have = src
                    .bookmarks
                    .iter()
                    .any(|b| b.guid == cursor.guid && is_cursor_bookmark(&b.name, target));
                if !have {
                    let bookmark =
                        cursor_bookmark_name(&src.name, target, cursor.guid).map_err(|cause| {
                            ReplicationError::CursorName {
                                dataset: src.name.clone(),
                                target_name: target.clone(),
                                cause,
                            }
                        })?;
                    steps.push(Step::Bookmark(BookmarkStep::new(
                        at.clone(),
                        src.snapshot_name(cursor),
                        cursor.guid,
                        bookmark,
                        format!("mark @{}, the newest snapshot in common with target {target:?}, as the base of the next send", cursor.name),
                    )));
                }
            }
        }
        for old in releases {
            steps.push(Step::Release(HoldStep::new(
                at.clone(),
                src.snapshot_name(old),
                old.guid,
                tag.clone(),
                format!(
                    "release the previous cursor of target {target:?}; @{} is the new one",
                    cursor.name
                ),
            )));
        }
        // With a hold cursor, every cursor bookmark goes (left from a bookmark cursor).
        for b in &src.bookmarks {
            let keep = b.guid == cursor.guid && req.options.cursor == Cursor::Bookmark;
            if !keep && is_cursor_bookmark(&b.name, target) {
                steps.push(Step::DestroyBookmark(DestroyBookmarkStep::new(
                    at.clone(),
                    src.bookmark_name(b),
                    b.guid,
                    format!(
                        "destroy the previous cursor of target {target:?}; @{} is the new one",
                        cursor.name
                    ),
                )));
            }
        }
        Ok(())
    }
}

/// `@a, @b, @c and 4 more`.
fn list<'s>(names: impl ExactSizeIterator<Item = &'s ShortName>) -> String {
    const LISTED: usize = 5;
    let n = names.len();
    let mut out = String::new();
    for (i, name) in names.take(LISTED).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "@{name}");
    }
    if n > LISTED {
        let _ = write!(out, " and {} more", n - LISTED);
    }
    out
}
