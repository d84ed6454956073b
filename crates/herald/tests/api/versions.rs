//! Webhook format versions: an endpoint's `version`, the version-2 body with the application
//! as the event's own transaction saw it, the catalogue's schema for each version checked
//! against what is really sent, the history showing the body sent, and support deprecating a
//! version.

use serde_json::json;

use crate::delivery::{move_on, subscribe, tasks};
use crate::helpers::{spawn_app, spawn_stepped_app};
use crate::receiver::{Answer, Received, TestReceiver};

#[tokio::test]
async fn version_is_saved_shown_changed_and_validated() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let plain = subscribe(&acme, "https://example.com/one", json!({})).await;
    assert_eq!(plain["version"], "1", "version 1 unless asked");
    let two = subscribe(&acme, "https://example.com/two", json!({"version": "2"})).await;
    assert_eq!(two["version"], "2");
    let path = two["_self"].as_str().unwrap();
    let back = acme.patch(path, json!({"version": "1"})).await;
    assert_eq!(back.body["version"], "1", "{}", back.text);
    for bad in [json!("3"), json!("v2"), json!(2)] {
        let refused = acme.patch(path, json!({ "version": bad })).await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.text);
        assert!(
            refused.text.contains("version") || refused.text.contains("string"),
            "{}",
            refused.text
        );
    }
    assert_eq!(acme.get(path).await.body["version"], "1", "refusals change nothing");
}

/// The received calls whose body says `event`, in the order they came.
fn of_type<'a>(calls: &'a [Received], key: &str, event: &str) -> Vec<&'a Received> {
    calls.iter().filter(|c| c.json()[key] == event).collect()
}

#[tokio::test]
async fn each_step_change_carries_its_own_step_even_when_the_calls_come_later() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let (one, two) = (TestReceiver::start().await, TestReceiver::start().await);
    let events = json!({"events": ["ProcessStepChange"]});
    subscribe(&acme, &one.url(), events.clone()).await;
    let mut v2 = events.clone();
    v2["version"] = json!("2");
    let endpoint = subscribe(&acme, &two.url(), v2).await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    // Two moves before any call is made: each event keeps the application as it was then.
    for step in [steps[1], steps[2]] {
        move_on(&acme, application, step).await;
    }
    assert_eq!(app.step().await, 4);
    let (old, new) = (one.received(), two.received());
    assert_eq!((old.len(), new.len()), (2, 2));
    let verifier = standardwebhooks::Webhook::new(endpoint["secret"].as_str().unwrap()).unwrap();
    for call in &new {
        let body = call.json();
        verifier
            .verify(&call.body, &call.headers)
            .expect("a version-2 call is signed alike");
        assert_eq!(body["type"], "ProcessStepChange");
        let snapshot = &body["data"]["application"];
        assert_eq!(snapshot["id"], application);
        assert_eq!(
            snapshot["step"]["id"], body["data"]["to"]["id"],
            "the application at this event's step, not a later one: {body}"
        );
        let visits = snapshot["steps"]["items"].as_array().unwrap().len();
        let expected = if body["data"]["to"]["id"] == steps[1] { 2 } else { 3 };
        assert_eq!(visits, expected, "{body}");
        // The same event as version 1 sent: same id, same moment, same data.
        let twin = old
            .iter()
            .find(|c| c.header("webhook-id") == call.header("webhook-id"))
            .unwrap();
        let v1 = twin.json();
        assert_eq!(body["id"], v1["id"]);
        assert_eq!(body["data"]["to"], v1["data"]["to"]);
        assert!(body.get("event").is_none() && body.get("datetime").is_none(), "{body}");
        assert_eq!(v1["application"]["_self"], snapshot["_self"]);
        let timestamp = body["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z') && timestamp.len() == 20, "{timestamp}");
    }
    // The last snapshot is what the REST API answers now, without the envelope.
    let mut now = acme.get(&format!("/restapi/v1/application/{application}")).await.body;
    now.as_object_mut()
        .unwrap()
        .retain(|k, _| k != "_status" && k != "_schema");
    let last = new
        .iter()
        .map(Received::json)
        .find(|b| b["data"]["to"]["id"] == steps[2])
        .unwrap();
    assert_eq!(last["data"]["application"], now);

    // The history shows the very body each endpoint was sent.
    for task in tasks(&acme, 4).await {
        let detail = acme.get(task["_self"].as_str().unwrap()).await.body;
        let sent = detail["request"]["body"].as_str().unwrap();
        let received = one.received().into_iter().chain(two.received());
        assert!(
            received.into_iter().any(|c| c.body == sent.as_bytes()),
            "the history's body is one that was sent: {sent}"
        );
    }
}

