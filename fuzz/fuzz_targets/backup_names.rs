//! The parsers of what a backup store holds: every stream name that parses prints back
//! to exactly the same key and parses again to an equal value; every store URL
//! round-trips; every sidecar that parses prints to JSON that parses to an equal value
//! and agrees with the stream name made from it. None of them panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::backup::{BackupId, Sidecar, StoreUrl, StreamName};

fuzz_target!(|data: &[u8]| {
    if let Ok(sc) = Sidecar::parse(data) {
        let json = sc.to_json();
        let again = Sidecar::parse(json.as_bytes()).expect("a printed sidecar parses");
        assert_eq!(again, sc);
        let name = sc
            .stream_name()
            .expect("a parsed sidecar makes a stream name");
        sc.check_stream(&name)
            .expect("a sidecar agrees with its own stream name");
        let value = serde_json::to_value(&sc).expect("a sidecar serializes");
        let from_json: serde_json::Value = serde_json::from_str(&json).expect("to_json is JSON");
        assert_eq!(value, from_json);
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = s.parse::<StreamName>() {
        let printed = name.to_string();
        assert_eq!(printed, s, "printing changed the key");
        let again: StreamName = printed.parse().expect("a printed stream name parses");
        assert_eq!(again, name);
        assert!(name.sidecar_key().parse::<StreamName>().is_err());
        assert!(printed.starts_with(&StreamName::dataset_prefix(name.dataset())));
        let id: BackupId = s.parse().expect("a stream name is a backup id");
        assert_eq!(id.as_str(), s);
        let json = serde_json::to_string(&name).expect("a stream name serializes");
        let back: StreamName = serde_json::from_str(&json).expect("and deserializes");
        assert_eq!(back, name);
    }
    if let Ok(url) = s.parse::<StoreUrl>() {
        let printed = url.to_string();
        let again: StoreUrl = printed.parse().expect("a printed store URL parses");
        assert_eq!(again, url);
        assert!(!printed.chars().any(char::is_control));
    }
});
