//! The zrepl importer never panics, and the zsnap config it writes for an accepted
//! input (notes as comments included) is one zsnap accepts: it parses back to the
//! translated config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::config::import_zrepl;
use zsnap_core::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(import) = import_zrepl(text, "fuzz.in") else {
        return;
    };
    let written = import.to_toml("fuzz.in");
    match Config::from_toml(&written, "zsnap.toml") {
        Ok(config) => assert_eq!(config, import.config, "written:\n{written}"),
        Err(e) => panic!("the translated config does not parse: {e}\nwritten:\n{written}"),
    }
});
