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
//! progress events, a JSON-lines [`journal::Journal`] and a pid [`lock::Lock`].
//! Failures are classified from exit status and stderr by [`failure::classify`], and the
//! stderr is always kept verbatim.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![expect(
    clippy::result_large_err,
    reason = "errors carry their context (names, the verbatim stderr) and only travel cold paths"
)]

pub mod apply;
pub mod backend;
pub mod cli;
pub mod failure;
pub mod fake;
pub mod journal;
pub mod lock;
pub mod quote;

pub use apply::{
    apply, Backends, NoObserver, Observer, OneBackend, Report, StepOutcome, StepReport,
};
pub use backend::{
    DestroyReport, PropertyTarget, ReceiveOutcome, ReceiveRequest, SendRequest, SendStream,
    ZfsBackend,
};
pub use failure::{FailureKind, ZfsFailure};
