//! The two decisions taken before a backup or a restore runs: `plan_restore` (which
//! streams of a chain a target still needs, and whether it may be rolled back) and
//! `backup_due` (whether a scheduled backup is due, full or incremental).
//!
//! One unit test per rule, error messages as inline snapshots, and two properties:
//! - a restore that is interrupted any number of times and planned again converges:
//!   it never fails, never receives a stream twice, receives every stream onto its
//!   parent, and ends with the target holding exactly the chain, the restore point
//!   last;
//! - a backup is not due exactly when some restorable backup (by a naive oracle of
//!   restorability) was taken in the current period or later.

#[allow(
    dead_code,
    reason = "each test file uses a part of the shared builders"
)]
mod common {
    pub mod store;
}

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use common::store::{dsn, short, sidecar, sidecar_at, t, Store};
use proptest::prelude::*;
use zsnap_core::backup::{
    backup_due, plan_restore, resolve_restore, resolve_restore_with, BackupDue, BackupEntry,
    BackupMode, BackupSchedule, Compression, RestoreError, RestorePlanError, RestoreTarget, Sha256,
    Sidecar, StreamKind, StreamName,
};
use zsnap_core::duration::Span;
use zsnap_core::{Dataset, DatasetKind, Guid, ShortName, Snapshot};

// ---------------------------------------------------------------------------------
// plan_restore

const A: &str = "zsnap_daily_20261123T010000Z";
const B: &str = "zsnap_hourly_20261123T020000Z";
const C: &str = "zsnap_hourly_20261123T030000Z";

/// The chain full A (guid 1) → B (guid 2) → C (guid 3) of tank/home, as
/// `resolve_restore` gives it.
fn abc() -> Vec<BackupEntry> {
    let mut s = Store::default();
    s.put(&sidecar("tank/home", A, 1, None));
    s.put(&sidecar("tank/home", B, 2, Some((A, 1))));
    s.put(&sidecar("tank/home", C, 3, Some((B, 2))));
    let chain = resolve_restore(&s.catalog(), &dsn("tank/home"), &RestoreTarget::Latest).unwrap();
    assert_eq!(guids(&chain), [Guid(1), Guid(2), Guid(3)]);
    chain
}

fn guids(chain: &[BackupEntry]) -> Vec<Guid> {
    chain.iter().map(|e| e.guid().unwrap()).collect()
}

/// The restore target, restore/home, with these snapshots (name, guid), createtxg
/// 100, 101, … in this order.
fn target(snaps: &[(&str, u64)]) -> Dataset {
    let mut d = Dataset::new(dsn("restore/home"), DatasetKind::Filesystem, Guid(777));
    for (i, (name, guid)) in snaps.iter().enumerate() {
        d.snapshots.push(Snapshot::new(
            short(name),
            Guid(*guid),
            100 + i as u64,
            t(200 + i as i64),
        ));
    }
    d
}

#[test]
fn no_target_receives_the_whole_chain() {
    for force in [false, true] {
        let p = plan_restore(abc(), &dsn("restore/home"), None, force).unwrap();
        assert_eq!(p.done, 0);
        assert!(!p.rollback);
        assert_eq!(guids(p.remaining()), [Guid(1), Guid(2), Guid(3)]);
        assert_eq!(guids(&p.chain), [Guid(1), Guid(2), Guid(3)]);
        assert_eq!(p.dataset, dsn("tank/home"));
        assert_eq!(p.target, dsn("restore/home"));
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }
}

