//! The OpenAPI documents, checked by outside tools installed by `scripts/compat-deps`:
//! `openapi-spec-validator` on both, and schemathesis against a live server on both APIs,
//! authenticated, every operation. Our own checks: every documented operation is routed, and
//! the answers' schemas are the ones `_schema` serves.

use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::compat::{install, repo};
use crate::delivery::{move_on, subscribe};
use crate::helpers::{ADMIN_TOKEN, PASSWORD, TestApp, spawn_app_with};
use crate::receiver::TestReceiver;

const DOCUMENTS: [&str; 2] = ["/restapi/v1/openapi.json", "/admin/v1/openapi.json"];

fn venv(tool: &str) -> std::path::PathBuf {
    repo().join("target/compat/venv/bin").join(tool)
}

#[tokio::test]
async fn both_documents_are_openapi_3_1_that_the_validator_accepts() {
    install();
    let app = spawn_app_with(|_| {}).await;
    let folder = tempfile::tempdir().unwrap();
    for path in DOCUMENTS {
        let document = app.anonymous().get(path).await;
        assert_eq!(document.status, 200, "served without credentials: {path}");
        assert_eq!(document.body["openapi"], "3.1.0");
        let file = folder.path().join(path.trim_start_matches('/').replace('/', "-"));
        std::fs::write(&file, &document.text).unwrap();
        let checked = Command::new(venv("openapi-spec-validator"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{path}: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );

        // An answer's schema in the document is the one its `_schema` names.
        let components = document.body["components"]["schemas"].as_object().unwrap();
        for name in ["webhookendpoint", "webhooktasks", "error", "webhookendpointstats"] {
            let served = app.anonymous().get(&format!("/restapi/schemav1/{name}")).await.body;
            let keys =
                |schema: &Value| -> Vec<String> { schema["properties"].as_object().unwrap().keys().cloned().collect() };
            assert_eq!(keys(&components[name]), keys(&served), "{path}: {name}");
            assert_eq!(components[name]["required"], served["required"], "{path}: {name}");
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app_with(|_| {}).await;
    app.new_account("acme").await;
    let mut operations = 0;
    for path in DOCUMENTS {
        let document = app.anonymous().get(path).await.body;
        let admin = path.starts_with("/admin");
        for (template, methods) in document["paths"].as_object().unwrap() {
            // Ids that name nothing: each call is refused, and changes nothing.
            let concrete = template
                .replace("{login}", "nobody")
                .replace("{id}", "0")
                .replace("{name}", "NoSuchType")
                .replace("{version}", "9");
            for method in methods.as_object().unwrap().keys() {
                let method: Method = method.to_uppercase().parse().unwrap();
                let mut request = app.client.request(method.clone(), app.url(&concrete));
                request = if admin {
                    request.bearer_auth(ADMIN_TOKEN)
                } else {
                    request.basic_auth("acme", Some(PASSWORD))
                };
                if method != Method::GET && method != Method::DELETE {
                    request = request.json(&json!({}));
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let unrouted = status == 405
                    || (status == 404
                        && body["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("no such path"));
                assert!(
                    !unrouted,
                    "{method} {template} is documented but not routed: {status} {body}"
                );
                operations += 1;
            }
        }
    }
    assert!(operations > 55, "both documents list every operation: {operations}");
}

/// Runs schemathesis on one document, off the runtime that serves it; panics with its
/// report when it finds anything.
async fn schemathesis(app: &TestApp, path: &str, authorization: &str) {
    let (url, authorization, path) = (app.url(path), authorization.to_owned(), path.to_owned());
    tokio::task::spawn_blocking(move || run_schemathesis(&url, &path, &authorization))
        .await
        .unwrap();
}

/// The generator's seed, fixed so that every run asks the same things. Its examples repeat on
/// purpose, `Idempotency-Key` values among them: a creation repeated with a key already used
/// is answered the first creation's 201 again and writes nothing (as it must), and if that
/// resource was deleted in between, schemathesis reads the 404 that follows as "created
/// resource not found" (ST302). A random seed met that once in CI.
const SEED: &str = "1";

fn run_schemathesis(url: &str, path: &str, authorization: &str) {
    // Left out, and why:
    // - positive_data_acceptance: some valid-looking requests are refused by rules that only
    //   the stored data can tell (a step of the account's process, an event type that
    //   exists, a public URL), which no schema can say;
    // - ignored_auth: its wrong credentials count as failed logins, so that after 50 the
    //   address is answered 429 rather than 401 (tests/api/accounts.rs and isolation.rs test
    //   authentication).
    // It keeps a cache of what it found in its working folder: a scratch one, not the crate.
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(venv("schemathesis"))
        .current_dir(scratch.path())
        .args(["run", url, "--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance,ignored_auth"])
        .args(["--max-examples", "20", "--workers", "1"])
        .args([
            "--seed",
            &std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into()),
        ])
        .args(["--header", &format!("Authorization: {authorization}")])
        // Without a terminal, no colours or progress bars in the report.
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis on {path}:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

#[tokio::test]
async fn schemathesis_finds_nothing_wrong_with_either_api() {
    install();
    let app = spawn_app_with(|c| c.rate_limit_per_minute = 0).await;
    let acme = app.new_account("acme").await;
    // Something of everything, so that its ids lead the tool past 404s: a job, a candidate,
    // an application moved one step, an endpoint and its calls.
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({})).await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    move_on(&acme, application, steps[1]).await;
    receiver.wait_for(2, Duration::from_secs(10)).await;

    let basic = format!("Basic {}", base64_of(&format!("acme:{PASSWORD}")));
    schemathesis(&app, "/restapi/v1/openapi.json", &basic).await;
    schemathesis(&app, "/admin/v1/openapi.json", &format!("Bearer {ADMIN_TOKEN}")).await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
