//! Every answer names its JSON Schema in `_schema`; that schema is served at
//! `/restapi/schemav1/{name}`, declares draft 2020-12, and the answer validates against it.
//! A deliberately broken answer must not validate, so that these checks can fail.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Api, PASSWORD, Reply, TestApp, spawn_app, spawn_app_with};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const SCHEMA_BASE: &str = "/restapi/schemav1/";
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Every schema the API labels answers with.
const SCHEMA_NAMES: [&str; 20] = [
    "root",
    "error",
    "job",
    "jobs",
    "candidate",
    "candidates",
    "application",
    "applications",
    "step",
    "steps",
    "process",
    "processes",
    "webhookendpoint",
    "webhookendpoints",
    "webhookevent",
    "webhookevents",
    "event",
    "events",
    "account",
    "accounts",
];

/// Fetches a schema by its path, checks that it is served as a draft 2020-12 JSON Schema,
/// and compiles it.
async fn compiled(app: &TestApp, path: &str) -> (Value, jsonschema::Validator) {
    assert!(
        path.starts_with(SCHEMA_BASE),
        "a _schema lives under {SCHEMA_BASE}: {path}"
    );
    let served = app.anonymous().get(path).await;
    assert_eq!(served.status, 200, "GET {path}: {}", served.text);
    let content_type = served
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.contains("json"),
        "GET {path} is served as {content_type:?}"
    );
    let schema = served.body;
    assert_eq!(schema["$schema"], DRAFT_2020_12, "{path} declares draft 2020-12");
    let validator = jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{path} does not compile: {e}"));
    (schema, validator)
}

/// The errors of `instance` against `validator`, one line each.
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path.as_str()))
        .collect()
}

/// Fetches the schema the reply names in `_schema`, compiles it and validates the reply's
/// body against it; panics with every error. Returns the schema's name.
async fn assert_valid(app: &TestApp, reply: &Reply) -> String {
    let path = reply.body["_schema"]
        .as_str()
        .unwrap_or_else(|| panic!("the answer names no _schema: {}", reply.text));
    let (_, validator) = compiled(app, path).await;
    let found = errors(&validator, &reply.body);
    assert!(
        found.is_empty(),
        "the answer does not validate against {path}:\n{}\n{}",
        found.join("\n"),
        reply.text
    );
    path.trim_start_matches(SCHEMA_BASE).to_owned()
}

/// Like [`assert_valid`], and checks the status and which schema the answer names.
async fn assert_valid_as(app: &TestApp, reply: &Reply, status: u16, schema: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(assert_valid(app, reply).await, schema, "{}", reply.text);
}

fn path_of(reply: &Reply) -> String {
    reply.body["_self"]
        .as_str()
        .unwrap_or_else(|| panic!("no _self: {}", reply.text))
        .to_owned()
}

/// An account with a job, a candidate and an application moved one step.
struct Recruiting {
    job: String,
    candidate: String,
    application: String,
}

async fn recruiting(acme: &Api<'_>) -> Recruiting {
    let job = acme
        .post(
            "/restapi/v1/job",
            json!({"title": "Rust engineer", "reference": "RUST-1"}),
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let candidate = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(candidate.status, 201, "{}", candidate.text);
    let application = acme
        .post(
            "/restapi/v1/application",
            json!({"candidate_id": candidate.body["id"], "job_id": job.body["id"]}),
        )
        .await;
    assert_eq!(application.status, 201, "{}", application.text);
    Recruiting {
        job: path_of(&job),
        candidate: path_of(&candidate),
        application: path_of(&application),
    }
}

#[tokio::test]
async fn every_schema_is_served_as_draft_2020_12_and_compiles() {
    let app = spawn_app().await;
    for name in SCHEMA_NAMES {
        let (schema, _) = compiled(&app, &format!("{SCHEMA_BASE}{name}")).await;
        assert!(schema.is_object(), "{name}: {schema}");
    }
}

#[tokio::test]
async fn an_unknown_schema_is_a_404_that_validates_against_the_error_schema() {
    let app = spawn_app().await;
    let reply = app.anonymous().get("/restapi/schemav1/nope").await;
    assert_valid_as(&app, &reply, 404, "error").await;
    assert_eq!(reply.code(), "not_found");
}

#[tokio::test]
async fn the_root_validates_against_its_schema() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    assert_valid_as(&app, &acme.get("/restapi/v1").await, 200, "root").await;
}

