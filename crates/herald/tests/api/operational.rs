//! Operational events: Herald tells an account about its endpoints (suspended, resumed,
//! disabled, deliveries failed) with events delivered like any other, to the endpoints that
//! name them, never through `"*"` and never to the endpoint they are about.

use std::time::Duration;

use serde_json::{Value, json};

use crate::delivery::subscribe;
use crate::helpers::{Api, SteppedApp, spawn_stepped_app};
use crate::receiver::{Answer, Received, TestReceiver};

const OPERATIONAL: [&str; 4] = [
    "EndpointSuspended",
    "EndpointResumed",
    "EndpointDisabled",
    "DeliveryFailed",
];

/// The account `acme` with two endpoints: one (the watcher) that names every operational
/// event, and one that subscribes to `"*"`.
async fn setup(app: &SteppedApp) -> (Api<'_>, TestReceiver, TestReceiver) {
    let acme = app.new_account("acme").await;
    let watcher = TestReceiver::start().await;
    subscribe(&acme, &watcher.url(), json!({"events": OPERATIONAL})).await;
    let everything = TestReceiver::start().await;
    subscribe(&acme, &everything.url(), json!({"events": ["*"]})).await;
    (acme, watcher, everything)
}

/// The operational events a receiver got, as (type, body).
fn told(receiver: &TestReceiver) -> Vec<(String, Value)> {
    receiver
        .received()
        .iter()
        .map(Received::json)
        .filter(|body| OPERATIONAL.contains(&body["event"].as_str().unwrap_or_default()))
        .map(|body| (body["event"].as_str().unwrap().to_owned(), body))
        .collect()
}

/// Validates an operational event's `data` against its type's schema in the catalogue.
async fn assert_matches_catalogue(acme: &Api<'_>, body: &Value) {
    let event_type = acme
        .get(&format!(
            "/restapi/v1/webhook/event/{}",
            body["event"].as_str().unwrap()
        ))
        .await;
    assert_eq!(event_type.status, 200, "{}", event_type.text);
    assert_eq!(event_type.body["builtin"], true);
    let validator = jsonschema::draft202012::new(&event_type.body["schema"]).unwrap();
    let errors: Vec<String> = validator.iter_errors(&body["data"]).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{body}: {errors:?}");
}

#[tokio::test]
async fn a_suspension_and_the_probe_that_ends_it_are_told_once_each() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10); 20];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 2;
        c.suspension.first = Duration::from_secs(60);
    })
    .await;
    let (acme, watcher, everything) = setup(&app).await;
    let failing = TestReceiver::start().await;
    failing.otherwise(Answer::Status(500, "down"));
    let events = json!(["ApplicationCreate", "EndpointSuspended", "EndpointResumed"]);
    let endpoint = subscribe(&acme, &failing.url(), json!({"events": events})).await;
    let (id, path) = (endpoint["id"].as_str().unwrap(), endpoint["_self"].as_str().unwrap());
    acme.new_application().await;

    assert_eq!(app.step().await, 2, "the event to the two endpoints that take it");
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 1, "the retry fails, and the endpoint is suspended");
    assert_eq!(acme.get(path).await.body["state"], "suspended");
    assert_eq!(app.step().await, 1, "the news goes to the watcher alone");
    let suspended = told(&watcher);
    assert_eq!(suspended.len(), 1, "{suspended:?}");
    let (kind, body) = &suspended[0];
    assert_eq!(kind, "EndpointSuspended");
    assert_eq!(body["endpoint"]["_self"], format!("/restapi/v1/webhook/endpoint/{id}"));
    assert!(body.get("application").is_none(), "{body}");
    let data = &body["data"];
    assert_eq!(data["url"], failing.url());
    assert_eq!(data["state"], "suspended");
    assert_eq!(data["consecutive_failures"], 2);
    assert_eq!(data["suspended_until"], acme.get(path).await.body["suspended_until"]);
    assert_eq!(data["last_call"]["response_status"], 500);
    assert_eq!(data["last_call"]["error"], "http_status");
    let last_call = acme.get(data["last_call"]["_self"].as_str().unwrap()).await;
    assert_eq!(last_call.body["endpoint"]["id"], id, "the call that suspended it");
    assert_eq!(last_call.body["attempt"], 2);
    assert_matches_catalogue(&acme, body).await;
    // Delivered like any event: signed, and in the history.
    let call = watcher.received().into_iter().last().unwrap();
    assert!(call.header("webhook-signature").starts_with("v1,"));
    let history = acme.get("/restapi/v1/webhook/task?event=EndpointSuspended").await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1, "{}", history.text);

    // A failed probe renews the suspension: the same episode, no news.
    app.advance(Duration::from_secs(61));
    assert_eq!(app.step().await, 1, "the probe, which fails");
    assert_eq!(app.step().await, 0, "and nothing to tell");
    assert_eq!(told(&watcher).len(), 1);

    // The next probe succeeds.
    failing.otherwise(Answer::Status(200, "ok"));
    app.advance(Duration::from_secs(121));
    assert_eq!(app.step().await, 1, "the probe, which succeeds");
    assert_eq!(app.step().await, 1, "the news");
    let all = told(&watcher);
    assert_eq!(all.len(), 2, "{all:?}");
    let (kind, body) = &all[1];
    assert_eq!(kind, "EndpointResumed");
    assert_eq!(body["data"]["state"], "active");
    assert_eq!(body["data"]["consecutive_failures"], 0);
    assert!(body["data"]["suspended_until"].is_null());
    assert_eq!(body["data"]["last_call"]["response_status"], 200);
    assert_matches_catalogue(&acme, body).await;

    assert!(
        told(&everything).is_empty(),
        "\"*\" does not include operational events"
    );
    assert!(told(&failing).is_empty(), "an endpoint is never told about itself");
}

