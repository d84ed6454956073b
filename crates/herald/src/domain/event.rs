//! Events: immutable facts about applications, the types they come in, and the exact body
//! that every call carries.

use serde::Serialize;
use serde_json::{Value, json};

use super::Invalid;
use super::recruiting::ProcessStep;
use crate::clock::Micros;

/// Built in: an application moved to another step of its process.
pub const PROCESS_STEP_CHANGE: &str = "ProcessStepChange";
/// Built in: an application was created, at the first step.
pub const APPLICATION_CREATE: &str = "ApplicationCreate";
/// Built in: an application was deleted.
pub const APPLICATION_DELETE: &str = "ApplicationDelete";

/// Built in: a test call asked for by `POST …/endpoint/{id}/test`, sent to that endpoint alone.
pub const WEBHOOK_TEST: &str = "WebhookTest";

/// A kind of event endpoints can subscribe to. `schema` describes the body's `data`.
#[derive(Debug, Clone)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub schema: Value,
    /// Emitted by Herald itself, never published through the admin API.
    pub builtin: bool,
}

/// The types every Herald has: the three about applications, the test call, and the
/// operational events about endpoints (see `operational`).
pub fn builtin_types() -> Vec<EventType> {
    let step = json!({"type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}});
    let link = json!({"type": "object", "required": ["_self", "id"],
        "properties": {"_self": {"type": "string"}, "id": {"type": "integer"}}});
    let object = |required: Value, properties: Value| {
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
               "required": required, "properties": properties})
    };
    vec![
        EventType {
            name: PROCESS_STEP_CHANGE.into(),
            description: "An application moved from one step of its process to another.".into(),
            schema: object(json!(["from", "to"]), json!({"from": step, "to": step})),
            builtin: true,
        },
        EventType {
            name: APPLICATION_CREATE.into(),
            description: "A candidate applied to a job; the application is at the process's first step.".into(),
            schema: object(
                json!(["candidate", "job", "step"]),
                json!({"candidate": link, "job": link, "step": step}),
            ),
            builtin: true,
        },
        EventType {
            name: APPLICATION_DELETE.into(),
            description: "An application was deleted; its link no longer answers.".into(),
            schema: object(json!(["step"]), json!({"step": step})),
            builtin: true,
        },
        EventType {
            name: WEBHOOK_TEST.into(),
            description: "A test call, sent to one endpoint when asked; it carries no application.".into(),
            schema: object(json!(["message"]), json!({"message": {"type": "string"}})),
            builtin: true,
        },
    ]
    .into_iter()
    .chain(super::operational::types())
    .collect()
}

/// Checks a new event type's name: a letter, then letters, digits, `_` or `.`.
pub fn check_type_name(name: &str) -> Result<(), Invalid> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(Invalid::field(
            "name",
            "must be 1 to 64 letters, digits, '_' or '.', starting with a letter",
        ))
    }
}

/// Checks that an event type's `schema` reads as a JSON Schema: an object (or a boolean)
/// whose `type`, `properties`, `items` and `required` keywords, at every depth, have the
/// shapes the specification gives them. It does not judge what the schema means.
pub fn check_schema(schema: &Value) -> Result<(), Invalid> {
    check_schema_at(schema, "schema")
}

fn check_schema_at(schema: &Value, at: &str) -> Result<(), Invalid> {
    const TYPES: [&str; 7] = ["null", "boolean", "object", "array", "number", "string", "integer"];
    let object = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(object) => object,
        _ => return Err(Invalid::field(at, "must be a JSON Schema: an object or a boolean")),
    };
    let is_type = |v: &Value| v.as_str().is_some_and(|t| TYPES.contains(&t));
    match object.get("type") {
        None => {}
        Some(Value::Array(types)) if !types.is_empty() && types.iter().all(is_type) => {}
        Some(t) if is_type(t) => {}
        Some(_) => {
            return Err(Invalid::field(
                &format!("{at}.type"),
                &format!("must be one of {TYPES:?}, or a list of them"),
            ));
        }
    }
    if object.get("$ref").is_some_and(|r| !r.is_string()) {
        return Err(Invalid::field(&format!("{at}.$ref"), "must be a URI reference"));
    }
    if let Some(required) = object.get("required") {
        if !required.as_array().is_some_and(|r| r.iter().all(Value::is_string)) {
            return Err(Invalid::field(
                &format!("{at}.required"),
                "must be a list of property names",
            ));
        }
    }
    if let Some(properties) = object.get("properties") {
        let Some(properties) = properties.as_object() else {
            return Err(Invalid::field(
                &format!("{at}.properties"),
                "must be an object of schemas",
            ));
        };
        for (name, property) in properties {
            check_schema_at(property, &format!("{at}.properties.{name}"))?;
        }
    }
    if let Some(items) = object.get("items") {
        check_schema_at(items, &format!("{at}.items"))?;
    }
    Ok(())
}

/// An event before it has an id and a time.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub event_type: String,
    pub application_id: Option<i64>,
    pub data: Value,
}

/// The identity of an event being written: its id, when, and that time as the body shows it.
#[derive(Debug, Clone)]
pub struct EventStamp {
    pub id: String,
    pub at: Micros,
    pub datetime: String,
}

/// An event as stored: `body` is exactly what every version-1 call sends, and with
/// `snapshot` what every version-2 call sends (see `version`).
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub application_id: Option<i64>,
    pub created_at: Micros,
    pub body: String,
    /// The application as the event's own transaction saw it
    /// ([`ApplicationView`](super::snapshot::ApplicationView), as JSON), for events about one.
    pub snapshot: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    event: &'a str,
    datetime: &'a str,
    application: Option<Link>,
    data: &'a Value,
}

