//! Replication planning (`zsnap_core::replicate::plan_replication`).
//!
//! Run with `cargo bench --bench replicate` from `benches/`.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use divan::counter::ItemsCount;
use divan::{AllocProfiler, Bencher};
use zsnap_core::policy::Policy;
use zsnap_core::replicate::{plan_replication, DatasetMapping, ReplicationRequest};
use zsnap_core::retention::RetentionPolicy;
use zsnap_core::{
    parse_list, Dataset, DatasetKind, DatasetName, Guid, Inventory, Location, Snapshot,
};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// The dataset of zrepl issue #480, where planning took about 30 minutes.
const SNAPSHOTS_65K: u64 = 65_000;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap()
}

fn ds(s: &str) -> DatasetName {
    s.parse().expect("valid dataset name")
}

/// `name` with zsnap snapshots `from..to` taken every 15 minutes (hourly ones on the
/// hour, frequent ones between), managed.
fn history(name: &str, from: u64, to: u64) -> Dataset {
    let mut d = Dataset::new(ds(name), DatasetKind::Filesystem, Guid(7));
    d.snapshots = (from..to)
        .map(|i| {
            let at = start() + Duration::minutes(15 * i as i64);
            let label = if i % 4 == 0 { "hourly" } else { "frequent" };
            let short = format!("zsnap_{label}_{}", at.format("%Y%m%dT%H%M%SZ"));
            let mut s = Snapshot::new(short.parse().expect("valid"), Guid(i + 1), i + 1, at);
            s.managed = Some("yes".to_owned());
            s
        })
        .collect();
    d
}

fn inventory(datasets: Vec<Dataset>) -> Inventory {
    let mut inv = Inventory::new();
    for d in datasets {
        inv.insert(d);
    }
    inv
}

/// 65,000 snapshots on the source, the older half of them on the target.
fn pair_65k() -> &'static (Inventory, Inventory) {
    static PAIR: OnceLock<(Inventory, Inventory)> = OnceLock::new();
    PAIR.get_or_init(|| {
        (
            inventory(vec![history("tank/data", 0, SNAPSHOTS_65K)]),
            inventory(vec![
                Dataset::new(ds("backup"), DatasetKind::Filesystem, Guid(8)),
                history("backup/data", 0, SNAPSHOTS_65K / 2),
            ]),
        )
    })
}

fn request<'a>(src: &'a Inventory, dst: &'a Inventory) -> ReplicationRequest<'a> {
    ReplicationRequest::new(
        Location::local(),
        src,
        Location("backup-host".to_owned()),
        "offsite",
        dst,
        vec![DatasetMapping::new(ds("tank/data"), ds("backup/data"))],
    )
}

/// Plan one dataset of 65,000 snapshots whose target has the older 32,500: one `-I`
/// of 32,500 snapshots and a hold (target: < 50 ms).
#[divan::bench(sample_count = 20)]
fn plan_replication_65k(bencher: Bencher) {
    let (src, dst) = pair_65k();
    let req = request(src, dst);
    let now = start() + Duration::days(1000);
    bencher
        .counter(ItemsCount::new(SNAPSHOTS_65K))
        .bench(|| plan_replication(divan::black_box(&req), now).expect("a plan"));
}

/// The same with a target policy (`labels hourly = 48`, `calendar daily = 30,
/// monthly = 12`) evaluated on the target as it will be: a `-i` chain over what it
/// keeps.
#[divan::bench(sample_count = 20)]
fn plan_replication_65k_target_policy(bencher: Bencher) {
    let (src, dst) = pair_65k();
    let policy = Policy::new(
        Default::default(),
        RetentionPolicy::new(vec![
            "labels hourly = 48".parse().expect("valid rule"),
            "calendar daily = 30, monthly = 12"
                .parse()
                .expect("valid rule"),
        ]),
        chrono_tz::UTC,
    );
    let mut req = request(src, dst);
    req.target_policy = Some(&policy);
    let now = start() + Duration::minutes(15 * SNAPSHOTS_65K as i64);
    bencher
        .counter(ItemsCount::new(SNAPSHOTS_65K))
        .bench(|| plan_replication(divan::black_box(&req), now).expect("a plan"));
}

/// 10,000 datasets × 100 snapshots (the `zfs_list` input), each mapped to
/// `backup/<name>`, whose target has all but the newest snapshot: 1,000,000 snapshots
/// compared by guid, 10,000 transfers and cursor moves (target: < 1 s).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn plan_replication_1m(bencher: Bencher) {
    static PAIR: OnceLock<(Inventory, Inventory, Vec<DatasetMapping>)> = OnceLock::new();
    let (src, dst, mappings) = PAIR.get_or_init(|| {
        let (text, _) = zsnap_benches::list_text(10_000, 100);
        let src = parse_list(&text).expect("generated listings are valid");
        let mut dst = Inventory::new();
        let mut mappings = Vec::new();
        for d in src.datasets.values() {
            let target = ds(&format!("backup/{}", d.name));
            let mut copy = d.clone();
            copy.name = target.clone();
            copy.snapshots.pop();
            dst.insert(copy);
            mappings.push(DatasetMapping::new(d.name.clone(), target));
        }
        (src, dst, mappings)
    });
    let req = ReplicationRequest::new(
        Location::local(),
        src,
        Location("backup-host".to_owned()),
        "offsite",
        dst,
        mappings.clone(),
    );
    let now = start() + Duration::days(3000);
    bencher
        .counter(ItemsCount::new(src.snapshot_count()))
        .bench(|| plan_replication(divan::black_box(&req), now).expect("a plan"));
}
