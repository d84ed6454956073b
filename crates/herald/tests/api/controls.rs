//! Endpoint controls that shape each call: extra headers, the endpoint's own retry schedule,
//! its own time-out and its rate limit; validated as the spec bounds them, shown on both APIs,
//! and obeyed.

use std::time::Duration;

use serde_json::json;

use crate::delivery::{subscribe, tasks};
use crate::helpers::{spawn_app, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver};

#[tokio::test]
async fn controls_are_saved_shown_changed_and_validated() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let created = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/hook", "events": ["*"],
                   "headers": {"X-Tenant": "acme", "X-Region": "eu"},
                   "retry_schedule": ["10s", "60s", "2h"], "timeout": "5000ms", "rate_limit": 100}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["headers"], json!({"x-region": "eu", "x-tenant": "acme"}));
    assert_eq!(created.body["retry_schedule"], json!(["10s", "1m", "2h"]));
    assert_eq!(created.body["timeout"], "5s");
    assert_eq!(created.body["rate_limit"], 100);
    let path = created.body["_self"].as_str().unwrap();
    let admin_path = format!(
        "/admin/v1/account/acme/webhook/endpoint/{}",
        created.body["id"].as_str().unwrap()
    );
    let by_support = app.admin().get(&admin_path).await;
    assert_eq!(
        by_support.body["headers"], created.body["headers"],
        "the same on both APIs"
    );

    // A patch changes what it names; null goes back to the server's own.
    let patched = acme
        .patch(path, json!({"timeout": null, "headers": {"X-Tenant": "acme-2"}}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert!(patched.body["timeout"].is_null());
    assert_eq!(patched.body["headers"], json!({"x-tenant": "acme-2"}));
    assert_eq!(
        patched.body["retry_schedule"],
        json!(["10s", "1m", "2h"]),
        "left as it was"
    );
    assert_eq!(patched.body["rate_limit"], 100, "left as it was");
    let lifted = acme.patch(path, json!({"rate_limit": null})).await;
    assert!(lifted.body["rate_limit"].is_null(), "{}", lifted.text);
    let plain = subscribe(&acme, "https://example.com/plain", json!({})).await;
    assert_eq!(plain["headers"], json!({}));
    assert!(plain["retry_schedule"].is_null() && plain["timeout"].is_null());

    for (body, names) in [
        (json!({"headers": {"Host": "evil.example"}}), "headers.Host"),
        (
            json!({"headers": {"Webhook-Signature": "v1,forged"}}),
            "headers.Webhook-Signature",
        ),
        (json!({"headers": {"Bad Name": "x"}}), "headers.Bad Name"),
        (json!({"retry_schedule": ["10s", "soon"]}), "retry_schedule[1]"),
        (json!({"retry_schedule": ["10s", "25h"]}), "retry_schedule[1]"),
        (json!({"retry_schedule": []}), "retry_schedule"),
        (json!({"timeout": "45s"}), "timeout"),
        (json!({"timeout": 10}), "timeout: invalid type"),
        (json!({"rate_limit": 0}), "rate_limit"),
        (json!({"rate_limit": 10_001}), "rate_limit"),
    ] {
        let refused = acme.patch(path, body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert!(refused.text.contains(names), "{body} names {names}: {}", refused.text);
    }
    assert_eq!(
        acme.get(path).await.body["headers"],
        json!({"x-tenant": "acme-2"}),
        "refusals change nothing"
    );
}

#[tokio::test]
async fn a_call_carries_the_endpoints_headers_and_the_history_shows_them() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let body = json!({"headers": {"X-Tenant": "acme", "X-Api-Key": "not this one"},
                      "auth": {"type": "header", "name": "X-Api-Key", "value": "s3cret"}});
    subscribe(&acme, &receiver.url(), body).await;
    acme.new_application().await;
    let calls = receiver.wait_for(1, crate::delivery::WAIT).await;
    assert_eq!(calls[0].header("x-tenant"), "acme");
    assert_eq!(
        calls[0].header("x-api-key"),
        "s3cret",
        "the credentials win over a header of their name"
    );
    let task = &tasks(&acme, 1).await[0];
    let detail = acme.get(task["_self"].as_str().unwrap()).await;
    let sent = &detail.body["request"]["headers"];
    assert_eq!(sent["x-tenant"], "acme", "{sent}");
    assert_ne!(sent["x-api-key"], "s3cret", "still masked: {sent}");
}

#[tokio::test]
async fn an_endpoints_own_time_out_ends_its_calls() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    subscribe(&acme, &hanging.url(), json!({"timeout": "1s"})).await;
    acme.new_application().await;
    let task = &tasks(&acme, 1).await[0];
    assert!(task["error"].as_str().unwrap().starts_with("timeout"), "{task}");
    let took = task["duration_ms"].as_i64().unwrap();
    assert!(
        (900..5_000).contains(&took),
        "its 1 s, not the server's 30 s: {took} ms"
    );
}

