//! Checking a whole ZFS send stream as it goes by: every record's framing and the
//! fletcher-4 checksum the sender wrote into each record header, so a backup whose
//! bytes were damaged between `zfs send` and the store is refused before its sidecar
//! is written, and `backups verify` finds a stream that is corrupt inside even when its
//! sidecar was written for the corrupt bytes.
//!
//! # The format (OpenZFS `include/sys/zfs_ioctl.h`)
//! A stream is a sequence of 312-byte `dmu_replay_record_t` headers, each followed by
//! a payload whose length the header gives, in the sender's byte order (the BEGIN
//! record's magic tells which):
//!
//! ```text
//!   0    u32 drr_type        BEGIN 0, OBJECT 1, FREEOBJECTS 2, WRITE 3, FREE 4, END 5,
//!                            WRITE_BYREF 6, SPILL 7, WRITE_EMBEDDED 8, OBJECT_RANGE 9,
//!                            REDACT 10
//!   4    u32 drr_payloadlen  (BEGIN: the length of its nvlist payload)
//!   8    the record's own fields (see `payload_len`)
//!   280  4 × u64 drr_checksum: fletcher-4 of every byte of the substream before it
//!        (zero in a BEGIN record, and in streams from senders before checksums)
//! ```
//!
//! The running checksum starts at zero at each BEGIN record and covers headers
//! (including the checksum fields) and payloads alike; `zfs receive` compares it with
//! each non-zero `drr_checksum`, and so does [`SendStreamCheck`]. A substream ends with
//! an END record; a compound stream (`zfs send -R`) is a header substream, the
//! substreams, and a final END.
//!
//! The check is a pure function of the bytes, fed in pieces of any size
//! ([`SendStreamCheck::feed`]); it holds one record header, never a payload.

use super::send_header::{parse_send_begin, SendBegin, SendHeaderError, MAGIC};

/// The size of a record header (`sizeof (dmu_replay_record_t)`).
pub const SEND_RECORD_LEN: usize = 312;

/// Where a record header's checksum field starts.
const CHECKSUM_AT: usize = SEND_RECORD_LEN - 32;

const BEGIN: u32 = 0;
const END: u32 = 5;

/// The name of a record type, for messages.
fn kind_name(kind: u32) -> &'static str {
    match kind {
        0 => "BEGIN",
        1 => "OBJECT",
        2 => "FREEOBJECTS",
        3 => "WRITE",
        4 => "FREE",
        5 => "END",
        6 => "WRITE_BYREF",
        7 => "SPILL",
        8 => "WRITE_EMBEDDED",
        9 => "OBJECT_RANGE",
        10 => "REDACT",
        _ => "unknown",
    }
}

/// Why bytes are not a whole, undamaged send stream. Offsets count from the stream's
/// first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendStreamError {
    /// A BEGIN record (the first record, or one starting a later substream) is not one.
    #[error("byte {offset}: {source}")]
    Begin {
        /// Where the record starts.
        offset: u64,
        /// What is wrong with it.
        #[source]
        source: SendHeaderError,
    },
    /// A record type no OpenZFS writes.
    #[error("byte {offset}: record {record} has type {kind}, which no zfs send writes: the stream is corrupt")]
    UnknownRecord {
        /// Where the record starts.
        offset: u64,
        /// Its index (the BEGIN record is 0).
        record: u64,
        /// The type found.
        kind: u32,
    },
    /// A record's checksum is not the checksum of the bytes before it.
    #[error(
        "byte {offset}: the checksum in record {record} ({kind}) does not match the bytes \
         before it: the stream is corrupt"
    )]
    Checksum {
        /// Where the record starts.
        offset: u64,
        /// Its index.
        record: u64,
        /// Its type's name.
        kind: &'static str,
    },
    /// A payload whose length is not a whole number of 4-byte words, which no sender
    /// writes (the checksum is over words).
    #[error("byte {offset}: record {record} ({kind}) has a payload of {len} bytes, not a multiple of 4: the stream is corrupt")]
    Misaligned {
        /// Where the record starts.
        offset: u64,
        /// Its index.
        record: u64,
        /// Its type's name.
        kind: &'static str,
        /// The payload length it gives.
        len: u64,
    },
    /// A record where the stream's structure has no room for it: anything after the
    /// stream's last END record, a BEGIN inside a substream, a record between the
    /// substreams of a compound stream.
    #[error("byte {offset}: a {kind} record where {expected}: the stream is corrupt")]
    Unexpected {
        /// Where the record starts.
        offset: u64,
        /// Its type's name.
        kind: &'static str,
        /// What the structure allows there.
        expected: &'static str,
    },
    /// An END record's own checksum (`drr_end.drr_checksum`, of everything before the
    /// record) does not match, or bytes no sender sets in an END record are set.
    #[error("byte {offset}: the END record {record} does not match the bytes before it (or has bytes set that no sender sets): the stream is corrupt")]
    EndChecksum {
        /// Where the record starts.
        offset: u64,
        /// Its index.
        record: u64,
    },
    /// The bytes stop before the stream does.
    #[error("the stream stops at byte {offset}, {inside}: it is truncated")]
    Truncated {
        /// How many bytes there were.
        offset: u64,
        /// Where it stops, in words.
        inside: String,
    },
}

