//! Endpoints: a customer's URL, the event types it subscribes to, how calls to it are
//! authenticated and signed, and the state the dispatcher keeps for it.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::pacing::MAX_RATE;
use super::version::WebhookVersion;
use super::{Invalid, text};
use crate::clock::Micros;

/// The subscription to every event type.
pub const ALL_EVENTS: &str = "*";

/// How deliveries to one endpoint are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Deliveries run side by side (the default).
    Parallel,
    /// Each application's events arrive in the order they happened.
    Fifo,
}

/// Only the strings `"parallel"` and `"fifo"`: serde's derived reader would also take
/// `{"fifo": null}`, which no client means.
impl<'de> Deserialize<'de> for Ordering {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Ordering, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "parallel" => Ok(Ordering::Parallel),
            "fifo" => Ok(Ordering::Fifo),
            other => Err(serde::de::Error::unknown_variant(other, &["parallel", "fifo"])),
        }
    }
}

/// Whether an endpoint is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    Active,
    /// Resting after repeated failures, until `suspended_until`.
    Suspended,
    /// Failing for too long, or answered 410: waits for someone to resume it.
    Disabled,
}

/// The credentials Herald presents on every call to an endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Auth {
    Basic { username: String, password: String },
    Bearer { token: String },
    Header { name: String, value: String },
}

/// What stands in for a credential wherever it is shown after creation.
pub const MASK: &str = "********";

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the kind: a credential must never reach a log line.
        f.debug_struct("Auth")
            .field("type", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Auth {
    fn kind(&self) -> &'static str {
        match self {
            Auth::Basic { .. } => "basic",
            Auth::Bearer { .. } => "bearer",
            Auth::Header { .. } => "header",
        }
    }

    /// The same credentials with every secret part replaced by [`MASK`].
    pub fn masked(&self) -> Auth {
        match self {
            Auth::Basic { username, .. } => Auth::Basic {
                username: username.clone(),
                password: MASK.into(),
            },
            Auth::Bearer { .. } => Auth::Bearer { token: MASK.into() },
            Auth::Header { name, .. } => Auth::Header {
                name: name.clone(),
                value: MASK.into(),
            },
        }
    }

    /// Checks that the credentials can be sent as HTTP headers and clash with none of ours.
    pub fn check(&self) -> Result<(), Invalid> {
        let visible = |field: &str, value: &str| {
            text(field, value, 4096)?;
            if value.chars().any(|c| c.is_control()) {
                return Err(Invalid::field(field, "must not contain control characters"));
            }
            Ok(())
        };
        match self {
            Auth::Basic { username, password } => {
                visible("auth.username", username)?;
                if username.contains(':') {
                    return Err(Invalid::field("auth.username", "must not contain ':'"));
                }
                visible("auth.password", password)
            }
            Auth::Bearer { token } => visible("auth.token", token),
            Auth::Header { name, value } => {
                let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || name.len() > 100 || !name.chars().all(token_char) {
                    return Err(Invalid::field(
                        "auth.name",
                        "must be an HTTP header name such as X-Api-Key",
                    ));
                }
                let lower = name.to_ascii_lowercase();
                let reserved = [
                    "host",
                    "content-type",
                    "content-length",
                    "user-agent",
                    "connection",
                    "transfer-encoding",
                ];
                if reserved.contains(&lower.as_str()) || lower.starts_with("webhook-") {
                    return Err(Invalid::field("auth.name", &format!("{name} is set by Herald itself")));
                }
                visible("auth.value", value)
            }
        }
    }
}

/// A subscribed endpoint, as stored.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Keyset position for paging; not shown.
    pub seq: i64,
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub ordering: Ordering,
    pub auth: Option<Auth>,
    /// The current signing secret, `whsec_…`.
    pub secret: String,
    pub state: EndpointState,
    pub suspended_until: Option<Micros>,
    pub consecutive_failures: u32,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub controls: CallControls,
    /// Only events whose call body passes it are delivered (see `filter`), as it was given.
    pub filter: Option<serde_json::Value>,
    /// The format of the calls it receives.
    pub version: WebhookVersion,
}

