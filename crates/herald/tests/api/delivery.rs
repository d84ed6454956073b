//! The delivery engine end to end: real calls to a real receiver on loopback, signed,
//! recorded in the history, retried, and kept apart per endpoint.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Api, TestApp, spawn_app, spawn_app_with, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver, closing_server, dripping_server};

pub const WAIT: Duration = Duration::from_secs(10);

/// Subscribes `url` to every event; returns the endpoint resource as created (with secret).
pub async fn subscribe(api: &Api<'_>, url: &str, extra: Value) -> Value {
    let mut body = json!({"url": url, "events": ["*"]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let created = api.post("/restapi/v1/webhook/endpoint", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.body
}

/// Moves the application one step on; returns when the API answered.
pub async fn move_on(api: &Api<'_>, application: i64, step: i64) -> Instant {
    let moved = api
        .post(
            "/restapi/v1/step",
            json!({"application_id": application, "process_step_id": step}),
        )
        .await;
    assert_eq!(moved.status, 201, "{}", moved.text);
    Instant::now()
}

/// Waits until the history holds `count` tasks. (The server's own loop records calls just
/// after they end, on real time: polling is how a test sees that, on a stepped app too.)
pub async fn tasks(api: &Api<'_>, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = api.get("/restapi/v1/webhook/task?limit=100").await;
        let items = page.body["items"].as_array().unwrap().clone();
        if items.len() >= count {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{count} tasks expected, {} recorded",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_step_change_is_posted_signed_with_the_spec_body_and_headers() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(
        &acme,
        &receiver.url(),
        json!({"events": ["ProcessStepChange"], "auth": {"type": "basic", "username": "hook", "password": "s3cret"}}),
    )
    .await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    let answered = move_on(&acme, application, steps[1]).await;

    let call = receiver.wait_for(1, WAIT).await.remove(0);
    let latency = call.at.duration_since(answered);
    assert!(
        latency < Duration::from_secs(1),
        "the dispatcher is woken at once, not by a timer: {latency:?}"
    );
    let body = call.json();
    assert_eq!(body["event"], "ProcessStepChange");
    assert_eq!(
        body["application"],
        json!({"_self": format!("/restapi/v1/application/{application}")})
    );
    assert_eq!(body["data"]["from"], json!({"id": steps[0], "name": "New"}));
    assert_eq!(body["data"]["to"], json!({"id": steps[1], "name": "Screening"}));
    assert_eq!(call.header("webhook-id"), body["id"].as_str().unwrap());
    assert_eq!(call.header("content-type"), "application/json");
    assert!(call.header("user-agent").starts_with("Herald/"));
    assert_eq!(call.header("authorization"), "Basic aG9vazpzM2NyZXQ=");
    // Verified by the Standard Webhooks library, not by our own code.
    let verifier = standardwebhooks::Webhook::new(endpoint["secret"].as_str().unwrap()).unwrap();
    verifier
        .verify(&call.body, &call.headers)
        .expect("the signature verifies");
    let wrong = standardwebhooks::Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert!(wrong.verify(&call.body, &call.headers).is_err());
    // Only the subscribed type was sent: ApplicationCreate went nowhere.
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn every_call_is_a_task_in_the_seed_shape_with_the_request_masked() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "Server Error")]);
    let auth = json!({"type": "bearer", "token": "t0p-s3cret"});
    subscribe(
        &acme,
        &receiver.url(),
        json!({"events": ["ApplicationCreate"], "auth": auth}),
    )
    .await;
    let application = acme.new_application().await;
    receiver.wait_for(1, WAIT).await;

    let items = tasks(&acme, 1).await;
    let task = &items[0];
    assert_eq!(task["event"], "ApplicationCreate");
    assert_eq!(task["response_status"], 500);
    assert_eq!(task["response_body"], "Server Error");
    assert_eq!(
        task["application"],
        json!({"_self": format!("/restapi/v1/application/{application}")})
    );
    let datetime = task["datetime"].as_str().unwrap();
    assert!(datetime.len() == 19 && datetime.as_bytes()[10] == b' ', "{datetime}");
    assert_eq!(task["attempt"], 1);
    assert!(task["error"].as_str().unwrap().starts_with("http_status"));

    let detail = acme.get(task["_self"].as_str().unwrap()).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let request = &detail.body["request"];
    assert_eq!(request["headers"]["authorization"], "Bearer ********");
    assert!(
        !detail.text.contains("t0p-s3cret"),
        "credentials never appear in the history"
    );
    assert_eq!(request["headers"]["webhook-id"], task["event_id"]);
    let sent: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent["id"], task["event_id"]);
    // Support sees the same history.
    let admin = app.admin().get("/admin/v1/account/acme/webhook/task").await;
    assert_eq!(admin.body["items"][0]["event_id"], task["event_id"]);
}

