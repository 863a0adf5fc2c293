//! What `zsnap backups list`, `zsnap backups verify` and `zsnap restore --save` do, as
//! the library runs them: on backups the scheduled runs of a fake pool made in a
//! directory store.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use zsnap_core::backup::{Catalog, RestoreTarget, StoreUrl};
use zsnap_core::config::Config;
use zsnap_exec::rehearsal::fresh_pool;
use zsnap_exec::scheduled::run_scheduled;
use zsnap_exec::store::{init_store, read_catalog, BackupStore, DirStore, S3Settings};
use zsnap_exec::store_ops::{list_backups, save_point, verify_store, ListFilter, VerifyProblem};
use zsnap_exec::OneBackend;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

/// A store holding three daily backups of tank/home: a full, then two incrementals.
fn three_days(dir: &std::path::Path) -> (DirStore, Catalog) {
    let url: StoreUrl = format!("dir:{}", dir.join("store").display())
        .parse()
        .unwrap();
    init_store(&url, &S3Settings::new(), t0()).unwrap();
    let config = Config::from_toml(
        &format!(
            "[policies.p]\nsnapshot = {{ hourly = \"hourly\" }}\nkeep_last = 3\n\n\
             [[datasets]]\nroot = \"tank/home\"\npolicy = \"p\"\n\n\
             [backups.usb]\nsource = \"tank/home\"\nto = \"{url}\"\nevery = \"1d\"\n"
        ),
        "c.toml",
    )
    .unwrap();
    let mut z = fresh_pool(&config, t0()).unwrap();
    for day in 0..3 {
        let now = t0() + TimeDelta::days(day);
        z.set_now(now);
        let done = run_scheduled(
            &config,
            &mut OneBackend(&mut z),
            now,
            false,
            None,
            &mut |_| {},
        );
        assert!(done.ok() && done.did_something(), "{done:?}");
    }
    let store = DirStore::open(&url).unwrap();
    let (_, catalog) = read_catalog(&store).unwrap();
    (store, catalog)
}

#[test]
fn a_listing_filters_by_dataset_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, catalog) = three_days(dir.path());
    assert_eq!(list_backups(&catalog, &ListFilter::new()).len(), 3);
    let later = ListFilter::new().with_times(Some(t0() + TimeDelta::hours(12)), None);
    let rows = list_backups(&catalog, &later);
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.created >= t0() + TimeDelta::hours(12)));
    let first = ListFilter::new().with_times(None, Some(t0() + TimeDelta::hours(12)));
    let rows = list_backups(&catalog, &first);
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].entry.stream.parent().is_none(),
        "the first is the full"
    );
    let other = ListFilter::new().with_dataset(Some("tank/other".parse().unwrap()));
    assert!(list_backups(&catalog, &other).is_empty());
    // A row is the entry with its dataset, snapshot and time.
    let json = serde_json::to_value(list_backups(&catalog, &ListFilter::new())).unwrap();
    assert_eq!(json[0]["dataset"], "tank/home");
    assert!(json[0]["id"].is_string() && json[0]["created"].is_string());
}

#[test]
fn verify_reads_every_backup_and_names_a_lost_stream_and_the_chain_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let (store, catalog) = three_days(dir.path());
    let v = verify_store(&store, &catalog, None);
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.checked, 3);
    assert!(v.bytes > 0);

    // The full's stream goes: it is missing, and the incremental after it is cut off.
    let full = catalog.datasets.values().next().unwrap().entries[0].clone();
    assert!(full.stream.parent().is_none());
    assert!(store.delete(full.key()).unwrap());
    let (_, catalog) = read_catalog(&store).unwrap();
    let v = verify_store(&store, &catalog, None);
    assert!(!v.ok());
    assert!(v
        .problems
        .iter()
        .any(|p| matches!(p, VerifyProblem::Missing { id } if *id == full.id)));
    assert!(v
        .problems
        .iter()
        .any(|p| matches!(p, VerifyProblem::BrokenChain { .. })));
    let json = serde_json::to_value(&v).unwrap();
    assert!(json["problems"][0].as_str().is_some(), "{json}");
    // Only another dataset: nothing to check, nothing wrong.
    let other: zsnap_core::DatasetName = "tank/other".parse().unwrap();
    let v = verify_store(&store, &catalog, Some(&other));
    assert!(v.ok() && v.checked == 0);
}

#[test]
fn saving_a_point_writes_its_own_stream_and_says_what_comes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, catalog) = three_days(dir.path());
    let home: zsnap_core::DatasetName = "tank/home".parse().unwrap();
    let path = dir.path().join("latest.zfs");
    let dry = save_point(
        &store,
        &catalog,
        &home,
        &RestoreTarget::Latest,
        false,
        &path,
        true,
    )
    .unwrap();
    assert_eq!(dry.bytes, None);
    assert!(!path.exists());
    let saved = save_point(
        &store,
        &catalog,
        &home,
        &RestoreTarget::Latest,
        false,
        &path,
        false,
    )
    .unwrap();
    assert_eq!(saved.id, dry.id);
    assert_eq!(saved.earlier, 2, "a full and an incremental come before it");
    let n = saved.bytes.expect("saved");
    assert!(n > 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), n);
    // No backup of a dataset the store does not hold.
    let other: zsnap_core::DatasetName = "tank/other".parse().unwrap();
    assert!(save_point(
        &store,
        &catalog,
        &other,
        &RestoreTarget::Latest,
        false,
        &dir.path().join("x"),
        false
    )
    .is_err());
}
