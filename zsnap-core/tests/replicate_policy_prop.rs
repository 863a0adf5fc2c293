//! Property tests of `plan_replication` with real target policies (every kind of keep
//! rule) and target pruning in the same plan.
//!
//! For random histories of zsnap snapshots (hourly and daily, some unmanaged, some
//! pruned on the source, some as bookmarks only) and a target holding an older part of
//! them: the plan simulates; nothing it sends is pruned by the target's policy (with
//! target pruning, every received snapshot survives it; without, the policy keeps every
//! received snapshot on the target as it ends); the newest common snapshot survives on
//! both sides; nothing the target policy would keep is left behind (for the rules whose
//! verdicts do not depend on dropped snapshots, see below); and planning again on the
//! result is empty.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::policy::Policy;
use zsnap_core::replicate::{
    plan_replication, DatasetMapping, ReplicationError, ReplicationRequest,
};
use zsnap_core::retention::{evaluate, Candidate, RetentionPolicy};
use zsnap_core::{
    Bookmark, Dataset, DatasetKind, DatasetName, Guid, Inventory, Location, Snapshot,
};

const MAX: usize = 12;

/// Target policies, one rule of each kind (and a union). The grid is last: its verdicts
/// depend on the newest candidate, so the "nothing left behind" check skips it.
const RULES: [&[&str]; 10] = [
    &["last 2"],
    &["last 3 (label hourly)"],
    &["labels daily = 2, hourly = 3"],
    &["calendar daily = 3"],
    &["calendar hourly = 4, daily = 2"],
    &["newer than 2d"],
    &["sanoid hourly = 3, daily = 2"],
    &["regex _daily_"],
    &["last 1", "labels daily = 2"],
    &["grid 1x6h(keep=all) | 4x1d"],
];
const GRID: usize = 9;

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid dataset name in test")
}

fn src_loc() -> Location {
    Location("src".to_owned())
}

fn dst_loc() -> Location {
    Location("dst".to_owned())
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    /// Hours since the previous snapshot.
    gaps: Vec<u8>,
    /// Daily (true) or hourly label.
    daily: Vec<bool>,
    /// Not a zsnap snapshot (a manual one).
    manual: Vec<bool>,
    /// A zsnap name without the managed marker on the source (taken before zsnap set
    /// it); the target marks what it receives as managed.
    unmarked: Vec<bool>,
    src_keep: Vec<bool>,
    src_bookmark: Vec<bool>,
    /// The target received some of the first `upto`.
    received: Vec<bool>,
    upto: usize,
    target_exists: bool,
    rules: usize,
    keep_oldest: bool,
    /// Hours from the newest snapshot to `now`.
    later: u8,
    prune_target: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let flags = || proptest::collection::vec(any::<bool>(), MAX);
    (
        (
            0..=MAX,
            proptest::collection::vec(1u8..30, MAX),
            flags(),
            proptest::collection::vec(prop_oneof![6 => Just(false), 1 => Just(true)], MAX),
            proptest::collection::vec(prop_oneof![6 => Just(false), 1 => Just(true)], MAX),
        ),
        (
            proptest::collection::vec(prop_oneof![1 => Just(false), 3 => Just(true)], MAX),
            flags(),
            flags(),
            0..=MAX,
            prop_oneof![1 => Just(false), 4 => Just(true)],
        ),
        (0..RULES.len(), any::<bool>(), 0u8..72, any::<bool>()),
    )
        .prop_map(
            |(
                (n, gaps, daily, manual, unmarked),
                (src_keep, src_bookmark, received, upto, target_exists),
                (rules, keep_oldest, later, prune_target),
            )| Case {
                n,
                gaps,
                daily,
                manual,
                unmarked,
                src_keep,
                src_bookmark,
                received,
                upto: upto.min(n),
                target_exists,
                rules,
                keep_oldest,
                later,
                prune_target,
            },
        )
}

/// History snapshot `i`: its time, name and whether zsnap took it.
fn history(c: &Case) -> Vec<(DateTime<Utc>, String, bool)> {
    let mut at = start();
    (0..c.n)
        .map(|i| {
            at += Duration::hours(i64::from(c.gaps[i]));
            let label = if c.daily[i] { "daily" } else { "hourly" };
            if c.manual[i] {
                (at, format!("manual-{i}"), false)
            } else {
                let name = format!("zsnap_{label}_{}", at.format("%Y%m%dT%H%M%SZ"));
                (at, name, !c.unmarked[i])
            }
        })
        .collect()
}

fn snapshot(name: &str, guid: u64, txg: u64, at: DateTime<Utc>, managed: bool) -> Snapshot {
    let mut s = Snapshot::new(name.parse().unwrap(), Guid(guid), txg, at);
    s.managed = managed.then(|| "yes".to_owned());
    s
}

