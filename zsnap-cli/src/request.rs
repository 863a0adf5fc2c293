//! The one conversion from clap's [`Args`] into the typed [`Request`] that commands run
//! on: names, labels, durations, times and backends are parsed here, once, and a bad
//! one is a usage error (exit status 2) before anything runs.

use std::path::PathBuf;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use zsnap_core::backup::{
    parse_since, BackupId, BackupMode, BackupRequest, Compression, RestoreTarget, StoreUrl,
};
use zsnap_core::config::{Host, ImportTool, TargetAddress};
use zsnap_core::duration::Span;
use zsnap_core::naming::Label;
use zsnap_core::retention::{KeepRule, RetentionPolicy};
use zsnap_core::DatasetName;
use zsnap_exec::job::Job;
use zsnap_exec::store_ops::{ListFilter, S3Overrides};

use crate::args::{
    Args, BackupArgs, BackupsCmd, Cmd, ConfigCmd, ImportCmd, JobArg, RestoreArgs, S3Flags,
};
use crate::failure::Failure;

/// The longest `zsnap simulate --days` (100 years): beyond it the virtual clock would
/// leave the calendar zsnap names snapshots in.
pub const MAX_SIMULATED_DAYS: u32 = 36_525;

/// Where the config's local datasets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// The real `zfs` on this machine.
    Local,
    /// The real `zfs` on another machine, over ssh.
    Ssh(Host),
    /// An in-memory pool saved in this JSON file between runs.
    Fake(PathBuf),
}

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// The default.
    Normal,
    /// `-v` (1) or more.
    Verbose(u8),
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run a job (or only plan it, when `dry_run`).
    Job {
        /// The job.
        job: Job,
        /// Only show the plan.
        dry_run: bool,
    },
    /// `zsnap plan --print-list-command`.
    PrintListCommand,
    /// `zsnap status`.
    Status,
    /// `zsnap check`.
    Check,
    /// `zsnap simulate`.
    Simulate {
        /// Virtual days.
        days: u32,
        /// Virtual time between runs.
        step: Span,
    },
    /// `zsnap config check`.
    ConfigCheck,
    /// `zsnap import TOOL FILE`.
    Import {
        /// Which tool's config.
        tool: ImportTool,
        /// The file.
        file: PathBuf,
    },
    /// `zsnap backup`.
    Backup(BackupCommand),
    /// `zsnap backups …`.
    Backups(BackupsCommand),
    /// `zsnap restore`.
    Restore(RestoreCommand),
    /// `zsnap completions SHELL`.
    Completions(clap_complete::Shell),
    /// `zsnap man [--dir DIR]`.
    Man(Option<std::path::PathBuf>),
}

/// Everything a command needs, parsed.
#[derive(Debug, Clone)]
pub struct Request {
    /// The config file.
    pub config: PathBuf,
    /// Where the local datasets live.
    pub backend: BackendSpec,
    /// JSON output.
    pub json: bool,
    /// How much to print.
    pub verbosity: Verbosity,
    /// A saved listing to plan from.
    pub inventory: Option<PathBuf>,
    /// The instant to plan for.
    pub now: DateTime<Utc>,
    /// Whether `now` was given (`--now`) rather than read from the clock.
    pub now_given: bool,
    /// What to do.
    pub command: Command,
}

/// A store named on the command line, with the S3 flags given with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreArg {
    /// The store.
    pub url: StoreUrl,
    /// `--s3-endpoint`, `--s3-region`, `--s3-allow-http`.
    pub s3: S3Overrides,
}

/// `zsnap backup`: one request per dataset, to one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCommand {
    /// The store.
    pub store: StoreArg,
    /// What to back up, per dataset.
    pub requests: Vec<BackupRequest>,
    /// Read each stream back before writing its sidecar.
    pub verify: bool,
    /// Show the plan only.
    pub dry_run: bool,
}

