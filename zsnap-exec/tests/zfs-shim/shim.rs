//! A `zfs` look-alike for tests: runs the subset of the zfs CLI that zsnap uses on top
//! of a [`FakeZfs`] whose state lives in the JSON file named by `ZSNAP_SHIM_STATE`.
//!
//! Each invocation takes the state lock, loads the state, runs one `cmd_*` command of
//! the fake (with its injected faults), saves, and answers like `zfs`: output on
//! stdout, the fake's stderr verbatim, its exit status (a fault that kills the process
//! kills the shim with SIGKILL).
//!
//! - Run under a name ending in `zpool` (a symlink), it answers `zpool list` and
//!   `zpool status` instead, from the same state.
//! - `ZSNAP_SHIM_LOG`: append each invocation as a JSON line `{"argv": […], "lc_all": …}`.
//! - `ZSNAP_SHIM_SCRIPT`: a JSON array of scripted answers `{"command": "destroy",
//!   "skip": 0, "exit": 1, "stderr": "…", "stdout": "…"}`; the first rule whose command
//!   is the invocation's subcommand and whose `skip` is 0 answers instead of the fake and
//!   is removed (rules with `skip > 0` count down).
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool"
)]

mod state_lock;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zsnap_core::{
    DatasetName, Guid, RecvOptions, SendBase, SendSpec, ShortName, SnapshotName, SnapshotRef,
};
use zsnap_exec::backend::{PropertyTarget, ReceiveRequest, SendRequest};
use zsnap_exec::failure::{Exit, ZfsFailure};
use zsnap_exec::fake::FakeZfs;
use zsnap_exec::ZfsBackend;

use state_lock::StateLock;

#[derive(Serialize, Deserialize)]
struct Rule {
    command: String,
    #[serde(default)]
    skip: u32,
    #[serde(default)]
    exit: i32,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    stdout: String,
}

fn die(failure: &ZfsFailure) -> ! {
    eprint!("{}", failure.stderr);
    let _ = std::io::stderr().flush();
    let _ = std::io::stdout().flush();
    match failure.exit {
        Exit::Code(c) => std::process::exit(c),
        Exit::Signal(s) => {
            let _ = std::process::Command::new("kill")
                .args([format!("-{s}"), std::process::id().to_string()])
                .status();
            std::thread::sleep(std::time::Duration::from_secs(5));
            std::process::exit(128 + s)
        }
        Exit::Unknown => std::process::exit(1),
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("zfs shim: {msg}");
    std::process::exit(2)
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .unwrap_or_else(|e| usage(&format!("bad name {s:?}: {e}")))
}

fn target(s: &str) -> PropertyTarget {
    if s.contains('@') {
        PropertyTarget::Snapshot(parse(s))
    } else {
        PropertyTarget::Dataset(parse(s))
    }
}

/// Splits options (each taking a value when listed in `with_value`) from positionals;
/// `--` ends the options.
fn getopt(args: &[String], with_value: &str) -> (Vec<(char, Option<String>)>, Vec<String>) {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            pos.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a.len() > 1 && a.starts_with('-') {
            let mut chars = a[1..].chars();
            while let Some(c) = chars.next() {
                if with_value.contains(c) {
                    let rest: String = chars.collect();
                    let v = if rest.is_empty() {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .unwrap_or_else(|| usage("missing option value"))
                    } else {
                        rest
                    };
                    opts.push((c, Some(v)));
                    break;
                }
                opts.push((c, None));
            }
        } else {
            pos.push(a.clone());
        }
        i += 1;
    }
    (opts, pos)
}

fn scripted(command: &str) -> Option<Rule> {
    let path = PathBuf::from(std::env::var_os("ZSNAP_SHIM_SCRIPT")?);
    let text = std::fs::read_to_string(&path).ok()?;
    let mut rules: Vec<Rule> =
        serde_json::from_str(&text).unwrap_or_else(|e| usage(&e.to_string()));
    let i = rules.iter().position(|r| r.command == command)?;
    let fired = if rules[i].skip == 0 {
        Some(rules.remove(i))
    } else {
        rules[i].skip -= 1;
        None
    };
    std::fs::write(&path, serde_json::to_vec(&rules).expect("serializable"))
        .unwrap_or_else(|e| usage(&e.to_string()));
    fired
}

