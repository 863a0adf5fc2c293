//! The backup-store contract suite on a directory store and (with the feature `s3`) on
//! the in-memory object store, and what only a directory store does (real S3:
//! `store_s3_real.rs`); without the feature, `s3://` stores are refused.

mod store_suite;

#[cfg(feature = "s3")]
use std::sync::Arc;

#[cfg(feature = "s3")]
use store_suite::PART_SIZE;
use store_suite::{Bed, Expect};
use zsnap_core::backup::{StoreUrl, STORE_MARKER_KEY};
#[cfg(feature = "s3")]
use zsnap_exec::store::ObjectStoreBackup;
use zsnap_exec::store::{
    init_store, open_initialised, open_store, read_catalog, BackupStore, DirStore,
    OpenStoreProblem, S3Settings,
};

fn dir_url(path: &std::path::Path) -> StoreUrl {
    format!("dir:{}", path.display()).parse().unwrap()
}

fn dir_bed() -> Option<Bed> {
    let tmp = tempfile::tempdir().unwrap();
    let store = open_store(&dir_url(tmp.path()), &S3Settings::new()).unwrap();
    Some(Bed {
        store,
        expect: Expect {
            dropped_upload_listed: true,
        },
        clean_up: false,
        keep: Some(tmp),
    })
}

#[cfg(feature = "s3")]
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

#[cfg(feature = "s3")]
mod memory {
    use super::*;
    store_contract!(memory_bed);
}

#[test]
fn whole_suite_on_one_store_of_each_kind() {
    let dir = dir_bed().unwrap();
    store_suite::contract(&*dir.store, dir.expect);
    #[cfg(feature = "s3")]
    {
        let memory = memory_bed().unwrap();
        store_suite::contract(&*memory.store, memory.expect);
    }
}

#[test]
fn dir_keys_are_paths_verbatim_and_temporary_files_are_not_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(&dir_url(tmp.path())).unwrap();
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
fn dir_store_is_made_only_by_init_and_only_its_last_component() {
    let tmp = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    // An unmounted disk: its mount point (the parent) is missing. Nothing opens it,
    // and init makes no parents.
    let url = dir_url(&tmp.path().join("usb/zsnap"));
    let e = open_store(&url, &S3Settings::new()).err().unwrap();
    assert!(
        matches!(&e.problem, OpenStoreProblem::Missing { path } if path.ends_with("usb/zsnap")),
        "{e:?}"
    );
    assert!(e.to_string().contains(&url.to_string()), "{e}");
    let e = init_store(&url, &S3Settings::new(), now).err().unwrap();
    assert!(
        matches!(&e.problem, OpenStoreProblem::Missing { path } if path.ends_with("usb")),
        "{e:?}"
    );
    assert!(!tmp.path().join("usb").exists());
    let e = open_initialised(&url, &S3Settings::new()).err().unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::NotInitialised { .. }),
        "{e:?}"
    );
    assert!(
        std::error::Error::source(&e)
            .unwrap()
            .to_string()
            .contains("is the disk mounted"),
        "{e}"
    );
    // Mounted (the parent exists): init makes the store, private.
    std::fs::create_dir(tmp.path().join("usb")).unwrap();
    let done = init_store(&url, &S3Settings::new(), now).unwrap();
    assert!(done.created);
    let root = tmp.path().join("usb/zsnap");
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join(STORE_MARKER_KEY)), 0o600);
    let (store, marker) = open_initialised(&url, &S3Settings::new()).unwrap();
    assert_eq!(marker, done.marker);
    assert_eq!(marker.store, url.to_string());
    // The marker is no backup and no foreign object.
    let (_, catalog) = read_catalog(&*store).unwrap();
    assert!(catalog.datasets.is_empty() && catalog.foreign.is_empty());
    // Initialising again changes nothing.
    let again = init_store(&url, &S3Settings::new(), now).unwrap();
    assert!(!again.created);
    assert_eq!(again.marker, marker);
    // An empty mount point (the disk is not mounted there) is no store either.
    let empty = dir_url(&tmp.path().join("usb"));
    let e = open_initialised(&empty, &S3Settings::new()).err().unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::NotInitialised { .. }),
        "{e:?}"
    );
    // A file is not a store.
    std::fs::write(tmp.path().join("file"), b"").unwrap();
    let e = open_store(&dir_url(&tmp.path().join("file")), &S3Settings::new())
        .err()
        .unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::NotDirectory { .. }),
        "{e:?}"
    );
}

#[cfg(feature = "s3")]
#[test]
fn in_memory_stores_need_their_marker_too() {
    let url: StoreUrl = "s3://zsnap-test/p".parse().unwrap();
    let store = ObjectStoreBackup::in_memory(url);
    let e = zsnap_exec::store::read_marker(&store).err().unwrap();
    assert!(
        matches!(e.problem, OpenStoreProblem::NotInitialised { .. }),
        "{e:?}"
    );
    store.put(STORE_MARKER_KEY, b"not json").unwrap();
    let e = zsnap_exec::store::read_marker(&store).err().unwrap();
    assert!(matches!(e.problem, OpenStoreProblem::BadMarker(_)), "{e:?}");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn dir_store_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let store = DirStore::open(&dir_url(tmp.path())).unwrap();
    let mut up = store.upload("tank%2Fhome/s.zfs").unwrap();
    std::io::Write::write_all(&mut up, b"stream").unwrap();
    up.finish().unwrap();
    store.put("tank%2Fhome/s.zfs.json", b"{}").unwrap();
    assert_eq!(mode(&tmp.path().join("tank%2Fhome")), 0o700);
    assert_eq!(mode(&tmp.path().join("tank%2Fhome/s.zfs")), 0o600);
    assert_eq!(mode(&tmp.path().join("tank%2Fhome/s.zfs.json")), 0o600);
}

