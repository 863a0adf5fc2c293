//! What a failed `zfs` (or `ssh`) process said, classified.
//!
//! [`classify`] is a pure function of the exit status and the standard error text, so it
//! is tested against stderr captured from real OpenZFS. A [`ZfsFailure`] always keeps the
//! stderr verbatim, whatever its [`FailureKind`]: nothing the tool said is swallowed,
//! including by [`FailureKind::Other`].
//!
//! OpenZFS 2.3 says "it's being held" for a held snapshot; older releases said only
//! "dataset is busy". Backends that know the snapshot's `userrefs` refine
//! [`FailureKind::Busy`] into [`FailureKind::Held`] (see [`ZfsFailure::refine_held`]), so
//! both read the same.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[expect(
    clippy::exhaustive_enums,
    reason = "a process exits with a code, dies of a signal, or its status is unknown"
)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// The status could not be read.
    Unknown,
}

impl Exit {
    /// Reads a process status.
    pub fn from_status(status: std::process::ExitStatus) -> Exit {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = status.signal() {
                return Exit::Signal(sig);
            }
        }
        match status.code() {
            Some(c) => Exit::Code(c),
            None => Exit::Unknown,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::Unknown => f.write_str("unknown exit status"),
        }
    }
}

/// The class of a failure, as far as zsnap's decisions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The dataset, snapshot or bookmark does not exist.
    NoSuchDataset,
    /// The dataset or snapshot is in use (`EBUSY`).
    Busy,
    /// The snapshot has user holds (a [`FailureKind::Busy`] refined by the backend).
    Held,
    /// The snapshot has clones.
    HasClones,
    /// Not allowed (missing `zfs allow` delegation, not root).
    PermissionDenied,
    /// The pool is out of space.
    NoSpace,
    /// The target holds partial state of an interrupted `zfs receive -s`.
    ResumeStatePresent,
    /// The send stream is truncated or corrupt.
    StreamCorrupt,
    /// ssh could not reach the host or lost the connection.
    SshUnreachable,
    /// ssh reached the host but authentication failed.
    SshAuth,
    /// The name already exists.
    AlreadyExists,
    /// The process was killed by a signal.
    Killed,
    /// None of the above; read the stderr.
    Other,
    /// A `receive_resume_token` that cannot be resumed (`zfs send -t`): the snapshot it
    /// was sending, or its incremental source, is gone or was replaced on the source, or
    /// the token is corrupt. Only aborting the partial receive (`zfs receive -A`) helps.
    StaleResumeToken,
    /// The snapshot has no user hold with this tag (`zfs release`).
    NoSuchTag,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::NoSuchDataset => "does not exist",
            FailureKind::Busy => "busy",
            FailureKind::Held => "held",
            FailureKind::HasClones => "has clones",
            FailureKind::PermissionDenied => "permission denied",
            FailureKind::NoSpace => "out of space",
            FailureKind::ResumeStatePresent => "partial receive state present",
            FailureKind::StreamCorrupt => "stream corrupt or incomplete",
            FailureKind::SshUnreachable => "ssh connection failed",
            FailureKind::SshAuth => "ssh authentication failed",
            FailureKind::AlreadyExists => "already exists",
            FailureKind::Killed => "killed",
            FailureKind::Other => "failed",
            FailureKind::StaleResumeToken => "resume token stale",
            FailureKind::NoSuchTag => "no such hold tag",
        })
    }
}

/// How much of a child's stderr is kept: its first and its last this many bytes.
pub const STDERR_KEEP: usize = 32 * 1024;

/// Reads a child's stderr to its end, keeping only the first and last [`STDERR_KEEP`]
/// bytes (and saying how many were cut between them), so a process that writes without
/// end cannot fill zsnap's memory. Lossy UTF-8.
pub fn read_stderr_bounded(mut r: impl std::io::Read) -> String {
    let mut head: Vec<u8> = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut cut: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut chunk = &buf[..n];
        let room = STDERR_KEEP.saturating_sub(head.len());
        let (to_head, rest) = chunk.split_at(room.min(chunk.len()));
        head.extend_from_slice(to_head);
        chunk = rest;
        tail.extend(chunk);
        if tail.len() > STDERR_KEEP {
            let over = tail.len() - STDERR_KEEP;
            tail.drain(..over);
            cut += over as u64;
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if cut > 0 {
        text.push_str(&format!("\n[… {cut} bytes of stderr not kept …]\n"));
    }
    text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    text
}

/// `text` with its control characters (escape sequences, carriage returns, bells; all
/// but newline and tab) written as `\u{1b}`-style escapes, so that what a remote program
/// wrote cannot move the cursor, recolour or rewrite a terminal. Used wherever a child's
/// output is shown.
///
/// # Example
/// ```
/// use zsnap_exec::failure::escape_controls;
/// assert_eq!(escape_controls("cannot open \u{1b}[2Jx\r\n"), "cannot open \\u{1b}[2Jx\\r\n");
/// ```
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A failed `zfs` (or `ssh`) run: its class, how it ended, and its stderr verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub struct ZfsFailure {
    /// The class.
    pub kind: FailureKind,
    /// How the process ended.
    pub exit: Exit,
    /// Everything it wrote to stderr, verbatim.
    pub stderr: String,
}

impl fmt::Display for ZfsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What a remote host wrote reaches a terminal through this: no escape sequences.
        let text = escape_controls(self.stderr.trim_end());
        if text.is_empty() {
            write!(f, "{} ({}, nothing on stderr)", self.kind, self.exit)
        } else {
            write!(f, "{} ({}): {}", self.kind, self.exit, text)
        }
    }
}

