//! End-to-end tests of `zsnap backup`, `zsnap backups …`, `zsnap restore` and the
//! scheduled backups of `zsnap run`, on the fake backend (its state persisted in a
//! temporary directory between invocations) and a `dir:` store in the same directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The single-host example, with its paths moved next to the config (relative paths
/// are resolved against the config's directory).
fn example_config() -> String {
    include_str!("../../examples/single-host.toml")
        .replace("\"/var/log/zsnap/audit.jsonl\"", "\"audit.jsonl\"")
        .replace("\"/var/lib/zsnap/journal\"", "\"journal\"")
        .replace("\"/run/zsnap.lock\"", "\"zsnap.lock\"")
}

const T0: &str = "2026-11-23T09:00:00Z";
const T1: &str = "2026-11-23T10:00:00Z";
const T2: &str = "2026-11-23T12:00:00Z";
const BETWEEN: &str = "2026-11-23T11:00:00Z";

/// What one invocation printed, and its exit status.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn from(o: Output, env: &Env) -> Out {
        Out {
            code: o.status.code().expect("zsnap exited normally"),
            stdout: env.redact(&String::from_utf8(o.stdout).unwrap()),
            stderr: env.redact(&String::from_utf8(o.stderr).unwrap()),
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(config: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("zsnap.toml"), config).unwrap();
        Env { dir }
    }

    /// A fake pool with tank/home and tank/projects, each with one hourly snapshot.
    fn with_pool() -> Env {
        let env = Env::new(&example_config());
        env.ok(&["--now", T0, "snapshot", "--label", "hourly"]);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("st.json")
    }

    /// `dir:` URL of a store in the temporary directory, initialised (`backups init`)
    /// if it was not.
    fn store(&self, name: &str) -> String {
        let url = self.raw_store(name);
        if !self.path(name).join("zsnap-store.json").exists() {
            let out = self.ok(&["backups", "init", &url]);
            assert!(out.starts_with("initialised the store dir:"), "{out}");
        }
        url
    }

    /// `dir:` URL of a place in the temporary directory, not initialised.
    fn raw_store(&self, name: &str) -> String {
        format!("dir:{}", self.path(name).display())
    }

    /// The temporary directory replaced by `[TMP]`.
    fn redact(&self, s: &str) -> String {
        s.replace(&self.dir.path().display().to_string(), "[TMP]")
    }

    /// `zsnap --config … --backend fake:… ARGS`.
    fn zsnap(&self, args: &[&str]) -> Out {
        let o = Command::new(env!("CARGO_BIN_EXE_zsnap"))
            .arg("--config")
            .arg(self.path("zsnap.toml"))
            .arg("--backend")
            .arg(format!("fake:{}", self.state().display()))
            .args(args)
            .output()
            .unwrap();
        Out::from(o, self)
    }

    /// Runs and expects `code`; returns the output.
    fn expect(&self, code: i32, args: &[&str]) -> Out {
        let o = self.zsnap(args);
        assert_eq!(
            o.code, code,
            "zsnap {args:?} exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            o.code, o.stdout, o.stderr
        );
        o
    }

    fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args).stdout
    }

    /// The fake pool's state, as saved.
    fn fake(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.state()).unwrap()).unwrap()
    }

    /// (name, guid) of every snapshot of `dataset` in the fake pool, or `None` when
    /// the dataset does not exist.
    fn snapshots(&self, dataset: &str) -> Option<BTreeSet<(String, u64)>> {
        let state = self.fake();
        let d = state["datasets"].get(dataset)?;
        Some(
            d["snapshots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_owned(),
                        s["guid"].as_u64().unwrap(),
                    )
                })
                .collect(),
        )
    }

    fn guids(&self, dataset: &str, prefix: &str) -> BTreeSet<u64> {
        self.snapshots(dataset)
            .unwrap_or_else(|| panic!("{dataset} does not exist in the fake pool"))
            .into_iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, g)| g)
            .collect()
    }

    /// `backups list --json` of a store.
    fn list(&self, store: &str) -> Vec<serde_json::Value> {
        let text = self.ok(&["backups", "list", "--from", store, "--json"]);
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The files of a store directory, relative to it, sorted (not its marker).
    fn files(&self, store: &str) -> Vec<String> {
        let root = self.path(store);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.retain(|f| f != "zsnap-store.json");
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// A full backup at T1 (zstd, verified) and an incremental at T2 of tank/home.
fn two_backups(env: &Env) -> String {
    let store = env.store("store");
    let full = env.ok(&[
        "--now",
        T1,
        "backup",
        "tank/home",
        "--to",
        &store,
        "--compress",
        "zstd",
        "--verify",
    ]);
    // (A helper shared by several tests: insta allows an inline snapshot only once.)
    assert_eq!(
        full,
        "tank/home → dir:[TMP]/store/tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst: ok\n"
    );
    let inc = env.ok(&[
        "--now",
        T2,
        "backup",
        "tank/home",
        "--to",
        &store,
        "--auto-incremental",
    ]);
    assert_eq!(
        inc,
        "tank/home → dir:[TMP]/store/tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs: ok\n"
    );
    store
}

#[test]
fn back_up_list_verify_and_restore() {
    let env = Env::with_pool();
    let store = two_backups(&env);

    let table = env.ok(&["backups", "list", "--from", &store]);
    insta::assert_snapshot!(table, @"
    DATASET    SNAPSHOT                       KIND                                    SIZE   STATE     RESTORE    ID
    tank/home  zsnap_backup_20261123T100000Z  full                                    65802  complete  full       tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst
    tank/home  zsnap_backup_20261123T120000Z  inc from zsnap_backup_20261123T100000Z  16657  complete  2 streams  tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs
    ");

    let entries = env.list(&store);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    for e in &entries {
        assert_eq!(e["state"]["state"], "complete", "{e:#}");
        assert_eq!(e["dataset"], "tank/home");
    }
    assert_eq!(entries[0]["link"]["link"], "full");
    assert_eq!(entries[0]["sidecar"]["compression"], "zstd");
    assert_eq!(entries[1]["link"]["link"], "parent");
    assert_eq!(entries[1]["link"]["id"], entries[0]["id"]);
    assert_eq!(entries[1]["chain_len"], 2);
    assert_eq!(
        entries[1]["sidecar"]["parent"]["guid"],
        entries[0]["sidecar"]["guid"]
    );

    // Every change the backups made is in the audit log: the snapshot each took, the
    // stream, the bookmark and the release of the older bookmark.
    let audit = std::fs::read_to_string(env.path("audit.jsonl")).expect("the audit log");
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .filter(|l: &serde_json::Value| l["command"] == "backup")
        .collect();
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["result"], "done", "{l}");
            assert!(
                l["phase"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("backup to dir:")),
                "{l}"
            );
            l["step"]["step"].as_str().unwrap_or("?").to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "snapshot",
            "backup",
            "bookmark",
            "snapshot",
            "backup",
            "bookmark",
            "destroy_bookmark"
        ],
        "{audit}"
    );

    let verified = env.ok(&["backups", "verify", "--from", &store]);
    assert!(
        verified.starts_with("2 backup(s) checked"),
        "verify said: {verified}"
    );
    assert!(verified.contains("every backup matches its sidecar"));

    // A restore of the newest backup receives both streams: the target holds exactly
    // the backed-up snapshots, with their guids.
    let source = env.guids("tank/home", "zsnap_backup_");
    assert_eq!(source.len(), 2);
    let restored = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/restored",
    ]);
    insta::assert_snapshot!(restored, @"
    received tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst
    received tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs
    tank/restored is at zsnap_backup_20261123T120000Z (2 stream(s), 82450 bytes received)
    tank/restored is not mounted (received with -u); mount it with: zfs mount tank/restored
    ");
    assert_eq!(env.guids("tank/restored", ""), source);

    // Again: nothing to receive, nothing changes.
    let again = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/restored",
    ]);
    assert!(again.contains("nothing to receive"), "{again}");
    assert!(again.contains("(0 stream(s), 0 bytes received)"), "{again}");
    assert_eq!(env.guids("tank/restored", ""), source);

    // --at between the two: only the full one.
    let first = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/early",
        "--at",
        BETWEEN,
    ]);
    assert!(first.contains("(1 stream(s),"), "{first}");
    let first_guid: u64 = entries[0]["sidecar"]["guid"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(env.guids("tank/early", ""), BTreeSet::from([first_guid]));
}