/// `zsnap backups …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupsCommand {
    /// `init STORE`.
    Init(StoreArg),
    /// `list`.
    List {
        /// The store.
        store: StoreArg,
        /// Which backups.
        filter: ListFilter,
    },
    /// `verify`.
    Verify {
        /// The store.
        store: StoreArg,
        /// Only this dataset's backups.
        dataset: Option<DatasetName>,
    },
    /// `delete ID`.
    Delete {
        /// The store.
        store: StoreArg,
        /// The backup.
        id: BackupId,
        /// Also the incrementals restored through it.
        with_dependents: bool,
        /// Show what would go only.
        dry_run: bool,
    },
    /// `prune --keep …`.
    Prune {
        /// The store.
        store: StoreArg,
        /// The keep rules.
        keep: RetentionPolicy,
        /// Show what would go only.
        dry_run: bool,
    },
}

/// Where `zsnap restore` puts the stream(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTo {
    /// Received into this dataset (on `--backend`'s host when `host` is local).
    Dataset {
        /// The host.
        host: Host,
        /// The dataset.
        dataset: DatasetName,
    },
    /// The chosen backup's own stream, saved in this file.
    Save(PathBuf),
}

/// `zsnap restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCommand {
    /// The store.
    pub store: StoreArg,
    /// The dataset whose backups to restore.
    pub dataset: DatasetName,
    /// The point to restore.
    pub point: RestoreTarget,
    /// Where to.
    pub to: RestoreTo,
    /// `--force`.
    pub force: bool,
    /// `--allow-older`.
    pub allow_older: bool,
    /// `--mount`.
    pub mount: bool,
    /// Show what would be received only.
    pub dry_run: bool,
}

fn store_arg(url: &str, s3: S3Flags) -> Result<StoreArg, Failure> {
    Ok(StoreArg {
        url: url.parse().map_err(Failure::usage)?,
        s3: S3Overrides::new()
            .with_endpoint(s3.s3_endpoint)
            .with_region(s3.s3_region)
            .with_allow_http(s3.s3_allow_http),
    })
}

fn dataset_arg(s: &str) -> Result<DatasetName, Failure> {
    s.parse::<DatasetName>()
        .with_context(|| format!("invalid dataset {s:?}"))
        .map_err(Failure::usage)
}

fn time_arg(flag: &str, s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| {
            format!("invalid {flag} {s:?}; expected RFC 3339 such as 2026-11-23T15:00:00Z")
        })
        .map_err(Failure::usage)
}

/// `--keep` as the README and `--help` write it: a calendar unit and a count may be
/// given without `=` (`daily 14` means `daily = 14`).
fn keep_rule_arg(rule: &str) -> Result<KeepRule, Failure> {
    const UNITS: [&str; 5] = ["hourly", "daily", "weekly", "monthly", "yearly"];
    let words: Vec<&str> = rule.split_whitespace().collect();
    let text = match words.as_slice() {
        [unit, n] if UNITS.contains(unit) && n.parse::<usize>().is_ok() => {
            format!("{unit} = {n}")
        }
        _ => rule.to_owned(),
    };
    text.parse()
        .context("invalid --keep")
        .map_err(Failure::usage)
}

fn backup_command(a: BackupArgs) -> Result<BackupCommand, Failure> {
    let datasets = a
        .datasets
        .iter()
        .map(|d| dataset_arg(d))
        .collect::<Result<Vec<_>, _>>()?;
    let compression: Compression = a
        .compress
        .parse()
        .context("invalid --compress")
        .map_err(Failure::usage)?;
    let label: Label = a
        .label
        .parse()
        .context("invalid --label")
        .map_err(Failure::usage)?;
    let store = store_arg(&a.to, a.s3)?;
    let mut requests = Vec::new();
    for dataset in datasets {
        let since = a
            .since
            .as_deref()
            .map(|s| parse_since(&dataset, s))
            .transpose()
            .context("invalid --since")
            .map_err(Failure::usage)?;
        let snapshot = a
            .snapshot
            .as_deref()
            .map(|s| parse_since(&dataset, s).map_err(|e| anyhow!("invalid --snapshot: {e}")))
            .transpose()
            .map_err(Failure::usage)?;
        requests.push(
            BackupRequest::new(
                dataset,
                store.url.clone(),
                BackupMode::from_flags(since, a.auto_incremental),
            )
            .with_snapshot(snapshot)
            .with_label(label.clone())
            .with_compression(compression),
        );
    }
    Ok(BackupCommand {
        store,
        requests,
        verify: a.verify,
        dry_run: a.dry_run,
    })
}