/// What a whole, undamaged stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendStreamSummary {
    /// What its first BEGIN record says.
    pub begin: SendBegin,
    /// Records read (headers), BEGIN and END included.
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Records whose checksum was compared (a sender before checksums writes none).
    pub checksummed: u64,
}

/// The fletcher-4 checksum OpenZFS uses, over 32-bit words in the sender's byte order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fletcher4([u64; 4]);

impl Fletcher4 {
    /// Adds whole words; `bytes.len()` is a multiple of 4.
    fn add(&mut self, bytes: &[u8], little: bool) {
        let [mut a, mut b, mut c, mut d] = self.0;
        for w in bytes.chunks_exact(4) {
            let w: [u8; 4] = w.try_into().expect("chunks of 4");
            let v = u64::from(if little {
                u32::from_le_bytes(w)
            } else {
                u32::from_be_bytes(w)
            });
            a = a.wrapping_add(v);
            b = b.wrapping_add(a);
            c = c.wrapping_add(b);
            d = d.wrapping_add(c);
        }
        self.0 = [a, b, c, d];
    }
}

/// Where in a stream the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Reading a record header (`have` bytes of it so far).
    Header,
    /// Reading a payload: `left` bytes to go.
    Payload { left: u64 },
}

/// An incremental check of one send stream: [`feed`](Self::feed) it the bytes in order,
/// then [`finish`](Self::finish).
///
/// # Example
/// ```
/// use zsnap_core::backup::SendStreamCheck;
/// let mut check = SendStreamCheck::new();
/// // 312 zero bytes: a record header, but not a BEGIN record (no magic).
/// assert!(check.feed(&[0u8; 312]).is_err());
/// assert!(SendStreamCheck::new().finish().is_err(), "no bytes is no stream");
/// ```
#[derive(Debug, Clone)]
pub struct SendStreamCheck {
    header: Box<[u8; SEND_RECORD_LEN]>,
    have: usize,
    place: Place,
    /// Bytes of a payload word split across two feeds.
    carry: [u8; 4],
    carried: usize,
    sum: Fletcher4,
    /// The sender's byte order, known from the first BEGIN record.
    little: bool,
    offset: u64,
    record_start: u64,
    records: u64,
    checksummed: u64,
    first: Option<SendBegin>,
    /// The type of the last record read.
    last_kind: Option<u32>,
    /// Inside a substream (after its BEGIN, before its END).
    open: bool,
    /// The stream's last END record has been read.
    done: bool,
    /// Once an error is found, every later call returns it.
    failed: Option<SendStreamError>,
}

