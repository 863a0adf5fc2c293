//! A changing run as every front-end runs it: under the run lock, each step in a
//! journal, each change in the audit log, and the outcome recorded for `zsnap check`
//! ([`crate::last_run`]).
//!
//! The CLI opens a [`Session`] for each changing command; a daemon opens one for each
//! run it starts, so a manual `zsnap run` and the daemon never run at once (one lock)
//! and `check` sees both. A dry run opens none: it changes nothing, so there is nothing
//! to lock, journal or log.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use zsnap_core::config::Config;
//! use zsnap_exec::fake::FakeZfs;
//! use zsnap_exec::job::{Engine, Job};
//! use zsnap_exec::session::{RunStatus, Session, SessionFiles};
//! use zsnap_exec::{NoObserver, OneBackend};
//!
//! let config = Config::from_toml(
//!     r#"
//!     [paths]
//!     lock_file = "zsnap.lock"
//!     journal_dir = "journal"
//!     audit_log = "audit.jsonl"
//!
//!     [[datasets]]
//!     root = "tank/data"
//!     policy = "p"
//!     [policies.p]
//!     snapshot = { hourly = "hourly" }
//!     keep_counts = { hourly = 24 }
//!     "#,
//!     "zsnap.toml",
//! )?;
//! let dir = tempfile::tempdir()?;
//! let now = "2026-12-07T12:00:00Z".parse()?;
//! let files = SessionFiles::of(&config.paths, dir.path());
//! let mut zfs = FakeZfs::for_config(&config, 1, now)?;
//! let mut session = Session::open(&files, now)?;
//! let run = session.run(&Engine::new(&config), &Job::Run, now, &mut OneBackend(&mut zfs), &mut NoObserver)?;
//! assert_eq!(run.status, RunStatus::Done);
//! assert!(run.problems.is_empty());
//!
//! // Another run cannot start while this session holds the lock.
//! assert!(Session::open(&files, now).is_err());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use zsnap_core::config::Paths;

use crate::apply::{Backends, Observer};
use crate::audit::{AuditError, AuditLog};
use crate::failure::error_chain;
use crate::job::{Engine, Job, JobError, Phase, Reporters};
use crate::journal::{Journal, JournalError};
use crate::last_run::{self, LastRunError, RunRecord};
use crate::lock::{Lock, LockError};
use crate::safe_fs::SafeFsError;
use crate::scheduled::{run_with_backups, RunOutcome, ScheduledBackups};

/// Where a config's run files are, resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionFiles {
    /// The run lock (`[paths] lock_file`).
    pub lock_file: PathBuf,
    /// The journals and `last-run.json` (`[paths] journal_dir`).
    pub journal_dir: PathBuf,
    /// The audit log (`[paths] audit_log`).
    pub audit_log: PathBuf,
}

impl SessionFiles {
    /// The files `paths` names, each relative one taken relative to `base` (the config
    /// file's directory).
    pub fn of(paths: &Paths, base: &Path) -> Self {
        let resolve = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        SessionFiles {
            lock_file: resolve(&paths.lock_file),
            journal_dir: resolve(&paths.journal_dir),
            audit_log: resolve(&paths.audit_log),
        }
    }

    /// Where the outcome of each command's last run is recorded.
    pub fn run_record(&self) -> PathBuf {
        last_run::path(&self.journal_dir)
    }
}

/// A session could not be opened. Reads after "failed to …".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A directory of the run files could not be made.
    #[error("create the directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: SafeFsError,
    },
    /// The lock is held by another run, or unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The journal could not be opened.
    #[error("open the journal {}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: JournalError,
    },
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The lock, journal and audit log of one changing run. The lock is released when the
/// session is dropped (or its process ends, however it ends).
#[derive(Debug)]
pub struct Session {
    _lock: Lock,
    journal: Journal,
    audit: AuditLog,
    run_record: PathBuf,
}

impl Session {
    /// Takes the run lock, then opens a new journal (named by `now` and the process id)
    /// and the audit log.
    ///
    /// # Errors
    /// The lock is held ([`LockError::Held`], naming the holder), or a file or its
    /// directory cannot be made or opened safely.
    pub fn open(files: &SessionFiles, now: DateTime<Utc>) -> Result<Session, SessionError> {
        let mkdir = |path: &Path| {
            crate::safe_fs::create_dir_all(path).map_err(|source| SessionError::CreateDir {
                path: path.to_owned(),
                source,
            })
        };
        if let Some(dir) = files.lock_file.parent() {
            mkdir(dir)?;
        }
        let lock = Lock::acquire(&files.lock_file)?;
        mkdir(&files.journal_dir)?;
        let journal_path = files.journal_dir.join(format!(
            "{}-{}.jsonl",
            now.format("%Y%m%dT%H%M%SZ"),
            std::process::id()
        ));
        let journal = Journal::open(&journal_path).map_err(|source| SessionError::Journal {
            path: journal_path,
            source,
        })?;
        let audit = AuditLog::open(&files.audit_log)?;
        Ok(Session {
            _lock: lock,
            journal,
            audit,
            run_record: files.run_record(),
        })
    }