fn backups_command(cmd: BackupsCmd) -> Result<BackupsCommand, Failure> {
    Ok(match cmd {
        BackupsCmd::Init { store, s3 } => BackupsCommand::Init(store_arg(&store, s3)?),
        BackupsCmd::List {
            from,
            dataset,
            since,
            until,
            s3,
        } => {
            let dataset = dataset.as_deref().map(dataset_arg).transpose()?;
            let since = since
                .as_deref()
                .map(|s| time_arg("--since", s))
                .transpose()?;
            let until = until
                .as_deref()
                .map(|s| time_arg("--until", s))
                .transpose()?;
            BackupsCommand::List {
                store: store_arg(&from, s3)?,
                filter: ListFilter::new()
                    .with_dataset(dataset)
                    .with_times(since, until),
            }
        }
        BackupsCmd::Verify { from, dataset, s3 } => BackupsCommand::Verify {
            dataset: dataset.as_deref().map(dataset_arg).transpose()?,
            store: store_arg(&from, s3)?,
        },
        BackupsCmd::Delete {
            from,
            id,
            with_dependents,
            dry_run,
            s3,
        } => BackupsCommand::Delete {
            id: id
                .parse()
                .with_context(|| format!("invalid backup id {id:?}"))
                .map_err(Failure::usage)?,
            store: store_arg(&from, s3)?,
            with_dependents,
            dry_run,
        },
        BackupsCmd::Prune {
            from,
            keep,
            dry_run,
            s3,
        } => BackupsCommand::Prune {
            keep: RetentionPolicy::new(
                keep.iter()
                    .map(|r| keep_rule_arg(r))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            store: store_arg(&from, s3)?,
            dry_run,
        },
    })
}

fn restore_command(a: RestoreArgs) -> Result<RestoreCommand, Failure> {
    let dataset = dataset_arg(&a.dataset)?;
    let point = match (&a.at, &a.snapshot) {
        (Some(at), _) => RestoreTarget::At(time_arg("--at", at)?),
        (None, Some(s)) => RestoreTarget::Snapshot(
            parse_since(&dataset, s)
                .map_err(|e| Failure::usage(anyhow!("invalid --snapshot: {e}")))?,
        ),
        (None, None) => RestoreTarget::Latest,
    };
    let to = match (a.save, a.to) {
        (Some(path), _) => RestoreTo::Save(path),
        (None, Some(to)) => {
            // `pool/path` on --backend's host, or `ssh://[user@]host[:port]/pool/path`.
            let address: TargetAddress = to
                .parse()
                .with_context(|| format!("invalid --to {to:?}"))
                .map_err(Failure::usage)?;
            let TargetAddress::Dataset { host, dataset } = address else {
                return Err(Failure::usage(anyhow!(
                    "invalid --to {to:?}: not a dataset"
                )));
            };
            RestoreTo::Dataset { host, dataset }
        }
        (None, None) => unreachable!("clap requires --to without --save"),
    };
    Ok(RestoreCommand {
        store: store_arg(&a.from, a.s3)?,
        dataset,
        point,
        to,
        force: a.force,
        allow_older: a.allow_older,
        mount: a.mount,
        dry_run: a.dry_run,
    })
}

fn parse_backend(s: &str) -> anyhow::Result<BackendSpec> {
    if s == "local" {
        Ok(BackendSpec::Local)
    } else if let Some(path) = s.strip_prefix("fake:") {
        if path.is_empty() {
            return Err(anyhow!(
                "`fake:` needs a state file, as in fake:/tmp/zsnap-state.json"
            ));
        }
        Ok(BackendSpec::Fake(PathBuf::from(path)))
    } else if s.starts_with("ssh://") {
        Ok(BackendSpec::Ssh(s.parse::<Host>()?))
    } else {
        Err(anyhow!(
            "unknown backend {s:?}; expected `local`, `ssh://user@host[:port]` or `fake:STATE.json`"
        ))
    }
}

impl Request {
    /// Converts the command line. `clock` is read only when `--now` is absent.
    ///
    /// # Errors
    /// A usage [`Failure`] naming the bad flag.
    pub fn from_args(
        args: Args,
        clock: impl FnOnce() -> DateTime<Utc>,
    ) -> Result<Request, Failure> {
        let backend = parse_backend(&args.backend)
            .context("invalid --backend")
            .map_err(Failure::usage)?;
        let (now, now_given) = match &args.now {
            Some(s) => (
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .with_context(|| {
                        format!(
                            "invalid --now {s:?}; expected RFC 3339 such as 2026-11-23T15:00:00Z"
                        )
                    })
                    .map_err(Failure::usage)?,
                true,
            ),
            None => (clock(), false),
        };
        let verbosity = if args.quiet {
            Verbosity::Quiet
        } else if args.verbose > 0 {
            Verbosity::Verbose(args.verbose)
        } else {
            Verbosity::Normal
        };
        let dry = |d: crate::args::DryRun| d.dry_run || args.inventory.is_some();
        let command = match args.command {
            Cmd::Snapshot {
                label,
                expire_in,
                dry: d,
            } => Command::Job {
                job: Job::Snapshot {
                    label: label
                        .map(|l| l.parse::<Label>())
                        .transpose()
                        .context("invalid --label")
                        .map_err(Failure::usage)?,
                    expire_in: expire_in
                        .map(|s| -> anyhow::Result<Span> {
                            let span = s.parse::<Span>()?;
                            zsnap_core::snapshot::expiry_time(now, span)?;
                            Ok(span)
                        })
                        .transpose()
                        .context("invalid --expire-in")
                        .map_err(Failure::usage)?,
                },
                dry_run: dry(d),
            },
            Cmd::Prune { dry: d } => Command::Job {
                job: Job::Prune,
                dry_run: dry(d),
            },
            Cmd::Replicate { targets, dry: d } => Command::Job {
                job: Job::Replicate { targets },
                dry_run: dry(d),
            },
            Cmd::Run { dry: d } => Command::Job {
                job: Job::Run,
                dry_run: dry(d),
            },
            Cmd::Plan {
                print_list_command: true,
                ..
            } => Command::PrintListCommand,
            Cmd::Plan { job, .. } => Command::Job {
                job: match job {
                    JobArg::Snapshot => Job::Snapshot {
                        label: None,
                        expire_in: None,
                    },
                    JobArg::Prune => Job::Prune,
                    JobArg::Replicate => Job::Replicate {
                        targets: Vec::new(),
                    },
                    JobArg::Run => Job::Run,
                },
                dry_run: true,
            },
            Cmd::Status => Command::Status,
            Cmd::Check => Command::Check,
            Cmd::Simulate { days, step } => {
                let step: Span = step
                    .parse()
                    .context("invalid --step")
                    .map_err(Failure::usage)?;
                if step.seconds() < 60 {
                    return Err(Failure::usage(anyhow!(
                        "invalid --step {step}: the simulation runs at most once a minute"
                    )));
                }
                if days == 0 {
                    return Err(Failure::usage(anyhow!(
                        "invalid --days 0: simulate at least one day"
                    )));
                }
                if days > MAX_SIMULATED_DAYS {
                    return Err(Failure::usage(anyhow!(
                        "invalid --days {days}: simulate at most {MAX_SIMULATED_DAYS} days (100 years)"
                    )));
                }
                if step.seconds() > u64::from(days) * 86_400 {
                    return Err(Failure::usage(anyhow!(
                        "invalid --step {step}: longer than the {days} simulated days"
                    )));
                }
                Command::Simulate { days, step }
            }
            Cmd::Config {
                command: ConfigCmd::Check,
            } => Command::ConfigCheck,
            Cmd::Import { tool } => match tool {
                ImportCmd::Sanoid { file } => Command::Import {
                    tool: ImportTool::Sanoid,
                    file,
                },
                ImportCmd::Zrepl { file } => Command::Import {
                    tool: ImportTool::Zrepl,
                    file,
                },
                ImportCmd::Znapzend { file } => Command::Import {
                    tool: ImportTool::Znapzend,
                    file,
                },
            },
            Cmd::Backup(a) => Command::Backup(backup_command(a)?),
            Cmd::Backups { command } => Command::Backups(backups_command(command)?),
            Cmd::Restore(a) => Command::Restore(restore_command(a)?),
            Cmd::Completions { shell } => Command::Completions(shell),
            Cmd::Man { dir } => Command::Man(dir),
        };
        Ok(Request {
            config: args.config,
            backend,
            json: args.json,
            verbosity,
            inventory: args.inventory,
            now,
            now_given,
            command,
        })
    }
}
