//! The contract suite of backup stores: one set of checks, each a function of a
//! `&dyn BackupStore`, run on a directory store, on the in-memory object store, and on
//! a real S3 server (Garage, `testbed/s3/`).
//!
//! A test file runs every check on a fresh, empty store with
//! `store_contract!(factory)`, where `factory` is a `fn() -> Option<Bed>` (`None`
//! skips). [`contract`] runs them all on one store.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support code"
)]

use std::io::{Read, Write};

use zsnap_core::backup::{
    Compression, EntryState, Sha256, Sidecar, StreamKind, StreamName, MAX_SIDECAR_BYTES,
};
use zsnap_core::Guid;
use zsnap_exec::store::{read_catalog, BackupStore, StoreProblem};

/// Part size of the stores under test: the S3 minimum, so a large upload has several.
pub const PART_SIZE: usize = 5 << 20;

/// Size of the large upload: more than three parts, the last one partial.
pub const LARGE: usize = 17 * (1 << 20) + 12_345;

/// Where the stores legitimately differ.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// Whether an upload dropped without `finish` (a killed upload) stays listed: yes
    /// for a directory (the unfinished backup the catalog shows), no for S3 (the
    /// multipart upload never completes).
    pub dropped_upload_listed: bool,
}

/// A store under test, and what keeps it alive (a temporary directory).
pub struct Bed {
    /// The store.
    pub store: Box<dyn BackupStore>,
    /// How it behaves.
    pub expect: Expect,
    /// Removes everything the test left in the store when dropped (a shared bucket).
    pub clean_up: bool,
    /// Kept alive until the test ends.
    pub keep: Option<tempfile::TempDir>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if self.clean_up {
            if let Ok(objects) = self.store.list() {
                for o in objects {
                    let _ = self.store.delete(&o.key);
                }
            }
        }
    }
}

/// One check of the contract, on an empty store.
pub type Check = fn(&dyn BackupStore, Expect);

/// Every check, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("put_get_list_round_trip", put_get_list_round_trip),
    ("put_replaces_whole_object", put_replaces_whole_object),
    ("get_refuses_larger_than_max", get_refuses_larger_than_max),
    ("large_upload_in_parts", large_upload_in_parts),
    (
        "aborted_upload_leaves_nothing",
        aborted_upload_leaves_nothing,
    ),
    ("dropped_upload", dropped_upload),
    ("delete_true_then_false", delete_true_then_false),
    ("missing_objects_are_named", missing_objects_are_named),
    ("invalid_keys_are_refused", invalid_keys_are_refused),
    (
        "catalog_complete_unfinished_damaged",
        catalog_complete_unfinished_damaged,
    ),
];

/// Runs every check on `store` (empty at the start), one after another.
pub fn contract(store: &dyn BackupStore, expect: Expect) {
    for (name, check) in CHECKS {
        check(store, expect);
        for o in store.list().unwrap_or_else(|e| panic!("{name}: {e}")) {
            store.delete(&o.key).unwrap();
        }
    }
}

/// One `#[test]` per check, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! store_contract {
    ($factory:expr) => {
        $crate::store_contract!(@tests $factory;
            put_get_list_round_trip,
            put_replaces_whole_object,
            get_refuses_larger_than_max,
            large_upload_in_parts,
            aborted_upload_leaves_nothing,
            dropped_upload,
            delete_true_then_false,
            missing_objects_are_named,
            invalid_keys_are_refused,
            catalog_complete_unfinished_damaged,
        );
        #[test]
        fn every_check_is_a_test() {
            let names: Vec<&str> = store_suite::CHECKS.iter().map(|(n, _)| *n).collect();
            assert_eq!(names.len(), 10, "add the new check to store_contract!");
        }
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some(bed) = $factory() else { return };
                store_suite::$name(&*bed.store, bed.expect);
            }
        )*
    };
}

/// Deterministic pseudo-random bytes (xorshift64*), different for each seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn keys(store: &dyn BackupStore) -> Vec<String> {
    store
        .list()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|o| o.key)
        .collect()
}

fn read_all(store: &dyn BackupStore, key: &str) -> Vec<u8> {
    let mut r = store.open(key).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap_or_else(|e| panic!("{e}"));
    out
}

