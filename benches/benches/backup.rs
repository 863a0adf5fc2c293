//! Host-side throughput of backups without ZFS: `run_backup` of one 64 MiB full stream
//! from the fake backend into a directory store (a temporary directory) and into the
//! in-memory object store, uncompressed and with zstd, and `verify_entry` re-reading
//! a stored stream. Every byte goes through SHA-256 and the store's upload; the rates
//! count the bytes `zfs send` produced (`sent`).
//!
//! The fake generates its stream in memory on every send (a pseudo-random pattern and
//! a checksum per byte), so `fake_send_only` measures that part alone: the difference
//! to it is what zsnap adds. The fake's payload compresses somewhat (one byte in eight
//! repeats with a short period), unlike real incompressible data.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use divan::counter::BytesCount;
use divan::Bencher;
use zsnap_core::backup::{
    plan_backup, BackupEntry, BackupMode, BackupPlan, BackupRequest, BackupStep, Catalog,
    Compression, StoreUrl,
};
use zsnap_core::{DatasetName, ShortName, Step};
use zsnap_exec::backup::{run_backup, verify_entry, BackupOptions};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::store::{read_catalog, BackupStore, DirStore, ObjectStoreBackup};
use zsnap_exec::{SendRequest, ZfsBackend};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

/// Payload bytes of the full stream.
const STREAM: u64 = 64 << 20;

fn home() -> DatasetName {
    "tank/home".parse().expect("valid dataset name")
}

/// A fake with `tank/home@b1` whose full stream carries [`STREAM`] payload bytes.
fn fake() -> FakeZfs {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .expect("valid time");
    let mut z = FakeZfs::new(7, now);
    z.set_stream_bytes(STREAM);
    z.add_pool("tank").expect("pool");
    z.create(&home(), false).expect("created");
    z.write(&home()).expect("written");
    let snap: ShortName = "b1".parse().expect("valid short name");
    z.snapshot(&[home().snapshot(&snap)], &BTreeMap::new())
        .expect("snapshot taken");
    z
}

/// The planned full backup of `tank/home@b1` to `url`.
fn step(z: &FakeZfs, url: &StoreUrl, compression: Compression) -> BackupStep {
    let source = z
        .list(&[home()])
        .expect("listed")
        .dataset(&home())
        .expect("tank/home exists")
        .clone();
    let request = BackupRequest::new(home(), url.clone(), BackupMode::Full)
        .with_snapshot(Some("b1".parse().expect("valid short name")))
        .with_compression(compression);
    let plan = plan_backup(&request, &source, &Catalog::default(), z.now()).expect("planned");
    let BackupPlan::Send { plan, .. } = plan else {
        panic!("an existing snapshot is sent: {plan:?}")
    };
    let Some(Step::Backup(step)) = plan.steps.first() else {
        panic!("the first step is the backup: {:?}", plan.steps)
    };
    step.clone()
}

/// The size of the fake's full stream (the `sent` of every backup here).
fn stream_len(z: &FakeZfs, step: &BackupStep) -> u64 {
    let request = SendRequest::new(home(), step.send.clone(), step.raw);
    let mut stream = z.send(&request).expect("sent");
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match stream.read(&mut buf).expect("read") {
            0 => break,
            k => n += k as u64,
        }
    }
    stream.finish().expect("the send succeeded");
    n
}

/// A store of `kind` ("dir" or "memory"), its URL, and the directory to keep alive.
fn store(kind: &str) -> (Arc<dyn BackupStore>, StoreUrl, Option<tempfile::TempDir>) {
    if kind == "dir" {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let url: StoreUrl = format!("dir:{}", tmp.path().display())
            .parse()
            .expect("valid url");
        let store = DirStore::open(&url).expect("opened");
        (Arc::new(store), url, Some(tmp))
    } else {
        let url: StoreUrl = "s3://bench/host1".parse().expect("valid url");
        (
            Arc::new(ObjectStoreBackup::in_memory(url.clone())),
            url,
            None,
        )
    }
}

/// Generating and reading the fake's stream alone: the floor under the others.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn fake_send_only(bencher: Bencher) {
    let z = fake();
    let url: StoreUrl = "s3://bench/host1".parse().expect("valid url");
    let step = step(&z, &url, Compression::None);
    let len = stream_len(&z, &step);
    bencher
        .counter(BytesCount::new(len))
        .bench_local(|| assert_eq!(stream_len(&z, &step), len));
}

/// `run_backup` of the 64 MiB full stream: `dir` or `memory` store, `none` or `zstd`.
#[divan::bench(
    sample_count = 5,
    sample_size = 1,
    args = ["dir none", "dir zstd", "memory none", "memory zstd"]
)]
fn run_backup_64m(bencher: Bencher, which: &str) {
    let (kind, compression) = which.split_once(' ').expect("two words");
    let compression = match compression {
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    };
    let z = fake();
    let (store, url, _keep) = store(kind);
    let step = step(&z, &url, compression);
    let len = stream_len(&z, &step);
    bencher.counter(BytesCount::new(len)).bench_local(|| {
        let outcome = run_backup(&step, &z, &*store, &BackupOptions::default(), &mut |_| {})
            .expect("backed up");
        assert_eq!(outcome.sent, len);
    });
}

/// `verify_entry` of a stored uncompressed 64 MiB stream: read back and hashed.
#[divan::bench(sample_count = 5, sample_size = 1, args = ["dir", "memory"])]
fn verify_entry_64m(bencher: Bencher, kind: &str) {
    let z = fake();
    let (store, url, _keep) = store(kind);
    let step = step(&z, &url, Compression::None);
    run_backup(&step, &z, &*store, &BackupOptions::default(), &mut |_| {}).expect("backed up");
    let catalog = read_catalog(&*store).expect("catalog read").1;
    let entry: BackupEntry = catalog
        .dataset(&home())
        .expect("the dataset has a backup")
        .entries[0]
        .clone();
    let size = entry.sidecar.as_ref().expect("complete").size;
    bencher
        .counter(BytesCount::new(size))
        .bench_local(|| assert_eq!(verify_entry(&*store, &entry).expect("verified"), size));
}
