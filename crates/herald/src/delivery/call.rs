//! One HTTP call to an endpoint: the signed request, the capped reading of the answer, and
//! what the answer means. The client is shared by every call, so connections are kept alive
//! and reused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::guard::{Guard, Refused};
use super::signing::{SigningKey, signature_header};
use crate::clock::Micros;
use crate::domain::delivery::{Attempt, Claimed, Failure, FailureCode, Verdict};
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
    /// The server's time-out, which also bounds an endpoint's own: the calls' leases are
    /// taken for it.
    timeout: Duration,
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
            // Calls go straight to the endpoint, whatever `HTTP_PROXY` or `HTTPS_PROXY` say: a
            // proxy would resolve the endpoint's name where the guard cannot check it (and the
            // guard refuses a proxy on a private address, so every call would fail).
            .no_proxy()
            .build()?;
        Ok(Caller { client, guard, timeout })
    }

    /// How long a call to this endpoint may take.
    fn timeout_of(&self, claimed: &Claimed) -> Duration {
        claimed
            .controls
            .timeout
            .map_or(self.timeout, |own| own.min(self.timeout))
    }

    /// Calls the endpoint once; never fails: a call that got no answer is an attempt that
    /// says why. `started_at` is the call's time by Herald's clock; the duration is measured.
    #[tracing::instrument(skip_all, fields(delivery = claimed.delivery_id, endpoint = %claimed.endpoint_id))]
    pub async fn call(&self, claimed: Claimed, keys: &[SigningKey], started_at: Micros) -> (Attempt, Duration) {
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
        // The endpoint's own headers, checked when saved never to replace Herald's; its
        // credentials come last, so that a header of the same name cannot replace them.
        for (name, value) in &claimed.controls.headers {
            if let Ok(name) = reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, header_value(value));
            }
        }
        // A deprecated version says so (RFC 9745, RFC 8594), whatever the endpoint's own headers.
        if let Some(deprecation) = &claimed.deprecation {
            for (name, value) in deprecation.headers() {
                headers.insert(name, header_value(&value));
            }
        }
        let mut shown = shown_headers(&headers);
        if let Some(auth) = &claimed.auth {
            add_auth(&mut headers, &mut shown, auth);
        }
        let started = Instant::now();
        let answer = match self.target(&claimed.url) {
            Err(failure) => Answer::none(failure),
            Ok(url) => match self
                .client
                .post(url)
                .timeout(self.timeout_of(&claimed))
                .headers(headers)
                .body(claimed.body.clone())
                .send()
                .await
            {
                Ok(response) => read_answer(response, started_at).await,
                Err(e) => Answer::none(classify(&e)),
            },
        };
        let elapsed = started.elapsed();
        let attempt = Attempt {
            claimed,
            started_at,
            duration_ms: elapsed.as_millis() as i64,
            response_status: answer.status,
            response_body: answer.body,
            failure: answer.failure,
            request_headers: Value::Object(shown).to_string(),
            verdict: answer.verdict,
        };
        (attempt, elapsed)
    }
}

/// What came back from a call.
struct Answer {
    /// 0 when no HTTP answer came.
    status: u16,
    body: String,
    failure: Option<Failure>,
    verdict: Verdict,
}

impl Answer {
    /// No HTTP answer: the body says why, as the history shows it.
    fn none(failure: Failure) -> Answer {
        Answer {
            status: 0,
            body: failure.to_string(),
            failure: Some(failure),
            verdict: Verdict::Failure { retry_after: None },
        }
    }
}

impl Caller {
    /// The URL to call, parsed once for the guard and the client; or why it may not be
    /// called, for IP literals (host names are checked as they are resolved, by the guard as
    /// the client's resolver).
    fn target(&self, url: &str) -> Result<url::Url, Failure> {
        let url = url::Url::parse(url).map_err(|e| Failure {
            code: FailureCode::InvalidUrl,
            message: e.to_string(),
        })?;
        self.guard.check_literal(&url).map_err(|refused| refusal(&refused))?;
        Ok(url)
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

/// Reads at most [`MAX_RESPONSE_BYTES`] of the answer and judges it; `now` is when the
/// call started, for a `Retry-After` given as a date.
async fn read_answer(mut response: reqwest::Response, now: Micros) -> Answer {
    let status = response.status();
    let retry_after = retry_after(response.headers(), now);
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
                cut_short = Some(classify(&e));
                break;
            }
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let (verdict, failure) = judge(status, retry_after);
    // A 2xx whose body then timed out still answered in time with its status; keep the verdict.
    let failure = failure.or(cut_short.filter(|_| verdict != Verdict::Success));
    Answer {
        status: status.as_u16(),
        body,
        failure,
        verdict,
    }
}

/// Success is a 2xx; 410 disables; 429 and 503 may say when to come back.
fn judge(status: StatusCode, retry_after: Option<Duration>) -> (Verdict, Option<Failure>) {
    if status.is_success() {
        return (Verdict::Success, None);
    }
    if status == StatusCode::GONE {
        let failure = Failure {
            code: FailureCode::Gone,
            message: "the endpoint answered 410 Gone and is disabled".into(),
        };
        return (Verdict::Gone, Some(failure));
    }
    let honoured = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
    let retry_after = retry_after.filter(|_| honoured);
    let failure = if status.is_redirection() {
        Failure {
            code: FailureCode::Redirect,
            message: format!("the endpoint answered {status}; redirects are not followed"),
        }
    } else {
        Failure {
            code: FailureCode::HttpStatus,
            message: format!("the endpoint answered {status}"),
        }
    };
    (Verdict::Failure { retry_after }, Some(failure))
}

/// `Retry-After` in seconds or as an HTTP date (counted from `now`).
fn retry_after(headers: &HeaderMap, now: Micros) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(text).ok()?.timestamp();
    let wait = at.as_second() - now / 1_000_000;
    Some(Duration::from_secs(wait.max(0) as u64))
}

