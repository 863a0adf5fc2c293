//! Recognizing the time in a snapshot name never panics; whatever it recognizes resolves
//! in any zone without panicking; and every name zsnap's own scheme writes for a label
//! and an instant of the years 0000–9999 is recognized back as that label and instant.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use zsnap_core::naming::{recognize_any, Label, NameTime, NamingScheme};

/// Zones with DST gaps and folds of different sizes, and one without DST.
const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::UTC,
];

/// -62167219200 is 0000-01-01T00:00:00Z, 253402300799 is 9999-12-31T23:59:59Z.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(r) = recognize_any(s) {
            for tz in ZONES {
                let _ = r.time.resolve(tz);
            }
        }
    }
    // The first 8 bytes pick an instant, the rest a label.
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let secs = FIRST + (i64::from_le_bytes(*head).rem_euclid(LAST - FIRST + 1));
    let at: DateTime<Utc> =
        DateTime::from_timestamp(secs, 0).expect("years 0000-9999 are in range");
    let Ok(label) = std::str::from_utf8(rest).unwrap_or("").parse::<Label>() else {
        return;
    };
    let scheme = NamingScheme::new("zsnap").expect("the default prefix is valid");
    let name = scheme
        .name(&label, at)
        .expect("a valid label and an instant of 0000-9999 make a name");
    let back = recognize_any(name.as_str()).unwrap_or_else(|| panic!("{name} is not recognized"));
    assert_eq!(back.label.as_deref(), Some(label.as_str()), "{name}");
    assert_eq!(back.time, NameTime::Utc(at), "{name}");
    assert_eq!(scheme.parse_parts(name.as_str()), Some((label, at)));
});