#[tokio::test]
async fn every_call_matches_the_catalogues_schema_of_its_version() {
    let app = spawn_stepped_app(|c| c.suspension.after_failures = 2).await;
    let acme = app.new_account("acme").await;
    let admin = app.admin();
    let custom = json!({"name": "CandidateUpdate", "description": "A candidate changed.",
                        "schema": {"type": "object", "required": ["field"],
                                   "properties": {"field": {"type": "string"}}}});
    assert_eq!(admin.post("/admin/v1/event-type", custom).await.status, 201);
    let events = json!([
        "ApplicationCreate",
        "ProcessStepChange",
        "ApplicationDelete",
        "CandidateUpdate",
        "EndpointSuspended"
    ]);
    let (one, two) = (TestReceiver::start().await, TestReceiver::start().await);
    subscribe(&acme, &one.url(), json!({ "events": events })).await;
    let v2 = subscribe(&acme, &two.url(), json!({"events": events, "version": "2"})).await;
    let failing = TestReceiver::start().await;
    failing.otherwise(Answer::Status(500, "down"));
    subscribe(&acme, &failing.url(), json!({"events": ["ApplicationCreate"]})).await;

    let application = acme.new_application().await;
    acme.new_application().await;
    let steps = acme.step_ids().await;
    move_on(&acme, application, steps[1]).await;
    for body in [
        json!({"event": "CandidateUpdate", "application": application, "data": {"field": "email"}}),
        json!({"event": "CandidateUpdate", "data": {"field": "phone"}}),
    ] {
        assert_eq!(admin.post("/admin/v1/account/acme/event", body).await.status, 201);
    }
    let test = acme
        .post(&format!("{}/test", v2["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(test.status, 200, "{}", test.text);
    let deleted = acme.delete(&format!("/restapi/v1/application/{application}")).await;
    assert_eq!(deleted.status, 204);
    // The failing endpoint's two failures suspend it: EndpointSuspended is told.
    app.step().await;
    app.step().await;

    let catalogue = acme.get("/restapi/v1/webhook/event?limit=100").await.body;
    let schema_of = |event: &str, version: &str| -> jsonschema::Validator {
        let item = catalogue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == event);
        let schema = &item.unwrap_or_else(|| panic!("{event} in the catalogue"))["schemas"][version];
        jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("{event} v{version}: {e}"))
    };
    let mut seen = Vec::new();
    for (receiver, version, key) in [(&one, "1", "event"), (&two, "2", "type")] {
        for call in receiver.received() {
            let body = call.json();
            let event = body[key].as_str().unwrap().to_owned();
            let errors: Vec<String> = schema_of(&event, version)
                .iter_errors(&body)
                .map(|e| format!("{} at {}", e, e.instance_path))
                .collect();
            assert!(errors.is_empty(), "version {version}: {body}: {errors:?}");
            seen.push(format!("{event} v{version}"));
        }
    }
    for expected in [
        "ApplicationCreate",
        "ProcessStepChange",
        "ApplicationDelete",
        "CandidateUpdate",
        "EndpointSuspended",
    ] {
        for version in ["1", "2"] {
            let wanted = format!("{expected} v{version}");
            assert!(seen.contains(&wanted), "{wanted} was sent: {seen:?}");
        }
    }
    assert!(seen.contains(&"WebhookTest v2".to_owned()), "{seen:?}");
    // A version-2 schema is strict where it should be: a body without its snapshot fails.
    let sent = two.received();
    let created = of_type(&sent, "type", "ApplicationCreate")[0].json();
    let mut stripped = created.clone();
    stripped["data"].as_object_mut().unwrap().remove("application");
    assert!(!schema_of("ApplicationCreate", "2").is_valid(&stripped));
    assert!(
        !schema_of("ApplicationCreate", "1").is_valid(&created),
        "versions differ"
    );
    // The operational event carries its endpoint in data; the published ones their
    // application only when they name one.
    let suspended = of_type(&sent, "type", "EndpointSuspended")[0].json();
    assert!(suspended["data"]["endpoint"]["_self"].is_string(), "{suspended}");
    let updates = of_type(&sent, "type", "CandidateUpdate");
    let with: Vec<bool> = updates
        .iter()
        .map(|c| c.json()["data"]["application"].is_object())
        .collect();
    assert_eq!(with.iter().filter(|w| **w).count(), 1, "{with:?}");
    let deleted = of_type(&sent, "type", "ApplicationDelete")[0].json();
    assert_eq!(
        deleted["data"]["application"]["step"]["id"], steps[1],
        "as it was when deleted"
    );
}

#[tokio::test]
async fn deprecating_a_version_tells_its_accounts_and_marks_its_calls() {
    let app = spawn_stepped_app(|_| {}).await;
    let support = app.admin();
    let acme = app.new_account("acme").await;
    let beta = app.new_account("beta").await;
    let (old, new, other) = (
        TestReceiver::start().await,
        TestReceiver::start().await,
        TestReceiver::start().await,
    );
    let told = json!(["ApplicationCreate", "WebhookVersionDeprecated"]);
    let on_one = subscribe(&acme, &old.url(), json!({ "events": told })).await;
    subscribe(
        &acme,
        &new.url(),
        json!({"events": ["ApplicationCreate"], "version": "2"}),
    )
    .await;
    subscribe(&beta, &other.url(), json!({"events": told, "version": "2"})).await;
    assert!(acme.get("/restapi/v1").await.body["_expiration"].is_null());

    for (path, body, status) in [
        (
            "/admin/v1/webhook-version/3/deprecate",
            json!({"sunset": "2030-01-01"}),
            404,
        ),
        (
            "/admin/v1/webhook-version/1/deprecate",
            json!({"sunset": "2020-01-01"}),
            422,
        ),
        ("/admin/v1/webhook-version/1/deprecate", json!({"sunset": "soon"}), 422),
        ("/admin/v1/webhook-version/1/deprecate", json!({}), 422),
    ] {
        let refused = support.post(path, body.clone()).await;
        assert_eq!(refused.status, status, "{path} {body}: {}", refused.text);
    }
    assert!(
        acme.post("/admin/v1/webhook-version/1/deprecate", json!({"sunset": "2030-01-01"}))
            .await
            .status
            == 401
    );
    assert_eq!(app.step().await, 0, "refusals tell no one");

    let deprecated = support
        .post("/admin/v1/webhook-version/1/deprecate", json!({"sunset": "2030-01-01"}))
        .await;
    assert_eq!(deprecated.status, 200, "{}", deprecated.text);
    assert_eq!(deprecated.body["version"], "1");
    assert_eq!(deprecated.body["sunset"], "2030-01-01");
    assert!(deprecated.body["deprecated"].is_string());
    let listed = support.get("/admin/v1/webhook-version").await.body;
    assert_eq!(listed["items"][0]["sunset"], "2030-01-01");
    assert!(listed["items"][1]["sunset"].is_null(), "version 2 is not deprecated");
    assert_eq!(acme.get("/restapi/v1").await.body["_expiration"], "2030-01-01");
    assert!(
        beta.get("/restapi/v1").await.body["_expiration"].is_null(),
        "beta has no endpoint on version 1"
    );

    // Acme's version-1 endpoint hears of it; beta has nothing on version 1.
    assert_eq!(app.step().await, 1);
    let news = old.received()[0].json();
    assert_eq!(news["event"], "WebhookVersionDeprecated");
    assert_eq!(
        news["data"],
        json!({"version": "1", "sunset": "2030-01-01", "endpoints": [{"_self": on_one["_self"]}]})
    );
    assert!(other.received().is_empty());

    // Calls in version 1 say so; calls in version 2 do not.
    acme.new_application().await;
    assert_eq!(app.step().await, 2);
    let call = old.received().pop().unwrap();
    let since = call.header("deprecation").to_owned();
    assert!(since.starts_with('@') && since[1..].parse::<i64>().is_ok(), "{since}");
    assert_eq!(call.header("sunset"), "Tue, 01 Jan 2030 00:00:00 GMT");
    let plain = new.received().pop().unwrap();
    assert!(plain.headers.get("deprecation").is_none() && plain.headers.get("sunset").is_none());
    // The history shows them with the call.
    let listed = tasks(&acme, 3).await;
    let task = listed
        .iter()
        .find(|t| t["endpoint"]["id"] == on_one["id"] && t["event"] == "ApplicationCreate")
        .unwrap();
    let detail = acme.get(task["_self"].as_str().unwrap()).await.body;
    assert_eq!(
        detail["request"]["headers"]["sunset"], "Tue, 01 Jan 2030 00:00:00 GMT",
        "{detail}"
    );

    // The same sunset again is no news; another one is, and the deprecation keeps its time.
    support
        .post("/admin/v1/webhook-version/1/deprecate", json!({"sunset": "2030-01-01"}))
        .await;
    assert_eq!(app.step().await, 0);
    app.advance(std::time::Duration::from_secs(5));
    let moved = support
        .post("/admin/v1/webhook-version/1/deprecate", json!({"sunset": "2031-06-30"}))
        .await;
    assert_eq!(moved.body["deprecated"], deprecated.body["deprecated"]);
    assert_eq!(app.step().await, 1);
    assert_eq!(old.received().pop().unwrap().json()["data"]["sunset"], "2031-06-30");
    acme.new_application().await;
    app.step().await;
    let call = old.received().pop().unwrap();
    assert_eq!(call.header("deprecation"), since, "the time it was first deprecated");
    assert_eq!(call.header("sunset"), "Mon, 30 Jun 2031 00:00:00 GMT");

    // Undone: calls are plain again, and the root no longer announces an end.
    let undone = support.delete("/admin/v1/webhook-version/1/deprecate").await;
    assert_eq!(undone.status, 200, "{}", undone.text);
    assert!(undone.body["sunset"].is_null());
    assert!(acme.get("/restapi/v1").await.body["_expiration"].is_null());
    acme.new_application().await;
    app.step().await;
    assert!(old.received().pop().unwrap().headers.get("deprecation").is_none());
}