    /// The audit log, for changes made outside a job (store deletions, restores).
    pub fn audit(&mut self) -> &mut AuditLog {
        &mut self.audit
    }

    /// Runs `job` ([`run_with_backups`]) with each step journaled, each applied phase
    /// and each scheduled store deletion in the audit log, and the run's start and
    /// outcome recorded for `zsnap check` under the job's name.
    ///
    /// # Errors
    /// The start of the run could not be recorded (nothing ran), or the job stopped
    /// ([`JobError`]; recorded as failed).
    pub fn run(
        &mut self,
        engine: &Engine<'_>,
        job: &Job,
        now: DateTime<Utc>,
        backends: &mut dyn Backends,
        observer: &mut dyn Observer,
    ) -> Result<SessionRun, SessionRunError> {
        let command = job.name();
        last_run::write(&self.run_record, command, RunRecord::started(now))
            .map_err(SessionRunError::RecordStart)?;
        let mut problems = Vec::new();
        let audit = &mut self.audit;
        let mut audit_problem: Option<AuditError> = None;
        let mut record = |phase: &Phase| {
            if let Err(e) = audit.record(now, command, phase) {
                audit_problem.get_or_insert(e);
            }
        };
        let run = run_with_backups(
            engine,
            job,
            now,
            false,
            backends,
            &mut Reporters::new(observer)
                .with_journal(Some(&mut self.journal))
                .on_applied(&mut record),
        );
        let outcome = match run {
            Ok(outcome) => outcome,
            Err(source) => {
                let ended =
                    RunRecord::started(now).ended(RunStatus::Failed.code(), [error_chain(&source)]);
                let unrecorded = last_run::write(&self.run_record, command, ended).err();
                return Err(SessionRunError::Job {
                    source: Box::new(source),
                    unrecorded,
                });
            }
        };
        problems.extend(audit_problem.map(AfterRunError::Audit));
        if let Some(b) = &outcome.backups {
            if let Err(e) = audit_scheduled(&mut self.audit, now, command, b) {
                problems.push(AfterRunError::Audit(e));
            }
        }
        let status = RunStatus::of(&outcome);
        let errors = last_run::errors(&outcome.outcome, outcome.backups_failed());
        let ended = RunRecord::started(now).ended(status.code(), errors);
        if let Err(e) = last_run::write(&self.run_record, command, ended) {
            problems.push(AfterRunError::Record(e));
        }
        Ok(SessionRun {
            outcome,
            status,
            problems,
        })
    }
}

/// Logs the store deletions of a run's scheduled backups (they are not plan steps, so
/// the engine's audit lines do not cover them).
///
/// # Errors
/// The audit log could not be written.
pub fn audit_scheduled(
    audit: &mut AuditLog,
    now: DateTime<Utc>,
    command: &str,
    backups: &ScheduledBackups,
) -> Result<(), AuditError> {
    for st in &backups.stores {
        let phase = format!("prune store {}", st.store);
        audit.record_deletions(now, command, &phase, &st.store, &st.deleted)?;
    }
    Ok(())
}

/// How a run ended; [`RunStatus::code`] is the exit status of the `zsnap` command that
/// ran it, and the status [`crate::last_run`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Nothing failed.
    Done,
    /// Something failed and something was changed.
    Partial,
    /// Something failed and nothing was changed.
    Failed,
}

impl RunStatus {
    /// The status of an outcome.
    pub fn of(outcome: &RunOutcome) -> Self {
        if !outcome.failed() {
            RunStatus::Done
        } else if outcome.did_something() {
            RunStatus::Partial
        } else {
            RunStatus::Failed
        }
    }

    /// 0 done, 3 partial, 1 failed.
    pub fn code(self) -> u8 {
        match self {
            RunStatus::Done => 0,
            RunStatus::Partial => 3,
            RunStatus::Failed => 1,
        }
    }
}

/// What [`Session::run`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct SessionRun {
    /// The job's outcome.
    pub outcome: RunOutcome,
    /// How it ended.
    pub status: RunStatus,
    /// What failed after the work was done (the work stays done): audit lines or the
    /// outcome's record that could not be written.
    pub problems: Vec<AfterRunError>,
}

/// Something that failed after a run's work was done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AfterRunError {
    /// A change could not be logged.
    #[error("log the changes in the audit log")]
    Audit(#[source] AuditError),
    /// The outcome could not be recorded for `zsnap check`.
    #[error("record the outcome of this run for `zsnap check`")]
    Record(#[source] LastRunError),
}

/// [`Session::run`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRunError {
    /// The start of the run could not be recorded; nothing ran.
    #[error("record the start of this run for `zsnap check`")]
    RecordStart(#[source] LastRunError),
    /// The job stopped.
    #[error("run the job")]
    Job {
        /// Why.
        #[source]
        source: Box<JobError>,
        /// Why its failure could not be recorded for `zsnap check`, if it could not.
        unrecorded: Option<LastRunError>,
    },
}
