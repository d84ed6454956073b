//! Deliveries and tasks: one event on its way to one endpoint, and each call made for it.

use super::endpoint::Auth;
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
    /// Exactly the bytes to send.
    pub body: String,
    /// The lease taken for this call: recording it clears the lease only if it is still this
    /// one, so a call recorded after its lease ran out cannot undo another node's claim.
    pub leased_until: Micros,
}

/// One call made: a task for the history, and what it means for its delivery.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub claimed: Claimed,
    pub started_at: Micros,
    pub duration_ms: i64,
    /// 0 when no HTTP answer came.
    pub response_status: u16,
    /// At most 16 KiB of the answer, or why there was none.
    pub response_body: String,
    /// A stable code and a sentence (`timeout: …`), for calls that failed.
    pub error: Option<String>,
    /// The headers sent, as a JSON object, credentials masked.
    pub request_headers: String,
    pub verdict: Verdict,
    /// Decided by the dispatcher from the verdict and the retry schedule.
    pub next: Next,
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
}
