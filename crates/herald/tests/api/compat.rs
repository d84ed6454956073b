//! The seed's own receivers, Flask and Express (`tests/compat/`), run against a real Herald:
//! each gets a `ProcessStepChange`, answers 200, and fetches the application over the REST
//! API with HTTP Basic; and the Python and npm Standard Webhooks libraries verify calls in both
//! webhook format versions. `scripts/compat-deps` installs what they need.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::delivery::{WAIT, move_on, subscribe, tasks};
use crate::helpers::{PASSWORD, Process, TestApp, spawn_app};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Installs Flask, Express and the OpenAPI checkers with the project's own script, once for
/// all tests.
pub fn install() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let status = Command::new(repo().join("scripts/compat-deps"))
            .status()
            .expect("scripts/compat-deps runs");
        assert!(status.success(), "scripts/compat-deps failed");
    });
}

/// Starts a receiver on a free port and waits until it accepts connections.
async fn start(program: &Path, script: &str, app: &TestApp) -> (Process, u16) {
    let port = crate::helpers::free_port();
    let child = Command::new(program)
        .arg(repo().join("tests/compat").join(script))
        .env("PORT", port.to_string())
        .env("HERALD_URL", format!("http://{}", app.addr))
        .env("HERALD_LOGIN", "acme")
        .env("HERALD_PASSWORD", PASSWORD)
        .env("NODE_PATH", repo().join("target/compat/node_modules"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", program.display()));
    let child = Process::new(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "{script} did not start listening");
        // Another process's socket: polling is how the test sees it open.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port)
}

/// A step change reaches the receiver, which answers 200 and reads the application back.
async fn the_seed_receiver_works(program: PathBuf, script: &str) {
    install();
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    // Stopped when dropped, at the end or at a failed assertion.
    let (_receiver, port) = start(&program, script, &app).await;
    subscribe(
        &acme,
        &format!("http://127.0.0.1:{port}/webhook"),
        json!({"events": ["ProcessStepChange"]}),
    )
    .await;
    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;

    let task = tasks(&acme, 1).await.remove(0);
    assert_eq!(task["response_status"], 200, "{task}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(task["response_body"].as_str().unwrap()).unwrap()["status"],
        "received"
    );
    // The receiver fetched the application it was told about, with the account's Basic auth.
    let fetched = r#"herald_http_requests_total{method="GET",route="/restapi/v1/application/{id}",status="200"} 1"#;
    let deadline = Instant::now() + WAIT;
    while !app.anonymous().get("/metrics").await.text.contains(fetched) {
        assert!(
            Instant::now() < deadline,
            "{script} never fetched the application over the REST API"
        );
        // The receiver is another process, fetching in its own time.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_seeds_flask_receiver_works_unchanged() {
    the_seed_receiver_works(repo().join("target/compat/venv/bin/python"), "flask_receiver.py").await;
}

#[tokio::test]
async fn the_seeds_express_receiver_works_unchanged() {
    the_seed_receiver_works(PathBuf::from("node"), "express_receiver.js").await;
}

/// Whether `verifier` (a Python or Node script of tests/compat) verifies `call` with `secret`.
fn verified_by(program: &Path, verifier: &str, call: &crate::receiver::Received, secret: &str) -> bool {
    let headers: serde_json::Map<String, serde_json::Value> = call
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap())))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    let body = String::from_utf8(call.body.to_vec()).unwrap();
    std::fs::write(
        file.path(),
        json!({"secret": secret, "body": body, "headers": headers}).to_string(),
    )
    .unwrap();
    Command::new(program)
        .arg(repo().join("tests/compat").join(verifier))
        .arg(file.path())
        .env("NODE_PATH", repo().join("target/compat/node_modules"))
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn the_python_and_npm_standard_webhooks_libraries_verify_herald_calls_in_both_versions() {
    install();
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let mut calls = Vec::new();
    let mut receivers = Vec::new();
    for version in ["1", "2"] {
        let receiver = crate::receiver::TestReceiver::start().await;
        let endpoint = subscribe(
            &acme,
            &receiver.url(),
            json!({"events": ["ApplicationCreate"], "version": version}),
        )
        .await;
        let old = endpoint["secret"].as_str().unwrap().to_owned();
        let rotated = acme
            .post(
                &format!("{}/secret/rotate", endpoint["_self"].as_str().unwrap()),
                json!({}),
            )
            .await;
        let new = rotated.body["secret"].as_str().unwrap().to_owned();
        receivers.push((receiver, version, old, new));
    }
    acme.new_application().await;
    for (receiver, version, old, new) in &receivers {
        let call = receiver.wait_for(1, WAIT).await.remove(0);
        let key = if *version == "1" { "event" } else { "type" };
        assert_eq!(call.json()[key], "ApplicationCreate", "a version-{version} body");
        calls.push((call, *version, old.clone(), new.clone()));
    }

    let python = repo().join("target/compat/venv/bin/python");
    let node = PathBuf::from("node");
    for (call, version, old, new) in &calls {
        for (program, verifier) in [(&python, "verify.py"), (&node, "verify.js")] {
            assert!(
                verified_by(program, verifier, call, new),
                "{verifier} verifies a version-{version} call with the new secret"
            );
            assert!(
                verified_by(program, verifier, call, old),
                "{verifier} verifies a version-{version} call with the rotated one"
            );
            let stranger = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
            assert!(
                !verified_by(program, verifier, call, stranger),
                "{verifier} refuses another secret"
            );
        }
    }
}
