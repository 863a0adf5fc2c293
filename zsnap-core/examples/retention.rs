//! The engine alone, as a library: parse a `zfs list` listing, plan snapshots and
//! retention for a config, print the plan with the reason for every step and snapshot,
//! and check it by simulation. No pool, no clock: the listing is generated and `now` is
//! an argument.
//!
//! Run: `cargo run --release -p zsnap-core --example retention`

use std::fmt::Write as _;

use chrono::{Duration, TimeZone, Utc};
use zsnap_core::config::Host;
use zsnap_core::{parse_list, plan_prune, plan_snapshots, Config, Location, PruneRequest};

const CONFIG: &str = r#"
[policies.standard]
timezone = "Europe/Berlin"
snapshot = { hourly = "hourly" }
# Calendar buckets in Europe/Berlin: the newest snapshot of each of the last 24 hours,
# 7 days and 4 ISO weeks.
keep = { hourly = 24, daily = 7, weekly = 4 }
# sanoid's snapshots of tank/db are adopted: pruned by the same rules.
adopt = ["sanoid"]

[[datasets]]
root = "tank"
recursive = true
policy = "standard"
"#;

/// Three weeks of hourly snapshots of three datasets, as `zfs list -H -p` prints them,
/// with a held snapshot, one with a clone, one zsnap did not take, and sanoid ones.
fn listing() -> String {
    let mut out = String::new();
    let mut txg = 100u64;
    let mut guid = 1_000_000u64;
    let start = Utc.with_ymd_and_hms(2026, 11, 3, 9, 0, 0).unwrap();
    for (ds, dguid) in [
        ("tank", 1),
        ("tank/home", 2),
        ("tank/db", 3),
        ("tank/home-clone", 4),
    ] {
        let origin = if ds == "tank/home-clone" {
            "tank/home@zsnap_hourly_20261110T120000Z"
        } else {
            "-"
        };
        writeln!(
            out,
            "{ds}\tfilesystem\t{dguid}\t1\t{}\t-\t-\t{origin}\toff\t-\t-\t/{ds}\t1000\t-\t-",
            start.timestamp()
        )
        .unwrap();
    }
    for h in 0..=(21 * 24) {
        let t = start + Duration::hours(h);
        txg += 10;
        for ds in ["tank", "tank/home", "tank/db"] {
            guid += 1;
            let (name, managed) = if ds == "tank/db" {
                (
                    format!(
                        "autosnap_{}_hourly",
                        t.with_timezone(&chrono_tz::Europe::Berlin)
                            .format("%Y-%m-%d_%H:%M:%S")
                    ),
                    "-",
                )
            } else {
                (
                    format!("zsnap_hourly_{}", t.format("%Y%m%dT%H%M%SZ")),
                    "yes",
                )
            };
            let holds = if ds == "tank/home" && h == 30 { 1 } else { 0 };
            let clones = if ds == "tank/home" && name == "zsnap_hourly_20261110T120000Z" {
                "tank/home-clone"
            } else {
                "-"
            };
            writeln!(out, "{ds}@{name}\tsnapshot\t{guid}\t{txg}\t{}\t{holds}\t{clones}\t-\toff\t-\t-\t-\t0\t{managed}\t-", t.timestamp()).unwrap();
        }
        if h == 100 {
            guid += 1;
            writeln!(
                out,
                "tank@before-upgrade\tsnapshot\t{guid}\t{txg}\t{}\t0\t-\t-\toff\t-\t-\t-\t0\t-\t-",
                t.timestamp()
            )
            .unwrap();
        }
    }
    out
}

#[expect(clippy::print_stdout, reason = "an example prints its result")]
fn main() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 30, 0).unwrap();
    let config = Config::from_toml(CONFIG, "example.toml").expect("the example config is valid");
    let policies = config.core_policies();
    let selections = config.selections(&Host::Local);
    let inventory = parse_list(&listing()).expect("the generated listing is valid");
    let here = Location::local();

    // What is due now (the 09:00 hourly was taken; 09:30 is still in that hour: nothing),
    // then retention. Both are plain values: print them, serialize them, simulate them.
    let mut plan = plan_snapshots(&inventory, &selections, &policies, &here, now)
        .expect("every selected dataset is listed");
    plan.extend(plan_prune(
        &PruneRequest::new(here, &inventory, &selections, &policies),
        now,
    ));
    print!("{}", plan.render());

    let after = plan
        .simulate(&inventory)
        .expect("the plan is one ZFS accepts");
    println!(
        "\n{} snapshots before, {} after; the plan simulates cleanly.",
        inventory.snapshot_count(),
        after.snapshot_count()
    );
}