#[tokio::test]
async fn a_failed_call_is_retried_on_the_schedule_with_the_same_webhook_id() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10), Duration::from_secs(20)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "boom"), Answer::Status(503, "busy")]);
    subscribe(&acme, &receiver.url(), json!({})).await;
    acme.new_application().await;

    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(9));
    assert_eq!(app.step().await, 0, "the first retry waits its 10 s");
    app.advance(Duration::from_secs(2));
    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(19));
    assert_eq!(app.step().await, 0, "the second waits its 20 s");
    app.advance(Duration::from_secs(2));
    assert_eq!(app.step().await, 1);
    let calls = receiver.received();
    let ids: Vec<&str> = calls.iter().map(|c| c.header("webhook-id")).collect();
    assert!(
        ids.len() == 3 && ids.iter().all(|id| *id == ids[0]),
        "retries carry the same webhook-id: {ids:?}"
    );
    let items = tasks(&acme, 3).await;
    let statuses: Vec<i64> = items.iter().map(|t| t["response_status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [200, 503, 500], "newest first");
    let attempts: Vec<i64> = items.iter().map(|t| t["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts, [3, 2, 1]);
}

#[tokio::test]
async fn calls_that_get_no_answer_are_recorded_with_status_0_and_the_reason() {
    let app = spawn_app_with(|c| {
        c.delivery.timeout = Duration::from_millis(300);
        c.delivery.retry_schedule = vec![];
    })
    .await;
    let acme = app.new_account("acme").await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    // A port nothing listens on: bind one, then close it.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    subscribe(&acme, &hanging.url(), json!({"description": "hangs"})).await;
    subscribe(
        &acme,
        &format!("http://{closed}/hook"),
        json!({"description": "refuses"}),
    )
    .await;
    // TLS spoken to a server that answers in plain HTTP.
    let plain = TestReceiver::start().await;
    let plain_url = plain.url().replacen("http://", "https://", 1);
    subscribe(&acme, &plain_url, json!({"description": "no TLS"})).await;
    acme.new_application().await;

    let items = tasks(&acme, 3).await;
    let mut errors: Vec<String> = items
        .iter()
        .map(|t| {
            assert_eq!(t["response_status"], 0, "{t}");
            assert_eq!(t["response_body"], t["error"], "{t}");
            t["error"].as_str().unwrap().split(':').next().unwrap().to_owned()
        })
        .collect();
    errors.sort();
    assert_eq!(errors, ["connection_refused", "timeout", "tls"]);
    let timed_out = items
        .iter()
        .find(|t| t["error"].as_str().unwrap().starts_with("timeout"))
        .unwrap();
    let took = timed_out["duration_ms"].as_i64().unwrap();
    assert!((250..2000).contains(&took), "the time-out ends the call: {took} ms");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_a_healthy_one() {
    let app = spawn_app_with(|c| {
        c.delivery.timeout = Duration::from_secs(5);
        c.delivery.max_in_flight_per_endpoint = 2;
        c.delivery.max_in_flight = 8;
    })
    .await;
    let acme = app.new_account("acme").await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    let fast = TestReceiver::start().await;
    subscribe(&acme, &hanging.url(), json!({})).await;
    subscribe(&acme, &fast.url(), json!({})).await;
    let steps = acme.step_ids().await;
    let started = Instant::now();
    let application = acme.new_application().await;
    for step in [1, 2, 3, 4, 5, 1, 2, 3] {
        move_on(&acme, application, steps[step]).await;
    }
    let calls = fast.wait_for(9, WAIT).await;
    // The hanging calls end at their 5 s time-out; the fast endpoint must not wait for them.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the fast endpoint got every event while the other hung"
    );
    assert_eq!(calls.len(), 9);
    assert_eq!(
        hanging.received().len(),
        2,
        "the hanging endpoint holds only its own two slots"
    );
}

#[tokio::test]
async fn retry_calls_the_endpoint_again_now() {
    let app = spawn_app_with(|c| c.delivery.retry_schedule = vec![]).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down")]);
    subscribe(&acme, &receiver.url(), json!({})).await;
    acme.new_application().await;
    let items = tasks(&acme, 1).await;
    assert_eq!(items[0]["response_status"], 500);

    let retried = acme
        .post(&format!("{}/retry", items[0]["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    let calls = receiver.wait_for(2, WAIT).await;
    assert_eq!(calls[0].header("webhook-id"), calls[1].header("webhook-id"));
    let items = tasks(&acme, 2).await;
    assert_eq!(items[0]["response_status"], 200);
    assert_eq!(
        acme.post("/restapi/v1/webhook/task/999/retry", json!({})).await.status,
        404
    );
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_the_metrics_count_calls() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(410, "gone")]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({})).await;
    acme.new_application().await;
    tasks(&acme, 1).await;
    let read = acme.get(endpoint["_self"].as_str().unwrap()).await;
    assert_eq!(read.body["state"], "disabled");
    // Nothing is dropped: a new event waits for the endpoint to be resumed.
    acme.new_application().await;
    let metrics = app.anonymous().get("/metrics").await.text;
    assert!(
        metrics.contains("herald_calls_total{outcome=\"gone\",error=\"gone\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("herald_endpoints_suspended{state=\"disabled\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("herald_deliveries_waiting 2"), "{metrics}");
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_redirects_are_not_followed() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(3600), Duration::from_secs(3600)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Redirect, Answer::RetryAfter(429, 1)]);
    subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    acme.new_application_for_new_candidate().await;

    assert_eq!(app.step().await, 2, "a redirect and a 429");
    app.advance(Duration::from_millis(500));
    assert_eq!(app.step().await, 0, "not before the Retry-After of 1 s");
    app.advance(Duration::from_secs(1));
    assert_eq!(
        app.step().await,
        1,
        "the 429 after its Retry-After, not the schedule's hour"
    );
    assert_eq!(app.step().await, 0, "the redirect waits for the schedule");
    let items = tasks(&acme, 3).await;
    let redirected = items
        .iter()
        .find(|t| t["response_status"] == 302)
        .expect("the redirect is a task");
    assert!(
        redirected["error"].as_str().unwrap().starts_with("redirect"),
        "{redirected}"
    );
    let limited = items
        .iter()
        .find(|t| t["response_status"] == 429)
        .expect("the 429 is a task");
    let again = receiver
        .received()
        .iter()
        .filter(|c| c.header("webhook-id") == limited["event_id"].as_str().unwrap())
        .count();
    assert_eq!(again, 2, "the call after the Retry-After was the 429'd event's");
}

#[tokio::test]
async fn a_delivery_that_exhausts_its_schedule_is_marked_failed() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 1);
    let items = tasks(&acme, 2).await;
    assert!(items.iter().all(|t| t["delivery"] == "failed"), "{items:?}");
    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(app.step().await, 0, "a failed delivery is not called again by itself");

    receiver.otherwise(Answer::Status(200, "ok"));
    acme.post(&format!("{}/retry", items[0]["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(app.step().await, 1, "but it is when someone retries it");
    let items = tasks(&acme, 3).await;
    assert_eq!(items[0]["delivery"], "succeeded");
    assert_eq!(items[0]["attempt"], 3);
}

#[tokio::test]
async fn answers_are_kept_up_to_16_kib_and_a_closed_connection_is_status_0() {
    let app = spawn_app_with(|c| c.delivery.retry_schedule = vec![]).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Large(500, 100 * 1024)]);
    subscribe(&acme, &receiver.url(), json!({"description": "large"})).await;
    subscribe(
        &acme,
        &format!("http://{}/hook", closing_server().await),
        json!({"description": "closes"}),
    )
    .await;
    acme.new_application().await;
    let items = tasks(&acme, 2).await;
    let large = items
        .iter()
        .find(|t| t["response_status"] == 500)
        .expect("the large answer is a task");
    assert_eq!(large["response_body"].as_str().unwrap().len(), 16 * 1024);
    let closed = items
        .iter()
        .find(|t| t["response_status"] == 0)
        .expect("the closed connection is a task");
    let code = closed["error"].as_str().unwrap().split(':').next().unwrap();
    assert_eq!(code, "connection_reset", "{closed}");
}

#[tokio::test]
async fn the_history_filters_by_event_status_application_endpoint_and_time() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let ok = TestReceiver::start().await;
    let failing = TestReceiver::start().await;
    failing.otherwise(Answer::Status(500, "no"));
    let ok_endpoint = subscribe(&acme, &ok.url(), json!({})).await;
    subscribe(&acme, &failing.url(), json!({"events": ["ProcessStepChange"]})).await;
    let first = acme.new_application().await;
    let second = acme.new_application_for_new_candidate().await;
    let steps = acme.step_ids().await;
    move_on(&acme, first, steps[1]).await;
    let all = tasks(&acme, 4).await;
    assert_eq!(
        all.len(),
        4,
        "two creations and a move to one endpoint, the move to the other"
    );

    assert_eq!(count_tasks(&app, "event=ProcessStepChange").await, 2);
    assert_eq!(count_tasks(&app, "response_status=500").await, 1);
    assert_eq!(count_tasks(&app, &format!("application={second}")).await, 1);
    assert_eq!(
        count_tasks(&app, &format!("endpoint={}", ok_endpoint["id"].as_str().unwrap())).await,
        3
    );
    assert_eq!(count_tasks(&app, "from=2000-01-01%2000:00:00").await, 4);
    assert_eq!(count_tasks(&app, "to=2000-01-01T00:00:00Z").await, 0);
    assert_eq!(
        count_tasks(&app, "event=ProcessStepChange&response_status=200").await,
        1
    );
    assert_eq!(acme_get(&app, "from=yesterday").await.status, 400);
    assert_eq!(acme_get(&app, "response_status=abc").await.status, 400);
}

/// How many tasks the history lists for a query.
async fn count_tasks(app: &TestApp, query: &str) -> usize {
    let page = acme_get(app, query).await;
    assert_eq!(page.status, 200, "{query}: {}", page.text);
    page.body["items"].as_array().unwrap().len()
}

async fn acme_get(app: &TestApp, query: &str) -> crate::helpers::Reply {
    app.as_account("acme", crate::helpers::PASSWORD)
        .get(&format!("/restapi/v1/webhook/task?{query}"))
        .await
}

#[tokio::test]
async fn a_call_to_an_internal_address_is_blocked_even_if_it_was_stored() {
    let app = spawn_app_with(|c| {
        c.allow_private_targets = false;
        c.delivery.retry_schedule = vec![];
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    // Saved through the API, a loopback URL is refused...
    let refused = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": receiver.url(), "events": ["*"]}),
        )
        .await;
    assert_eq!(refused.code(), "forbidden_target");
    // ...and one that reached the database some other way is still never called: by its
    // IP literal, or by a name that resolves to this machine.
    for (id, url) in [
        ("ep_literal", receiver.url()),
        ("ep_name", format!("http://localhost:{}/hook", receiver.addr.port())),
    ] {
        app.db()
            .execute(&format!(
                "INSERT INTO endpoints (id, account_id, url, description, events, ordering, auth, secret, state,
                     consecutive_failures, created_at, updated_at)
                 VALUES ('{id}', 1, '{url}', '', '[\"*\"]', 'parallel', NULL,
                     'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD', 'active', 0, 0, 0)"
            ))
            .await;
    }
    acme.new_application().await;
    let items = tasks(&acme, 2).await;
    for task in &items {
        assert_eq!(task["response_status"], 0, "{task}");
        assert!(task["error"].as_str().unwrap().starts_with("blocked:"), "{task}");
    }
    assert!(receiver.received().is_empty(), "no call reached the internal address");
}

#[tokio::test]
async fn a_slow_drip_endpoint_holds_a_call_no_longer_than_the_time_out() {
    let app = spawn_app_with(|c| {
        c.delivery.timeout = Duration::from_millis(500);
        c.delivery.retry_schedule = vec![];
    })
    .await;
    let acme = app.new_account("acme").await;
    subscribe(&acme, &format!("http://{}/hook", dripping_server().await), json!({})).await;
    acme.new_application().await;
    let task = tasks(&acme, 1).await.remove(0);
    let took = task["duration_ms"].as_i64().unwrap();
    assert!(
        (450..1500).contains(&took),
        "the call was cut at the time-out: {took} ms"
    );
    assert_eq!(task["response_status"], 500);
    assert!(
        task["response_body"].as_str().unwrap().len() < 16,
        "only what dripped in time"
    );
}

#[tokio::test]
async fn a_retry_falls_due_on_time_while_another_endpoint_hangs() {
    let app = spawn_app_with(|c| {
        c.delivery.timeout = Duration::from_secs(20);
        c.delivery.retry_schedule = vec![Duration::from_millis(300)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    let flaky = TestReceiver::start().await;
    flaky.script([Answer::Status(500, "once")]);
    subscribe(&acme, &hanging.url(), json!({"events": ["ApplicationCreate"]})).await;
    subscribe(&acme, &flaky.url(), json!({"events": ["ProcessStepChange"]})).await;
    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;
    flaky.wait_for(1, WAIT).await;
    // While the step change waits for its retry, a new call starts, and hangs.
    acme.new_application_for_new_candidate().await;
    hanging.wait_for(2, WAIT).await;
    let calls = flaky.wait_for(2, Duration::from_secs(5)).await;
    let gap = calls[1].at.duration_since(calls[0].at);
    assert!(
        gap < Duration::from_secs(2),
        "the retry came {gap:?} after the failure, not when the hanging call ended"
    );
}

/// Calls go straight to the endpoint, whatever proxies the server's environment names: a
/// proxy would resolve the endpoint's name where the guard cannot check it. The server is a
/// real process, since only a process has an environment of its own.
#[tokio::test]
async fn calls_go_straight_to_the_endpoint_whatever_proxy_the_environment_names() {
    let db = crate::db::TestDb::new().await;
    // A proxy that takes connections and never answers: a call sent through it would time out.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let receiver = TestReceiver::start().await;
    let listen = format!("127.0.0.1:{}", crate::helpers::free_port());
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    server
        .args([
            "serve",
            "--listen",
            &listen,
            "--admin-token",
            crate::helpers::ADMIN_TOKEN,
        ])
        .arg("--database")
        .arg(&db.url)
        .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
        .env("HERALD_DELIVERY_TIMEOUT", "2s")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        server.env(name, &proxy_url);
    }
    let _server = crate::helpers::Process::new(server.spawn().expect("the herald binary starts"));
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    herald::bench::wait_healthy(&client, &base)
        .await
        .expect("herald starts");
    let account = json!({"login": "acme", "password": "correct horse"});
    let created = client
        .post(format!("{base}/admin/v1/account"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let acme = |path: &str| {
        client
            .post(format!("{base}{path}"))
            .basic_auth("acme", Some("correct horse"))
    };
    let endpoint: Value = acme("/restapi/v1/webhook/endpoint")
        .json(&json!({"url": receiver.url(), "events": ["*"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = endpoint["id"].as_str().unwrap();
    let sent = acme(&format!("/restapi/v1/webhook/endpoint/{id}/test"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);

    let calls = receiver.wait_for(1, WAIT).await;
    assert_eq!(calls.len(), 1, "the test event reached the endpoint");
    let through_proxy = proxy.accept();
    assert!(
        through_proxy.is_err(),
        "a call went to the proxy: {:?}",
        through_proxy.map(|(_, from)| from)
    );
}
