//! What both backends share in turning rows into Herald's types and back: the column lists
//! their row readers take in order, enums stored as bare words, values stored as JSON text,
//! "no row" as `NotFound`, and page sizes.

use super::{Page, StoreError, StoreResult};

/// An account with its process, from `accounts a`.
pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.login, a.name, (SELECT p.id FROM processes p WHERE p.account_id = a.id), a.created_at";
/// A step, from `process_steps s`.
pub(super) const STEP_COLUMNS: &str = "s.id, s.process_id, s.name, s.status";
/// A job, from `jobs j`.
pub(super) const JOB_COLUMNS: &str = "j.id, j.title, j.reference, j.status, j.process_id, j.created_at";
/// A candidate, from `candidates c`.
pub(super) const CANDIDATE_COLUMNS: &str = "c.id, c.first_name, c.last_name, c.email, c.created_at";

/// Maps "no row" to `NotFound(what)`.
pub(super) fn found<T>(row: Option<T>, what: &'static str) -> StoreResult<T> {
    row.ok_or(StoreError::NotFound(what))
}

/// Rows to fetch for a page: one more than its limit, to tell whether a next page exists.
pub(super) fn fetch_limit(page: Page) -> i64 {
    i64::from(page.limit) + 1
}

/// Reads an enum stored as its bare word (`fifo`).
pub(super) fn decode_word<T: serde::de::DeserializeOwned>(column: &str, word: String) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(word))
        .map_err(|e| StoreError::Other(format!("{column}: {e}").into()))
}

/// Reads a value stored as JSON text; the store wrote it, so a failure is corruption.
pub(super) fn decode<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("{column}: {e}").into()))
}

/// A value as the JSON text it is stored as.
pub(super) fn quoted<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// Turns an enum's JSON form (`"fifo"`) into its column text (`fifo`).
pub(super) fn column_text<T: serde::Serialize>(value: &T) -> String {
    quoted(value).trim_matches('"').to_owned()
}