#[tokio::test]
async fn jobs_and_candidates_validate_against_their_schemas() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let created = acme.post("/restapi/v1/job", json!({"title": "Rust engineer"})).await;
    assert_valid_as(&app, &created, 201, "job").await;
    let with_reference = acme
        .post(
            "/restapi/v1/job",
            json!({"title": "Go", "reference": "GO-1", "status": "closed"}),
        )
        .await;
    assert_valid_as(&app, &with_reference, 201, "job").await;
    assert_valid_as(&app, &acme.get(&path_of(&created)).await, 200, "job").await;
    assert_valid_as(&app, &acme.get("/restapi/v1/job").await, 200, "jobs").await;
    let first_page = acme.get("/restapi/v1/job?limit=1").await;
    assert_ne!(first_page.body["_next"], "", "a first page of two jobs has a next one");
    assert_valid_as(&app, &first_page, 200, "jobs").await;

    let created = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    assert_valid_as(&app, &created, 201, "candidate").await;
    let with_email = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"}),
        )
        .await;
    assert_valid_as(&app, &with_email, 201, "candidate").await;
    assert_valid_as(&app, &acme.get(&path_of(&created)).await, 200, "candidate").await;
    assert_valid_as(&app, &acme.get("/restapi/v1/candidate").await, 200, "candidates").await;
    assert_valid_as(
        &app,
        &acme.get("/restapi/v1/candidate?limit=1").await,
        200,
        "candidates",
    )
    .await;
}

#[tokio::test]
async fn applications_steps_and_the_process_validate_against_their_schemas() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let fixture = recruiting(&acme).await;
    let steps = acme.step_ids().await;
    let application_id = fixture.application.rsplit('/').next().unwrap().parse::<i64>().unwrap();

    assert_valid_as(&app, &acme.get(&fixture.application).await, 200, "application").await;
    let moved = acme
        .post(
            "/restapi/v1/step",
            json!({"application_id": application_id, "process_step_id": steps[1]}),
        )
        .await;
    assert_valid_as(&app, &moved, 201, "step").await;
    acme.post(
        "/restapi/v1/step",
        json!({"application_id": application_id, "process_step_id": steps[5]}),
    )
    .await;
    let full = acme.get(&fixture.application).await;
    assert_eq!(
        full.body["steps"]["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        full.text
    );
    assert_valid_as(&app, &full, 200, "application").await;

    let job = acme.get(&fixture.job).await;
    let of_job = acme.get(job.body["applications"]["_self"].as_str().unwrap()).await;
    assert_eq!(
        of_job.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        of_job.text
    );
    assert_valid_as(&app, &of_job, 200, "applications").await;
    let candidate = acme.get(&fixture.candidate).await;
    let of_candidate = acme
        .get(candidate.body["applications"]["_self"].as_str().unwrap())
        .await;
    assert_valid_as(&app, &of_candidate, 200, "applications").await;

    assert_valid_as(&app, &acme.get(&path_of(&moved)).await, 200, "step").await;
    assert_valid_as(&app, &acme.get("/restapi/v1/step").await, 200, "steps").await;
    let first_page = acme.get("/restapi/v1/step?limit=1").await;
    assert_ne!(first_page.body["_next"], "", "{}", first_page.text);
    assert_valid_as(&app, &first_page, 200, "steps").await;

    assert_valid_as(
        &app,
        &acme.get(job.body["process"]["_self"].as_str().unwrap()).await,
        200,
        "process",
    )
    .await;
}

