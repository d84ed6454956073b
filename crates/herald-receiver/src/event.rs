//! The body of a call, typed.

use serde::Deserialize;
use serde_json::Value;

/// A link to a resource of Herald's REST API: `{"_self": "/restapi/v1/application/42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    #[serde(rename = "_self")]
    pub self_: String,
    /// The resource's id, when the link carries it.
    #[serde(default)]
    pub id: Option<i64>,
}

/// A step of a hiring process.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StepRef {
    pub id: i64,
    pub name: String,
}

/// One call's body, in either webhook format version: version 1, `{"id", "event",
/// "datetime", "application", "data"}`, or version 2, Standard Webhooks' `{"id", "type",
/// "timestamp", "data"}` with the application in `data.application`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "Wire")]
pub struct Event {
    /// `evt_…`, the same as `webhook-id`: the key against duplicates.
    pub id: String,
    /// The event type, such as `ProcessStepChange`.
    pub event: String,
    /// When it happened: `"YYYY-MM-DD HH:MM:SS"` in the server's time zone (version 1), or
    /// RFC 3339 in UTC (version 2).
    pub datetime: String,
    /// The application it is about; fetch it over the REST API for the details.
    pub application: Option<Link>,
    /// Version 2: the application as it was when the event happened (what
    /// `GET /restapi/v1/application/{id}` answered then), so no call back is needed.
    pub snapshot: Option<Value>,
    pub data: Value,
    /// The webhook format version of the body: 1 or 2.
    pub version: u8,
}

/// A body as it comes, in either version.
#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Version2 {
        id: String,
        #[serde(rename = "type")]
        event: String,
        timestamp: String,
        data: Value,
    },
    Version1 {
        id: String,
        event: String,
        datetime: String,
        #[serde(default)]
        application: Option<Link>,
        data: Value,
    },
}

impl From<Wire> for Event {
    fn from(wire: Wire) -> Event {
        match wire {
            Wire::Version1 {
                id,
                event,
                datetime,
                application,
                data,
            } => Event {
                id,
                event,
                datetime,
                application,
                snapshot: None,
                data,
                version: 1,
            },
            Wire::Version2 {
                id,
                event,
                timestamp,
                data,
            } => {
                let snapshot = data.get("application").filter(|a| a.is_object()).cloned();
                Event {
                    id,
                    event,
                    datetime: timestamp,
                    application: snapshot.as_ref().and_then(|s| Link::deserialize(s).ok()),
                    snapshot,
                    data,
                    version: 2,
                }
            }
        }
    }
}

/// What an event says, by type.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// An application moved from one step to another.
    ProcessStepChange { from: StepRef, to: StepRef },
    /// A candidate applied to a job; the application is at `step`.
    ApplicationCreate { candidate: Link, job: Link, step: StepRef },
    /// An application was deleted at `step`.
    ApplicationDelete { step: StepRef },
    /// A test call.
    WebhookTest { message: String },
    /// A type this version does not know (a host product's own, say): read `Event::data`.
    Other,
}

#[derive(Deserialize)]
struct StepChange {
    from: StepRef,
    to: StepRef,
}

#[derive(Deserialize)]
struct Created {
    candidate: Link,
    job: Link,
    step: StepRef,
}

#[derive(Deserialize)]
struct Deleted {
    step: StepRef,
}

#[derive(Deserialize)]
struct Test {
    message: String,
}

impl Event {
    /// The typed payload; a known type whose data does not have its shape is `Other`.
    pub fn payload(&self) -> Payload {
        let data = || self.data.clone();
        let typed = match self.event.as_str() {
            "ProcessStepChange" => serde_json::from_value::<StepChange>(data())
                .map(|d| Payload::ProcessStepChange { from: d.from, to: d.to }),
            "ApplicationCreate" => serde_json::from_value::<Created>(data()).map(|d| Payload::ApplicationCreate {
                candidate: d.candidate,
                job: d.job,
                step: d.step,
            }),
            "ApplicationDelete" => {
                serde_json::from_value::<Deleted>(data()).map(|d| Payload::ApplicationDelete { step: d.step })
            }
            "WebhookTest" => {
                serde_json::from_value::<Test>(data()).map(|d| Payload::WebhookTest { message: d.message })
            }
            _ => return Payload::Other,
        };
        typed.unwrap_or(Payload::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_change_reads_as_the_spec_writes_it() {
        let body = r#"{"id":"evt_1","event":"ProcessStepChange","datetime":"2021-04-01 12:13:14",
            "application":{"_self":"/restapi/v1/application/42"},
            "data":{"from":{"id":1,"name":"Screening"},"to":{"id":2,"name":"Interview"}}}"#;
        let event: Event = serde_json::from_str(body).unwrap();
        assert_eq!(event.application.as_ref().unwrap().self_, "/restapi/v1/application/42");
        assert_eq!(
            event.payload(),
            Payload::ProcessStepChange {
                from: StepRef {
                    id: 1,
                    name: "Screening".into()
                },
                to: StepRef {
                    id: 2,
                    name: "Interview".into()
                }
            }
        );
    }

    #[test]
    fn a_version_2_body_reads_alike_with_its_snapshot() {
        let body = r#"{"id":"evt_1","type":"ProcessStepChange","timestamp":"2021-04-01T12:13:14Z",
            "data":{"application":{"_self":"/restapi/v1/application/42","id":42,"step":{"id":2}},
                    "from":{"id":1,"name":"Screening"},"to":{"id":2,"name":"Interview"}}}"#;
        let event: Event = serde_json::from_str(body).unwrap();
        assert_eq!((event.version, event.event.as_str()), (2, "ProcessStepChange"));
        assert_eq!(event.datetime, "2021-04-01T12:13:14Z");
        let application = event.application.as_ref().unwrap();
        assert_eq!(
            (application.self_.as_str(), application.id),
            ("/restapi/v1/application/42", Some(42))
        );
        assert_eq!(event.snapshot.as_ref().unwrap()["step"]["id"], 2);
        assert!(matches!(event.payload(), Payload::ProcessStepChange { .. }));
        let test = r#"{"id":"evt_2","type":"WebhookTest","timestamp":"x","data":{"message":"hi"}}"#;
        let event: Event = serde_json::from_str(test).unwrap();
        assert_eq!(event.payload(), Payload::WebhookTest { message: "hi".into() });
        assert_eq!((event.application, event.snapshot), (None, None));
    }

    #[test]
    fn unknown_types_are_other_with_their_data_kept() {
        let body = r#"{"id":"evt_2","event":"CandidateUpdate","datetime":"x","application":null,"data":{"a":1}}"#;
        let event: Event = serde_json::from_str(body).unwrap();
        assert_eq!(event.payload(), Payload::Other);
        assert_eq!(event.data["a"], 1);
    }
}
