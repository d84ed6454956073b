//! A real receiver on a loopback port: it records every call it gets and answers what the
//! test told it to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::Notify;

/// How the receiver answers one call.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16, &'static str),
    /// Never answers; the caller's time-out ends the call.
    Hang,
    /// A status with `Retry-After` in seconds.
    RetryAfter(u16, u64),
    /// A redirect to another path.
    Redirect,
    /// A status with a body of this many bytes.
    Large(u16, usize),
    /// A status, after this long.
    Slow(u16, Duration),
}

/// One call received.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Option<Answer>>,
    arrived: Notify,
    /// Calls being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// The receiver; dropped with the test's runtime.
#[derive(Clone)]
pub struct TestReceiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

impl TestReceiver {
    /// A receiver that answers 200 unless told otherwise.
    pub async fn start() -> TestReceiver {
        let inner = Arc::new(Inner::default());
        let app = Router::new().route("/{*path}", post(receive)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestReceiver { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next calls get these answers, in order; later ones get `otherwise` (200 by default).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// What every call gets once the script is spent.
    pub fn otherwise(&self, answer: Answer) {
        *self.inner.otherwise.lock().unwrap() = Some(answer);
    }

    /// The most calls that were ever being answered at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.inner.most_in_flight.load(AtomicOrdering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The most calls that arrived within any one sliding `window`.
    pub fn most_within(&self, window: Duration) -> usize {
        let mut at: Vec<Instant> = self.received().iter().map(|r| r.at).collect();
        at.sort();
        (0..at.len())
            .map(|i| at[i..].iter().take_while(|&&t| t < at[i] + window).count())
            .max()
            .unwrap_or(0)
    }

    /// Waits until `count` calls have arrived, for at most `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.inner.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{count} calls expected within {within:?}, {} arrived",
                    self.received().len()
                );
            }
        }
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = {
        let next = inner.script.lock().unwrap().pop_front();
        next.or_else(|| inner.otherwise.lock().unwrap().clone())
            .unwrap_or(Answer::Status(200, "ok"))
    };
    inner.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    inner.arrived.notify_waiters();
    let now = inner.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
    inner.most_in_flight.fetch_max(now, AtomicOrdering::SeqCst);
    let response = answer_with(answer).await;
    inner.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
    response
}

async fn answer_with(answer: Answer) -> Response {
    match answer {
        Answer::Status(status, body) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
        Answer::Hang => std::future::pending().await,
        Answer::RetryAfter(status, seconds) => (
            StatusCode::from_u16(status).unwrap(),
            [("retry-after", seconds.to_string())],
            "later",
        )
            .into_response(),
        Answer::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")], "moved").into_response(),
        Answer::Large(status, size) => (StatusCode::from_u16(status).unwrap(), "x".repeat(size)).into_response(),
        Answer::Slow(status, after) => {
            // A slow endpoint is slow in real time: Herald's time-out on a real socket is
            // what the tests that use it check.
            tokio::time::sleep(after).await;
            (StatusCode::from_u16(status).unwrap(), "slow").into_response()
        }
    }
}

/// A server that accepts each connection, reads the request, and closes it without a word.
pub async fn closing_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
        }
    });
    addr
}

/// A server that answers `500` headers at once, then drips its body a byte every 100 ms.
pub async fn dripping_server() -> SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
                let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                // A byte every 100 ms, in real time: the client's time-out must cut a body
                // that never ends but never stalls either.
                for _ in 0..100_000 {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    if socket.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
