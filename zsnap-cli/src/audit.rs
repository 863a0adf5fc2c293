//! The audit log: one JSON object per line for every step zsnap applied — when, which
//! command, the step (as in `--json` plans), and how it ended. Appended, never rewritten.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use zsnap_core::Step;
use zsnap_exec::job::Phase;
use zsnap_exec::safe_fs;

/// An open audit log.
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
    /// [`zsnap_exec::safe_fs`]).
    ///
    /// # Errors
    /// When the directory is unsafe, the path is a link or not a plain file, or the file
    /// cannot be opened for appending.
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            safe_fs::create_dir_all(dir).context("create the audit log directory")?;
        }
        let file = safe_fs::open_append(path).context("open the audit log")?;
        Ok(AuditLog {
            path: path.to_owned(),
            file,
        })
    }

    /// Appends one line per applied step of `phase`.
    ///
    /// # Errors
    /// When the log cannot be written.
    pub fn record(
        &mut self,
        time: DateTime<Utc>,
        command: &str,
        phase: &Phase,
    ) -> anyhow::Result<()> {
        let Some(results) = &phase.results else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for r in results {
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
            serde_json::to_writer(&mut buf, &line).context("serialize an audit line")?;
            buf.push(b'\n');
        }
        self.file
            .write_all(&buf)
            .with_context(|| format!("write the audit log {}", self.path.display()))
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
    ) -> anyhow::Result<()> {
        let line = ChangeLine {
            time,
            command,
            phase,
            change,
            result,
            error,
        };
        let mut buf = serde_json::to_vec(&line).context("serialize an audit line")?;
        buf.push(b'\n');
        self.file
            .write_all(&buf)
            .with_context(|| format!("write the audit log {}", self.path.display()))
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
        let err = AuditLog::open(&link).err().expect("refused");
        let chain = format!("{err:#}");
        assert!(chain.contains("symbolic link"), "{chain}");
        assert!(!chain.contains("hash"), "{chain}");
        assert!(AuditLog::open(&dir.path().join("new/audit.jsonl")).is_ok());
    }
}
