//! Abusive clients: a client that sends its headers slowly, or its body byte by byte, or that
//! opens thousands of connections and sends nothing, cannot hold the server or stop it from
//! answering others. Real sockets on real time: the limits are time-outs on the wire.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app_with};

/// A server whose clients get a second for their headers and two for their bodies.
async fn strict() -> TestApp {
    spawn_app_with(|c| {
        c.http.header_timeout = Duration::from_secs(1);
        c.http.body_timeout = Duration::from_secs(2);
    })
    .await
}

/// Reads until the server closes the connection (or 10 s pass); returns what it sent and
/// how long after `since` it closed.
async fn until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the connection open for 10 s");
    (String::from_utf8_lossy(&answer).into_owned(), since.elapsed())
}

/// The server answers a plain request at once.
async fn answers_at_once(app: &TestApp) {
    let started = Instant::now();
    let ready = app.anonymous().get("/healthz").await;
    assert_eq!(ready.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_that_sends_its_headers_slowly_is_cut_off() {
    let app = strict().await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n")
        .await
        .unwrap();
    // The rest of the headers, a byte every 200 ms: each arrives, none finishes them.
    let drip = async {
        for byte in b"X-Slow: 1234567890\r\n".iter().cycle().take(50) {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            // A client on the wire, dripping: real time is what the server's limit measures.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = drip => {}
        // Others are answered meanwhile.
        () = answers_at_once(&app) => {}
    }
    let (_, after) = until_closed(&mut slow, started).await;
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(4),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let app = strict().await;
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let (_, after) = until_closed(&mut idle, answered).await;
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}

#[tokio::test]
async fn a_client_that_drips_its_body_gets_a_408() {
    let app = strict().await;
    for key in [None, Some("drip-1")] {
        let mut slow = TcpStream::connect(app.addr).await.unwrap();
        let body = br#"{"login":"acme","password":"correct horse battery","name":"ACME"}"#;
        let key = key.map(|k| format!("Idempotency-Key: {k}\r\n")).unwrap_or_default();
        let head = format!(
            "POST /admin/v1/account HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n{key}\r\n",
            body.len()
        );
        let started = Instant::now();
        slow.write_all(head.as_bytes()).await.unwrap();
        // A byte every 100 ms: the body would take 6.5 s; each byte is on time for a limit
        // between bytes, but the whole is not.
        let mut answer = Vec::new();
        for byte in body {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            let mut chunk = [0u8; 1024];
            // A client on the wire, dripping: real time is what the server's limit measures.
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), slow.read(&mut chunk)).await {
                answer.extend_from_slice(&chunk[..n]);
                if n == 0 || answer.ends_with(b"}") {
                    break;
                }
            }
        }
        let after = started.elapsed();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(answer.starts_with("HTTP/1.1 408"), "{key}: {answer}");
        assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
        assert!(
            after >= Duration::from_millis(1_900) && after < Duration::from_secs(4),
            "{after:?}"
        );
    }
    let accounts = app.admin().get("/admin/v1/account").await;
    assert_eq!(accounts.body["items"].as_array().unwrap().len(), 0, "nothing written");
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_stop_the_service() {
    let app = spawn_app_with(|_| {}).await;
    let mut idle = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    // They are all accepted and held; a real client is answered as if they were not there.
    for _ in 0..20 {
        answers_at_once(&app).await;
    }
    let created = app
        .admin()
        .post(
            "/admin/v1/account",
            serde_json::json!({"login": "acme", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(created.status, 201);
    drop(idle);
}
