//! Any text as a configuration file: Herald answers a `Config` or a one-line `ConfigError`,
//! and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = herald::config::Config::from_toml(text) {
            assert!(!e.to_string().contains('\n'), "a configuration error is one line: {e}");
        }
    }
});
