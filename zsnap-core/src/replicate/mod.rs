//! Replication planning: what to send from a source to a target so that the target
//! gets every snapshot it wants, compared by guid, in createtxg order.
//!
//! The planner is pure: it reads the inventories of both sides (one `zfs list` each),
//! the target's wishes and options, and what the executor learned from earlier runs
//! (stale resume tokens, decoded tokens, cursor holds), and returns a [`Plan`] of
//! transfers and cursor steps that `zsnap-exec` carries out. Its guarantees, for every
//! mapped dataset:
//! - nothing older than the newest snapshot the target shares with the source is sent,
//!   and nothing the target does not want;
//! - a target that diverged (snapshots the source does not have, newer than the newest
//!   common one) is never rolled back unless rollback is allowed for that target;
//! - an encrypted source is only ever sent raw;
//! - receives are resumable (`-s`) and leave datasets unmounted (`-u`);
//! - the newest common snapshot is protected on the source (hold or bookmark), and only
//!   that one: previous cursors are released in the same plan;
//! - applying the plan and planning again at the same instant gives an empty plan.
//!
//! [`Plan`]: crate::plan::Plan

mod common;
mod cursor;
mod error;
mod planner;
mod request;

pub use common::{
    common_snapshots, newest_common, CommonBase, CommonSnapshot, TargetProtection, TargetSide,
};
pub use cursor::{cursor_bookmark_name, cursor_hold_tag, is_cursor_bookmark};
pub use error::ReplicationError;
pub use planner::plan_replication;
pub use request::{
    Cursor, DatasetMapping, RawMode, ReplicationOptions, ReplicationRequest, SnapshotFilter,
};
