//! # zsnap-core
//!
//! The pure engine of zsnap, a manager for the life of ZFS snapshots. This crate
//! **does no I/O and reads no clock**: it parses what `zfs list` printed, decides what
//! should happen given a policy and an instant `now`, and returns that decision as a
//! [`Plan`] — a plain value that can be printed, serialized, simulated on an inventory
//! and handed to `zsnap-exec` to carry out.
//!
//! ```text
//!   zfs list -Hp ──► Inventory ─┐
//!   config       ──► Policy ────┼─► plan(…, now) ──► Plan ──► (zsnap-exec) apply
//!   now, zone    ───────────────┘
//! ```
//!
//! Everything time-related takes `now` (and a time zone) as an argument; `clippy.toml`
//! forbids the clock, the environment, files and processes in this crate.
//!
//! # The loop: list, plan, apply
//! Five hourly runs of `zsnap snapshot` and `zsnap prune` on one dataset whose policy
//! keeps the newest three snapshots. This crate does the middle of each step: it parses
//! the listing ([`parse_list`], the columns of [`LIST_COLUMNS`]) and plans the snapshot
//! that is due ([`plan_snapshots`]) or the retention ([`plan_prune`]). The pool and the
//! carrying out of a plan are `zsnap-exec`'s: here its in-memory fake ZFS stands in for
//! the pool, and `zsnap_exec::apply::apply` runs each plan on it.
//!
//! ```
//! use chrono::{TimeDelta, TimeZone, Utc};
//! use zsnap_core::config::{Config, Host};
//! use zsnap_core::{parse_list, plan_prune, plan_snapshots, DatasetName, Location, PruneRequest};
//! use zsnap_exec::apply::{apply, NoObserver, OneBackend};
//! use zsnap_exec::fake::FakeZfs;
//!
//! // The policy: an hourly snapshot of tank/home, the newest three kept.
//! let config = Config::from_toml(
//!     r#"
//!     [policies.hourly]
//!     snapshot = { hourly = "hourly" }
//!     keep_counts = { hourly = 3 }
//!
//!     [[datasets]]
//!     root = "tank/home"
//!     policy = "hourly"
//!     "#,
//!     "zsnap.toml",
//! )?;
//! let policies = config.core_policies();
//! let selections = config.selections(&Host::Local);
//! let here = Location::local();
//!
//! // The pool.
//! let start = Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0).unwrap();
//! let mut zfs = FakeZfs::new(1, start);
//! zfs.add_pool("tank")?;
//! let home: DatasetName = "tank/home".parse()?;
//! zfs.create(&home, false)?;
//!
//! for hour in 0..5 {
//!     let now = start + TimeDelta::hours(hour);
//!     zfs.set_now(now);
//!     // `zsnap snapshot`, then `zsnap prune`: each lists, plans and applies.
//!     for phase in ["snapshot", "prune"] {
//!         // List: the text `zfs list -H -p -o <LIST_COLUMNS> -r tank/home` prints.
//!         let listing = zfs.cmd_list(&[home.clone()])?;
//!         assert!(listing.starts_with("tank/home\tfilesystem\t"));
//!         let inventory = parse_list(&listing)?;
//!         // Plan: a plain value, decided from the inventory, the policies and `now`.
//!         let plan = if phase == "snapshot" {
//!             plan_snapshots(&inventory, &selections, &policies, &here, now)?
//!         } else {
//!             let request = PruneRequest::new(here.clone(), &inventory, &selections, &policies);
//!             plan_prune(&request, now)
//!         };
//!         // Apply.
//!         let report = apply(&plan, &mut OneBackend(&mut zfs), &mut NoObserver, None);
//!         assert!(report.is_success(), "{report:?}");
//!     }
//! }
//!
//! // The snapshot of the last run exists; the two oldest were pruned.
//! let inventory = parse_list(&zfs.cmd_list(&[home.clone()])?)?;
//! let snapshots = &inventory.dataset(&home).unwrap().snapshots;
//! let names: Vec<String> = snapshots.iter().map(|s| s.name.to_string()).collect();
//! assert_eq!(
//!     names,
//!     [
//!         "zsnap_hourly_20261123T170000Z",
//!         "zsnap_hourly_20261123T180000Z",
//!         "zsnap_hourly_20261123T190000Z",
//!     ]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
pub mod duration;
pub mod hooks;
pub mod inventory;
pub mod naming;
pub mod plan;
pub mod policy;
pub mod prune;
pub mod render;
pub mod replicate;
pub mod retention;
pub mod schedule;
pub mod simulate;
pub mod snapshot;
pub mod zfs_list;
pub mod zfs_names;
pub mod zpool;

pub use backup::{
    plan_backup, plan_backup_prune, resolve_restore, BackupPlan, BackupRequest, BackupStep,
    Catalog, RestoreTarget, Sidecar, StoreUrl, StreamName,
};
pub use config::{Config, ConfigError};
pub use inventory::{
    Bookmark, Dataset, DatasetKind, DatasetProps, Guid, Inventory, InventoryError, Snapshot,
    EXPIRES_PROPERTY, MANAGED_PROPERTY,
};
pub use naming::{
    recognize_any, FormatZone, Label, LabelError, NameFormat, NameTime, NamingError, NamingScheme,
    Recognized, Recognizer,
};
pub use plan::{
    AbortReceiveStep, BookmarkStep, Decision, DestroyBookmarkStep, DestroyStep, HoldStep,
    KeepReason, KeptUntil, Location, Note, Plan, Protection, RecvOptions, SendBase, SendSpec,
    SnapshotRef, SnapshotStep, Step, TransferStep, Verdict,
};
pub use policy::{
    resolve_policies, resolve_selections, DatasetSelection, Ownership, Policy, SelectionError,
};
pub use prune::{plan_prune, PruneRequest, DEFAULT_DESTROY_ARG_BUDGET};
pub use replicate::{
    plan_replication, DatasetMapping, ReplicationError, ReplicationOptions, ReplicationRequest,
};
pub use retention::{
    evaluate, Candidate, Grid, KeepRule, NameRegex, RetentionPolicy, SanoidCounts,
};
pub use schedule::{At, LabelSchedule, Period, Schedule, ScheduleError};
pub use simulate::{Refusal, SimulateError};
pub use snapshot::{plan_snapshot_on_demand, plan_snapshots, SnapshotPlanError};
pub use zfs_list::{
    list_argv, parse_list, render_list, ListParseError, ListParseErrorKind, LIST_COLUMNS,
};
pub use zfs_names::{BookmarkName, DatasetName, NameError, NameProblem, ShortName, SnapshotName};
