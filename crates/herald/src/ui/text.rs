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

/// JSON text laid out one member a line, its members in their own order and its values
/// byte for byte as they were (a parse would reorder keys and respell numbers); any other
/// text as it is.
pub fn pretty(text: &str) -> String {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() * 2);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on its line.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().expect("peeked"));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
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
        assert_eq!(
            pretty(r#"{"z":1.50,"a":[],"s":"x,{\":y","o":{"k":[1,2]}}"#),
            "{\n  \"z\": 1.50,\n  \"a\": [],\n  \"s\": \"x,{\\\":y\",\n  \"o\": {\n    \"k\": [\n      1,\n      2\n    ]\n  }\n}",
            "keys keep their order and values their spelling"
        );
        assert_eq!(pretty("<b>not json</b>"), "<b>not json</b>");
    }
}
