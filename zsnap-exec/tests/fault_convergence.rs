//! Property: random plans (snapshots, holds, releases, bookmarks, replication,
//! destroys) applied to the fake with random injected faults, then re-planned from the
//! state they left and applied again, end in the state a fault-free run reaches, and
//! never destroy a snapshot the goal did not name.
//!
//! The planner here is a small test planner (not zsnap's): it plans from a goal and the
//! current listing, with the safety rules that make the goal reachable (never destroy a
//! held snapshot or the newest snapshot of a replicated dataset; transfers before
//! destroys). Cases: `ZSNAP_FAULT_CASES` (default 1000), since one case runs several
//! plans against two fakes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use zsnap_core::{
    BookmarkName, BookmarkStep, DatasetName, DestroyStep, Guid, HoldStep, Inventory, Location,
    Plan, SendBase, SendSpec, ShortName, SnapshotName, SnapshotRef, SnapshotStep, Step,
    TransferStep,
};
use zsnap_exec::apply::{apply, NoObserver, OneBackend, StepOutcome};
use zsnap_exec::fake::{FakeZfs, Fault, FaultEffect, FaultOp};
use zsnap_exec::ZfsBackend;

#[derive(Debug, Clone)]
struct Goal {
    /// Per dataset: initial snapshots, and whether each starts with hold "old".
    init_held: Vec<Vec<bool>>,
    /// Per dataset: replicated, and how many initial snapshots the target has already.
    replicated: Vec<Option<usize>>,
    /// Snapshot rounds: per round, which datasets get `n<round>` (one atomic call).
    rounds: Vec<Vec<bool>>,
    /// Per dataset, per initial snapshot: destroy it.
    destroy: Vec<Vec<bool>>,
    /// Per dataset, per snapshot of the final list: hold it with "keep".
    hold: Vec<Vec<bool>>,
    /// Per dataset, per initial snapshot: release "old".
    release: Vec<Vec<bool>>,
    /// Per dataset, per snapshot of the final list: bookmark it as `bm-<name>`.
    bookmark: Vec<Vec<bool>>,
}

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid")
}

fn sn(s: &str) -> ShortName {
    s.parse().expect("valid")
}

fn src(i: usize) -> DatasetName {
    ds(&format!("src/d{i}"))
}

fn dst(i: usize) -> DatasetName {
    ds(&format!("dst/d{i}"))
}

impl Goal {
    fn n(&self) -> usize {
        self.init_held.len()
    }

    /// The snapshots of dataset `i` in order, as the goal will have created them.
    fn names(&self, i: usize) -> Vec<String> {
        let mut v: Vec<String> = (0..self.init_held[i].len())
            .map(|j| format!("i{j}"))
            .collect();
        for (r, round) in self.rounds.iter().enumerate() {
            if round[i] {
                v.push(format!("n{r}"));
            }
        }
        v
    }

    /// Whether the goal lets the planner destroy initial snapshot `j` of dataset `i`.
    fn destroyable(&self, i: usize, j: usize) -> bool {
        let names = self.names(i);
        self.destroy[i][j]
            && !(self.replicated[i].is_some() && names.last() == Some(&format!("i{j}")))
            && !self.hold[i][j]
            && (!self.init_held[i][j] || self.release[i][j])
    }
}

fn goal() -> impl Strategy<Value = Goal> {
    (1usize..=3, 1usize..=2)
        .prop_flat_map(|(n, rounds)| {
            let per_ds = proptest::collection::vec(0usize..=3, n);
            (
                per_ds,
                proptest::collection::vec(proptest::collection::vec(any::<bool>(), n), rounds),
            )
        })
        .prop_flat_map(|(counts, rounds)| {
            let n = counts.len();
            let finals: Vec<usize> = (0..n)
                .map(|i| counts[i] + rounds.iter().filter(|r| r[i]).count())
                .collect();
            let bools = |lens: Vec<usize>| {
                lens.into_iter()
                    .map(|l| proptest::collection::vec(proptest::bool::weighted(0.4), l))
                    .collect::<Vec<_>>()
            };
            let replicated: Vec<_> = counts
                .iter()
                .map(|c| proptest::option::weighted(0.7, 0..=*c))
                .collect();
            (
                bools(counts.clone()),
                replicated,
                Just(rounds),
                bools(counts.clone()),
                bools(finals.clone()),
                bools(counts.clone()),
                bools(finals),
            )
        })
        .prop_map(
            |(init_held, replicated, rounds, destroy, hold, release, bookmark)| Goal {
                init_held,
                replicated,
                rounds,
                destroy,
                hold,
                release,
                bookmark,
            },
        )
}

