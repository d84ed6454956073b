//! Operational events: what Herald tells an account about its own endpoints. They are
//! delivered like any event, but only to the account's endpoints that name them (`"*"` does
//! not include them), and never to the endpoint they are about.
//!
//! The rules here are what to tell and when: a suspension once per episode (an active
//! endpoint suspended; the doubled cool-downs after failed probes are the same episode), a
//! resumption from suspended or disabled, a disabling, and at most one `DeliveryFailed` per
//! endpoint per hour.

use serde::Serialize;
use serde_json::{Value, json};

use super::delivery::FailureCode;
use super::endpoint::{Endpoint, EndpointState};
use super::event::{Event, EventDraft, EventStamp, EventType, WEBHOOK_TEST, about_endpoint, endpoint_path};
use crate::clock::Micros;

pub const ENDPOINT_SUSPENDED: &str = "EndpointSuspended";
pub const ENDPOINT_RESUMED: &str = "EndpointResumed";
pub const ENDPOINT_DISABLED: &str = "EndpointDisabled";
pub const DELIVERY_FAILED: &str = "DeliveryFailed";
pub const WEBHOOK_VERSION_DEPRECATED: &str = "WebhookVersionDeprecated";

/// Every operational event type.
pub const OPERATIONAL: [&str; 5] = [
    ENDPOINT_SUSPENDED,
    ENDPOINT_RESUMED,
    ENDPOINT_DISABLED,
    DELIVERY_FAILED,
    WEBHOOK_VERSION_DEPRECATED,
];

/// At most one `DeliveryFailed` per endpoint in this long.
pub const DELIVERY_FAILED_PERIOD: Micros = 3_600 * 1_000_000;

/// What to tell an account about one of its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    Suspended,
    Resumed,
    Disabled,
    /// Deliveries used up their retries: this many since the last `DeliveryFailed`.
    DeliveriesFailed(u32),
}

impl News {
    /// The news, if any, in an endpoint's change of state.
    pub fn of_change(before: EndpointState, after: EndpointState) -> Option<News> {
        use EndpointState::*;
        match (before, after) {
            (Active, Suspended) => Some(News::Suspended),
            (Suspended | Disabled, Active) => Some(News::Resumed),
            (Active | Suspended, Disabled) => Some(News::Disabled),
            _ => None,
        }
    }

    pub fn event_type(self) -> &'static str {
        match self {
            News::Suspended => ENDPOINT_SUSPENDED,
            News::Resumed => ENDPOINT_RESUMED,
            News::Disabled => ENDPOINT_DISABLED,
            News::DeliveriesFailed(_) => DELIVERY_FAILED,
        }
    }
}

/// Where an endpoint stands with `DeliveryFailed`: when the last one was told, and how many
/// failed deliveries have not been told since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureNotices {
    pub last_told: Option<Micros>,
    pub untold: u32,
}

impl FailureNotices {
    /// After `failed` more deliveries failed at `now`: how many to tell now (all the untold
    /// ones, at most once an hour), and the notices' new standing.
    pub fn after(self, failed: u32, now: Micros) -> (Option<u32>, FailureNotices) {
        let untold = self.untold.saturating_add(failed);
        match self.last_told {
            Some(told) if now - told < DELIVERY_FAILED_PERIOD => (
                None,
                FailureNotices {
                    last_told: Some(told),
                    untold,
                },
            ),
            _ => (
                Some(untold),
                FailureNotices {
                    last_told: Some(now),
                    untold: 0,
                },
            ),
        }
    }
}

/// The call an operational event points to.
#[derive(Debug, Clone)]
pub struct LastCall {
    pub task_id: i64,
    pub response_status: u16,
    pub error: Option<FailureCode>,
}

/// The endpoint an event is about, as it stands after the news.
pub struct About<'a> {
    pub endpoint_id: &'a str,
    pub url: &'a str,
    pub state: EndpointState,
    pub consecutive_failures: u32,
    /// When a suspension ends, as the API shows date-times.
    pub suspended_until: Option<String>,
}

/// `EndpointResumed` for an endpoint resumed by hand (from the state `before`), if it was
/// resting: resuming an active endpoint is no news.
pub fn resumed_by_hand(before: EndpointState, after: &Endpoint, stamp: EventStamp) -> Option<Event> {
    let news = News::of_change(before, after.state)?;
    let about = About {
        endpoint_id: &after.id,
        url: &after.url,
        state: after.state,
        consecutive_failures: after.consecutive_failures,
        suspended_until: None,
    };
    Some(event(news, &about, None, stamp))
}