#[test]
fn bad_stores_and_flags_are_usage_errors() {
    let env = Env::with_pool();
    let store = env.store("store");
    let backup = |extra: &[&str]| {
        let mut args = vec!["--now", T1, "backup", "tank/home"];
        args.extend_from_slice(extra);
        env.expect(2, &args).stderr
    };
    insta::assert_snapshot!(backup(&["--to", "dir:relative"]), @r#"error: invalid store "dir:relative": the path must be absolute (begin with '/')"#);
    insta::assert_snapshot!(backup(&["--to", "dir:/a/../b"]), @r#"error: invalid store "dir:/a/../b": the path may not contain "." or ".." components (at byte 7)"#);
    insta::assert_snapshot!(backup(&["--to", &store, "--since", "tank/projects@x"]), @r#"
    error: invalid --since
      caused by: --since "tank/projects@x" names a snapshot of tank/projects, but the backup is of tank/home; give the name of a snapshot of tank/home, without '@'
    "#);
    insta::assert_snapshot!(backup(&["--to", &store, "--compress", "lz4"]), @r#"
    error: invalid --compress
      caused by: unknown compression "lz4": expected "none" or "zstd"
    "#);
    // None of them took a snapshot or wrote to the store.
    assert!(env.guids("tank/home", "zsnap_backup_").is_empty());
    assert!(env.files("store").is_empty());
}

#[test]
fn refused_restores_change_nothing() {
    let env = Env::with_pool();
    let store = two_backups(&env);

    // No backups of tank/projects: the restore fails (exit 1, it changed nothing).
    let none = env.expect(
        1,
        &[
            "restore",
            "--from",
            &store,
            "tank/projects",
            "--to",
            "tank/x",
        ],
    );
    insta::assert_snapshot!(none.stderr, @"error: the store has no complete backup of tank/projects");
    assert!(env.snapshots("tank/x").is_none());

    // Into an existing dataset with unrelated snapshots: refused, naming it.
    let before = env.snapshots("tank/projects").unwrap();
    let existing = env.expect(
        1,
        &[
            "restore",
            "--from",
            &store,
            "tank/home",
            "--to",
            "tank/projects",
        ],
    );
    assert!(
        existing.stderr.contains("tank/projects exists"),
        "{}",
        existing.stderr
    );
    insta::assert_snapshot!(existing.stderr, @"error: tank/projects exists with 1 snapshot(s) (e.g. zsnap_hourly_20261123T090000Z) none of which this restore has; a full stream cannot overwrite it: restore into a new dataset, or destroy it first (zfs destroy -r tank/projects)");
    assert_eq!(env.snapshots("tank/projects").unwrap(), before);
}

#[test]
fn deleting_a_full_needs_with_dependents() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let entries = env.list(&store);
    let full = entries[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(env.files("store").len(), 4);

    let refused = env.zsnap(&["backups", "delete", "--from", &store, &full]);
    assert_ne!(refused.code, 0);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--with-dependents"),
        "{}",
        refused.stderr
    );
    insta::assert_snapshot!(refused.stderr, @"error: deleting tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst would leave 1 backup that could no longer be restored (tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs); delete them too with --with-dependents");
    assert_eq!(env.files("store").len(), 4);

    // -n shows the four objects and deletes none.
    let dry = env.ok(&[
        "backups",
        "delete",
        "--from",
        &store,
        &full,
        "--with-dependents",
        "-n",
    ]);
    assert_eq!(dry.lines().count(), 4, "{dry}");
    assert_eq!(env.files("store").len(), 4);

    let done = env.ok(&[
        "backups",
        "delete",
        "--from",
        &store,
        &full,
        "--with-dependents",
    ]);
    insta::assert_snapshot!(done, @"
    delete tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs (restored through tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst, which is deleted)
    delete tank%2Fhome/20261123T120000Z_zsnap_backup_20261123T120000Z.inc-from-zsnap_backup_20261123T100000Z.zfs.json (restored through tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst, which is deleted)
    delete tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst (deleted on request)
    delete tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst.json (deleted on request)
    ");
    assert!(env.files("store").is_empty(), "{:?}", env.files("store"));
    assert!(env.list(&store).is_empty());
}

#[test]
fn prune_keeps_the_newest_chain() {
    let env = Env::with_pool();
    let store = env.store("store");
    // Two chains: full + incremental, then full + incremental.
    for (now, extra) in [
        ("2026-11-23T10:00:00Z", None),
        ("2026-11-23T11:00:00Z", Some("--auto-incremental")),
        ("2026-11-23T12:00:00Z", None),
        ("2026-11-23T13:00:00Z", Some("--auto-incremental")),
    ] {
        let mut args = vec!["--now", now, "backup", "tank/home", "--to", &store];
        args.extend(extra);
        env.ok(&args);
    }
    let all = env.files("store");
    assert_eq!(all.len(), 8);

    let dry = env.ok(&[
        "--now",
        "2026-11-23T14:00:00Z",
        "backups",
        "prune",
        "--from",
        &store,
        "--keep",
        "last 1",
        "-n",
    ]);
    insta::assert_snapshot!(dry, @"
    delete tank%2Fhome/20261123T110000Z_zsnap_backup_20261123T110000Z.inc-from-zsnap_backup_20261123T100000Z.zfs (no rule keeps its snapshot and no kept backup needs it)
    delete tank%2Fhome/20261123T110000Z_zsnap_backup_20261123T110000Z.inc-from-zsnap_backup_20261123T100000Z.zfs.json (no rule keeps its snapshot and no kept backup needs it)
    delete tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs (no rule keeps its snapshot and no kept backup needs it)
    delete tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.json (no rule keeps its snapshot and no kept backup needs it)
    ");
    assert_eq!(dry.lines().count(), 4, "{dry}");
    assert_eq!(env.files("store"), all, "-n deleted something");

    let done = env.ok(&[
        "--now",
        "2026-11-23T14:00:00Z",
        "backups",
        "prune",
        "--from",
        &store,
        "--keep",
        "last 1",
    ]);
    assert_eq!(done, dry);
    let left = env.list(&store);
    let snapshots: Vec<&str> = left
        .iter()
        .map(|e| e["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(
        snapshots,
        [
            "zsnap_backup_20261123T120000Z",
            "zsnap_backup_20261123T130000Z"
        ]
    );
    assert_eq!(env.files("store").len(), 4);
    let verified = env.ok(&["backups", "verify", "--from", &store]);
    assert!(
        verified.starts_with("2 backup(s) checked"),
        "verify said: {verified}"
    );

    // Pruning again finds nothing.
    let again = env.ok(&[
        "--now",
        "2026-11-23T14:00:00Z",
        "backups",
        "prune",
        "--from",
        &store,
        "--keep",
        "last 1",
    ]);
    assert_eq!(again, "nothing to delete\n");
}

#[test]
fn a_damaged_stream_fails_verify_and_restore() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let entries = env.list(&store);
    let inc = entries[1]["id"].as_str().unwrap().to_owned();
    let file = env.path("store").join(&inc);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    let verify = env.expect(1, &["backups", "verify", "--from", &store]);
    assert!(
        verify.stdout.starts_with("1 backup(s) checked"),
        "{}",
        verify.stdout
    );
    let problem = verify
        .stdout
        .lines()
        .find(|l| l.starts_with("PROBLEM: "))
        .unwrap_or_else(|| panic!("no PROBLEM line in {}", verify.stdout));
    assert!(problem.contains(&inc), "{problem}");
    assert!(problem.contains("corrupt"), "{problem}");

    let restore = env.expect(
        1,
        &["restore", "--from", &store, "tank/home", "--to", "tank/new"],
    );
    assert!(restore.stderr.contains(&inc), "{}", restore.stderr);
    assert!(
        restore.stderr.contains("nothing was received"),
        "{}",
        restore.stderr
    );
    assert!(
        env.snapshots("tank/new").is_none(),
        "tank/new exists after a failed restore"
    );

    // The undamaged full alone still restores.
    env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/new",
        "--at",
        BETWEEN,
    ]);
    assert_eq!(env.guids("tank/new", "").len(), 1);
}

#[test]
fn run_backs_up_once_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("dir:{}", dir.path().join("store").display());
    let config = format!(
        "{}\n[backups.usb]\nsource = \"tank/home\"\nto = \"{store}\"\nevery = \"1d\"\n",
        example_config()
    );
    let env = Env { dir };
    std::fs::write(env.path("zsnap.toml"), config).unwrap();

    // Not initialised (say, the disk is not mounted): the run takes its snapshots but
    // backs nothing up, creates no directory, and says so (exit 3).
    let refused = env.expect(3, &["run", "--now", "2026-11-23T09:00:00Z"]);
    assert!(
        refused.stdout.contains("is not an initialised zsnap store"),
        "{}",
        refused.stdout
    );
    assert!(!env.path("store").exists());
    env.ok(&["backups", "init", &store]);

    let first = env.ok(&["run", "--now", "2026-11-23T10:00:00Z"]);
    assert!(
        first.contains(
            "tank/home: tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs"
        ),
        "{first}"
    );
    assert_eq!(env.list(&store).len(), 1);

    // Later the same UTC day: not due.
    let second = env.ok(&["run", "--now", "2026-11-23T20:00:00Z"]);
    let after_header = second
        .split_once("== backup usb")
        .unwrap_or_else(|| panic!("no backup header in {second}"))
        .1;
    assert!(!after_header.contains("tank/home:"), "{second}");
    assert_eq!(env.list(&store).len(), 1);

    // The next day: an incremental on the first.
    let third = env.ok(&["run", "--now", "2026-11-24T01:00:00Z"]);
    assert!(
        third.contains(".inc-from-zsnap_backup_20261123T100000Z.zfs"),
        "{third}"
    );
    let entries = env.list(&store);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[1]["sidecar"]["kind"], "incremental");
    assert_eq!(entries[1]["link"]["id"], entries[0]["id"]);
    assert_eq!(entries[1]["snapshot"], "zsnap_backup_20261124T010000Z");
    env.ok(&["backups", "verify", "--from", &store]);

    // The JSON of a run carries the backups it made.
    let fourth = env.ok(&["--json", "run", "--now", "2026-11-25T01:00:00Z"]);
    let v: serde_json::Value = serde_json::from_str(&fourth).expect("run --json is JSON");
    let stores = v["backups"]["stores"].as_array().expect("backups.stores");
    assert_eq!(stores.len(), 1, "{fourth}");
    assert_eq!(stores[0]["name"], "usb");
    let made = stores[0]["backups"].as_array().expect("backups");
    assert_eq!(made.len(), 1, "{fourth}");
    assert_eq!(made[0]["ok"], true);
    assert!(made[0]["stream"]
        .as_str()
        .is_some_and(|k| k.contains("inc-from-zsnap_backup_20261124T010000Z")));
    assert_eq!(env.list(&store).len(), 3);
}

#[test]
fn save_writes_the_stream_restore_would_receive() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    // The same full snapshot, uncompressed, in a second store: its object is the raw
    // stream.
    let plain = env.store("plain");
    env.ok(&[
        "--now",
        T2,
        "backup",
        "tank/home",
        "--to",
        &plain,
        "--snapshot",
        "zsnap_backup_20261123T100000Z",
    ]);
    let plain_entries = env.list(&plain);
    assert_eq!(plain_entries.len(), 1);
    let raw_full = std::fs::read(
        env.path("plain")
            .join(plain_entries[0]["id"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(
        raw_full.len() as u64,
        plain_entries[0]["sidecar"]["size"].as_u64().unwrap()
    );
    let state_before = std::fs::read(env.state()).unwrap();

    // The zstd full, saved: decompressed, it is the raw stream.
    let saved = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--at",
        BETWEEN,
        "--save",
        &env.path("full.zfs").display().to_string(),
    ]);
    insta::assert_snapshot!(saved, @"saved tank%2Fhome/20261123T100000Z_zsnap_backup_20261123T100000Z.full.zfs.zst (65793 bytes) as [TMP]/full.zfs");
    let full = std::fs::read(env.path("full.zfs")).unwrap();
    assert!(!full.is_empty());
    assert_eq!(full, raw_full);

    // The uncompressed incremental: the object's bytes, its sidecar's size.
    let saved = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--save",
        &env.path("inc.zfs").display().to_string(),
    ]);
    assert!(
        saved.contains("receive the 1 stream(s) before it first"),
        "{saved}"
    );
    let entries = env.list(&store);
    let inc = std::fs::read(env.path("inc.zfs")).unwrap();
    assert!(!inc.is_empty());
    assert_eq!(
        inc.len() as u64,
        entries[1]["sidecar"]["size"].as_u64().unwrap()
    );
    assert_eq!(
        inc,
        std::fs::read(env.path("store").join(entries[1]["id"].as_str().unwrap())).unwrap()
    );
    // --save receives nothing: the fake pool is unchanged.
    assert_eq!(std::fs::read(env.state()).unwrap(), state_before);
}