fn fault() -> impl Strategy<Value = Fault> {
    let op = prop_oneof![
        Just(FaultOp::Snapshot),
        Just(FaultOp::Destroy),
        Just(FaultOp::Hold),
        Just(FaultOp::Release),
        Just(FaultOp::Bookmark),
        Just(FaultOp::Send),
        Just(FaultOp::Receive),
    ];
    let effect = prop_oneof![
        Just(FaultEffect::Killed),
        Just(FaultEffect::NoSpace),
        Just(FaultEffect::Busy),
        Just(FaultEffect::PermissionDenied),
        Just(FaultEffect::SshDropped),
        Just(FaultEffect::Garbage),
    ];
    (
        op,
        1u64..=3,
        effect,
        any::<bool>(),
        proptest::option::of(0u64..1500),
    )
        .prop_map(|(op, nth, effect, after, at)| match (op, at) {
            (FaultOp::Send | FaultOp::Receive, Some(at)) => Fault::at_byte(op, nth, at, effect),
            _ if after => Fault::after_call(op, nth, effect),
            _ => Fault::on_call(op, nth, effect),
        })
}

fn setup(goal: &Goal) -> FakeZfs {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("valid");
    let mut z = FakeZfs::new(99, now);
    z.set_stream_bytes(256);
    z.add_pool("src").expect("pool");
    z.add_pool("dst").expect("pool");
    for i in 0..goal.n() {
        z.create(&src(i), false).expect("created");
        for (j, held) in goal.init_held[i].iter().enumerate() {
            let s = src(i).snapshot(&sn(&format!("i{j}")));
            z.snapshot(std::slice::from_ref(&s), &BTreeMap::new())
                .expect("created");
            if *held {
                z.hold(&s, "old").expect("held");
            }
        }
    }
    // Targets that already have a prefix of the initial snapshots.
    let plan = planner(goal, &z, true);
    let report = apply(&plan, &mut OneBackend(&mut z), &mut NoObserver, None);
    assert!(
        report.is_success(),
        "setup: {:?}",
        report.failures().collect::<Vec<_>>()
    );
    z
}

fn r(name: &str, guid: Guid) -> SnapshotRef {
    SnapshotRef::new(sn(name), guid)
}

/// The fake's own token format, read by the test planner to continue after a resume.
fn token_guid(token: &str) -> Option<Guid> {
    let hex = token.strip_prefix("1-fake-")?;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<_>>()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("toguid")?.as_u64().map(Guid)
}