#[tokio::test]
async fn a_410_disables_and_a_resumption_by_hand_is_told() {
    let app = spawn_stepped_app(|_| {}).await;
    let (acme, watcher, _) = setup(&app).await;
    let gone = TestReceiver::start().await;
    gone.script([Answer::Status(410, "gone")]);
    let endpoint = subscribe(&acme, &gone.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    acme.new_application().await;
    assert_eq!(app.step().await, 2);
    assert_eq!(app.step().await, 1, "the EndpointDisabled");
    let disabled = told(&watcher);
    assert_eq!(disabled[0].0, "EndpointDisabled");
    assert_eq!(disabled[0].1["data"]["state"], "disabled");
    assert_eq!(disabled[0].1["data"]["last_call"]["error"], "gone");
    assert_matches_catalogue(&acme, &disabled[0].1).await;

    let resumed = acme.post(&format!("{path}/resume"), json!({})).await;
    assert_eq!(resumed.status, 200);
    // The 410'd delivery waits from the end of its call, which a real duration put a few
    // milliseconds past the stepped clock.
    app.advance(Duration::from_secs(1));
    assert_eq!(app.step().await, 2, "the event that waited, and the EndpointResumed");
    let all = told(&watcher);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].0, "EndpointResumed");
    assert!(all[1].1["data"]["last_call"].is_null(), "resumed by hand: {}", all[1].1);
    assert_matches_catalogue(&acme, &all[1].1).await;

    // Resuming an active endpoint answers as before and tells nothing.
    let again = acme.post(&format!("{path}/resume"), json!({})).await;
    assert_eq!(again.status, 200);
    assert_eq!(app.step().await, 0);
    assert_eq!(told(&watcher).len(), 2);
}

#[tokio::test]
async fn failed_deliveries_are_told_at_most_once_an_hour_with_their_count() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![];
        c.suspension.after_failures = 1000;
    })
    .await;
    let (acme, watcher, _) = setup(&app).await;
    let failing = TestReceiver::start().await;
    failing.otherwise(Answer::Status(500, "down"));
    subscribe(&acme, &failing.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    assert_eq!(app.step().await, 2, "fails, with no retry to come");
    assert_eq!(app.step().await, 1, "the first DeliveryFailed goes at once");
    let first = told(&watcher);
    assert_eq!(first[0].0, "DeliveryFailed");
    assert_eq!(first[0].1["data"]["count"], 1);
    assert_eq!(first[0].1["data"]["last_call"]["response_status"], 500);
    assert_matches_catalogue(&acme, &first[0].1).await;

    for _ in 0..2 {
        app.advance(Duration::from_secs(600));
        acme.new_application_for_new_candidate().await;
        assert_eq!(app.step().await, 2);
        assert_eq!(app.step().await, 0, "within the hour: counted, not told");
    }
    // Past the hour since the first was told (calls end a real duration after they start).
    app.advance(Duration::from_secs(2410));
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 2);
    assert_eq!(app.step().await, 1, "an hour on");
    let all = told(&watcher);
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].1["data"]["count"], 3, "the two that waited, and this one");
}

#[tokio::test]
async fn operational_types_are_in_the_catalogue_and_cannot_be_published_or_replayed() {
    let app = spawn_stepped_app(|_| {}).await;
    let (acme, watcher, _) = setup(&app).await;
    let catalogue = acme.get("/restapi/v1/webhook/event?limit=100").await;
    let names: Vec<&str> = catalogue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in OPERATIONAL.iter().chain(&["WebhookVersionDeprecated"]) {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    let published = app
        .admin()
        .post("/admin/v1/account/acme/event", json!({"event": "EndpointSuspended"}))
        .await;
    assert_eq!(published.code(), "builtin_event_type");

    let gone = TestReceiver::start().await;
    gone.script([Answer::Status(410, "gone")]);
    subscribe(&acme, &gone.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    assert_eq!(app.step().await, 2);
    assert_eq!(app.step().await, 1, "the EndpointDisabled");
    let watcher_id = acme.get("/restapi/v1/webhook/endpoint").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == watcher.url())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let replay = acme
        .post(
            &format!("/restapi/v1/webhook/endpoint/{watcher_id}/replay"),
            json!({"since": "2000-01-01 00:00:00"}),
        )
        .await;
    assert_eq!(
        replay.body["deliveries"], 0,
        "a replay sends no operational event again"
    );
}