#[tokio::test]
async fn endpoints_validate_against_their_schemas_on_both_apis() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let bare = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/a", "events": ["*"]}),
        )
        .await;
    assert_valid_as(&app, &bare, 201, "webhookendpoint").await;
    let full = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/b", "events": ["ProcessStepChange", "ApplicationCreate"],
                   "description": "ATS sync", "ordering": "fifo", "secret": SECRET,
                   "auth": {"type": "basic", "username": "u", "password": "p"}}),
        )
        .await;
    assert_valid_as(&app, &full, 201, "webhookendpoint").await;
    assert_valid_as(&app, &acme.get(&path_of(&full)).await, 200, "webhookendpoint").await;
    for auth in [
        json!({"type": "bearer", "token": "t"}),
        json!({"type": "header", "name": "X-Api-Key", "value": "v"}),
        Value::Null,
    ] {
        let patched = acme
            .patch(&path_of(&bare), json!({"auth": auth, "description": "changed"}))
            .await;
        assert_valid_as(&app, &patched, 200, "webhookendpoint").await;
    }
    assert_valid_as(
        &app,
        &acme.get("/restapi/v1/webhook/endpoint").await,
        200,
        "webhookendpoints",
    )
    .await;
    assert_valid_as(
        &app,
        &acme.get("/restapi/v1/webhook/endpoint?limit=1").await,
        200,
        "webhookendpoints",
    )
    .await;

    let admin = app.admin();
    let base = "/admin/v1/account/acme/webhook/endpoint";
    let created = admin
        .post(
            base,
            json!({"url": "https://example.com/c", "events": ["ApplicationDelete"]}),
        )
        .await;
    assert_valid_as(&app, &created, 201, "webhookendpoint").await;
    assert_valid_as(&app, &admin.get(&path_of(&created)).await, 200, "webhookendpoint").await;
    let patched = admin.patch(&path_of(&created), json!({"ordering": "fifo"})).await;
    assert_valid_as(&app, &patched, 200, "webhookendpoint").await;
    assert_valid_as(&app, &admin.get(base).await, 200, "webhookendpoints").await;
}

#[tokio::test]
async fn event_types_and_events_validate_against_their_schemas() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let admin = app.admin();
    let schema = json!({"type": "object", "properties": {"email": {"type": "string"}}});
    let registered = admin
        .post(
            "/admin/v1/event-type",
            json!({"name": "CandidateUpdate", "description": "A candidate changed", "schema": schema}),
        )
        .await;
    assert_valid_as(&app, &registered, 201, "webhookevent").await;
    let bare = admin
        .post(
            "/admin/v1/event-type",
            json!({"name": "JobUpdate", "description": "A job changed"}),
        )
        .await;
    assert_valid_as(&app, &bare, 201, "webhookevent").await;
    let catalogue = acme.get("/restapi/v1/webhook/event").await;
    assert_valid_as(&app, &catalogue, 200, "webhookevents").await;
    assert_valid_as(&app, &admin.get("/admin/v1/event-type").await, 200, "webhookevents").await;
    for item in catalogue.body["items"].as_array().unwrap() {
        let one = acme.get(item["_self"].as_str().unwrap()).await;
        assert_valid_as(&app, &one, 200, "webhookevent").await;
    }

    // Built-in events: create, move and delete an application.
    let fixture = recruiting(&acme).await;
    let application_id = fixture.application.rsplit('/').next().unwrap().parse::<i64>().unwrap();
    let steps = acme.step_ids().await;
    acme.post(
        "/restapi/v1/step",
        json!({"application_id": application_id, "process_step_id": steps[2]}),
    )
    .await;
    let published = admin
        .post(
            "/admin/v1/account/acme/event",
            json!({"event": "CandidateUpdate", "application": application_id, "data": {"email": "ada@example.org"}}),
        )
        .await;
    assert_valid_as(&app, &published, 201, "event").await;
    let without_application = admin
        .post(
            "/admin/v1/account/acme/event",
            json!({"event": "JobUpdate", "data": {"title": "Rust"}}),
        )
        .await;
    assert_valid_as(&app, &without_application, 201, "event").await;
    let without_data = admin
        .post("/admin/v1/account/acme/event", json!({"event": "JobUpdate"}))
        .await;
    assert_valid_as(&app, &without_data, 201, "event").await;
    assert_eq!(acme.delete(&fixture.application).await.status, 204);

    let ids = app.db().texts("SELECT id FROM events ORDER BY seq").await;
    assert_eq!(ids.len(), 6, "create, move, three published, delete: {ids:?}");
    for id in ids {
        let event = admin.get(&format!("/admin/v1/account/acme/event/{id}")).await;
        assert_valid_as(&app, &event, 200, "event").await;
    }
}