impl ZfsFailure {
    /// Classifies a failure with [`classify`].
    pub fn new(exit: Exit, stderr: impl Into<String>) -> Self {
        let stderr = stderr.into();
        ZfsFailure {
            kind: classify(exit, &stderr),
            exit,
            stderr,
        }
    }

    /// A failure of a known class (the fake backend builds these).
    pub fn with_kind(kind: FailureKind, exit: Exit, stderr: impl Into<String>) -> Self {
        ZfsFailure {
            kind,
            exit,
            stderr: stderr.into(),
        }
    }

    /// Turns "busy" into "held" when the snapshot is known to have user holds.
    #[must_use]
    pub fn refine_held(mut self, userrefs: u64) -> Self {
        if self.kind == FailureKind::Busy && userrefs > 0 {
            self.kind = FailureKind::Held;
        }
        self
    }
}

/// Whether stderr is empty or only a shell's report of a signal.
fn killed_by_shell(stderr: &str) -> bool {
    let last = stderr.trim().lines().last().unwrap_or("");
    last.is_empty()
        || [
            "Killed",
            "Terminated",
            "Hangup",
            "Interrupt",
            "Aborted",
            "Broken pipe",
        ]
        .iter()
        .any(|w| last.contains(w))
}

/// ssh exits with 255 when it fails itself (rather than the remote command).
const SSH_EXIT: i32 = 255;

/// Classifies a failed run from its exit status and stderr.
///
/// The order of the checks matters: the most specific texts come first (a receive that
/// fails because of partial state also mentions the destination; a busy destroy also
/// names the snapshot).
///
/// # Example
/// ```
/// use zsnap_exec::failure::{classify, Exit, FailureKind};
/// let k = classify(Exit::Code(1), "cannot destroy snapshot tank/a@x: snapshot is cloned\n");
/// assert_eq!(k, FailureKind::HasClones);
/// let k = classify(Exit::Code(255), "ssh: connect to host h port 22: Connection refused\n");
/// assert_eq!(k, FailureKind::SshUnreachable);
/// assert_eq!(classify(Exit::Signal(9), ""), FailureKind::Killed);
/// ```
pub fn classify(exit: Exit, stderr: &str) -> FailureKind {
    match exit {
        Exit::Signal(_) => return FailureKind::Killed,
        // A remote shell that ran zfs without exec reports a signal as 128 + n; zfs
        // itself exits with 0, 1, 2 or 255.
        // The shell may say so ("Killed", "bash: line 1: 42 Terminated zfs …").
        Exit::Code(c) if (129..=128 + 64).contains(&c) && killed_by_shell(stderr) => {
            return FailureKind::Killed
        }
        _ => {}
    }
    let has = |needle: &str| stderr.contains(needle);
    let lower = stderr.to_ascii_lowercase();
    let has_lower = |needle: &str| lower.contains(needle);
    if exit == Exit::Code(SSH_EXIT) {
        if has("Permission denied (")
            || has("Host key verification failed")
            || has("Too many authentication failures")
            || has("no matching host key type")
        {
            return FailureKind::SshAuth;
        }
        if has("ssh:")
            || has("Connection closed")
            || has("Connection refused")
            || has("Connection reset")
            || has("Connection timed out")
            || has("closed by remote host")
            || has("Could not resolve hostname")
            || has("No route to host")
            || has("client_loop:")
            || has("Broken pipe")
            || has("kex_exchange_identification")
            || has("Network is unreachable")
        {
            return FailureKind::SshUnreachable;
        }
    }
    if has("cannot resume send:")
        && (has("used in the initial send no longer exists")
            || has("is no longer the same snapshot used in the initial send")
            || (has("incremental source") && has("no longer exists"))
            || has("resume token is corrupt"))
    {
        FailureKind::StaleResumeToken
    } else if has("partially-complete state") || has("contains partially-complete") {
        FailureKind::ResumeStatePresent
    } else if has("checksum mismatch")
        || has("incomplete stream")
        || has("invalid stream")
        || has("corrupt stream")
        || has("stream is corrupt")
        || has("stream has unsupported feature")
    {
        FailureKind::StreamCorrupt
    } else if has("it's being held") {
        FailureKind::Held
    } else if has("snapshot is cloned") || has("has dependent clones") {
        FailureKind::HasClones
    } else if has("dataset is busy") || has("pool or dataset is busy") || has("is busy") {
        FailureKind::Busy
    } else if has_lower("permission denied") || has("Operation not permitted") {
        FailureKind::PermissionDenied
    } else if has("out of space") || has("No space left") || has("quota exceeded") {
        FailureKind::NoSpace
    } else if has("no such tag on this dataset") {
        FailureKind::NoSuchTag
    } else if has("already exists") || has("bookmark exists") || has("' exists\n") {
        FailureKind::AlreadyExists
    } else if has("does not exist")
        || has("no such pool")
        || has("could not find any snapshots to destroy")
        || has("no such dataset")
    {
        FailureKind::NoSuchDataset
    } else {
        FailureKind::Other
    }
}

