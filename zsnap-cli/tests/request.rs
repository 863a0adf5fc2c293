//! The one conversion of the arguments into typed requests: what each flag becomes, and
//! the usage errors found there, before anything runs.
use std::path::PathBuf;

use chrono::DateTime;
use clap::Parser as _;
use zsnap_cli::args::Args;
use zsnap_cli::failure::Failure;
use zsnap_cli::request::*;
use zsnap_core::backup::RestoreTarget;
use zsnap_core::config::Host;
use zsnap_core::duration::Span;
use zsnap_exec::job::Job;

fn req(argv: &[&str]) -> Result<Request, Failure> {
    let args = Args::try_parse_from(std::iter::once("zsnap").chain(argv.iter().copied()))
        .expect("clap accepts the arguments");
    Request::from_args(args, || {
        DateTime::from_timestamp(1_795_000_000, 0).expect("a valid instant")
    })
}

#[test]
fn backends() {
    assert_eq!(req(&["status"]).unwrap().backend, BackendSpec::Local);
    assert_eq!(
        req(&["--backend", "fake:/tmp/s.json", "status"])
            .unwrap()
            .backend,
        BackendSpec::Fake(PathBuf::from("/tmp/s.json"))
    );
    let ssh = req(&["--backend", "ssh://root@nas:2222", "status"]).unwrap();
    assert_eq!(
        ssh.backend,
        BackendSpec::Ssh("ssh://root@nas:2222".parse().unwrap())
    );
    for bad in ["fake:", "nfs://x", "ssh://root@nas/pool"] {
        let f = req(&["--backend", bad, "status"]).unwrap_err();
        assert_eq!(f.status, zsnap_cli::exit::USAGE, "{bad}");
    }
}

#[test]
fn clock_flags_and_dry_runs() {
    let r = req(&["run"]).unwrap();
    assert_eq!(r.now.timestamp(), 1_795_000_000);
    assert!(!r.now_given);
    let r = req(&["--now", "2026-11-23T15:00:00+01:00", "run"]).unwrap();
    assert_eq!(r.now.to_rfc3339(), "2026-11-23T14:00:00+00:00");
    assert!(r.now_given);
    assert_eq!(
        r.command,
        Command::Job {
            job: Job::Run,
            dry_run: false
        }
    );
    assert_eq!(
        req(&["--now", "yesterday", "run"]).unwrap_err().status,
        zsnap_cli::exit::USAGE
    );
    // A saved listing makes every job a dry run; `plan` always is one.
    let r = req(&["--inventory", "l.txt", "prune"]).unwrap();
    assert_eq!(
        r.command,
        Command::Job {
            job: Job::Prune,
            dry_run: true
        }
    );
    let r = req(&["plan", "replicate"]).unwrap();
    assert_eq!(
        r.command,
        Command::Job {
            job: Job::Replicate { targets: vec![] },
            dry_run: true
        }
    );
    assert_eq!(
        req(&["plan", "--print-list-command"]).unwrap().command,
        Command::PrintListCommand
    );
    assert_eq!(req(&["-q", "status"]).unwrap().verbosity, Verbosity::Quiet);
    assert_eq!(
        req(&["-vv", "status"]).unwrap().verbosity,
        Verbosity::Verbose(2)
    );
}

