//! End-to-end scenarios of the real `zsnap` binary against real OpenZFS 2.3, in the
//! testbed guest (`testbed/`).
//!
//! Needs `ZSNAP_TESTBED_SSH_CONFIG` and `ZSNAP_TESTBED_HOST`, which `. "$(testbed/up.sh)"`
//! exports. Without them every scenario says how to run it and passes, except under
//! `CI=true`, where it fails.
//!
//! Each scenario runs `zsnap` in the guest (`--backend local`, `--now` stepping through
//! virtual time) on its own datasets below the pools `src` and `dst`; one runs it on
//! this machine against the guest over ssh. Every run is checked: the listing before,
//! with the dry run's plan (`zsnap plan JOB --json`) simulated on it by the library,
//! must equal the listing after the real run (names, guids, holds, clones, resume
//! tokens, encryption), and the run must do the steps the dry run showed.
//!
//! `--now` moves zsnap's clock, not ZFS's: snapshot names and schedules follow `--now`,
//! but `creation` is the guest's real time. The policies here therefore keep by count
//! (`keep_counts`), whose verdicts depend on the order of snapshots, not their age.
#![expect(
    clippy::print_stderr,
    reason = "skipped scenarios and timings are reported on stderr"
)]

mod e2e;

use chrono::{TimeDelta, TimeZone, Utc};
use serde_json::Value;
use zsnap_core::plan::{SendSpec, SnapshotRef, Step};
use zsnap_core::{Guid, Inventory};
use zsnap_exec::quote::quote;

use e2e::compare::{guid_map, names, phase_plans};
use e2e::guest::{guest, Scenario};

