//! Property tests of `plan_replication` over random source/target histories: shared
//! prefixes by guid, pruned sources with and without bookmarks, diverged targets,
//! interrupted receives (unknown, known, gone, stale), filtered targets, both cursor
//! kinds, encryption.
//!
//! A deliberately naive oracle (quadratic scans, no indexes) predicts for each case
//! either the error or the exact list of guids the target holds afterwards. Then: the
//! plan simulates on both inventories, the target ends exactly as predicted (every
//! wanted snapshot, matching guids), nothing unwanted or older than the base is sent,
//! the common base survives, nothing is forced without permission, the cursor sits on
//! the newest common snapshot and nowhere else (when its holds are known), and planning
//! again on the result is empty.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::replicate::{
    cursor_bookmark_name, is_cursor_bookmark, plan_replication, Cursor, DatasetMapping, RawMode,
    ReplicationError, ReplicationRequest, SnapshotFilter,
};
use zsnap_core::{
    Bookmark, Dataset, DatasetKind, DatasetName, Guid, Inventory, Location, Plan, SendSpec,
    Snapshot, Step,
};

/// Longest generated history.
const MAX: usize = 10;
const TARGET: &str = "offsite";

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid dataset name in test")
}

fn t(secs: u64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs as i64, 0).unwrap()
}

fn now() -> DateTime<Utc> {
    t(1_000_000)
}

fn src_loc() -> Location {
    Location("src".to_owned())
}

fn dst_loc() -> Location {
    Location("dst".to_owned())
}

/// Guid of history snapshot `i` (0-based); local target snapshots get 1000 + j.
fn guid(i: usize) -> Guid {
    Guid(i as u64 + 1)
}

