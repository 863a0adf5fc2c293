//! The check of whole ZFS send streams (what a backup runs `zfs send`'s output through,
//! and `backups verify` a stored stream): it never panics, gives the same verdict
//! whatever pieces the bytes arrive in, and never places damage past the bytes it
//! was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::backup::{check_send_stream, SendStreamCheck, SendStreamError};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let whole = check_send_stream(stream);
    let mut check = SendStreamCheck::new();
    let mut failed = None;
    for chunk in stream.chunks(usize::from(piece) + 1) {
        if let Err(e) = check.feed(chunk) {
            failed = Some(e);
            break;
        }
    }
    let pieces = match failed {
        Some(e) => Err(e),
        None => check.finish(),
    };
    assert_eq!(whole, pieces);
    match whole {
        Ok(summary) => assert_eq!(summary.bytes, stream.len() as u64),
        Err(
            SendStreamError::Begin { offset, .. }
            | SendStreamError::UnknownRecord { offset, .. }
            | SendStreamError::Checksum { offset, .. }
            | SendStreamError::Misaligned { offset, .. }
            | SendStreamError::Unexpected { offset, .. }
            | SendStreamError::EndChecksum { offset, .. }
            | SendStreamError::Truncated { offset, .. },
        ) => assert!(offset <= stream.len() as u64),
        Err(_) => {}
    }
});
