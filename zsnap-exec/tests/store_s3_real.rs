//! The backup-store contract suite against a real S3 server (Garage).
//!
//! Needs the variables `testbed/s3/start.sh` writes into its env file:
//! `ZSNAP_TEST_S3_ENDPOINT`, `ZSNAP_TEST_S3_REGION`, `ZSNAP_TEST_S3_BUCKET`,
//! `ZSNAP_TEST_S3_ACCESS_KEY_ID`, `ZSNAP_TEST_S3_SECRET_ACCESS_KEY`. Without them each
//! test says why it is skipped, except under `CI`, where it fails. Every test works
//! below its own fresh prefix and removes what it wrote. Built with the feature `s3`
//! only.
#![cfg(feature = "s3")]
#[path = "support/skip.rs"]
mod skip;
mod store_suite;

use std::sync::atomic::{AtomicU32, Ordering};

use store_suite::{Bed, Expect, PART_SIZE};
use zsnap_core::backup::StoreUrl;
use zsnap_exec::store::{open_store, BackupStore, ObjectStoreBackup, S3Settings, StoreProblem};

/// The server's settings, or `None` (outside CI) when they are not set.
fn server() -> Option<(S3Settings, String)> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let names = [
        "ZSNAP_TEST_S3_ENDPOINT",
        "ZSNAP_TEST_S3_REGION",
        "ZSNAP_TEST_S3_BUCKET",
        "ZSNAP_TEST_S3_ACCESS_KEY_ID",
        "ZSNAP_TEST_S3_SECRET_ACCESS_KEY",
    ];
    let values: Vec<Option<String>> = names.iter().map(|n| var(n)).collect();
    if let Some(i) = values.iter().position(Option::is_none) {
        let why = format!(
            "{} is not set: run testbed/s3/start.sh and source the env file it prints",
            names[i]
        );
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        skip::skipped("store_s3_real", &why);
        return None;
    }
    let [endpoint, region, bucket, id, secret] = <[Option<String>; 5]>::try_from(values)
        .unwrap()
        .map(Option::unwrap);
    let settings = S3Settings::new()
        .with_endpoint(&endpoint)
        .with_region(region)
        .with_access_key_id(id)
        .with_secret_access_key(secret)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_part_size(PART_SIZE);
    Some((settings, bucket))
}

/// A prefix no other test (of this run or an earlier one) uses.
fn fresh_url(bucket: &str) -> StoreUrl {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("s3://{bucket}/test-{}-{nanos}-{n}", std::process::id())
        .parse()
        .unwrap()
}

fn s3_bed() -> Option<Bed> {
    let (settings, bucket) = server()?;
    let store = open_store(&fresh_url(&bucket), &settings).unwrap();
    Some(Bed {
        store,
        expect: Expect {
            dropped_upload_listed: false,
        },
        clean_up: true,
        keep: None,
    })
}

store_contract!(s3_bed);

#[test]
fn keys_are_stored_verbatim_on_the_server() {
    let Some((settings, bucket)) = server() else {
        return;
    };
    let url = fresh_url(&bucket);
    let StoreUrl::S3 { prefix, .. } = &url else {
        unreachable!()
    };
    let store = ObjectStoreBackup::s3(&url, &settings).unwrap();
    let key = "tank%2Fhome/20261123T150000Z_a%20b.full.zfs";
    store.put(key, b"x").unwrap();
    // Listed from the top of the bucket: the key text is exactly what was written,
    // `%2F` and `%20` included (not decoded into `tank/home`, not encoded again).
    let top: StoreUrl = format!("s3://{bucket}").parse().unwrap();
    let whole = ObjectStoreBackup::s3(&top, &settings).unwrap();
    let mine: Vec<String> = whole
        .list()
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.starts_with(&format!("{prefix}/")))
        .collect();
    assert_eq!(mine, [format!("{prefix}/{key}")]);
    assert_eq!(store.get(key, 10).unwrap(), b"x");
    assert!(store.delete(key).unwrap());
}

#[test]
fn wrong_credentials_fail_naming_the_store_and_never_the_secret() {
    let Some((settings, bucket)) = server() else {
        return;
    };
    let url = fresh_url(&bucket);
    let secret = "not-the-secret-0123456789abcdef0123456789abcdef0123456789abcdef";
    let bad = settings.with_secret_access_key(secret);
    let store = open_store(&url, &bad).unwrap();
    let e = store.list().unwrap_err();
    assert!(matches!(e.problem, StoreProblem::ObjectStore(_)), "{e:?}");
    let chain = error_chain(&e);
    assert!(
        chain.starts_with(&format!("list the objects in {url}")),
        "{chain}"
    );
    assert!(!chain.contains(secret), "{chain}");
    assert!(!format!("{e:?}").contains(secret));
}

#[test]
fn missing_bucket_fails_naming_the_store() {
    let Some((settings, _)) = server() else {
        return;
    };
    let url: StoreUrl = "s3://zsnap-no-such-bucket/x".parse().unwrap();
    let store = open_store(&url, &settings).unwrap();
    let e = store.put("a/b", b"x").unwrap_err();
    let chain = error_chain(&e);
    assert!(
        chain.starts_with(r#"write "a/b" in s3://zsnap-no-such-bucket/x"#),
        "{chain}"
    );
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
