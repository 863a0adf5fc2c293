//! The `zsnap` command as a library, so its tests (and other front ends) can drive the
//! very loop the binary runs.
//!
//! Layering: [`entry`] (the whole command as a function of its arguments) → [`args`]
//! (clap) → [`request`] (one conversion into typed values) →
//! [`commands`] (one function per command) → [`engine`] (list → plan → apply per phase)
//! on `zsnap-core` planners and `zsnap-exec` backends. Everything printed is rendered
//! from those values ([`output`]); exit statuses live in [`exit`], and the outcome of
//! each changing command's last run, which `zsnap check` reads, in [`last_run`].
#![forbid(unsafe_code)]

pub mod args;
pub mod audit;
pub mod backends;
pub mod backup;
pub mod commands;
pub mod engine;
pub mod entry;
pub mod exit;
pub mod failure;
pub mod last_run;
pub mod man;
pub mod output;
pub mod prune;
pub mod request;
pub mod simulate;
pub mod status;