impl Default for SendStreamCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl SendStreamCheck {
    /// A check at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        SendStreamCheck {
            header: Box::new([0; SEND_RECORD_LEN]),
            have: 0,
            place: Place::Header,
            carry: [0; 4],
            carried: 0,
            sum: Fletcher4::default(),
            little: true,
            offset: 0,
            record_start: 0,
            records: 0,
            checksummed: 0,
            first: None,
            last_kind: None,
            open: false,
            done: false,
            failed: None,
        }
    }

    /// What the first BEGIN record said, once it has been read.
    #[must_use]
    pub fn begin(&self) -> Option<SendBegin> {
        self.first
    }

    /// Bytes fed so far.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Checks the next bytes of the stream.
    ///
    /// # Errors
    /// The first damage found; once an error is returned, every later call returns it.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), SendStreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !bytes.is_empty() {
            let used = match self.place {
                Place::Header => {
                    let n = (SEND_RECORD_LEN - self.have).min(bytes.len());
                    self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                    self.have += n;
                    self.offset += n as u64;
                    if self.have == SEND_RECORD_LEN {
                        if let Err(e) = self.record() {
                            self.failed = Some(e.clone());
                            return Err(e);
                        }
                    }
                    n
                }
                Place::Payload { left } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    self.payload(&bytes[..n]);
                    self.offset += n as u64;
                    let left = left - n as u64;
                    self.place = Place::Payload { left };
                    if left == 0 {
                        self.place = Place::Header;
                    }
                    n
                }
            };
            bytes = &bytes[used..];
        }
        Ok(())
    }

    /// Adds payload bytes to the checksum, carrying a split word to the next call.
    fn payload(&mut self, mut bytes: &[u8]) {
        if self.carried > 0 {
            let n = (4 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + n].copy_from_slice(&bytes[..n]);
            self.carried += n;
            bytes = &bytes[n..];
            if self.carried < 4 {
                return;
            }
            let word = self.carry;
            self.sum.add(&word, self.little);
            self.carried = 0;
        }
        let whole = bytes.len() - bytes.len() % 4;
        self.sum.add(&bytes[..whole], self.little);
        let rest = &bytes[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.header[at..at + 4].try_into().expect("4 bytes");
        if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }

    fn u64_at(&self, at: usize) -> u64 {
        let b: [u8; 8] = self.header[at..at + 8].try_into().expect("8 bytes");
        if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        }
    }

    /// One whole record header is in `header`.
    fn record(&mut self) -> Result<(), SendStreamError> {
        let offset = self.offset - SEND_RECORD_LEN as u64;
        self.record_start = offset;
        let index = self.records;
        if self.records == 0 {
            // The first record fixes the byte order.
            let begin = parse_send_begin(&self.header[..])
                .map_err(|source| SendStreamError::Begin { offset, source })?;
            self.first = Some(begin);
            self.little = self.header[8..16] == MAGIC.to_le_bytes();
        }
        let kind = self.u32_at(0);
        let unexpected = |expected| SendStreamError::Unexpected {
            offset,
            kind: kind_name(kind),
            expected,
        };
        if kind > 10 {
            return Err(SendStreamError::UnknownRecord {
                offset,
                record: index,
                kind,
            });
        }
        if self.done {
            return Err(unexpected("the stream has ended"));
        }
        if kind == BEGIN {
            if self.open {
                return Err(unexpected("a record of the substream belongs"));
            }
            if self.records > 0 {
                // In the first record's byte order: a substream of another order
                // would not be received either.
                let magic = if self.little {
                    MAGIC.to_le_bytes()
                } else {
                    MAGIC.to_be_bytes()
                };
                if self.header[8..16] != magic {
                    return Err(SendStreamError::Begin {
                        offset,
                        source: SendHeaderError::NoMagic,
                    });
                }
            }
            self.sum = Fletcher4::default();
            self.open = true;
        } else if !self.open && kind != END {
            return Err(unexpected(
                "a compound stream has a BEGIN or its final END record",
            ));
        }
        if kind == END {
            // drr_end.drr_checksum: the checksum of everything before this record
            // (the only checksum the header substream of a compound stream has).
            let own = Fletcher4([
                self.u64_at(8),
                self.u64_at(16),
                self.u64_at(24),
                self.u64_at(32),
            ]);
            if own != Fletcher4::default() && own != self.sum {
                return Err(SendStreamError::EndChecksum {
                    offset,
                    record: index,
                });
            }
            // Every sender zeroes a record before filling it in, and an END has no
            // payload and no fields after drr_toguid; the END records of a compound
            // stream's header and its last END carry no checksum over themselves, so
            // these zeros are how damage to them shows.
            let unchecked = self.header[CHECKSUM_AT..].iter().all(|b| *b == 0);
            let zeros = if unchecked { 40 } else { 48 };
            if self.header[4..8] != [0; 4]
                || self.header[zeros..CHECKSUM_AT].iter().any(|b| *b != 0)
            {
                return Err(SendStreamError::EndChecksum {
                    offset,
                    record: index,
                });
            }
            if self.open {
                self.open = false;
                // A substream ends at its END; a compound stream at the END after
                // the last substream's.
                self.done = matches!(self.first, Some(SendBegin::Substream { .. }));
            } else {
                self.done = true;
            }
        }
        self.sum.add(&self.header[..CHECKSUM_AT], self.little);
        let expected = self.sum;
        let stored = Fletcher4([
            self.u64_at(CHECKSUM_AT),
            self.u64_at(CHECKSUM_AT + 8),
            self.u64_at(CHECKSUM_AT + 16),
            self.u64_at(CHECKSUM_AT + 24),
        ]);
        if stored != Fletcher4::default() {
            if stored != expected {
                return Err(SendStreamError::Checksum {
                    offset,
                    record: index,
                    kind: kind_name(kind),
                });
            }
            self.checksummed += 1;
        }
        let field: [u8; 32] = self.header[CHECKSUM_AT..]
            .try_into()
            .expect("32 bytes of checksum");
        self.sum.add(&field, self.little);
        let len = self.payload_len(kind);
        if !len.is_multiple_of(4) {
            return Err(SendStreamError::Misaligned {
                offset,
                record: index,
                kind: kind_name(kind),
                len,
            });
        }
        self.records += 1;
        self.last_kind = Some(kind);
        self.have = 0;
        self.place = if len == 0 {
            Place::Header
        } else {
            Place::Payload { left: len }
        };
        Ok(())
    }

    /// The length of the payload after the record header in `header`.
    fn payload_len(&self, kind: u32) -> u64 {
        let round8 = |v: u64| v.div_ceil(8) * 8;
        match kind {
            // BEGIN: drr_payloadlen (an nvlist).
            0 => u64::from(self.u32_at(4)),
            // OBJECT: drr_raw_bonuslen (40+4 … in the union: at 36) when raw, else
            // drr_bonuslen (at 28) rounded up to 8.
            1 => match self.u32_at(36) {
                0 => round8(u64::from(self.u32_at(28))),
                raw => u64::from(raw),
            },
            // WRITE: drr_compressed_size (at 96) when drr_compressiontype (at 50) is
            // set, else drr_logical_size (at 32).
            3 => {
                if self.header[50] != 0 {
                    self.u64_at(96)
                } else {
                    self.u64_at(32)
                }
            }
            // SPILL: drr_compressed_size (at 40) when set, else drr_length (at 16).
            7 => match self.u64_at(40) {
                0 => self.u64_at(16),
                c => c,
            },
            // WRITE_EMBEDDED: drr_psize (at 52) rounded up to 8.
            8 => round8(u64::from(self.u32_at(52))),
            // FREEOBJECTS, FREE, END, WRITE_BYREF, OBJECT_RANGE, REDACT: none.
            _ => 0,
        }
    }

    /// Checks that the stream ended where a stream may end, and says what it was.
    ///
    /// # Errors
    /// An error [`feed`](Self::feed) found, or [`SendStreamError::Truncated`].
    pub fn finish(self) -> Result<SendStreamSummary, SendStreamError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let truncated = |inside: String| SendStreamError::Truncated {
            offset: self.offset,
            inside,
        };
        let Some(begin) = self.first else {
            return Err(truncated(format!(
                "before the end of its first record ({SEND_RECORD_LEN} bytes)"
            )));
        };
        match self.place {
            Place::Payload { left } => {
                let kind = kind_name(self.last_kind.unwrap_or(u32::MAX));
                return Err(truncated(format!(
                    "{left} bytes short of the end of the payload of record {} ({kind}) at byte {}",
                    self.records - 1,
                    self.record_start
                )));
            }
            Place::Header if self.have > 0 => {
                return Err(truncated(format!(
                    "inside the header of record {} ({} of {SEND_RECORD_LEN} bytes)",
                    self.records, self.have
                )));
            }
            Place::Header => {}
        }
        if !self.done {
            return Err(truncated(
                "after a whole record, before the last END record of the stream".to_owned(),
            ));
        }
        Ok(SendStreamSummary {
            begin,
            records: self.records,
            bytes: self.offset,
            checksummed: self.checksummed,
        })
    }
}

