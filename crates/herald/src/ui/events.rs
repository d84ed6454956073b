//! The event catalogue: each type with its description, the schema of its call body per
//! format version, and an example body made from that schema.

use axum::extract::State;
use maud::html;
use serde_json::{Map, Value, json};

use super::layout::{Section, page};
use super::session::Visitor;
use super::text::plain;
use super::{UiResult, UiState};

/// `GET /ui/events`.
pub async fn catalogue(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    visitor.account()?;
    let types = state.api.get("/admin/v1/event-type?limit=100").await?;
    let types = types["items"].as_array().cloned().unwrap_or_default();
    let content = html! {
        h1 { "Event types" }
        p.muted {
            "What an endpoint can subscribe to, and the body of its calls. Version 1 is the seed's format; "
            "version 2 is Standard Webhooks' (an endpoint's format version is in its configuration)."
        }
        @for t in &types {
            section.event-type id=(plain(&t["name"])) {
                h2 { code { (plain(&t["name"])) } @if t["builtin"] == json!(false) { " " span.badge { "host product" } } }
                p { (plain(&t["description"])) }
                div.columns {
                    @for (version, schema) in t["schemas"].as_object().into_iter().flatten() {
                        div {
                            h3 { "Version " (version) ": an example made from its schema" }
                            pre.body { (serde_json::to_string_pretty(&example(schema, schema, 0, "")).unwrap_or_default()) }
                            details {
                                summary { "The JSON Schema of a version " (version) " body" }
                                pre.body { (serde_json::to_string_pretty(schema).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&visitor, Section::Events, "Event types", content))
}

/// A value that `schema` accepts, for people to read: its own example, const or first
/// choice where it gives one, else a value of its type that suits the property's `name`,
/// with every property.
pub fn example(schema: &Value, root: &Value, depth: usize, name: &str) -> Value {
    if depth > 12 {
        return Value::Null;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or(&Value::Null);
        return example(target, root, depth + 1, name);
    }
    if let Some(first) = schema["examples"].get(0) {
        return first.clone();
    }
    for key in ["example", "const", "default"] {
        if let Some(value) = schema.get(key) {
            return value.clone();
        }
    }
    if let Some(first) = schema["enum"].get(0) {
        return first.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) = schema[key].get(0) {
            return example(first, root, depth + 1, name);
        }
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") => {
            let mut object = Map::new();
            for (key, property) in schema["properties"].as_object().into_iter().flatten() {
                object.insert(key.clone(), example(property, root, depth + 1, key));
            }
            Value::Object(object)
        }
        Some("array") => json!([example(&schema["items"], root, depth + 1, name)]),
        Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(1)),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some("string") => json!(match (schema["format"].as_str(), name) {
            (Some("date-time"), _) | (_, "timestamp") => "2026-01-02T03:04:05Z",
            (Some("date"), _) | (_, "sunset") => "2026-01-02",
            (Some("uri"), _) | (_, "url") => "https://example.com/webhooks",
            (_, "datetime" | "suspended_until") => "2026-01-02 03:04:05",
            (_, "_self") => "/restapi/v1/…",
            (_, "id") => "evt_01JDXAMPLE0000000000000000",
            (_, "name") => "Interview",
            (_, "error") => "timeout: the endpoint did not answer within 30 s",
            (_, "state") => "active",
            _ => "text",
        }),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_example_fills_every_property_from_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "type": {"const": "ProcessStepChange"},
                "id": {"type": "integer"},
                "status": {"enum": ["START", "END"]},
                "at": {"type": "string", "format": "date-time"},
                "step": {"$ref": "#/$defs/step"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "maybe": {"type": ["null", "boolean"]}
            },
            "$defs": {"step": {"type": "object", "properties": {"name": {"type": "string", "examples": ["Interview"]}}}}
        });
        assert_eq!(
            example(&schema, &schema, 0, ""),
            json!({
                "type": "ProcessStepChange", "id": 1, "status": "START", "at": "2026-01-02T03:04:05Z",
                "step": {"name": "Interview"}, "tags": ["text"], "maybe": true
            })
        );
    }
}
