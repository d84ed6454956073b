//! `Idempotency-Key`: a repeated POST is answered with the first answer and writes nothing,
//! on every POST of both APIs; keys live in one space per caller for 24 hours; a repeat that
//! asks something else is refused; repeats racing the first write once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::db::TestDb;
use crate::helpers::{Api, PASSWORD, Reply, TestApp, spawn_app, spawn_stepped_app};
use crate::receiver::TestReceiver;

/// Registers the event type `OrderPaid` for publishing.
async fn register_type(app: &TestApp) {
    let reply = app
        .admin()
        .post(
            "/admin/v1/event-type",
            json!({"name": "OrderPaid", "description": "paid"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
}

const PUBLISH: &str = "/admin/v1/account/acme/event";

#[track_caller]
fn assert_replayed(first: &Reply, repeat: &Reply) {
    assert!(
        first.headers.get("idempotent-replayed").is_none(),
        "a first answer is not a replay"
    );
    assert_eq!(repeat.headers["idempotent-replayed"], "true", "{}", repeat.text);
    assert_eq!(repeat.status, first.status);
    assert_eq!(repeat.text, first.text, "the same bytes");
    assert_eq!(repeat.headers.get("location"), first.headers.get("location"));
    assert_eq!(repeat.headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_writes_nothing() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    register_type(&app).await;
    let support = app.admin().with_key("order-42-paid");
    let body = json!({"event": "OrderPaid", "data": {"order": 42}});

    let first = support.post(PUBLISH, body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let repeat = support.post(PUBLISH, body.clone()).await;
    assert_replayed(&first, &repeat);
    assert_eq!(app.event_count().await, 1, "one event, not two");

    // The same key asking something else: refused, and nothing written.
    let other_body = support
        .post(PUBLISH, json!({"event": "OrderPaid", "data": {"order": 43}}))
        .await;
    assert_eq!(other_body.status, 422, "{}", other_body.text);
    assert_eq!(other_body.code(), "idempotency_key_reused");
    app.new_account("globex").await;
    let other_path = support.post("/admin/v1/account/globex/event", body.clone()).await;
    assert_eq!(
        other_path.code(),
        "idempotency_key_reused",
        "the path is part of the request"
    );
    assert_eq!(app.event_count().await, 1);

    // Another key is another request.
    let another = app.admin().with_key("order-42-paid-again").post(PUBLISH, body).await;
    assert_eq!(another.status, 201);
    assert_ne!(another.body["id"], first.body["id"]);
    assert_eq!(app.event_count().await, 2);
}

#[tokio::test]
async fn each_caller_has_a_key_space_of_its_own() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await.with_key("k1");
    let globex = app.new_account("globex").await.with_key("k1");
    let job = json!({"title": "Welder"});
    let acme_job = acme.post("/restapi/v1/job", job.clone()).await;
    let globex_job = globex.post("/restapi/v1/job", job.clone()).await;
    assert_eq!(acme_job.status, 201);
    assert_eq!(globex_job.status, 201, "another account's k1 is not acme's");
    assert!(globex_job.headers.get("idempotent-replayed").is_none());
    // Support's keys are apart from the accounts' too, even on an account's own resources.
    let endpoint = json!({"url": "https://example.com/hook", "events": ["*"]});
    let by_acme = acme.post("/restapi/v1/webhook/endpoint", endpoint.clone()).await;
    assert_eq!(by_acme.code(), "idempotency_key_reused", "acme used k1 for a job");
    let support = app.admin().with_key("k1");
    let by_support = support.post("/admin/v1/account/acme/webhook/endpoint", endpoint).await;
    assert_eq!(by_support.status, 201, "{}", by_support.text);
    assert_eq!(app.db().count("SELECT count(*) FROM jobs").await, 2);
}

#[tokio::test]
async fn a_failed_request_keeps_nothing_and_its_repeat_runs_again() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    let support = app.admin().with_key("first-try");
    let unknown = json!({"event": "OrderPaid"});
    let refused = support.post(PUBLISH, unknown.clone()).await;
    assert_eq!(refused.code(), "unknown_event_type");
    register_type(&app).await;
    let again = support.post(PUBLISH, unknown).await;
    assert_eq!(again.status, 201, "the type exists now: {}", again.text);
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_key_must_be_1_to_255_printable_characters() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    register_type(&app).await;
    let body = json!({"event": "OrderPaid"});
    for key in [String::new(), "k".repeat(256), "tab\tinside".into()] {
        let reply = app.admin().with_key(&key).post(PUBLISH, body.clone()).await;
        assert_eq!(reply.status, 400, "{key:?}: {}", reply.text);
        assert_eq!(reply.code(), "invalid_idempotency_key");
    }
    assert_eq!(app.event_count().await, 0, "a refused key writes nothing");
    let longest = app.admin().with_key(&"k".repeat(255)).post(PUBLISH, body).await;
    assert_eq!(longest.status, 201, "{}", longest.text);
}

/// What the POSTs under test can change: the rows of every table they write, the times they
/// set, and the secrets.
async fn written(db: &TestDb) -> (Vec<i64>, Vec<String>) {
    let mut counts = Vec::new();
    for table in [
        "accounts",
        "jobs",
        "candidates",
        "applications",
        "step_changes",
        "event_types",
        "events",
        "endpoints",
        "deliveries",
        "ui_portal_links",
    ] {
        counts.push(db.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts.push(db.count("SELECT coalesce(max(updated_at), 0) FROM endpoints").await);
    counts.push(db.count("SELECT coalesce(max(next_at), 0) FROM deliveries").await);
    let secrets = db.texts("SELECT secret FROM endpoints ORDER BY seq").await;
    (counts, secrets)
}

#[tokio::test]
async fn every_post_of_both_apis_writes_once_per_key() {
    let app = spawn_stepped_app(|_| {}).await;
    let receiver = TestReceiver::start().await;
    let acme = app.new_account("acme").await;
    register_type(&app).await;
    let steps = acme.step_ids().await;
    let application = acme.new_application().await;
    let hook = json!({"url": receiver.url(), "events": ["*"]});
    let endpoint = acme.post("/restapi/v1/webhook/endpoint", hook.clone()).await;
    let endpoint = endpoint.body["id"].as_str().unwrap().to_owned();
    acme.post(
        "/restapi/v1/step",
        json!({"application_id": application, "process_step_id": steps[1]}),
    )
    .await;
    assert!(app.step().await > 0, "a call, for a task to retry");
    let task = app.db().count("SELECT max(id) FROM tasks").await;

    let support = app.admin();
    let ep = format!("/restapi/v1/webhook/endpoint/{endpoint}");
    let admin_ep = format!("/admin/v1/account/acme/webhook/endpoint/{endpoint}");
    let posts: Vec<(&Api, String, Value)> = vec![
        (
            &support,
            "/admin/v1/account".into(),
            json!({"login": "initech", "password": PASSWORD}),
        ),
        (
            &support,
            "/admin/v1/event-type".into(),
            json!({"name": "OrderShipped", "description": "x"}),
        ),
        (&support, PUBLISH.into(), json!({"event": "OrderPaid"})),
        (&support, "/admin/v1/account/acme/webhook/endpoint".into(), hook.clone()),
        (&support, format!("{admin_ep}/test"), json!({})),
        (
            &support,
            "/admin/v1/webhook-version/1/deprecate".into(),
            json!({"sunset": "2099-01-01"}),
        ),
        (
            &support,
            "/admin/v1/account/acme/portal".into(),
            json!({"permissions": "view", "ttl": "1h"}),
        ),
        (&acme, "/restapi/v1/job".into(), json!({"title": "Welder"})),
        (
            &acme,
            "/restapi/v1/candidate".into(),
            json!({"first_name": "Ada", "last_name": "King"}),
        ),
        (
            &acme,
            "/restapi/v1/application".into(),
            json!({"candidate_id": 1, "job_id": 2}),
        ),
        (
            &acme,
            "/restapi/v1/step".into(),
            json!({"application_id": application, "process_step_id": steps[2]}),
        ),
        (&acme, "/restapi/v1/webhook/endpoint".into(), hook),
        (&acme, format!("{ep}/resume"), json!({})),
        (&acme, format!("{ep}/secret/rotate"), json!({})),
        (&acme, format!("{ep}/test"), json!({})),
        (&acme, format!("{ep}/replay"), json!({"since": "2000-01-01 00:00:00"})),
        (&acme, format!("/restapi/v1/webhook/task/{task}/retry"), json!({})),
    ];
    for (n, (api, path, body)) in posts.into_iter().enumerate() {
        let api = api.with_key(&format!("key-{n}"));
        let first = api.post(&path, body.clone()).await;
        assert!(first.status < 300, "POST {path}: {}", first.text);
        let before = written(app.db()).await;
        // A repeat that wrote would leave other times behind.
        app.advance(Duration::from_secs(1));
        let repeat = api.post(&path, body).await;
        assert_replayed(&first, &repeat);
        assert_eq!(written(app.db()).await, before, "POST {path} repeated wrote nothing");
    }
}

#[tokio::test]
async fn a_key_is_kept_for_24_hours_then_forgotten() {
    let app = spawn_stepped_app(|_| {}).await;
    app.new_account("acme").await;
    register_type(&app).await;
    let support = app.admin().with_key("daily");
    let body = json!({"event": "OrderPaid"});
    let first = support.post(PUBLISH, body.clone()).await;
    app.advance(Duration::from_secs(24 * 3600 - 1));
    assert_replayed(&first, &support.post(PUBLISH, body.clone()).await);

    app.advance(Duration::from_secs(2));
    let next_day = support.post(PUBLISH, body.clone()).await;
    assert_eq!(next_day.status, 201);
    assert!(
        next_day.headers.get("idempotent-replayed").is_none(),
        "a day later the key is new"
    );
    assert_ne!(next_day.body["id"], first.body["id"]);
    assert_eq!(app.event_count().await, 2);

    // Retention forgets what ran out: the first use was taken over, so a day on, nothing.
    assert_eq!(app.db().count("SELECT count(*) FROM idempotency_keys").await, 1);
    app.advance(Duration::from_secs(24 * 3600 + 1));
    app.purge().await;
    assert_eq!(app.db().count("SELECT count(*) FROM idempotency_keys").await, 0);
}

#[tokio::test]
async fn deleting_an_account_forgets_its_keys() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await.with_key("k");
    acme.post("/restapi/v1/job", json!({"title": "Welder"})).await;
    app.admin()
        .with_key("k")
        .post(
            "/admin/v1/account/acme/webhook/endpoint",
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    assert_eq!(app.db().count("SELECT count(*) FROM idempotency_keys").await, 2);
    assert_eq!(app.admin().delete("/admin/v1/account/acme").await.status, 204);
    let left = app.db().texts("SELECT scope FROM idempotency_keys").await;
    assert_eq!(left, ["admin"], "support's key stays; acme's went with acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_repeats_write_once() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    register_type(&app).await;
    let body = json!({"event": "OrderPaid", "data": {"order": 7}});
    let client = reqwest::Client::new();
    let mut repeats = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let request = client
            .post(app.url(PUBLISH))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .header("idempotency-key", "raced")
            .json(&body);
        repeats.spawn(async move {
            let reply = request.send().await.unwrap();
            let replayed = reply.headers().contains_key("idempotent-replayed");
            (reply.status().as_u16(), replayed, reply.json::<Value>().await.unwrap())
        });
    }
    let answers = repeats.join_all().await;
    let firsts: Vec<_> = answers
        .iter()
        .filter(|(status, replayed, _)| *status == 201 && !replayed)
        .collect();
    assert_eq!(firsts.len(), 1, "one request wrote: {answers:?}");
    for (status, replayed, body) in &answers {
        match status {
            201 => assert_eq!(body["id"], firsts[0].2["id"], "a replay shows the one event"),
            409 => {
                assert!(!replayed);
                assert_eq!(body["error"]["code"], "idempotency_key_in_flight");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(app.event_count().await, 1);
    let after = app.admin().with_key("raced").post(PUBLISH, body).await;
    assert_eq!(after.headers["idempotent-replayed"], "true");
    assert_eq!(after.body["id"], firsts[0].2["id"]);
}
