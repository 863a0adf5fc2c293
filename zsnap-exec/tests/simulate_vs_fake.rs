//! Cross-check: `Plan::simulate` (zsnap-core) and the fake (zsnap-exec) are written
//! independently from ZFS's rules. On random plans over a random pool, whenever the
//! simulation accepts a plan, the fake must run every step in full and end with the
//! same datasets, snapshots (names, guids, order, hold counts, managed marker),
//! bookmarks and resume state. (The simulation may refuse more: it also refuses what a
//! planner should never ask for.)

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::{
    BookmarkName, BookmarkStep, DatasetName, DestroyStep, Guid, HoldStep, Inventory, Location,
    Plan, SendBase, SendSpec, ShortName, SnapshotRef, SnapshotStep, Step, TransferStep,
};
use zsnap_exec::apply::{apply, NoObserver, OneBackend, StepOutcome};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::ZfsBackend;

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid")
}

fn sn(s: &str) -> ShortName {
    s.parse().expect("valid")
}

/// One random step, as indices into what exists (resolved against the listing).
#[derive(Debug, Clone)]
enum Op {
    Snapshot(Vec<(usize, usize)>),
    Destroy(usize, Vec<usize>, bool),
    Hold(usize, usize, bool),
    Release(usize, usize, bool),
    Bookmark(usize, usize, usize),
    Transfer {
        base: Option<usize>,
        to: usize,
        all: bool,
        via_bookmark: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec((0usize..2, 0usize..3), 1..=3).prop_map(Op::Snapshot),
        (
            0usize..2,
            proptest::collection::vec(0usize..6, 1..=3),
            proptest::bool::weighted(0.1)
        )
            .prop_map(|(d, v, wrong)| Op::Destroy(d, v, wrong)),
        (0usize..2, 0usize..6, any::<bool>()).prop_map(|(d, s, t)| Op::Hold(d, s, t)),
        (0usize..2, 0usize..6, any::<bool>()).prop_map(|(d, s, t)| Op::Release(d, s, t)),
        (0usize..2, 0usize..6, 0usize..2).prop_map(|(d, s, b)| Op::Bookmark(d, s, b)),
        (
            proptest::option::of(0usize..6),
            0usize..6,
            any::<bool>(),
            proptest::bool::weighted(0.2)
        )
            .prop_map(|(base, to, all, via_bookmark)| Op::Transfer {
                base,
                to,
                all,
                via_bookmark
            }),
    ]
}

fn setup(counts: &[usize], held: &[bool], prefix: usize) -> FakeZfs {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("valid");
    let mut z = FakeZfs::new(3, now);
    z.set_stream_bytes(64);
    z.add_pool("src").expect("pool");
    z.add_pool("dst").expect("pool");
    let mut k = 0;
    for (i, c) in counts.iter().enumerate() {
        let d = ds(&format!("src/d{i}"));
        z.create(&d, false).expect("created");
        for j in 0..*c {
            let s = d.snapshot(&sn(&format!("s{j}")));
            z.snapshot(std::slice::from_ref(&s), &BTreeMap::new())
                .expect("created");
            if held.get(k).copied().unwrap_or(false) {
                z.hold(&s, "old").expect("held");
            }
            k += 1;
        }
    }
    // dst/d0 holds the first `prefix` snapshots of src/d0.
    let inv = z.list(&[ds("src")]).expect("listed");
    let src0 = inv
        .dataset(&ds("src/d0"))
        .expect("exists")
        .snapshots
        .clone();
    let here = Location::local();
    let mut plan = Plan::new(now);
    let t = |send| {
        Step::Transfer(TransferStep::new(
            here.clone(),
            here.clone(),
            ds("src/d0"),
            ds("dst/d0"),
            send,
            "setup",
        ))
    };
    if prefix > 0 {
        let first = SnapshotRef::new(src0[0].name.clone(), src0[0].guid);
        plan.steps.push(t(SendSpec::Full { snapshot: first }));
        if prefix > 1 {
            let last = &src0[prefix - 1];
            plan.steps.push(t(SendSpec::Incremental {
                base: SendBase::Snapshot {
                    name: src0[0].name.clone(),
                    guid: src0[0].guid,
                },
                snapshot: SnapshotRef::new(last.name.clone(), last.guid),
                intermediates: true,
                expected: src0[1..prefix]
                    .iter()
                    .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
                    .collect(),
            }));
        }
    }
    let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
    assert!(report.is_success());
    z
}

