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

/// One call's body: `{"id", "event", "datetime", "application", "data"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// `evt_…`, the same as `webhook-id`: the key against duplicates.
    pub id: String,
    /// The event type, such as `ProcessStepChange`.
    pub event: String,
    /// `"YYYY-MM-DD HH:MM:SS"` in the server's time zone.
    pub datetime: String,
    /// The application it is about; fetch it over the REST API for the details.
    pub application: Option<Link>,
    pub data: Value,
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
    fn unknown_types_are_other_with_their_data_kept() {
        let body = r#"{"id":"evt_2","event":"CandidateUpdate","datetime":"x","application":null,"data":{"a":1}}"#;
        let event: Event = serde_json::from_str(body).unwrap();
        assert_eq!(event.payload(), Payload::Other);
        assert_eq!(event.data["a"], 1);
    }
}
