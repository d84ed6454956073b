//! One HTTP call to an endpoint: the signed request, the capped reading of the answer, and
//! what the answer means. The client is shared by every call, so connections are kept alive
//! and reused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::guard::Guard;
use super::signing::{SigningKey, signature_header};
use crate::clock::Micros;
use crate::domain::delivery::{CallRecord, Claimed, Next, Verdict};
use crate::domain::endpoint::{Auth, MASK};

/// The most of an answer's body that is read and kept.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// The `User-Agent` of every call.
pub const USER_AGENT: &str = concat!("Herald/", env!("CARGO_PKG_VERSION"));

/// Makes calls; one per process, cloned cheaply.
#[derive(Clone)]
pub struct Caller {
    client: reqwest::Client,
    guard: Guard,
}

impl Caller {
    /// A caller whose calls give up after `timeout`, headers and body included, and connect
    /// only where `guard` allows.
    pub fn new(timeout: Duration, max_in_flight: u32, guard: Guard) -> reqwest::Result<Caller> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(guard.clone()))
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(max_in_flight as usize)
            .build()?;
        Ok(Caller { client, guard })
    }

    /// Calls the endpoint once; never fails: a call that got no answer is recorded as such.
    #[tracing::instrument(skip_all, fields(delivery = claimed.delivery_id, endpoint = %claimed.endpoint_id))]
    pub async fn call(&self, claimed: Claimed, keys: &[SigningKey], started_at: Micros) -> (CallRecord, Duration) {
        let timestamp = started_at / 1_000_000;
        let signature = signature_header(keys, &claimed.event_id, timestamp, claimed.body.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("webhook-id", header_value(&claimed.event_id));
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        headers.insert("webhook-signature", header_value(&signature));
        let mut shown = shown_headers(&headers);
        if let Some(auth) = &claimed.auth {
            add_auth(&mut headers, &mut shown, auth);
        }
        let started = Instant::now();
        let (status, body, error, verdict) = match self.blocked(&claimed.url) {
            Some(reason) => (0, reason.clone(), Some(reason), Verdict::Failure { retry_after: None }),
            None => match self
                .client
                .post(&claimed.url)
                .headers(headers)
                .body(claimed.body.clone())
                .send()
                .await
            {
                Ok(response) => read_answer(response).await,
                Err(e) => {
                    let error = failure_reason(&e);
                    (0, error.clone(), Some(error), Verdict::Failure { retry_after: None })
                }
            },
        };
        let elapsed = started.elapsed();
        let record = CallRecord {
            claimed,
            started_at,
            duration_ms: elapsed.as_millis() as i64,
            response_status: status,
            response_body: body,
            error,
            request_headers: Value::Object(shown).to_string(),
            verdict,
            next: Next::Succeeded,
        };
        (record, elapsed)
    }
}

impl Caller {
    /// Why the URL may not be called, for IP literals (host names are checked as they are
    /// resolved, by the guard as the client's resolver).
    fn blocked(&self, url: &str) -> Option<String> {
        match url::Url::parse(url) {
            Ok(url) => self
                .guard
                .check_literal(&url)
                .err()
                .map(|refused| format!("blocked: {refused}")),
            Err(e) => Some(format!("invalid_url: {e}")),
        }
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ids, timestamps and signatures are visible ASCII")
}

/// The headers as the history shows them.
fn shown_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut shown: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_str().unwrap_or("").to_owned())))
        .collect();
    shown.insert("user-agent".into(), Value::String(USER_AGENT.into()));
    shown
}

/// Adds the endpoint's credentials, and their masked form to what the history shows.
fn add_auth(headers: &mut HeaderMap, shown: &mut Map<String, Value>, auth: &Auth) {
    use base64::Engine;
    let (name, value, masked) = match auth {
        Auth::Basic { username, password } => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            (
                reqwest::header::AUTHORIZATION,
                format!("Basic {encoded}"),
                format!("Basic {MASK}"),
            )
        }
        Auth::Bearer { token } => (
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}"),
            format!("Bearer {MASK}"),
        ),
        Auth::Header { name, value } => match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => (name, value.clone(), MASK.to_owned()),
            Err(_) => return,
        },
    };
    if let Ok(mut value) = HeaderValue::from_str(&value) {
        value.set_sensitive(true);
        shown.insert(name.to_string(), Value::String(masked));
        headers.insert(name, value);
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the answer and judges it.
async fn read_answer(mut response: reqwest::Response) -> (u16, String, Option<String>, Verdict) {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    let mut cut_short = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_RESPONSE_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                cut_short = Some(failure_reason(&e));
                break;
            }
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let (verdict, error) = judge(status, retry_after);
    // A 2xx whose body then timed out still answered in time with its status; keep the verdict.
    let error = error.or(cut_short.filter(|_| verdict != Verdict::Success));
    (status.as_u16(), body, error, verdict)
}

/// Success is a 2xx; 410 disables; 429 and 503 may say when to come back.
fn judge(status: StatusCode, retry_after: Option<Duration>) -> (Verdict, Option<String>) {
    if status.is_success() {
        return (Verdict::Success, None);
    }
    if status == StatusCode::GONE {
        return (
            Verdict::Gone,
            Some("gone: the endpoint answered 410 Gone and is disabled".into()),
        );
    }
    let honoured = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = retry_after.filter(|_| honoured);
    let error = if status.is_redirection() {
        format!("redirect: the endpoint answered {status}; redirects are not followed")
    } else {
        format!("http_status: the endpoint answered {status}")
    };
    (Verdict::Failure { retry_after }, Some(error))
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
    let wait = at.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(wait.max(0) as u64))
}

/// A stable code and a sentence for a call that got no (whole) answer.
fn failure_reason(e: &reqwest::Error) -> String {
    let chain = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    let lower = chain.to_lowercase();
    let code = if lower.contains("herald calls only public addresses") {
        "blocked"
    } else if e.is_timeout() {
        "timeout"
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        "dns"
    } else if lower.contains("connection refused") {
        "connection_refused"
    } else if lower.contains("connection reset") || lower.contains("connection closed") || lower.contains("broken pipe")
    {
        "connection_reset"
    } else if lower.contains("certificate") || lower.contains("tls") {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else {
        "network"
    };
    format!("{code}: {chain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_status() {
        assert_eq!(judge(StatusCode::NO_CONTENT, None).0, Verdict::Success);
        assert_eq!(judge(StatusCode::GONE, None).0, Verdict::Gone);
        let later = Some(Duration::from_secs(7));
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, later).0,
            Verdict::Failure { retry_after: later }
        );
        assert_eq!(
            judge(StatusCode::SERVICE_UNAVAILABLE, later).0,
            Verdict::Failure { retry_after: later }
        );
        assert_eq!(
            judge(StatusCode::INTERNAL_SERVER_ERROR, later).0,
            Verdict::Failure { retry_after: None }
        );
        assert!(judge(StatusCode::FOUND, None).1.unwrap().starts_with("redirect:"));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(90);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&later)
            .unwrap();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let wait = retry_after(&headers).unwrap().as_secs();
        assert!((88..=90).contains(&wait), "{wait}");
    }
}
