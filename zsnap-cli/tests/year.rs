//! A year of hourly `zsnap run`s on the fake backend ends with exactly what the policy
//! says.
//!
//! 8,760 process spawns, each loading and saving a growing JSON state, would make this
//! test slow, so the year runs through `zsnap_exec::rehearsal::rehearse` — the very loop
//! (`Engine::run` of the `run` job on a `FakeZfs`) that `zsnap run --backend fake:…` and
//! `zsnap simulate` execute — and `cli.rs` spot-checks that the binary, run hour by hour
//! with its state persisted, ends in the same state as this loop.

use chrono::{TimeZone, Utc};
use zsnap_core::config::Config;
use zsnap_core::duration::Span;
use zsnap_exec::rehearsal;

const CONFIG: &str = r#"
[policies.counts]
snapshot = { frequently = "15m", hourly = "hourly", daily = "daily", weekly = "weekly", monthly = "monthly", yearly = "yearly" }
keep_counts = { frequently = 4, hourly = 24, daily = 7, weekly = 4, monthly = 12, yearly = 3 }

[policies.calendar]
timezone = "Europe/Berlin"
snapshot = { hourly = "hourly" }
keep = { hourly = 24, daily = 7, weekly = 4, monthly = 12, yearly = 1 }

[[datasets]]
root = "tank/home"
recursive = true
policy = "counts"

[[datasets]]
root = "tank/db"
policy = "calendar"

[targets.backup]
source = "tank/home"
to = "backup/home"
policy = "counts"
"#;

fn labels(sim: &rehearsal::Rehearsal, dataset: &str) -> Vec<(String, usize)> {
    let d = sim
        .datasets
        .iter()
        .find(|d| d.dataset == dataset)
        .unwrap_or_else(|| panic!("{dataset} is not in the result"));
    d.labels
        .iter()
        .map(|l| (l.label.clone(), l.count))
        .collect()
}

#[test]
fn a_year_of_hourly_runs_ends_with_exactly_what_the_policy_says() {
    let config = Config::from_toml(CONFIG, "year.toml").unwrap();
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let sim = rehearsal::rehearse(&config, start, 365, Span::from_secs(3600)).unwrap();
    assert_eq!(sim.runs, 365 * 24);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);

    // Runs are hourly, so the 15-minute label is taken once an hour.
    let expected: Vec<(String, usize)> = [
        ("daily", 7),
        ("frequently", 4),
        ("hourly", 24),
        ("monthly", 12),
        ("weekly", 4),
        ("yearly", 1),
    ]
    .map(|(l, n)| (l.to_owned(), n))
    .to_vec();
    assert_eq!(labels(&sim, "tank/home"), expected);
    // The target keeps what the same policy keeps of what it received.
    assert_eq!(labels(&sim, "backup/home"), expected);

    // Calendar buckets in Berlin, one hourly snapshot per run: the buckets overlap
    // (the newest snapshot is the newest of its hour, day, week, month and year), so
    // count reasons per rule instead of snapshots: each rule fills exactly its N buckets.
    let db = &sim
        .datasets
        .iter()
        .find(|d| d.dataset == "tank/db")
        .unwrap();
    let names: Vec<&str> = db.snapshots.iter().map(|s| s.name.as_str()).collect();
    let mut per_rule = std::collections::BTreeMap::<String, usize>::new();
    for s in &db.snapshots {
        for r in &s.kept_by {
            let rule = r.split(" [").next().unwrap().to_owned();
            if rule.contains('=') {
                *per_rule
                    .entry(rule.split(" =").next().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
    }
    let per_rule: Vec<(String, usize)> = per_rule.into_iter().collect();
    assert_eq!(
        per_rule,
        [
            ("daily", 7),
            ("hourly", 24),
            ("monthly", 12),
            ("weekly", 4),
            ("yearly", 1)
        ]
        .map(|(l, n)| (l.to_owned(), n))
        .to_vec()
    );
    // And nothing is kept without a reason.
    assert!(
        db.snapshots.iter().all(|s| !s.kept_by.is_empty()),
        "{names:?}"
    );
}