#[test]
fn a_target_holding_a_chain_snapshot_by_guid_continues_after_it() {
    // The target's snapshots are renamed: only the guids match the chain.
    let first = target(&[("renamed-a", 1)]);
    let p = plan_restore(abc(), &first.name, Some(&first), false).unwrap();
    assert_eq!(p.done, 1);
    assert!(!p.rollback);
    assert_eq!(guids(p.remaining()), [Guid(2), Guid(3)]);
    insta::assert_snapshot!(p.notes.join("\n"), @"restore/home already holds zsnap_daily_20261123T010000Z (1 of 3 streams): continuing from there");

    let second = target(&[("renamed-a", 1), ("renamed-b", 2)]);
    let p = plan_restore(abc(), &second.name, Some(&second), false).unwrap();
    assert_eq!(p.done, 2);
    assert!(!p.rollback);
    assert_eq!(guids(p.remaining()), [Guid(3)]);
    insta::assert_snapshot!(p.notes.join("\n"), @"restore/home already holds zsnap_hourly_20261123T020000Z (2 of 3 streams): continuing from there");

    // Older snapshots the target has of its own do not matter, nor does a missing
    // earlier chain snapshot: the last one held is where the next stream applies.
    let gaps = target(&[("own", 99), ("renamed-b", 2)]);
    let p = plan_restore(abc(), &gaps.name, Some(&gaps), false).unwrap();
    assert_eq!(p.done, 2);
    assert!(!p.rollback);
    assert_eq!(guids(p.remaining()), [Guid(3)]);
}

#[test]
fn a_target_holding_the_restore_point_has_nothing_to_receive() {
    let done = target(&[("x", 1), ("y", 2), ("z", 3)]);
    for force in [false, true] {
        let p = plan_restore(abc(), &done.name, Some(&done), force).unwrap();
        assert_eq!(p.done, 3);
        assert!(!p.rollback);
        assert!(p.remaining().is_empty());
        insta::allow_duplicates! {
            insta::assert_snapshot!(p.notes.join("\n"), @"restore/home already holds zsnap_hourly_20261123T030000Z: nothing to receive");
        }
    }
}

#[test]
fn names_alone_do_not_match() {
    // Same names as the chain, other guids: another dataset's history.
    let other = target(&[(A, 11), (B, 12)]);
    for force in [false, true] {
        let e = plan_restore(abc(), &other.name, Some(&other), force).unwrap_err();
        assert!(
            matches!(e, RestorePlanError::TargetHasSnapshots { count: 2, .. }),
            "{e:?}"
        );
    }
}