#[test]
fn a_backup_snapshot_is_named_by_the_datasets_policy() {
    // The policy of tank/home names its snapshots with the prefix "auto".
    let config = example_config().replacen("prefix = \"zsnap\"", "prefix = \"auto\"", 1);
    assert!(
        config.contains("prefix = \"auto\""),
        "the example sets a prefix"
    );
    let env = Env::new(&config);
    env.ok(&["--now", T0, "snapshot", "--label", "hourly"]);
    let store = env.store("store");
    let out = env.ok(&["--now", T1, "backup", "tank/home", "--to", &store]);
    assert!(
        out.contains("_auto_backup_20261123T100000Z.full.zfs"),
        "the backup's snapshot follows the policy's naming: {out}"
    );
    let entries = env.list(&store);
    assert_eq!(entries[0]["snapshot"], "auto_backup_20261123T100000Z");
}

#[test]
fn simulate_runs_the_scheduled_backups_on_in_memory_stores() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backups.toml");
    std::fs::write(&config, include_str!("../../examples/backups.toml")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zsnap"))
        .args(["--config"])
        .arg(&config)
        .args([
            "--json",
            "--now",
            "2026-11-23T00:00:00Z",
            "simulate",
            "--days",
            "20",
            "--step",
            "1h",
        ])
        .output()
        .expect("zsnap runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["errors"], serde_json::json!([]), "{stdout}");
    let backups = v["backups"].as_array().expect("backups");
    let by_name = |n: &str| {
        backups
            .iter()
            .find(|b| b["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {backups:?}"))
    };
    // Both stores back up tank/home once a day (the same snapshot: the second reuses
    // the one the first took), 20 days.
    for name in ["usb", "offsite"] {
        let b = by_name(name);
        assert_eq!(b["dataset"], "tank/home");
        assert_eq!(b["taken"], 20, "{b}");
        let kept = b["backups"].as_u64().unwrap();
        let deleted = b["deleted"].as_u64().unwrap();
        assert_eq!(kept + deleted, 20, "{b}");
        assert_eq!(b["newest"], "2026-12-12T00:00:00Z", "{b}");
    }
    // A new chain every 7 days off-site (days 0, 7, 14); one chain on the USB disk
    // (full_every = 30d).
    assert_eq!(by_name("offsite")["fulls"], 3);
    assert_eq!(by_name("usb")["fulls"], 1);
}

#[test]
fn status_and_check_watch_the_backups() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = format!("dir:{}", store_dir.display());
    let config = format!(
        "{}\n[backups.usb]\nsource = \"tank/home\"\nto = \"{store}\"\nevery = \"1d\"\n",
        example_config()
    );
    let env = Env { dir };
    std::fs::write(env.path("zsnap.toml"), config).unwrap();
    // No store yet: check says so, critically.
    let o = env.expect(2, &["check", "--now", "2026-11-23T09:00:00Z"]);
    assert!(o.stdout.contains("backup usb: cannot read"), "{}", o.stdout);

    env.ok(&["backups", "init", &store]);
    env.ok(&["run", "--now", "2026-11-23T10:00:00Z"]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "status", "--now", "2026-11-23T11:00:00Z"]))
            .expect("status --json");
    let b = &v["backups"];
    let home = b
        .as_array()
        .expect("backups")
        .iter()
        .find(|b| b["dataset"] == "tank/home")
        .unwrap_or_else(|| panic!("tank/home in {b}"));
    assert_eq!(home["restorable"], 1, "{home}");
    assert_eq!(home["newest"], "2026-11-23T10:00:00Z");
    assert_eq!(home["age_seconds"], 3600);
    let text = env.ok(&["status", "--now", "2026-11-23T11:00:00Z"]);
    assert!(text.contains("BACKUP"), "{text}");

    // Fresh, then older than two periods (warning), then four (critical); the
    // snapshots' own checks (not run meanwhile) fail too, so only the backup part of
    // the line is compared.
    let fresh = env.zsnap(&["check", "--now", "2026-11-23T11:00:00Z"]);
    assert!(!fresh.stdout.contains("backup usb"), "{}", fresh.stdout);
    let o = env.zsnap(&["check", "--now", "2026-11-26T11:00:00Z"]);
    assert!(
        o.stdout
            .contains("tank/home backup usb is 3d1h old (warn 2d)"),
        "{}",
        o.stdout
    );
    let o = env.expect(2, &["check", "--now", "2026-11-28T11:00:00Z"]);
    assert!(
        o.stdout
            .contains("tank/home backup usb is 5d1h old (crit 4d)"),
        "{}",
        o.stdout
    );
}

