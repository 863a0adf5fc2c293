//! The parsers of what a restore and a store's own records read from outside: a send
//! stream's BEGIN record (checked against the sidecar before `zfs receive` sees a
//! byte), the store marker and the pending-deletion records. None of them panics; a
//! record that parses prints to JSON that parses to an equal value; the BEGIN parser
//! reads the same guids whatever follows the record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::backup::{parse_send_begin, PendingDeletion, StoreMarker, SEND_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(begin) = parse_send_begin(data) {
        assert!(data.len() >= SEND_HEADER_LEN);
        let mut longer = data[..SEND_HEADER_LEN].to_vec();
        longer.extend_from_slice(b"trailing bytes of the stream");
        assert_eq!(parse_send_begin(&longer), Ok(begin));
    }
    if let Ok(m) = StoreMarker::parse(data) {
        let again = StoreMarker::parse(m.to_json().as_bytes()).expect("a printed marker parses");
        assert_eq!(again, m);
    }
    if let Ok(p) = PendingDeletion::parse(data) {
        let again =
            PendingDeletion::parse(p.to_json().as_bytes()).expect("a printed record parses");
        assert_eq!(again, p);
    }
});