fn log(argv: &[String]) {
    if let Some(path) = std::env::var_os("ZSNAP_SHIM_LOG") {
        let line = serde_json::json!({
            "argv": argv,
            "lc_all": std::env::var("LC_ALL").ok(),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| usage(&e.to_string()));
        // One write of the whole line: a transfer's `zfs send` and `zfs recv` are two
        // shims appending at the same time, and O_APPEND keeps each write whole.
        let mut text = line.to_string();
        text.push('\n');
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| usage(&e.to_string()));
    }
}

/// Runs `f` on the loaded state and saves it, under the lock.
fn with_state<T>(path: &Path, f: impl FnOnce(&mut FakeZfs) -> T) -> T {
    let _lock = StateLock::take(path);
    let mut z = FakeZfs::load(path).unwrap_or_else(|e| usage(&e.to_string()));
    let out = f(&mut z);
    z.save(path).unwrap_or_else(|e| usage(&e.to_string()));
    out
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    log(&argv);
    let Some(command) = argv.first().cloned() else {
        usage("missing command");
    };
    let _ = std::io::stdin();
    let state_lock = PathBuf::from(
        std::env::var_os("ZSNAP_SHIM_STATE")
            .unwrap_or_else(|| usage("ZSNAP_SHIM_STATE is not set")),
    );
    let state = state_lock.as_path();
    if let Some(rule) = {
        let _lock = StateLock::take(state);
        scripted(&command)
    } {
        print!("{}", rule.stdout);
        eprint!("{}", rule.stderr);
        std::process::exit(rule.exit);
    }
    let rest = &argv[1..];
    let as_zpool = std::env::args()
        .next()
        .is_some_and(|a| a.ends_with("zpool"));
    if as_zpool {
        let result = match command.as_str() {
            "list" => with_state(state, |z| z.cmd_zpool_list()),
            "status" => with_state(state, |z| z.cmd_zpool_status()),
            other => usage(&format!("zpool {other} is not supported")),
        };
        match result {
            Ok(out) => {
                print!("{out}");
                std::process::exit(0)
            }
            Err(f) => die(&f),
        }
    }
    let result: Result<String, ZfsFailure> = match command.as_str() {
        "list" => {
            let (opts, pos) = getopt(rest, "tosd");
            let cols = opts
                .iter()
                .find(|(c, _)| *c == 'o')
                .and_then(|(_, v)| v.clone());
            let roots = || -> Vec<DatasetName> { pos.iter().map(|p| parse(p)).collect() };
            if cols.as_deref() == Some("name,guid,userrefs") {
                let roots = roots();
                with_state(state, |z| {
                    let inv = z.list(&roots).map_err(|e| {
                        e.failure()
                            .cloned()
                            .unwrap_or_else(|| ZfsFailure::new(Exit::Code(1), e.to_string()))
                    })?;
                    let mut out = String::new();
                    for d in inv.datasets.values().filter(|d| roots.contains(&d.name)) {
                        for s in &d.snapshots {
                            out.push_str(&format!(
                                "{}@{}\t{}\t{}\n",
                                d.name, s.name, s.guid, s.userrefs
                            ));
                        }
                    }
                    Ok(out)
                })
            } else if opts.iter().any(|(c, _)| *c == 'r') {
                let roots = roots();
                with_state(state, |z| z.cmd_list(&roots))
            } else {
                // Named datasets and snapshots, none of their children (`zfs list`
                // without -r).
                let (mut datasets, mut snapshots) = (Vec::new(), Vec::new());
                for p in &pos {
                    match p.split_once('@') {
                        Some(_) => snapshots.push(parse::<SnapshotName>(p)),
                        None => datasets.push(parse::<DatasetName>(p)),
                    }
                }
                with_state(state, |z| {
                    let inv = z.list_named(&datasets, &snapshots).map_err(|e| {
                        e.failure()
                            .cloned()
                            .unwrap_or_else(|| ZfsFailure::new(Exit::Code(1), e.to_string()))
                    })?;
                    let missing = snapshots.iter().find(|s| {
                        inv.dataset(s.dataset())
                            .is_none_or(|d| d.snapshots.iter().all(|x| &x.name != s.short()))
                    });
                    match missing {
                        Some(s) => Err(ZfsFailure::new(
                            Exit::Code(1),
                            format!("cannot open '{s}': dataset does not exist\n"),
                        )),
                        None => Ok(zsnap_core::zfs_list::render_list(&inv)),
                    }
                })
            }
        }
        "snapshot" => {
            let (opts, pos) = getopt(rest, "o");
            let mut props = BTreeMap::new();
            for (_, v) in opts {
                let v = v.unwrap_or_default();
                let (k, v) = v.split_once('=').unwrap_or_else(|| usage("-o without ="));
                props.insert(k.to_owned(), v.to_owned());
            }
            let names: Vec<SnapshotName> = pos.iter().map(|p| parse(p)).collect();
            with_state(state, |z| {
                z.cmd_snapshot(&names, &props).map(|()| String::new())
            })
        }
        "destroy" => {
            let (opts, pos) = getopt(rest, "");
            let [name] = pos.as_slice() else {
                usage("destroy takes one name")
            };
            if let Some((ds, list)) = name.split_once('@') {
                let ds: DatasetName = parse(ds);
                let names: Vec<ShortName> = list.split(',').map(parse).collect();
                with_state(state, |z| {
                    z.cmd_destroy(&ds, &names).map(|()| String::new())
                })
            } else if name.contains('#') {
                let b = parse(name);
                with_state(state, |z| {
                    z.cmd_destroy_bookmark(&b).map(|()| String::new())
                })
            } else if opts.iter().any(|(c, _)| *c == 'r') {
                let ds = parse(name);
                with_state(state, |z| z.destroy_recursive(&ds).map(|()| String::new()))
            } else {
                usage("destroy of a dataset needs -r here")
            }
        }
        "hold" | "release" => {
            let (_, pos) = getopt(rest, "");
            let [tag, snaps @ ..] = pos.as_slice() else {
                usage("hold/release TAG SNAPSHOT...")
            };
            if snaps.is_empty() {
                usage("hold/release TAG SNAPSHOT...")
            }
            // As zfs does: each snapshot on its own, every failure reported, exit 1 when
            // any failed.
            with_state(state, |z| {
                let mut failed: Option<ZfsFailure> = None;
                for snap in snaps {
                    let snap: SnapshotName = parse(snap);
                    let r = if command == "hold" {
                        z.cmd_hold(&snap, tag)
                    } else {
                        z.cmd_release(&snap, tag)
                    };
                    if let Err(f) = r {
                        match &mut failed {
                            Some(first) => first.stderr.push_str(&f.stderr),
                            None => failed = Some(f),
                        }
                    }
                }
                failed.map_or(Ok(String::new()), Err)
            })
        }
        "bookmark" => {
            let [s, b] = rest else {
                usage("bookmark SNAPSHOT BOOKMARK")
            };
            let (s, b) = (parse(s), parse(b));
            with_state(state, |z| z.cmd_bookmark(&s, &b).map(|()| String::new()))
        }
        "set" => {
            let [kv, t] = rest else {
                usage("set PROP=VALUE TARGET")
            };
            let (k, v) = kv.split_once('=').unwrap_or_else(|| usage("set without ="));
            let t = target(t);
            with_state(state, |z| z.cmd_set(&t, k, v).map(|()| String::new()))
        }
        "get" => {
            let (_, pos) = getopt(rest, "o");
            let [name, t] = pos.as_slice() else {
                usage("get NAME TARGET")
            };
            let t = target(t);
            with_state(state, |z| z.cmd_get(&t, name))
        }
        "create" => {
            let (opts, pos) = getopt(rest, "o");
            let [name] = pos.as_slice() else {
                usage("create NAME")
            };
            let encrypted = opts.iter().any(|(_, v)| {
                v.as_deref()
                    .is_some_and(|v| v.starts_with("encryption=") && v != "encryption=off")
            });
            let name = parse(name);
            with_state(state, |z| {
                z.create(&name, encrypted).map(|()| String::new())
            })
        }
        "clone" => {
            let [s, d] = rest else {
                usage("clone SNAPSHOT NAME")
            };
            let (s, d) = (parse(s), parse(d));
            with_state(state, |z| z.clone_snapshot(&s, &d).map(|()| String::new()))
        }
        "unload-key" | "load-key" => {
            let (_, pos) = getopt(rest, "L");
            let [name] = pos.as_slice() else {
                usage("load-key/unload-key NAME")
            };
            let name = parse(name);
            let load = command == "load-key";
            with_state(state, |z| {
                z.set_key_loaded(&name, load).map(|()| String::new())
            })
        }
        "holds" => {
            let (_, pos) = getopt(rest, "");
            let names: Vec<SnapshotName> = pos.iter().map(|p| parse(p)).collect();
            with_state(state, |z| z.cmd_holds(&names))
        }
        "send" => {
            let (opts, pos) = getopt(rest, "iIt");
            let raw = opts.iter().any(|(c, _)| *c == 'w');
            let req = if let Some((_, Some(token))) = opts.iter().find(|(c, _)| *c == 't') {
                let ds = token_dataset(token);
                SendRequest::new(
                    ds,
                    SendSpec::Resume {
                        token: token.clone(),
                        snapshot: None,
                    },
                    raw,
                )
            } else {
                let [snap] = pos.as_slice() else {
                    usage("send SNAPSHOT")
                };
                let snap: SnapshotName = parse(snap);
                let to = SnapshotRef::new(snap.short().clone(), Guid(0));
                let spec = match opts.iter().find(|(c, _)| *c == 'i' || *c == 'I') {
                    None => SendSpec::Full { snapshot: to },
                    Some((c, base)) => {
                        let base = base.clone().unwrap_or_default();
                        let base = if let Some((_, b)) = base.split_once('#') {
                            SendBase::Bookmark {
                                name: parse(b),
                                guid: Guid(0),
                            }
                        } else {
                            let short = base.rsplit_once('@').map_or(base.as_str(), |(_, s)| s);
                            SendBase::Snapshot {
                                name: parse(short),
                                guid: Guid(0),
                            }
                        };
                        SendSpec::Incremental {
                            base,
                            snapshot: to,
                            intermediates: *c == 'I',
                            expected: Vec::new(),
                        }
                    }
                };
                SendRequest::new(snap.dataset().clone(), spec, raw)
            };
            if opts.iter().any(|(c, _)| *c == 'n') {
                // A dry run (`-n -v -P`): what would be sent, and its size.
                let (out, end) = with_state(state, |z| z.cmd_send_dry(&req));
                print!("{out}");
                if let Err(f) = end {
                    die(&f);
                }
                return;
            }
            let stream = with_state(state, |z| z.cmd_send(&req));
            match stream {
                Err(f) => Err(f),
                Ok(s) => {
                    let mut out = std::io::stdout().lock();
                    // A reader that quit early is not the sender's problem to report.
                    let _ = out.write_all(s.data());
                    let _ = out.flush();
                    match s.failure() {
                        Some(f) => Err(f.clone()),
                        None => Ok(String::new()),
                    }
                }
            }
        }
        "receive" | "recv" => {
            let (opts, pos) = getopt(rest, "xo");
            let [t] = pos.as_slice() else {
                usage("receive TARGET")
            };
            let t: DatasetName = parse(t);
            if opts.iter().any(|(c, _)| *c == 'A') {
                with_state(state, |z| z.cmd_abort_receive(&t).map(|()| String::new()))
            } else {
                let mut o = RecvOptions::default();
                for (c, v) in &opts {
                    match c {
                        's' => o.resumable = true,
                        'u' => o.unmounted = true,
                        'F' => o.force = true,
                        'x' => o.exclude_props.push(v.clone().unwrap_or_default()),
                        'o' => {
                            let v = v.clone().unwrap_or_default();
                            let (k, v) = v.split_once('=').unwrap_or_else(|| usage("-o without ="));
                            o.set_props.insert(k.to_owned(), v.to_owned());
                        }
                        other => usage(&format!("unknown receive option -{other}")),
                    }
                }
                let mut bytes = Vec::new();
                let _ = std::io::stdin().lock().read_to_end(&mut bytes);
                let req = ReceiveRequest::new(t, o);
                with_state(state, |z| {
                    z.cmd_receive(&req, &bytes).map(|()| String::new())
                })
            }
        }
        other => usage(&format!("unsupported command {other}")),
    };
    match result {
        Ok(out) => {
            print!("{out}");
        }
        Err(f) => die(&f),
    }
}

/// The dataset a fake resume token is for (the shim needs it to build the request; a
/// token it cannot read is left to the fake to refuse).
fn token_dataset(token: &str) -> DatasetName {
    let hex = token.strip_prefix("1-fake-").unwrap_or("");
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let name = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("toname").and_then(|n| n.as_str()).map(str::to_owned))
        .and_then(|n| n.parse::<SnapshotName>().ok());
    match name {
        Some(n) => n.dataset().clone(),
        None => die(&ZfsFailure::new(
            Exit::Code(255),
            "cannot resume send: resume token is corrupt (incorrect checksum)\n",
        )),
    }
}