#[test]
fn dir_store_writes_through_no_link_at_the_next_streams_name() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    std::fs::create_dir(&store_dir).unwrap();
    let store = DirStore::open(&dir_url(&store_dir)).unwrap();
    // A file only root may read, and a link to it where the next stream goes.
    let secret = tmp.path().join("shadow");
    std::fs::write(&secret, b"root:hash").unwrap();
    std::fs::create_dir(store_dir.join("tank")).unwrap();
    std::os::unix::fs::symlink(&secret, store_dir.join("tank/next.zfs")).unwrap();
    std::os::unix::fs::symlink(&secret, store_dir.join("tank/next.zfs.json")).unwrap();
    let mut up = store.upload("tank/next.zfs").unwrap();
    std::io::Write::write_all(&mut up, &[7u8; 16 << 10]).unwrap();
    up.finish().unwrap();
    store.put("tank/next.zfs.json", b"{}").unwrap();
    assert_eq!(std::fs::read(&secret).unwrap(), b"root:hash");
    // The link was replaced by the store's own files.
    for name in ["tank/next.zfs", "tank/next.zfs.json"] {
        let meta = std::fs::symlink_metadata(store_dir.join(name)).unwrap();
        assert!(meta.file_type().is_file(), "{name}");
    }
    assert_eq!(
        std::fs::read(store_dir.join("tank/next.zfs"))
            .unwrap()
            .len(),
        16 << 10
    );
}

#[test]
fn dir_store_refuses_a_linked_dataset_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&store_dir).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("old.zfs"), b"x").unwrap();
    std::os::unix::fs::symlink(&elsewhere, store_dir.join("tank%2Fhome")).unwrap();
    let store = DirStore::open(&dir_url(&store_dir)).unwrap();
    let e = store.upload("tank%2Fhome/s.zfs").err().unwrap();
    assert!(e.to_string().contains("tank%2Fhome/s.zfs"), "{e}");
    assert!(
        std::error::Error::source(&e)
            .unwrap()
            .to_string()
            .contains("symbolic link"),
        "{e:?}"
    );
    let e = store.put("tank%2Fhome/s.zfs.json", b"{}").err().unwrap();
    assert!(!e.is_not_found(), "{e:?}");
    assert!(store.get("tank%2Fhome/old.zfs", 10).is_err());
    assert!(!matches!(store.delete("tank%2Fhome/old.zfs"), Ok(true)));
    // Nothing was written or removed through the link.
    let names: Vec<_> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["old.zfs"]);
    // And the listing does not descend into it: it is one foreign object.
    let keys: Vec<String> = store.list().unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(keys, ["tank%2Fhome"]);
}

#[test]
fn dir_store_reads_no_linked_object() {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    std::fs::create_dir_all(store_dir.join("tank")).unwrap();
    let secret = tmp.path().join("shadow");
    std::fs::write(&secret, b"root:hash").unwrap();
    std::os::unix::fs::symlink(&secret, store_dir.join("tank/s.zfs")).unwrap();
    std::os::unix::fs::symlink(&secret, store_dir.join("tank/t.zfs.json")).unwrap();
    let store = DirStore::open(&dir_url(&store_dir)).unwrap();
    let e = store.open("tank/s.zfs").err().unwrap();
    assert!(format!("{e:?}").contains("not a regular file"), "{e:?}");
    let e = store.get("tank/t.zfs.json", 100).err().unwrap();
    assert!(format!("{e:?}").contains("not a regular file"), "{e:?}");
    // Listed as themselves (so verify and the catalog report them), never followed.
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|o| o.size != 9), "{listed:?}");
}

#[cfg(feature = "s3")]
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

#[cfg(feature = "s3")]
#[test]
fn s3_stores_check_their_settings_without_a_request() {
    let url: StoreUrl = "s3://zsnap-test/p".parse().unwrap();
    let settings = S3Settings::new()
        .with_endpoint("http://127.0.0.1:9")
        .with_region("garage")
        .with_access_key_id("GKexample")
        .with_secret_access_key("very-secret-value")
        .with_allow_http(true);
    let store = open_store(&url, &settings).unwrap();
    assert_eq!(store.url(), &url);
    let e = open_store(&url, &settings.clone().with_part_size(1 << 20))
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

#[cfg(not(feature = "s3"))]
#[test]
fn s3_stores_are_refused_by_a_build_without_the_feature() {
    let url: StoreUrl = "s3://zsnap-test/p".parse().unwrap();
    let settings = S3Settings::new().with_endpoint("http://127.0.0.1:9");
    let now = chrono::Utc::now();
    let errors = [
        open_store(&url, &settings).err().unwrap(),
        open_initialised(&url, &settings).err().unwrap(),
        init_store(&url, &settings, now).err().unwrap(),
    ];
    for e in errors {
        assert!(matches!(e.problem, OpenStoreProblem::NoS3Support), "{e:?}");
        assert_eq!(e.store, url);
        let why = std::error::Error::source(&e).unwrap().to_string();
        assert!(why.contains("no S3 support"), "{why}");
        assert!(why.contains("feature `s3`"), "{why}");
    }
}