/// What a customer tunes of the calls to an endpoint: the spec's endpoint controls that
/// shape each call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallControls {
    /// Extra headers sent on every call, by name in lower case.
    pub headers: BTreeMap<String, String>,
    /// The endpoint's own delays between retries, instead of the server's.
    pub retry_schedule: Option<Vec<Duration>>,
    /// The endpoint's own time-out (the server's `delivery.timeout` still bounds it).
    pub timeout: Option<Duration>,
    /// At most this many calls start per second, spaced evenly (see `pacing`).
    pub rate_limit: Option<u32>,
}

/// Headers Herald sets itself, which an endpoint's own headers may not replace.
const RESERVED_HEADERS: [&str; 5] = ["host", "content-type", "content-length", "user-agent", "authorization"];
const MAX_HEADERS: usize = 20;

impl CallControls {
    /// Checks every control as the spec bounds it; header names are taken in any case and
    /// kept in lower case.
    pub fn new(
        headers: BTreeMap<String, String>,
        retry_schedule: Option<Vec<Duration>>,
        timeout: Option<Duration>,
        rate_limit: Option<u32>,
    ) -> Result<CallControls, Invalid> {
        if headers.len() > MAX_HEADERS {
            return Err(Invalid::field("headers", &format!("at most {MAX_HEADERS} headers")));
        }
        let mut kept = BTreeMap::new();
        for (name, value) in headers {
            let lower = name.to_ascii_lowercase();
            let at = format!("headers.{name}");
            if !is_token(&name) {
                return Err(Invalid::field(
                    &at,
                    "a header name is 1 to 64 letters, digits or !#$%&'*+-.^_`|~",
                ));
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
                return Err(Invalid::field(&at, "Herald sets this header itself"));
            }
            let printable = value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            if !printable || value.len() > 1024 {
                return Err(Invalid::field(
                    &at,
                    "a value is at most 1024 printable ASCII characters",
                ));
            }
            if kept.insert(lower, value).is_some() {
                return Err(Invalid::field(&at, "the same header is given twice"));
            }
        }
        if let Some(schedule) = &retry_schedule {
            if !(1..=10).contains(&schedule.len()) {
                return Err(Invalid::field("retry_schedule", "must list 1 to 10 delays"));
            }
            let bounds = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);
            if let Some((i, _)) = schedule.iter().enumerate().find(|(_, d)| !bounds.contains(d)) {
                return Err(Invalid::field(
                    &format!("retry_schedule[{i}]"),
                    "must be from 1s to 24h",
                ));
            }
        }
        if timeout.is_some_and(|t| !(Duration::from_secs(1)..=Duration::from_secs(30)).contains(&t)) {
            return Err(Invalid::field("timeout", "must be from 1s to 30s"));
        }
        if rate_limit.is_some_and(|r| !(1..=MAX_RATE).contains(&r)) {
            return Err(Invalid::field(
                "rate_limit",
                &format!("must be from 1 to {MAX_RATE} calls per second"),
            ));
        }
        Ok(CallControls {
            headers: kept,
            retry_schedule,
            timeout,
            rate_limit,
        })
    }
}

/// An HTTP token (RFC 9110), as header names are, of at most 64 characters.
fn is_token(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What the dispatcher keeps of an endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub state: EndpointState,
    /// While suspended: when the next (probe) call may be made.
    pub suspended_until: Option<Micros>,
    pub consecutive_failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<Micros>,
    /// Suspensions in this run of failures; each one doubles the cool-down.
    pub suspensions: u32,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            state: EndpointState::Active,
            suspended_until: None,
            consecutive_failures: 0,
            failing_since: None,
            suspensions: 0,
        }
    }
}

/// An endpoint as a claim sees it: its state, and its leased deliveries on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupancy {
    pub state: EndpointState,
    pub suspended_until: Option<Micros>,
    /// Deliveries leased by any node: calls in flight, and calls that ended but whose
    /// records are not written yet (a delivery stays leased until its call is recorded).
    pub leased: u32,
    /// Of those, calls of the claiming node that have ended: no longer in flight, but their
    /// outcome is not stored yet.
    pub ended: u32,
}

impl Occupancy {
    /// How many calls may start at `now` under a cap of `cap` calls in flight: the room left
    /// when active; a single probe once a suspension is over, and only once no other call's
    /// outcome is pending, ended or not (the probe's outcome decides whether the endpoint is
    /// called again); none while cooling down or disabled.
    pub fn room(&self, cap: u32, now: Micros) -> u32 {
        match self.state {
            EndpointState::Active => cap.saturating_sub(self.leased.saturating_sub(self.ended)),
            EndpointState::Suspended if self.suspended_until.is_some_and(|until| until <= now) => {
                u32::from(self.leased == 0)
            }
            EndpointState::Suspended | EndpointState::Disabled => 0,
        }
    }
}

