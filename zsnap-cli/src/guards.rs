//! What the changing commands set up around the library's work: the run lock, the
//! journal, the audit log, and where the outcome is recorded for `zsnap check`.

use std::path::PathBuf;

use anyhow::Context as _;
use zsnap_core::config::Config;
use zsnap_exec::audit::AuditLog;
use zsnap_exec::journal::Journal;
use zsnap_exec::last_run;
use zsnap_exec::lock::{Lock, LockError};

use crate::exit;
use crate::failure::Failure;
use crate::load::resolve;
use crate::request::Request;

fn lock_failure(e: LockError) -> Failure {
    match &e {
        LockError::Held { pid, .. } => {
            let hint = match pid {
                Some(pid) => {
                    format!("another zsnap (process {pid}) is running; try again when it ends")
                }
                None => "another zsnap is running; try again when it ends".to_owned(),
            };
            Failure::from(e).with_status(exit::LOCKED).with_hint(hint)
        }
        _ => Failure::from(e).with_hint("check the lock_file path in [paths]"),
    }
}

/// What the changing commands set up around the engine: lock, journal, audit log.
pub struct RunGuards {
    _lock: Option<Lock>,
    /// The journal (none in a dry run).
    pub journal: Option<Journal>,
    /// The audit log (none in a dry run).
    pub audit: Option<AuditLog>,
    /// Where the outcome of the run is recorded for `zsnap check` (none in a dry run).
    pub run_record: Option<PathBuf>,
}

/// Takes the run lock and opens the journal and audit log of `config` (nothing for a
/// dry run or a saved listing).
///
/// # Errors
/// The lock is held, or a path cannot be created or opened.
pub fn guards(req: &Request, config: &Config, dry_run: bool) -> Result<RunGuards, Failure> {
    if dry_run || req.inventory.is_some() {
        return Ok(RunGuards {
            _lock: None,
            journal: None,
            audit: None,
            run_record: None,
        });
    }
    let lock_path = resolve(&req.config, &config.paths.lock_file);
    if let Some(dir) = lock_path.parent() {
        zsnap_exec::safe_fs::create_dir_all(dir).context("create the lock's directory")?;
    }
    let lock = Lock::acquire(&lock_path).map_err(lock_failure)?;
    let journal_dir = resolve(&req.config, &config.paths.journal_dir);
    zsnap_exec::safe_fs::create_dir_all(&journal_dir).context("create the journal directory")?;
    let journal_path = journal_dir.join(format!(
        "{}-{}.jsonl",
        req.now.format("%Y%m%dT%H%M%SZ"),
        std::process::id()
    ));
    let journal = Journal::open(&journal_path)
        .with_context(|| format!("open the journal {}", journal_path.display()))?;
    let audit = AuditLog::open(&resolve(&req.config, &config.paths.audit_log))?;
    Ok(RunGuards {
        _lock: Some(lock),
        journal: Some(journal),
        audit: Some(audit),
        run_record: Some(last_run::path(&journal_dir)),
    })
}

/// The lock, journal and audit log of a command run with a config; none without one
/// (a store named on the command line alone).
pub fn optional_guards(
    req: &Request,
    config: Option<&Config>,
    dry_run: bool,
) -> Result<Option<RunGuards>, Failure> {
    config.map(|c| guards(req, c, dry_run)).transpose()
}

/// The audit log of `guards`, if any.
pub fn guards_audit(guards: &mut Option<RunGuards>) -> Option<&mut AuditLog> {
    guards.as_mut().and_then(|g| g.audit.as_mut())
}
