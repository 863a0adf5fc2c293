//! The config parser never panics, and every config it accepts prints (`to_toml`, every
//! default explicit) to text that parses back to an equal config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zsnap_core::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text, "fuzz.toml") else {
        return;
    };
    let printed = config.to_toml();
    match Config::from_toml(&printed, "effective.toml") {
        Ok(again) => assert_eq!(again, config, "to_toml output:\n{printed}"),
        Err(e) => panic!("the printed config does not parse: {e}\nto_toml output:\n{printed}"),
    }
});
