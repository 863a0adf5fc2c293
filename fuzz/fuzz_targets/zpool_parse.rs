//! The `zpool list` and `zpool status` parsers never panic, and whatever they accept
//! prints back (`render_pool_list`, `render_pool_status`) to text they parse again to an
//! equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::zpool::{parse_pool_list, parse_pool_status, render_pool_list, render_pool_status};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rows) = parse_pool_list(s) {
        let printed = render_pool_list(&rows);
        assert_eq!(
            parse_pool_list(&printed).as_ref(),
            Ok(&rows),
            "render_pool_list output:\n{printed}"
        );
    }
    if let Ok(pools) = parse_pool_status(s) {
        let printed = render_pool_status(&pools);
        assert_eq!(
            parse_pool_status(&printed).as_ref(),
            Ok(&pools),
            "render_pool_status output:\n{printed}"
        );
    }
});
