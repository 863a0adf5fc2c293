//! The stream check against send streams written by real OpenZFS 2.3.2
//! (`tests/fixtures/real/send/`, captured by `testbed/capture-send-streams.sh`): every
//! form passes whole, in pieces of any size; what each first BEGIN record names is
//! the snapshot the stream was made of; any changed byte and any truncation is found.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zsnap_core::backup::{check_send_stream, SendBegin, SendStreamCheck, SendStreamError};
use zsnap_core::Guid;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real/send")
}

fn stream(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.zfs.zst"));
    let packed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zstd::decode_all(&packed[..]).expect("a zstd fixture")
}

/// `NAME\tGUID` lines as `zfs list -H -p -o name,guid` prints them.
fn guids() -> BTreeMap<String, Guid> {
    std::fs::read_to_string(dir().join("guids.txt"))
        .expect("guids.txt")
        .lines()
        .map(|l| {
            let (name, guid) = l.split_once('\t').expect("NAME\\tGUID");
            (name.to_owned(), Guid(guid.parse().expect("a guid")))
        })
        .collect()
}

/// Each fixture, and the snapshot (and base) its first BEGIN record names.
fn cases() -> Vec<(&'static str, Option<(&'static str, Option<&'static str>)>)> {
    vec![
        ("full", Some(("src/fx@a", None))),
        ("full-c", Some(("src/fx@a", None))),
        ("full-e-L", Some(("src/fx@a", None))),
        ("inc", Some(("src/fx@b", Some("src/fx@a")))),
        ("inc-c", Some(("src/fx@b", Some("src/fx@a")))),
        ("raw-full", Some(("src/fxe@a", None))),
        ("raw-inc", Some(("src/fxe@b", Some("src/fxe@a")))),
        // -I, -p and -R write a compound stream: its header names no snapshot.
        ("big-I", None),
        ("props", None),
        ("compound", None),
    ]
}

#[test]
fn every_form_real_zfs_writes_passes_and_names_its_snapshot() {
    let guids = guids();
    for (name, expected) in cases() {
        let bytes = stream(name);
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
    for (name, _) in cases() {
        let bytes = stream(name);
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
    for (name, _) in cases() {
        let bytes = stream(name);
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
