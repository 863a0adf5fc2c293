//! The BEGIN record of a ZFS send stream: which snapshot a stream recreates, read
//! from the stream itself, so a restore can check a stored stream against its
//! sidecar before `zfs receive` sees a byte of it.
//!
//! Layout (OpenZFS `include/sys/zfs_ioctl.h`, `dmu_replay_record_t` with the
//! `drr_begin` member), in the sender's byte order, which the magic tells:
//!
//! ```text
//!   0  u32 drr_type          (DRR_BEGIN = 0)
//!   4  u32 drr_payloadlen
//!   8  u64 drr_magic         (DMU_BACKUP_MAGIC = 0x2F5bacbac)
//!  16  u64 drr_versioninfo   (low 2 bits: 1 substream, 2 compound stream)
//!  24  u64 drr_creation_time
//!  32  u32 drr_type          (objset type)
//!  36  u32 drr_flags
//!  40  u64 drr_toguid
//!  48  u64 drr_fromguid      (0 for a full stream)
//!  56  char drr_toname[256]
//! ```

use crate::inventory::Guid;

/// `DMU_BACKUP_MAGIC`.
pub(super) const MAGIC: u64 = 0x2_F5BA_CBAC;

/// The bytes of a BEGIN record up to the end of `drr_fromguid` (all this parser
/// reads; the name that follows is not needed).
pub const SEND_HEADER_LEN: usize = 56;

/// What the BEGIN record of a send stream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendBegin {
    /// A stream of one snapshot (what `zfs send [-i]` writes, and zsnap stores).
    Substream {
        /// The guid of the snapshot it recreates.
        to_guid: Guid,
        /// The guid of its base; `None` for a full stream.
        from_guid: Option<Guid>,
    },
    /// A compound stream (`zfs send -R`, `-p`): several substreams follow, and the
    /// record itself names no snapshot.
    Compound,
}

/// Why bytes are not the start of a send stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendHeaderError {
    /// Fewer bytes than a BEGIN record.
    #[error("{len} bytes, fewer than a send stream's BEGIN record ({SEND_HEADER_LEN})")]
    Short {
        /// How many there were.
        len: usize,
    },
    /// The magic number is not there in either byte order.
    #[error("not a zfs send stream (no BEGIN record magic)")]
    NoMagic,
    /// The first record is not a BEGIN record.
    #[error("not a zfs send stream (the first record has type {kind}, not BEGIN)")]
    NotBegin {
        /// The record type found.
        kind: u32,
    },
}

/// Reads the BEGIN record at the start of `bytes`.
///
/// # Errors
/// When `bytes` does not start with a BEGIN record.
///
/// # Example
/// ```
/// use zsnap_core::backup::{parse_send_begin, SendBegin};
/// use zsnap_core::Guid;
/// let mut rec = vec![0u8; 312];
/// rec[8..16].copy_from_slice(&0x2F5bacbacu64.to_le_bytes());
/// rec[16..24].copy_from_slice(&1u64.to_le_bytes());
/// rec[40..48].copy_from_slice(&42u64.to_le_bytes());
/// assert_eq!(
///     parse_send_begin(&rec).unwrap(),
///     SendBegin::Substream { to_guid: Guid(42), from_guid: None }
/// );
/// ```
pub fn parse_send_begin(bytes: &[u8]) -> Result<SendBegin, SendHeaderError> {
    if bytes.len() < SEND_HEADER_LEN {
        return Err(SendHeaderError::Short { len: bytes.len() });
    }
    let word = |at: usize| -> [u8; 8] {
        bytes[at..at + 8]
            .try_into()
            .expect("8 bytes within the checked length")
    };
    let half = |at: usize| -> [u8; 4] {
        bytes[at..at + 4]
            .try_into()
            .expect("4 bytes within the checked length")
    };
    let little = if u64::from_le_bytes(word(8)) == MAGIC {
        true
    } else if u64::from_be_bytes(word(8)) == MAGIC {
        false
    } else {
        return Err(SendHeaderError::NoMagic);
    };
    let u64_at = |at: usize| {
        if little {
            u64::from_le_bytes(word(at))
        } else {
            u64::from_be_bytes(word(at))
        }
    };
    let kind = if little {
        u32::from_le_bytes(half(0))
    } else {
        u32::from_be_bytes(half(0))
    };
    if kind != 0 {
        return Err(SendHeaderError::NotBegin { kind });
    }
    if u64_at(16) & 3 == 2 {
        return Ok(SendBegin::Compound);
    }
    let from = u64_at(48);
    Ok(SendBegin::Substream {
        to_guid: Guid(u64_at(40)),
        from_guid: (from != 0).then_some(Guid(from)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(little: bool, kind: u32, version: u64, to: u64, from: u64) -> Vec<u8> {
        let mut r = vec![0u8; 312];
        let put64 = |r: &mut Vec<u8>, at: usize, v: u64| {
            let b = if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            r[at..at + 8].copy_from_slice(&b);
        };
        let k = if little {
            kind.to_le_bytes()
        } else {
            kind.to_be_bytes()
        };
        r[0..4].copy_from_slice(&k);
        put64(&mut r, 8, MAGIC);
        put64(&mut r, 16, version);
        put64(&mut r, 40, to);
        put64(&mut r, 48, from);
        r
    }

    #[test]
    fn both_byte_orders_fulls_incrementals_and_compounds() {
        for little in [true, false] {
            assert_eq!(
                parse_send_begin(&record(little, 0, 1, 7, 0)),
                Ok(SendBegin::Substream {
                    to_guid: Guid(7),
                    from_guid: None
                })
            );
            assert_eq!(
                parse_send_begin(&record(little, 0, 1 | (4 << 2), 7, 9)),
                Ok(SendBegin::Substream {
                    to_guid: Guid(7),
                    from_guid: Some(Guid(9))
                })
            );
            assert_eq!(
                parse_send_begin(&record(little, 0, 2, 0, 0)),
                Ok(SendBegin::Compound)
            );
            assert_eq!(
                parse_send_begin(&record(little, 5, 1, 7, 0)),
                Err(SendHeaderError::NotBegin { kind: 5 })
            );
        }
    }

    #[test]
    fn garbage_and_short_input_are_errors() {
        assert_eq!(
            parse_send_begin(b"ZFAKE1 {}"),
            Err(SendHeaderError::Short { len: 9 })
        );
        assert_eq!(parse_send_begin(&[0u8; 400]), Err(SendHeaderError::NoMagic));
    }
}