#[tokio::test]
async fn accounts_validate_against_their_schemas() {
    let app = spawn_app().await;
    let admin = app.admin();
    let created = admin
        .post(
            "/admin/v1/account",
            json!({"login": "acme", "password": PASSWORD, "name": "ACME",
                   "process": {"name": "Hiring", "steps": ["New", "Interview", "Hired", "Rejected"]}}),
        )
        .await;
    assert_valid_as(&app, &created, 201, "account").await;
    let bare = admin
        .post("/admin/v1/account", json!({"login": "beta", "password": PASSWORD}))
        .await;
    assert_valid_as(&app, &bare, 201, "account").await;
    assert_valid_as(&app, &admin.get("/admin/v1/account/acme").await, 200, "account").await;
    assert_valid_as(&app, &admin.get("/admin/v1/account").await, 200, "accounts").await;
    let first_page = admin.get("/admin/v1/account?limit=1").await;
    assert_ne!(first_page.body["_next"], "", "{}", first_page.text);
    assert_valid_as(&app, &first_page, 200, "accounts").await;
    let portal = admin
        .post("/admin/v1/account/acme/portal", json!({"permissions": "view"}))
        .await;
    assert_valid_as(&app, &portal, 201, "portal").await;
}

#[tokio::test]
async fn errors_of_every_status_validate_against_the_error_schema() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let admin = app.admin();
    let big = vec![b' '; 2 * 1024 * 1024];
    let replies = [
        (400, acme.get("/restapi/v1/job?limit=0").await),
        (
            400,
            acme.raw(
                Method::POST,
                "/restapi/v1/job",
                Some(("application/json", b"{".to_vec())),
            )
            .await,
        ),
        (401, app.as_account("acme", "wrong password").get("/restapi/v1").await),
        (401, app.anonymous().get("/admin/v1/account").await),
        (404, acme.get("/restapi/v1/job/424242").await),
        (404, acme.get("/restapi/v1/no-such-collection").await),
        (405, acme.delete("/restapi/v1/job").await),
        (
            409,
            admin
                .post("/admin/v1/account", json!({"login": "acme", "password": PASSWORD}))
                .await,
        ),
        (
            413,
            acme.raw(Method::POST, "/restapi/v1/job", Some(("application/json", big)))
                .await,
        ),
        (
            415,
            acme.raw(Method::POST, "/restapi/v1/job", Some(("text/plain", b"{}".to_vec())))
                .await,
        ),
        (422, acme.post("/restapi/v1/job", json!({"title": 1})).await),
        (422, acme.post("/restapi/v1/job", json!({"title": ""})).await),
        (
            422,
            acme.post("/restapi/v1/application", json!({"candidate_id": 1, "job_id": 1}))
                .await,
        ),
    ];
    for (status, reply) in replies {
        assert_valid_as(&app, &reply, status, "error").await;
    }
}

#[tokio::test]
async fn a_429_validates_against_the_error_schema() {
    let app = spawn_app_with(|config| config.rate_limit_per_minute = 2).await;
    let acme = app.new_account("acme").await;
    let mut reply = acme.get("/restapi/v1").await;
    for _ in 0..5 {
        if reply.status == 429 {
            break;
        }
        reply = acme.get("/restapi/v1").await;
    }
    assert_valid_as(&app, &reply, 429, "error").await;
    assert_eq!(reply.code(), "rate_limited");
    assert!(reply.headers.contains_key("retry-after"), "{:?}", reply.headers);
}

