//! The CLI backend beyond the contract: what it runs (argv, environment, `--`, batch
//! sizes), how it reads real OpenZFS stderr replayed by the shim, garbage on stdout,
//! ssh failures, and transfers as process pipelines cut by faults.

#[macro_use]
mod contract;

use std::collections::BTreeMap;

use contract::beds::ShimBed;
use contract::{child, full, incremental, list, names_of, short, snap, take, TestBed};
use zsnap_core::{RecvOptions, SendBase, SendSpec, SnapshotRef};
use zsnap_exec::backend::{ReceiveRequest, SendRequest};
use zsnap_exec::failure::FailureKind;
use zsnap_exec::fake::{Fault, FaultEffect, FaultOp};

fn refs(bed: &mut ShimBed, d: &zsnap_core::DatasetName) -> Vec<SnapshotRef> {
    list(bed, d)
        .dataset(d)
        .expect("listed")
        .snapshots
        .iter()
        .map(|s| SnapshotRef::new(s.name.clone(), s.guid))
        .collect()
}

#[test]
fn every_invocation_is_c_locale_argv_with_explicit_columns() {
    for over_ssh in [false, true] {
        let mut bed = ShimBed::unboxed("argv", over_ssh);
        let a = child(&bed.src(), "a b");
        bed.create(&a, false);
        let mut props = BTreeMap::new();
        props.insert("zsnap:managed".to_owned(), "yes".to_owned());
        bed.backend()
            .snapshot(&[snap(&a, "s")], &props)
            .expect("created");
        bed.backend().hold(&snap(&a, "s"), "-r").expect("held");
        bed.backend()
            .release(&snap(&a, "s"), "-r")
            .expect("released");
        let r = refs(&mut bed, &a);
        bed.backend().destroy(&a, &r).expect("destroyed");
        let log = bed.log();
        assert!(log.len() >= 6, "{log:?}");
        for (argv, lc_all) in &log {
            assert_eq!(lc_all.as_deref(), Some("C"), "{argv:?}");
            match argv[0].as_str() {
                "list" => {
                    assert!(argv.contains(&"-H".to_owned()) && argv.contains(&"-p".to_owned()));
                    assert!(argv.contains(&"-o".to_owned()), "{argv:?}");
                }
                "hold" | "release" => assert_eq!(argv[1], "--", "{argv:?}"),
                "snapshot" => assert_eq!(argv[1..], ["-o", "zsnap:managed=yes", &format!("{a}@s")]),
                "destroy" => assert_eq!(argv[1..], [format!("{a}@s")]),
                other => panic!("unexpected zfs {other}"),
            }
        }
    }
}

#[test]
fn destroy_lists_stay_under_the_budget() {
    let mut bed = ShimBed::unboxed("budget", false);
    bed.map_cli(|z| z.with_destroy_budget(48));
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    for i in 0..9 {
        take(&mut bed, &[snap(&a, &format!("snapshot-{i}"))]);
    }
    let r = refs(&mut bed, &a);
    let report = bed.backend().destroy(&a, &r).expect("destroyed");
    assert_eq!(report.destroyed.len(), 9);
    let destroys: Vec<String> = bed
        .log()
        .into_iter()
        .filter(|(argv, _)| argv[0] == "destroy")
        .map(|(argv, _)| argv[1].clone())
        .collect();
    assert!(destroys.len() >= 3, "{destroys:?}");
    for d in &destroys {
        assert!(d.len() <= 48, "{d}");
    }
    assert!(names_of(&list(&mut bed, &a), &a).is_empty());
}

#[test]
fn real_held_and_clone_texts_are_refusals_and_the_rest_is_destroyed() {
    let mut bed = ShimBed::unboxed("realtext", false);
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    for n in ["s1", "s2", "s3", "s4"] {
        take(&mut bed, &[snap(&a, n)]);
    }
    // OpenZFS 2.3.2's own words (zsnap-core/tests/fixtures/real/stderr/).
    let held = format!(
        "cannot destroy snapshot {a}@s2: it's being held. Run 'zfs holds -r {a}@s2' to see holders.\n"
    );
    let cloned = format!(
        "cannot destroy '{a}@s3': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\n{a}_clone\n"
    );
    bed.script(serde_json::json!([
        {"command": "destroy", "exit": 1, "stderr": cloned},
        {"command": "destroy", "exit": 1, "stderr": held},
    ]));
    let r = refs(&mut bed, &a);
    let report = bed.backend().destroy(&a, &r).expect("the batch runs");
    let refused: Vec<(&str, FailureKind)> = report
        .refused
        .iter()
        .map(|r| (r.name.as_str(), r.failure.kind))
        .collect();
    assert_eq!(
        refused,
        [("s3", FailureKind::HasClones), ("s2", FailureKind::Held)]
    );
    assert_eq!(report.destroyed, [short("s1"), short("s4")]);
    assert_eq!(names_of(&list(&mut bed, &a), &a), ["s2", "s3"]);
}

