//! The event catalogue, event types registered by a host product, and publishing.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_catalogue_has_the_builtin_types_with_schemas() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let catalogue = acme.get("/restapi/v1/webhook/event").await;
    assert_eq!(catalogue.status, 200);
    assert_eq!(catalogue.body["_next"], "");
    let names: Vec<&str> = catalogue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "ProcessStepChange",
        "ApplicationCreate",
        "ApplicationDelete",
        "WebhookTest",
    ] {
        assert!(names.contains(&builtin), "{names:?}");
    }
    let step_change = acme.get("/restapi/v1/webhook/event/ProcessStepChange").await;
    assert_eq!(step_change.body["builtin"], true);
    assert_eq!(step_change.body["schema"]["required"], json!(["from", "to"]));
    assert!(!step_change.body["description"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_host_product_registers_a_type_and_publishes_an_event_of_it() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let schema = json!({"type": "object", "properties": {"email": {"type": "string"}}});
    let registered = app
        .admin()
        .post(
            "/admin/v1/event-type",
            json!({"name": "CandidateUpdate", "description": "A candidate changed.", "schema": schema}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(
        acme.get("/restapi/v1/webhook/event/CandidateUpdate").await.body["schema"],
        schema
    );
    let again = app
        .admin()
        .post(
            "/admin/v1/event-type",
            json!({"name": "CandidateUpdate", "description": "x"}),
        )
        .await;
    assert_eq!(again.status, 409);

    // Endpoints may now subscribe to it.
    let endpoint = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/h", "events": ["CandidateUpdate"]}),
        )
        .await;
    assert_eq!(endpoint.status, 201, "{}", endpoint.text);

    let application = acme.new_application().await;
    let published = app
        .admin()
        .post(
            "/admin/v1/account/acme/event",
            json!({"event": "CandidateUpdate", "application": application, "data": {"email": "ada@example.org"}}),
        )
        .await;
    assert_eq!(published.status, 201, "{}", published.text);
    assert!(published.body["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(
        published.body["application"]["_self"],
        format!("/restapi/v1/application/{application}")
    );
    assert_eq!(published.body["data"]["email"], "ada@example.org");
    let location = published.headers["location"].to_str().unwrap();
    assert_eq!(app.admin().get(location).await.body["id"], published.body["id"]);
    assert_eq!(app.event_count().await, 2, "ApplicationCreate and the published event");
}

/// Concurrent publishes are written together where the store groups them (PostgreSQL): each
/// caller still gets its own answer, and an event that cannot be written fails alone.
#[tokio::test]
async fn concurrent_publishes_each_get_their_own_answer() {
    use herald::domain::account::NewAccount;
    use herald::domain::event::{EventDraft, EventStamp};
    use herald::store::StoreError;

    let db = crate::db::TestDb::new().await;
    let store = herald::store::open(&db.url, 8).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0).await.unwrap().id;
    let draft = |n: u64, application_id| EventDraft {
        event_type: "BenchEvent".into(),
        application_id,
        data: json!({ "n": n }),
    };
    let stamp = |n: u64| EventStamp {
        id: format!("evt_{n}"),
        at: n as i64,
        datetime: "2026-12-02 00:00:00".into(),
    };
    // Written before the others: event 7 reuses its id, which the database itself refuses.
    store
        .publish_event(account, draft(1_000, None), stamp(1_000))
        .await
        .unwrap();
    let mut publishes = tokio::task::JoinSet::new();
    for n in 0..60_u64 {
        let store = store.clone();
        publishes.spawn(async move {
            // Every 20th names an application the account lacks.
            let application = (n % 20 == 0).then_some(424_242);
            let stamp = if n == 7 { stamp(1_000) } else { stamp(n) };
            (n, store.publish_event(account, draft(n, application), stamp).await)
        });
    }
    let mut published = 0;
    for (n, answer) in publishes.join_all().await {
        match (n, answer) {
            (7, answer) => assert!(answer.is_err(), "an event was written twice"),
            (n, Err(StoreError::Invalid(invalid))) if n % 20 == 0 => assert_eq!(invalid.code, "unknown_application"),
            (n, Ok(event)) if n % 20 != 0 => {
                assert_eq!(event.id, format!("evt_{n}"));
                let stored = store.event(account, &event.id).await.unwrap();
                assert_eq!(stored.body, event.body);
                published += 1;
            }
            (n, answer) => panic!("event {n}: {answer:?}"),
        }
    }
    assert_eq!(published, 56);
    for n in [0, 20, 40] {
        assert!(
            store.event(account, &format!("evt_{n}")).await.is_err(),
            "evt_{n} was written"
        );
    }
}
