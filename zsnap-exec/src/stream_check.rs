//! Checking a send stream as it passes, whichever backend wrote it: a ZFS send stream
//! record by record and checksum by checksum ([`zsnap_core::backup::SendStreamCheck`]),
//! or the fake backend's stream (see `crate::fake`). A backup runs what `zfs send`
//! wrote through one before completing the object, and `backups verify` runs the
//! stored bytes through one.

use zsnap_core::backup::{parse_send_begin, SendBegin, SendStreamCheck};
use zsnap_core::Guid;

/// How the fake backend's streams start (see `crate::fake`).
const FAKE_MAGIC: &[u8] = b"ZFAKE1 ";

/// The most bytes of a fake stream held for its check; the fake's streams are small.
const FAKE_MAX: usize = 256 << 20;

/// A stream being checked.
#[derive(Debug)]
pub(crate) enum StreamCheck {
    /// Too few bytes yet to tell the format.
    Start(Vec<u8>),
    /// A ZFS send stream.
    Zfs(SendStreamCheck),
    /// The fake backend's stream, held whole.
    Fake(Vec<u8>),
}

/// The snapshot a stream's first substream recreates and its base; `None` for a
/// compound stream, whose header names no snapshot.
pub(crate) type StreamGuids = Option<(Guid, Option<Guid>)>;

impl StreamCheck {
    pub(crate) fn new() -> Self {
        StreamCheck::Start(Vec::new())
    }

    /// Checks the next bytes.
    ///
    /// # Errors
    /// The first damage found (every later call fails too).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let StreamCheck::Start(held) = self {
            held.extend_from_slice(bytes);
            if held.len() < FAKE_MAGIC.len() && FAKE_MAGIC.starts_with(held) {
                return Ok(());
            }
            let held = std::mem::take(held);
            *self = if held.starts_with(FAKE_MAGIC) {
                StreamCheck::Fake(Vec::new())
            } else {
                StreamCheck::Zfs(SendStreamCheck::new())
            };
            return self.feed(&held);
        }
        match self {
            StreamCheck::Zfs(check) => check.feed(bytes).map_err(|e| e.to_string()),
            StreamCheck::Fake(held) => {
                if held.len() + bytes.len() > FAKE_MAX {
                    return Err(format!("a fake stream longer than {FAKE_MAX} bytes"));
                }
                held.extend_from_slice(bytes);
                Ok(())
            }
            StreamCheck::Start(_) => unreachable!("handled above"),
        }
    }

    /// Checks that the stream ended whole.
    ///
    /// # Errors
    /// What is wrong with it.
    pub(crate) fn finish(self) -> Result<StreamGuids, String> {
        match self {
            StreamCheck::Start(held) => {
                let mut check = SendStreamCheck::new();
                check.feed(&held).map_err(|e| e.to_string())?;
                check
                    .finish()
                    .map(|s| guids(s.begin))
                    .map_err(|e| e.to_string())
            }
            StreamCheck::Zfs(check) => check
                .finish()
                .map(|s| guids(s.begin))
                .map_err(|e| e.to_string()),
            StreamCheck::Fake(held) => crate::fake::stream::check(&held).map(Some),
        }
    }
}

fn guids(begin: SendBegin) -> StreamGuids {
    match begin {
        SendBegin::Substream { to_guid, from_guid } => Some((to_guid, from_guid)),
        _ => None,
    }
}

/// The guids a stream's header names, from its first bytes alone (a ZFS send stream's
/// BEGIN record, or the fake backend's section header).
///
/// # Errors
/// When the bytes do not start a stream.
pub(crate) fn stream_guids(head: &[u8]) -> Result<StreamGuids, String> {
    if let Some(rest) = head.strip_prefix(FAKE_MAGIC) {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Section {
            guid: Guid,
            from_guid: Option<Guid>,
        }
        let s: Section =
            serde_json::from_slice(line).map_err(|e| format!("unreadable stream header: {e}"))?;
        return Ok(Some((s.guid, s.from_guid)));
    }
    parse_send_begin(head).map(guids).map_err(|e| e.to_string())
}
