//! How a command fails: an error with its causes, the exit status it maps to, and a
//! hint saying what to do. `main` prints it with [`Failure::render`].

use std::fmt::Write as _;

use crate::exit;

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    /// The exit status (see [`crate::exit`]).
    pub status: u8,
    /// The error and its causes.
    pub error: anyhow::Error,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            status: exit::ERROR,
            error: e.into(),
            hint: None,
        }
    }
}

impl Failure {
    /// A usage or config error (exit status 2).
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        Failure {
            status: exit::USAGE,
            ..Failure::from(e)
        }
    }

    /// The same failure with another exit status.
    #[must_use]
    pub fn with_status(mut self, status: u8) -> Self {
        self.status = status;
        self
    }

    /// The same failure with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A failure of a run or listing against real ZFS; when listing failed, the hint
    /// says how to try zsnap without a pool.
    pub fn from_zfs(e: anyhow::Error) -> Self {
        let listing = e
            .chain()
            .any(|c| c.downcast_ref::<zsnap_exec::backend::ListError>().is_some());
        let f = Failure::from(e);
        if listing {
            f.with_hint(
                "check that `zfs` works there and the configured roots exist; to try zsnap without a pool, run `zsnap simulate` or pass --backend fake:/tmp/zsnap-state.json",
            )
        } else {
            f
        }
    }

    /// Whether it is only stdout having been closed (`zsnap plan | head`), which is not
    /// an error.
    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|e| {
            let io = e.downcast_ref::<std::io::Error>().map(std::io::Error::kind);
            let json = e
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind);
            io.or(json) == Some(std::io::ErrorKind::BrokenPipe)
        })
    }

    /// The failure as `--json` prints it on stdout: `{"error": {"message", "causes",
    /// "hint", "exit_code"}}` (see docs/json.md).
    pub fn to_json(&self) -> serde_json::Value {
        let mut chain = self.error.chain();
        let message = chain.next().map(ToString::to_string).unwrap_or_default();
        let causes: Vec<String> = chain.map(ToString::to_string).collect();
        serde_json::json!({
            "error": {
                "message": message,
                "causes": causes,
                "hint": self.hint,
                "exit_code": self.status,
            }
        })
    }

    /// The text for stderr: `error: …`, each cause on its own line, a config error with
    /// its source line, and the hint.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut chain = self.error.chain();
        if let Some(top) = chain.next() {
            let _ = writeln!(out, "error: {top}");
        }
        for cause in chain {
            if let Some(c) = cause.downcast_ref::<zsnap_core::ConfigError>() {
                let snippet = c.snippet();
                let body = snippet.strip_prefix("error: ").unwrap_or(&snippet);
                let _ = writeln!(out, "  caused by: {body}");
            } else {
                let _ = writeln!(out, "  caused by: {cause}");
            }
        }
        if let Some(h) = &self.hint {
            let _ = writeln!(out, "  hint: {h}");
        }
        out
    }
}