/// The audit log's lines as JSON.
fn audit(env: &Env) -> Vec<serde_json::Value> {
    std::fs::read_to_string(env.path("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_lost_backup_fails_verify_is_listed_and_stops_a_latest_restore() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let entries = env.list(&store);
    let newest = entries[1]["id"].as_str().unwrap().to_owned();
    // The newest stream is lost; its sidecar stays.
    std::fs::remove_file(env.path("store").join(&newest)).unwrap();

    let verify = env.expect(1, &["backups", "verify", "--from", &store]);
    assert!(
        verify
            .stdout
            .contains(&format!("PROBLEM: {newest}: MISSING")),
        "{}",
        verify.stdout
    );
    assert!(!verify.stdout.contains("every backup matches"));

    let listed = env.list(&store);
    assert_eq!(listed.len(), 2, "the lost backup is still listed");
    assert_eq!(listed[1]["id"], newest.as_str());
    assert_eq!(listed[1]["state"]["state"], "missing");
    let table = env.ok(&["backups", "list", "--from", &store]);
    assert!(table.contains("MISSING"), "{table}");

    // The latest restore does not silently restore the older point.
    let refused = env.expect(
        1,
        &[
            "restore",
            "--from",
            &store,
            "tank/home",
            "--to",
            "tank/restored",
        ],
    );
    assert!(refused.stderr.contains(&newest), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--allow-older"),
        "{}",
        refused.stderr
    );
    assert!(env.snapshots("tank/restored").is_none());
    // Asked explicitly, it does.
    let older = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/restored",
        "--allow-older",
    ]);
    assert!(older.contains("(1 stream(s),"), "{older}");
}