/// Plans the goal from the current state. With `prefix_only`, plans only the setup's
/// pre-existing replication (targets holding the first k initial snapshots).
fn planner(goal: &Goal, z: &FakeZfs, prefix_only: bool) -> Plan {
    let now = z.now();
    let mut plan = Plan::new(now);
    let here = Location::local();
    let inv_src = z.list(&[ds("src")]).expect("listed");
    let inv_dst = z.list(&[ds("dst")]).expect("listed");
    let guid = |inv: &Inventory, d: &DatasetName, n: &str| {
        inv.snapshot(&d.snapshot(&sn(n))).map(|s| s.guid)
    };
    if !prefix_only {
        for (round, which) in goal.rounds.iter().enumerate() {
            let name = format!("n{round}");
            let names: Vec<SnapshotName> = (0..goal.n())
                .filter(|i| which[*i] && guid(&inv_src, &src(*i), &name).is_none())
                .map(|i| src(i).snapshot(&sn(&name)))
                .collect();
            if !names.is_empty() {
                let mut props = BTreeMap::new();
                props.insert("zsnap:managed".to_owned(), "yes".to_owned());
                plan.steps.push(Step::Snapshot(SnapshotStep::new(
                    here.clone(),
                    names,
                    props,
                    "due",
                )));
            }
        }
        for i in 0..goal.n() {
            for (k, name) in goal.names(i).iter().enumerate() {
                let s = src(i).snapshot(&sn(name));
                let exists = guid(&inv_src, &src(i), name);
                let g = exists.unwrap_or(Guid(0));
                let initial = name.starts_with('i');
                let gone = initial && exists.is_none();
                if goal.hold[i][k] && !gone && !z.holds(&s).contains(&"keep".to_owned()) {
                    plan.steps.push(Step::Hold(HoldStep::new(
                        here.clone(),
                        s.clone(),
                        g,
                        "keep",
                        "keep",
                    )));
                }
                if initial && goal.release[i][k] && z.holds(&s).contains(&"old".to_owned()) {
                    plan.steps.push(Step::Release(HoldStep::new(
                        here.clone(),
                        s.clone(),
                        g,
                        "old",
                        "release",
                    )));
                }
                let b: BookmarkName = format!("src/d{i}#bm-{name}").parse().expect("valid");
                let has_bm = inv_src
                    .dataset(&src(i))
                    .is_some_and(|d| d.bookmarks.iter().any(|x| x.name == *b.short()));
                if goal.bookmark[i][k] && !gone && !has_bm {
                    plan.steps.push(Step::Bookmark(BookmarkStep::new(
                        here.clone(),
                        s,
                        g,
                        b,
                        "bm",
                    )));
                }
            }
        }
    }
    for i in 0..goal.n() {
        let Some(prefix) = goal.replicated[i] else {
            continue;
        };
        // The source's snapshots as they will be when the transfers run.
        let mut chain: Vec<(String, Guid)> = inv_src
            .dataset(&src(i))
            .map(|d| {
                d.snapshots
                    .iter()
                    .map(|s| (s.name.to_string(), s.guid))
                    .collect()
            })
            .unwrap_or_default();
        if prefix_only {
            chain.truncate(prefix);
        } else {
            for name in goal.names(i).into_iter().filter(|n| n.starts_with('n')) {
                if !chain.iter().any(|(n, _)| *n == name) {
                    chain.push((name, Guid(0)));
                }
            }
        }
        let target = inv_dst.dataset(&dst(i));
        let mut have: Vec<Guid> = target
            .map(|d| d.snapshots.iter().map(|s| s.guid).collect())
            .unwrap_or_default();
        let transfer = |send: SendSpec| {
            Step::Transfer(TransferStep::new(
                here.clone(),
                here.clone(),
                src(i),
                dst(i),
                send,
                "replicate",
            ))
        };
        if let Some(token) = target.and_then(|d| d.props.receive_resume_token.clone()) {
            plan.steps.push(transfer(SendSpec::Resume {
                token: token.clone(),
                snapshot: None,
            }));
            have.push(token_guid(&token).expect("a fake token"));
        }
        let Some((last_name, last_guid)) = chain.last().cloned() else {
            continue;
        };
        match have.last() {
            None => {
                let (first, g) = chain[0].clone();
                plan.steps.push(transfer(SendSpec::Full {
                    snapshot: r(&first, g),
                }));
                if chain.len() > 1 {
                    plan.steps.push(transfer(SendSpec::Incremental {
                        base: SendBase::Snapshot {
                            name: sn(&first),
                            guid: g,
                        },
                        snapshot: r(&last_name, last_guid),
                        intermediates: true,
                        expected: Vec::new(),
                    }));
                }
            }
            Some(newest) => {
                let k = chain
                    .iter()
                    .position(|(_, g)| g == newest)
                    .expect("the target's newest snapshot is on the source");
                if k + 1 < chain.len() {
                    let (base, g) = chain[k].clone();
                    plan.steps.push(transfer(SendSpec::Incremental {
                        base: SendBase::Snapshot {
                            name: sn(&base),
                            guid: g,
                        },
                        snapshot: r(&last_name, last_guid),
                        intermediates: true,
                        expected: Vec::new(),
                    }));
                }
            }
        }
    }
    if !prefix_only {
        for i in 0..goal.n() {
            let refs: Vec<SnapshotRef> = (0..goal.init_held[i].len())
                .filter(|j| goal.destroyable(i, *j))
                .filter_map(|j| {
                    let name = format!("i{j}");
                    guid(&inv_src, &src(i), &name).map(|g| r(&name, g))
                })
                .collect();
            if !refs.is_empty() {
                plan.steps.push(Step::Destroy(DestroyStep::new(
                    here.clone(),
                    src(i),
                    refs,
                    "prune",
                )));
            }
        }
    }
    plan
}