/// The body of an event about an endpoint: `endpoint` where others have `application`.
#[derive(Serialize)]
struct EndpointBody<'a, D> {
    id: &'a str,
    event: &'a str,
    datetime: &'a str,
    endpoint: Link,
    data: &'a D,
}

#[derive(Serialize)]
struct Link {
    #[serde(rename = "_self")]
    self_: String,
}

/// The REST path of an application, as events and links carry it.
pub fn application_path(id: i64) -> String {
    format!("/restapi/v1/application/{id}")
}

impl EventDraft {
    /// The event, with the body the seed's receivers read: `id`, `event`, `datetime`,
    /// `application {_self}` and `data`, in that order.
    pub fn stamp(self, stamp: EventStamp) -> Event {
        let body = Body {
            id: &stamp.id,
            event: &self.event_type,
            datetime: &stamp.datetime,
            application: self.application_id.map(|id| Link {
                self_: application_path(id),
            }),
            data: &self.data,
        };
        let body = serde_json::to_string(&body).expect("an event body always serialises");
        Event {
            id: stamp.id,
            event_type: self.event_type,
            application_id: self.application_id,
            created_at: stamp.at,
            body,
            snapshot: None,
        }
    }
}

/// An event about one of the account's endpoints (an operational event), with the body
/// `id`, `event`, `datetime`, `endpoint {_self}` and `data`, in that order.
pub fn about_endpoint(event_type: &str, endpoint_id: &str, data: &impl Serialize, stamp: EventStamp) -> Event {
    let body = EndpointBody {
        id: &stamp.id,
        event: event_type,
        datetime: &stamp.datetime,
        endpoint: Link {
            self_: endpoint_path(endpoint_id),
        },
        data,
    };
    Event {
        body: serde_json::to_string(&body).expect("an event body always serialises"),
        id: stamp.id,
        event_type: event_type.into(),
        application_id: None,
        created_at: stamp.at,
        snapshot: None,
    }
}

/// The REST path of an endpoint, as operational events carry it.
pub fn endpoint_path(id: &str) -> String {
    format!("/restapi/v1/webhook/endpoint/{id}")
}

fn step_json(step: &ProcessStep) -> Value {
    json!({"id": step.id, "name": step.name})
}

/// `ApplicationCreate` for a new application at its first step.
pub fn application_create(application_id: i64, candidate_id: i64, job_id: i64, step: &ProcessStep) -> EventDraft {
    EventDraft {
        event_type: APPLICATION_CREATE.into(),
        application_id: Some(application_id),
        data: json!({
            "candidate": {"_self": format!("/restapi/v1/candidate/{candidate_id}"), "id": candidate_id},
            "job": {"_self": format!("/restapi/v1/job/{job_id}"), "id": job_id},
            "step": step_json(step),
        }),
    }
}

/// `ProcessStepChange` from one step to another.
pub fn process_step_change(application_id: i64, from: &ProcessStep, to: &ProcessStep) -> EventDraft {
    EventDraft {
        event_type: PROCESS_STEP_CHANGE.into(),
        application_id: Some(application_id),
        data: json!({"from": step_json(from), "to": step_json(to)}),
    }
}

/// `WebhookTest`, for one endpoint.
pub fn webhook_test() -> EventDraft {
    EventDraft {
        event_type: WEBHOOK_TEST.into(),
        application_id: None,
        data: json!({"message": "This is a test call from Herald."}),
    }
}

/// `ApplicationDelete`, with the step the application was at.
pub fn application_delete(application_id: i64, step: &ProcessStep) -> EventDraft {
    EventDraft {
        event_type: APPLICATION_DELETE.into(),
        application_id: Some(application_id),
        data: json!({"step": step_json(step)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recruiting::StepStatus;

    fn step(id: i64, name: &str) -> ProcessStep {
        ProcessStep {
            id,
            process_id: 1,
            name: name.into(),
            status: StepStatus::Current,
        }
    }

    #[test]
    fn a_step_change_body_has_the_seed_shape_in_order() {
        let stamp = EventStamp {
            id: "evt_1".into(),
            at: 0,
            datetime: "2021-04-01 12:13:14".into(),
        };
        let event = process_step_change(42, &step(1, "Screening"), &step(2, "Interview")).stamp(stamp);
        assert_eq!(
            event.body,
            r#"{"id":"evt_1","event":"ProcessStepChange","datetime":"2021-04-01 12:13:14","application":{"_self":"/restapi/v1/application/42"},"data":{"from":{"id":1,"name":"Screening"},"to":{"id":2,"name":"Interview"}}}"#
        );
    }

    #[test]
    fn schemas_are_checked_for_shape_at_every_depth() {
        for schema in builtin_types().iter().map(|t| &t.schema) {
            assert_eq!(check_schema(schema), Ok(()));
        }
        assert!(check_schema(&json!({"type": ["string", "null"]})).is_ok());
        for bad in [
            json!({"type": 12}),
            json!({"type": "text"}),
            json!({"required": "email"}),
            json!({"properties": {"email": {"type": "strng"}}}),
            json!({"items": 3}),
            json!("object"),
        ] {
            assert!(check_schema(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_names_are_identifiers() {
        assert!(check_type_name("CandidateUpdate").is_ok());
        assert!(check_type_name("billing.invoice_paid").is_ok());
        for bad in ["", "1Up", "has space", "*", &"x".repeat(65)] {
            assert!(check_type_name(bad).is_err(), "{bad}");
        }
    }
}