/// `--now` for `hours` after the start of the virtual clock.
fn at(hours: i64) -> String {
    (Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + TimeDelta::hours(hours))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The timestamp zsnap puts in a name, `hours` after the start.
fn stamp(hours: i64) -> String {
    (Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap() + TimeDelta::hours(hours))
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// The kinds of the transfers in a `--json` outcome: `full`, `incremental`, `resume`,
/// each with `raw` when the send is raw.
fn transfers(outcome: &Value) -> Vec<String> {
    phase_plans(outcome)
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter_map(|s| match s {
            Step::Transfer(t) => {
                let kind = match &t.send {
                    SendSpec::Full { .. } => "full",
                    SendSpec::Incremental { .. } => "incremental",
                    SendSpec::Resume { .. } => "resume",
                    _ => "other",
                };
                Some(format!("{kind}{}", if t.raw { " raw" } else { "" }))
            }
            _ => None,
        })
        .collect()
}

/// Destroy steps and the number of snapshots they destroy.
fn destroyed(outcome: &Value) -> usize {
    phase_plans(outcome)
        .iter()
        .flat_map(|p| p.steps.iter())
        .map(|s| match s {
            Step::Destroy(d) => d.snapshots.len(),
            _ => 0,
        })
        .sum()
}

/// Asserts that `dataset` on the target has the snapshots `names` with the guids their
/// namesakes have on the source (where the source still has them).
fn assert_same_guids(inv: &Inventory, source: &str, target: &str) {
    let src = guid_map(inv, source);
    let dst = guid_map(inv, target);
    for (name, guid) in &dst {
        if let Some(g) = src.get(name) {
            assert_eq!(
                g, guid,
                "{target}@{name} is not {source}@{name} (guids differ)"
            );
        }
    }
}

/// A replication config: `source` (recursive or not) snapshotted every hour and kept
/// 2, replicated to `target`, which keeps 10.
fn replication_config(source: &str, recursive: bool, target: &str) -> String {
    format!(
        r#"[policies.source]
snapshot = {{ hourly = "1h" }}
keep_counts = {{ hourly = 2 }}

[policies.archive]
keep_counts = {{ hourly = 10 }}

[[datasets]]
root = "{source}"
recursive = {recursive}
policy = "source"

[targets.copy]
source = "{source}"
to = "{target}"
policy = "archive"
"#
    )
}

/// `sha256sum` of every file below each mountpoint, as `relative-path hash` lines.
fn tree_hashes(s: &Scenario, dir: &str) -> String {
    s.guest.ok(&format!(
        "cd {} && find . -type f | sort | xargs sha256sum",
        quote(dir)
    ))
}

/// Four days in 3-hour steps (33 checked runs): the longest scenario, named to sort first
/// so that the test harness starts it first.
#[test]
fn days_of_snapshots_pruned_by_count() {
    let Some(g) = guest("days_of_snapshots_pruned_by_count") else {
        return;
    };
    let s = Scenario::new(g, "prune", "");
    let child = format!("{}/child", s.src);
    g.ok(&format!(
        "zfs create {} && zfs snapshot {}",
        quote(&child),
        quote(&format!("{}@manual", s.src))
    ));
    s.config(&format!(
        r#"[policies.p]
snapshot = {{ frequent = "3h", daily = "daily" }}
keep_counts = {{ frequent = 5, daily = 3 }}

[[datasets]]
root = "{}"
recursive = true
policy = "p"
"#,
        s.src
    ));
    let mut gone = 0;
    for h in (0..=96).step_by(3) {
        let c = s.checked_ok(&at(h), "run");
        gone += destroyed(&c.plan);
    }
    // 33 frequent and 5 daily snapshots taken per dataset; 5 + 3 kept.
    assert_eq!(
        gone,
        2 * (33 - 5 + 5 - 3),
        "snapshots pruned over the four days"
    );

    let inv = s.list();
    let mut kept: Vec<String> = [84, 87, 90, 93, 96]
        .iter()
        .map(|&h| format!("zsnap_frequent_{}", stamp(h)))
        .chain(
            [48, 72, 96]
                .iter()
                .map(|&h| format!("zsnap_daily_{}", stamp(h))),
        )
        .collect();
    kept.sort();
    for ds in [&s.src, &child] {
        let mut actual = names(&inv, ds);
        let count = |p: &str| actual.iter().filter(|n| n.starts_with(p)).count();
        assert_eq!(
            (count("zsnap_frequent_"), count("zsnap_daily_")),
            (5, 3),
            "{ds}: frequent and daily snapshots kept: {actual:?}"
        );
        actual.sort();
        let mut expected = kept.clone();
        if ds == &s.src {
            // Not zsnap's: never pruned.
            expected.insert(0, "manual".to_owned());
        }
        assert_eq!(actual, expected, "{ds}: the snapshots the policy keeps");
    }
    s.done();
}

#[test]
fn replicate_incrementally_with_new_data_between_runs() {
    let Some(g) = guest("replicate_incrementally_with_new_data_between_runs") else {
        return;
    };
    let s = Scenario::new(g, "repl", "");
    let child = format!("{}/child", s.src);
    g.ok(&format!("zfs create {}", quote(&child)));
    let target = format!("{}/copy", s.dst);
    let target_child = format!("{target}/child");
    s.config(&replication_config(&s.src, true, &target));

    let mut kinds = Vec::new();
    for (h, file) in [(0, Some("a")), (1, Some("b")), (2, Some("c")), (3, None)] {
        if let Some(f) = file {
            s.write(&s.src, f, 1);
            s.write(&child, f, 1);
        }
        let c = s.checked_ok(&at(h), "run");
        kinds.push(transfers(&c.plan));
    }
    assert_eq!(
        kinds,
        [
            vec!["full"; 2],
            vec!["incremental"; 2],
            vec!["incremental"; 2],
            vec!["incremental"; 2]
        ],
        "transfers of each run (root and child)"
    );

    let inv = s.list();
    let all: Vec<String> = (0..4)
        .map(|h| format!("zsnap_hourly_{}", stamp(h)))
        .collect();
    for (from, to) in [(&s.src, &target), (&child, &target_child)] {
        assert_eq!(
            names(&inv, to),
            all,
            "{to} keeps every snapshot (10 allowed)"
        );
        assert_eq!(
            names(&inv, from),
            all[2..],
            "{from} keeps the newest 2 (the newest is also the common base)"
        );
        assert_same_guids(&inv, from, to);
    }
    // Converged: nothing more to send at the same instant.
    let again = s.zsnap(&at(3), &["--json", "plan", "replicate"]);
    again.assert_ok("plan replicate after the last run");
    assert_eq!(transfers(&again.json()), Vec::<String>::new());

    // The data arrived: mount the copies and compare every file.
    g.ok(&format!(
        "zfs mount {} && zfs mount {}",
        quote(&target),
        quote(&target_child)
    ));
    let src_hashes = tree_hashes(&s, &format!("/{}", s.src));
    assert_eq!(
        src_hashes.lines().count(),
        6,
        "files a, b, c in root and child"
    );
    assert_eq!(src_hashes, tree_hashes(&s, &format!("/{target}")));
    s.done();
}

/// The snapshot an interrupted receive's token names, found with `zfs send -nvt`.
fn token_snapshot(s: &Scenario, token: &str, source: &Inventory, dataset: &str) -> SnapshotRef {
    let out = s.guest.ok(&format!("zfs send -nvt {}", quote(token)));
    let toguid = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("toguid = 0x"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no toguid in zfs send -nvt output:\n{out}"));
    let ds = source
        .dataset(&dataset.parse().expect("a valid name"))
        .expect("the source is listed");
    let snap = ds
        .snapshot_by_guid(Guid(toguid))
        .unwrap_or_else(|| panic!("the token's snapshot (guid {toguid}) is not on {dataset}"));
    SnapshotRef::new(snap.name.clone(), snap.guid)
}

/// Runs `zsnap --json run` at `now` in the guest while a watcher kills the `zfs send`
/// of `dataset` (`DATASET@…`) once it has written 1 MiB (write much more than that to
/// it first, so that a watcher slowed down by a busy guest still comes in time).
/// Returns `rc=N` (zsnap's exit status), then the watcher's log and zsnap's stderr.
/// The watcher only reads /proc: any signal, even SIGSTOP, makes the kernel abort a
/// `zfs send`. zsnap runs zfs by its absolute path ([paths] zfs), so the program is
/// matched by its last component.
fn run_killing_send(s: &Scenario, now: &str, dataset: &str) -> String {
    let script = format!(
        "cd {dir} || exit 99\n\
         (\n\
           n=0\n\
           while [ $n -lt 3000 ]; do\n\
             n=$((n + 1))\n\
             for p in $(ps -o pid,args | awk -v d={d} '($2 == \"zfs\" || $2 ~ \"/zfs$\") && $3 == \"send\" && index($0, d) {{ print $1 }}'); do\n\
               w=0\n\
               [ -r /proc/$p/io ] && while read -r k v; do [ \"$k\" = wchar: ] && w=$v; done < /proc/$p/io\n\
               if [ \"$w\" -ge 1048576 ]; then kill $p && echo \"killed zfs send (pid $p) after $w bytes\"; exit 0; fi\n\
             done\n\
           done\n\
         ) > watcher.log 2>&1 &\n\
         w=$!\n\
         {z} --json run > run.json 2> run.err; echo \"rc=$?\"\n\
         kill $w 2> /dev/null; wait $w\n\
         cat watcher.log run.err",
        dir = quote(&s.dir),
        d = quote(&format!("{dataset}@")),
        z = s.zsnap_words(now),
    );
    s.guest.ok(&script)
}

#[test]
fn killed_transfer_resumes_on_the_next_run() {
    let Some(g) = guest("killed_transfer_resumes_on_the_next_run") else {
        return;
    };
    let s = Scenario::new(g, "resume", "");
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&s.src, false, &target));
    s.write(&s.src, "small", 1);
    s.checked_ok(&at(0), "run");

    // Kill `zfs send` of this scenario's source once it has written 1 MiB of the 24.
    s.write(&s.src, "big", 24);
    let out = run_killing_send(&s, &at(1), &s.src);
    assert!(
        out.contains("killed zfs send"),
        "the transfer ended before the watcher could kill it:\n{out}"
    );
    assert!(
        out.starts_with("rc=3\n"),
        "a run whose transfer was killed exits 3 (partial: the snapshot was taken):\n{out}"
    );
    let token = s.prop(&target, "receive_resume_token");
    assert!(
        token.starts_with("1-"),
        "the target keeps a resume token: {token:?}"
    );

    // The next run resumes, and its plan says which snapshot the resumed receive brings
    // (zsnap asks the source about the token): the one `zfs send -nvt` names.
    let before = s.list();
    let resumed = token_snapshot(&s, &token, &before, &s.src);
    let c = s.checked_ok(&at(1), "run");
    assert_eq!(transfers(&c.plan), ["resume"]);
    let planned: Vec<Option<SnapshotRef>> = phase_plans(&c.plan)
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter_map(|st| match st {
            Step::Transfer(t) => match &t.send {
                SendSpec::Resume { snapshot, .. } => Some(snapshot.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(planned, [Some(resumed)], "the snapshot the resume brings");
    assert_eq!(s.prop(&target, "receive_resume_token"), "-");

    // And the run after that carries on incrementally from the resumed snapshot.
    let c = s.checked_ok(&at(2), "run");
    assert_eq!(transfers(&c.plan), ["incremental"]);
    let inv = s.list();
    assert_eq!(
        names(&inv, &target),
        (0..3)
            .map(|h| format!("zsnap_hourly_{}", stamp(h)))
            .collect::<Vec<_>>()
    );
    assert_same_guids(&inv, &s.src, &target);
    g.ok(&format!("zfs mount {}", quote(&target)));
    assert_eq!(
        tree_hashes(&s, &format!("/{}", s.src)),
        tree_hashes(&s, &format!("/{target}"))
    );
    s.done();
}

#[test]
fn encrypted_source_is_replicated_raw() {
    let Some(g) = guest("encrypted_source_is_replicated_raw") else {
        return;
    };
    let s = Scenario::new(g, "enc", "");
    let key = format!("/root/k-{}", s.id);
    let secret = format!("{}/secret", s.src);
    g.ok(&format!(
        "od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > {k} && \
         zfs create -o encryption=aes-256-gcm -o keyformat=hex -o keylocation=file://{k} {d}",
        k = quote(&key),
        d = quote(&secret)
    ));
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&secret, false, &target));
    s.write(&secret, "a", 1);
    let c = s.checked_ok(&at(0), "run");
    assert_eq!(transfers(&c.plan), ["full raw"]);
    s.write(&secret, "b", 1);
    let c = s.checked_ok(&at(1), "run");
    assert_eq!(transfers(&c.plan), ["incremental raw"]);

    let inv = s.list();
    assert_eq!(names(&inv, &target).len(), 2);
    assert_same_guids(&inv, &secret, &target);
    assert_eq!(s.prop(&target, "encryption"), "aes-256-gcm");
    assert_eq!(s.prop(&target, "keystatus"), "unavailable");
    assert_eq!(s.prop(&target, "encryptionroot"), target);
    s.done();
}

#[test]
fn diverged_target_is_refused_and_nothing_destroyed() {
    let Some(g) = guest("diverged_target_is_refused_and_nothing_destroyed") else {
        return;
    };
    let s = Scenario::new(g, "diverged", "");
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&s.src, false, &target));
    s.checked_ok(&at(0), "run");
    g.ok(&format!(
        "zfs snapshot {}",
        quote(&format!("{target}@rogue"))
    ));
    s.checked_ok(&at(1), "snapshot");

    // Refused: the plan has an error and no step, so the prediction is "unchanged",
    // and the listing after must be exactly the one before (every guid known).
    let c = s.checked_expect(&at(1), "replicate", 1, &|_| {});
    let error = c.run.json()["phases"][0]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in the refused phase: {}", c.run.stdout))
        .to_owned();
    assert!(
        error.contains("rogue") && error.contains(&format!("zsnap_hourly_{}", stamp(0))),
        "the refusal names the target's extra snapshot and the common base: {error}"
    );
    assert_eq!(
        names(&c.after, &target),
        [format!("zsnap_hourly_{}", stamp(0)), "rogue".to_owned()]
    );

    // The human output says the same.
    let human = s.zsnap(&at(1), &["replicate"]);
    assert_eq!(human.code, Some(1), "{human:?}");
    assert!(
        format!("{}{}", human.stdout, human.stderr).contains("rogue"),
        "{human:?}"
    );
    s.done();
}

/// A target that cannot be listed (its host unreachable, or its pool gone) fails only
/// its own replication: the snapshot is taken, the source keeps what might be the
/// target's base, the run exits 3 and names the target; with the target back, the next
/// run converges.
#[test]
fn an_unreachable_target_stops_only_its_own_phases() {
    let Some(g) = guest("an_unreachable_target_stops_only_its_own_phases") else {
        return;
    };
    let s = Scenario::on_host(g, "unreachable");
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&s.src, false, &target));
    s.checked_ok(&at(0), "run");
    s.checked_ok(&at(1), "run");
    assert_eq!(names(&s.list(), &s.src).len(), 2);

    for (hour, to) in [
        // Nothing listens on port 1: ssh fails to connect.
        (2, format!("ssh://root@127.0.0.1:1/{target}")),
        // A pool that does not exist (exported, or never imported).
        (3, "zsnap-e2e-no-such-pool/copy".to_owned()),
    ] {
        s.config(&replication_config(&s.src, false, &to));
        let c = s.checked_expect(&at(hour), "run", 3, &|_| {});
        let out = c.run.json();
        let phases = out["phases"].as_array().expect("phases");
        let repl = phases
            .iter()
            .find(|p| p["phase"]["kind"] == "replicate")
            .expect("a replicate phase");
        let error = repl["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("copy"),
            "the error names the target's dataset: {error}"
        );
        let snap = &phases[0];
        assert_eq!(snap["results"][0]["outcome"], "done", "{out:#}");
        let prune = phases
            .iter()
            .find(|p| p["phase"]["kind"] == "prune")
            .expect("a prune phase");
        assert!(
            prune["plan"]["notes"]
                .to_string()
                .contains("target copy could not be listed"),
            "{prune:#}"
        );
        assert_eq!(destroyed(&out), 0, "nothing destroyed: {out:#}");
        assert!(
            names(&c.after, &s.src).contains(&format!("zsnap_hourly_{}", stamp(hour))),
            "the snapshot was taken"
        );
    }
    // Kept: the base the target had (hour 1) and everything after it.
    assert_eq!(names(&s.list(), &s.src).len(), 4);

    s.config(&replication_config(&s.src, false, &target));
    let c = s.checked_ok(&at(4), "run");
    assert_eq!(transfers(&c.plan), ["incremental"]);
    assert_eq!(names(&c.after, &s.src).len(), 2, "pruned again once listed");
    assert_same_guids(&c.after, &s.src, &target);
    s.done();
}

