//! End-to-end scenarios of `zsnap backup`, `zsnap backups list|verify` and `zsnap
//! restore` against real OpenZFS 2.3 (the testbed guest, `testbed/`) and real stores: a
//! directory on this machine and a real S3 server (Garage, `testbed/s3/`).
//!
//! Needs `ZSNAP_TESTBED_SSH_CONFIG` and `ZSNAP_TESTBED_HOST` (`. "$(testbed/up.sh)"`), and
//! for the S3 scenario `ZSNAP_TEST_S3_*` (`. "$(testbed/s3/start.sh)"`). Without them a
//! scenario says how to run it and passes, except under `CI`, where it fails.
//!
//! `zsnap` runs on this machine with `--backend ssh://…` to the guest: the streams go
//! from `zfs send` in the guest over ssh into the store here, and back into `zfs receive`.
//! Each scenario backs up three snapshots (a full and two chained incrementals) of its
//! own dataset, destroys the dataset, restores it to the second snapshot and compares
//! every file's SHA-256 with what the dataset held at that snapshot.
#![expect(
    clippy::print_stderr,
    reason = "skipped scenarios and timings are reported on stderr"
)]

// The scenario support is shared with `e2e_real`, which uses more of it.
#[allow(dead_code)]
mod e2e;

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use zsnap_exec::quote::quote;

use e2e::guest::{guest, Guest, Run, Scenario};

/// Whether this is a CI run, where no real-service test may be skipped.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The S3 server from `ZSNAP_TEST_S3_*`.
struct S3 {
    endpoint: String,
    region: String,
    bucket: String,
    key_id: String,
    secret: String,
}

/// The S3 server, or `None` (after saying why) when its variables are not set; under
/// `CI` a missing server fails the test.
fn s3(test: &str) -> Option<S3> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let vars = (
        var("ZSNAP_TEST_S3_ENDPOINT"),
        var("ZSNAP_TEST_S3_REGION"),
        var("ZSNAP_TEST_S3_BUCKET"),
        var("ZSNAP_TEST_S3_ACCESS_KEY_ID"),
        var("ZSNAP_TEST_S3_SECRET_ACCESS_KEY"),
    );
    let (Some(endpoint), Some(region), Some(bucket), Some(key_id), Some(secret)) = vars else {
        assert!(
            !in_ci(),
            "CI is set but ZSNAP_TEST_S3_* are not: the S3 test server did not start \
             (`. \"$(testbed/s3/start.sh)\"`), and this scenario must not be skipped in CI"
        );
        e2e::skip::skipped(
            test,
            "ZSNAP_TEST_S3_ENDPOINT etc. are not set. To run it: \
             `. \"$(testbed/s3/start.sh)\"`, then `cargo test -p zsnap-cli --test e2e_backup_real`",
        );
        return None;
    };
    Some(S3 {
        endpoint,
        region,
        bucket,
        key_id,
        secret,
    })
}

/// Where the backups go, and how `zsnap` reaches it.
enum Store {
    /// `dir:PATH` on this machine.
    Dir(std::path::PathBuf),
    /// `s3://BUCKET/PREFIX` on the test server.
    S3 { server: S3, prefix: String },
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::Dir(p) => format!("dir:{}", p.display()),
            Store::S3 { server, prefix } => format!("s3://{}/{prefix}", server.bucket),
        }
    }
}

/// `zsnap` on this machine against the guest over ssh, with a config in a temporary
/// directory (its `[paths]`, and the testbed's ssh client config).
struct Host {
    dir: tempfile::TempDir,
    backend: String,
    store: Store,
}

impl Host {
    fn new(g: &Guest, dataset: &str, store: impl FnOnce(&Path) -> Store) -> Host {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The config needs a dataset and a policy; the backups here do not use them.
        let config = format!(
            "[paths]\naudit_log = \"audit.jsonl\"\njournal_dir = \"journal\"\n\
             lock_file = \"zsnap.lock\"\nssh_config = {:?}\n\n\
             [policies.p]\nkeep_last = 1\n\n\
             [[datasets]]\nroot = {dataset:?}\npolicy = \"p\"\n",
            g.ssh_config.display().to_string()
        );
        std::fs::write(dir.path().join("zsnap.toml"), config).expect("write the config");
        let store = store(dir.path());
        Host {
            dir,
            backend: format!("ssh://root@{}", g.host),
            store,
        }
    }