#[test]
fn an_interrupted_prune_is_reported_and_finished() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let entries = env.list(&store);
    let newest = entries[1]["id"].as_str().unwrap().to_owned();
    // What a prune killed between a stream and its sidecar leaves: its record, and the
    // sidecar without the stream.
    let record = env.path("store/zsnap-store.d");
    std::fs::create_dir(&record).unwrap();
    let keys = serde_json::json!({
        "format": 1,
        "started": "2026-11-23T13:00:00Z",
        "keys": [newest.clone(), format!("{newest}.json")],
    });
    std::fs::write(
        record.join("deleting-20261123T130000Z-ab.json"),
        keys.to_string(),
    )
    .unwrap();
    std::fs::remove_file(env.path("store").join(&newest)).unwrap();

    let verify = env.ok(&["backups", "verify", "--from", &store]);
    assert!(verify.contains("interrupted prune or delete"), "{verify}");
    assert_eq!(env.list(&store).len(), 1);

    let pruned = env.ok(&[
        "--now",
        "2026-11-23T14:00:00Z",
        "backups",
        "prune",
        "--from",
        &store,
        "--keep",
        "daily 14",
    ]);
    assert!(
        pruned.contains(&format!("delete {newest}.json")),
        "{pruned}"
    );
    assert_eq!(
        env.files("store").len(),
        2,
        "only the full is left: {:?}",
        env.files("store")
    );
    let verify = env.ok(&["backups", "verify", "--from", &store]);
    assert!(verify.contains("every backup matches"), "{verify}");
    // Every deletion is in the audit log.
    let lines = audit(&env);
    let deleted: Vec<&str> = lines
        .iter()
        .filter(|l| l["command"] == "backups prune")
        .map(|l| l["change"]["key"].as_str().unwrap())
        .collect();
    assert!(
        deleted.contains(&format!("{newest}.json").as_str()),
        "{lines:?}"
    );
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "says why the test checked nothing where chattr is unavailable"
)]
fn a_deletion_cut_off_half_way_exits_3_and_is_audited() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let entries = env.list(&store);
    let full = entries[0]["id"].as_str().unwrap().to_owned();
    // The full's stream cannot be removed (immutable): the incremental goes first,
    // then the deletion stops.
    let locked = env.path("store").join(&full);
    let immutable = Command::new("chattr").arg("+i").arg(&locked).status();
    if !immutable.is_ok_and(|s| s.success()) {
        eprintln!("chattr +i is not available here: the partial deletion is not tested");
        return;
    }
    let out = env.zsnap(&[
        "backups",
        "delete",
        "--from",
        &store,
        &full,
        "--with-dependents",
    ]);
    let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("2 object(s) were deleted"),
        "{}",
        out.stderr
    );
    let lines = audit(&env);
    let results: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["command"] == "backups delete")
        .map(|l| {
            (
                l["change"]["key"].as_str().unwrap(),
                l["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(results.len(), 3, "{lines:?}");
    assert_eq!(results[2], (full.as_str(), "failed"));
}

#[test]
fn restores_are_audited_and_dry_runs_change_nothing() {
    let env = Env::with_pool();
    let store = two_backups(&env);
    let dry = env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/restored",
        "-n",
    ]);
    assert!(dry.contains("would receive"), "{dry}");
    assert!(env.snapshots("tank/restored").is_none());
    assert!(audit(&env).iter().all(|l| l["command"] != "restore"));
    env.ok(&[
        "restore",
        "--from",
        &store,
        "tank/home",
        "--to",
        "tank/restored",
    ]);
    let received: Vec<serde_json::Value> = audit(&env)
        .into_iter()
        .filter(|l| l["command"] == "restore")
        .collect();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(received
        .iter()
        .all(|l| l["result"] == "done" && l["change"]["target"] == "tank/restored"));
}
