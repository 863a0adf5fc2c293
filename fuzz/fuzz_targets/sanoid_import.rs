//! The `sanoid.conf` importer never panics, and the zsnap config it writes for an
//! accepted file is one zsnap accepts: it parses back to the translated config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::config::import_sanoid;
use zsnap_core::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(import) = import_sanoid(text, "fuzz.conf") else {
        return;
    };
    let written = import.to_toml("fuzz.conf");
    match Config::from_toml(&written, "zsnap.toml") {
        Ok(config) => assert_eq!(config, import.config, "written:\n{written}"),
        Err(e) => panic!("the translated config does not parse: {e}\nwritten:\n{written}"),
    }
});