/// Names, order and structure of everything, with guids replaced by what they stand
/// for (the source snapshot that first had them).
fn canonical(z: &FakeZfs) -> String {
    let all = z.list(&[]).expect("listed");
    let mut label: HashMap<Guid, String> = HashMap::new();
    for (n, g) in z.destroyed() {
        if n.dataset().pool() == "src" {
            label.insert(g, n.to_string());
        }
    }
    for d in all.datasets.values().filter(|d| d.name.pool() == "src") {
        for s in &d.snapshots {
            label.insert(s.guid, d.snapshot_name(s).to_string());
        }
    }
    let mut out = String::new();
    for d in all.datasets.values() {
        out.push_str(&format!(
            "{} token={} enc={:?}\n",
            d.name,
            d.props.receive_resume_token.is_some(),
            d.props.encryption
        ));
        for s in &d.snapshots {
            let holds: BTreeSet<String> = z.holds(&d.snapshot_name(s)).into_iter().collect();
            let l = label.get(&s.guid).map_or("?", String::as_str);
            out.push_str(&format!(
                "  @{} = {l} holds={holds:?} managed={:?}\n",
                s.name, s.managed
            ));
        }
        for b in &d.bookmarks {
            let l = label.get(&b.guid).map_or("?", String::as_str);
            out.push_str(&format!("  #{} = {l}\n", b.name));
        }
    }
    out
}

fn cases() -> u32 {
    std::env::var("ZSNAP_FAULT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn faulty_runs_converge_to_the_fault_free_state(
        goal in goal(),
        faults in proptest::collection::vec(fault(), 0..=3),
    ) {
        // Fault-free.
        let mut clean = setup(&goal);
        let plan = planner(&goal, &clean, false);
        let report = apply(&plan, &mut OneBackend(&mut clean), &mut NoObserver, None);
        prop_assert!(report.is_success(), "fault-free: {:?}", report.failures().map(|(i, e)| (i, e.to_string())).collect::<Vec<_>>());
        let again = planner(&goal, &clean, false);
        prop_assert!(again.is_empty(), "a fault-free run reaches the goal in one plan; left: {:?}\n{}", again.steps, canonical(&clean));

        // Faulty, then re-planned until nothing is left to do.
        let mut faulty = setup(&goal);
        let plan = planner(&goal, &faulty, false);
        for f in &faults {
            let mut f = f.clone();
            f.nth += faulty.calls(f.op);
            faulty.inject(f);
        }
        let report = apply(&plan, &mut OneBackend(&mut faulty), &mut NoObserver, None);
        for s in &report.steps {
            if let StepOutcome::Failed { error, .. } = &s.outcome {
                prop_assert!(error.failure().is_some() || matches!(error, zsnap_exec::apply::StepError::Receive(_)),
                    "unclassified failure: {error}");
            }
        }
        faulty.clear_faults();
        let mut rounds = 0;
        loop {
            let plan = planner(&goal, &faulty, false);
            if plan.is_empty() {
                break;
            }
            rounds += 1;
            prop_assert!(rounds <= 4, "no convergence after 4 re-plans; left: {:?}", plan.steps);
            let report = apply(&plan, &mut OneBackend(&mut faulty), &mut NoObserver, None);
            prop_assert!(report.is_success(), "re-plan {rounds}: {:?}", report.failures().map(|(i, e)| (i, e.to_string())).collect::<Vec<_>>());
        }
        prop_assert_eq!(canonical(&faulty), canonical(&clean));

        // Snapshots taken in one call share a txg, faults or not.
        let inv = faulty.list(&[ds("src")]).expect("listed");
        for r in 0..goal.rounds.len() {
            let txgs: BTreeSet<u64> = inv
                .datasets
                .values()
                .filter_map(|d| d.snapshot(&sn(&format!("n{r}"))).map(|s| s.createtxg))
                .collect();
            prop_assert!(txgs.len() <= 1, "round {r}: {txgs:?}");
        }

        // Nothing was destroyed that the goal did not name.
        for z in [&clean, &faulty] {
            for (name, _) in z.destroyed() {
                let i: usize = name.dataset().as_str().trim_start_matches("src/d").parse().unwrap_or(usize::MAX);
                let j: Option<usize> = name.short().as_str().strip_prefix('i').and_then(|j| j.parse().ok());
                prop_assert!(
                    name.dataset().pool() == "src" && i < goal.n() && j.is_some_and(|j| goal.destroy[i][j]),
                    "destroyed {name}, which the goal did not name"
                );
            }
        }
    }
}
