//! Property tests of backups over random histories: fulls, incrementals from any
//! earlier snapshot (some never backed up: broken chains), duplicates, unfinished and
//! damaged uploads, random retention. Checked against a naive oracle of
//! restorability: a backup is restorable when it is a complete full, or a complete
//! incremental whose parent guid is the guid of a restorable backup with a lower
//! createtxg.
//!
//! Properties: the catalog agrees with the oracle; after a prune (and after every
//! prefix of its deletions, as if it were interrupted) no backup that was restorable
//! and is still there has lost its chain; every kept point restores, its chain ordered
//! by guid; the newest point and the `last N` points are kept; damaged and broken
//! backups and foreign objects are never deleted; a second prune deletes nothing;
//! deleting one backup never orphans another unless asked; an automatic incremental
//! backup is always restorable once stored; names and sidecars round-trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::backup::{
    plan_backup, plan_backup_prune, resolve_restore, BackupId, BackupMode, BackupPlan,
    BackupPlanError, BackupRequest, BackupVerdict, Catalog, Compression, DeleteError, EntryState,
    ObjectRole, RestoreTarget, Sha256, Sidecar, StoreObject, StoreUrl, StreamKind, StreamName,
    UNFINISHED_GRACE,
};
use zsnap_core::retention::{KeepRule, RetentionPolicy};
use zsnap_core::{
    Bookmark, Dataset, DatasetKind, DatasetName, Guid, Inventory, Location, ShortName, Snapshot,
    Step,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn dataset() -> DatasetName {
    "tank/my data".parse().unwrap()
}

/// One backup in a generated history.
#[derive(Debug, Clone)]
struct Made {
    key: String,
    sidecar: Sidecar,
    state: u8, // 0 complete, 1 unfinished, 2 damaged
    modified: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct History {
    /// (name, guid, createtxg, created) per snapshot, oldest first.
    snaps: Vec<(ShortName, Guid, u64, DateTime<Utc>)>,
    made: Vec<Made>,
    now: DateTime<Utc>,
}

/// (gap in hours, backups: (incremental?, parent pick, state pick, zstd, age pick)).
type Raw = Vec<(i64, Vec<(bool, u8, u8, bool, u8)>)>;

fn history(raw: &Raw, now_gap: i64) -> History {
    let mut snaps = Vec::new();
    let mut made: Vec<Made> = Vec::new();
    let mut keys = BTreeSet::new();
    let mut at = t0();
    for (k, (gap, backups)) in raw.iter().enumerate() {
        at += TimeDelta::hours(*gap);
        let label = if k % 3 == 0 { "daily" } else { "hourly" };
        let name: ShortName = format!("zsnap_{label}_{}", at.format("%Y%m%dT%H%M%SZ"))
            .parse()
            .unwrap();
        let guid = Guid(1000 + k as u64);
        let txg = 10 * (k as u64 + 1);
        snaps.push((name.clone(), guid, txg, at));
        for &(inc, pick, state, zstd, age) in backups {
            let parent = (inc && k > 0).then(|| &snaps[pick as usize % k]);
            let kind = match parent {
                None => StreamKind::Full,
                Some(p) => StreamKind::Incremental {
                    parent: p.0.clone(),
                },
            };
            let c = if zstd {
                Compression::Zstd
            } else {
                Compression::None
            };
            let stream = StreamName::new(dataset(), name.clone(), at, kind, c).unwrap();
            if !keys.insert(stream.key()) {
                continue;
            }
            let sidecar = Sidecar::new(
                &stream,
                guid,
                txg,
                parent.map(|p| p.1),
                false,
                100 + k as u64,
                Sha256::from_bytes([k as u8; 32]),
                "0.1.0",
            )
            .unwrap();
            made.push(Made {
                key: stream.key(),
                sidecar,
                state: match state % 10 {
                    0 => 1,
                    1 => 2,
                    _ => 0,
                },
                // Uploads written a few minutes to a day before `now`.
                modified: at + TimeDelta::hours(now_gap) - TimeDelta::minutes(i64::from(age) * 7),
            });
        }
    }
    History {
        snaps,
        made,
        now: at + TimeDelta::hours(now_gap),
    }
}

/// The store's objects: streams, sidecars (damaged ones are garbage), a foreign
/// object and an orphan sidecar.
fn objects(h: &History) -> (Vec<StoreObject>, BTreeMap<String, Vec<u8>>) {
    let mut objs = Vec::new();
    let mut bytes = BTreeMap::new();
    for m in &h.made {
        objs.push(StoreObject::new(m.key.clone(), m.sidecar.size, m.modified));
        let sk = format!("{}.json", m.key);
        match m.state {
            0 => {
                objs.push(StoreObject::new(sk.clone(), 400, m.modified));
                bytes.insert(sk, m.sidecar.to_json().into_bytes());
            }
            2 => {
                objs.push(StoreObject::new(sk.clone(), 3, m.modified));
                bytes.insert(sk, b"{}\n".to_vec());
            }
            _ => {}
        }
    }
    objs.push(StoreObject::new("foreign.txt", 1, h.now));
    objs.push(StoreObject::new(
        "tank%2Fmy%20data/20200101T000000Z_gone.full.zfs.json",
        400,
        h.now,
    ));
    (objs, bytes)
}

/// The oracle: which of `made` are restorable when only `present` (complete, stream
/// and sidecar there) exist.
fn oracle(made: &[Made], present: &[bool]) -> Vec<bool> {
    let mut order: Vec<usize> = (0..made.len()).filter(|&i| present[i]).collect();
    order.sort_by_key(|&i| made[i].sidecar.createtxg);
    let mut ok = vec![false; made.len()];
    for &i in &order {
        let s = &made[i].sidecar;
        ok[i] = match &s.parent {
            None => true,
            Some(p) => order.iter().any(|&j| {
                ok[j] && made[j].sidecar.guid == p.guid && made[j].sidecar.createtxg < s.createtxg
            }),
        };
    }
    ok
}

fn policy(last: usize, daily: usize, newer_h: u64, keep_oldest: bool) -> RetentionPolicy {
    let mut rules: Vec<KeepRule> = Vec::new();
    if last > 0 {
        rules.push(format!("last {last}").parse().unwrap());
    }
    if daily > 0 {
        rules.push(format!("calendar daily = {daily}").parse().unwrap());
    }
    if newer_h > 0 {
        rules.push(format!("newer than {newer_h}h").parse().unwrap());
    }
    RetentionPolicy::new(rules).with_keep_oldest(keep_oldest)
}

fn raw_history() -> impl Strategy<Value = Raw> {
    prop::collection::vec(
        (
            1i64..30,
            prop::collection::vec(
                (
                    any::<bool>(),
                    any::<u8>(),
                    any::<u8>(),
                    any::<bool>(),
                    0u8..200,
                ),
                0..3,
            ),
        ),
        1..9,
    )
}

/// Which made backup a key belongs to.
fn index(h: &History) -> HashMap<String, usize> {
    h.made
        .iter()
        .enumerate()
        .map(|(i, m)| (m.key.clone(), i))
        .collect()
}

/// Checks that `chain` restores by guid: a full first, each next one's parent guid the
/// previous one's guid, createtxgs increasing.
fn check_chain(chain: &[zsnap_core::backup::BackupEntry]) -> Result<(), TestCaseError> {
    prop_assert!(!chain.is_empty());
    let sc = |i: usize| chain[i].sidecar.as_ref().unwrap();
    prop_assert!(sc(0).parent.is_none(), "a chain starts with a full");
    for i in 1..chain.len() {
        let parent = sc(i).parent.as_ref();
        prop_assert_eq!(parent.map(|p| p.guid), Some(sc(i - 1).guid));
        prop_assert!(sc(i - 1).createtxg < sc(i).createtxg);
    }
    Ok(())
}

/// The catalog of a listing in which the orphan sidecar `gone` was left by an
/// interrupted deletion (its record names it), so a prune finishes it.
fn build(objects: &[StoreObject], sidecars: &BTreeMap<String, Vec<u8>>) -> Catalog {
    let pending: BTreeSet<String> =
        ["tank%2Fmy%20data/20200101T000000Z_gone.full.zfs.json".to_owned()].into();
    Catalog::build_with_pending(objects, sidecars, &pending)
}

proptest! {
    #[test]
    fn prune_never_orphans_and_every_kept_point_restores(
        raw in raw_history(),
        now_gap in 0i64..48,
        (last, daily, newer_h, keep_oldest) in (0usize..4, 0usize..3, 0u64..100, any::<bool>()),
    ) {
        let h = history(&raw, now_gap);
        let (objs, bytes) = objects(&h);
        let catalog = build(&objs, &bytes);
        let at = index(&h);
        let complete: Vec<bool> = h.made.iter().map(|m| m.state == 0).collect();
        let before = oracle(&h.made, &complete);
        // The catalog agrees with the oracle, and with the states it was given.
        let entries: Vec<_> = catalog.datasets.values().flat_map(|d| &d.entries).collect();
        prop_assert_eq!(entries.len(), h.made.len());
        for e in &entries {
            let i = at[e.key()];
            prop_assert_eq!(e.is_restorable(), before[i], "{}", e.key());
            let expected = match h.made[i].state { 0 => "complete", 1 => "unfinished", _ => "damaged" };
            let state = match e.state { EntryState::Complete => "complete", EntryState::Unfinished => "unfinished", _ => "damaged" };
            prop_assert_eq!(state, expected);
            if e.is_restorable() {
                let chain = resolve_restore(&catalog, &dataset(), &RestoreTarget::Snapshot(e.stream.snapshot().clone())).unwrap();
                check_chain(&chain)?;
                // The shortest chain to this snapshot: never longer than this backup's.
                prop_assert!(chain.len() <= e.chain_len.unwrap());
                prop_assert_eq!(chain.last().unwrap().guid(), e.guid());
            }
        }

        let policy = policy(last, daily, newer_h, keep_oldest);
        let plan = plan_backup_prune(&catalog, &policy, h.now, chrono_tz::UTC);
        // Never deleted: foreign objects, damaged and broken backups; unfinished ones
        // only past the grace period; each key at most once.
        let deleted: Vec<&str> = plan.deletions.iter().map(|d| d.key.as_str()).collect();
        prop_assert_eq!(deleted.iter().collect::<BTreeSet<_>>().len(), deleted.len());
        prop_assert!(!deleted.contains(&"foreign.txt"));
        prop_assert!(deleted.contains(&"tank%2Fmy%20data/20200101T000000Z_gone.full.zfs.json"));
        for (i, m) in h.made.iter().enumerate() {
            let gone = deleted.contains(&m.key.as_str());
            match m.state {
                2 => prop_assert!(!gone, "damaged {} deleted", m.key),
                1 => prop_assert_eq!(gone, h.now - m.modified >= UNFINISHED_GRACE.to_chrono()),
                _ if !before[i] => prop_assert!(!gone, "broken {} deleted", m.key),
                _ => {}
            }
        }
        // Every prefix of the deletions leaves every surviving restorable backup
        // restorable, and never a stream without its sidecar.
        let mut stream_gone = vec![false; h.made.len()];
        let mut sidecar_gone = vec![false; h.made.len()];
        for d in &plan.deletions {
            let Some(id) = &d.id else { continue };
            let i = at[id.as_str()];
            match d.role {
                ObjectRole::Stream => stream_gone[i] = true,
                _ => {
                    prop_assert!(stream_gone[i], "sidecar of {} deleted before its stream", id);
                    sidecar_gone[i] = true;
                }
            }
            let present: Vec<bool> = (0..h.made.len()).map(|j| complete[j] && !stream_gone[j]).collect();
            let now_ok = oracle(&h.made, &present);
            for j in 0..h.made.len() {
                prop_assert!(!before[j] || stream_gone[j] || now_ok[j], "{} lost its chain", h.made[j].key);
            }
        }
        // After all of them: every kept point restores, the newest and the `last N`
        // points included.
        let remaining: Vec<StoreObject> = objs.iter().filter(|o| !deleted.contains(&o.key.as_str())).cloned().collect();
        let after = build(&remaining, &bytes);
        let mut points: Vec<(u64, &ShortName)> = h.made.iter().enumerate()
            .filter(|&(i, _)| before[i])
            .map(|(_, m)| (m.sidecar.createtxg, &m.sidecar.snapshot))
            .collect::<BTreeSet<_>>().into_iter().collect();
        points.sort();
        let must_keep: Vec<&ShortName> = points.iter().rev().take(last.max(1)).map(|p| p.1).collect();
        for snap in &must_keep {
            let chain = resolve_restore(&after, &dataset(), &RestoreTarget::Snapshot((*snap).clone()));
            prop_assert!(chain.is_ok(), "{} no longer restores: {:?}", snap, chain.err());
            check_chain(&chain.unwrap())?;
        }
        for d in &plan.decisions {
            let kept = matches!(d.verdict, BackupVerdict::Keep { .. });
            prop_assert_eq!(kept, !deleted.contains(&d.id.as_str()), "{}", d.id);
            if kept && before[at[d.id.as_str()]] {
                let e = after.entry(&d.id).unwrap();
                prop_assert!(e.is_restorable(), "kept {} is not restorable", d.id);
            }
        }
        // A second prune has nothing left to do.
        let again = plan_backup_prune(&after, &policy, h.now, chrono_tz::UTC);
        prop_assert!(again.is_empty(), "second prune deletes {:?}", again.deletions);
    }

    #[test]
    fn delete_never_orphans_unless_asked(raw in raw_history(), pick in any::<usize>(), with_dependents in any::<bool>()) {
        let h = history(&raw, 100);
        prop_assume!(!h.made.is_empty());
        let (objs, bytes) = objects(&h);
        let catalog = build(&objs, &bytes);
        let complete: Vec<bool> = h.made.iter().map(|m| m.state == 0).collect();
        let before = oracle(&h.made, &complete);
        let target = pick % h.made.len();
        let id: BackupId = h.made[target].key.parse().unwrap();
        let mut alone = complete.clone();
        alone[target] = false;
        let without = oracle(&h.made, &alone);
        let orphans: Vec<usize> = (0..h.made.len()).filter(|&j| j != target && before[j] && !without[j]).collect();
        match catalog.plan_delete(&id, with_dependents) {
            Err(DeleteError::WouldOrphan { dependents, .. }) => {
                prop_assert!(!with_dependents);
                let mut expected: Vec<&str> = orphans.iter().map(|&j| h.made[j].key.as_str()).collect();
                expected.sort();
                let mut got: Vec<&str> = dependents.iter().map(BackupId::as_str).collect();
                got.sort();
                prop_assert_eq!(got, expected);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
            Ok(plan) => {
                prop_assert!(with_dependents || orphans.is_empty());
                prop_assert_eq!(plan.removed.len(), 1 + if with_dependents { orphans.len() } else { 0 });
                let gone: BTreeSet<&str> = plan.removed.iter().map(BackupId::as_str).collect();
                let present: Vec<bool> = (0..h.made.len()).map(|j| complete[j] && !gone.contains(h.made[j].key.as_str())).collect();
                let after = oracle(&h.made, &present);
                for j in 0..h.made.len() {
                    prop_assert!(!before[j] || gone.contains(h.made[j].key.as_str()) || after[j]);
                }
            }
        }
    }

    #[test]
    fn auto_incremental_and_since_backups_are_restorable_once_stored(
        raw in raw_history(),
        local in prop::collection::vec(0u8..3, 9),
        since_pick in any::<usize>(),
        auto in any::<bool>(),
    ) {
        let h = history(&raw, 1);
        let (mut objs, mut bytes) = objects(&h);
        let catalog = build(&objs, &bytes);
        // The source keeps some snapshots, a bookmark of some, nothing of others; the
        // newest is always there.
        let mut src = Dataset::new(dataset(), DatasetKind::Filesystem, Guid(1));
        for (k, (name, guid, txg, at)) in h.snaps.iter().enumerate() {
            let keep = if k + 1 == h.snaps.len() { 0 } else { local[k] };
            if keep == 0 {
                src.insert_snapshot(Snapshot::new(name.clone(), *guid, *txg, *at));
            } else if keep == 1 {
                src.insert_bookmark(Bookmark::new(format!("bm{k}").parse().unwrap(), *guid, *txg, *at));
            }
        }
        let newest = src.newest().unwrap().name.clone();
        let mode = if auto {
            BackupMode::AutoIncremental
        } else {
            BackupMode::Since(src.snapshots[since_pick % src.snapshots.len()].name.clone())
        };
        let store: StoreUrl = "dir:/backup".parse().unwrap();
        let req = BackupRequest::new(dataset(), store, mode).with_snapshot(Some(newest.clone()));
        let plan = match plan_backup(&req, &src, &catalog, h.now) {
            Ok(BackupPlan::Send { plan, .. }) => plan,
            Ok(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            Err(BackupPlanError::AlreadyBackedUp { .. } | BackupPlanError::KeyTaken { .. }) if auto => return Ok(()),
            Err(
                BackupPlanError::SinceNotOlder { .. }
                | BackupPlanError::SinceNotInStore { .. }
                | BackupPlanError::AlreadyBackedUp { .. }
                | BackupPlanError::KeyTaken { .. },
            ) if !auto => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        };
        let mut inv = Inventory::new();
        inv.insert(src.clone());
        let invs = BTreeMap::from([(Location::local(), inv)]);
        plan.simulate_at(&invs).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Step::Backup(step) = &plan.steps[0] else { unreachable!() };
        let sc = step.sidecar(42, Sha256::from_bytes([7; 32]), "0.1.0").unwrap();
        objs.retain(|o| o.key != step.stream.key());
        objs.push(StoreObject::new(step.stream.key(), 42, h.now));
        objs.push(StoreObject::new(step.stream.sidecar_key(), 400, h.now));
        bytes.insert(step.stream.sidecar_key(), sc.to_json().into_bytes());
        let after = build(&objs, &bytes);
        let e = after.entry(&BackupId::from(&step.stream)).unwrap();
        prop_assert!(e.is_restorable(), "{} is not restorable: {:?}", e.id, e.link);
        // An automatic incremental starts from the newest restorable point the source
        // still has.
        if auto {
            let had: BTreeSet<Guid> = src.snapshots.iter().map(|s| s.guid).chain(src.bookmarks.iter().map(|b| b.guid)).collect();
            let best = catalog.datasets.values().flat_map(|d| &d.entries)
                .filter(|e| e.is_restorable() && had.contains(&e.guid().unwrap()))
                .map(|e| e.createtxg().unwrap())
                .max();
            prop_assert_eq!(step.base_guid().map(|g| h.snaps.iter().find(|s| s.1 == g).unwrap().2), best);
        }
    }

    #[test]
    fn stream_names_and_sidecars_round_trip(
        ds in "[a-z][a-z0-9 .:_-]{0,8}(/[a-zA-Z0-9 .:_-]{1,8}){0,3}",
        snap in "[a-zA-Z0-9 .:_-]{1,20}",
        parent in proptest::option::of("[a-zA-Z0-9 .:_-]{1,20}"),
        secs in 0i64..300_000_000_000,
        zstd in any::<bool>(),
        guid in 1u64..,
        pguid in 1u64..,
        txg in any::<u64>(),
        size in any::<u64>(),
        digest in any::<[u8; 32]>(),
    ) {
        let (Ok(dsn), Ok(short)) = (ds.parse::<DatasetName>(), snap.parse::<ShortName>()) else { return Ok(()) };
        let kind = match parent.as_deref().map(str::parse::<ShortName>) {
            Some(Ok(p)) if p != short && pguid != guid => StreamKind::Incremental { parent: p },
            Some(_) => return Ok(()),
            None => StreamKind::Full,
        };
        let created = Utc.timestamp_opt(secs - 62_000_000_000, 0).unwrap();
        let c = if zstd { Compression::Zstd } else { Compression::None };
        let Ok(name) = StreamName::new(dsn.clone(), short, created, kind.clone(), c) else {
            prop_assert!(too_long_or_far(&dsn, &snap, created));
            return Ok(());
        };
        let key = name.to_string();
        prop_assert_eq!(key.parse::<StreamName>().unwrap(), name.clone());
        prop_assert_eq!(name.sidecar_key().parse::<StreamName>().is_err(), true);
        let pg = matches!(kind, StreamKind::Incremental { .. }).then_some(Guid(pguid));
        let sc = Sidecar::new(&name, Guid(guid), txg, pg, zstd, size, Sha256::from_bytes(digest), "1.2.3-rc.1+x").unwrap();
        let back = Sidecar::parse(sc.to_json().as_bytes()).unwrap();
        prop_assert_eq!(&back, &sc);
        back.check_stream(&name).unwrap();
        prop_assert_eq!(back.stream_name().unwrap(), name);
    }

    #[test]
    fn keys_of_one_dataset_sort_by_time(a in 0i64..2_000_000_000, b in 0i64..2_000_000_000, sa in "[a-zA-Z0-9 .:_-]{1,12}", sb in "[a-zA-Z0-9 .:_-]{1,12}") {
        let (Ok(sa), Ok(sb)) = (sa.parse::<ShortName>(), sb.parse::<ShortName>()) else { return Ok(()) };
        let n = |s: ShortName, t: i64| StreamName::new(dataset(), s, Utc.timestamp_opt(t, 0).unwrap(), StreamKind::Full, Compression::None).unwrap();
        let (x, y) = (n(sa, a), n(sb, b));
        if a < b {
            prop_assert!(x.key() < y.key());
        }
    }

    #[test]
    fn parsers_never_panic(s in ".{0,120}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = s.parse::<StreamName>();
        let _ = s.parse::<StoreUrl>();
        let _ = s.parse::<BackupId>();
        let _ = Sidecar::parse(&bytes);
        let _ = Sidecar::parse(s.as_bytes());
    }
}

/// Why a stream name could not be made in the round-trip test: the snapshot name is too
/// long for the dataset, or the time is outside the years 0000–9999.
fn too_long_or_far(ds: &DatasetName, snap: &str, t: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    ds.as_str().len() + 1 + snap.len() > 255 || !(0..=9999).contains(&t.year())
}
