//! The [`Session`] a changing command runs in (the library's run lock, journal, audit
//! log and run record), opened with the config's paths and mapped to exit statuses.

use zsnap_core::config::Config;
use zsnap_exec::audit::AuditLog;
use zsnap_exec::lock::LockError;
use zsnap_exec::session::{Session, SessionError, SessionFiles};

use crate::exit;
use crate::failure::Failure;
use crate::request::Request;

fn session_failure(e: SessionError) -> Failure {
    match &e {
        SessionError::Lock(LockError::Held { pid, .. }) => {
            let hint = match pid {
                Some(pid) => {
                    format!("another zsnap (process {pid}) is running; try again when it ends")
                }
                None => "another zsnap is running; try again when it ends".to_owned(),
            };
            Failure::from(e).with_status(exit::LOCKED).with_hint(hint)
        }
        SessionError::Lock(_) => Failure::from(e).with_hint("check the lock_file path in [paths]"),
        _ => Failure::from(e),
    }
}

/// The session of a changing command: none for a dry run or a saved listing.
///
/// # Errors
/// The lock is held (exit 4), or a file cannot be made or opened.
pub fn session(req: &Request, config: &Config, dry_run: bool) -> Result<Option<Session>, Failure> {
    if dry_run || req.inventory.is_some() {
        return Ok(None);
    }
    let base = req.config.parent().unwrap_or(std::path::Path::new("."));
    Session::open(&SessionFiles::of(&config.paths, base), req.now)
        .map(Some)
        .map_err(session_failure)
}

/// The session of a command run with a config; none without one (a store named on the
/// command line alone).
///
/// # Errors
/// See [`session`].
pub fn optional_session(
    req: &Request,
    config: Option<&Config>,
    dry_run: bool,
) -> Result<Option<Session>, Failure> {
    Ok(config
        .map(|c| session(req, c, dry_run))
        .transpose()?
        .flatten())
}

/// The audit log of `session`, if any.
pub fn audit_of(session: &mut Option<Session>) -> Option<&mut AuditLog> {
    session.as_mut().map(Session::audit)
}
