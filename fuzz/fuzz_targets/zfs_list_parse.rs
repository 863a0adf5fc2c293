//! The `zfs list` parser never panics, and whatever it accepts is a valid inventory that
//! `render_list` prints back to text it parses again to an equal inventory. The
//! `zfs get` parser never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::zfs_list::parse_get;
use zsnap_core::{parse_list, render_list};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(inv) = parse_list(s) {
        assert_eq!(inv.validate(), Ok(()));
        let printed = render_list(&inv);
        assert_eq!(
            parse_list(&printed).as_ref(),
            Ok(&inv),
            "render_list output:\n{printed}"
        );
    }
    if let Ok(rows) = parse_get(s) {
        assert!(rows.len() <= s.split('\n').count());
    }
});