fn inventories(c: &Case) -> (Inventory, Inventory) {
    let hist = history(c);
    let mut a = Dataset::new(ds("tank/a"), DatasetKind::Filesystem, Guid(500));
    for (i, (at, name, zsnap)) in hist.iter().enumerate() {
        let (guid, txg) = (i as u64 + 1, 10 * (i as u64 + 1));
        if c.src_bookmark[i] {
            a.insert_bookmark(Bookmark::new(
                format!("b{i}").parse().unwrap(),
                Guid(guid),
                txg,
                *at,
            ));
        }
        if c.src_keep[i] {
            a.insert_snapshot(snapshot(name, guid, txg, *at, *zsnap));
        }
    }
    let mut src = Inventory::new();
    src.insert(a);
    let mut dst = Inventory::new();
    dst.insert(Dataset::new(
        ds("backup"),
        DatasetKind::Filesystem,
        Guid(600),
    ));
    if c.target_exists {
        let mut b = Dataset::new(ds("backup/a"), DatasetKind::Filesystem, Guid(601));
        for i in (0..c.upto).filter(|&i| c.received[i]) {
            let (at, name, _) = &hist[i];
            // received earlier with `-o zsnap:managed=yes`
            b.insert_snapshot(snapshot(name, i as u64 + 1, 5 * (i as u64 + 1), *at, true));
        }
        dst.insert(b);
    }
    (src, dst)
}

fn policy(c: &Case) -> Policy {
    Policy::new(
        Default::default(),
        RetentionPolicy::new(RULES[c.rules].iter().map(|r| r.parse().unwrap()).collect())
            .with_keep_oldest(c.keep_oldest),
        chrono_tz::UTC,
    )
}

fn now(c: &Case) -> DateTime<Utc> {
    history(c).last().map_or(start(), |(at, _, _)| *at) + Duration::hours(i64::from(c.later))
}

/// The guids `policy` keeps among `snaps` (as the target sees them) at `now`.
fn kept(policy: &Policy, snaps: &[&Snapshot], now: DateTime<Utc>) -> BTreeSet<Guid> {
    let owned: Vec<(&Snapshot, _)> = snaps
        .iter()
        .map(|s| (*s, policy.classify(s)))
        .filter(|(_, o)| o.is_owned())
        .collect();
    let cands: Vec<Candidate> = owned
        .iter()
        .enumerate()
        .map(|(i, (s, o))| Candidate::new(&s.name, s.guid, i as u64, s.creation, o.label()))
        .collect();
    let verdicts = evaluate(&policy.retention, &cands, now, policy.timezone);
    owned
        .iter()
        .zip(verdicts)
        .filter(|(_, r)| !r.is_empty())
        .map(|((s, _), _)| s.guid)
        .collect()
}

fn target_snaps(inv: &Inventory) -> Vec<Snapshot> {
    inv.dataset(&ds("backup/a"))
        .map(|d| d.snapshots.clone())
        .unwrap_or_default()
}

/// The naive newest common guid: the newest target snapshot the source has as a
/// snapshot or bookmark.
fn newest_common(src: &Inventory, dst: &Inventory) -> Option<Guid> {
    let a = src.dataset(&ds("tank/a"))?;
    target_snaps(dst).iter().rev().map(|s| s.guid).find(|g| {
        a.snapshots.iter().any(|s| s.guid == *g) || a.bookmarks.iter().any(|b| b.guid == *g)
    })
}

