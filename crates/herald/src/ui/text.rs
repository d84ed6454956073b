//! How figures and states read on a page: rates, latencies, states with their colour.

use maud::{Markup, html};
use serde_json::Value;

/// A success rate as a percentage, or a dash without calls.
pub fn rate(value: &Value) -> String {
    value.as_f64().map_or("–".into(), |r| format!("{:.1} %", r * 100.0))
}

/// A latency quantile (the upper bound of its bucket), or a dash.
pub fn ms(value: &Value) -> String {
    match value.as_i64() {
        Some(ms) if ms >= 1000 => format!("≤ {} s", ms as f64 / 1000.0),
        Some(ms) => format!("≤ {ms} ms"),
        None => "–".into(),
    }
}

/// A JSON value as plain text: strings bare, anything else as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An endpoint's state as a coloured badge.
pub fn state_badge(state: &Value) -> Markup {
    let word = state.as_str().unwrap_or("unknown");
    let class = match word {
        "active" => "ok",
        "suspended" => "warn",
        _ => "bad",
    };
    html! { span class={"state " (class)} { (word) } }
}

/// A call's status as a coloured badge: 2xx green, no answer or 5xx red, others amber.
pub fn status(status: &Value) -> Markup {
    let code = status.as_i64().unwrap_or(0);
    let (class, label) = match code {
        0 => ("bad", "no answer".to_owned()),
        200..=299 => ("ok", code.to_string()),
        500..=599 => ("bad", code.to_string()),
        _ => ("warn", code.to_string()),
    };
    html! { span class={"status " (class)} { (label) } }
}

/// Pretty-printed JSON when `text` is JSON, else the text as it is.
pub fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(rate(&json!(0.9876)), "98.8 %");
        assert_eq!(rate(&Value::Null), "–");
        assert_eq!(ms(&json!(250)), "≤ 250 ms");
        assert_eq!(ms(&json!(2500)), "≤ 2.5 s");
        assert_eq!(pretty("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty("<b>not json</b>"), "<b>not json</b>");
    }
}