/// Which news is also e-mailed to the account's `notify_email`: a suspension (at most one
/// e-mail a day per endpoint) and a disabling.
pub fn mailed(news: News) -> Option<MailKind> {
    match news {
        News::Suspended => Some(MailKind::Suspended),
        News::Disabled => Some(MailKind::Disabled),
        News::Resumed | News::DeliveriesFailed(_) => None,
    }
}

/// At most one suspension e-mail per endpoint in this long.
pub const SUSPENSION_MAIL_PERIOD: Micros = 24 * 3_600 * 1_000_000;

/// What an e-mail tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Suspended,
    Disabled,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Suspended => "suspended",
            MailKind::Disabled => "disabled",
        }
    }

    pub fn parse(word: &str) -> Option<MailKind> {
        match word {
            "suspended" => Some(MailKind::Suspended),
            "disabled" => Some(MailKind::Disabled),
            _ => None,
        }
    }
}

/// An e-mail waiting to be sent, with what it tells, as the store reads it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub id: i64,
    pub kind: MailKind,
    /// Tries so far.
    pub attempts: u32,
    pub created_at: Micros,
    /// The account's address now (it may have been taken away since).
    pub to: Option<String>,
    /// The operational event's body, unless retention purged it.
    pub event_body: Option<String>,
    /// The endpoint, unless it was deleted since: id, URL, description.
    pub endpoint: Option<(String, String, String)>,
    /// The call that made the news, unless purged: status, answer's body, error.
    pub call: Option<(u16, String, Option<String>)>,
}

/// The event types a replay does not send again: test calls, and operational events, which
/// tell of a moment that has passed.
pub fn not_replayed() -> impl Iterator<Item = &'static str> {
    std::iter::once(WEBHOOK_TEST).chain(OPERATIONAL)
}

/// The `last_call` of an operational event's data.
#[derive(Serialize)]
struct CallLink {
    #[serde(rename = "_self")]
    self_: String,
    response_status: u16,
    error: Option<&'static str>,
}

/// The data of a change of state, in the spec's order.
#[derive(Serialize)]
struct StateData<'a> {
    url: &'a str,
    state: EndpointState,
    consecutive_failures: u32,
    suspended_until: Option<&'a str>,
    last_call: Option<CallLink>,
}

/// The data of `DeliveryFailed`.
#[derive(Serialize)]
struct FailedData<'a> {
    url: &'a str,
    count: u32,
    last_call: Option<CallLink>,
}

/// The event that tells `news` about an endpoint.
pub fn event(news: News, about: &About, last_call: Option<&LastCall>, stamp: EventStamp) -> Event {
    let last_call = last_call.map(|call| CallLink {
        self_: format!("/restapi/v1/webhook/task/{}", call.task_id),
        response_status: call.response_status,
        error: call.error.map(FailureCode::as_str),
    });
    let event_type = news.event_type();
    match news {
        News::DeliveriesFailed(count) => {
            let data = FailedData {
                url: about.url,
                count,
                last_call,
            };
            about_endpoint(event_type, about.endpoint_id, &data, stamp)
        }
        _ => {
            let data = StateData {
                url: about.url,
                state: about.state,
                consecutive_failures: about.consecutive_failures,
                suspended_until: about.suspended_until.as_deref(),
                last_call,
            };
            about_endpoint(event_type, about.endpoint_id, &data, stamp)
        }
    }
}

/// The data of `WebhookVersionDeprecated`.
#[derive(Serialize)]
struct DeprecatedData<'a> {
    version: &'a str,
    sunset: &'a str,
    endpoints: Vec<Link>,
}

#[derive(Serialize)]
struct Link {
    #[serde(rename = "_self")]
    self_: String,
}

/// `WebhookVersionDeprecated` for an account whose `endpoints` (ids) receive `version`, which
/// ends on `sunset` (`YYYY-MM-DD`).
pub fn version_deprecated(version: &str, sunset: &str, endpoints: &[String], stamp: EventStamp) -> Event {
    let data = DeprecatedData {
        version,
        sunset,
        endpoints: endpoints
            .iter()
            .map(|id| Link {
                self_: endpoint_path(id),
            })
            .collect(),
    };
    EventDraft {
        event_type: WEBHOOK_VERSION_DEPRECATED.into(),
        application_id: None,
        data: serde_json::to_value(data).expect("the data always serialises"),
    }
    .stamp(stamp)
}

