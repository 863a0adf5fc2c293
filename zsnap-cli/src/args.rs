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
    Backup(crate::backup::BackupArgs),
    /// List, verify, delete and prune the backups in a store.
    Backups {
        /// What to do.
        #[command(subcommand)]
        command: crate::backup::BackupsCmd,
    },
    /// Restore a dataset from a store (the chain to a point, checked, by guid).
    Restore(crate::backup::RestoreArgs),
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

/// The clap command (for completions and the man page).
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}