/// Issue 12, item 1 on real OpenZFS: a snapshot taken on demand (`zsnap snapshot --label
/// pre-upgrade`, a label the policy does not schedule) survives the timer's runs that
/// prune everything around it. (Expiries count from a snapshot's `creation`, which real
/// ZFS sets from the real clock, not from `--now`: they are tested on the fake.)
#[test]
fn an_on_demand_snapshot_survives_the_timer_runs() {
    let Some(g) = guest("an_on_demand_snapshot_survives_the_timer_runs") else {
        return;
    };
    let s = Scenario::new(g, "ondemand", "");
    s.config(&format!(
        r#"[policies.p]
snapshot = {{ hourly = "1h" }}
keep_counts = {{ hourly = 2 }}
keep_last = 2

[[datasets]]
root = "{}"
policy = "p"
"#,
        s.src
    ));
    s.zsnap(&at(0), &["run"]).assert_ok("run at 0");
    s.zsnap(&at(1), &["snapshot", "--label", "pre-upgrade"])
        .assert_ok("snapshot --label pre-upgrade");
    let manual = format!("zsnap_pre-upgrade_{}", stamp(1));
    for h in 2..=6 {
        s.zsnap(&at(h), &["run"]).assert_ok("run");
    }
    let inv = s.list();
    let left = names(&inv, &s.src);
    assert!(left.contains(&manual), "taken by hand, kept: {left:?}");
    assert_eq!(
        left.iter()
            .filter(|n| n.starts_with("zsnap_hourly_"))
            .count(),
        2,
        "the hourlies around it were pruned: {left:?}"
    );
    let plan = s.zsnap(&at(6), &["--json", "plan", "prune"]);
    plan.assert_ok("plan prune");
    assert!(
        plan.stdout.contains("taken on demand"),
        "the plan says why it is kept: {}",
        plan.stdout
    );
    s.done();
}