    /// Runs `zsnap ARGS` here; `--to`/`--from` STORE and the S3 flags are added where
    /// an argument is `@store`.
    fn zsnap(&self, args: &[&str]) -> Run {
        let url = self.store.url();
        let mut c = Command::new(env!("CARGO_BIN_EXE_zsnap"));
        c.current_dir(self.dir.path())
            .args(["--config", "zsnap.toml", "--backend", &self.backend]);
        for a in args {
            c.arg(if *a == "@store" { url.as_str() } else { a });
        }
        if let Store::S3 { server, .. } = &self.store {
            c.args([
                "--s3-endpoint",
                &server.endpoint,
                "--s3-region",
                &server.region,
                "--s3-allow-http",
            ])
            .env("AWS_ACCESS_KEY_ID", &server.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE");
        }
        let out = c.output().expect("zsnap starts");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, what: &str, args: &[&str]) -> Run {
        let r = self.zsnap(args);
        r.assert_ok(&format!("{what} (zsnap {})", args.join(" ")));
        r
    }
}

/// `sha256sum` of every file below `dir` in the guest, as `hash  ./relative-path` lines.
fn tree_hashes(g: &Guest, dir: &str) -> String {
    g.ok(&format!(
        "cd {} && find . -type f | sort | xargs sha256sum",
        quote(dir)
    ))
}

/// Takes `dataset@name` once the guest's clock has passed the previous snapshot's
/// second (`creation` has whole seconds, and `--at` must tell them apart); returns its
/// `creation` as RFC 3339.
fn snapshot(g: &Guest, dataset: &str, name: &str, after: Option<i64>) -> (i64, String) {
    let snap = format!("{dataset}@{name}");
    let wait = after.map_or(String::new(), |t| {
        format!("while [ \"$(date +%s)\" -le {t} ]; do sleep 0.2; done\n")
    });
    let out = g.ok(&format!(
        "{wait}sync && zfs snapshot {s} && zfs get -Hp -o value creation {s}",
        s = quote(&snap)
    ));
    let secs: i64 = out
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("creation of {snap}: {out:?}: {e}"));
    let rfc = Utc
        .timestamp_opt(secs, 0)
        .single()
        .expect("a valid time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    (secs, rfc)
}

/// The snapshots of `dataset` (names after `@`), oldest first.
fn snapshots(g: &Guest, dataset: &str) -> Vec<String> {
    g.ok(&format!(
        "zfs list -H -o name -s createtxg -t snapshot -d 1 {}",
        quote(dataset)
    ))
    .lines()
    .filter_map(|l| l.split_once('@').map(|(_, n)| n.to_owned()))
    .collect()
}

/// Whether `dataset` exists in the guest.
fn exists(g: &Guest, dataset: &str) -> bool {
    g.sh(&format!("zfs list -H -o name {}", quote(dataset)))
        .status
        .success()
}

/// Mounts `dataset` unless it is mounted.
fn mount(g: &Guest, dataset: &str) {
    let d = quote(dataset);
    g.ok(&format!(
        "[ \"$(zfs get -H -o value mounted {d})\" = yes ] || zfs mount {d}"
    ));
}

/// What the scenario leaves for its store-specific checks.
struct Done {
    /// The backups' ids (stream keys), s1, s2, s3.
    ids: Vec<String>,
    /// `creation` of s2, RFC 3339.
    s2_at: String,
    /// The files' hashes at s2.
    s2_hashes: String,
}

/// Backs up s1 (full), s2 and s3 (incrementals) of `ds`, checks the listing and
/// verification, destroys `ds`, restores it to s2 into `restored` and compares, then
/// restores again (nothing to receive).
fn back_up_destroy_restore(
    g: &Guest,
    host: &Host,
    ds: &str,
    restored: &str,
    extra: &[&str],
) -> Done {
    let mnt = format!("/{ds}");
    let m = quote(&mnt);
    g.ok(&format!(
        "zfs create {} && dd if=/dev/urandom of={m}/big bs=1M count=4 2>/dev/null && \
         mkdir {m}/sub && echo 'first version' > {m}/sub/notes.txt",
        quote(ds)
    ));
    let backup = |snap: &str, incremental: bool| {
        let mut args = vec!["backup", ds, "--to", "@store", "--snapshot", snap];
        if incremental {
            args.push("--auto-incremental");
        }
        args.extend_from_slice(extra);
        let r = host.ok(&format!("backup of {snap}"), &args);
        assert!(
            r.stdout.contains(&format!("_{snap}.")) && r.stdout.contains(": ok"),
            "backup of {snap} names its stream and says ok: {r:?}"
        );
    };
    // A store is made once: before `backups init` nothing uses it (a directory
    // store's directory is not even created).
    let refused = host.zsnap(&["backup", ds, "--to", "@store", "--snapshot", "s0"]);
    assert!(
        refused.code == Some(1) && refused.stderr.contains("not an initialised zsnap store"),
        "a backup to a store never initialised is refused: {refused:?}"
    );
    if let Store::Dir(root) = &host.store {
        assert!(
            !root.exists(),
            "no directory made for an uninitialised store"
        );
    }
    host.ok("backups init", &["backups", "init", "@store"]);
    let (t1, _) = snapshot(g, ds, "s1", None);
    backup("s1", false);

    g.ok(&format!(
        "echo 'second version' >> {m}/sub/notes.txt && \
         dd if=/dev/urandom of={m}/big bs=1M count=1 seek=1 conv=notrunc 2>/dev/null && \
         dd if=/dev/urandom of={m}/added bs=1M count=2 2>/dev/null"
    ));
    let (t2, s2_at) = snapshot(g, ds, "s2", Some(t1));
    let s2_hashes = tree_hashes(g, &mnt);
    assert_eq!(
        s2_hashes.lines().count(),
        3,
        "big, added, sub/notes.txt at s2:\n{s2_hashes}"
    );
    backup("s2", true);

    g.ok(&format!(
        "rm {m}/added && echo 'third version' > {m}/sub/notes.txt && \
         dd if=/dev/urandom of={m}/big bs=1M count=4 2>/dev/null"
    ));
    snapshot(g, ds, "s3", Some(t2));
    assert_ne!(tree_hashes(g, &mnt), s2_hashes, "s3 differs from s2");
    backup("s3", true);

    // Three complete backups, one full and two incrementals chained.
    let list = host.ok(
        "backups list",
        &["--json", "backups", "list", "--from", "@store"],
    );
    let rows = list.json();
    let rows = rows
        .as_array()
        .unwrap_or_else(|| panic!("backups list --json is an array: {}", list.stdout));
    let mut rows: Vec<&Value> = rows.iter().filter(|r| r["dataset"] == ds).collect();
    rows.sort_by_key(|r| r["chain_len"].as_u64());
    let summary: Vec<(String, String, String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["snapshot"].as_str().unwrap_or_default().to_owned(),
                r["state"]["state"].as_str().unwrap_or_default().to_owned(),
                r["link"]["link"].as_str().unwrap_or_default().to_owned(),
                r["chain_len"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    let row = |s: &str, l: &str, n| (s.to_owned(), "complete".to_owned(), l.to_owned(), n);
    assert_eq!(
        summary,
        [
            row("s1", "full", 1),
            row("s2", "parent", 2),
            row("s3", "parent", 3)
        ],
        "backups list --json:\n{}",
        list.stdout
    );
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(rows[1]["link"]["id"], ids[0].as_str(), "s2 follows s1");
    assert_eq!(rows[2]["link"]["id"], ids[1].as_str(), "s3 follows s2");
    assert_eq!(rows[0]["sidecar"]["kind"], "full");
    assert_eq!(rows[1]["sidecar"]["parent"]["snapshot"], "s1");
    assert_eq!(rows[2]["sidecar"]["parent"]["snapshot"], "s2");
    assert_eq!(rows[1]["created"], s2_at.as_str(), "s2's creation time");

    let verify = host.ok("backups verify", &["backups", "verify", "--from", "@store"]);
    eprintln!("backups verify: {}", verify.stdout.trim());

    // The source is gone; the store brings it back as it was at s2.
    g.ok(&format!("zfs destroy -r {}", quote(ds)));
    assert!(!exists(g, ds), "{ds} destroyed");
    let restore = [
        "restore", "--from", "@store", ds, "--at", &s2_at, "--to", restored,
    ];
    let r = host.ok("restore to s2", &restore);
    assert!(
        r.stdout.contains(&format!("received {}", ids[0]))
            && r.stdout.contains(&format!("received {}", ids[1]))
            && !r.stdout.contains(&ids[2]),
        "the restore receives s1 and s2, not s3: {r:?}"
    );
    // Received unmounted (-u) and without taking a mountpoint from the stream.
    let restored_prop = |p: &str| {
        g.ok(&format!(
            "zfs get -H -o value,source {p} {}",
            quote(restored)
        ))
        .trim()
        .to_owned()
    };
    assert_eq!(
        restored_prop("mounted"),
        "no\t-",
        "a restore leaves it unmounted"
    );
    assert!(
        !restored_prop("mountpoint").ends_with("\treceived"),
        "the mountpoint is not taken from the stream"
    );
    mount(g, restored);
    assert_eq!(
        tree_hashes(g, &format!("/{restored}")),
        s2_hashes,
        "the restored files are the ones at s2, byte for byte"
    );
    assert_eq!(snapshots(g, restored), ["s1", "s2"]);

    // Again: the target already holds s2.
    let again = host.ok("the same restore again", &restore);
    assert!(
        again.stdout.contains("nothing to receive") && !again.stdout.contains("received "),
        "a repeated restore receives nothing: {again:?}"
    );
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&restore);
    let again = host.ok("the same restore again, --json", &json_args);
    assert_eq!(again.json()["received"], Value::Array(vec![]), "{again:?}");
    assert_eq!(snapshots(g, restored), ["s1", "s2"]);

    Done {
        ids,
        s2_at,
        s2_hashes,
    }
}

#[test]
fn dir_store_backup_destroy_restore_and_damage() {
    let Some(g) = guest("dir_store_backup_destroy_restore_and_damage") else {
        return;
    };
    let s = Scenario::new(g, "backup-dir", "");
    let ds = format!("{}/data", s.src);
    let restored = format!("{}/restored", s.src);
    let host = Host::new(g, &ds, |d| Store::Dir(d.join("store")));
    let done = back_up_destroy_restore(g, &host, &ds, &restored, &["--verify"]);

    // Damage s1's stream in the middle of the file.
    let Store::Dir(root) = &host.store else {
        unreachable!("a directory store")
    };
    let path = root.join(&done.ids[0]);
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write the damaged stream");

    let verify = host.zsnap(&["backups", "verify", "--from", "@store"]);
    assert!(
        verify.code.is_some_and(|c| c != 0),
        "backups verify of a damaged store fails: {verify:?}"
    );
    assert!(
        format!("{}{}", verify.stdout, verify.stderr).contains(&done.ids[0]),
        "backups verify names the damaged stream {}: {verify:?}",
        done.ids[0]
    );
    eprintln!("backups verify of the damaged store: {verify:?}");

    let again = format!("{}/restored-again", s.src);
    let r = host.zsnap(&[
        "restore",
        "--from",
        "@store",
        &ds,
        "--at",
        &done.s2_at,
        "--to",
        &again,
    ]);
    assert!(
        r.code.is_some_and(|c| c != 0),
        "a restore through a damaged stream fails: {r:?}"
    );
    assert!(
        !exists(g, &again),
        "a restore that fails its checks creates no target ({again}): {r:?}"
    );
    eprintln!("restore through the damaged stream: {r:?}");
    // The first restore is untouched.
    assert_eq!(tree_hashes(g, &format!("/{restored}")), done.s2_hashes);
    s.done();
}

#[test]
fn s3_store_backup_destroy_restore_zstd() {
    let Some(server) = s3("s3_store_backup_destroy_restore_zstd") else {
        return;
    };
    let Some(g) = guest("s3_store_backup_destroy_restore_zstd") else {
        return;
    };
    let s = Scenario::new(g, "backup-s3", "");
    let ds = format!("{}/data", s.src);
    let restored = format!("{}/restored", s.src);
    let prefix = format!("e2e-{}", s.id);
    let host = Host::new(g, &ds, |_| Store::S3 { server, prefix });
    let done = back_up_destroy_restore(g, &host, &ds, &restored, &["--compress", "zstd"]);
    assert!(
        done.ids.iter().all(|id| id.ends_with(".zst")),
        "zstd streams are named so: {:?}",
        done.ids
    );
    let list = host.ok(
        "backups list",
        &["--json", "backups", "list", "--from", "@store"],
    );
    let json = list.json();
    for r in json.as_array().into_iter().flatten() {
        assert_eq!(r["sidecar"]["compression"], "zstd", "{r}");
    }
    s.done();
}

#[test]
fn encrypted_source_is_backed_up_raw_and_restores_encrypted() {
    let Some(g) = guest("encrypted_source_is_backed_up_raw_and_restores_encrypted") else {
        return;
    };
    let s = Scenario::new(g, "backup-enc", "");
    let key = format!("/root/k-{}", s.id);
    let ds = format!("{}/secret", s.src);
    let restored = format!("{}/restored", s.src);
    g.ok(&format!(
        "od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > {k} && \
         zfs create -o encryption=aes-256-gcm -o keyformat=hex -o keylocation=file://{k} {d}",
        k = quote(&key),
        d = quote(&ds)
    ));
    // A plaintext marker: a stream that is not raw carries it in the clear.
    let marker = format!("zsnap-plaintext-marker-{}", s.id);
    g.ok(&format!(
        "for i in $(seq 1 2000); do echo {m}; done > /{d}/marker.txt && \
         dd if=/dev/urandom of=/{d}/blob bs=64k count=16 status=none",
        m = quote(&marker),
        d = ds
    ));
    let (t1, _) = snapshot(g, &ds, "s1", None);
    let hashes = tree_hashes(g, &format!("/{ds}"));
    let host = Host::new(g, &ds, |d| Store::Dir(d.join("store")));
    host.ok("backups init", &["backups", "init", "@store"]);
    host.ok(
        "backup",
        &["backup", &ds, "--to", "@store", "--snapshot", "s1"],
    );
    g.ok(&format!("echo more >> /{ds}/marker.txt"));
    snapshot(g, &ds, "s2", Some(t1));
    host.ok(
        "incremental backup",
        &[
            "backup",
            &ds,
            "--to",
            "@store",
            "--snapshot",
            "s2",
            "--auto-incremental",
        ],
    );

    let list = host.ok(
        "backups list",
        &["--json", "backups", "list", "--from", "@store"],
    );
    let rows = list.json();
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let Store::Dir(root) = &host.store else {
        unreachable!("a directory store")
    };
    for r in rows {
        assert_eq!(
            r["sidecar"]["raw"], true,
            "an encrypted source is sent raw: {r}"
        );
        let id = r["id"].as_str().expect("an id");
        let bytes = std::fs::read(root.join(id)).expect("the stream object");
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "the stored stream {id} holds the plaintext: it is not encrypted at rest"
        );
    }

    // Restore s1 (the key stays unloaded: the backup restores encrypted), then load
    // the key and compare the files.
    host.ok(
        "restore",
        &[
            "restore",
            "--from",
            "@store",
            &ds,
            "--snapshot",
            "s1",
            "--to",
            &restored,
        ],
    );
    let prop = |p: &str| {
        g.ok(&format!("zfs get -H -o value {p} {}", quote(&restored)))
            .trim()
            .to_owned()
    };
    assert_eq!(prop("encryption"), "aes-256-gcm");
    assert_eq!(prop("keystatus"), "unavailable");
    assert_eq!(prop("encryptionroot"), restored);
    assert_eq!(snapshots(g, &restored), ["s1"]);
    g.ok(&format!(
        "zfs load-key -L file://{k} {r}",
        k = quote(&key),
        r = quote(&restored)
    ));
    mount(g, &restored);
    assert_eq!(tree_hashes(g, &format!("/{restored}")), hashes);

    // The same backup restored to a host named in --to (ssh://), with zsnap's own
    // backend left local: only the target's host runs zfs.
    let elsewhere = format!("{}/elsewhere", s.src);
    let out = Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .current_dir(host.dir.path())
        .args([
            "--config",
            "zsnap.toml",
            "--backend",
            "local",
            "restore",
            "--from",
        ])
        .arg(host.store.url())
        .args([ds.as_str(), "--snapshot", "s2", "--to"])
        .arg(format!("ssh://root@{}/{elsewhere}", g.host))
        .output()
        .expect("zsnap starts");
    assert!(
        out.status.success(),
        "restore --to ssh://…: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshots(g, &elsewhere), ["s1", "s2"]);
    g.ok(&format!("rm -f {}", quote(&key)));
    s.done();
}
