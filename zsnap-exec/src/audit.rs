//! The audit log: one JSON object per line for every step zsnap applied — when, which
//! command, the step (as in `--json` plans), and how it ended — and for every change
//! that is not a plan step (an object of a backup store deleted, a stored stream
//! received by a restore). Appended, never rewritten.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::Step;

use crate::backup::{DeletedObject, RestoreRun, RestoreRunError};
use crate::failure::error_chain;
use crate::job::Phase;
use crate::safe_fs::{self, SafeFsError};

/// Why the audit log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Its directory cannot be created, or is unsafe.
    #[error("create the audit log directory")]
    Dir(#[source] SafeFsError),
    /// The file cannot be opened for appending (or is a link, or not a plain file).
    #[error("open the audit log")]
    Open(#[source] SafeFsError),
    /// A line cannot be serialized.
    #[error("serialize an audit line")]
    Serialize(#[source] serde_json::Error),
    /// A line cannot be written.
    #[error("write the audit log {}", .path.display())]
    Write {
        /// The log.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

#[derive(Serialize)]
struct Line<'a> {
    time: DateTime<Utc>,
    command: &'a str,
    phase: String,
    step: &'a Step,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// One hook call of a phase, with its output.
#[derive(Serialize)]
struct HookLine<'a> {
    time: DateTime<Utc>,
    command: &'a str,
    phase: String,
    hook: &'a crate::hooks::HookRun,
}

/// One object of a store deleted (or not).
#[derive(Serialize)]
struct StoreChange<'a> {
    action: &'a str,
    store: &'a str,
    key: &'a str,
    reason: &'a str,
}

/// A stored stream received by a restore (or a restore that failed).
#[derive(Serialize)]
struct Received<'a> {
    action: &'a str,
    store: &'a str,
    key: &'a str,
    target: &'a str,
}

/// A line for a change that is not a step of a plan: an object of a backup store
/// deleted, a stored stream received by a restore.
#[derive(Serialize)]
struct ChangeLine<'a, C: Serialize> {
    time: DateTime<Utc>,
    command: &'a str,
    phase: &'a str,
    change: &'a C,
    result: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl AuditLog {
    /// Opens (creating it `0600` and its directory `0700` if needed) the log at `path`,
    /// never through a link and only in a directory others cannot write (see
    /// [`crate::safe_fs`]).
    ///
    /// # Errors
    /// When the directory is unsafe, the path is a link or not a plain file, or the file
    /// cannot be opened for appending.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        if let Some(dir) = path.parent() {
            safe_fs::create_dir_all(dir).map_err(AuditError::Dir)?;
        }
        let file = safe_fs::open_append(path).map_err(AuditError::Open)?;
        Ok(AuditLog {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one line per applied step of `phase`, and one per hook it ran (with
    /// the hook's output).
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn record(
        &mut self,
        time: DateTime<Utc>,
        command: &str,
        phase: &Phase,
    ) -> Result<(), AuditError> {
        let mut buf = Vec::new();
        for hook in &phase.hooks {
            let line = HookLine {
                time,
                command,
                phase: phase.phase.to_string(),
                hook,
            };
            serde_json::to_writer(&mut buf, &line).map_err(AuditError::Serialize)?;
            buf.push(b'\n');
        }
        for r in phase.results.iter().flatten() {
            let Some(step) = phase.plan.steps.get(r.index) else {
                continue;
            };
            let line = Line {
                time,
                command,
                phase: phase.phase.to_string(),
                step,
                result: &r.outcome,
                error: r.error.as_deref(),
            };
            serde_json::to_writer(&mut buf, &line).map_err(AuditError::Serialize)?;
            buf.push(b'\n');
        }
        self.write(&buf)
    }

    fn write(&mut self, buf: &[u8]) -> Result<(), AuditError> {
        self.file
            .write_all(buf)
            .map_err(|source| AuditError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Appends one line for a change that is not a plan step (`change` is what was
    /// changed, e.g. a store and a key; `result` is `done` or `failed`).
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn record_change(
        &mut self,
        time: DateTime<Utc>,
        command: &str,
        phase: &str,
        change: &impl Serialize,
        result: &str,
        error: Option<&str>,
    ) -> Result<(), AuditError> {
        let line = ChangeLine {
            time,
            command,
            phase,
            change,
            result,
            error,
        };
        let mut buf = serde_json::to_vec(&line).map_err(AuditError::Serialize)?;
        buf.push(b'\n');
        self.write(&buf)
    }

    /// Appends one line per deletion tried from the store `store` (see
    /// [`crate::backup::delete_in_order`]), `done` or `failed` with its error. Every
    /// line is tried; the first write that failed is the error.
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn record_deletions(
        &mut self,
        time: DateTime<Utc>,
        command: &str,
        phase: &str,
        store: &str,
        tried: &[DeletedObject],
    ) -> Result<(), AuditError> {
        let mut first = None;
        for d in tried {
            let change = StoreChange {
                action: "delete",
                store,
                key: &d.key,
                reason: &d.reason,
            };
            let result = if d.error.is_some() { "failed" } else { "done" };
            if let Err(e) =
                self.record_change(time, command, phase, &change, result, d.error.as_deref())
            {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Appends the lines of a restore from `store` into `target` that `command` ran
    /// ([`crate::backup::restore`]): one per stream received (none in a dry run), and
    /// one `failed` line with the error when it failed. Every line is tried; the first
    /// write that failed is the error.
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn record_restore(
        &mut self,
        time: DateTime<Utc>,
        command: &str,
        store: &str,
        target: &str,
        run: &Result<RestoreRun, RestoreRunError>,
        dry_run: bool,
    ) -> Result<(), AuditError> {
        let mut first = None;
        let change = |key| Received {
            action: "receive",
            store,
            key,
            target,
        };
        match run {
            Ok(r) if !dry_run => {
                for key in &r.received {
                    if let Err(e) =
                        self.record_change(time, command, command, &change(key), "done", None)
                    {
                        first.get_or_insert(e);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                let msg = error_chain(e);
                if let Err(e) =
                    self.record_change(time, command, command, &change(""), "failed", Some(&msg))
                {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("shadow");
        std::fs::write(&secret, "root:$6$secret-hash\n").expect("writable");
        let link = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&secret, &link).expect("a link");
        let err = AuditLog::open(&link).expect_err("refused");
        let chain = crate::failure::error_chain(&err);
        assert!(chain.contains("symbolic link"), "{chain}");
        assert!(!chain.contains("hash"), "{chain}");
        assert!(AuditLog::open(&dir.path().join("new/audit.jsonl")).is_ok());
    }

    #[test]
    fn each_deletion_tried_is_one_line_done_or_failed() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("opened");
        let tried = [
            DeletedObject {
                key: "tank%2Fhome/a.zfs".to_owned(),
                reason: "not kept".to_owned(),
                error: None,
            },
            DeletedObject {
                key: "tank%2Fhome/b.zfs".to_owned(),
                reason: "not kept".to_owned(),
                error: Some("delete: refused".to_owned()),
            },
        ];
        let t = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a time");
        log.record_deletions(t, "backups prune", "prune", "dir:/srv/b", &tried)
            .expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["change"]["key"], "tank%2Fhome/a.zfs");
        assert_eq!(lines[0]["change"]["store"], "dir:/srv/b");
        assert_eq!(lines[0]["result"], "done");
        assert!(lines[0].get("error").is_none());
        assert_eq!(lines[1]["result"], "failed");
        assert_eq!(lines[1]["error"], "delete: refused");
        assert_eq!(lines[1]["command"], "backups prune");
    }

    #[test]
    fn a_failed_restore_is_one_failed_line_with_its_error() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("opened");
        let dataset: zsnap_core::DatasetName = "tank/home".parse().expect("a name");
        let run: Result<RestoreRun, RestoreRunError> = Err(RestoreRunError::Resolve(
            zsnap_core::backup::RestoreError::NoBackups {
                dataset,
                incomplete: 0,
            },
        ));
        assert!(!run.as_ref().expect_err("failed").changed_target());
        let t = chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a time");
        log.record_restore(t, "restore", "dir:/srv/b", "pool/home", &run, false)
            .expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one line");
        assert_eq!(line["result"], "failed");
        assert_eq!(line["change"]["action"], "receive");
        assert_eq!(line["change"]["target"], "pool/home");
        assert!(line["error"]
            .as_str()
            .is_some_and(|e| e.contains("no complete backup of tank/home")));
    }
}
