//! Webhook format versions: which call body an endpoint receives.
//!
//! Version 1 is the seed's body, rendered once when the event is written and stored. Version 2
//! is the Standard Webhooks structure, `{"id", "type", "timestamp", "data"}`, with what
//! version 1 links to inside `data`: the application as its event's transaction saw it (the
//! snapshot kept with the event), or the endpoint an operational event is about. It is composed
//! from the stored body and snapshot by a pure function, so every call and every retry of an
//! event sends the same bytes, and the history shows them again exactly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::event::{APPLICATION_CREATE, APPLICATION_DELETE, EventType, PROCESS_STEP_CHANGE};
use super::operational;
use super::snapshot::ApplicationView;
use crate::clock::{Micros, rfc3339};

/// The format of the calls an endpoint receives.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum WebhookVersion {
    /// The seed's body: `{"id", "event", "datetime", "application": {"_self"}, "data"}`.
    #[default]
    #[serde(rename = "1")]
    V1,
    /// The Standard Webhooks structure, with the application's snapshot in `data.application`.
    #[serde(rename = "2")]
    V2,
}

impl WebhookVersion {
    pub const ALL: [WebhookVersion; 2] = [WebhookVersion::V1, WebhookVersion::V2];

    /// `"1"` or `"2"`, as the API and the stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookVersion::V1 => "1",
            WebhookVersion::V2 => "2",
        }
    }

    pub fn parse(word: &str) -> Option<WebhookVersion> {
        WebhookVersion::ALL.into_iter().find(|v| v.as_str() == word)
    }

    /// The body of a call in this version, from the event's stored (version-1) `body`, its
    /// application `snapshot` if it has one, and its time `at`.
    pub fn body(self, body: &str, snapshot: Option<&str>, at: Micros) -> String {
        match self {
            WebhookVersion::V1 => body.to_owned(),
            WebhookVersion::V2 => version_2(body, snapshot, at),
        }
    }

    /// The JSON Schema of a call body of `event_type` in this version.
    pub fn schema(self, event_type: &EventType) -> Value {
        let mut data = event_type.schema.clone();
        if let Some(data) = data.as_object_mut() {
            // A subschema is not a document of its own.
            data.remove("$schema");
        }
        let subject = Subject::of(&event_type.name, event_type.builtin);
        let (mut required, mut properties) = match self {
            WebhookVersion::V1 => (
                vec!["id", "event", "datetime", "data"],
                json!({
                    "id": {"type": "string"},
                    "event": {"const": event_type.name},
                    "datetime": {"type": "string", "description": "YYYY-MM-DD HH:MM:SS in the server's time zone"},
                    "data": data,
                }),
            ),
            WebhookVersion::V2 => {
                let data = match subject.link() {
                    None => data,
                    Some((name, required, _)) => json!({"allOf": [data, {
                        "type": "object",
                        "required": if required { vec![name] } else { vec![] },
                        "properties": {name: subject.v2_schema()},
                    }]}),
                };
                (
                    vec!["id", "type", "timestamp", "data"],
                    json!({
                        "id": {"type": "string"},
                        "type": {"const": event_type.name},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "data": data,
                    }),
                )
            }
        };
        if let (WebhookVersion::V1, Some((name, needed, link))) = (self, subject.link()) {
            properties[name] = link;
            if needed {
                required.push(name);
            }
        }
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": format!("{} (version {})", event_type.name, self.as_str()),
            "type": "object",
            "required": required,
            "properties": properties,
        })
    }
}

/// A version support has deprecated: calls in it carry `Deprecation` (RFC 9745) and
/// `Sunset` (RFC 8594). Delivery does not stop at the sunset: only a person changes an
/// endpoint's `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// When it was first deprecated.
    pub at: Micros,
    /// The day it is announced to end.
    pub sunset: jiff::civil::Date,
}

impl Deprecation {
    /// The sunset as `YYYY-MM-DD`, as the API takes and shows it.
    pub fn sunset_day(&self) -> String {
        self.sunset.strftime("%Y-%m-%d").to_string()
    }

    /// The headers of a call in this version: `Deprecation: @<unix seconds>` and
    /// `Sunset: <HTTP-date of 00:00:00 GMT on the sunset day>`.
    pub fn headers(&self) -> [(&'static str, String); 2] {
        [
            ("deprecation", format!("@{}", self.at.div_euclid(1_000_000))),
            ("sunset", self.sunset.strftime("%a, %d %b %Y 00:00:00 GMT").to_string()),
        ]
    }
}

/// Reads a sunset day, `YYYY-MM-DD`, which may not be before `today`.
pub fn parse_sunset(text: &str, today: jiff::civil::Date) -> Result<jiff::civil::Date, super::Invalid> {
    let day = jiff::civil::Date::strptime("%Y-%m-%d", text)
        .ok()
        .filter(|day| day.strftime("%Y-%m-%d").to_string() == text)
        .ok_or_else(|| super::Invalid::field("sunset", "must be a day, YYYY-MM-DD"))?;
    if day < today {
        return Err(super::Invalid::field("sunset", "must be today or later"));
    }
    Ok(day)
}

/// What an event's body links to, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// Always an application: the built-in application events.
    Application,
    /// An application or none: a host product's own types.
    MaybeApplication,
    /// The endpoint it is about: the operational events about one endpoint.
    Endpoint,
    /// Nothing: the test call, a version's deprecation.
    Nothing,
}

impl Subject {
    fn of(event_type: &str, builtin: bool) -> Subject {
        match event_type {
            PROCESS_STEP_CHANGE | APPLICATION_CREATE | APPLICATION_DELETE => Subject::Application,
            operational::WEBHOOK_VERSION_DEPRECATED => Subject::Nothing,
            t if operational::OPERATIONAL.contains(&t) => Subject::Endpoint,
            _ if builtin => Subject::Nothing,
            _ => Subject::MaybeApplication,
        }
    }