pub fn put_get_list_round_trip(store: &dyn BackupStore, _: Expect) {
    let objects: [(&str, &[u8]); 5] = [
        (
            "tank%2Fhome/20261123T150000Z_a.full.zfs.json",
            b"{\"a\":1}\n",
        ),
        ("tank%2Fhome/20261123T150000Z_a.full.zfs", b"stream"),
        ("tank/README", b""),
        ("a%20b/%25x", b"percent"),
        ("deep/er/path", b"three parts"),
    ];
    for (key, bytes) in objects {
        store.put(key, bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let listed = store.list().unwrap();
    let listed_keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    // Sorted by key, verbatim (no percent-decoding), no temporary files.
    assert_eq!(
        listed_keys,
        [
            "a%20b/%25x",
            "deep/er/path",
            "tank%2Fhome/20261123T150000Z_a.full.zfs",
            "tank%2Fhome/20261123T150000Z_a.full.zfs.json",
            "tank/README",
        ]
    );
    for (key, bytes) in objects {
        let o = listed.iter().find(|o| o.key == key).unwrap();
        assert_eq!(o.size, bytes.len() as u64, "{key}");
        let age = chrono::Utc::now() - o.modified;
        assert!(
            age.num_minutes().abs() < 10,
            "{key}: modified {}",
            o.modified
        );
        assert_eq!(store.get(key, 1 << 20).unwrap(), bytes, "{key}");
        assert_eq!(read_all(store, key), bytes, "{key}");
    }
}

pub fn put_replaces_whole_object(store: &dyn BackupStore, _: Expect) {
    let key = "tank/x.json";
    store.put(key, &noise(70_000, 1)).unwrap();
    store.put(key, b"short").unwrap();
    assert_eq!(store.get(key, 100).unwrap(), b"short");
    assert_eq!(keys(store), [key]);
}

pub fn get_refuses_larger_than_max(store: &dyn BackupStore, _: Expect) {
    let key = "tank/big.json";
    let bytes = noise(MAX_SIDECAR_BYTES + 1, 2);
    store.put(key, &bytes).unwrap();
    let e = store.get(key, MAX_SIDECAR_BYTES).unwrap_err();
    assert!(e.is_too_large(), "{e:?}");
    assert!(
        matches!(e.problem, StoreProblem::TooLarge { size, max }
            if size > MAX_SIDECAR_BYTES as u64 && max == MAX_SIDECAR_BYTES),
        "{e:?}"
    );
    assert!(e.to_string().contains(key), "{e}");
    assert_eq!(store.get(key, bytes.len()).unwrap(), bytes);
}

pub fn large_upload_in_parts(store: &dyn BackupStore, _: Expect) {
    let key = "tank%2Fhome/20261123T150000Z_big.full.zfs";
    let data = noise(LARGE, 3);
    let mut up = store.upload(key).unwrap();
    // Small writes, a write of more than a part, and odd sizes across part borders.
    let mut at = 0;
    for size in [1, 4096, 7 << 20, 100_003].iter().cycle() {
        if at == data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        up.write_all(&data[at..end]).unwrap();
        at = end;
    }
    up.flush().unwrap();
    assert_eq!(up.finish().unwrap(), data.len() as u64);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].key.as_str(), listed[0].size),
        (key, LARGE as u64)
    );
    let back = read_all(store, key);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the bytes read back differ");
    // Reads hand out what has arrived: small reads see the same bytes.
    let mut r = store.open(key).unwrap();
    let mut first = [0u8; 10];
    r.read_exact(&mut first).unwrap();
    assert_eq!(first, data[..10]);
}

pub fn aborted_upload_leaves_nothing(store: &dyn BackupStore, _: Expect) {
    let key = "tank/20261123T150000Z_x.full.zfs";
    let mut up = store.upload(key).unwrap();
    up.write_all(&noise(PART_SIZE + 1000, 4)).unwrap();
    up.abort().unwrap();
    assert_eq!(keys(store), Vec::<String>::new());
    assert!(store.open(key).err().unwrap().is_not_found());
}

pub fn dropped_upload(store: &dyn BackupStore, expect: Expect) {
    let key = "tank/20261123T150000Z_killed.full.zfs";
    let data = noise(PART_SIZE + 2000, 5);
    let mut up = store.upload(key).unwrap();
    up.write_all(&data).unwrap();
    drop(up);
    let listed = store.list().unwrap();
    if expect.dropped_upload_listed {
        // The unfinished backup: visible, with what was written.
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (listed[0].key.as_str(), listed[0].size),
            (key, data.len() as u64)
        );
        assert!(read_all(store, key) == data);
    } else {
        assert_eq!(listed, [], "a dropped upload must not appear");
    }
}

