//! Endpoint filters: an event whose call body the filter does not pass makes no delivery and
//! no task for that endpoint, whichever way it was written (a step change, a published event,
//! a replay); a filter that cannot be parsed is refused, naming where.

use serde_json::{Value, json};

use crate::delivery::subscribe;
use crate::helpers::spawn_stepped_app;
use crate::receiver::TestReceiver;

/// The events an endpoint received, by type, and the `data.to.name` or `data.amount` of each.
fn received(receiver: &TestReceiver) -> Vec<(String, Value)> {
    receiver
        .received()
        .iter()
        .map(|call| {
            let body = call.json();
            let detail = if body["data"]["to"].is_object() {
                body["data"]["to"]["name"].clone()
            } else {
                body["data"]["amount"].clone()
            };
            (body["event"].as_str().unwrap().to_owned(), detail)
        })
        .collect()
}

async fn deliveries_to(db: &crate::db::TestDb, endpoint: &Value) -> i64 {
    let id = endpoint["id"].as_str().unwrap();
    db.count(&format!(
        "SELECT count(*) FROM deliveries d JOIN endpoints e ON e.seq = d.endpoint_seq WHERE e.id = '{id}'"
    ))
    .await
}

#[tokio::test]
async fn a_filtered_endpoint_gets_only_the_events_its_filter_passes() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let (offers, everything) = (TestReceiver::start().await, TestReceiver::start().await);
    let filter = json!({"event": "ProcessStepChange", "data.to.name": {"$in": ["Offer", "Hired"]}});
    let filtered = subscribe(&acme, &offers.url(), json!({"filter": filter})).await;
    assert_eq!(filtered["filter"], filter, "shown as given");
    subscribe(&acme, &everything.url(), json!({})).await;
    let steps = acme.step_ids().await;
    let application = acme.new_application().await;
    for step in [steps[1], steps[3]] {
        let moved = acme
            .post(
                "/restapi/v1/step",
                json!({"application_id": application, "process_step_id": step}),
            )
            .await;
        assert_eq!(moved.status, 201, "{}", moved.text);
    }
    assert_eq!(
        app.step().await,
        4,
        "three events to the unfiltered endpoint, one to the filtered"
    );
    assert_eq!(received(&offers), [("ProcessStepChange".to_owned(), json!("Offer"))]);
    assert_eq!(received(&everything).len(), 3);
    assert_eq!(
        deliveries_to(app.db(), &filtered).await,
        1,
        "no delivery for what it leaves out"
    );

    // Published events are filtered too, however many are written together.
    app.admin()
        .post(
            "/admin/v1/event-type",
            json!({"name": "OrderPaid", "description": "paid"}),
        )
        .await;
    let (large, large_orders) = (TestReceiver::start().await, json!({"data.amount": {"$gte": 100}}));
    subscribe(
        &acme,
        &large.url(),
        json!({"filter": large_orders, "events": ["OrderPaid"]}),
    )
    .await;
    let mut publishes = tokio::task::JoinSet::new();
    for amount in [50, 150, 99, 100, 2000] {
        let (client, url) = (app.client.clone(), app.url("/admin/v1/account/acme/event"));
        publishes.spawn(async move {
            let reply = client
                .post(url)
                .bearer_auth(crate::helpers::ADMIN_TOKEN)
                .json(&json!({"event": "OrderPaid", "data": {"amount": amount}}))
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 201);
        });
    }
    publishes.join_all().await;
    while app.step().await > 0 {}
    let mut amounts: Vec<i64> = received(&large).iter().map(|(_, a)| a.as_i64().unwrap()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [100, 150, 2000]);
}

/// Publishes `OrderPaid` events of these amounts, one request each, and runs the deliveries.
async fn pay(app: &crate::helpers::SteppedApp, amounts: &[i64]) {
    for amount in amounts {
        let reply = app
            .admin()
            .post(
                "/admin/v1/account/acme/event",
                json!({"event": "OrderPaid", "data": {"amount": amount}}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    while app.step().await > 0 {}
}

/// A filter set, changed or removed once events have been published applies from the next
/// event on: a node that remembers an account's filters (PostgreSQL's publisher does, to write
/// a group in one round trip) must not fan out by the ones it remembers.
#[tokio::test]
async fn a_filter_changed_after_events_went_by_it_applies_to_the_next_event() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    app.admin()
        .post(
            "/admin/v1/event-type",
            json!({"name": "OrderPaid", "description": "paid"}),
        )
        .await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["OrderPaid"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    // Sorted: the calls of one step run at once.
    let amounts = |receiver: &TestReceiver| -> Vec<i64> {
        let mut amounts: Vec<i64> = received(receiver).iter().map(|(_, a)| a.as_i64().unwrap()).collect();
        amounts.sort_unstable();
        amounts
    };
    pay(&app, &[1]).await;
    for (filter, paid, passed) in [
        (json!({"data.amount": {"$gte": 100}}), [50, 150], vec![1, 150]),
        (json!({"data.amount": {"$gte": 10}}), [5, 50], vec![1, 50, 150]),
        (Value::Null, [5, 6], vec![1, 5, 6, 50, 150]),
        (
            json!({"data.amount": {"$gte": 1000}}),
            [7, 2000],
            vec![1, 5, 6, 50, 150, 2000],
        ),
    ] {
        let changed = acme.patch(path, json!({ "filter": filter })).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        pay(&app, &paid).await;
        assert_eq!(amounts(&receiver), passed, "after the filter became {filter}");
    }
}

#[tokio::test]
async fn a_replay_sends_again_only_what_the_filter_passes() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"filter": {"data.to.name": "Offer"}})).await;
    let steps = acme.step_ids().await;
    let application = acme.new_application().await;
    for step in [steps[1], steps[3]] {
        acme.post(
            "/restapi/v1/step",
            json!({"application_id": application, "process_step_id": step}),
        )
        .await;
    }
    let path = endpoint["_self"].as_str().unwrap();
    let replay = acme
        .post(&format!("{path}/replay"), json!({"since": "2000-01-01 00:00:00"}))
        .await;
    assert_eq!(replay.body["deliveries"], 1, "{}", replay.text);

    // Without its filter, the replay takes every event it subscribes to.
    let cleared = acme.patch(path, json!({"filter": null})).await;
    assert!(cleared.body["filter"].is_null(), "{}", cleared.text);
    let replay = acme
        .post(&format!("{path}/replay"), json!({"since": "2000-01-01 00:00:00"}))
        .await;
    assert_eq!(replay.body["deliveries"], 3, "{}", replay.text);
}

#[tokio::test]
async fn a_filter_that_cannot_be_parsed_is_refused_naming_where() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    for (filter, at) in [
        (json!({"data.to.name": {"$in": "Offer"}}), "filter.data.to.name.$in"),
        (json!({"$or": [{"event": "A"}, "B"]}), "filter.$or[1]"),
        (
            json!({"data.amount": {"$between": [1, 2]}}),
            "filter.data.amount.$between",
        ),
        (json!("event = A"), "filter"),
    ] {
        let body = json!({"url": "https://example.com/hook", "events": ["*"], "filter": filter});
        let refused = acme.post("/restapi/v1/webhook/endpoint", body).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert_eq!(refused.code(), "invalid_filter");
        assert!(
            refused.body["error"]["message"].as_str().unwrap().starts_with(at),
            "{}",
            refused.text
        );
    }
    assert_eq!(app.db().count("SELECT count(*) FROM endpoints").await, 0);
}