/// Checks a whole stream held in memory.
///
/// # Errors
/// See [`SendStreamCheck`].
pub fn check_send_stream(bytes: &[u8]) -> Result<SendStreamSummary, SendStreamError> {
    let mut check = SendStreamCheck::new();
    check.feed(bytes)?;
    check.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Guid;

    /// Writes streams the way OpenZFS's `dump_record` does, in either byte order.
    struct Writer {
        out: Vec<u8>,
        sum: Fletcher4,
        little: bool,
    }

    impl Writer {
        fn new(little: bool) -> Self {
            Writer {
                out: Vec::new(),
                sum: Fletcher4::default(),
                little,
            }
        }

        fn put32(&self, r: &mut [u8], at: usize, v: u32) {
            let b = if self.little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            r[at..at + 4].copy_from_slice(&b);
        }

        fn put64(&self, r: &mut [u8], at: usize, v: u64) {
            let b = if self.little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            r[at..at + 8].copy_from_slice(&b);
        }

        /// `fields` are (offset, value) u64s of the record.
        fn record(&mut self, kind: u32, fields: &[(usize, u64)], payload: &[u8]) {
            self.record32(kind, fields, &[], payload);
        }

        /// The same, with (offset, value) u32 fields too.
        fn record32(
            &mut self,
            kind: u32,
            fields: &[(usize, u64)],
            fields32: &[(usize, u32)],
            payload: &[u8],
        ) {
            let mut r = [0u8; SEND_RECORD_LEN];
            self.put32(&mut r, 0, kind);
            for &(at, v) in fields {
                self.put64(&mut r, at, v);
            }
            for &(at, v) in fields32 {
                self.put32(&mut r, at, v);
            }
            if kind == BEGIN {
                self.sum = Fletcher4::default();
                self.put32(&mut r, 4, payload.len() as u32);
            }
            self.sum.add(&r[..CHECKSUM_AT], self.little);
            if kind != BEGIN {
                let s = self.sum.0;
                for (i, v) in s.iter().enumerate() {
                    self.put64(&mut r, CHECKSUM_AT + 8 * i, *v);
                }
            }
            self.sum.add(&r[CHECKSUM_AT..], self.little);
            self.sum.add(payload, self.little);
            self.out.extend_from_slice(&r);
            self.out.extend_from_slice(payload);
        }

        fn begin(&mut self, to: u64, from: u64) {
            self.record(BEGIN, &[(8, MAGIC), (16, 1), (40, to), (48, from)], &[]);
        }

        fn write(&mut self, data: &[u8]) {
            // drr_logical_size at 32, uncompressed.
            self.record(3, &[(8, 1), (32, data.len() as u64)], data);
        }

        fn end(&mut self) {
            self.record(END, &[], &[]);
        }
    }

    fn sample(little: bool) -> Vec<u8> {
        let mut w = Writer::new(little);
        w.begin(42, 7);
        // OBJECT with a 5-byte bonus buffer (drr_bonuslen at 28): 8 bytes of payload.
        w.record32(1, &[(8, 1)], &[(28, 5)], &[1, 2, 3, 4, 5, 0, 0, 0]);
        w.write(&[0xab; 1024]);
        w.write(&(0..=255).collect::<Vec<u8>>());
        w.record(4, &[(8, 1), (16, 0), (24, 4096)], &[]);
        w.end();
        w.out
    }

    #[test]
    fn a_whole_stream_passes_in_any_pieces_and_either_byte_order() {
        for little in [true, false] {
            let s = sample(little);
            let summary = check_send_stream(&s).expect("whole");
            assert_eq!(
                summary.begin,
                SendBegin::Substream {
                    to_guid: Guid(42),
                    from_guid: Some(Guid(7))
                }
            );
            assert_eq!(summary.records, 6);
            assert_eq!(summary.checksummed, 5);
            assert_eq!(summary.bytes, s.len() as u64);
            for piece in [1, 3, 7, 311, 313, 1000] {
                let mut c = SendStreamCheck::new();
                for chunk in s.chunks(piece) {
                    c.feed(chunk).expect("whole");
                }
                assert_eq!(c.finish().expect("whole"), summary, "pieces of {piece}");
            }
        }
    }

    #[test]
    fn every_single_byte_change_is_found() {
        let s = sample(true);
        for at in 0..s.len() {
            let mut bad = s.clone();
            bad[at] ^= 0x10;
            // The BEGIN record carries no checksum of its own, but the first later
            // checksum covers it; only its unused name bytes are free to change
            // undetected in zfs too — they are covered the same way.
            assert!(check_send_stream(&bad).is_err(), "flip at byte {at}");
        }
    }

    #[test]
    fn every_truncation_is_found() {
        let s = sample(false);
        for cut in 0..s.len() {
            let e = check_send_stream(&s[..cut]).expect_err("truncated");
            assert!(
                matches!(e, SendStreamError::Truncated { offset, .. } if offset == cut as u64),
                "cut {cut}: {e}"
            );
        }
    }

    #[test]
    fn garbage_after_the_end_is_found() {
        let mut s = sample(true);
        s.extend_from_slice(&[0x5a; SEND_RECORD_LEN]);
        assert!(matches!(
            check_send_stream(&s),
            Err(SendStreamError::UnknownRecord { .. })
        ));
        let mut s = sample(true);
        let mut w = Writer::new(true);
        w.write(&[1; 8]);
        s.extend_from_slice(&w.out);
        assert!(matches!(
            check_send_stream(&s),
            Err(SendStreamError::Unexpected { .. })
        ));
    }

    #[test]
    fn a_compound_stream_of_substreams_passes() {
        let mut w = Writer::new(true);
        w.record(BEGIN, &[(8, MAGIC), (16, 2)], &[0, 0, 0, 1, 0, 0, 0, 2]);
        w.end();
        w.begin(1, 0);
        w.write(&[3; 64]);
        w.end();
        w.begin(2, 1);
        w.end();
        // The final END of a compound stream carries no checksum.
        w.out.extend_from_slice(&{
            let mut r = [0u8; SEND_RECORD_LEN];
            r[0] = END as u8;
            r
        });
        let summary = check_send_stream(&w.out).expect("whole");
        assert_eq!(summary.begin, SendBegin::Compound);
        assert_eq!(summary.records, 8);
    }

    #[test]
    fn errors_say_where() {
        let mut s = sample(true);
        // Inside the first WRITE's payload: found by the next record's checksum.
        let at = 1000;
        s[at] ^= 1;
        let e = check_send_stream(&s).expect_err("corrupt");
        assert!(
            matches!(e, SendStreamError::Checksum { record: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("WRITE"), "{e}");
        let e = check_send_stream(&s[..700]).expect_err("short");
        assert!(e.to_string().contains("stops at byte 700"), "{e}");
    }
}