/// The secrets that sign a call at `now`: the current one, and the one it replaced until
/// `previous_until` (its grace period after a rotation).
pub fn signing_secrets(
    current: String,
    previous: Option<String>,
    previous_until: Option<Micros>,
    now: Micros,
) -> Vec<String> {
    let in_grace = previous_until.is_some_and(|until| until > now);
    std::iter::once(current).chain(previous.filter(|_| in_grace)).collect()
}

/// The fields of an endpoint a customer sets; validated before it is stored.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub ordering: Ordering,
    pub auth: Option<Auth>,
    /// Checked when made ([`CallControls::new`]).
    pub controls: CallControls,
    pub filter: Option<serde_json::Value>,
    pub version: WebhookVersion,
}

impl EndpointSpec {
    /// Checks every field; `known_types` are the event types that exist.
    pub fn check(&self, known_types: &[String]) -> Result<(), Invalid> {
        check_url(&self.url)?;
        if self.description.chars().count() > 1000 {
            return Err(Invalid::field("description", "must be at most 1000 characters"));
        }
        check_events(&self.events, known_types)?;
        if let Some(auth) = &self.auth {
            auth.check()?;
        }
        if let Some(filter) = &self.filter {
            super::filter::Filter::parse(filter)?;
        }
        Ok(())
    }
}

