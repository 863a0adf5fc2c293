//! Jobs: the run loop every front end shares (`zsnap run`, `snapshot`, `prune`,
//! `replicate`, `plan`, `simulate`, a daemon): list → plan → apply (or simulate, when
//! dry) for each phase of a [`Job`], in order: snapshot at each source location,
//! replicate to each target, prune each source location.
//!
//! An [`Engine`] holds a config with its policies converted once. [`Engine::run`] lists
//! every root of every location from a [`Source`] (the backends, or a saved listing
//! for plans only), then for each phase:
//!
//! - a **snapshot** or **prune** phase is planned by `zsnap-core`
//!   ([`zsnap_core::snapshot::plan_snapshots`], or [`prune_phase::plan`], which feeds
//!   [`zsnap_core::prune::plan_prune`] with what the location's targets need) and
//!   applied with [`crate::apply::apply`];
//! - a **replicate** phase of a real run goes through
//!   [`crate::replicate::run_replication`], which lists both sides, asks the source about
//!   resume tokens and cursor holds, plans, applies, and re-plans once after a stale
//!   token; a dry run plans it with [`crate::replicate::ask_source`] and
//!   [`zsnap_core::replicate::plan_replication`].
//!
//! A dry run plans each phase on the inventories the previous phases would leave
//! ([`zsnap_core::Plan::simulate_at`]), so a plan of `run` shows the whole run. A real
//! run does the same after a phase whose every step was done, reading back only the
//! snapshots it created (their guids and createtxgs are ZFS's:
//! [`crate::ZfsBackend::list_named`]); after a phase where something failed or was
//! partial, it lists again. So a run that goes well lists each location once, in one
//! `zfs list` for all its roots, plus one listing of the snapshots it took, whatever
//! the number of datasets.
//!
//! A root that cannot be listed (a pool exported, a host unreachable) does not stop the
//! run: it is a [`ListFailure`], and each phase that needs it fails, naming it (a
//! replication stops there; a snapshot or prune phase goes on with the datasets it
//! could list). A phase the planner refuses is recorded in its [`Phase::error`], and
//! the next phases still run. What each phase planned and did is in the [`Outcome`];
//! only what stops the whole job is a [`JobError`].
//!
//! Progress goes to the [`Reporters`]' observer, each step to its journal, and every
//! applied phase to its `applied` callback (the CLI's audit log).
//!
//! # Example
//! A `zsnap run` against an in-memory pool:
//! ```
//! use chrono::{TimeZone, Utc};
//! use zsnap_core::config::Config;
//! use zsnap_exec::fake::FakeZfs;
//! use zsnap_exec::job::{Engine, Reporters, Job, Source};
//! use zsnap_exec::{NoObserver, OneBackend};
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
//! let mut observer = NoObserver;
//! let mut reporters = Reporters::new(&mut observer);
//! let outcome = engine
//!     .run(&Job::Run, now, false, Source::Backends(&mut OneBackend(&mut z)), &mut reporters)
//!     .unwrap();
//! assert!(!outcome.failed());
//! assert!(outcome.did_something());
//! ```

mod engine;
mod error;
mod hook_phase;
mod listing;
mod phase;
pub mod prune_phase;

pub use engine::{Engine, Reporters};
pub use error::JobError;
pub use listing::{ListFailure, Listing, Source};
pub use phase::{results, Job, Outcome, Phase, PhaseKind, StepResult};