/// A way to break an answer, and what it does.
type Break = (&'static str, fn(&mut Value));

/// Validates `reply`, then checks that each broken copy of it does not validate.
async fn assert_broken_copies_fail(app: &TestApp, reply: &Reply, breaks: &[Break]) {
    assert_valid(app, reply).await;
    let (_, validator) = compiled(app, reply.body["_schema"].as_str().unwrap()).await;
    for (what, break_it) in breaks {
        let mut broken = reply.body.clone();
        break_it(&mut broken);
        assert_ne!(broken, reply.body, "{what} changes the answer");
        assert!(
            !validator.is_valid(&broken),
            "{what} still validates against {}: {broken}",
            reply.body["_schema"]
        );
    }
}

#[tokio::test]
async fn a_broken_answer_does_not_validate() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let fixture = recruiting(&acme).await;

    let job = acme.get(&fixture.job).await;
    assert_broken_copies_fail(
        &app,
        &job,
        &[
            ("a job whose id is a string", |v| v["id"] = json!(v["id"].to_string())),
            ("a job without a title", |v| {
                v.as_object_mut().unwrap().remove("title");
            }),
            ("a job with _status INVALID", |v| v["_status"] = json!("INVALID")),
            ("a job without _status", |v| {
                v.as_object_mut().unwrap().remove("_status");
            }),
            ("a job whose process link is a string", |v| {
                v["process"] = json!("/restapi/v1/process/1")
            }),
        ],
    )
    .await;

    let jobs = acme.get("/restapi/v1/job").await;
    assert_broken_copies_fail(
        &app,
        &jobs,
        &[
            ("a page whose items is an object", |v| v["items"] = json!({})),
            ("a page without _next", |v| {
                v.as_object_mut().unwrap().remove("_next");
            }),
            ("a page with an item whose id is a string", |v| {
                v["items"][0]["id"] = json!("1")
            }),
        ],
    )
    .await;

    let application = acme.get(&fixture.application).await;
    assert_broken_copies_fail(
        &app,
        &application,
        &[
            ("an application whose step has no id", |v| {
                v["step"].as_object_mut().unwrap().remove("id");
            }),
            ("an application whose candidate is null", |v| {
                v["candidate"] = Value::Null
            }),
        ],
    )
    .await;

    let root = acme.get("/restapi/v1").await;
    assert_broken_copies_fail(
        &app,
        &root,
        &[("a root whose _version is a number", |v| v["_version"] = json!(1.0))],
    )
    .await;

    let error = acme.get("/restapi/v1/job/424242").await;
    assert_broken_copies_fail(
        &app,
        &error,
        &[
            ("an error without a code", |v| {
                v["error"].as_object_mut().unwrap().remove("code");
            }),
            ("an error with _status OK", |v| v["_status"] = json!("OK")),
        ],
    )
    .await;
}

#[tokio::test]
async fn tasks_test_calls_and_replays_validate_against_their_schemas() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = crate::receiver::TestReceiver::start().await;
    let endpoint = crate::delivery::subscribe(&acme, &receiver.url(), json!({})).await;
    let path = endpoint["_self"].as_str().unwrap().to_owned();
    let test = acme.post(&format!("{path}/test"), json!({})).await;
    assert_valid_as(&app, &test, 200, "webhookdispatch").await;
    let replay = acme
        .post(&format!("{path}/replay"), json!({"since": "2000-01-01 00:00:00"}))
        .await;
    assert_valid_as(&app, &replay, 200, "webhookdispatch").await;

    let items = crate::delivery::tasks(&acme, 1).await;
    let list = acme.get("/restapi/v1/webhook/task").await;
    assert_valid_as(&app, &list, 200, "webhooktasks").await;
    let detail = acme.get(items[0]["_self"].as_str().unwrap()).await;
    assert_valid_as(&app, &detail, 200, "webhooktask").await;
    let admin = app.admin().get("/admin/v1/account/acme/webhook/task").await;
    assert_valid_as(&app, &admin, 200, "webhooktasks").await;
    let resumed = acme.post(&format!("{path}/resume"), json!({})).await;
    assert_valid_as(&app, &resumed, 200, "webhookendpoint").await;
}
