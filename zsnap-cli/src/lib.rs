//! The `zsnap` command as a library, so its tests can drive the very command the binary
//! runs. Other front ends run jobs with [`zsnap_exec::job`] directly.
//!
//! Layers, each importing only from the ones below it: [`entry`] (the whole command as
//! a function of its arguments) → [`commands`] (one function per command: load the
//! inputs, call the library, render) → [`backup`], [`status`], [`simulate`] (the
//! commands of one area, with their rendering) → [`guards`] (the library's session —
//! lock, journal, audit log, run record — around a changing command), [`backends`] (the fake pool of `--backend fake:`),
//! [`load`] (config and saved listings) → [`output`] (printing) → [`request`] (the one
//! conversion of the arguments into typed values) → [`args`] (clap), with [`failure`]
//! and [`exit`] beside. The work itself is the library's: the job engine
//! ([`zsnap_exec::job`]), the scheduled backups of a run ([`zsnap_exec::scheduled`]),
//! sessions ([`zsnap_exec::session`]), rehearsals ([`zsnap_exec::rehearsal`]), status
//! and check ([`zsnap_exec::status`],
//! from the listing and the outcome of each changing command's last run,
//! [`zsnap_exec::last_run`]).
#![forbid(unsafe_code)]

pub mod args;
pub mod backends;
pub mod backup;
pub mod commands;
pub mod entry;
pub mod exit;
pub mod failure;
pub mod guards;
pub mod load;
pub mod man;
pub mod output;
pub mod request;
pub mod simulate;
pub mod status;
