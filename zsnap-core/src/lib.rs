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
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
pub mod duration;
pub mod inventory;
pub mod names;
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

pub use backup::{
    plan_backup, plan_backup_prune, resolve_restore, BackupPlan, BackupRequest, BackupStep,
    Catalog, RestoreTarget, Sidecar, StoreUrl, StreamName,
};
pub use config::{Config, ConfigError};
pub use inventory::{
    Bookmark, Dataset, DatasetKind, DatasetProps, Guid, Inventory, InventoryError, Snapshot,
    EXPIRES_PROPERTY, MANAGED_PROPERTY,
};
pub use names::{BookmarkName, DatasetName, NameError, NameProblem, ShortName, SnapshotName};
pub use naming::{
    recognize_any, Label, LabelError, NameTime, NamingError, NamingScheme, Recognized, Recognizer,
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
pub use retention::{evaluate, Candidate, Grid, KeepRule, Pattern, RetentionPolicy, SanoidCounts};
pub use schedule::{LabelSchedule, Period, Schedule, ScheduleError};
pub use simulate::{Refusal, SimulateError};
pub use snapshot::{plan_snapshot_on_demand, plan_snapshots, SnapshotPlanError};
pub use zfs_list::{
    list_argv, parse_list, render_list, ListParseError, ListParseErrorKind, LIST_COLUMNS,
};