    /// The member that links to the subject, whether it is always there, and its version-1
    /// schema.
    fn link(self) -> Option<(&'static str, bool, Value)> {
        let link = json!({"type": "object", "required": ["_self"], "properties": {"_self": {"type": "string"}}});
        match self {
            Subject::Application => Some(("application", true, link)),
            Subject::MaybeApplication => Some(("application", false, json!({"anyOf": [link, {"type": "null"}]}))),
            Subject::Endpoint => Some(("endpoint", true, link)),
            Subject::Nothing => None,
        }
    }

    /// The schema of what version 2 puts in `data` for the subject.
    fn v2_schema(self) -> Value {
        match self {
            Subject::Application | Subject::MaybeApplication => application_schema().clone(),
            Subject::Endpoint | Subject::Nothing => self.link().map(|(_, _, link)| link).unwrap_or(Value::Null),
        }
    }
}

/// The snapshot's schema: the application's own, with every part written out in place so it
/// can sit inside another schema.
fn application_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator();
        let mut schema =
            serde_json::to_value(generator.into_root_schema_for::<ApplicationView>()).expect("a schema serialises");
        if let Some(schema) = schema.as_object_mut() {
            schema.remove("$schema");
        }
        schema
    })
}

/// What version 2 reads of a stored body.
#[derive(Deserialize)]
struct Stored {
    id: String,
    event: String,
    #[serde(default)]
    endpoint: Option<Value>,
    data: Map<String, Value>,
}

#[derive(Serialize)]
struct Version2<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: Map<String, Value>,
}

fn version_2(body: &str, snapshot: Option<&str>, at: Micros) -> String {
    // Herald wrote both; a body it cannot read again is sent as it is rather than lost.
    let Ok(Stored {
        id,
        event,
        endpoint,
        mut data,
    }) = serde_json::from_str::<Stored>(body)
    else {
        return body.to_owned();
    };
    if let Some(application) = snapshot.and_then(|s| serde_json::from_str::<Value>(s).ok()) {
        data.insert("application".into(), application);
    }
    if let Some(endpoint) = endpoint {
        data.insert("endpoint".into(), endpoint);
    }
    let body = Version2 {
        id: &id,
        event_type: &event,
        timestamp: rfc3339(at),
        data,
    };
    serde_json::to_string(&body).expect("a body always serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_moves_what_version_1_links_to_into_data() {
        let v1 = r#"{"id":"evt_1","event":"ProcessStepChange","datetime":"2021-04-01 14:13:14","application":{"_self":"/restapi/v1/application/42"},"data":{"from":{"id":1,"name":"Screening"},"to":{"id":2,"name":"Interview"}}}"#;
        let snapshot = r#"{"_self":"/restapi/v1/application/42","id":42}"#;
        let at = 1_617_286_394_000_000; // 2021-04-01T14:13:14Z
        assert_eq!(WebhookVersion::V1.body(v1, Some(snapshot), at), v1);
        assert_eq!(
            WebhookVersion::V2.body(v1, Some(snapshot), at),
            r#"{"id":"evt_1","type":"ProcessStepChange","timestamp":"2021-04-01T14:13:14Z","data":{"application":{"_self":"/restapi/v1/application/42","id":42},"from":{"id":1,"name":"Screening"},"to":{"id":2,"name":"Interview"}}}"#
        );
        let about = r#"{"id":"evt_2","event":"EndpointSuspended","datetime":"x","endpoint":{"_self":"/e/1"},"data":{"url":"u"}}"#;
        assert_eq!(
            WebhookVersion::V2.body(about, None, at),
            r#"{"id":"evt_2","type":"EndpointSuspended","timestamp":"2021-04-01T14:13:14Z","data":{"endpoint":{"_self":"/e/1"},"url":"u"}}"#
        );
        let nothing =
            r#"{"id":"evt_3","event":"WebhookTest","datetime":"x","application":null,"data":{"message":"m"}}"#;
        assert_eq!(
            WebhookVersion::V2.body(nothing, None, at),
            r#"{"id":"evt_3","type":"WebhookTest","timestamp":"2021-04-01T14:13:14Z","data":{"message":"m"}}"#,
            "an event about no application has no data.application"
        );
    }

    #[test]
    fn a_deprecation_says_when_in_its_headers() {
        let deprecation = Deprecation {
            at: 1_700_000_000_123_456,
            sunset: jiff::civil::date(2027, 6, 1),
        };
        assert_eq!(
            deprecation.headers(),
            [
                ("deprecation", "@1700000000".to_owned()),
                ("sunset", "Tue, 01 Jun 2027 00:00:00 GMT".to_owned()),
            ]
        );
        assert_eq!(deprecation.sunset_day(), "2027-06-01");
    }

    #[test]
    fn a_sunset_is_a_day_not_in_the_past() {
        let today = jiff::civil::date(2026, 12, 3);
        assert_eq!(parse_sunset("2027-06-01", today), Ok(jiff::civil::date(2027, 6, 1)));
        assert_eq!(parse_sunset("2026-12-03", today), Ok(today));
        for bad in [
            "2026-12-02",
            "2027-02-30",
            "2027-6-1",
            "June 2027",
            "",
            "2027-06-01T00:00:00Z",
        ] {
            assert!(parse_sunset(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_words() {
        for v in WebhookVersion::ALL {
            assert_eq!(WebhookVersion::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
        }
        assert_eq!(WebhookVersion::parse("3"), None);
    }
}
