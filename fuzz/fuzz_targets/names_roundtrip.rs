//! Every name that parses prints back to the same text, parses again to an equal value,
//! and survives a serde round trip.
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use zsnap_core::{BookmarkName, DatasetName, ShortName, SnapshotName};

fn round_trip<T>(s: &str)
where
    T: FromStr
        + Display
        + PartialEq
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let Ok(name) = s.parse::<T>() else { return };
    let printed = name.to_string();
    assert_eq!(printed, s, "printing changed the name");
    let again = printed
        .parse::<T>()
        .unwrap_or_else(|_| panic!("{printed:?} printed from a valid name does not parse"));
    assert_eq!(again, name);
    let json = serde_json::to_string(&name).expect("a name serializes");
    let back: T = serde_json::from_str(&json).expect("a serialized name deserializes");
    assert_eq!(back, name);
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<DatasetName>(s);
    round_trip::<SnapshotName>(s);
    round_trip::<BookmarkName>(s);
    round_trip::<ShortName>(s);
    // The parts of a full name rebuild it.
    if let Ok(n) = s.parse::<SnapshotName>() {
        let rebuilt = SnapshotName::new(n.dataset().clone(), n.short().clone());
        assert_eq!(rebuilt.as_ref(), Ok(&n));
        assert!(s.parse::<DatasetName>().is_err() && s.parse::<BookmarkName>().is_err());
    }
    if let Ok(n) = s.parse::<BookmarkName>() {
        let rebuilt = BookmarkName::new(n.dataset().clone(), n.short().clone());
        assert_eq!(rebuilt.as_ref(), Ok(&n));
    }
    if let Ok(d) = s.parse::<DatasetName>() {
        if let Some(p) = d.parent() {
            assert!(p.is_ancestor_of(&d));
            assert_eq!(d.relative_to(&p).map(|r| r.contains('/')), Some(false));
        }
    }
});