/// Turns random ops into steps against what the listing shows (before the plan).
fn plan_of(ops: &[Op], inv: &Inventory, now: chrono::DateTime<Utc>) -> Plan {
    let here = Location::local();
    let mut plan = Plan::new(now);
    let snaps = |d: usize| {
        inv.dataset(&ds(&format!("src/d{d}")))
            .map(|x| x.snapshots.clone())
            .unwrap_or_default()
    };
    let mut fresh = 0;
    let mut placed: Vec<(usize, usize)> = Vec::new();
    for op in ops {
        match op {
            Op::Snapshot(v) => {
                let names = v
                    .iter()
                    .map(|(d, n)| ds(&format!("src/d{d}")).snapshot(&sn(&format!("new{n}"))))
                    .collect();
                plan.steps.push(Step::Snapshot(SnapshotStep::new(
                    here.clone(),
                    names,
                    BTreeMap::new(),
                    "t",
                )));
            }
            Op::Destroy(d, idx, wrong) => {
                let s = snaps(*d);
                let mut refs: Vec<SnapshotRef> = Vec::new();
                for i in idx {
                    if let Some(x) = s.get(*i) {
                        if !refs.iter().any(|r| r.name == x.name) {
                            let g = if *wrong { Guid(x.guid.0 ^ 1) } else { x.guid };
                            refs.push(SnapshotRef::new(x.name.clone(), g));
                        }
                    }
                }
                if !refs.is_empty() {
                    plan.steps.push(Step::Destroy(DestroyStep::new(
                        here.clone(),
                        ds(&format!("src/d{d}")),
                        refs,
                        "t",
                    )));
                }
            }
            Op::Hold(d, i, tag) | Op::Release(d, i, tag) => {
                if let Some(x) = snaps(*d).get(*i) {
                    let name = ds(&format!("src/d{d}")).snapshot(&x.name);
                    // An inventory counts holds but does not name them, so the
                    // simulation can only tell tags apart that this plan places: hold
                    // only "t", release the pre-existing "old", or "t" once this plan
                    // has placed holds.
                    let tag = match op {
                        Op::Hold(..) => "t",
                        _ if *tag => "old",
                        // A release of a tag placed earlier in this plan.
                        _ if placed.contains(&(*d, *i)) => "t",
                        _ => "old",
                    };
                    if matches!(op, Op::Hold(..)) {
                        placed.push((*d, *i));
                    }
                    let step = HoldStep::new(here.clone(), name, x.guid, tag, "t");
                    plan.steps.push(if matches!(op, Op::Hold(..)) {
                        Step::Hold(step)
                    } else {
                        Step::Release(step)
                    });
                }
            }
            Op::Bookmark(d, i, b) => {
                if let Some(x) = snaps(*d).get(*i) {
                    let bm: BookmarkName = format!("src/d{d}#b{b}").parse().expect("valid");
                    let name = ds(&format!("src/d{d}")).snapshot(&x.name);
                    plan.steps.push(Step::Bookmark(BookmarkStep::new(
                        here.clone(),
                        name,
                        x.guid,
                        bm,
                        "t",
                    )));
                }
            }
            Op::Transfer {
                base,
                to,
                all,
                via_bookmark,
            } => {
                let s = snaps(0);
                let Some(x) = s.get(*to) else { continue };
                let snapshot = SnapshotRef::new(x.name.clone(), x.guid);
                let send = match base.and_then(|b| s.get(b).map(|y| (b, y))) {
                    None => SendSpec::Full { snapshot },
                    Some((b, y)) => {
                        let base = if *via_bookmark {
                            fresh += 1;
                            let bm: BookmarkName =
                                format!("src/d0#x{fresh}").parse().expect("valid");
                            let name = ds("src/d0").snapshot(&y.name);
                            plan.steps.push(Step::Bookmark(BookmarkStep::new(
                                here.clone(),
                                name,
                                y.guid,
                                bm.clone(),
                                "t",
                            )));
                            SendBase::Bookmark {
                                name: bm.short().clone(),
                                guid: y.guid,
                            }
                        } else {
                            SendBase::Snapshot {
                                name: y.name.clone(),
                                guid: y.guid,
                            }
                        };
                        let expected = if *all && b < *to {
                            s[b + 1..=*to]
                                .iter()
                                .map(|z| SnapshotRef::new(z.name.clone(), z.guid))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        SendSpec::Incremental {
                            base,
                            snapshot,
                            intermediates: *all,
                            expected,
                        }
                    }
                };
                plan.steps.push(Step::Transfer(TransferStep::new(
                    here.clone(),
                    here.clone(),
                    ds("src/d0"),
                    ds("dst/d0"),
                    send,
                    "t",
                )));
            }
        }
    }
    plan
}

/// Structure that both must agree on (createtxg values differ by design: only order;
/// guids of snapshots the plan creates are random in both).
fn shape(inv: &Inventory, before: &Inventory) -> Vec<String> {
    let known: std::collections::HashSet<Guid> = before
        .datasets
        .values()
        .flat_map(|d| d.snapshots.iter().map(|s| s.guid))
        .collect();
    let g = |x: Guid| {
        if known.contains(&x) {
            x.to_string()
        } else {
            "new".to_owned()
        }
    };
    let mut out = Vec::new();
    for d in inv.datasets.values() {
        out.push(format!(
            "{} token={}",
            d.name,
            d.props.receive_resume_token.is_some()
        ));
        for s in &d.snapshots {
            out.push(format!(
                "  @{} {} refs={} managed={:?}",
                s.name,
                g(s.guid),
                s.userrefs,
                s.managed
            ));
        }
        for b in &d.bookmarks {
            out.push(format!("  #{} {}", b.name, g(b.guid)));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("ZSNAP_FAULT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
    ))]

    #[test]
    fn what_simulate_accepts_the_fake_runs_to_the_same_result(
        counts in proptest::collection::vec(1usize..=5, 2),
        held in proptest::collection::vec(proptest::bool::weighted(0.2), 10),
        prefix in 0usize..=3,
        ops in proptest::collection::vec(op(), 1..=5),
    ) {
        let prefix = prefix.min(counts[0]);
        let mut z = setup(&counts, &held, prefix);
        let before = z.list(&[]).expect("listed");
        let plan = plan_of(&ops, &before, z.now());
        let simulated = plan.simulate(&before);
        let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
        if let Ok(expected) = simulated {
            for s in &report.steps {
                prop_assert!(
                    matches!(s.outcome, StepOutcome::Done { .. }),
                    "simulate accepted step {} ({:?}) but the fake: {:?}", s.index, plan.steps[s.index], s.outcome
                );
            }
            let after = z.list(&[]).expect("listed");
            prop_assert_eq!(shape(&after, &before), shape(&expected, &before));
        }
    }
}
