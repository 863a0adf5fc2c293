//! The command line as clap sees it. These structs stay in the CLI: [`crate::request`]
//! converts them once into the typed [`Request`](crate::request::Request) every command
//! works from.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// zsnap: take ZFS snapshots on schedule, prune them by policy, replicate them.
///
/// Start with `zsnap simulate --config examples/single-host.toml --days 30`: it runs a
/// config for 30 days of virtual time on an in-memory pool and shows what would exist.
#[derive(Debug, Parser)]
#[command(
    name = "zsnap",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Args {
    /// The config file.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "/etc/zsnap/zsnap.toml"
    )]
    pub config: PathBuf,

    /// Where the datasets of the config's local host live: `local` (run zfs here),
    /// `ssh://user@host[:port]` (run zfs there) or `fake:STATE.json` (an in-memory pool
    /// saved in that file between runs; created from the config when missing).
    #[arg(long, global = true, value_name = "BACKEND", default_value = "local")]
    pub backend: String,

    /// Print machine-readable JSON (see docs/json.md; a stable interface).
    #[arg(long, global = true)]
    pub json: bool,

    /// More detail (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Plan from a saved listing instead of asking ZFS: the output of the command that
    /// `zsnap plan --print-list-command` prints. Implies a dry run.
    #[arg(long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// Pretend the time is this instant (RFC 3339, e.g. 2026-11-23T15:00:00Z). For
    /// tests and simulations; with a fake backend it also sets the fake's clock. Real
    /// ZFS still stamps new snapshots' `creation` with its own clock, which age-based
    /// keep rules read: on a real pool only schedules and count rules follow `--now`.
    #[arg(long, global = true, value_name = "TIME")]
    pub now: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Show what would be done, change nothing.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DryRun {
    /// Print the plan with the reason for each step; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Take the snapshots that are due now (or one label on demand).
    Snapshot {
        /// Take a snapshot of this label now, for every configured dataset, due or not.
        /// A label the dataset's policy does not schedule is taken on demand: no keep
        /// rule that ignores labels destroys it, and it stays until destroyed by hand,
        /// until its --expire-in passes, or until the expiry its label declares in the
        /// policy's on_demand.
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
        /// With --label: the snapshot expires this long from now (e.g. 12h, 30d, 2w;
        /// units s, m, h, d, w). It is written on the snapshot as the property
        /// zsnap:expires, a UTC time; until then nothing prunes it, and the first prune
        /// after it destroys it (unless a keep rule naming its label, such as
        /// keep_counts, keeps it). Refused for a label the dataset's policy schedules:
        /// the keep rules prune those, and an expiry could only delay them.
        #[arg(long, value_name = "DURATION", requires = "label")]
        expire_in: Option<String>,
        /// Dry run.
        #[command(flatten)]
        dry: DryRun,
    },
    /// Destroy the snapshots no keep rule keeps.
    Prune {
        /// Dry run.
        #[command(flatten)]
        dry: DryRun,
    },
    /// Send new snapshots to the configured targets (all, or the ones named).
    Replicate {
        /// Target names from [targets.NAME].
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        /// Dry run.
        #[command(flatten)]
        dry: DryRun,
    },
    /// Everything due, in order: snapshot, replicate, prune. One run at a time (lock).
    Run {
        /// Dry run.
        #[command(flatten)]
        dry: DryRun,
    },
    /// Print what a job would do, with the reason for every step. Changes nothing.
    Plan {
        /// Which job.
        #[arg(value_enum, default_value = "run")]
        job: JobArg,
        /// Print the exact `zfs list` command whose output `--inventory` reads, and exit.
        #[arg(long)]
        print_list_command: bool,
    },
    /// Per dataset: the newest snapshot of each label, its age, the next due time; per
    /// target: the newest common snapshot and the lag.
    Status,
    /// Monitoring with Nagios exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) on
    /// snapshot freshness and replication lag; prints one line.
    Check,
    /// Run the config for N days of virtual time on an in-memory pool and show what
    /// exists at the end, per dataset and label, with reasons.
    Simulate {
        /// How many days.
        #[arg(long, value_name = "N")]
        days: u32,
        /// How often zsnap runs in the simulation (e.g. 15m, 1h).
        #[arg(long, value_name = "SPAN", default_value = "15m")]
        step: String,
    },
    /// Back up datasets' send streams to a directory or an S3-compatible store.
    Backup(BackupArgs),
    /// List, verify, delete and prune the backups in a store.
    Backups {
        /// What to do.
        #[command(subcommand)]
        command: BackupsCmd,
    },
    /// Restore a dataset from a store (the chain to a point, checked, by guid).
    Restore(RestoreArgs),
    /// Work with the config file.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        command: ConfigCmd,
    },
    /// Translate another tool's config into zsnap's.
    Import {
        /// Which tool.
        #[command(subcommand)]
        tool: ImportCmd,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page zsnap(1) (roff), or write every page, one per subcommand
    /// (zsnap-snapshot(1), zsnap-backups-list(1), …), into a directory.
    Man {
        /// Write zsnap.1 and every subcommand's page into this directory (e.g.
        /// /usr/local/share/man/man1) instead of printing zsnap(1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `zsnap config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the config and print it with every default made explicit.
    Check,
}

/// `zsnap import …`
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Translate a sanoid.conf into an equivalent zsnap config (printed).
    Sanoid {
        /// The sanoid.conf.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Translate a zrepl.yml into an equivalent zsnap config (printed).
    Zrepl {
        /// The zrepl.yml.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Translate the output of `znapzendzetup export DATASET` (one or more,
    /// concatenated) into an equivalent zsnap config (printed).
    Znapzend {
        /// The saved export.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// The jobs `zsnap plan` can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobArg {
    /// Take due snapshots.
    Snapshot,
    /// Prune.
    Prune,
    /// Replicate to every target.
    Replicate,
    /// All of the above, in order.
    Run,
}

/// S3 settings given on the command line (or, for a store a `[backups.NAME]` of the
/// config names, taken from there).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct S3Flags {
    /// S3 endpoint URL (default: `AWS_ENDPOINT_URL`, else AWS).
    #[arg(long, value_name = "URL", global = true)]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: `AWS_REGION`).
    #[arg(long, value_name = "REGION", global = true)]
    pub s3_region: Option<String>,
    /// Allow a plain http:// endpoint.
    #[arg(long, global = true)]
    pub s3_allow_http: bool,
}

/// Arguments of `zsnap backup`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BackupArgs {
    /// The datasets to back up.
    #[arg(value_name = "DATASET", required = true)]
    pub datasets: Vec<String>,
    /// The store: dir:/absolute/path or s3://bucket/prefix.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// An incremental from the newest snapshot already backed up in the store (found
    /// by guid), or a full stream when there is none.
    #[arg(long)]
    pub auto_incremental: bool,
    /// An incremental from this snapshot of the dataset (its name after `@`), which
    /// must have a backup in the store. Wins over --auto-incremental.
    #[arg(long, value_name = "SNAPSHOT")]
    pub since: Option<String>,
    /// Back up this existing snapshot instead of taking a new one.
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// The label of the snapshot taken.
    #[arg(long, value_name = "LABEL", default_value = "backup")]
    pub label: String,
    /// Compress the stored stream: none or zstd.
    #[arg(long, value_name = "ALGO", default_value = "none")]
    pub compress: String,
    /// Read the stream back after uploading and compare size and SHA-256 before
    /// writing its sidecar.
    #[arg(long)]
    pub verify: bool,
    /// Show the plan; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// S3 settings.
    #[command(flatten)]
    pub s3: S3Flags,
}

/// `zsnap backups …`
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum BackupsCmd {
    /// Make a store once before its first backup: writes its marker. A directory
    /// store's directory is made (only its last component; its parent must exist, so
    /// an unmounted disk is not filled), an S3 bucket must exist. A store that already
    /// has backups is adopted as it is.
    Init {
        /// The store: dir:/absolute/path or s3://bucket/prefix.
        #[arg(value_name = "STORE")]
        store: String,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Every backup in a store with its chain, size and state.
    List {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Only this dataset.
        #[arg(long, value_name = "DATASET")]
        dataset: Option<String>,
        /// Only backups of snapshots taken at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only backups of snapshots taken at or before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Re-read every complete backup (sizes, SHA-256) and check every chain.
    Verify {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Only this dataset.
        #[arg(long, value_name = "DATASET")]
        dataset: Option<String>,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Delete one backup (by its id, as `backups list` shows it).
    Delete {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The backup's id.
        #[arg(value_name = "ID")]
        id: String,
        /// Also delete the incrementals restored through it.
        #[arg(long)]
        with_dependents: bool,
        /// Show what would go; delete nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
    /// Apply keep rules to a store's chains (a full stays while a kept incremental
    /// needs it; unfinished uploads older than an hour go).
    Prune {
        /// The store.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// Keep rules, one per flag (e.g. `--keep "last 7" --keep "calendar daily = 14"`):
        /// `last N`, `calendar daily = N, …`, `labels LABEL = N, …`, `grid SPEC`,
        /// `newer than DURATION`.
        #[arg(long = "keep", value_name = "RULE", required = true)]
        keep: Vec<String>,
        /// Show what would go; delete nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// S3 settings.
        #[command(flatten)]
        s3: S3Flags,
    },
}

/// Arguments of `zsnap restore`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RestoreArgs {
    /// The store.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The dataset whose backups to restore.
    #[arg(value_name = "DATASET")]
    pub dataset: String,
    /// The newest backup of a snapshot taken at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME", conflicts_with_all = ["snapshot", "latest"])]
    pub at: Option<String>,
    /// This snapshot (its name after `@`).
    #[arg(long, value_name = "NAME", conflicts_with = "latest")]
    pub snapshot: Option<String>,
    /// The newest backup (the default).
    #[arg(long)]
    pub latest: bool,
    /// The dataset to receive into: `pool/path` (on --backend's host) or
    /// `ssh://[user@]host[:port]/pool/path`. It must not exist, or hold an earlier part
    /// of the same chain (a restore that stopped continues).
    #[arg(long, value_name = "TARGET", required_unless_present = "save")]
    pub to: Option<String>,
    /// Let the first receive roll the target back (zfs receive -F): it discards the
    /// target's snapshots after the newest one it shares with this restore, or replaces
    /// a target that has no snapshots. A target with snapshots of its own is never
    /// overwritten: restore into a new dataset.
    #[arg(long)]
    pub force: bool,
    /// Restore the newest restorable point even when the store records a newer backup
    /// that cannot be restored (missing, damaged, on a broken chain). Without it,
    /// --latest and --at refuse and name that backup.
    #[arg(long)]
    pub allow_older: bool,
    /// Mount the restored dataset (at the mountpoint it inherits; the stream's own
    /// mountpoint is never taken). By default it is received unmounted.
    #[arg(long)]
    pub mount: bool,
    /// Show what would be received; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Write the chosen backup's own stream (decompressed, checked) to FILE instead of
    /// receiving; `zfs receive` can read it later.
    #[arg(long, value_name = "FILE", conflicts_with = "to")]
    pub save: Option<PathBuf>,
    /// S3 settings.
    #[command(flatten)]
    pub s3: S3Flags,
}

/// The clap command (for completions and the man page).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}
