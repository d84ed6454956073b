//! An endpoint's figures (`…/webhook/endpoint/{id}/stats`): counted by the recorder as it
//! records calls, by hour, on controlled time; the same on both APIs; purged a week and a day
//! on, and gone with the endpoint.

use std::time::Duration;

use serde_json::json;

use crate::delivery::subscribe;
use crate::helpers::spawn_stepped_app;
use crate::receiver::{Answer, TestReceiver};

#[tokio::test]
async fn an_endpoints_figures_count_its_calls_by_hour() {
    let app = spawn_stepped_app(|c| {
        c.delivery.jitter = 0.0;
        c.retention.keep = Duration::from_secs(3600);
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([
        Answer::Status(200, "ok"),
        Answer::Status(200, "ok"),
        Answer::Status(200, "ok"),
        Answer::Status(500, "down"),
        Answer::Status(404, "gone missing"),
    ]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = format!("{}/stats", endpoint["_self"].as_str().unwrap());
    let empty = acme.get(&path).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body["calls"], 0);
    assert!(empty.body["success_rate"].is_null() && empty.body["latency_ms"]["p50"].is_null());

    for _ in 0..5 {
        acme.new_application().await;
    }
    assert_eq!(app.step().await, 5);
    // Two hours on: two new events, and the two failed deliveries' retries, all answered 200.
    app.advance(Duration::from_secs(2 * 3600));
    for _ in 0..2 {
        acme.new_application().await;
    }
    assert_eq!(app.step().await, 4);

    let day = acme.get(&path).await.body;
    assert_eq!(
        (day["calls"].as_i64(), day["succeeded"].as_i64(), day["failed"].as_i64()),
        (Some(9), Some(7), Some(2))
    );
    assert_eq!(day["window"], "24h");
    let rate = day["success_rate"].as_f64().unwrap();
    assert!((rate - 7.0 / 9.0).abs() < 1e-9, "{rate}");
    assert!(day["latency_ms"]["p50"].as_i64().is_some_and(|ms| ms <= 250), "{day}");
    assert!(
        day["latency_ms"]["p99"].as_i64() >= day["latency_ms"]["p95"].as_i64(),
        "{day}"
    );
    assert_eq!(day["by_status"], json!({"200": 7, "404": 1, "500": 1}));
    assert_eq!(day["by_failure"], json!({"http_status": 2}));
    let series = day["series"].as_array().unwrap();
    assert_eq!(series.len(), 24, "an hour a step");
    let busy: Vec<(i64, i64, i64)> = series
        .iter()
        .map(|s| {
            (
                s["calls"].as_i64().unwrap(),
                s["succeeded"].as_i64().unwrap(),
                s["failed"].as_i64().unwrap(),
            )
        })
        .filter(|(calls, _, _)| *calls > 0)
        .collect();
    assert_eq!(busy, [(5, 3, 2), (4, 4, 0)], "two hours apart, oldest first");
    assert_eq!(series[23]["succeeded"], 4, "the last hour is now's");
    assert_eq!(series[21]["calls"], 5);
    assert!(series[21]["p95_ms"].as_i64().is_some() && series[22]["p50_ms"].is_null());

    // The same on the admin API, over a week, and validated against its schema.
    let admin_path = format!(
        "/admin/v1/account/acme/webhook/endpoint/{}/stats?window=7d",
        endpoint["id"].as_str().unwrap()
    );
    let week = app.admin().get(&admin_path).await.body;
    let steps = week["series"].as_array().unwrap();
    assert_eq!(steps.len(), 7 * 4, "6 hours a step");
    assert_eq!(steps.iter().map(|s| s["calls"].as_i64().unwrap()).sum::<i64>(), 9);
    assert_eq!(week["calls"], 9);
    let schema = app.anonymous().get(week["_schema"].as_str().unwrap()).await.body;
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    assert!(validator.is_valid(&week), "{week}");

    // A window it does not know, another account's endpoint, and one deleted.
    assert_eq!(acme.get(&format!("{path}?window=1y")).await.status, 400);
    let other = app.new_account("other").await;
    assert_eq!(other.get(&path).await.status, 404, "another account's endpoint");

    // Counters outlive the history's retention (an hour here) for the week the figures show,
    // and a day more; then they go too.
    let counters = || app.db().count("SELECT count(*) FROM endpoint_stats");
    let before = counters().await;
    app.advance(Duration::from_secs(7 * 24 * 3600));
    app.purge().await;
    assert_eq!(counters().await, before, "kept for the week the figures look back on");
    app.advance(Duration::from_secs(27 * 3600));
    app.purge().await;
    assert_eq!(counters().await, 0);
    assert_eq!(acme.get(&format!("{path}?window=7d")).await.body["calls"], 0);

    // Counters go with their endpoint.
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    assert!(counters().await > 0);
    acme.delete(endpoint["_self"].as_str().unwrap()).await;
    assert_eq!(acme.get(&path).await.status, 404);
    assert_eq!(
        app.db().count("SELECT count(*) FROM endpoint_stats").await,
        0,
        "counters go with it"
    );
}