pub fn delete_true_then_false(store: &dyn BackupStore, _: Expect) {
    let key = "tank%2Fa/obj";
    store.put(key, b"x").unwrap();
    store.put("tank%2Fa/other", b"y").unwrap();
    assert!(store.delete(key).unwrap());
    assert!(!store.delete(key).unwrap());
    assert!(!store.delete("never/was").unwrap());
    assert_eq!(keys(store), ["tank%2Fa/other"]);
}

pub fn missing_objects_are_named(store: &dyn BackupStore, _: Expect) {
    let key = "tank%2Fhome/20261123T150000Z_gone.full.zfs";
    let e = store.open(key).err().expect("open of a missing key fails");
    assert!(e.is_not_found(), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(key), "{text}");
    assert!(text.contains(&store.url().to_string()), "{text}");
    assert!(text.starts_with("read "), "{text}");
    let e = store.get(key, 10).unwrap_err();
    assert!(e.is_not_found() && e.to_string().contains(key), "{e}");
}

pub fn invalid_keys_are_refused(store: &dyn BackupStore, _: Expect) {
    for key in ["", "/abs", "a/../b", "a/./b", "a//b", "a/", "a\0b", "a/\nb"] {
        let e = store.put(key, b"x").unwrap_err();
        assert!(
            matches!(e.problem, StoreProblem::InvalidKey { .. }),
            "{key:?}: {e:?}"
        );
        assert!(store.upload(key).is_err(), "{key:?}");
        assert!(store.open(key).is_err(), "{key:?}");
        assert!(store.delete(key).is_err(), "{key:?}");
    }
    assert_eq!(keys(store), Vec::<String>::new());
}

fn stream(snapshot: &str) -> StreamName {
    let created = chrono::DateTime::parse_from_rfc3339("2026-11-23T15:00:00Z")
        .unwrap()
        .to_utc();
    StreamName::new(
        "tank/home".parse().unwrap(),
        snapshot.parse().unwrap(),
        created,
        StreamKind::Full,
        Compression::None,
    )
    .unwrap()
}

fn sidecar(name: &StreamName, bytes: &[u8], guid: u64) -> Vec<u8> {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(bytes).into();
    Sidecar::new(
        name,
        Guid(guid),
        guid * 10,
        None,
        false,
        bytes.len() as u64,
        Sha256::from_bytes(digest),
        "0.1.0",
    )
    .unwrap()
    .to_json()
    .into_bytes()
}

pub fn catalog_complete_unfinished_damaged(store: &dyn BackupStore, _: Expect) {
    let done = stream("done");
    let bytes = noise(1000, 6);
    let mut up = store.upload(&done.key()).unwrap();
    up.write_all(&bytes).unwrap();
    up.finish().unwrap();
    store
        .put(&done.sidecar_key(), &sidecar(&done, &bytes, 7))
        .unwrap();

    let unfinished = stream("unfinished");
    store.put(&unfinished.key(), b"partial").unwrap();

    // An oversized sidecar is left out of the reads: the backup is damaged, and the
    // listing does not fail.
    let huge = stream("huge");
    store.put(&huge.key(), b"whatever").unwrap();
    let mut padded = sidecar(&huge, b"whatever", 8);
    padded.resize(MAX_SIDECAR_BYTES + 1, b' ');
    store.put(&huge.sidecar_key(), &padded).unwrap();

    let (objects, catalog) = read_catalog(store).unwrap();
    assert_eq!(objects.len(), 5);
    assert_eq!(objects, store.list().unwrap());
    let home = catalog.dataset(&"tank/home".parse().unwrap()).unwrap();
    let states: Vec<(String, &EntryState)> = home
        .entries
        .iter()
        .map(|e| (e.stream.snapshot().to_string(), &e.state))
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    let state = |s: &str| states.iter().find(|(n, _)| n == s).unwrap().1;
    assert_eq!(state("done"), &EntryState::Complete);
    assert_eq!(state("unfinished"), &EntryState::Unfinished);
    assert!(
        matches!(state("huge"), EntryState::Damaged { .. }),
        "{states:?}"
    );
    let entry = home.entries.iter().find(|e| e.is_complete()).unwrap();
    assert_eq!(entry.guid(), Some(Guid(7)));
    assert!(entry.is_restorable());
    assert!(catalog.foreign.is_empty() && catalog.orphan_sidecars.is_empty());
}