/// The operational types, with the schemas of their `data`.
pub fn types() -> Vec<EventType> {
    let call = json!({"type": ["object", "null"], "required": ["_self", "response_status", "error"],
        "properties": {"_self": {"type": "string"}, "response_status": {"type": "integer"},
                       "error": {"type": ["string", "null"]}}});
    let schema = |required: Value, properties: Value| {
        json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
               "required": required, "properties": properties})
    };
    let state = schema(
        json!(["url", "state", "consecutive_failures", "suspended_until", "last_call"]),
        json!({
            "url": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "suspended", "disabled"]},
            "consecutive_failures": {"type": "integer"},
            "suspended_until": {"type": ["string", "null"]},
            "last_call": call,
        }),
    );
    let failed = schema(
        json!(["url", "count", "last_call"]),
        json!({"url": {"type": "string"}, "count": {"type": "integer", "minimum": 1}, "last_call": call}),
    );
    let deprecated = schema(
        json!(["version", "sunset", "endpoints"]),
        json!({
            "version": {"type": "string"},
            "sunset": {"type": "string"},
            "endpoints": {"type": "array", "items": {"type": "object", "required": ["_self"],
                "properties": {"_self": {"type": "string"}}}},
        }),
    );
    let described = |name: &str, description: &str, schema: &Value| EventType {
        name: name.into(),
        description: description.into(),
        schema: schema.clone(),
        builtin: true,
    };
    vec![
        described(
            ENDPOINT_SUSPENDED,
            "One of the account's endpoints failed repeatedly and rests until `suspended_until`; \
             sent once per episode.",
            &state,
        ),
        described(
            ENDPOINT_RESUMED,
            "A suspended or disabled endpoint is active again, by a successful probe or by hand.",
            &state,
        ),
        described(
            ENDPOINT_DISABLED,
            "An endpoint failed for too long, or answered 410: it is no longer called until \
             someone resumes it.",
            &state,
        ),
        described(
            DELIVERY_FAILED,
            "Deliveries to an endpoint used up their retries: `count` of them since the last \
             DeliveryFailed about it (at most one an hour).",
            &failed,
        ),
        described(
            WEBHOOK_VERSION_DEPRECATED,
            "A webhook format version the account's endpoints use is deprecated, with its sunset date.",
            &deprecated,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspension_is_news_once_per_episode() {
        use EndpointState::*;
        let table = [
            (Active, Suspended, Some(News::Suspended)),
            (Suspended, Suspended, None), // a failed probe: a longer cool-down, same episode
            (Suspended, Active, Some(News::Resumed)),
            (Disabled, Active, Some(News::Resumed)),
            (Active, Disabled, Some(News::Disabled)),
            (Suspended, Disabled, Some(News::Disabled)),
            (Disabled, Disabled, None),
            (Active, Active, None),
        ];
        for (before, after, news) in table {
            assert_eq!(News::of_change(before, after), news, "{before:?} -> {after:?}");
        }
    }

    #[test]
    fn failed_deliveries_are_told_at_most_once_an_hour_and_none_is_forgotten() {
        const MIN: Micros = 60 * 1_000_000;
        let fresh = FailureNotices::default();
        let (told, notices) = fresh.after(2, 0);
        assert_eq!(told, Some(2), "the first failures are told at once");
        let (told, notices) = notices.after(1, 10 * MIN);
        assert_eq!(told, None, "within the hour: counted, not told");
        let (told, notices) = notices.after(3, 59 * MIN);
        assert_eq!((told, notices.untold), (None, 4));
        let (told, notices) = notices.after(1, 60 * MIN);
        assert_eq!(told, Some(5), "an hour on, the next failure tells all that waited");
        assert_eq!(
            notices,
            FailureNotices {
                last_told: Some(60 * MIN),
                untold: 0
            }
        );
    }

    #[test]
    fn a_suspension_reads_as_the_spec_shows_it() {
        let about = About {
            endpoint_id: "ep_1",
            url: "https://example.com/hook",
            state: EndpointState::Suspended,
            consecutive_failures: 5,
            suspended_until: Some("2021-04-01 12:14:14".into()),
        };
        let call = LastCall {
            task_id: 91,
            response_status: 500,
            error: Some(FailureCode::HttpStatus),
        };
        let stamp = EventStamp {
            id: "evt_1".into(),
            at: 0,
            datetime: "2021-04-01 12:13:14".into(),
        };
        let event = event(News::Suspended, &about, Some(&call), stamp);
        assert_eq!(
            event.body,
            r#"{"id":"evt_1","event":"EndpointSuspended","datetime":"2021-04-01 12:13:14","endpoint":{"_self":"/restapi/v1/webhook/endpoint/ep_1"},"data":{"url":"https://example.com/hook","state":"suspended","consecutive_failures":5,"suspended_until":"2021-04-01 12:14:14","last_call":{"_self":"/restapi/v1/webhook/task/91","response_status":500,"error":"http_status"}}}"#
        );
        assert_eq!(event.event_type, ENDPOINT_SUSPENDED);
    }
}
