//! Deliveries and tasks: one event on its way to one endpoint, and each call made for it.

use std::sync::Arc;

use super::endpoint::{Auth, CallControls, Ordering};
use super::version::{Deprecation, WebhookVersion};
use crate::clock::Micros;

/// How one call ended, as far as retries and the endpoint's health care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx within the time-out.
    Success,
    /// Anything else; `retry_after` when a 429 or 503 said when to come back.
    Failure { retry_after: Option<std::time::Duration> },
    /// `410 Gone`: the receiver asks not to be called again.
    Gone,
}

/// What becomes of a delivery after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Pending again, due at this time.
    RetryAt(Micros),
    /// The retry schedule is spent; it can still be retried by hand or replayed.
    Failed,
}

impl Next {
    /// The delivery's state, and when it is due if it is pending again.
    pub fn stored(self) -> (DeliveryState, Option<Micros>) {
        match self {
            Next::Succeeded => (DeliveryState::Succeeded, None),
            Next::RetryAt(at) => (DeliveryState::Pending, Some(at)),
            Next::Failed => (DeliveryState::Failed, None),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next call (or in flight).
    Pending,
    Succeeded,
    /// The retry schedule is spent; it can still be retried by hand or replayed.
    Failed,
}

impl DeliveryState {
    /// The word the API shows and the stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }
}

/// Why a call failed, as a stable code: the first word of a task's `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureCode {
    /// No whole answer within the time-out.
    Timeout,
    /// The host name did not resolve.
    Dns,
    ConnectionRefused,
    /// The connection was reset or closed before the answer was complete.
    ConnectionReset,
    /// The TLS handshake failed: a bad certificate, or no TLS at all on the other side.
    Tls,
    /// Connecting failed for another reason (unreachable network, say).
    Connect,
    /// Any other transport failure.
    Network,
    /// An answer that is neither a 2xx nor a redirect nor a 410.
    HttpStatus,
    /// A 3xx: redirects are not followed.
    Redirect,
    /// `410 Gone`: the endpoint is disabled.
    Gone,
    /// The SSRF guard refused the target: an internal address.
    Blocked,
    /// The stored URL does not parse.
    InvalidUrl,
}

impl FailureCode {
    pub const ALL: [FailureCode; 12] = [
        FailureCode::Timeout,
        FailureCode::Dns,
        FailureCode::ConnectionRefused,
        FailureCode::ConnectionReset,
        FailureCode::Tls,
        FailureCode::Connect,
        FailureCode::Network,
        FailureCode::HttpStatus,
        FailureCode::Redirect,
        FailureCode::Gone,
        FailureCode::Blocked,
        FailureCode::InvalidUrl,
    ];

    /// The code a word names, as `as_str` writes it.
    pub fn parse(word: &str) -> Option<FailureCode> {
        FailureCode::ALL.into_iter().find(|code| code.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::Timeout => "timeout",
            FailureCode::Dns => "dns",
            FailureCode::ConnectionRefused => "connection_refused",
            FailureCode::ConnectionReset => "connection_reset",
            FailureCode::Tls => "tls",
            FailureCode::Connect => "connect",
            FailureCode::Network => "network",
            FailureCode::HttpStatus => "http_status",
            FailureCode::Redirect => "redirect",
            FailureCode::Gone => "gone",
            FailureCode::Blocked => "blocked",
            FailureCode::InvalidUrl => "invalid_url",
        }
    }
}

/// A failed call: its code, and a sentence for the person reading the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: FailureCode,
    pub message: String,
}

impl std::fmt::Display for Failure {
    /// `"timeout: …"`: the code first, as the history's `error` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

/// A delivery leased for one call, with everything the call needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub account_id: i64,
    /// This call's number for the delivery, from 1.
    pub attempt: u32,
    pub endpoint_seq: i64,
    pub endpoint_id: String,
    pub url: String,
    pub auth: Option<Auth>,
    /// Every secret that signs this call: the current one, and a rotated one still in grace.
    pub secrets: Vec<String>,
    pub event_id: String,
    pub event_type: String,
    pub application_id: Option<i64>,
    /// Exactly the bytes to send: the event's body in the endpoint's version.
    pub body: String,
    /// The endpoint's webhook format, which `body` is in.
    pub version: WebhookVersion,
    /// Set when support has deprecated that version: the call says so in its headers.
    pub deprecation: Option<Deprecation>,
    /// The lease taken for this call: recording it clears the lease only if it is still this
    /// one, so a call recorded after its lease ran out cannot undo another node's claim.
    pub leased_until: Micros,
    /// The endpoint's ordering at the claim: a FIFO application's next delivery waits for this
    /// call's record.
    pub ordering: Ordering,
    /// This call is a suspended endpoint's probe: the rest of its deliveries wait for the
    /// outcome.
    pub probe: bool,
    /// When the delivery was made (its event's commit, or a replay): a first call's lag
    /// counts from here.
    pub created_at: Micros,
    /// The endpoint's own headers, retry delays, time-out and rate limit.
    pub controls: Arc<CallControls>,
    /// When the call may start: the claim's time, or the start time its endpoint's rate
    /// limit gave it.
    pub start_at: Micros,
}