#[test]
fn garbage_and_ssh_failures() {
    let mut bed = ShimBed::unboxed("garbage", true);
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    bed.script(serde_json::json!([
        {"command": "list", "exit": 0, "stdout": "\u{1b}[31mWelcome to the machine\nsrc\tfilesystem\n"},
        {"command": "snapshot", "exit": 255, "stderr": "ssh: connect to host testhost port 22: Connection refused\n"},
        {"command": "hold", "exit": 255, "stderr": "root@testhost: Permission denied (publickey).\n"},
        {"command": "get", "exit": 0, "stdout": "no tab here"},
    ]));
    let err = bed.backend().list(std::slice::from_ref(&a)).unwrap_err();
    assert!(err.failure().is_none());
    assert!(err.to_string().contains("Welcome"), "{err}");
    let err = bed
        .backend()
        .snapshot(&[snap(&a, "s")], &BTreeMap::new())
        .unwrap_err();
    assert_eq!(
        err.failure().map(|f| f.kind),
        Some(FailureKind::SshUnreachable)
    );
    take(&mut bed, &[snap(&a, "s")]);
    let err = bed.backend().hold(&snap(&a, "s"), "t").unwrap_err();
    assert_eq!(err.failure().map(|f| f.kind), Some(FailureKind::SshAuth));
    let t = zsnap_exec::PropertyTarget::Dataset(a.clone());
    let err = bed.backend().property(&t, "zsnap:x").unwrap_err();
    assert!(
        matches!(err, zsnap_exec::backend::GetPropertyError::Parse { .. }),
        "{err}"
    );
}

#[test]
fn transfers_run_as_pipelines_or_through_zsnap_with_progress() {
    let mut bed = ShimBed::unboxed("pipeline", false);
    let a = child(&bed.src(), "a");
    bed.create(&a, false);
    take(&mut bed, &[snap(&a, "s1")]);
    take(&mut bed, &[snap(&a, "s2")]);
    let inv = list(&mut bed, &a);
    let g = |n: &str| inv.snapshot(&snap(&a, n)).expect("listed").guid;
    let (g1, g2) = (g("s1"), g("s2"));
    // Without progress: a pipeline, no byte count.
    let t = child(&bed.dst(), "a");
    let stream = bed
        .backend()
        .send(&full(&snap(&a, "s1"), g1))
        .expect("send");
    let out = bed
        .backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            stream,
            None,
        )
        .expect("received");
    assert_eq!(out.bytes, None);
    // With progress: counted, monotonic, and the last report is the total.
    let req = incremental(
        SendBase::Snapshot {
            name: short("s1"),
            guid: g1,
        },
        &snap(&a, "s2"),
        g2,
        false,
    );
    let stream = bed.backend().send(&req).expect("send");
    let mut seen = Vec::new();
    let mut progress = |n: u64| seen.push(n);
    let out = bed
        .backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            stream,
            Some(&mut progress),
        )
        .expect("received");
    let total = out.bytes.expect("counted");
    assert!(total > 4096, "{total}");
    assert_eq!(seen.last(), Some(&total));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let tinv = list(&mut bed, &t);
    let got: Vec<_> = tinv
        .dataset(&t)
        .expect("received")
        .snapshots
        .iter()
        .map(|s| s.guid)
        .collect();
    assert_eq!(got, [g1, g2]);
}

/// Returns whether the error named a failed sender.
fn killed_mid_stream(with_progress: bool, fault: Fault) -> bool {
    let mut bed = ShimBed::unboxed("killed", false);
    let a = child(&bed.src(), "a");
    let t = child(&bed.dst(), "a");
    bed.create(&a, false);
    take(&mut bed, &[snap(&a, "s1")]);
    let g1 = list(&mut bed, &a)
        .snapshot(&snap(&a, "s1"))
        .expect("listed")
        .guid;
    assert!(bed.inject(fault));
    let stream = bed
        .backend()
        .send(&full(&snap(&a, "s1"), g1))
        .expect("send");
    let mut progress = |_n: u64| {};
    let err = bed
        .backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            stream,
            if with_progress {
                Some(&mut progress)
            } else {
                None
            },
        )
        .unwrap_err();
    assert!(err.failure().is_some(), "{err}");
    // When both sides failed, the message names the sender's failure too.
    let sender_named = match &err {
        zsnap_exec::backend::RecvError::Command {
            sender: Some(sender),
            ..
        } => {
            let text = err.to_string();
            assert!(text.contains("the sender failed too"), "{text}");
            assert!(text.contains(&sender.to_string()), "{text}");
            true
        }
        _ => false,
    };
    let dst = bed.dst();
    let token = list(&mut bed, &dst)
        .dataset(&t)
        .and_then(|d| d.props.receive_resume_token.clone())
        .unwrap_or_else(|| panic!("a token after {err}"));
    let req = SendRequest::new(
        a.clone(),
        SendSpec::Resume {
            token,
            snapshot: None,
        },
        false,
    );
    let stream = bed.backend().send(&req).expect("send -t");
    bed.backend()
        .receive(
            &ReceiveRequest::new(t.clone(), RecvOptions::safe()),
            stream,
            None,
        )
        .expect("resumed");
    let tinv = list(&mut bed, &t);
    assert_eq!(tinv.dataset(&t).expect("received").snapshots[0].guid, g1);
    sender_named
}