/// Replication of tank/a to backup/a, the target pruned by `policy` when asked.
fn request<'a>(
    src: &'a Inventory,
    dst: &'a Inventory,
    policy: &'a Policy,
) -> ReplicationRequest<'a> {
    let mut req = ReplicationRequest::new(
        src_loc(),
        src,
        dst_loc(),
        "offsite",
        dst,
        vec![DatasetMapping::new(ds("tank/a"), ds("backup/a"))],
    );
    req.target_policy = Some(policy);
    req
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let (src, dst) = inventories(c);
    let p = policy(c);
    let now = now(c);
    let mut req = request(&src, &dst, &p);
    req.options.prune_target = c.prune_target;
    let plan = match plan_replication(&req, now) {
        Ok(plan) => plan,
        Err(e) => {
            // Only divergence: the target has a snapshot the source no longer knows
            // newer than everything in common, or nothing in common at all.
            let ok = matches!(
                e,
                ReplicationError::Diverged { .. } | ReplicationError::TargetExists { .. }
            );
            prop_assert!(ok, "{}", e);
            return Ok(());
        }
    };
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan
        .simulate_at(&invs)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{}", plan.render())))?;
    let (src_after, dst_after) = (&after[&src_loc()], &after[&dst_loc()]);
    let before: BTreeSet<Guid> = target_snaps(&dst).iter().map(|s| s.guid).collect();
    let final_snaps = target_snaps(dst_after);
    let final_guids: BTreeSet<Guid> = final_snaps.iter().map(|s| s.guid).collect();

    // What was sent: the transfers' snapshots.
    let mut sent: BTreeSet<Guid> = BTreeSet::new();
    for step in &plan.steps {
        if let zsnap_core::Step::Transfer(t) = step {
            match &t.send {
                zsnap_core::SendSpec::Full { snapshot } => {
                    sent.insert(snapshot.guid);
                }
                zsnap_core::SendSpec::Incremental {
                    snapshot, expected, ..
                } => {
                    sent.insert(snapshot.guid);
                    sent.extend(expected.iter().map(|r| r.guid));
                }
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
    prop_assert!(sent.is_disjoint(&before));
    if c.prune_target {
        // Nothing received is pruned at once.
        prop_assert!(sent.is_subset(&final_guids), "{}", plan.render());
    } else {
        let refs: Vec<&Snapshot> = final_snaps.iter().collect();
        let keeps = kept(&p, &refs, now);
        prop_assert!(sent.is_subset(&keeps), "{}", plan.render());
    }

    // The base survives until a newer common snapshot replaces it (pruning may then
    // take it), and the newest snapshot sent becomes the newest common one.
    let base = newest_common(&src, &dst);
    if let Some(b) = base.filter(|_| sent.is_empty() || !c.prune_target) {
        prop_assert!(
            final_guids.contains(&b),
            "base {b} destroyed\n{}",
            plan.render()
        );
    }
    let newest_sent = sent.iter().max().copied();
    prop_assert_eq!(newest_common(src_after, dst_after), newest_sent.or(base));
    prop_assert_eq!(
        src_after.dataset(&ds("tank/a")).unwrap().snapshots.len(),
        src.dataset(&ds("tank/a")).unwrap().snapshots.len()
    );

    // Nothing the policy would keep is left behind (not for the grid, whose verdicts
    // depend on the newest candidate, and not after pruning, which may drop the older
    // snapshots whose presence the check assumes).
    if c.rules != GRID && !c.prune_target {
        let a = src.dataset(&ds("tank/a")).unwrap();
        let base_txg = base.and_then(|g| {
            a.snapshots
                .iter()
                .find(|s| s.guid == g)
                .map(|s| s.createtxg)
                .or_else(|| {
                    a.bookmarks
                        .iter()
                        .find(|bm| bm.guid == g)
                        .map(|bm| bm.createtxg)
                })
        });
        for s in a
            .snapshots
            .iter()
            .filter(|s| base_txg.is_none_or(|t| s.createtxg > t))
        {
            if final_guids.contains(&s.guid) {
                continue;
            }
            // As the target would hold it: received with the managed marker.
            let mut seen = s.clone();
            seen.managed = Some("yes".to_owned());
            let mut with: Vec<&Snapshot> = final_snaps.iter().collect();
            let at = with.partition_point(|x| x.creation <= seen.creation);
            with.insert(at, &seen);
            prop_assert!(
                !kept(&p, &with, now).contains(&s.guid),
                "@{} was left behind\n{}",
                s.name,
                plan.render()
            );
        }
    }

    // Convergence.
    let mut again = req.clone();
    again.source = src_after;
    again.target = dst_after;
    let second = plan_replication(&again, now)
        .map_err(|e| TestCaseError::fail(format!("second plan: {e}\n{}", plan.render())))?;
    prop_assert!(
        second.is_empty(),
        "second plan:\n{}\nfirst:\n{}",
        second.render(),
        plan.render()
    );
    Ok(())
}

proptest! {
    #[test]
    fn target_policies_get_what_they_keep_and_nothing_they_prune(c in case()) {
        check(&c)?;
    }
}

/// A target policy with `prune = false` never plans a destroy on the target, even with
/// target pruning asked for: everything the target had, it still has.
fn check_no_prune(c: &Case) -> Result<(), TestCaseError> {
    let (src, dst) = inventories(c);
    let p = policy(c).with_prune(false);
    let mut req = request(&src, &dst, &p);
    req.options.prune_target = true;
    let Ok(plan) = plan_replication(&req, now(c)) else {
        return Ok(());
    };
    for step in &plan.steps {
        prop_assert!(
            !matches!(step, zsnap_core::Step::Destroy(_)),
            "prune = false, yet {step:?}\n{}",
            plan.render()
        );
    }
    let invs = BTreeMap::from([(src_loc(), src.clone()), (dst_loc(), dst.clone())]);
    let after = plan
        .simulate_at(&invs)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{}", plan.render())))?;
    let final_guids: BTreeSet<Guid> = target_snaps(&after[&dst_loc()])
        .iter()
        .map(|s| s.guid)
        .collect();
    for s in target_snaps(&dst) {
        prop_assert!(final_guids.contains(&s.guid), "{} lost", s.name);
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_target_policy_saying_prune_false_destroys_nothing(c in case()) {
        check_no_prune(&c)?;
    }
}
