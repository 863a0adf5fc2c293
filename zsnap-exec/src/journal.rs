//! The run journal: JSON lines, one record before and one after every step, so an
//! interrupted run can be explained afterwards ([`unfinished`] names the steps that
//! started and never ended).
//!
//! Each record is one line, flushed and synced to disk before the step it announces
//! runs. Readers must accept unknown fields and unknown `event` values (the format may
//! grow); [`Journal::read`] skips a torn last line (a crash mid-write).

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zsnap_core::{ShortName, Step};

use crate::failure::FailureKind;

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// A run begins.
    RunStarted {
        /// When.
        at: DateTime<Utc>,
        /// The process.
        pid: u32,
        /// Steps in the plan.
        steps: usize,
    },
    /// A step is about to run.
    StepStarted {
        /// When.
        at: DateTime<Utc>,
        /// Its index in the plan.
        index: usize,
        /// The step (boxed: it is much larger than the other records).
        step: Box<Step>,
    },
    /// A step ended or was skipped.
    StepFinished {
        /// When.
        at: DateTime<Utc>,
        /// Its index in the plan.
        index: usize,
        /// `done`, `partial`, `failed` or `skipped`.
        outcome: String,
        /// The error and its causes, for a failed step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The failure class, when a process failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<FailureKind>,
        /// Bytes moved by a transfer, when counted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// Snapshots a destroy step destroyed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        destroyed: Vec<ShortName>,
        /// Snapshots a destroy step left: refused or changed since planning.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        left: Vec<ShortName>,
    },
    /// A phase of a job could not be planned, or only in part (a location or a root
    /// whose listing failed); the other phases went on.
    PhaseFailed {
        /// When.
        at: DateTime<Utc>,
        /// The phase, as `zsnap` names it (`replicate to backup`).
        phase: String,
        /// Why, with its causes.
        error: String,
    },
    /// The run ended.
    RunFinished {
        /// When.
        at: DateTime<Utc>,
        /// Steps done (fully or partially).
        done: usize,
        /// Steps failed.
        failed: usize,
        /// Steps skipped.
        skipped: usize,
    },
}

/// Writing or reading the journal failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file is not safe to use (a link, not a plain file, in a directory others can
    /// write) or cannot be opened.
    #[error("open the journal")]
    Open(#[source] crate::safe_fs::SafeFsError),
    /// The file could not be opened, written or synced.
    #[error("write the journal {path}")]
    Write {
        /// The file (`-` for a writer).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("read the journal {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line (other than a torn last one) is not a record.
    #[error("read the journal {path}: line {line} is not a journal record")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

enum Out {
    File(File),
    Writer(Box<dyn Write + Send>),
}

/// An open journal.
pub struct Journal {
    out: Out,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// The wall clock (chrono is built without its clock feature).
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

impl Journal {
    /// Opens `path` for appending, creating it `0600`: never through a link, and only in
    /// a directory others cannot write (see [`crate::safe_fs`]).
    ///
    /// # Errors
    /// When the directory is unsafe, the path is a link or not a plain file, or it
    /// cannot be opened.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let file = crate::safe_fs::open_append(path).map_err(JournalError::Open)?;
        Ok(Journal {
            out: Out::File(file),
            path: path.to_owned(),
        })
    }

    /// A journal written to any writer (not synced to disk).
    pub fn to_writer(writer: Box<dyn Write + Send>) -> Journal {
        Journal {
            out: Out::Writer(writer),
            path: PathBuf::from("-"),
        }
    }

    /// Appends one record, flushed (and synced, for a file).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&mut self, record: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(record).expect("a journal record always serializes");
        line.push(b'\n');
        let path = &self.path;
        let err = |source| JournalError::Write {
            path: path.clone(),
            source,
        };
        match &mut self.out {
            Out::File(f) => {
                f.write_all(&line).map_err(err)?;
                f.sync_data().map_err(err)?;
            }
            Out::Writer(w) => {
                w.write_all(&line).map_err(err)?;
                w.flush().map_err(err)?;
            }
        }
        Ok(())
    }

    pub(crate) fn run_started(&mut self, steps: usize) -> Result<(), JournalError> {
        self.write(&Record::RunStarted {
            at: now(),
            pid: std::process::id(),
            steps,
        })
    }

    pub(crate) fn step_started(&mut self, index: usize, step: &Step) -> Result<(), JournalError> {
        self.write(&Record::StepStarted {
            at: now(),
            index,
            step: Box::new(step.clone()),
        })
    }

    /// Reads every record of a journal file (never through a link). A last line without
    /// its newline (torn by a crash) is ignored.
    ///
    /// # Errors
    /// When the file cannot be read, or a complete line is not a record.
    pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
        let file = crate::safe_fs::open_read(path).map_err(JournalError::Open)?;
        let mut reader = std::io::BufReader::new(file);
        let mut out = Vec::new();
        let mut line = String::new();
        let mut n = 0;
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|source| JournalError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            if read == 0 {
                return Ok(out);
            }
            n += 1;
            if !line.ends_with('\n') {
                return Ok(out);
            }
            let record = serde_json::from_str(&line).map_err(|source| JournalError::Parse {
                path: path.to_owned(),
                line: n,
                source,
            })?;
            out.push(record);
        }
    }
}

/// The steps of the LAST run in `records` that started and never finished: the run was
/// interrupted while they ran, and their effect is unknown until the next listing.
pub fn unfinished(records: &[Record]) -> Vec<usize> {
    let start = records
        .iter()
        .rposition(|r| matches!(r, Record::RunStarted { .. }))
        .map_or(0, |i| i + 1);
    let mut open: Vec<usize> = Vec::new();
    for r in &records[start..] {
        match r {
            Record::StepStarted { index, .. } => open.push(*index),
            Record::StepFinished { index, .. } => open.retain(|i| i != index),
            _ => {}
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn links_and_shared_directories_are_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("shadow");
        std::fs::write(&secret, "root:$6$secret-hash\n").expect("writable");
        let link = dir.path().join("run.jsonl");
        std::os::unix::fs::symlink(&secret, &link).expect("a link");
        for err in [
            Journal::open(&link).unwrap_err(),
            Journal::read(&link).unwrap_err(),
        ] {
            let chain = crate::failure::error_chain(&err);
            assert!(chain.contains("symbolic link"), "{chain}");
            assert!(!chain.contains("hash"), "{chain}");
        }
        assert_eq!(
            std::fs::read_to_string(&secret).expect("kept"),
            "root:$6$secret-hash\n"
        );
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).expect("a dir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = Journal::open(&shared.join("run.jsonl")).unwrap_err();
        assert!(
            crate::failure::error_chain(&err).contains("writable by other users"),
            "{err}"
        );
    }
}