#[test]
fn held_snapshot_is_left_alone_by_prune() {
    let Some(g) = guest("held_snapshot_is_left_alone_by_prune") else {
        return;
    };
    let s = Scenario::new(g, "held", "");
    s.config(&format!(
        r#"[policies.p]
snapshot = {{ hourly = "1h" }}
keep_counts = {{ hourly = 2 }}

[[datasets]]
root = "{}"
policy = "p"
"#,
        s.src
    ));
    s.checked_ok(&at(0), "run");
    let first = format!("zsnap_hourly_{}", stamp(0));
    g.ok(&format!(
        "zfs hold keep {}",
        quote(&format!("{}@{first}", s.src))
    ));
    for h in 1..=4 {
        s.checked_ok(&at(h), "run");
    }
    let inv = s.list();
    assert_eq!(
        names(&inv, &s.src),
        [
            first.clone(),
            format!("zsnap_hourly_{}", stamp(3)),
            format!("zsnap_hourly_{}", stamp(4))
        ],
        "past its retention but held"
    );

    let plan = s.zsnap(&at(4), &["--json", "plan", "prune"]);
    plan.assert_ok("plan prune");
    let json = plan.json();
    let decisions = json["phases"][0]["plan"]["decisions"]
        .as_array()
        .unwrap_or_else(|| panic!("no decisions: {json}"));
    let held = decisions
        .iter()
        .find(|d| d["snapshot"].as_str() == Some(&format!("{}@{first}", s.src)))
        .unwrap_or_else(|| panic!("no decision on the held snapshot: {json}"));
    assert_eq!(held["verdict"]["verdict"], "protect", "{held}");
    assert!(
        held["verdict"]["protections"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["kind"] == "held")),
        "{held}"
    );
    let human = s.zsnap(&at(4), &["plan", "prune"]);
    human.assert_ok("plan prune");
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.contains(&first) && l.contains("held")),
        "the human plan says the snapshot is held:\n{}",
        human.stdout
    );
    s.done();
}