#[test]
fn a_target_with_newer_snapshots_is_refused_unless_forced() {
    let diverged = target(&[("renamed-a", 1), ("mine", 50)]);
    let e = plan_restore(abc(), &diverged.name, Some(&diverged), false).unwrap_err();
    assert!(
        matches!(&e, RestorePlanError::Diverged { can_force: true, newer, base, .. }
            if newer == &[short("mine")] && base == &short(A)),
        "{e:?}"
    );
    insta::assert_snapshot!(e.to_string(), @"restore/home has snapshots after zsnap_daily_20261123T010000Z, the newest it shares with this restore: mine; --force rolls restore/home back to zsnap_daily_20261123T010000Z (destroying them) and continues");

    let p = plan_restore(abc(), &diverged.name, Some(&diverged), true).unwrap();
    assert!(p.rollback);
    assert_eq!(p.done, 1);
    assert_eq!(guids(p.remaining()), [Guid(2), Guid(3)]);
    insta::assert_snapshot!(p.notes.join("\n"), @r"
    --force: the first receive rolls restore/home back to zsnap_daily_20261123T010000Z, destroying mine
    restore/home already holds zsnap_daily_20261123T010000Z (1 of 3 streams): continuing from there
    ");
}

#[test]
fn a_target_past_the_restore_point_is_refused_even_with_force() {
    let past = target(&[("x", 1), ("y", 2), ("z", 3), ("later", 60), ("latest", 61)]);
    for force in [false, true] {
        let e = plan_restore(abc(), &past.name, Some(&past), force).unwrap_err();
        assert!(
            matches!(&e, RestorePlanError::Diverged { can_force: false, newer, .. }
                if newer == &[short("later"), short("latest")]),
            "{e:?}"
        );
        insta::allow_duplicates! {
            insta::assert_snapshot!(e.to_string(), @"restore/home has snapshots after zsnap_hourly_20261123T030000Z, the newest it shares with this restore: later, latest; it is already past the restore point; roll it back yourself (zfs rollback -r restore/home@zsnap_hourly_20261123T030000Z) or restore into a new dataset");
        }
    }
}

#[test]
fn a_target_with_only_unrelated_snapshots_is_refused_even_with_force() {
    let unrelated = target(&[("one", 41), ("two", 42), ("three", 43)]);
    for force in [false, true] {
        let e = plan_restore(abc(), &unrelated.name, Some(&unrelated), force).unwrap_err();
        assert!(
            matches!(&e, RestorePlanError::TargetHasSnapshots { count: 3, example, .. }
                if example == &short("one")),
            "{e:?}"
        );
        insta::allow_duplicates! {
            insta::assert_snapshot!(e.to_string(), @"restore/home exists with 3 snapshot(s) (e.g. one) none of which this restore has; a full stream cannot overwrite it: restore into a new dataset, or destroy it first (zfs destroy -r restore/home)");
        }
    }
}

#[test]
fn an_empty_target_is_overwritten_only_with_force() {
    let empty = target(&[]);
    let e = plan_restore(abc(), &empty.name, Some(&empty), false).unwrap_err();
    assert!(matches!(e, RestorePlanError::TargetExists { .. }), "{e:?}");
    insta::assert_snapshot!(e.to_string(), @"restore/home exists and holds none of the snapshots of this restore; restore into a new dataset, or overwrite it with --force");

    let p = plan_restore(abc(), &empty.name, Some(&empty), true).unwrap();
    assert!(p.rollback);
    assert_eq!(p.done, 0);
    assert_eq!(guids(p.remaining()), [Guid(1), Guid(2), Guid(3)]);
    insta::assert_snapshot!(p.notes.join("\n"), @"--force: the full stream replaces the contents of restore/home");
}

#[test]
fn an_empty_chain_is_refused() {
    let empty = target(&[]);
    for existing in [None, Some(&empty)] {
        for force in [false, true] {
            let e = plan_restore(Vec::new(), &empty.name, existing, force).unwrap_err();
            assert!(matches!(e, RestorePlanError::EmptyChain { .. }), "{e:?}");
            insta::allow_duplicates! {
                insta::assert_snapshot!(e.to_string(), @"nothing to restore into restore/home: the chain is empty");
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// backup_due

fn daily(full_every: Option<u64>) -> BackupSchedule {
    BackupSchedule::new(
        Span::from_secs(86_400),
        full_every.map(|d| Span::from_secs(d * 86_400)),
    )
}

fn due(s: &Store, schedule: &BackupSchedule, now: DateTime<Utc>) -> BackupDue {
    backup_due(&s.catalog(), &dsn("tank/home"), schedule, now)
}

fn yes(d: &BackupDue) -> (BackupMode, String) {
    match d {
        BackupDue::Yes { mode, reason } => (mode.clone(), reason.clone()),
        other => panic!("expected due, got {other:?}"),
    }
}

#[test]
fn an_empty_store_is_due_for_a_full() {
    let d = due(&Store::default(), &daily(None), t(15));
    let (mode, reason) = yes(&d);
    assert_eq!(mode, BackupMode::Full);
    insta::assert_snapshot!(reason, @"no restorable backup of it in the store: a full stream");
    // Another dataset's backups do not count.
    let mut other = Store::default();
    other.put(&sidecar("tank/other", A, 1, None));
    assert_eq!(yes(&due(&other, &daily(None), t(15))).0, BackupMode::Full);
}

#[test]
fn a_backup_in_the_current_period_is_enough() {
    let mut s = Store::default();
    s.put(&sidecar("tank/home", A, 1, None));
    // Hour 1 and hour 23 of the same UTC day.
    assert_eq!(due(&s, &daily(None), t(23)), BackupDue::No { newest: t(1) });
    // A day later: a new period, and the full is not too old.
    let (mode, reason) = yes(&due(&s, &daily(Some(7)), t(24)));
    assert_eq!(mode, BackupMode::AutoIncremental);
    insta::assert_snapshot!(reason, @"no backup in the current period of 1d: an incremental");
    // An incremental in the current period also counts, and is the newest.
    s.put(&sidecar("tank/home", B, 25, Some((A, 1))));
    assert_eq!(
        due(&s, &daily(None), t(47)),
        BackupDue::No { newest: t(25) }
    );
}

#[test]
fn an_old_full_starts_a_new_chain() {
    let mut s = Store::default();
    s.put(&sidecar("tank/home", A, 1, None));
    s.put(&sidecar("tank/home", B, 2, Some((A, 1))));
    // Now at hour 1 + 7 days: the full is exactly full_every old.
    let (mode, reason) = yes(&due(&s, &daily(Some(7)), t(1 + 7 * 24)));
    assert_eq!(mode, BackupMode::Full);
    insta::assert_snapshot!(reason, @"the newest full backup is older than full_every = 7d: a new chain");
    // One second earlier it is not.
    let just_before = t(1 + 7 * 24) - TimeDelta::seconds(1);
    assert_eq!(
        yes(&due(&s, &daily(Some(7)), just_before)).0,
        BackupMode::AutoIncremental
    );
    // Without full_every, never.
    assert_eq!(
        yes(&due(&s, &daily(None), t(1000))).0,
        BackupMode::AutoIncremental
    );
}

#[test]
fn an_unfinished_backup_does_not_count() {
    let mut s = Store::default();
    s.put_unfinished(&sidecar("tank/home", C, 3, None), t(100));
    assert_eq!(yes(&due(&s, &daily(None), t(15))).0, BackupMode::Full);
    // With a restorable backup yesterday, an unfinished one today leaves it due.
    let mut s = Store::default();
    s.put(&sidecar("tank/home", A, 1, None));
    s.put_unfinished(
        &sidecar_at("tank/home", C, 3, 3, t(27), Some((A, 1))),
        t(100),
    );
    assert_eq!(
        yes(&due(&s, &daily(None), t(30))).0,
        BackupMode::AutoIncremental
    );
}

#[test]
fn a_broken_incremental_does_not_count() {
    // Today's incremental needs a parent (guid 2) no backup recreates.
    let mut s = Store::default();
    s.put(&sidecar("tank/home", A, 1, None));
    s.put(&sidecar_at("tank/home", C, 3, 3, t(27), Some((B, 2))));
    let c = s.catalog();
    assert!(
        c.dataset(&dsn("tank/home")).unwrap().broken().count() == 1,
        "the test store has one broken backup"
    );
    assert_eq!(
        yes(&due(&s, &daily(None), t(30))).0,
        BackupMode::AutoIncremental
    );
    // Alone, it is no backup at all, and a broken chain is not a full.
    let mut s = Store::default();
    s.put(&sidecar_at("tank/home", C, 3, 3, t(27), Some((B, 2))));
    assert_eq!(yes(&due(&s, &daily(None), t(30))).0, BackupMode::Full);
}

// ---------------------------------------------------------------------------------
// Random histories

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

const DATASET: &str = "tank/home";

/// One snapshot of the source.
#[derive(Debug, Clone)]
struct Snap {
    name: ShortName,
    guid: Guid,
    createtxg: u64,
    created: DateTime<Utc>,
}

/// One backup in a generated history.
#[derive(Debug, Clone)]
struct Made {
    sidecar: Sidecar,
    complete: bool,
}

#[derive(Debug, Clone)]
struct History {
    snaps: Vec<Snap>,
    made: Vec<Made>,
}

/// Per snapshot: (minutes since the one before, its backups as (kind, parent pick,
/// complete)); kind 0 is a full, 1 an incremental from an earlier snapshot (mostly the
/// one before; it may have no backup), 2 an incremental from a snapshot the store
/// never saw.
type RawHistory = Vec<(i64, Vec<(u8, u8, bool)>)>;

fn raw_history() -> impl Strategy<Value = RawHistory> {
    let backup = (
        prop_oneof![1 => Just(0u8), 8 => Just(1u8), 1 => Just(2u8)],
        any::<u8>(),
        prop::bool::weighted(0.9),
    );
    // Most snapshots have a backup or two, some none.
    let backups = (
        prop::bool::weighted(0.15),
        prop::collection::vec(backup, 1..3),
    )
        .prop_map(|(none, v)| if none { Vec::new() } else { v });
    prop::collection::vec((0i64..2_000, backups), 1..12)
}

/// The history; the first snapshot always has a complete full backup.
fn history(raw: &RawHistory) -> History {
    let mut snaps: Vec<Snap> = Vec::new();
    let mut made: Vec<Made> = Vec::new();
    let mut keys = BTreeSet::new();
    let mut at = t0();
    for (k, (gap, backups)) in raw.iter().enumerate() {
        at += TimeDelta::minutes(*gap);
        let snap = Snap {
            name: format!("zsnap_{k}_{}", at.format("%Y%m%dT%H%M%SZ"))
                .parse()
                .unwrap(),
            guid: Guid(1000 + k as u64),
            createtxg: 10 * (k as u64 + 1),
            created: at,
        };
        let first = (k == 0).then_some((0u8, 0u8, true));
        for (kind, pick, complete) in first.into_iter().chain(backups.iter().copied()) {
            let parent = match kind {
                1 if k > 0 => {
                    // Mostly from the snapshot before, for long chains.
                    let p = &snaps[if pick < 160 { k - 1 } else { pick as usize % k }];
                    Some((p.name.clone(), p.guid))
                }
                2 => Some((short("gone"), Guid(99_000 + k as u64))),
                _ => None,
            };
            let stream_kind = match &parent {
                None => StreamKind::Full,
                Some((p, _)) => StreamKind::Incremental { parent: p.clone() },
            };
            let name = StreamName::new(
                dsn(DATASET),
                snap.name.clone(),
                snap.created,
                stream_kind,
                Compression::None,
            )
            .unwrap();
            if !keys.insert(name.key()) {
                continue;
            }
            let sc = Sidecar::new(
                &name,
                snap.guid,
                snap.createtxg,
                parent.map(|(_, g)| g),
                false,
                100 + made.len() as u64,
                Sha256::from_bytes([k as u8; 32]),
                "0.1.0",
            )
            .unwrap();
            made.push(Made {
                sidecar: sc,
                complete,
            });
        }
        snaps.push(snap);
    }
    History { snaps, made }
}

impl History {
    fn store(&self) -> Store {
        let mut s = Store::default();
        for m in &self.made {
            if m.complete {
                s.put(&m.sidecar);
            } else {
                s.put_unfinished(&m.sidecar, t(100));
            }
        }
        s
    }

    /// The restorable backups, naively: a complete full, or a complete incremental
    /// whose parent guid is the guid of a restorable backup with a lower createtxg;
    /// repeated until nothing changes.
    fn restorable(&self) -> Vec<&Sidecar> {
        let mut ok = vec![false; self.made.len()];
        loop {
            let mut changed = false;
            for (i, m) in self.made.iter().enumerate() {
                if ok[i] || !m.complete {
                    continue;
                }
                let good = match &m.sidecar.parent {
                    None => true,
                    Some(p) => self.made.iter().enumerate().any(|(j, r)| {
                        ok[j]
                            && r.sidecar.guid == p.guid
                            && r.sidecar.createtxg < m.sidecar.createtxg
                    }),
                };
                if good {
                    ok[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        self.made
            .iter()
            .zip(ok)
            .filter(|(_, ok)| *ok)
            .map(|(m, _)| &m.sidecar)
            .collect()
    }
}

/// Receives one stream into the model target, as `zfs receive` without `-F` would:
/// a full only into no dataset, an incremental only onto its parent (the newest
/// snapshot, by guid).
fn receive(model: &mut Option<Dataset>, e: &BackupEntry, local_txg: bool) -> Result<(), String> {
    let sc = e.sidecar.as_ref().ok_or("a stream without sidecar")?;
    match (&sc.parent, model.as_ref()) {
        (None, None) => {
            *model = Some(Dataset::new(
                dsn("restore/home"),
                DatasetKind::Filesystem,
                Guid(424_242),
            ));
        }
        (None, Some(_)) => return Err(format!("full {} into an existing target", e.id)),
        (Some(_), None) => return Err(format!("incremental {} into no target", e.id)),
        (Some(p), Some(d)) => {
            if d.snapshot_by_guid(sc.guid).is_some() {
                return Err(format!("{} received again", e.id));
            }
            if d.newest().map(|s| s.guid) != Some(p.guid) {
                return Err(format!(
                    "{} received onto another snapshot than its parent",
                    e.id
                ));
            }
        }
    }
    let d = model.as_mut().expect("created above");
    // The target's createtxg: the source's, or the target pool's own (which has
    // nothing to do with the source's and only has to grow).
    let createtxg = if local_txg {
        5 + d.snapshots.len() as u64
    } else {
        sc.createtxg
    };
    d.snapshots.push(Snapshot::new(
        sc.snapshot.clone(),
        sc.guid,
        createtxg,
        sc.created,
    ));
    Ok(())
}

fn restore_target() -> impl Strategy<Value = (u8, i64, u8)> {
    (0u8..3, -120i64..30_000, any::<u8>())
}

proptest! {
    #[test]
    fn restore_converges(
        raw in raw_history(),
        (which, minutes, pick) in restore_target(),
        stops in prop::collection::vec(0usize..4, 0..5),
        local_txg in any::<bool>(),
    ) {
        let h = history(&raw);
        let catalog = h.store().catalog();
        let restorable = h.restorable();
        let point = match which {
            0 => RestoreTarget::Latest,
            1 => RestoreTarget::At(t0() + TimeDelta::minutes(minutes)),
            _ => RestoreTarget::Snapshot(h.snaps[pick as usize % h.snaps.len()].name.clone()),
        };
        // The point's guid, naively.
        let expected: Option<Guid> = match &point {
            RestoreTarget::Latest => restorable.iter().max_by_key(|s| s.createtxg).map(|s| s.guid),
            RestoreTarget::At(at) => restorable
                .iter()
                .filter(|s| s.created <= *at)
                .max_by_key(|s| (s.created, s.createtxg))
                .map(|s| s.guid),
            RestoreTarget::Snapshot(name) => restorable
                .iter()
                .find(|s| &s.snapshot == name)
                .map(|s| s.guid),
            _ => unreachable!("only these are generated"),
        };
        let resolved = resolve_restore_with(&catalog, &dsn(DATASET), &point, true);
        // Without --allow-older the same, except that a latest/at restore refuses when a
        // newer backup the store records cannot be restored.
        let strict = resolve_restore(&catalog, &dsn(DATASET), &point);
        match (&strict, &resolved) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(RestoreError::NewerNotRestorable { newer, .. }), Ok(chain)) => {
                prop_assert!(!matches!(point, RestoreTarget::Snapshot(_)));
                let newer = catalog.entry(newer).unwrap();
                prop_assert!(newer.sidecar_listed && !newer.is_restorable());
                prop_assert!(newer.stream.created() > chain.last().unwrap().stream.created());
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            other => prop_assert!(false, "strict and allow-older disagree: {:?}", other),
        }
        let Some(expected) = expected else {
            prop_assert!(resolved.is_err(), "{point:?} has no restorable backup, yet {resolved:?}");
            return Ok(());
        };
        let chain = resolved.map_err(|e| TestCaseError::fail(format!("{point:?}: {e}")))?;
        // A chain: a full, then each incremental onto the one before, by guid.
        prop_assert!(chain[0].sidecar.as_ref().unwrap().parent.is_none());
        for w in chain.windows(2) {
            let (a, b) = (w[0].sidecar.as_ref().unwrap(), w[1].sidecar.as_ref().unwrap());
            prop_assert_eq!(b.parent.as_ref().map(|p| p.guid), Some(a.guid));
            prop_assert!(a.createtxg < b.createtxg);
        }
        prop_assert_eq!(chain.last().unwrap().guid(), Some(expected));

        let target = dsn("restore/home");
        let mut model: Option<Dataset> = None;
        let mut received = 0usize;
        // Interrupted after each `stops` streams, then run to the end.
        for stop in stops.iter().copied().map(Some).chain([None]) {
            let plan = plan_restore(chain.clone(), &target, model.as_ref(), false)
                .map_err(|e| TestCaseError::fail(format!("after {received} streams: {e}")))?;
            prop_assert_eq!(plan.done, received, "the plan counts what the target holds");
            prop_assert!(!plan.rollback);
            prop_assert_eq!(&plan.chain, &chain);
            prop_assert_eq!(plan.remaining().len(), chain.len() - received);
            let n = stop.unwrap_or(usize::MAX);
            for e in plan.remaining().iter().take(n) {
                receive(&mut model, e, local_txg).map_err(TestCaseError::fail)?;
                received += 1;
            }
        }
        let model = model.expect("a chain has at least one stream");
        prop_assert_eq!(
            model.snapshots.iter().map(|s| s.guid).collect::<Vec<_>>(),
            guids(&chain)
        );
        prop_assert_eq!(
            model.snapshots.iter().map(|s| &s.name).collect::<Vec<_>>(),
            chain.iter().map(|e| e.stream.snapshot()).collect::<Vec<_>>()
        );
        prop_assert_eq!(model.newest().map(|s| s.guid), Some(expected));
        // Planned once more: nothing left.
        let plan = plan_restore(chain.clone(), &target, Some(&model), false)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(plan.done, chain.len());
        prop_assert!(plan.remaining().is_empty());
    }

    #[test]
    fn backup_due_iff_no_restorable_backup_in_the_period(
        raw in raw_history(),
        every in prop_oneof![1u64..120, 60u64..7_200, 3_600u64..3 * 86_400],
        full_every in prop::option::of(1u64..20_000),
        now_minutes in -60i64..30_000,
    ) {
        let h = history(&raw);
        let catalog = h.store().catalog();
        let now = t0() + TimeDelta::minutes(now_minutes);
        let schedule = BackupSchedule::new(
            Span::from_secs(every),
            full_every.map(|m| Span::from_secs(m * 60)),
        );
        let restorable = h.restorable();
        let every = every as i64;
        // Periods since the epoch (every time here is after it, so `/` floors).
        let period = |t: DateTime<Utc>| t.timestamp() / every;
        let covered = restorable.iter().any(|s| period(s.created) >= period(now));
        let got = backup_due(&catalog, &dsn(DATASET), &schedule, now);
        match &got {
            BackupDue::No { newest } => {
                prop_assert!(covered, "not due at {now} every {every}s, yet no restorable backup in the period: {restorable:?}");
                prop_assert_eq!(Some(*newest), restorable.iter().map(|s| s.created).max());
            }
            BackupDue::Yes { mode, .. } => {
                prop_assert!(!covered, "due at {now} every {every}s, yet a restorable backup is in the period: {restorable:?}");
                let newest_full = restorable
                    .iter()
                    .filter(|s| s.parent.is_none())
                    .map(|s| s.created)
                    .max();
                let full = match (newest_full, full_every) {
                    (None, _) => true,
                    (Some(f), Some(m)) => now - f >= TimeDelta::minutes(m as i64),
                    (Some(_), None) => false,
                };
                let want = if full { BackupMode::Full } else { BackupMode::AutoIncremental };
                prop_assert_eq!(mode, &want);
            }
            other => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

// ---- plan_backup: a new snapshot whose name is taken -----------------------------

#[test]
fn a_snapshot_zsnap_took_this_second_is_reused_and_a_foreign_one_refused() {
    use zsnap_core::backup::{
        plan_backup, BackupMode, BackupPlan, BackupPlanError, BackupRequest, Catalog,
    };
    let now = t(5);
    let name = zsnap_core::naming::NamingScheme::default()
        .name(&"backup".parse().expect("a label"), now)
        .expect("a name");
    let with = |managed: Option<&str>| {
        let mut ds = Dataset::new(dsn("tank/home"), DatasetKind::Filesystem, Guid(1));
        let mut s = Snapshot::new(name.clone(), Guid(77), 10, now);
        s.managed = managed.map(str::to_owned);
        ds.insert_snapshot(s);
        ds
    };
    let request = BackupRequest::new(
        dsn("tank/home"),
        "dir:/backup".parse().expect("a store"),
        BackupMode::AutoIncremental,
    );
    // Taken by zsnap (a backup of the same instant to another store): backed up.
    let ds = with(Some("yes"));
    match plan_backup(&request, &ds, &Catalog::default(), now) {
        Ok(BackupPlan::Send { stream, plan }) => {
            assert_eq!(stream.snapshot(), &name);
            assert!(
                plan.notes[0].message.contains("taken already this second"),
                "{:?}",
                plan.notes
            );
        }
        other => panic!("the snapshot is reused: {other:?}"),
    }
    // Someone else's snapshot under that name: refused, never adopted.
    for managed in [None, Some("no")] {
        let ds = with(managed);
        let e = plan_backup(&request, &ds, &Catalog::default(), now);
        assert!(
            matches!(e, Err(BackupPlanError::NewSnapshotExists { .. })),
            "{e:?}"
        );
    }
}