/// An error and each of its causes on one line, joined by ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: i32, s: &str) -> FailureKind {
        classify(Exit::Code(code), s)
    }

    #[test]
    fn openzfs_texts() {
        use FailureKind::*;
        let cases = [
            (1, "cannot open 'src/nope': dataset does not exist\n", NoSuchDataset),
            (1, "could not find any snapshots to destroy; check snapshot names.\n", NoSuchDataset),
            (1, "cannot destroy snapshot src/a@x: dataset is busy\n", Busy),
            (1, "cannot destroy snapshot src/a@x: snapshot is cloned\n", HasClones),
            (1, "cannot destroy snapshot src/a@x: permission denied\n", PermissionDenied),
            (1, "cannot receive incremental stream: out of space\n", NoSpace),
            (
                1,
                "cannot receive incremental stream: destination dst/a contains partially-complete state from \"zfs receive -s\".\n",
                ResumeStatePresent,
            ),
            (
                1,
                "cannot receive incremental stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n",
                StreamCorrupt,
            ),
            (1, "cannot receive: invalid stream (bad magic number)\n", StreamCorrupt),
            (1, "cannot create snapshot 'src/a@x': dataset already exists\n", AlreadyExists),
            (1, "cannot create bookmark 'src/a#b': bookmark exists\n", AlreadyExists),
            (
                1,
                "cannot receive new filesystem stream: destination 'dst/a' exists\nmust specify -F to overwrite it\n",
                AlreadyExists,
            ),
            (1, "cannot hold snapshot 'src/a@x': tag already exists on this dataset\n", AlreadyExists),
            (2, "internal error: something new\n", Other),
            (1, "", Other),
        ];
        for (code, text, want) in cases {
            assert_eq!(k(code, text), want, "{text:?}");
        }
    }

    #[test]
    fn ssh_texts_only_with_ssh_exit_status() {
        use FailureKind::*;
        assert_eq!(
            k(
                255,
                "ssh: connect to host 127.0.0.1 port 2222: Connection refused\n"
            ),
            SshUnreachable
        );
        assert_eq!(
            k(
                255,
                "ssh: Could not resolve hostname nohost: Name or service not known\n"
            ),
            SshUnreachable
        );
        assert_eq!(
            k(255, "client_loop: send disconnect: Broken pipe\n"),
            SshUnreachable
        );
        assert_eq!(
            k(255, "Connection to h closed by remote host.\n"),
            SshUnreachable
        );
        assert_eq!(
            k(255, "root@h: Permission denied (publickey,password).\n"),
            SshAuth
        );
        assert_eq!(k(255, "Host key verification failed.\n"), SshAuth);
        // The same words from zfs itself (exit 1) are zfs's own.
        assert_eq!(
            k(1, "cannot destroy snapshot a@b: permission denied\n"),
            PermissionDenied
        );
        assert_eq!(classify(Exit::Signal(9), "whatever"), Killed);
        // Through a remote shell that did not exec zfs: 128 + SIGKILL.
        assert_eq!(k(137, ""), Killed);
        assert_eq!(k(141, ""), Killed);
        assert_eq!(k(137, "Killed\n"), Killed);
        assert_eq!(k(143, "bash: line 1: 42 Terminated  zfs list\n"), Killed);
        assert_eq!(
            k(137, "cannot open 'x': dataset does not exist\n"),
            NoSuchDataset
        );
    }

    #[test]
    fn held_is_a_refined_busy() {
        let f = ZfsFailure::new(
            Exit::Code(1),
            "cannot destroy snapshot a/b@c: dataset is busy\n",
        );
        assert_eq!(f.kind, FailureKind::Busy);
        assert_eq!(f.clone().refine_held(0).kind, FailureKind::Busy);
        let held = f.refine_held(2);
        assert_eq!(held.kind, FailureKind::Held);
        assert_eq!(
            held.stderr,
            "cannot destroy snapshot a/b@c: dataset is busy\n"
        );
    }

    #[test]
    fn messages_keep_the_stderr() {
        let f = ZfsFailure::new(
            Exit::Code(1),
            "cannot destroy snapshot a/b@c: dataset is busy\n",
        );
        insta::assert_snapshot!(f, @"busy (exit status 1): cannot destroy snapshot a/b@c: dataset is busy");
        let f = ZfsFailure::new(Exit::Code(3), "something zsnap never saw\n");
        insta::assert_snapshot!(f, @"failed (exit status 3): something zsnap never saw");
        let f = ZfsFailure::new(Exit::Signal(9), "");
        insta::assert_snapshot!(f, @"killed (killed by signal 9, nothing on stderr)");
    }

    /// Real OpenZFS 2.3 stderr captured on the testbed, when the captures are present:
    /// `zsnap-core/tests/fixtures/real/stderr/NAME.txt`, first line `exit=N`, then the
    /// stderr. Files whose name names a class must classify as it.
    #[test]
    fn real_openzfs_captures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../zsnap-core/tests/fixtures/real/stderr");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        use FailureKind::*;
        // Every capture of `testbed/capture-fixtures.sh`, by file stem.
        let expectations: &[(&str, FailureKind)] = &[
            ("create-full-pool", NoSpace),
            ("destroy-busy-dataset", Busy),
            ("destroy-held-snapshot", Held),
            ("destroy-nonexistent-dataset", NoSuchDataset),
            ("destroy-nonexistent-snapshot", NoSuchDataset),
            ("destroy-snapshot-with-clones", HasClones),
            ("interrupted-full-recv", StreamCorrupt),
            ("interrupted-incremental-recv", StreamCorrupt),
            ("list-nonexistent-dataset", NoSuchDataset),
            ("load-key-wrong-key", Other),
            ("permission-denied-destroy-dataset", PermissionDenied),
            ("permission-denied-destroy", PermissionDenied),
            ("permission-denied-snapshot", PermissionDenied),
            ("recv-existing-without-force", AlreadyExists),
            // The target has partial state, but zfs reports that it exists.
            ("recv-full-into-resumable", AlreadyExists),
            ("recv-full-pool", NoSpace),
            ("recv-garbage-stream", StreamCorrupt),
            ("recv-incremental-base-mismatch", Other),
            ("recv-incremental-into-resumable", ResumeStatePresent),
            ("recv-incremental-missing-target", NoSuchDataset),
            ("recv-truncated-stream", StreamCorrupt),
            // Exit 255 from zfs itself: not mistaken for ssh. A corrupt token can only
            // be given up, like a stale one.
            ("send-invalid-resume-token", StaleResumeToken),
            ("snapshot-exists-atomic", AlreadyExists),
            ("snapshot-exists", AlreadyExists),
            ("snapshot-full-pool", NoSpace),
            ("unmount-busy-dataset", Busy),
            ("write-enospc", NoSpace),
            ("write-over-quota", NoSpace),
        ];
        let mut checked = 0;
        for entry in entries {
            let path = entry.expect("a readable fixture directory").path();
            if path.extension().and_then(|e| e.to_str()) != Some("txt") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable fixture");
            let (first, stderr) = text.split_once('\n').unwrap_or((&text, ""));
            let code: i32 = first
                .strip_prefix("exit=")
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or_else(|| panic!("{}: first line is not exit=N", path.display()));
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let failure = ZfsFailure::new(Exit::Code(code), stderr);
            assert_eq!(failure.stderr, stderr, "stderr kept verbatim");
            if let Some((_, want)) = expectations.iter().find(|(name, _)| *name == stem) {
                assert_eq!(failure.kind, *want, "{}: {stderr:?}", path.display());
                checked += 1;
            } else if stem.ends_with(".send") {
                // The sending side of a pipeline: SIGPIPE through a shell (141).
                assert_ne!(failure.kind, SshUnreachable, "{}", path.display());
            }
        }
        assert!(checked >= 20, "only {checked} captures classified");
    }
}
