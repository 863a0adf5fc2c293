//! The `zsnap` command as a library, so its tests can drive the very command the binary
//! runs. Other front ends run jobs with [`zsnap_exec::job`] directly.
//!
//! Layering: [`entry`] (the whole command as a function of its arguments) → [`args`]
//! (clap) → [`request`] (one conversion into typed values) →
//! [`commands`] (one function per command) → the job engine of `zsnap-exec`
//! ([`zsnap_exec::job`]: list → plan → apply per phase) on `zsnap-core` planners and
//! `zsnap-exec` backends. Everything printed is rendered from those values ([`output`]);
//! exit statuses live in [`exit`]. `zsnap status` and `zsnap check` are computed by
//! [`zsnap_exec::status`] from the listing and the outcome of each changing command's
//! last run ([`zsnap_exec::last_run`]); [`status`] gathers those inputs and renders.
#![forbid(unsafe_code)]

pub mod args;
pub mod audit;
pub mod backends;
pub mod backup;
pub mod commands;
pub mod entry;
pub mod exit;
pub mod failure;
pub mod man;
pub mod output;
pub mod request;
pub mod simulate;
pub mod status;