#[test]
fn replicate_from_this_machine_over_ssh() {
    let Some(g) = guest("replicate_from_this_machine_over_ssh") else {
        return;
    };
    let s = Scenario::on_host(g, "host");
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&s.src, false, &target));
    s.write(&s.src, "a", 1);
    let c = s.checked_ok(&at(0), "run");
    assert_eq!(transfers(&c.plan), ["full"]);
    s.write(&s.src, "b", 1);
    let c = s.checked_ok(&at(1), "run");
    assert_eq!(transfers(&c.plan), ["incremental"]);
    let inv = s.list();
    assert_eq!(names(&inv, &target).len(), 2);
    assert_same_guids(&inv, &s.src, &target);
    s.done();
}

#[test]
fn status_and_check_report_real_snapshots_and_lag() {
    let Some(g) = guest("status_and_check_report_real_snapshots_and_lag") else {
        return;
    };
    let s = Scenario::new(g, "status", "");
    let target = format!("{}/copy", s.dst);
    // Freshness is judged on ZFS's own `creation` too, which is the guest's real clock:
    // this scenario runs at the real time, then asks `check` about later instants.
    let now = Utc::now();
    let rfc = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    s.config(&format!(
        "{}\n[check]\nfreshness = {{ hourly = {{ warn = \"2h\", crit = \"4h\" }} }}\nreplication_lag = {{ warn = \"2h\", crit = \"1d\" }}\n",
        replication_config(&s.src, false, &target)
    ));
    s.checked_ok(&rfc(now), "run");
    let newest = s
        .list()
        .dataset(&s.src.parse().expect("a valid name"))
        .and_then(|d| d.newest().map(|n| n.name.to_string()))
        .expect("run took a snapshot");

    let status = s.zsnap(&rfc(now), &["--json", "status"]);
    status.assert_ok("status");
    let json = status.json();
    let ds = json["datasets"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["dataset"] == s.src.as_str()))
        .unwrap_or_else(|| panic!("status lists the source: {json}"));
    let hourly = ds["labels"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["label"] == "hourly"))
        .unwrap_or_else(|| panic!("status lists the hourly label: {ds}"));
    assert_eq!(hourly["newest"], newest.as_str(), "{hourly}");
    assert_eq!(hourly["count"], 1, "{hourly}");
    let t = json["targets"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["dataset"] == target.as_str()))
        .unwrap_or_else(|| panic!("status lists the target: {json}"));
    assert_eq!(t["newest_common"], newest.as_str(), "{t}");
    assert_eq!(t["lag_seconds"], 0, "{t}");
    assert_eq!(t["resume_pending"], false, "{t}");

    // Fresh now; a warning three hours on; critical five hours on (nothing ran since).
    for (later, code, word) in [(0, 0, "OK"), (3, 1, "WARNING"), (5, 2, "CRITICAL")] {
        let check = s.zsnap(&rfc(now + TimeDelta::hours(later)), &["check"]);
        assert_eq!(check.code, Some(code), "check {later}h later: {check:?}");
        assert!(
            check.stdout.contains(word) && check.stdout.lines().count() == 1,
            "one line for the monitor, saying {word}: {check:?}"
        );
    }
    s.done();
}

