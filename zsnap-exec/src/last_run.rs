//! The outcome of the last run of each changing command (`run`, `snapshot`, `prune`,
//! `replicate`), kept in `last-run.json` next to the journals so `zsnap check` (and
//! [`crate::status::check`]) sees a run that failed, and one that started and never
//! ended (still holding the lock, or killed).
//!
//! The file is rewritten whole (temporary file, then rename) while the run lock is
//! held, so two runs never write it at once and a crash leaves the old or the new one.
//! Its size is bounded: a few errors per command, each cut to a few hundred bytes.
//!
//! A record's status is the exit status of the `zsnap` command that ran: 0 done,
//! 1 failed (changed nothing), 3 done in part, 4 the lock was held.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::Outcome;

/// The file's name in `[paths] journal_dir`.
pub const FILE_NAME: &str = "last-run.json";

/// The status of a run that failed and changed nothing.
const FAILED: u8 = 1;
/// The status of a run that did some of its work and failed at the rest.
const PARTIAL: u8 = 3;
/// The status of a run that found the lock held.
const LOCKED: u8 = 4;

/// At most this many errors are kept per command.
const MAX_ERRORS: usize = 8;
/// Each error is cut to this many bytes.
const MAX_ERROR_BYTES: usize = 500;
/// A file larger than this is not read (it was not written by zsnap).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One command's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The process.
    pub pid: u32,
    /// When it started (the instant it planned for).
    pub started: DateTime<Utc>,
    /// How it ended (the command's exit status); absent while it runs (or when it was
    /// killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    /// The phases (or the whole command) that failed, with their errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl RunRecord {
    /// A run of this process that has just started.
    pub fn started(now: DateTime<Utc>) -> Self {
        RunRecord {
            pid: std::process::id(),
            started: now,
            status: None,
            errors: Vec::new(),
        }
    }

    /// The same run, ended with `status` and these errors (bounded).
    #[must_use]
    pub fn ended(mut self, status: u8, errors: impl IntoIterator<Item = String>) -> Self {
        self.status = Some(status);
        self.errors = errors
            .into_iter()
            .take(MAX_ERRORS)
            .map(|e| cut(&e, MAX_ERROR_BYTES))
            .collect();
        self
    }

    /// Whether it ended with an error that changed nothing (exit status 1 or 4).
    pub fn failed(&self) -> bool {
        matches!(self.status, Some(FAILED | LOCKED))
    }

    /// Whether some of it was done and some failed (exit status 3).
    pub fn partial(&self) -> bool {
        self.status == Some(PARTIAL)
    }
}

/// The record file could not be read or written. Reads after "failed to …"; render it
/// with every cause with [`error_chain`](crate::failure::error_chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LastRunError {
    /// Opening or reading the file failed.
    #[error("read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large to be a record zsnap wrote.
    #[error("{} is larger than {MAX_FILE_BYTES} bytes: not a record zsnap wrote", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file does not parse (its content is never echoed).
    #[error("{} is not a run record zsnap wrote (line {line}, column {column})", path.display())]
    NotARecord {
        /// The file.
        path: PathBuf,
        /// Where it stops parsing.
        line: usize,
        /// Where it stops parsing.
        column: usize,
    },
    /// Writing the file (a temporary file, then a rename) failed.
    #[error("write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The errors of a job's outcome: each failed phase with its error or its failed
/// steps, and whether scheduled backups failed.
pub fn errors(outcome: &Outcome, backups_failed: bool) -> Vec<String> {
    let mut out = Vec::new();
    for p in outcome.phases.iter().filter(|p| p.failed()) {
        if let Some(e) = &p.error {
            out.push(format!("{}: {e}", p.phase));
        }
        for r in p.results.iter().flatten() {
            match (&r.error, r.outcome.as_str()) {
                (Some(e), _) => out.push(format!("{}: step {}: {e}", p.phase, r.index + 1)),
                (None, "partial") => out.push(format!(
                    "{}: step {} was done only in part",
                    p.phase,
                    r.index + 1
                )),
                _ => {}
            }
        }
    }
    if backups_failed {
        out.push("scheduled backups: some failed (see `zsnap status`)".to_owned());
    }
    out
}

/// The record file of a config's `journal_dir`.
pub fn path(journal_dir: &Path) -> PathBuf {
    journal_dir.join(FILE_NAME)
}

/// Every command's last run, as recorded in `path` (none when the file does not exist).
///
/// # Errors
/// An unreadable file, or one that is not a record zsnap wrote.
pub fn read(path: &Path) -> Result<BTreeMap<String, RunRecord>, LastRunError> {
    let io = |source| LastRunError::Read {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io(e)),
    };
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut text,
    )
    .map_err(io)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(LastRunError::TooLarge {
            path: path.to_owned(),
        });
    }
    serde_json::from_slice(&text).map_err(|e| LastRunError::NotARecord {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
    })
}

/// Records `record` as the last run of `command` in `path`, keeping the other
/// commands' records (an unreadable file is replaced).
///
/// # Errors
/// When the file cannot be written.
pub fn write(path: &Path, command: &str, record: RunRecord) -> Result<(), LastRunError> {
    let mut all = read(path).unwrap_or_default();
    all.insert(command.to_owned(), record);
    let json = serde_json::to_vec_pretty(&all).map_err(|e| LastRunError::Write {
        path: path.to_owned(),
        source: e.into(),
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let failed = |source| LastRunError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    tmp.write_all(&json)
        .and_then(|()| tmp.write_all(b"\n"))
        .map_err(failed)?;
    tmp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::error_chain;

    #[test]
    fn records_are_bounded_and_kept_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert!(read(&p).unwrap().is_empty());
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let long = "é".repeat(10_000);
        let r = RunRecord::started(now).ended(PARTIAL, vec![long; 100]);
        write(&p, "run", r).unwrap();
        write(&p, "snapshot", RunRecord::started(now).ended(0, vec![])).unwrap();
        let all = read(&p).unwrap();
        let run = &all["run"];
        assert!(run.partial() && !run.failed());
        assert_eq!(run.errors.len(), MAX_ERRORS);
        assert!(run
            .errors
            .iter()
            .all(|e| e.len() <= MAX_ERROR_BYTES + "…".len()));
        assert_eq!(all["snapshot"].status, Some(0));
        assert!(std::fs::metadata(&p).unwrap().len() < 16 * 1024);
        std::fs::write(&p, "root:$6$secret-hash:19000::::::").unwrap();
        let e = error_chain(&read(&p).unwrap_err());
        assert!(!e.contains("secret"), "{e}");
    }
}