#[test]
fn simulate_and_labels() {
    let r = req(&["simulate", "--days", "7", "--step", "1h"]).unwrap();
    assert_eq!(
        r.command,
        Command::Simulate {
            days: 7,
            step: Span::from_secs(3600)
        }
    );
    assert_eq!(
        req(&["simulate", "--days", "0"]).unwrap_err().status,
        zsnap_cli::exit::USAGE
    );
    assert_eq!(
        req(&["simulate", "--days", "1", "--step", "30s"])
            .unwrap_err()
            .status,
        zsnap_cli::exit::USAGE
    );
    let r = req(&["snapshot", "--label", "pre-upgrade", "-n"]).unwrap();
    assert!(matches!(
        r.command,
        Command::Job {
            job: Job::Snapshot {
                label: Some(_),
                expire_in: None
            },
            dry_run: true
        }
    ));
    let r = req(&["snapshot", "--label", "pre-upgrade", "--expire-in", "1d12h"]).unwrap();
    assert!(matches!(
        r.command,
        Command::Job {
            job: Job::Snapshot {
                label: Some(_),
                expire_in: Some(s)
            },
            dry_run: false
        } if s == Span::from_secs(36 * 3600)
    ));
    // A span zsnap cannot write as a time, zero, or no span at all.
    for bad in ["0s", "30", "1y", "99999999w"] {
        let f = req(&["snapshot", "--label", "x", "--expire-in", bad]).unwrap_err();
        assert_eq!(f.status, zsnap_cli::exit::USAGE, "{bad}");
    }
    // Without --label, clap refuses it.
    assert!(Args::try_parse_from(["zsnap", "snapshot", "--expire-in", "2h"]).is_err());
    assert_eq!(
        req(&["snapshot", "--label", "a_b"]).unwrap_err().status,
        zsnap_cli::exit::USAGE
    );
}

#[test]
fn backup_commands_are_parsed_at_the_edge() {
    let r = req(&[
        "backup",
        "tank/home",
        "tank/db",
        "--to",
        "dir:/srv/backups",
        "--since",
        "tank/db@a",
        "--compress",
        "zstd",
    ]);
    // --since names tank/db's snapshot: refused for tank/home.
    assert_eq!(r.unwrap_err().status, zsnap_cli::exit::USAGE);
    let r = req(&[
        "backup",
        "tank/home",
        "tank/db",
        "--to",
        "dir:/srv/backups",
        "--since",
        "a",
    ]);
    let Command::Backup(b) = r.unwrap().command else {
        panic!("a backup")
    };
    assert_eq!(b.store.url.to_string(), "dir:/srv/backups");
    let datasets: Vec<String> = b.requests.iter().map(|r| r.dataset.to_string()).collect();
    assert_eq!(datasets, ["tank/home", "tank/db"]);
    assert!(b.requests.iter().all(|r| r.store == b.store.url));
    for bad in [
        &["backup", "tank/home", "--to", "dir:/x", "--compress", "lz4"][..],
        &["backup", "tank/home", "--to", "dir:relative"],
        &["backup", "/tank", "--to", "dir:/x"],
        &[
            "backups",
            "list",
            "--from",
            "dir:/x",
            "--since",
            "yesterday",
        ],
        &["backups", "prune", "--from", "dir:/x", "--keep", "most"],
        &["backups", "delete", "--from", "dir:/x", "not an id"],
        &[
            "restore",
            "tank/home",
            "--from",
            "dir:/x",
            "--to",
            "ssh://nas",
        ],
    ] {
        assert_eq!(
            req(bad).unwrap_err().status,
            zsnap_cli::exit::USAGE,
            "{bad:?}"
        );
    }
    let r = req(&["backups", "prune", "--from", "dir:/x", "--keep", "daily 14"]).unwrap();
    assert!(matches!(
        r.command,
        Command::Backups(BackupsCommand::Prune { ref keep, dry_run: false, .. })
            if keep.rules.len() == 1
    ));
    let r = req(&[
        "restore",
        "tank/home",
        "--from",
        "dir:/x",
        "--to",
        "ssh://root@nas/pool/home",
    ]);
    let Command::Restore(c) = r.unwrap().command else {
        panic!("a restore")
    };
    assert_eq!(c.point, RestoreTarget::Latest);
    assert!(matches!(
        c.to,
        RestoreTo::Dataset { host: Host::Ssh { .. }, ref dataset } if dataset.as_str() == "pool/home"
    ));
    let r = req(&[
        "restore",
        "tank/home",
        "--from",
        "dir:/x",
        "--save",
        "s.zfs",
        "--snapshot",
        "a",
    ]);
    let Command::Restore(c) = r.unwrap().command else {
        panic!("a restore")
    };
    assert_eq!(c.to, RestoreTo::Save(PathBuf::from("s.zfs")));
    assert!(matches!(c.point, RestoreTarget::Snapshot(ref s) if s.as_str() == "a"));
}
