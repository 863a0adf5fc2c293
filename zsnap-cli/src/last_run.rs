//! The outcome of the last run of each changing command (`run`, `snapshot`, `prune`,
//! `replicate`), kept in `last-run.json` next to the journals so `zsnap check` sees a
//! run that failed, and one that started and never ended (still holding the lock, or
//! killed).
//!
//! The file is rewritten whole (temporary file, then rename) while the run lock is
//! held, so two runs never write it at once and a crash leaves the old or the new one.
//! Its size is bounded: a few errors per command, each cut to a few hundred bytes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zsnap_exec::job::Outcome;

use crate::exit;

/// The file's name in `[paths] journal_dir`.
pub const FILE_NAME: &str = "last-run.json";

/// At most this many errors are kept per command.
const MAX_ERRORS: usize = 8;
/// Each error is cut to this many bytes.
const MAX_ERROR_BYTES: usize = 500;
/// A file larger than this is not read (it was not written by zsnap).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// One command's last run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The process.
    pub pid: u32,
    /// When it started (the instant it planned for).
    pub started: DateTime<Utc>,
    /// How it ended; absent while it runs (or when it was killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    /// The phases (or the whole command) that failed, with their errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl RunRecord {
    /// A run that has just started.
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
        matches!(self.status, Some(s) if s == exit::ERROR || s == exit::LOCKED)
    }

    /// Whether some of it was done and some failed (exit status 3).
    pub fn partial(&self) -> bool {
        self.status == Some(exit::PARTIAL)
    }
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
pub fn read(path: &Path) -> anyhow::Result<BTreeMap<String, RunRecord>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("open {}", path.display()))),
    };
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut text,
    )
    .with_context(|| format!("read {}", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!(
            "{} is larger than {MAX_FILE_BYTES} bytes: not a record zsnap wrote",
            path.display()
        );
    }
    // The content is never echoed: only whether it parses.
    serde_json::from_slice(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a run record zsnap wrote (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Records `record` as the last run of `command` in `path`, keeping the other
/// commands' records (an unreadable file is replaced).
///
/// # Errors
/// When the file cannot be written.
pub fn write(path: &Path, command: &str, record: RunRecord) -> anyhow::Result<()> {
    let mut all = read(path).unwrap_or_default();
    all.insert(command.to_owned(), record);
    let json = serde_json::to_vec_pretty(&all).context("serialize the run record")?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    tmp.write_all(&json)
        .and_then(|()| tmp.write_all(b"\n"))
        .with_context(|| format!("write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_bounded_and_kept_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert!(read(&p).unwrap().is_empty());
        let now = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let long = "é".repeat(10_000);
        let r = RunRecord::started(now).ended(exit::PARTIAL, vec![long; 100]);
        write(&p, "run", r).unwrap();
        write(
            &p,
            "snapshot",
            RunRecord::started(now).ended(exit::OK, vec![]),
        )
        .unwrap();
        let all = read(&p).unwrap();
        let run = &all["run"];
        assert!(run.partial() && !run.failed());
        assert_eq!(run.errors.len(), MAX_ERRORS);
        assert!(run
            .errors
            .iter()
            .all(|e| e.len() <= MAX_ERROR_BYTES + "…".len()));
        assert_eq!(all["snapshot"].status, Some(exit::OK));
        assert!(std::fs::metadata(&p).unwrap().len() < 16 * 1024);
        std::fs::write(&p, "root:$6$secret-hash:19000::::::").unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(!e.contains("secret"), "{e}");
    }
}
