//! What `zsnap status` and `zsnap check` report, as values any front end renders (the
//! `zsnap` command's table, text and JSON; a daemon's dashboard and metrics).
//!
//! - [`status()`] computes a [`Status`] from what a [`Listing`](crate::job::Listing) of
//!   the config's roots found: per dataset and label, counts, the newest snapshot and
//!   its age, when the label is next due, and how the prune planner keeps on-demand
//!   snapshots; per target, the newest common snapshot and the lag; the roots that
//!   could not be listed, with what they hide.
//! - [`backup_status`] adds the `[backups.NAME]` stores, from their catalogs (the
//!   caller opens the stores and reads them).
//! - [`check()`] turns a [`Status`] and the last runs' records
//!   ([`crate::last_run`]) into a [`CheckReport`]: every finding with its Nagios level
//!   (freshness and replication-lag thresholds from the config's `[check]`, snapshots
//!   dated in the future, unreachable roots, failed, partial or stale runs), the
//!   overall level and its exit code. With [`pool_status`] filled into
//!   [`Status::pools`], also the health and capacity of the pools the datasets live on.
//!
//! Nothing here reads a file, the environment or the clock: the caller passes the
//! listing, the catalogs, the records and `now`.
//!
//! # Example
//! ```
//! use chrono::{TimeZone, Utc};
//! use zsnap_core::config::Config;
//! use zsnap_exec::fake::FakeZfs;
//! use zsnap_exec::job::{Engine, Source};
//! use zsnap_exec::status::{check, status, Level};
//! use zsnap_exec::OneBackend;
//!
//! let config = Config::from_toml(
//!     "[policies.p]\nsnapshot = { hourly = \"hourly\" }\nkeep_last = 3\n\n\
//!      [[datasets]]\nroot = \"tank/home\"\npolicy = \"p\"\n",
//!     "example.toml",
//! )
//! .unwrap();
//! let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
//! let mut z = FakeZfs::for_config(&config, 1, now).unwrap();
//! let engine = Engine::new(&config);
//! let listing = engine
//!     .list_each(&mut Source::Backends(&mut OneBackend(&mut z)))
//!     .unwrap();
//! let st = status(&engine, &listing, now).unwrap();
//! assert_eq!(st.datasets[0].labels[0].count, 0);
//! // No hourly snapshot yet: critical.
//! let report = check(&engine, &st, Ok(&Default::default()));
//! assert_eq!(report.level(), Level::Critical);
//! assert_eq!(report.exit_code(), 2);
//! ```

mod backups;
mod check;
mod compute;
mod pools;
mod value;

pub use backups::backup_status;
pub use check::{check, nominal, run_stale_after, CheckReport, Finding, Level, PoolResult};
pub use compute::{status, StatusError};
pub use pools::pool_status;
pub use value::{
    age, BackupStatus, DatasetStatus, KeptStatus, LabelStatus, PoolsAt, Status, TargetStatus,
    UnreachableStatus,
};