#[test]
fn leaked_cursor_hold_is_released_by_the_next_run() {
    let Some(g) = guest("leaked_cursor_hold_is_released_by_the_next_run") else {
        return;
    };
    let s = Scenario::new(g, "leak", "");
    let target = format!("{}/copy", s.dst);
    s.config(&replication_config(&s.src, false, &target));
    s.checked_ok(&at(0), "run");
    s.checked_ok(&at(1), "run");
    // A run whose `zfs release` of the old cursor failed leaves this behind.
    let old = format!("{}@zsnap_hourly_{}", s.src, stamp(0));
    let _ = g.sh(&format!("zfs hold zsnap:copy {}", quote(&old)));
    let hold_tags = |snap: &str| -> Vec<String> {
        g.ok(&format!("zfs holds -H {} 2>/dev/null || true", quote(snap)))
            .lines()
            .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
            .collect()
    };
    s.checked_ok(&at(2), "run");
    let inv = s.list();
    let held: Vec<String> = names(&inv, &s.src)
        .into_iter()
        .filter(|n| hold_tags(&format!("{}@{n}", s.src)).contains(&"zsnap:copy".to_owned()))
        .collect();
    assert_eq!(
        held,
        [format!("zsnap_hourly_{}", stamp(2))],
        "only the current cursor keeps the target's hold"
    );
    s.done();
}

