//! Every exit status `zsnap` uses, in one place (documented in the README, "Exit codes").
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success (also when stdout was closed early, e.g. by `head`) |
//! | 1 | error: the command failed and changed nothing, or stopped before its first change |
//! | 2 | usage or config error: bad flags, a config that does not parse or validate |
//! | 3 | partial failure: something was done and something failed (a step, a destroy done in part, a location that could not be listed, an error after a change) |
//! | 4 | another zsnap run holds the lock (a kernel lock: a run that died never blocks the next) |
//!
//! `zsnap check` uses the Nagios plugin codes instead: 0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN (including bad arguments and a config it cannot read).

use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// The command failed.
pub const ERROR: u8 = 1;
/// Bad usage or config.
pub const USAGE: u8 = 2;
/// Some steps failed, others were done.
pub const PARTIAL: u8 = 3;
/// The lock is held.
pub const LOCKED: u8 = 4;

/// Nagios: all is well.
pub const NAGIOS_OK: u8 = 0;
/// Nagios: a warning threshold is crossed.
pub const NAGIOS_WARNING: u8 = 1;
/// Nagios: a critical threshold is crossed.
pub const NAGIOS_CRITICAL: u8 = 2;
/// Nagios: the check itself could not run.
pub const NAGIOS_UNKNOWN: u8 = 3;

/// The status as an [`ExitCode`].
pub fn code(status: u8) -> ExitCode {
    ExitCode::from(status)
}
