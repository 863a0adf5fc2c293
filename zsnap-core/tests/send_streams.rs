//! The stream check against send streams written by real OpenZFS 2.3.2
//! (`tests/fixtures/real/send/`, captured by `testbed/capture-send-streams.sh`): every
//! form passes whole, in pieces of any size; what each first BEGIN record names is
//! the snapshot the stream was made of; any changed byte and any truncation is found.

use std::collections::BTreeMap;

use zsnap_core::backup::{check_send_stream, SendBegin, SendStreamCheck, SendStreamError};
use zsnap_core::Guid;

/// `NAME\tGUID` lines as `zfs list -H -p -o name,guid` prints them.
const GUIDS: &str = include_str!("fixtures/real/send/guids.txt");

/// The snapshot (and base) a stream's first BEGIN record names; `None` for a compound
/// stream, whose header names no snapshot.
type Names = Option<(&'static str, Option<&'static str>)>;

macro_rules! fixture {
    ($name:literal, $names:expr) => {
        (
            $name,
            include_bytes!(concat!("fixtures/real/send/", $name, ".zfs.zst")) as &[u8],
            $names,
        )
    };
}

/// Each fixture (zstd-compressed) and what its first BEGIN record names.
const CASES: [(&str, &[u8], Names); 10] = [
    fixture!("full", Some(("src/fx@a", None))),
    fixture!("full-c", Some(("src/fx@a", None))),
    fixture!("full-e-L", Some(("src/fx@a", None))),
    fixture!("inc", Some(("src/fx@b", Some("src/fx@a")))),
    fixture!("inc-c", Some(("src/fx@b", Some("src/fx@a")))),
    fixture!("raw-full", Some(("src/fxe@a", None))),
    fixture!("raw-inc", Some(("src/fxe@b", Some("src/fxe@a")))),
    // -I, -p and -R write a compound stream.
    fixture!("big-I", None),
    fixture!("props", None),
    fixture!("compound", None),
];

fn cases() -> impl Iterator<Item = (&'static str, Vec<u8>, Names)> {
    CASES.iter().map(|&(name, packed, names)| {
        let bytes = zstd::decode_all(packed).expect("a zstd fixture");
        (name, bytes, names)
    })
}

fn guids() -> BTreeMap<String, Guid> {
    GUIDS
        .lines()
        .map(|l| {
            let (name, guid) = l.split_once('\t').expect("NAME\\tGUID");
            (name.to_owned(), Guid(guid.parse().expect("a guid")))
        })
        .collect()
}

#[test]
fn every_form_real_zfs_writes_passes_and_names_its_snapshot() {
    let guids = guids();
    for (name, bytes, expected) in cases() {
        let summary = check_send_stream(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = match expected {
            Some((to, from)) => SendBegin::Substream {
                to_guid: guids[to],
                from_guid: from.map(|f| guids[f]),
            },
            None => SendBegin::Compound,
        };
        assert_eq!(summary.begin, want, "{name}");
        assert_eq!(summary.bytes, bytes.len() as u64, "{name}");
        assert!(
            summary.checksummed + 1 >= summary.records / 2,
            "{name}: OpenZFS 2.3 checksums every record but BEGIN: {summary:?}"
        );
        for piece in [1, 4, 311, 4096, 65_537] {
            let mut check = SendStreamCheck::new();
            for chunk in bytes.chunks(piece) {
                check.feed(chunk).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            assert_eq!(check.finish(), Ok(summary), "{name} in pieces of {piece}");
        }
    }
}

#[test]
fn a_changed_byte_anywhere_is_found() {
    for (name, bytes, _) in cases() {
        // Every byte of the first and last records, and a spread of the rest.
        let n = bytes.len();
        let positions = (0..n.min(1024))
            .chain(n.saturating_sub(1024)..n)
            .chain((0..n).step_by(97));
        for at in positions {
            let mut bad = bytes.clone();
            bad[at] ^= 0x04;
            assert!(
                check_send_stream(&bad).is_err(),
                "{name}: a flip at byte {at} of {n} went unnoticed"
            );
        }
    }
}

#[test]
fn a_truncated_stream_is_found() {
    for (name, bytes, _) in cases() {
        let n = bytes.len();
        for cut in (0..n).step_by(211).chain(n.saturating_sub(700)..n) {
            match check_send_stream(&bytes[..cut]) {
                Err(SendStreamError::Truncated { offset, .. }) => {
                    assert_eq!(offset, cut as u64, "{name}");
                }
                other => panic!("{name} cut at {cut} of {n}: {other:?}"),
            }
        }
    }
}
