//! [`FakeZfs`]: an in-memory ZFS that obeys ZFS's own rules, for tests and for the
//! simulator (`--backend fake:state.json`).
//!
//! It is written from the rules of OpenZFS, independently of the planners and of
//! `Plan::simulate`, so the two can be checked against each other:
//!
//! - guids are unique and random (from a seeded generator, so runs repeat);
//! - each pool has one `createtxg` counter; one `zfs snapshot` call is one txg, so all
//!   its snapshots share it; it refuses two snapshots of one dataset, or of two pools;
//! - creation times come from an injected clock;
//! - incremental sends need the target's newest snapshot to have the base's guid;
//!   bookmarks are usable as incremental bases (not with `-I`) but never as sources;
//! - holds and clones block destroy; a batch with a refused member destroys nothing
//!   (like `zfs destroy a@x,y,z`, which is one atomic ioctl);
//! - interrupted receives with `-s` leave a `receive_resume_token`; `send -t` resumes;
//! - encrypted datasets whose key is not loaded can only be sent raw;
//! - `recv -F` rolls back to the base, destroying newer snapshots unless one is held;
//! - names that exist are refused.
//!
//! Each "command" method (`cmd_*`) is one `zfs` invocation with fault injection and the
//! stderr a real `zfs` prints; the [`crate::ZfsBackend`] implementation builds on them
//! exactly like [`crate::cli::CliZfs`] builds on processes, and the `zfs` shim used by
//! the contract suite maps its argv onto the same methods.

mod fault;
mod for_config;
mod state;
pub(crate) mod stream;
mod zfs;

pub use fault::{Fault, FaultEffect, FaultOp};
pub use for_config::ForConfigError;
pub use zfs::{FakeSendStream, FakeZfs, StateError};