fn txg(i: usize) -> u64 {
    10 * (i as u64 + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Missing,
    Empty,
    Received,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    None,
    Unknown,
    Known,
    Gone,
    Stale,
}

#[derive(Debug, Clone)]
struct Case {
    /// Length of the source's history.
    n: usize,
    /// Which history snapshots the source still has.
    src_keep: Vec<bool>,
    /// Per history snapshot: a plain bookmark, this target's cursor bookmark.
    src_bookmark: Vec<(bool, bool)>,
    /// Per history snapshot: a foreign hold, this target's cursor hold.
    src_holds: Vec<(bool, bool)>,
    target: TargetKind,
    /// Which history snapshots (below `upto`) the target received.
    received: Vec<bool>,
    upto: usize,
    /// Snapshots the target took itself after the received ones.
    locals: usize,
    /// Whether the newest local snapshot is held.
    local_held: bool,
    token: Token,
    /// Which history snapshots the target wants, by index bit.
    want: u16,
    allow_rollback: bool,
    bookmark_cursor: bool,
    holds_known: bool,
    raw: RawMode,
    encrypted: bool,
    /// Whether an existing target of an encrypted source says `encryption=off`.
    target_plain: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let flags = || proptest::collection::vec(any::<bool>(), MAX);
    let pairs = || proptest::collection::vec((any::<bool>(), any::<bool>()), MAX);
    (
        (0..=MAX, flags(), pairs(), pairs()),
        (
            prop_oneof![
                1 => Just(TargetKind::Missing),
                1 => Just(TargetKind::Empty),
                4 => Just(TargetKind::Received),
            ],
            flags(),
            0..=MAX,
            prop_oneof![4 => Just(0usize), 1 => 1..3usize],
            any::<bool>(),
        ),
        (
            prop_oneof![
                4 => Just(Token::None),
                1 => Just(Token::Unknown),
                1 => Just(Token::Known),
                1 => Just(Token::Gone),
                1 => Just(Token::Stale),
            ],
            prop_oneof![1 => Just(u16::MAX), 2 => any::<u16>()],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (
            prop_oneof![
                3 => Just(RawMode::Auto),
                1 => Just(RawMode::Always),
                1 => Just(RawMode::Never),
            ],
            prop_oneof![3 => Just(false), 1 => Just(true)],
            prop_oneof![5 => Just(false), 1 => Just(true)],
        ),
    )
        .prop_map(
            |(
                (n, src_keep, src_bookmark, src_holds),
                (target, received, upto, locals, local_held),
                (token, want, allow_rollback, bookmark_cursor, holds_known),
                (raw, encrypted, target_plain),
            )| Case {
                n,
                src_keep,
                src_bookmark,
                src_holds,
                target,
                received,
                upto: upto.min(n),
                locals,
                local_held,
                token,
                want,
                allow_rollback,
                bookmark_cursor,
                holds_known,
                raw,
                encrypted,
                target_plain,
            },
        )
}

/// The inventories, the wanted guids, the known cursor holds and the decoded token of a
/// case.
struct World {
    src: Inventory,
    dst: Inventory,
    cursor_holds: BTreeSet<Guid>,
    resume_guid: Option<Guid>,
}

fn world(c: &Case) -> World {
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(500));
    let mut cursor_holds = BTreeSet::new();
    for i in 0..c.n {
        let (plain, cursor) = c.src_bookmark[i];
        if plain {
            a.insert_bookmark(Bookmark::new(
                format!("b{i}").parse().unwrap(),
                guid(i),
                txg(i),
                t(txg(i)),
            ));
        }
        if cursor && c.bookmark_cursor {
            let name = cursor_bookmark_name(&a.name, TARGET, guid(i)).unwrap();
            a.insert_bookmark(Bookmark::new(
                name.short().clone(),
                guid(i),
                txg(i),
                t(txg(i)),
            ));
        }
        if !c.src_keep[i] {
            continue;
        }
        let mut s = Snapshot::new(format!("s{i}").parse().unwrap(), guid(i), txg(i), t(txg(i)));
        let (foreign, ours) = c.src_holds[i];
        s.userrefs = u64::from(foreign) + u64::from(ours);
        if ours {
            cursor_holds.insert(guid(i));
        }
        a.insert_snapshot(s);
    }
    if c.encrypted {
        a.props.encryption = Some("aes-256-gcm".to_owned());
    }
    let mut src = Inventory::new();
    src.insert(a);

    let mut dst = Inventory::new();
    dst.insert(Dataset::new(
        ds("backup"),
        DatasetKind::Filesystem,
        Guid(600),
    ));
    let mut resume_guid = None;
    if c.target != TargetKind::Missing {
        let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(601));
        let mut next_txg = 5;
        let mut last_received = None;
        if c.target == TargetKind::Received {
            for i in (0..c.upto).filter(|&i| c.received[i]) {
                b.insert_snapshot(Snapshot::new(
                    format!("s{i}").parse().unwrap(),
                    guid(i),
                    next_txg,
                    t(txg(i)),
                ));
                next_txg += 5;
                last_received = Some(i);
            }
            for j in 0..c.locals {
                let mut s = Snapshot::new(
                    format!("local{j}").parse().unwrap(),
                    Guid(1000 + j as u64),
                    next_txg,
                    t(5_000 + j as u64),
                );
                s.userrefs = u64::from(c.local_held && j + 1 == c.locals);
                b.insert_snapshot(s);
                next_txg += 5;
            }
        }
        if c.encrypted {
            b.props.encryption =
                Some(if c.target_plain { "off" } else { "aes-256-gcm" }.to_owned());
        }
        // An interrupted receive of the source snapshot that would come next.
        let next = (last_received.map_or(0, |i| i + 1)..c.n).find(|&i| c.src_keep[i]);
        let diverged = c.locals > 0 && c.target == TargetKind::Received;
        if let (false, Some(next)) = (diverged, next) {
            let token = Some(format!("1-token-{next}"));
            match c.token {
                Token::None => {}
                Token::Unknown | Token::Stale => b.props.receive_resume_token = token,
                Token::Known => {
                    b.props.receive_resume_token = token;
                    resume_guid = Some(guid(next));
                }
                Token::Gone => {
                    b.props.receive_resume_token = token;
                    resume_guid = Some(Guid(999));
                }
            }
        }
        if c.encrypted && b.snapshots.is_empty() && b.props.receive_resume_token.is_some() {
            // a dataset an interrupted raw receive created is encrypted
            b.props.encryption = Some("aes-256-gcm".to_owned());
        }
        dst.insert(b);
    }
    src.validate().unwrap();
    dst.validate().unwrap();
    World {
        src,
        dst,
        cursor_holds,
        resume_guid,
    }
}

