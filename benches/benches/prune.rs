//! Prune planning (`zsnap_core::prune::plan_prune`) at the scale of the architecture's
//! target: 1,000,000 snapshots across 10,000 datasets in under one second.
//!
//! Run with `cargo bench --bench prune` from `benches/`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use divan::counter::ItemsCount;
use divan::{AllocProfiler, Bencher};
use zsnap_core::policy::{DatasetSelection, Policy};
use zsnap_core::prune::{plan_prune, PruneRequest};
use zsnap_core::retention::RetentionPolicy;
use zsnap_core::{parse_list, Inventory, Location, Step};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// The `zfs_list` input: 10,000 datasets × 100 hourly snapshots, about 1 % held.
fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| {
        let (text, _) = zsnap_benches::list_text_with_parents(10_000, 100);
        parse_list(&text).expect("generated listings are valid")
    })
}

/// Just after the newest snapshot (they are hourly from 2026-11-23T15:00:00Z).
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_446_000, 0).expect("in range") + Duration::hours(100)
}

fn policies(rules: &[&str]) -> BTreeMap<String, Policy> {
    let rules = rules
        .iter()
        .map(|r| r.parse().expect("valid rule"))
        .collect();
    let policy = Policy::new(
        Default::default(),
        RetentionPolicy::new(rules),
        chrono_tz::Europe::Berlin,
    );
    BTreeMap::from([("standard".to_owned(), policy)])
}

fn bench_policy(bencher: Bencher, rules: &[&str]) {
    let inv = inventory();
    let selections =
        [DatasetSelection::new("tank".parse().expect("valid"), "standard").with_recursive(true)];
    let policies = policies(rules);
    let req = PruneRequest::new(Location::local(), inv, &selections, &policies);
    // What the plan destroys, checked once outside the timing so the benchmark cannot
    // quietly measure an empty plan.
    let destroyed: usize = plan_prune(&req, now())
        .steps
        .iter()
        .map(|s| match s {
            Step::Destroy(d) => d.snapshots.len(),
            _ => 0,
        })
        .sum();
    assert!(
        destroyed > 100_000,
        "the policy destroys {destroyed} snapshots"
    );
    bencher
        .counter(ItemsCount::new(inv.snapshot_count()))
        .bench(|| plan_prune(divan::black_box(&req), now()));
}

/// Calendar buckets in a time zone (`hourly = 24, daily = 7, weekly = 4`): keeps about
/// 28 of each dataset's 100 snapshots and destroys the rest in one destroy per dataset.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn plan_prune_1m_calendar(bencher: Bencher) {
    bench_policy(bencher, &["calendar hourly = 24, daily = 7, weekly = 4"]);
}

/// A union of rules: `last 10`, per-label counts and calendar buckets.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn plan_prune_1m_union(bencher: Bencher) {
    bench_policy(
        bencher,
        &[
            "last 10",
            "labels hourly = 36",
            "calendar daily = 7, monthly = 6",
        ],
    );
}
