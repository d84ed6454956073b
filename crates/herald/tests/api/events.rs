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
/// caller still gets its own answer, an event that cannot be written fails alone, and an
/// Idempotency-Key is kept with its event or, taken already, keeps the event out.
#[tokio::test]
async fn concurrent_publishes_each_get_their_own_answer() {
    use herald::domain::account::NewAccount;
    use herald::domain::event::{Event, EventDraft, EventStamp};
    use herald::store::{Answer, Once, RequestKey, StoreError};

    let db = crate::db::TestDb::new().await;
    let store = herald::store::open(&db.url, 8).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0, None).await.unwrap().id;
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
    // Every third event is published under a key of its own, but events 9 and 12 share one,
    // and event 15 takes the key of the event written first.
    let key = |n: u64| {
        let key = match n {
            9 | 12 => "shared".to_owned(),
            15 | 1_000 => "first".to_owned(),
            n => format!("key-{n}"),
        };
        let key = RequestKey {
            scope: "admin".into(),
            key,
            fingerprint: format!("request {n}"),
        };
        let answer = |event: &Event| Answer {
            status: 201,
            location: None,
            body: event.id.clone(),
        };
        (n % 3 == 0 || n == 1_000).then(|| Once::new(key, n as i64, answer))
    };
    // Written before the others: event 7 reuses its id, which the database itself refuses.
    store
        .publish_event(account, draft(1_000, None), stamp(1_000), key(1_000))
        .await
        .unwrap();
    let mut publishes = tokio::task::JoinSet::new();
    for n in 0..60_u64 {
        let store = store.clone();
        publishes.spawn(async move {
            // Every 20th names an application the account lacks.
            let application = (n % 20 == 0).then_some(424_242);
            let stamp = if n == 7 { stamp(1_000) } else { stamp(n) };
            (
                n,
                store.publish_event(account, draft(n, application), stamp, key(n)).await,
            )
        });
    }
    let mut published = 0;
    let mut shared = Vec::new();
    for (n, answer) in publishes.join_all().await {
        match (n, answer) {
            (7, answer) => assert!(answer.is_err(), "an event was written twice"),
            (n, Err(StoreError::Invalid(invalid))) if n % 20 == 0 => assert_eq!(invalid.code, "unknown_application"),
            (15, answer) => assert!(matches!(answer, Err(StoreError::KeyTaken)), "{answer:?}"),
            (9 | 12, answer) => shared.push(answer),
            (n, Ok(event)) if n % 20 != 0 => {
                assert_eq!(event.id, format!("evt_{n}"));
                let stored = store.event(account, &event.id).await.unwrap();
                assert_eq!(stored.body, event.body);
                published += 1;
            }
            (n, answer) => panic!("event {n}: {answer:?}"),
        }
    }
    assert_eq!(published, 53);
    let shared_written: Vec<Event> = shared.into_iter().filter_map(Result::ok).collect();
    assert_eq!(shared_written.len(), 1, "one of two events under one key");
    let kept = store
        .kept("admin", "shared", 0)
        .await
        .unwrap()
        .expect("the key is kept");
    assert_eq!(
        kept.answer.body, shared_written[0].id,
        "with the answer to the event written"
    );
    for n in [0, 15, 20, 40] {
        assert!(
            store.event(account, &format!("evt_{n}")).await.is_err(),
            "evt_{n} was written"
        );
    }
    assert!(
        store.kept("admin", "key-0", 0).await.unwrap().is_none(),
        "an event not written keeps no key"
    );
    assert_eq!(
        store.kept("admin", "key-3", 0).await.unwrap().unwrap().fingerprint,
        "request 3"
    );
}