fn wants(c: &Case, g: Guid) -> bool {
    g.0 >= 1 && g.0 <= 16 && c.want & (1 << (g.0 - 1)) != 0
}

/// What the oracle predicts.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// An error of this kind.
    Error(&'static str),
    /// Only a resume, whose result the planner cannot know.
    ResumeOnly,
    /// The target's guids afterwards, oldest first, and the newest common guid then.
    Target(Vec<Guid>, Option<Guid>),
}

/// The naive oracle.
fn oracle(c: &Case, w: &World) -> Expect {
    let src = w.src.dataset(&ds("tank/a")).unwrap();
    let dst = w.dst.dataset(&ds("backup/a"));
    if c.encrypted && c.raw == RawMode::Never {
        return Expect::Error("EncryptedNotRaw");
    }
    if let Some(d) = dst {
        if c.encrypted && c.target_plain && !d.snapshots.is_empty() {
            return Expect::Error("EncryptionMismatch");
        }
    }
    let on_source = |g: Guid| src.snapshots.iter().any(|s| s.guid == g);
    let mut exists = dst.is_some();
    let mut tsnaps: Vec<Guid> = dst
        .map(|d| d.snapshots.iter().map(|s| s.guid).collect())
        .unwrap_or_default();
    if let Some(d) = dst {
        if d.props.receive_resume_token.is_some() {
            let gone = w.resume_guid.is_some_and(|g| !on_source(g));
            if c.token == Token::Stale || gone {
                if d.snapshots.is_empty() {
                    exists = false;
                }
            } else if let Some(g) = w.resume_guid {
                tsnaps.push(g);
            } else {
                return Expect::ResumeOnly;
            }
        }
    }
    let wanted_after = |after: Option<u64>| -> Vec<Guid> {
        src.snapshots
            .iter()
            .filter(|s| after.is_none_or(|txg| s.createtxg > txg) && wants(c, s.guid))
            .map(|s| s.guid)
            .collect()
    };
    if !exists {
        let w = wanted_after(None);
        let newest = w.last().copied();
        return Expect::Target(w, newest);
    }
    let forced_full_refused = dst
        .is_some_and(|d| d.props.encryption.as_deref() == Some("aes-256-gcm"))
        || (c.encrypted && c.raw != RawMode::Never);
    if tsnaps.is_empty() {
        if !c.allow_rollback {
            return Expect::Error("TargetExists");
        }
        if forced_full_refused {
            return Expect::Error("CannotOverwriteEncrypted");
        }
        let w = wanted_after(None);
        let newest = w.last().copied();
        return Expect::Target(w, newest);
    }
    // newest common: the newest target snapshot the source has as snapshot or bookmark
    let base = tsnaps
        .iter()
        .rposition(|&g| on_source(g) || src.bookmarks.iter().any(|b| b.guid == g));
    let Some(pos) = base else {
        if !c.allow_rollback {
            return Expect::Error("Diverged");
        }
        let d = dst.expect("tsnaps is not empty");
        if d.snapshots.iter().any(|s| s.userrefs > 0) {
            return Expect::Error("RollbackBlocked");
        }
        if forced_full_refused {
            return Expect::Error("CannotOverwriteEncrypted");
        }
        let w = wanted_after(None);
        if w.is_empty() {
            return Expect::Target(tsnaps, None);
        }
        let newest = w.last().copied();
        return Expect::Target(w, newest);
    };
    let base_guid = tsnaps[pos];
    if pos + 1 < tsnaps.len() {
        if !c.allow_rollback {
            return Expect::Error("Diverged");
        }
        let d = dst.expect("tsnaps is not empty");
        let newer: Vec<Guid> = tsnaps[pos + 1..].to_vec();
        if d.snapshots
            .iter()
            .any(|s| newer.contains(&s.guid) && s.userrefs > 0)
        {
            return Expect::Error("RollbackBlocked");
        }
    }
    let base_txg = src
        .snapshots
        .iter()
        .find(|s| s.guid == base_guid)
        .map(|s| s.createtxg)
        .or_else(|| {
            src.bookmarks
                .iter()
                .find(|b| b.guid == base_guid)
                .map(|b| b.createtxg)
        })
        .expect("the base is on the source");
    let w = wanted_after(Some(base_txg));
    if w.is_empty() {
        return Expect::Target(tsnaps, Some(base_guid));
    }
    let mut out = tsnaps[..=pos].to_vec();
    out.extend(&w);
    let newest = w.last().copied();
    Expect::Target(out, newest)
}

