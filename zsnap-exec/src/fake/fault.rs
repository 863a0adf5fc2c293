//! Faults the fake injects: on the Nth call of an operation, optionally at byte K of a
//! stream.

use serde::{Deserialize, Serialize};

use crate::failure::{Exit, ZfsFailure};

/// An operation of the fake, counted separately for fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultOp {
    /// `zfs list` (including the re-check listing of a destroy in the CLI backend).
    List,
    /// `zfs snapshot`.
    Snapshot,
    /// One `zfs destroy` call of snapshots.
    Destroy,
    /// `zfs hold`.
    Hold,
    /// `zfs release`.
    Release,
    /// `zfs bookmark`.
    Bookmark,
    /// `zfs destroy DATASET#BOOKMARK`.
    DestroyBookmark,
    /// `zfs set`.
    SetProperty,
    /// `zfs get`.
    GetProperty,
    /// `zfs send` (a stream).
    Send,
    /// `zfs send -nvP` (a size estimate, or what a resume token brings): no stream.
    SendDry,
    /// `zfs receive`.
    Receive,
    /// `zfs receive -A`.
    AbortReceive,
    /// `zpool list` or `zpool status` (each counts as one call).
    Zpool,
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultEffect {
    /// The process is killed (SIGKILL).
    Killed,
    /// The pool runs out of space (`ENOSPC`).
    NoSpace,
    /// The dataset is busy (`EBUSY`); in a destroy, the first member is refused.
    Busy,
    /// Permission denied (`EPERM`).
    PermissionDenied,
    /// The ssh connection drops (exit 255).
    SshDropped,
    /// Garbage on stdout (a listing or property read becomes unreadable; a stream is
    /// corrupted from byte K on); harmless for commands whose stdout is not read.
    Garbage,
    /// The process running zsnap dies here, as with `kill -9` of zsnap itself: before
    /// the command (or, with `after`, once it is done), after the fake has persisted
    /// what was done so far (see [`crate::fake::FakeZfs::persist_to`]). Nothing after it
    /// runs. For fault tests of a whole process (the CLI with a state file); a library
    /// test that injects it kills its own test binary.
    Crash,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Fault {
    /// Which operation.
    pub op: FaultOp,
    /// On its Nth call (1-based), counted since the fake was created.
    pub nth: u64,
    /// For [`FaultOp::Send`] and [`FaultOp::Receive`]: after this many bytes of the
    /// stream; `None` fails the call before anything happens.
    pub at_byte: Option<u64>,
    /// What goes wrong.
    pub effect: FaultEffect,
    /// The change is made, then the failure is reported (a process killed, or a
    /// connection lost, after the ioctl completed). Not for streams.
    pub after: bool,
}

impl Fault {
    /// A fault before the `nth` call of `op` does anything.
    pub fn on_call(op: FaultOp, nth: u64, effect: FaultEffect) -> Self {
        Fault {
            op,
            nth,
            at_byte: None,
            effect,
            after: false,
        }
    }

    /// A fault after the `nth` call of `op` made its change.
    pub fn after_call(op: FaultOp, nth: u64, effect: FaultEffect) -> Self {
        Fault {
            op,
            nth,
            at_byte: None,
            effect,
            after: true,
        }
    }

    /// A fault at byte `at` of the stream of the `nth` send or receive.
    pub fn at_byte(op: FaultOp, nth: u64, at: u64, effect: FaultEffect) -> Self {
        Fault {
            op,
            nth,
            at_byte: Some(at),
            effect,
            after: false,
        }
    }
}

/// The failure a process would report for `effect`; `what` completes "cannot …"
/// (e.g. `create snapshot 'src/a@x'`).
pub(crate) fn effect_failure(effect: FaultEffect, what: &str) -> ZfsFailure {
    match effect {
        FaultEffect::Killed | FaultEffect::Crash => ZfsFailure::new(Exit::Signal(9), ""),
        FaultEffect::SshDropped => ZfsFailure::new(
            Exit::Code(255),
            "client_loop: send disconnect: Broken pipe\n",
        ),
        FaultEffect::NoSpace => {
            ZfsFailure::new(Exit::Code(1), format!("cannot {what}: out of space\n"))
        }
        FaultEffect::Busy => {
            ZfsFailure::new(Exit::Code(1), format!("cannot {what}: dataset is busy\n"))
        }
        FaultEffect::PermissionDenied => {
            ZfsFailure::new(Exit::Code(1), format!("cannot {what}: permission denied\n"))
        }
        FaultEffect::Garbage => ZfsFailure::new(
            Exit::Code(1),
            format!("cannot {what}: \u{fffd}\u{fffd} garbage\n"),
        ),
    }
}

/// Corrupts text from about its middle on, the way a broken pipe or a confused remote
/// shell would.
pub(crate) fn garble(text: &str) -> String {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}\u{1b}[0m\x07garbage\tgarbage\n\n-\t", &text[..cut])
}
