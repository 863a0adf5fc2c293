//! # zsnap-exec
//!
//! Carries out what `zsnap-core` decides. One small object-safe trait,
//! [`ZfsBackend`], says everything zsnap asks of ZFS at one location; two
//! implementations pass one contract suite:
//!
//! - [`cli::CliZfs`] runs the real `zfs` locally or over `ssh` (argv only, `LC_ALL=C`,
//!   `-H -p` with explicit columns, every remote word quoted, one reused connection);
//! - [`fake::FakeZfs`] is an in-memory ZFS that obeys ZFS's own rules, injects faults,
//!   and saves its state as JSON for the simulator.
//!
//! [`apply::apply`] runs a [`zsnap_core::Plan`] step by step against backends, with
//! progress events, a JSON-lines [`journal::Journal`] and a kernel [`lock::Lock`];
//! [`apply::apply_with`] adds a bandwidth limit ([`throttle`]), and
//! [`apply::estimate_transfers`] fills transfer sizes from `zfs send -nvP`
//! ([`send_info`]). [`replicate::run_replication`] is a whole replication run: list
//! both sides, decode resume tokens, read the cursor holds ([`holds`]), plan with
//! `zsnap-core`, apply, and re-plan once when a resume token turns out stale.
//! [`job::Engine`] runs a whole job of a config (`zsnap run`: snapshot, replicate to
//! each target, prune), phase by phase; a front end (the `zsnap` command, a daemon)
//! only opens the backends and renders the [`job::Outcome`]. Likewise
//! [`status::status`] computes what `zsnap status` shows (a [`status::Status`]) from a
//! listing, and [`status::check`] what `zsnap check` says (a [`status::CheckReport`]:
//! findings with Nagios levels, the overall level, its exit code) from a status and
//! the last runs' records ([`last_run`]); the front end gathers those inputs and
//! renders. [`scheduled::run_scheduled`] runs the `[backups.NAME]` of a config after a
//! run (a [`scheduled::ScheduledBackups`]); [`connect::connect_config`] opens the real
//! backends of a config's locations; [`rehearsal::rehearse`] drives the engine on an
//! in-memory pool with a virtual clock (what `zsnap simulate` shows, a
//! [`rehearsal::Rehearsal`]). `zsnap backup` is [`backup_job::back_up_all`];
//! listing, verifying and saving a store's backups are in [`store_ops`]. What a run
//! changed is logged in an [`audit::AuditLog`].
//! Failures are classified from exit status and stderr by [`failure::classify`], and the
//! stderr is always kept verbatim.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![expect(
    clippy::result_large_err,
    reason = "errors carry their context (names, the verbatim stderr) and only travel cold paths"
)]

pub mod apply;
pub mod audit;
pub mod backend;
pub mod backup;
pub mod backup_job;
pub mod cli;
pub mod connect;
pub mod failure;
pub mod fake;
pub mod holds;
pub mod hooks;
pub mod job;
pub mod journal;
pub mod last_run;
pub mod lock;
pub mod quote;
pub mod rehearsal;
pub mod replicate;
pub mod report;
pub mod safe_fs;
pub mod scheduled;
pub mod send_info;
pub mod session;
pub mod status;
pub mod store;
pub mod store_ops;
mod stream_check;
pub mod throttle;

pub use apply::{
    apply, apply_with, estimate_transfers, ApplyOptions, Backends, NoObserver, Observer,
    OneBackend, Report, StepOutcome, StepReport,
};
pub use backend::{
    DestroyReport, EstimateError, PropertyTarget, ReceiveOutcome, ReceiveRequest, ResumeTokenError,
    SendRequest, SendStream, ZfsBackend,
};
pub use failure::{FailureKind, ZfsFailure};
pub use replicate::{
    run_replication, ReplicateError, ReplicateOptions, ReplicationRound, ReplicationRun,
};
pub use send_info::{ResumeToken, SendEstimate};
