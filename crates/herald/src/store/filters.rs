//! Endpoint filters at fan-out, for both backends: which of an account's filtered endpoints
//! an event's body leaves out. Filters are parsed once per distinct text and kept, so that an
//! event costs a test per filtered endpoint, not a parse.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::domain::filter::Filter;

/// Past this many distinct filters the kept ones are dropped, bounding the memory.
const KEPT: usize = 10_000;

fn parsed(text: &str) -> Option<Arc<Filter>> {
    static KEPT_FILTERS: OnceLock<Mutex<HashMap<String, Arc<Filter>>>> = OnceLock::new();
    let kept = KEPT_FILTERS.get_or_init(Mutex::default);
    let mut kept = kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(filter) = kept.get(text) {
        return Some(filter.clone());
    }
    // Checked when saved: a filter that does not parse now is one an older build let by; it
    // filters nothing out rather than stopping the account's events.
    let filter = Arc::new(Filter::parse(&serde_json::from_str(text).ok()?).ok()?);
    if kept.len() >= KEPT {
        kept.clear();
    }
    kept.insert(text.to_owned(), filter.clone());
    Some(filter)
}

/// Of `filtered` endpoints (seq, filter text), those whose filter `body` (an event's call
/// body) does not pass.
pub fn left_out(body: &str, filtered: &[(i64, String)]) -> Vec<i64> {
    if filtered.is_empty() {
        return Vec::new();
    }
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return Vec::new();
    };
    filtered
        .iter()
        .filter(|(_, text)| parsed(text).is_some_and(|filter| !filter.matches(&body)))
        .map(|(seq, _)| *seq)
        .collect()
}

/// Of `events` (seq, call body), those an endpoint's `filter` lets through: what a replay to
/// it delivers again.
pub fn let_through(filter: &str, events: Vec<(i64, String)>) -> Vec<i64> {
    let Some(filter) = parsed(filter) else {
        return events.into_iter().map(|(seq, _)| seq).collect();
    };
    events
        .into_iter()
        .filter(|(_, body)| serde_json::from_str::<Value>(body).is_ok_and(|body| filter.matches(&body)))
        .map(|(seq, _)| seq)
        .collect()
}
