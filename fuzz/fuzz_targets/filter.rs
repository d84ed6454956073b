//! Any bytes as an endpoint's filter: Herald parses it or says which path of it is wrong, and
//! a filter it takes is tested against any event body without a panic.
#![no_main]

use herald::domain::filter::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first half as the filter, the rest as the event body it is tested against.
    let (filter, body) = data.split_at(data.len() / 2);
    let Ok(filter) = serde_json::from_slice::<serde_json::Value>(filter) else { return };
    match Filter::parse(&filter) {
        Ok(parsed) => {
            let body = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            let _ = parsed.matches(&body);
            let _ = parsed.matches(&filter);
        }
        Err(e) => {
            assert_eq!(e.code, "invalid_filter");
            assert!(e.message.starts_with("filter"), "the error names a path: {e}");
        }
    }
});