/// An `http` or `https` URL with a host, no credentials in it, and no fragment.
pub fn check_url(raw: &str) -> Result<url::Url, Invalid> {
    let bad = |problem: &str| Invalid {
        code: "invalid_url",
        message: format!("url: {problem}"),
    };
    if raw.len() > 2048 {
        return Err(bad("must be at most 2048 characters"));
    }
    if raw.trim() != raw || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    if !raw.contains("://") || raw.split("://").nth(1).is_some_and(|rest| rest.starts_with('/')) {
        return Err(bad("must name a host, as in https://hooks.example.com/herald"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host().is_none() {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials; use \"auth\" instead"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a #fragment"));
    }
    Ok(url)
}

/// A non-empty list of known event types without repeats, or `["*"]`.
pub fn check_events(events: &[String], known_types: &[String]) -> Result<(), Invalid> {
    if events.is_empty() {
        return Err(Invalid::field(
            "events",
            "must list at least one event type, or \"*\" for all",
        ));
    }
    if events.iter().any(|e| e == ALL_EVENTS) && events.len() > 1 {
        return Err(Invalid::field(
            "events",
            "\"*\" already means every event type; list it alone",
        ));
    }
    for (i, event) in events.iter().enumerate() {
        if event != ALL_EVENTS && !known_types.contains(event) {
            return Err(Invalid {
                code: "unknown_event_type",
                message: format!("events: unknown event type {event:?}"),
            });
        }
        if events[..i].contains(event) {
            return Err(Invalid::field("events", &format!("{event:?} appears twice")));
        }
    }
    Ok(())
}

/// A `whsec_` secret whose key is 24 to 64 bytes of base64.
pub fn check_secret(secret: &str) -> Result<(), Invalid> {
    let key = secret.strip_prefix("whsec_").and_then(|b64| STANDARD.decode(b64).ok());
    match key {
        Some(key) if (24..=64).contains(&key.len()) => Ok(()),
        _ => Err(Invalid::field(
            "secret",
            "must be \"whsec_\" and 24 to 64 bytes in base64",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_controls_are_bounded_as_the_spec_says() {
        let headers = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
        };
        let ok = CallControls::new(headers(&[("X-Tenant", "acme")]), None, None, None).unwrap();
        assert_eq!(
            ok.headers,
            headers(&[("x-tenant", "acme")]),
            "names are kept in lower case"
        );
        for bad in [
            headers(&[("Host", "x")]),
            headers(&[("Authorization", "x")]),
            headers(&[("webhook-id", "x")]),
            headers(&[("Content-Length", "1")]),
            headers(&[("has space", "x")]),
            headers(&[("X-A", "line\r\nbreak")]),
            headers(&[("X-A", "1"), ("x-a", "2")]),
            (0..21).map(|i| (format!("X-{i}"), "v".to_string())).collect(),
        ] {
            assert!(CallControls::new(bad.clone(), None, None, None).is_err(), "{bad:?}");
        }
        let s = Duration::from_secs;
        let ok = CallControls::new(BTreeMap::new(), Some(vec![s(1), s(86400)]), Some(s(30)), Some(10_000));
        assert!(ok.is_ok());
        for (schedule, timeout) in [
            (Some(vec![]), None),
            (Some(vec![s(1); 11]), None),
            (Some(vec![Duration::from_millis(500)]), None),
            (Some(vec![s(86401)]), None),
            (None, Some(s(31))),
            (None, Some(Duration::from_millis(999))),
        ] {
            assert!(
                CallControls::new(BTreeMap::new(), schedule.clone(), timeout, None).is_err(),
                "{schedule:?} {timeout:?}"
            );
        }
        for rate in [0, 10_001] {
            assert!(
                CallControls::new(BTreeMap::new(), None, None, Some(rate)).is_err(),
                "{rate}"
            );
        }
        assert!(CallControls::new(BTreeMap::new(), None, None, Some(1)).is_ok());
    }

    #[test]
    fn the_room_an_endpoint_has_follows_its_state_and_calls_in_flight() {
        use EndpointState::*;
        let now = 1_000;
        // (state, suspended until, leased, of which ended) -> room under a cap of 10
        let table = [
            (Active, None, 0, 0, 10),
            (Active, None, 7, 0, 3),
            (Active, None, 10, 0, 0),
            (Active, None, 12, 0, 0),
            (Active, None, 10, 4, 4),
            (Active, None, 12, 2, 0),
            (Active, None, 3, 3, 10),
            (Suspended, Some(now + 1), 0, 0, 0),
            (Suspended, Some(now), 0, 0, 1),
            (Suspended, Some(now - 5), 1, 0, 0),
            // A probe that ended unrecorded: its outcome decides, not a second probe.
            (Suspended, Some(now - 5), 1, 1, 0),
            (Suspended, None, 0, 0, 0),
            (Disabled, None, 0, 0, 0),
            (Disabled, None, 2, 2, 0),
        ];
        for (state, suspended_until, leased, ended, room) in table {
            let occupancy = Occupancy {
                state,
                suspended_until,
                leased,
                ended,
            };
            assert_eq!(occupancy.room(10, now), room, "{occupancy:?}");
        }
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_until_its_grace_ends() {
        let secrets = |previous: Option<&str>, until: Option<Micros>| {
            signing_secrets("new".into(), previous.map(str::to_owned), until, 100)
        };
        assert_eq!(secrets(None, None), ["new"]);
        assert_eq!(secrets(Some("old"), Some(101)), ["new", "old"]);
        assert_eq!(secrets(Some("old"), Some(100)), ["new"], "the grace ends at its time");
        assert_eq!(secrets(Some("old"), None), ["new"]);
    }

    #[test]
    fn urls_must_be_plain_http_or_https() {
        assert!(check_url("https://hooks.example.com/herald?x=1").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "https://u:p@example.com",
            "http://x.com/#f",
            "http://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_are_known_types_or_the_wildcard_alone() {
        let known = ["ProcessStepChange".to_string()];
        assert!(check_events(&["*".into()], &known).is_ok());
        assert!(check_events(&["ProcessStepChange".into()], &known).is_ok());
        assert_eq!(
            check_events(&["Nope".into()], &known).unwrap_err().code,
            "unknown_event_type"
        );
        assert!(check_events(&[], &known).is_err());
        assert!(check_events(&["*".into(), "ProcessStepChange".into()], &known).is_err());
    }

    #[test]
    fn credentials_are_masked_and_header_names_checked() {
        let auth = Auth::Basic {
            username: "u".into(),
            password: "s3cr3t".into(),
        };
        assert_eq!(
            auth.masked(),
            Auth::Basic {
                username: "u".into(),
                password: MASK.into()
            }
        );
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s3cr3t") && debug.contains("basic"), "{debug}");
        let header = |name: &str| Auth::Header {
            name: name.into(),
            value: "v".into(),
        };
        assert!(header("X-Api-Key").check().is_ok());
        assert!(header("webhook-signature").check().is_err());
        assert!(header("Bad Header").check().is_err());
    }

    #[test]
    fn secrets_need_24_to_64_bytes() {
        assert!(check_secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_ok());
        assert!(check_secret("whsec_c2hvcnQ=").is_err());
        assert!(check_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").is_err());
    }
}