/// One call made for a claimed delivery: what was sent and what came back.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub claimed: Claimed,
    pub started_at: Micros,
    pub duration_ms: i64,
    /// 0 when no HTTP answer came.
    pub response_status: u16,
    /// At most 16 KiB of the answer, or why there was none.
    pub response_body: String,
    /// Why the call failed, for calls that did.
    pub failure: Option<Failure>,
    /// The headers sent, as a JSON object, credentials masked.
    pub request_headers: String,
    pub verdict: Verdict,
}

impl Attempt {
    pub fn ended_at(&self) -> Micros {
        self.started_at + self.duration_ms * 1000
    }

    /// The history's `error`: the failure's code and sentence.
    pub fn error(&self) -> Option<String> {
        self.failure.as_ref().map(Failure::to_string)
    }
}

/// An attempt with what it decided for its delivery: what the recorder writes.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub attempt: Attempt,
    pub next: Next,
}

impl CallRecord {
    /// Whether writing this record can make something due that the dispatcher does not know
    /// of: a retry's time, a suspension's end, a FIFO application's next delivery, or the rest
    /// of an endpoint whose probe succeeded. A parallel endpoint's success cannot: its room
    /// came back when the call ended.
    pub fn changes_what_is_due(&self) -> bool {
        let claimed = &self.attempt.claimed;
        self.next != Next::Succeeded || claimed.ordering == Ordering::Fifo || claimed.probe
    }
}

/// One call, as the history shows it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: i64,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub application_id: Option<i64>,
    pub attempt: u32,
    pub url: String,
    pub created_at: Micros,
    pub duration_ms: i64,
    pub response_status: u16,
    pub response_body: String,
    pub error: Option<String>,
    /// Where the task's delivery stands now; `None` once it is gone (endpoint deleted).
    pub delivery_state: Option<DeliveryState>,
    /// Only read for a single task: the headers and body sent.
    pub request: Option<(String, String)>,
}

/// The history's filters.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub event: Option<String>,
    pub response_status: Option<u16>,
    pub application: Option<i64>,
    pub endpoint: Option<String>,
    pub from: Option<Micros>,
    pub to: Option<Micros>,
}

/// How much work waits, for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backlog {
    pub deliveries_waiting: i64,
    pub endpoints_suspended: i64,
    pub endpoints_disabled: i64,
    /// When the oldest delivery that is due now and not in flight, of an active endpoint, fell
    /// due: what waits on Herald rather than on a resting endpoint.
    pub oldest_due: Option<Micros>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(next: Next, ordering: Ordering, probe: bool) -> CallRecord {
        let claimed = Claimed {
            delivery_id: 1,
            account_id: 1,
            attempt: 1,
            endpoint_seq: 1,
            endpoint_id: "ep".into(),
            url: "http://127.0.0.1/hook".into(),
            auth: None,
            secrets: Vec::new(),
            event_id: "evt".into(),
            event_type: "WebhookTest".into(),
            application_id: None,
            body: "{}".into(),
            version: WebhookVersion::V1,
            deprecation: None,
            leased_until: 0,
            ordering,
            probe,
            created_at: 0,
            controls: Arc::default(),
            start_at: 0,
        };
        let attempt = Attempt {
            claimed,
            started_at: 0,
            duration_ms: 1,
            response_status: 200,
            response_body: String::new(),
            failure: None,
            request_headers: "{}".into(),
            verdict: Verdict::Success,
        };
        CallRecord { attempt, next }
    }

    #[test]
    fn only_a_parallel_endpoints_plain_success_leaves_what_is_due_unchanged() {
        use Ordering::*;
        // (next, ordering, probe) -> whether the record changes what is due
        let table = [
            (Next::Succeeded, Parallel, false, false),
            (Next::Succeeded, Fifo, false, true),
            (Next::Succeeded, Parallel, true, true),
            (Next::RetryAt(5), Parallel, false, true),
            (Next::Failed, Parallel, false, true),
        ];
        for (next, ordering, probe, changes) in table {
            assert_eq!(
                record(next, ordering, probe).changes_what_is_due(),
                changes,
                "{next:?} {ordering:?} probe {probe}"
            );
        }
    }
}