#[tokio::test]
async fn an_endpoints_own_retry_schedule_replaces_the_servers() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(5); 7];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    subscribe(&acme, &receiver.url(), json!({"retry_schedule": ["20s", "40s"]})).await;
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(19));
    assert_eq!(app.step().await, 0, "not the server's 5 s: its own 20 s");
    app.advance(Duration::from_secs(2));
    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(39));
    assert_eq!(app.step().await, 0);
    app.advance(Duration::from_secs(2));
    assert_eq!(app.step().await, 1, "the second retry, the last of its schedule");
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.step().await, 0, "its schedule is spent");
    let last = &tasks(&acme, 3).await[0];
    assert_eq!(last["delivery"], "failed", "{last}");
}

#[tokio::test]
async fn a_rate_limit_spaces_calls_and_gives_no_burst_after_a_pause() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({"rate_limit": 2})).await;
    for _ in 0..6 {
        acme.new_application().await;
    }
    assert_eq!(app.step().await, 1, "one call now, the rest spaced");
    assert_eq!(app.step().await, 0);
    // 2 a second, 2 % apart more: 510 ms between starts.
    app.advance(Duration::from_millis(509));
    assert_eq!(app.step().await, 0, "not before its turn");
    app.advance(Duration::from_millis(1));
    assert_eq!(app.step().await, 1);
    // A long pause is not made up for with a burst.
    app.advance(Duration::from_secs(10));
    assert_eq!(app.step().await, 1);
    assert_eq!(app.step().await, 0);
    // Lifting the limit lets the rest go at once.
    let endpoint = acme.get("/restapi/v1/webhook/endpoint").await.body["items"][0]["_self"]
        .as_str()
        .unwrap()
        .to_owned();
    acme.patch(&endpoint, json!({"rate_limit": null})).await;
    assert_eq!(app.step().await, 3);
}

#[tokio::test]
async fn no_second_holds_more_calls_than_the_rate_limit_and_none_is_dropped() {
    let app = crate::helpers::spawn_app_with(|c| c.delivery.retry_schedule = vec![Duration::from_secs(1)]).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    // A 429 asking for a second's rest, twice, in the middle of the flow.
    let ok = std::iter::repeat_n(Answer::Status(200, "ok"), 10);
    receiver.script(ok.chain(std::iter::repeat_n(Answer::RetryAfter(429, 1), 2)));
    subscribe(&acme, &receiver.url(), json!({"rate_limit": 20})).await;
    let started = std::time::Instant::now();
    for _ in 0..50 {
        acme.new_application().await;
    }
    let calls = receiver.wait_for(52, Duration::from_secs(20)).await;
    let distinct: std::collections::HashSet<&str> = calls.iter().map(|c| c.header("webhook-id")).collect();
    assert_eq!(distinct.len(), 50, "every event arrives, the two put off included");
    // 50 ms apart: a call that starts a few milliseconds late must not count as a 21st in a
    // second, so the window leaves that jitter out.
    let most = receiver.most_within(Duration::from_millis(950));
    assert!(most <= 20, "{most} calls arrived within 950 ms");
    // Spaced, not sent in bursts: 52 calls at 20 a second take more than 2.5 s.
    assert!(
        started.elapsed() > Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );
    assert!(most >= 15, "the limit, not something slower, paced them: {most}");
}
