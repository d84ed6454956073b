//! The support CLI against a running server: tables, `--json`, and exit codes that mean
//! something (0 done, 1 unreachable or failed, 3 not found, 4 refused).

use std::process::Command;

use serde_json::Value;

use crate::delivery::{WAIT, subscribe};
use crate::helpers::{ADMIN_TOKEN, TestApp, spawn_app};
use crate::receiver::TestReceiver;

/// What one CLI run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `herald ARGS` against the app with the admin token, off the async threads.
async fn herald(app: &TestApp, args: &[&str]) -> Run {
    herald_with(format!("http://{}", app.addr), ADMIN_TOKEN, args).await
}

async fn herald_with(server: String, token: &str, args: &[&str]) -> Run {
    let (token, args): (String, Vec<String>) = (token.to_owned(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(&args)
            .env("HERALD_SERVER", server)
            .env("HERALD_ADMIN_TOKEN", token)
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn support_manages_accounts_and_endpoints_from_the_command_line() {
    let app = spawn_app().await;
    let created = herald(
        &app,
        &[
            "account",
            "create",
            "acme",
            "--password",
            "correct horse",
            "--name",
            "ACME",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(created.stdout.contains("created account acme"), "{}", created.stdout);
    let list = herald(&app, &["account", "list"]).await;
    assert!(
        list.stdout.lines().next().unwrap().starts_with("LOGIN"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("acme") && list.stdout.contains("ACME"));
    let json = herald(&app, &["account", "show", "acme", "--json"]).await;
    assert_eq!(json.json()["login"], "acme");

    let receiver = TestReceiver::start().await;
    let added = herald(
        &app,
        &[
            "endpoint",
            "add",
            "-a",
            "acme",
            "--url",
            &receiver.url(),
            "--bearer",
            "t0k3n",
            "--extra-header",
            "X-Tenant: acme",
            "--retry-schedule",
            "10s,1m",
            "--timeout",
            "5s",
            "--rate-limit",
            "50",
            "--webhook-version",
            "2",
            "--filter",
            r#"{"data.to.name":{"$in":["Offer","Hired"]}}"#,
            "--json",
        ],
    )
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let endpoint = added.json();
    assert_eq!(endpoint["rate_limit"], 50);
    assert_eq!(endpoint["version"], "2");
    assert_eq!(endpoint["filter"]["data.to.name"]["$in"][1], "Hired");
    assert_eq!(endpoint["headers"]["x-tenant"], "acme");
    assert_eq!(endpoint["retry_schedule"], serde_json::json!(["10s", "1m"]));
    assert_eq!(endpoint["timeout"], "5s");
    let id = endpoint["id"].as_str().unwrap().to_owned();
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(
        herald(&app, &["endpoint", "list", "-a", "acme"])
            .await
            .stdout
            .contains(&id)
    );

    let tested = herald(&app, &["endpoint", "test", "-a", "acme", &id]).await;
    assert_eq!(tested.code, 0, "{}", tested.stderr);
    let call = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(call.json()["type"], "WebhookTest", "in version 2");
    assert_eq!(call.header("authorization"), "Bearer t0k3n");
    assert_eq!(call.header("x-tenant"), "acme");

    // The test call is counted in the endpoint's figures once recorded.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stats = herald(&app, &["endpoint", "stats", "-a", "acme", &id]).await;
        assert_eq!(stats.code, 0, "{}", stats.stderr);
        if stats
            .stdout
            .contains("calls 1: 1 succeeded, 0 failed (100.0 % succeeded)")
        {
            assert!(stats.stdout.contains("calls by status: 200 ×1"), "{}", stats.stdout);
            assert!(stats.stdout.contains("failures by code: none"), "{}", stats.stdout);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", stats.stdout);
        // The server records the call on its own time; the test waits on real time.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rotated = herald(&app, &["endpoint", "rotate-secret", "-a", "acme", &id, "--json"]).await;
    assert_ne!(rotated.json()["secret"], endpoint["secret"]);
    let updated = herald(
        &app,
        &[
            "endpoint",
            "update",
            "-a",
            "acme",
            &id,
            "--description",
            "from the CLI",
            "--timeout",
            "none",
            "--rate-limit",
            "none",
            "--filter",
            "none",
            "--webhook-version",
            "1",
            "--json",
        ],
    )
    .await;
    assert_eq!(updated.json()["description"], "from the CLI");
    assert!(updated.json()["rate_limit"].is_null(), "{}", updated.stdout);
    assert!(updated.json()["filter"].is_null(), "{}", updated.stdout);
    assert_eq!(updated.json()["version"], "1");
    assert!(updated.json()["timeout"].is_null(), "back to the server's");
    assert_eq!(updated.json()["retry_schedule"], serde_json::json!(["10s", "1m"]));
    let shown = herald(&app, &["endpoint", "show", "-a", "acme", &id]).await;
    assert!(shown.stdout.contains("x-tenant"), "{}", shown.stdout);
    assert_eq!(herald(&app, &["endpoint", "resume", "-a", "acme", &id]).await.code, 0);
    assert_eq!(herald(&app, &["endpoint", "delete", "-a", "acme", &id]).await.code, 0);
    assert_eq!(
        herald(&app, &["endpoint", "show", "-a", "acme", &id]).await.code,
        3,
        "gone: not found"
    );
}

#[tokio::test]
async fn the_history_is_a_table_and_tasks_can_be_retried_and_replayed() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(
        &acme,
        &receiver.url(),
        serde_json::json!({"events": ["ApplicationCreate"]}),
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    acme.new_application().await;
    receiver.wait_for(1, WAIT).await;
    crate::delivery::tasks(&acme, 1).await;

    let list = herald(&app, &["task", "list", "-a", "acme"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{}",
        list.stdout
    );
    assert!(
        lines[1].contains("ApplicationCreate") && lines[1].contains("200"),
        "{}",
        list.stdout
    );
    let shown = herald(&app, &["task", "show", "-a", "acme", "1"]).await;
    assert!(
        shown.stdout.contains("webhook-signature") && shown.stdout.contains("response 200"),
        "{}",
        shown.stdout
    );
    let retried = herald(&app, &["task", "retry", "-a", "acme", "1"]).await;
    assert_eq!(retried.code, 0, "{}", retried.stderr);
    receiver.wait_for(2, WAIT).await;

    let replay = herald(
        &app,
        &[
            "endpoint",
            "replay",
            "-a",
            "acme",
            &id,
            "--since",
            "2000-01-01 00:00:00",
        ],
    )
    .await;
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(replay.stdout.contains("1 events to deliver again"), "{}", replay.stdout);
    assert!(
        replay.stderr.contains("1/1 calls made"),
        "a progress bar until the calls are made: {}",
        replay.stderr
    );
    receiver.wait_for(3, WAIT).await;
    let filtered = herald(
        &app,
        &["task", "list", "-a", "acme", "--event", "ProcessStepChange", "--json"],
    )
    .await;
    assert_eq!(filtered.json()["items"], serde_json::json!([]));
}

#[tokio::test]
async fn failures_have_exit_codes_and_say_what_to_do() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    let missing = herald(&app, &["account", "show", "nobody"]).await;
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    let refused = herald(&app, &["event", "publish", "-a", "acme", "Nope"]).await;
    assert_eq!(refused.code, 4);
    assert!(refused.stderr.contains("unknown event type"), "{}", refused.stderr);
    let bad_json = herald(&app, &["event", "publish", "-a", "acme", "Nope", "--data", "{oops"]).await;
    assert_eq!(bad_json.code, 4);
    assert!(bad_json.stderr.contains("--data is not JSON"), "{}", bad_json.stderr);
    let wrong_token = herald_with(format!("http://{}", app.addr), "wrong", &["account", "list"]).await;
    assert_eq!(wrong_token.code, 4);
    assert!(
        wrong_token.stderr.contains("HERALD_ADMIN_TOKEN"),
        "{}",
        wrong_token.stderr
    );
    let port = crate::helpers::free_port();
    let unreachable = herald_with(format!("http://127.0.0.1:{port}"), ADMIN_TOKEN, &["account", "list"]).await;
    assert_eq!(unreachable.code, 1);
    assert!(unreachable.stderr.contains("herald serve"), "{}", unreachable.stderr);
    let usage = herald(&app, &["endpoint", "add"]).await;
    assert_eq!(usage.code, 2, "clap's usage errors");
}

#[tokio::test]
async fn task_list_follow_prints_new_calls_as_they_are_made() {
    use std::io::{BufRead, BufReader};
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    subscribe(
        &acme,
        &receiver.url(),
        serde_json::json!({"events": ["ApplicationCreate"]}),
    )
    .await;
    let mut follow = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["task", "list", "-a", "acme", "--follow"])
        .env("HERALD_SERVER", format!("http://{}", app.addr))
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let header = tokio::task::spawn_blocking(move || (lines.next().unwrap().unwrap(), lines))
        .await
        .unwrap();
    assert!(header.0.starts_with("ID"), "{}", header.0);
    let mut lines = header.1;
    acme.new_application().await;
    let line = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap()),
    )
    .await
    .expect("the new call is printed")
    .unwrap();
    assert!(line.contains("ApplicationCreate") && line.contains("200"), "{line}");
    let _ = follow.kill();
    let _ = follow.wait();
}
