//! The backup-store contract suite on a directory store and on the in-memory object
//! store, and what only a directory store does (real S3: `store_s3_real.rs`).

mod store_suite;

use std::sync::Arc;

use store_suite::{Bed, Expect, PART_SIZE};
use zsnap_core::backup::StoreUrl;
use zsnap_exec::store::{
    open_store, BackupStore, DirStore, ObjectStoreBackup, OpenStoreProblem, S3Settings,
};

fn dir_url(path: &std::path::Path) -> StoreUrl {
    format!("dir:{}", path.display()).parse().unwrap()
}

fn dir_bed() -> Option<Bed> {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(&dir_url(tmp.path()), &S3Settings::new(), false).unwrap();
    Some(Bed {
        store,
        expect: Expect {
            dropped_upload_listed: true,
        },
        clean_up: false,
        keep: Some(tmp),
    })
}

fn memory_bed() -> Option<Bed> {
    let url: StoreUrl = "s3://zsnap-test/host1".parse().unwrap();
    let store = ObjectStoreBackup::in_memory(url).with_part_size(PART_SIZE);
    Some(Bed {
        store: Box::new(store),
        expect: Expect {
            dropped_upload_listed: false,
        },
        clean_up: false,
        keep: None,
    })
}

mod dir {
    use super::*;
    store_contract!(dir_bed);
}

mod memory {
    use super::*;
    store_contract!(memory_bed);
}

#[test]
fn whole_suite_on_one_store_of_each_kind() {
    let dir = dir_bed().unwrap();
    store_suite::contract(&*dir.store, dir.expect);
    let memory = memory_bed().unwrap();
    store_suite::contract(&*memory.store, memory.expect);
}

#[test]
fn dir_keys_are_paths_verbatim_and_temporary_files_are_not_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(&dir_url(tmp.path()), false).unwrap();
    store.put("tank%2Fhome/a.json", b"{}").unwrap();
    // `%2F` is not decoded into a nested directory.
    assert!(tmp.path().join("tank%2Fhome").is_dir());
    assert!(!tmp.path().join("tank").exists());
    // What a killed `put` leaves behind is not an object.
    std::fs::write(tmp.path().join("tank%2Fhome/.zsnap-tmp-999-0"), b"torn").unwrap();
    std::fs::write(tmp.path().join(".zsnap-tmp-999-1"), b"torn").unwrap();
    // Empty directories are not objects either; other files are (foreign keys).
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"hi").unwrap();
    let keys: Vec<String> = store.list().unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["notes.txt", "tank%2Fhome/a.json"]);
}

#[test]
fn dir_store_is_made_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let url = dir_url(&tmp.path().join("usb/zsnap"));
    let e = open_store(&url, &S3Settings::new(), false).err().unwrap();
    assert!(
        matches!(&e.problem, OpenStoreProblem::Missing { path } if path.ends_with("usb/zsnap")),
        "{e:?}"
    );
    assert!(e.to_string().contains(&url.to_string()), "{e}");
    let store = open_store(&url, &S3Settings::new(), true).unwrap();
    assert!(tmp.path().join("usb/zsnap").is_dir());
    assert_eq!(store.list().unwrap(), []);
    // A file is not a store.
    std::fs::write(tmp.path().join("file"), b"").unwrap();
    let e = open_store(&dir_url(&tmp.path().join("file")), &S3Settings::new(), true)
        .err()
        .unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::NotDirectory { .. }),
        "{e:?}"
    );
}

#[test]
fn object_store_keys_live_below_the_prefix_verbatim() {
    let url: StoreUrl = "s3://zsnap-test/host1/zsnap".parse().unwrap();
    let store = ObjectStoreBackup::in_memory(url.clone());
    store.put("tank%2Fhome/a.json", b"{}").unwrap();
    // The same objects seen from the top of the bucket.
    let whole = ObjectStoreBackup::new(url, Arc::clone(store.object_store()), "").unwrap();
    whole.put("elsewhere/b", b"").unwrap();
    let keys: Vec<String> = whole.list().unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["elsewhere/b", "host1/zsnap/tank%2Fhome/a.json"]);
    let keys: Vec<String> = store.list().unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["tank%2Fhome/a.json"]);
}

#[test]
fn s3_stores_check_their_settings_without_a_request() {
    let url: StoreUrl = "s3://zsnap-test/p".parse().unwrap();
    let settings = S3Settings::new()
        .with_endpoint("http://127.0.0.1:9")
        .with_region("garage")
        .with_access_key_id("GKexample")
        .with_secret_access_key("very-secret-value")
        .with_allow_http(true);
    let store = open_store(&url, &settings, false).unwrap();
    assert_eq!(store.url(), &url);
    let e = open_store(&url, &settings.clone().with_part_size(1 << 20), false)
        .err()
        .unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::PartSize { part_size } if part_size == 1 << 20),
        "{e:?}"
    );
    // Nothing is sent yet, and no Debug output shows the secret.
    assert!(!format!("{settings:?}").contains("very-secret-value"));
    let s3 = ObjectStoreBackup::s3(&url, &settings).unwrap();
    assert!(!format!("{s3:?}").contains("very-secret-value"));
}
