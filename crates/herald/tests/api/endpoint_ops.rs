//! What happens to an endpoint over time: suspension and resumption, FIFO order, test calls
//! and replays.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::delivery::{WAIT, move_on, subscribe, tasks};
use crate::helpers::{Api, spawn_app, spawn_app_with};
use crate::receiver::{Answer, TestReceiver};

/// Reads the endpoint until `check` holds, for at most [`WAIT`].
async fn endpoint_until(api: &Api<'_>, path: &str, check: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let endpoint = api.get(path).await.body;
        if check(&endpoint) {
            return endpoint;
        }
        assert!(
            Instant::now() < deadline,
            "the endpoint never reached the expected state: {endpoint}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_suspended_probed_and_resumed() {
    let app = spawn_app_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_millis(50); 20];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 3;
        c.suspension.first = Duration::from_millis(1500);
        c.suspension.max = Duration::from_secs(5);
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    acme.new_application().await;
    acme.new_application_for_new_candidate().await;

    let suspended = endpoint_until(&acme, path, |e| e["state"] == "suspended").await;
    assert!(suspended["consecutive_failures"].as_i64().unwrap() >= 3, "{suspended}");
    assert!(suspended["suspended_until"].is_string());
    // A call claimed just before the suspension may still land; then nothing, for the rest of
    // the 1.5 s cool-down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls_when_suspended = receiver.received().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        calls_when_suspended,
        "no call while suspended"
    );
    let failures = acme.get(path).await.body["consecutive_failures"].as_i64().unwrap();

    // The cool-down ends with one probe; it fails, so the suspension is renewed.
    receiver.wait_for(calls_when_suspended + 1, WAIT).await;
    let renewed = endpoint_until(&acme, path, |e| e["consecutive_failures"].as_i64() > Some(failures)).await;
    assert_eq!(renewed["state"], "suspended");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        receiver.received().len(),
        calls_when_suspended + 1,
        "one probe, not a flood"
    );

    // The endpoint recovers: the next probe succeeds and everything waiting goes out.
    receiver.otherwise(Answer::Status(200, "ok"));
    let active = endpoint_until(&acme, path, |e| e["state"] == "active").await;
    assert_eq!(active["consecutive_failures"], 0);
    assert!(active["suspended_until"].is_null());
    let deadline = Instant::now() + WAIT;
    while tasks(&acme, 1)
        .await
        .iter()
        .filter(|t| t["response_status"] == 200)
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "both events are delivered once the endpoint recovers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_disabled_endpoint_is_resumed_by_hand_and_gets_what_waited() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(410, "gone")]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    acme.new_application().await;
    endpoint_until(&acme, path, |e| e["state"] == "disabled").await;
    acme.new_application_for_new_candidate().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.received().len(), 1, "nothing is called while disabled");

    let resumed = acme.post(&format!("{path}/resume"), json!({})).await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert_eq!(resumed.body["state"], "active");
    let calls = receiver.wait_for(3, WAIT).await;
    let distinct: std::collections::HashSet<&str> = calls.iter().map(|c| c.header("webhook-id")).collect();
    assert_eq!(distinct.len(), 2, "the 410'd event and the one that waited both arrive");
}

#[tokio::test]
async fn a_fifo_endpoint_gets_each_applications_events_in_order() {
    let app = spawn_app_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_millis(300)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "not yet")]);
    subscribe(
        &acme,
        &receiver.url(),
        json!({"events": ["ProcessStepChange"], "ordering": "fifo"}),
    )
    .await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    for step in &steps[1..4] {
        move_on(&acme, application, *step).await;
    }
    let calls = receiver.wait_for(4, WAIT).await;
    let order: Vec<String> = calls
        .iter()
        .map(|c| c.json()["data"]["to"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        ["Screening", "Screening", "Interview", "Offer"],
        "the next waits for the previous"
    );
}

#[tokio::test]
async fn a_test_call_reaches_one_endpoint_signed() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    subscribe(&acme, &other.url(), json!({})).await;
    let sent = acme
        .post(&format!("{}/test", endpoint["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let call = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(call.json()["event"], "WebhookTest");
    assert_eq!(call.header("webhook-id"), sent.body["event_id"].as_str().unwrap());
    let verifier = standardwebhooks::Webhook::new(endpoint["secret"].as_str().unwrap()).unwrap();
    verifier
        .verify(&call.body, &call.headers)
        .expect("the test call is signed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(other.received().is_empty(), "a test call goes to its endpoint alone");
}

#[tokio::test]
async fn replay_delivers_again_every_event_since_a_date() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    move_on(&acme, application, steps[1]).await;
    // The endpoint is added after the events: it got none of them.
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let path = endpoint["_self"].as_str().unwrap();

    let replayed = acme
        .post(&format!("{path}/replay"), json!({"since": "2000-01-01 00:00:00"}))
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    assert_eq!(replayed.body["deliveries"], 1, "only the subscribed ProcessStepChange");
    let call = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(call.json()["data"]["to"]["name"], "Screening");
    let future = acme
        .post(&format!("{path}/replay"), json!({"since": "2999-01-01T00:00:00Z"}))
        .await;
    assert_eq!(future.body["deliveries"], 0);
    let bad = acme
        .post(&format!("{path}/replay"), json!({"since": "last week"}))
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn events_and_tasks_past_retention_are_purged_unless_a_delivery_waits() {
    let app = spawn_app_with(|c| c.retention.keep = Duration::from_millis(1500)).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let fine = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    tasks(&acme, 1).await;
    // Then a disabled endpoint makes the next event wait.
    acme.delete(fine["_self"].as_str().unwrap()).await;
    let gone = TestReceiver::start().await;
    gone.script([crate::receiver::Answer::Status(410, "gone")]);
    subscribe(&acme, &gone.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application_for_new_candidate().await;
    gone.wait_for(1, WAIT).await;

    let db = app.db();
    let deadline = Instant::now() + WAIT;
    loop {
        let events = db.count("SELECT count(*) FROM events").await;
        let tasks = db.count("SELECT count(*) FROM tasks").await;
        if events == 1 && tasks == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "expected one waiting event and no tasks, found {events} and {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = db
        .count("SELECT count(*) FROM deliveries WHERE state = 'pending'")
        .await;
    assert_eq!(waiting, 1, "the event whose delivery waits is kept past retention");
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_until_its_grace_ends() {
    let app = spawn_app_with(|c| c.delivery.secret_rotation_grace = Duration::from_millis(1500)).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();

    let rotated = acme.post(&format!("{path}/secret/rotate"), json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(
        acme.get(path).await.body.get("secret").is_none(),
        "shown only in the rotation's answer"
    );

    let verifies = |call: &crate::receiver::Received, secret: &str| {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&call.body, &call.headers)
            .is_ok()
    };
    acme.new_application().await;
    let during = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(
        during.header("webhook-signature").split(' ').count(),
        2,
        "one signature per valid secret"
    );
    assert!(
        verifies(&during, &old) && verifies(&during, &new),
        "both secrets verify during the grace"
    );

    tokio::time::sleep(Duration::from_millis(1600)).await;
    acme.new_application_for_new_candidate().await;
    let after = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    assert!(
        verifies(&after, &new) && !verifies(&after, &old),
        "the old secret is retired after the grace"
    );
}