#[test]
fn a_sender_killed_mid_stream_leaves_a_token_and_resumes() {
    for with_progress in [false, true] {
        assert!(
            killed_mid_stream(
                with_progress,
                Fault::at_byte(FaultOp::Send, 1, 5000, FaultEffect::Killed),
            ),
            "a killed sender is named in the receive's error"
        );
        killed_mid_stream(
            with_progress,
            Fault::at_byte(FaultOp::Send, 1, 5000, FaultEffect::SshDropped),
        );
        killed_mid_stream(
            with_progress,
            Fault::at_byte(FaultOp::Send, 1, 5000, FaultEffect::Garbage),
        );
        killed_mid_stream(
            with_progress,
            Fault::at_byte(FaultOp::Receive, 1, 7000, FaultEffect::Killed),
        );
        killed_mid_stream(
            with_progress,
            Fault::at_byte(FaultOp::Receive, 1, 7000, FaultEffect::NoSpace),
        );
    }
}

/// The `zfs` processes of `zsnap run` (snapshot, replicate, prune) through the real
/// backend, per subcommand, for a recursive root with `n` children, over three hourly
/// runs (the third prunes): the issue's "processes per run independent of the number
/// of datasets", checked on every `cargo test` (`benches/testbed-processes.sh`
/// measures the same on real OpenZFS).
fn processes_per_run(n: usize) -> Vec<BTreeMap<String, usize>> {
    use chrono::{TimeDelta, TimeZone, Utc};
    use zsnap_core::config::Config;
    use zsnap_exec::job::{Engine, Job, Reporters, Source};
    use zsnap_exec::{NoObserver, OneBackend};

    let mut bed = ShimBed::unboxed(&format!("processes-{n}"), false);
    let root = bed.src();
    for i in 0..n {
        bed.create(&child(&root, &format!("d{i}")), false);
    }
    let config = Config::from_toml(
        &format!(
            "[policies.p]\nsnapshot = {{ hourly = \"hourly\" }}\nkeep_counts = {{ hourly = 2 }}\n\n\
             [[datasets]]\nroot = \"{root}\"\nrecursive = true\npolicy = \"p\"\n\n\
             [targets.t]\nsource = \"{root}\"\nto = \"{}/copy\"\npolicy = \"p\"\n",
            bed.dst()
        ),
        "processes.toml",
    )
    .expect("a valid config");
    let engine = Engine::new(&config);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 16, 30, 0).unwrap();
    let mut runs = Vec::new();
    for h in 0..3 {
        let now = t0 + TimeDelta::hours(h);
        bed.edit(|z| z.set_now(now));
        let before = bed.log().len();
        let mut observer = NoObserver;
        let mut reporters = Reporters::new(&mut observer);
        let outcome = engine
            .run(
                &Job::Run,
                now,
                false,
                Source::Backends(&mut OneBackend(bed.backend())),
                &mut reporters,
            )
            .expect("ran");
        assert!(!outcome.failed(), "{:#?}", outcome.phases);
        let mut counts = BTreeMap::new();
        for (argv, _) in &bed.log()[before..] {
            *counts.entry(argv[0].clone()).or_insert(0) += 1;
        }
        runs.push(counts);
    }
    runs
}

#[test]
fn zfs_processes_per_run_do_not_grow_with_the_datasets() {
    let (few, many) = (processes_per_run(2), processes_per_run(9));
    let per_dataset = ["send", "receive", "destroy"];
    for (run, (f, m)) in few.iter().zip(&many).enumerate() {
        let flat = |c: &BTreeMap<String, usize>| -> BTreeMap<String, usize> {
            c.iter()
                .filter(|(k, _)| !per_dataset.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        };
        assert_eq!(
            flat(f),
            flat(m),
            "run {run}: 3 datasets {f:?}, 10 datasets {m:?}"
        );
        // What does grow: one send and one receive per dataset, one destroy per dataset
        // and side once there is something to prune.
        assert_eq!((f["send"], m["send"]), (3, 10), "run {run}");
        assert_eq!(f.get("receive"), f.get("send"));
        assert_eq!(m.get("receive"), m.get("send"));
    }
    // The first run: the target root does not exist yet (each root listed alone,
    // then its parent), then just the new snapshots.
    assert_eq!(few[0]["list"], 5, "{:?}", few[0]);
    // After that: one listing of both roots, one of the new snapshots; the pruning
    // run re-checks guids once per side before its destroys.
    assert_eq!(few[1]["list"], 2, "{:?}", few[1]);
    assert_eq!(few[2]["list"], 4, "{:?}", few[2]);
    for run in &many[1..] {
        assert_eq!(
            (run["hold"], run["release"], run["holds"]),
            (1, 1, 1),
            "{run:?}"
        );
    }
    assert_eq!(many[2]["destroy"], 20, "one destroy per dataset and side");
}
