//! Serving HTTP/1.1 connections with limits that abusive clients cannot outwait: a request's
//! headers must arrive within `header_timeout` of the connection opening or of the previous
//! answer (so a slow-header client, and an idle kept-alive connection, are closed), and its
//! body within `body_timeout` (a slow-body client gets a 408). Each connection is a task of
//! its own, so thousands of idle ones cost memory, not the service; running out of file
//! descriptors pauses accepting briefly rather than failing the server.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Body as _, Frame};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For a request's headers, from the connection's start or the previous answer.
    pub header_timeout: Duration,
    /// For a request's body, from the end of its headers.
    pub body_timeout: Duration,
}

/// How long a shutdown waits for requests being answered before it closes their connections.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then lets requests being answered
/// finish (for at most 30 s). The peer's address reaches handlers as `ConnectInfo`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    wait_after(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let request = request.map(|body| match body.is_end_stream() {
                true => Body::new(body),
                false => Body::new(Deadline::new(body, limits.body_timeout)),
            });
            // The router's errors are `Infallible`: every failure is an answer.
            app.clone().oneshot(request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away, or is timed out, ends its connection: not an error of ours.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still being answered after {DRAIN:?}; closing their connections");
    }
    Ok(())
}

/// After a failed accept: a connection reset before it was accepted is nothing; running out of
/// file descriptors (or memory) waits a little, so that connections that close make room,
/// rather than spinning.
async fn wait_after(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; trying again shortly");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A request body that must arrive whole by a deadline: a client that drips it byte by byte
/// cannot hold a request open for longer (a timeout between frames would not stop it).
struct Deadline {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl Deadline {
    fn new(body: Incoming, limit: Duration) -> Deadline {
        Deadline {
            body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// The error a body gives once its deadline (the limit it had) has passed; [`body_timeout`]
/// finds it.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit)))));
        }
        Pin::new(&mut self.body).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The limit a body missed, when reading it failed because it did not arrive in time.
pub fn body_timeout(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(BodyTimeout(limit)) = e.downcast_ref::<BodyTimeout>() {
            return Some(*limit);
        }
        cause = e.source();
    }
    None
}