/// Issue 13 on real OpenZFS: a replication that fails midway (the `zfs send` of the
/// last of three datasets killed) leaves every base the source must keep protected —
/// the old cursor of the dataset that failed, and, for the datasets that arrived, both
/// the old cursor and the newest snapshot they now share with the target (the runner
/// holds it after the failed round) — so pruning by the rules (keep 1) destroys none of
/// them. The next run resumes, moves every cursor with one `zfs hold`, releases every
/// hold it no longer needs with one `zfs release`, and prunes what they protected.
#[test]
fn a_failed_transfer_protects_the_bases_and_the_next_run_releases_them() {
    let Some(g) = guest("a_failed_transfer_protects_the_bases_and_the_next_run_releases_them")
    else {
        return;
    };
    let s = Scenario::new(g, "protect", "");
    let (a, b) = (format!("{}/a", s.src), format!("{}/b", s.src));
    for d in [&a, &b] {
        g.ok(&format!("zfs create {}", quote(d)));
    }
    let target = format!("{}/copy", s.dst);
    let config = replication_config(&s.src, true, &target).replace(
        "keep_counts = { hourly = 2 }",
        "keep_counts = { hourly = 1 }",
    );
    assert!(config.contains("hourly = 1 }"), "{config}");
    s.config(&config);
    s.write(&a, "small", 1);
    s.checked_ok(&at(0), "run");

    let hold_tags = |snap: &str| -> Vec<String> {
        g.ok(&format!("zfs holds -H {} 2>/dev/null || true", quote(snap)))
            .lines()
            .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
            .collect()
    };
    let held_by_copy = |inv: &Inventory, dataset: &str| -> Vec<String> {
        names(inv, dataset)
            .into_iter()
            .filter(|n| hold_tags(&format!("{dataset}@{n}")).contains(&"zsnap:copy".to_owned()))
            .collect()
    };
    let h = |hour: i64| format!("zsnap_hourly_{}", stamp(hour));

    // Run 1: the root and `a` arrive, `b`'s send is killed (targets go in name order).
    s.write(&b, "big", 24);
    let out = run_killing_send(&s, &at(1), &b);
    assert!(
        out.contains("killed zfs send"),
        "the transfer ended before the watcher could kill it:\n{out}"
    );
    assert!(out.starts_with("rc=3\n"), "a partial run exits 3:\n{out}");
    let inv = s.list();
    for d in [&s.src, &a] {
        assert_eq!(
            names(&inv, d),
            [h(0), h(1)],
            "{d}: keep 1, but @{} is still held as the cursor",
            h(0)
        );
        assert_eq!(
            held_by_copy(&inv, d),
            [h(0), h(1)],
            "{d}: the old cursor stays (the run stopped before moving it) and what \
             arrived is protected"
        );
    }
    assert_eq!(
        names(&inv, &b),
        [h(0), h(1)],
        "b: its base @{} survives the prune",
        h(0)
    );
    assert_eq!(held_by_copy(&inv, &b), [h(0)], "b: the base stays held");
    assert!(
        s.prop(&format!("{target}/b"), "receive_resume_token")
            .starts_with("1-"),
        "the killed receive is resumable"
    );

    // Run 2: resumes `b`, sends the new snapshots, moves every cursor to the newest
    // and releases the rest, then prunes to the newest on the source.
    let c = s.checked_ok(&at(2), "run");
    assert_eq!(
        transfers(&c.plan),
        ["incremental", "incremental", "resume", "incremental"],
        "root and a from @{}, b resumed then sent on",
        h(1)
    );
    let holds = phase_plans(&c.run.json())
        .iter()
        .flat_map(|p| p.steps.iter())
        .map(|st| match st {
            Step::Hold(_) => "hold",
            Step::Release(_) => "release",
            _ => "",
        })
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        holds, "hold hold hold release release release release release",
        "one hold per dataset, the five old holds released (after every transfer)"
    );
    let inv = s.list();
    for d in [&s.src, &a, &b] {
        assert_eq!(names(&inv, d), [h(2)], "{d}: pruned to the newest");
        assert_eq!(
            held_by_copy(&inv, d),
            [h(2)],
            "{d}: only the new cursor is held"
        );
    }
    for d in ["", "/a", "/b"] {
        assert_eq!(names(&inv, &format!("{target}{d}")), [h(0), h(1), h(2)]);
    }
    assert_same_guids(&inv, &b, &format!("{target}/b"));
    s.done();
}