fn kind(e: &ReplicationError) -> &'static str {
    match e {
        ReplicationError::Diverged { .. } => "Diverged",
        ReplicationError::TargetExists { .. } => "TargetExists",
        ReplicationError::RollbackBlocked { .. } => "RollbackBlocked",
        ReplicationError::EncryptedNotRaw { .. } => "EncryptedNotRaw",
        ReplicationError::EncryptionMismatch { .. } => "EncryptionMismatch",
        ReplicationError::CannotOverwriteEncrypted { .. } => "CannotOverwriteEncrypted",
        _ => "other",
    }
}

fn request<'a>(
    c: &Case,
    w: &'a World,
    src: &'a Inventory,
    dst: &'a Inventory,
    want: &'a (dyn Fn(&Dataset, &Snapshot) -> bool + Sync),
) -> ReplicationRequest<'a> {
    let mut req = ReplicationRequest::new(
        src_loc(),
        src,
        dst_loc(),
        TARGET,
        dst,
        vec![DatasetMapping::new(ds("tank/a"), ds("backup/a"))],
    );
    req.filter = Some(SnapshotFilter(want));
    req.options.allow_rollback = c.allow_rollback;
    req.options.cursor = if c.bookmark_cursor {
        Cursor::Bookmark
    } else {
        Cursor::Hold
    };
    req.options.raw = c.raw;
    if c.token == Token::Stale {
        req.stale_tokens.insert(ds("backup/a"));
    }
    if let Some(g) = w.resume_guid {
        req.resume_guids.insert(ds("backup/a"), g);
    }
    if c.holds_known {
        req.cursor_holds = Some(w.cursor_holds.clone());
    }
    req
}

fn simulate(
    plan: &Plan,
    src: &Inventory,
    dst: &Inventory,
) -> Result<(Inventory, Inventory), String> {
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let mut after = plan
        .simulate_at(&invs)
        .map_err(|e| format!("{e}\n{}", plan.render()))?;
    Ok((
        after.remove(&src_loc()).unwrap(),
        after.remove(&dst_loc()).unwrap(),
    ))
}

/// The cursor holds known after `plan` ran.
fn holds_after(before: &BTreeSet<Guid>, plan: &Plan) -> BTreeSet<Guid> {
    let mut held = before.clone();
    for step in &plan.steps {
        match step {
            Step::Hold(h) => {
                held.insert(h.guid);
            }
            Step::Release(h) => {
                held.remove(&h.guid);
            }
            _ => {}
        }
    }
    held
}