/// The failure a refusal of the guard makes.
fn refusal(refused: &Refused) -> Failure {
    let code = match refused {
        Refused::Unresolved { .. } => FailureCode::Dns,
        Refused::ThisMachine { .. } | Refused::Internal { .. } | Refused::ResolvesInternal { .. } => {
            FailureCode::Blocked
        }
    };
    Failure {
        code,
        message: refused.to_string(),
    }
}

/// The failure of a call that got no (whole) answer, coded from the kinds of the errors in
/// its chain, never from their text; the sentence is the chain's text.
fn classify(e: &reqwest::Error) -> Failure {
    let message = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    let chain = causes(e);
    let code = if let Some(refused) = chain.iter().find_map(|e| e.downcast_ref::<Refused>()) {
        refusal(refused).code
    } else if e.is_timeout() {
        FailureCode::Timeout
    } else {
        chain.iter().find_map(|e| code_of(*e)).unwrap_or(if e.is_connect() {
            FailureCode::Connect
        } else {
            FailureCode::Network
        })
    };
    Failure { code, message }
}

/// Every error in `e`'s chain, the ones wrapped in I/O errors included: an I/O error gives
/// the source of the error it wraps, not that error itself, so the TLS error inside a
/// connector's I/O error would be skipped.
fn causes(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut chain = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = next {
        chain.push(error);
        next = match error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(wrapped) => Some(wrapped),
            None => error.source(),
        };
    }
    chain
}

/// The code one error of a chain gives, if its kind says something.
fn code_of(e: &(dyn std::error::Error + 'static)) -> Option<FailureCode> {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return Some(FailureCode::Tls);
    }
    if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
        // The peer closed the connection before the answer was whole.
        if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
            return Some(FailureCode::ConnectionReset);
        }
    }
    use std::io::ErrorKind;
    match e.downcast_ref::<std::io::Error>()?.kind() {
        ErrorKind::ConnectionRefused => Some(FailureCode::ConnectionRefused),
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => Some(FailureCode::ConnectionReset),
        ErrorKind::TimedOut => Some(FailureCode::Timeout),
        _ => None,
    }
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
        assert_eq!(judge(StatusCode::FOUND, None).1.unwrap().code, FailureCode::Redirect);
        assert_eq!(judge(StatusCode::GONE, None).1.unwrap().code, FailureCode::Gone);
        let failure = judge(StatusCode::BAD_GATEWAY, None).1.unwrap();
        assert_eq!(
            failure.to_string(),
            "http_status: the endpoint answered 502 Bad Gateway"
        );
    }

    #[test]
    fn the_guards_refusals_are_blocked_calls_and_a_name_that_does_not_resolve_is_dns() {
        let unresolved = Refused::Unresolved {
            host: "nowhere.example".into(),
            reason: "no address".into(),
        };
        assert_eq!(refusal(&unresolved).code, FailureCode::Dns);
        let internal = Refused::Internal {
            ip: "10.0.0.1".parse().unwrap(),
            range: "private (10.0.0.0/8)",
        };
        let failure = refusal(&internal);
        assert_eq!(failure.code, FailureCode::Blocked);
        assert_eq!(
            failure.to_string(),
            "blocked: 10.0.0.1, private (10.0.0.0/8), is internal; Herald calls only public addresses"
        );
        let this_machine = Refused::ThisMachine {
            host: "localhost".into(),
        };
        assert_eq!(refusal(&this_machine).code, FailureCode::Blocked);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        let now = 1_617_279_194_000_000; // 2021-04-01 12:13:14 UTC
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        let date = "Thu, 01 Apr 2021 12:14:44 GMT";
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static(date));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(90)));
        let past = "Thu, 01 Apr 2021 12:00:00 GMT";
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static(past));
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
    }
}
