//! Recognizing the time in a snapshot name never panics; whatever it recognizes resolves
//! in any zone without panicking; every name zsnap's own scheme writes for a label and
//! an instant of the years 0000–9999 is recognized back as that label and instant; and
//! for adopted name formats (`{ prefix, format }`): building one from any format never
//! panics, and a format it accepts reads back every name it writes for an instant of
//! 1970–2068 (the years `%y` can tell) to the minute.
#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use zsnap_core::naming::{
    recognize_any, FormatZone, Label, NameFormat, NameTime, NamingScheme, LABEL_PLACEHOLDER,
};

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

/// 2068-12-31T23:59:59Z.
const LAST_YY: i64 = 3_124_137_599;

/// The data as `format NUL name`: the format must build or fail cleanly, recognize any
/// name without panicking, and read back what it writes.
fn name_format(data: &[u8]) {
    let Some(nul) = data.iter().position(|b| *b == 0) else {
        return;
    };
    let (Ok(format), Ok(name)) = (
        std::str::from_utf8(&data[..nul]),
        std::str::from_utf8(&data[nul + 1..]),
    ) else {
        return;
    };
    let Ok(f) = NameFormat::new("p-", format, FormatZone::Utc, None) else {
        return;
    };
    let _ = f.recognize(name);
    let seed = data
        .iter()
        .fold(0i64, |a, b| a.wrapping_mul(31).wrapping_add(i64::from(*b)));
    let at = DateTime::from_timestamp(seed.rem_euclid(LAST_YY + 1), 0).expect("in range");
    let mut written = String::from("p-");
    use std::fmt::Write;
    if write!(
        written,
        "{}",
        at.format(&format.replace(LABEL_PLACEHOLDER, "hourly"))
    )
    .is_err()
    {
        return;
    }
    let back = f
        .recognize(&written)
        .unwrap_or_else(|| panic!("{written:?} ({format:?}) is not recognized"));
    let NameTime::Utc(t) = back.time else {
        panic!("{written:?}: a UTC format read a local time");
    };
    assert!(
        t <= at && at - t < TimeDelta::minutes(1),
        "{written:?} ({format:?}) read back as {t}, written for {at}"
    );
}

fuzz_target!(|data: &[u8]| {
    name_format(data);
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