fn target_guids(inv: &Inventory) -> Vec<Guid> {
    inv.dataset(&ds("backup/a"))
        .map(|d| d.snapshots.iter().map(|s| s.guid).collect())
        .unwrap_or_default()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let w = world(c);
    let want = |_: &Dataset, s: &Snapshot| wants(c, s.guid);
    let req = request(c, &w, &w.src, &w.dst, &want);
    let expect = oracle(c, &w);
    let plan = match plan_replication(&req, now()) {
        Err(e) => {
            prop_assert_eq!(Expect::Error(kind(&e)), expect, "{}", e);
            return Ok(());
        }
        Ok(plan) => plan,
    };
    let (src_after, dst_after) = simulate(&plan, &w.src, &w.dst).map_err(TestCaseError::fail)?;
    let before: BTreeSet<Guid> = target_guids(&w.dst).into_iter().collect();
    let src_ds = w.src.dataset(&ds("tank/a")).unwrap();

    // Nothing forced without permission; every send of an encrypted source is raw.
    for step in &plan.steps {
        if let Step::Transfer(tr) = step {
            prop_assert!(!tr.recv.force || c.allow_rollback);
            prop_assert!(tr.raw || !c.encrypted);
            prop_assert!(tr.recv.unmounted && tr.recv.resumable);
        }
    }
    // The source loses nothing.
    prop_assert_eq!(
        src_after.dataset(&ds("tank/a")).unwrap().snapshots.len(),
        src_ds.snapshots.len()
    );

    match expect {
        Expect::Error(k) => {
            return Err(TestCaseError::fail(format!(
                "expected {k}, got\n{}",
                plan.render()
            )))
        }
        Expect::ResumeOnly => {
            let resume_only = matches!(
                &plan.steps[..],
                [Step::Transfer(tr)] if matches!(tr.send, SendSpec::Resume { snapshot: None, .. })
            );
            prop_assert!(resume_only, "{}", plan.render());
            return Ok(());
        }
        Expect::Target(guids, newest_common) => {
            prop_assert_eq!(&target_guids(&dst_after), &guids, "{}", plan.render());
            // Received: only wanted snapshots (or the resumed one), newer than the base.
            for g in guids.iter().filter(|g| !before.contains(g)) {
                prop_assert!(
                    wants(c, *g) || Some(*g) == w.resume_guid,
                    "sent unwanted {g}"
                );
            }
            // The cursor marks the newest common snapshot on the source.
            if let Some(nc) = newest_common.filter(|&g| src_ds.snapshot_by_guid(g).is_some()) {
                let s = src_after.dataset(&ds("tank/a")).unwrap();
                let ours: Vec<Guid> = s
                    .bookmarks
                    .iter()
                    .filter(|b| is_cursor_bookmark(&b.name, TARGET))
                    .map(|b| b.guid)
                    .collect();
                if c.bookmark_cursor {
                    prop_assert_eq!(ours, vec![nc]);
                } else {
                    prop_assert!(ours.is_empty());
                    prop_assert!(s.snapshot_by_guid(nc).unwrap().userrefs >= 1);
                    if c.holds_known {
                        prop_assert_eq!(holds_after(&w.cursor_holds, &plan), BTreeSet::from([nc]));
                    }
                }
                if c.bookmark_cursor && c.holds_known {
                    prop_assert!(holds_after(&w.cursor_holds, &plan).is_empty());
                }
            }
        }
    }

    // Convergence: planning again on the result is empty.
    let mut again = request(c, &w, &src_after, &dst_after, &want);
    again.stale_tokens.clear();
    again.resume_guids.clear();
    if c.holds_known {
        again.cursor_holds = Some(holds_after(&w.cursor_holds, &plan));
    }
    let second = plan_replication(&again, now())
        .map_err(|e| TestCaseError::fail(format!("second plan: {e}\nfirst:\n{}", plan.render())))?;
    prop_assert!(
        second.is_empty(),
        "second plan:\n{}\nfirst:\n{}",
        second.render(),
        plan.render()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn replication_plans_simulate_converge_and_match_the_oracle(c in case()) {
        check(&c)?;
    }
}

// ---------------------------------------------------------------------------------------
// Recursive mappings: parents before children, children of datasets that are not
// created are skipped, exclusions hold.

const TREE: [&str; 6] = [
    "tank", "tank/a", "tank/a/x", "tank/a b", "tank/b", "tank/b/c",
];

#[derive(Debug, Clone)]
struct Tree {
    /// Per dataset: number of source snapshots (0 = none).
    snaps: Vec<usize>,
    /// Per dataset: how many of the oldest the target has (None: no target dataset).
    target: Vec<Option<usize>>,
    /// Exclude `tank/b` (and `tank/b/c`).
    exclude_b: bool,
}

fn tree() -> impl Strategy<Value = Tree> {
    (
        proptest::collection::vec(0usize..4, TREE.len()),
        proptest::collection::vec(proptest::option::of(0usize..4), TREE.len()),
        any::<bool>(),
    )
        .prop_map(|(snaps, target, exclude_b)| Tree {
            snaps,
            target,
            exclude_b,
        })
}

fn tree_check(tr: &Tree) -> Result<(), TestCaseError> {
    let mut src = Inventory::new();
    let mut dst = Inventory::new();
    dst.insert(Dataset::new(
        ds("backup"),
        DatasetKind::Filesystem,
        Guid(900),
    ));
    for (d, name) in TREE.iter().enumerate() {
        let mut a = Dataset::new(ds(name), DatasetKind::Filesystem, Guid(800 + d as u64));
        let guid = |i: usize| Guid(100 * (d as u64 + 1) + i as u64);
        for i in 0..tr.snaps[d] {
            a.insert_snapshot(Snapshot::new(
                format!("s{i}").parse().unwrap(),
                guid(i),
                txg(i),
                t(txg(i)),
            ));
        }
        src.insert(a);
        if let Some(k) = tr.target[d] {
            let tname = name.replacen("tank", "backup/tank", 1);
            let mut b = Dataset::new(ds(&tname), DatasetKind::Filesystem, Guid(700 + d as u64));
            for i in 0..k.min(tr.snaps[d]) {
                b.insert_snapshot(Snapshot::new(
                    format!("s{i}").parse().unwrap(),
                    guid(i),
                    1 + i as u64,
                    t(txg(i)),
                ));
            }
            dst.insert(b);
        }
    }
    let exclude = if tr.exclude_b {
        vec![ds("tank/b")]
    } else {
        vec![]
    };
    let mut req = ReplicationRequest::new(
        src_loc(),
        &src,
        dst_loc(),
        TARGET,
        &dst,
        vec![DatasetMapping::recursive(
            ds("tank"),
            ds("backup/tank"),
            exclude,
        )],
    );
    req.options.allow_rollback = true; // empty existing targets are overwritten
    let plan = plan_replication(&req, now()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (src_after, dst_after) = simulate(&plan, &src, &dst).map_err(TestCaseError::fail)?;
    for (d, name) in TREE.iter().enumerate() {
        let tname = ds(&name.replacen("tank", "backup/tank", 1));
        let excluded = tr.exclude_b && ds("tank/b").contains(&ds(name));
        let got = dst_after.dataset(&tname).map_or(0, |x| x.snapshots.len());
        if excluded {
            prop_assert_eq!(dst_after.dataset(&tname), dst.dataset(&tname));
            continue;
        }
        // Every dataset with snapshots is complete on the target, unless its target
        // parent neither existed nor was created (then it is skipped with a note).
        let parent_there = tname == ds("backup/tank")
            || tname
                .parent()
                .is_some_and(|p| dst_after.dataset(&p).is_some());
        if tr.snaps[d] > 0 && parent_there {
            prop_assert_eq!(got, tr.snaps[d], "{}\n{}", tname, plan.render());
        }
        if !parent_there && dst.dataset(&tname).is_none() {
            prop_assert!(dst_after.dataset(&tname).is_none());
            prop_assert!(plan
                .notes
                .iter()
                .any(|n| n.dataset.as_ref() == Some(&tname)));
        }
    }
    let mut again = req.clone();
    again.source = &src_after;
    again.target = &dst_after;
    let second = plan_replication(&again, now()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(second.is_empty(), "{}\n{}", second.render(), plan.render());
    Ok(())
}

proptest! {
    #[test]
    fn recursive_replication_goes_parents_first_and_converges(tr in tree()) {
        tree_check(&tr)?;
    }
}
