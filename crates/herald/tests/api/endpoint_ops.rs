//! What happens to an endpoint over time: suspension and resumption, FIFO order, test calls,
//! replays, retention and secret rotation. Most run on a manual clock, delivering a step at a
//! time (`spawn_stepped_app`): time moves when the test moves it.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::delivery::{WAIT, move_on, subscribe, tasks};
use crate::helpers::{spawn_app, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver};

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_suspended_probed_and_resumed() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10); 20];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 3;
        c.suspension.first = Duration::from_secs(60);
        c.suspension.max = Duration::from_secs(300);
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    acme.new_application().await;
    acme.new_application_for_new_candidate().await;

    assert_eq!(app.step().await, 2, "both events are called, and fail");
    assert_eq!(app.step().await, 0, "their retries are 10 s away");
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 2, "both retries fail");
    let suspended = acme.get(path).await.body;
    assert_eq!(suspended["state"], "suspended", "{suspended}");
    assert_eq!(suspended["consecutive_failures"], 4, "{suspended}");
    assert!(suspended["suspended_until"].is_string());

    app.advance(Duration::from_secs(11));
    assert_eq!(
        app.step().await,
        0,
        "no call while suspended, though both retries are due"
    );
    app.advance(Duration::from_secs(50));
    assert_eq!(app.step().await, 1, "the 60 s cool-down ends with one probe");
    let renewed = acme.get(path).await.body;
    assert_eq!(renewed["state"], "suspended", "the probe failed: {renewed}");
    assert_eq!(renewed["consecutive_failures"], 5);
    assert_ne!(renewed["suspended_until"], suspended["suspended_until"]);
    assert_eq!(app.step().await, 0, "one probe, not a flood");
    app.advance(Duration::from_secs(119));
    assert_eq!(app.step().await, 0, "the second cool-down is twice the first");

    // The endpoint recovers: the next probe succeeds and everything waiting goes out.
    receiver.otherwise(Answer::Status(200, "ok"));
    app.advance(Duration::from_secs(2));
    assert_eq!(app.step().await, 1, "the next probe");
    let active = acme.get(path).await.body;
    assert_eq!(active["state"], "active", "{active}");
    assert_eq!(active["consecutive_failures"], 0);
    assert!(active["suspended_until"].is_null());
    assert_eq!(app.step().await, 1, "then the other event, which waited");
    let delivered = tasks(&acme, 7)
        .await
        .iter()
        .filter(|t| t["response_status"] == 200)
        .count();
    assert_eq!(delivered, 2, "both events are delivered once the endpoint recovers");
    assert_eq!(
        receiver.received().len(),
        7,
        "2 calls, 2 retries, 2 probes and the last event"
    );
}

#[tokio::test]
async fn a_disabled_endpoint_is_resumed_by_hand_and_gets_what_waited() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(410, "gone")]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    assert_eq!(acme.get(path).await.body["state"], "disabled");
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 0, "nothing is called while disabled");
    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(app.step().await, 0, "nor a day later: only a person resumes it");

    let resumed = acme.post(&format!("{path}/resume"), json!({})).await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert_eq!(resumed.body["state"], "active");
    assert_eq!(app.step().await, 2);
    let calls = receiver.received();
    let distinct: std::collections::HashSet<&str> = calls.iter().map(|c| c.header("webhook-id")).collect();
    assert_eq!(distinct.len(), 2, "the 410'd event and the one that waited both arrive");
}

#[tokio::test]
async fn a_fifo_endpoint_gets_each_applications_events_in_order() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "not yet")]);
    subscribe(
        &acme,
        &receiver.url(),
        json!({"events": ["ProcessStepChange"], "ordering": "fifo"}),
    )
    .await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    for step in &steps[1..4] {
        move_on(&acme, application, *step).await;
    }
    assert_eq!(app.step().await, 1, "only the application's oldest event is called");
    assert_eq!(app.step().await, 0, "the next waits for the retry of the first");
    app.advance(Duration::from_secs(11));
    for n in 2..=4 {
        assert_eq!(app.step().await, 1, "call {n}: one at a time");
    }
    assert_eq!(app.step().await, 0);
    let order: Vec<String> = receiver
        .received()
        .iter()
        .map(|c| c.json()["data"]["to"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        ["Screening", "Screening", "Interview", "Offer"],
        "the next waits for the previous"
    );
}

#[tokio::test]
async fn a_change_of_ordering_applies_to_the_deliveries_already_waiting() {
    let app = spawn_stepped_app(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "not yet")]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    for step in &steps[1..4] {
        move_on(&acme, application, *step).await;
    }
    // Written while the endpoint took its calls in parallel.
    let fifo = acme.patch(path, json!({"ordering": "fifo"})).await;
    assert_eq!(fifo.status, 200, "{}", fifo.text);
    assert_eq!(app.step().await, 1, "only the application's oldest event is called");
    assert_eq!(app.step().await, 0, "the others wait for its retry");

    let parallel = acme.patch(path, json!({"ordering": "parallel"})).await;
    assert_eq!(parallel.status, 200, "{}", parallel.text);
    assert_eq!(app.step().await, 2, "the two that waited, together");
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 1, "then the retry");
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn a_retried_task_goes_before_its_applications_later_events_on_a_fifo_endpoint() {
    let app = spawn_stepped_app(|c| c.delivery.retry_schedule = vec![]).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down")]);
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    move_on(&acme, application, steps[1]).await;
    assert_eq!(app.step().await, 1, "the call fails, with no retry left");
    // The endpoint is made FIFO after its delivery failed, and the application moves on.
    let fifo = acme
        .patch(endpoint["_self"].as_str().unwrap(), json!({"ordering": "fifo"}))
        .await;
    assert_eq!(fifo.status, 200, "{}", fifo.text);
    move_on(&acme, application, steps[2]).await;
    let failed = tasks(&acme, 1).await.remove(0);
    let retried = acme
        .post(&format!("{}/retry", failed["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(retried.status, 200, "{}", retried.text);

    assert_eq!(app.step().await, 1, "the retried delivery is the application's oldest");
    assert_eq!(app.step().await, 1, "then the later event");
    let order: Vec<String> = receiver
        .received()
        .iter()
        .map(|c| c.json()["data"]["to"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, ["Screening", "Screening", "Interview"]);
}

/// A retry by hand and the record of the same delivery's call both take the delivery's lease
/// before the delivery: a retry that comes while a record holds the lease waits for it, and
/// both go through. (PostgreSQL; the retry used to lock the delivery first, and PostgreSQL
/// broke the deadlock after a second by failing one of the two.)
#[tokio::test]
async fn a_retry_waits_for_the_record_that_holds_its_lease() {
    let app = spawn_stepped_app(|c| c.delivery.retry_schedule = vec![]).await;
    let db = app.db();
    if !db.is_postgres() {
        return; // SQLite serializes its writes: there is no lock to wait for.
    }
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down")]);
    subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;
    assert_eq!(app.step().await, 1, "the call fails, with no retry left");
    let failed = tasks(&acme, 1).await.remove(0);
    // A lease that ran out, as a node killed mid-call leaves; a record of that late call takes
    // it as the recorder does: the lease, then the delivery.
    db.execute(
        "INSERT INTO leases (account_id, delivery_id, endpoint_seq, until)
         SELECT account_id, id, endpoint_seq, 1 FROM deliveries",
    )
    .await;
    let mut record = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; DELETE FROM leases")
        .execute(&mut record)
        .await
        .unwrap();
    let retry_path = format!("{}/retry", failed["_self"].as_str().unwrap());
    let retry = acme.post(&retry_path, json!({}));
    let recorded = async {
        crate::helpers::eventually("the retry waits for the lease", || async {
            db.count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
                > 0
        })
        .await;
        sqlx::raw_sql("UPDATE deliveries SET attempts = attempts + 1; COMMIT")
            .execute(&mut record)
            .await
    };
    let (retried, recorded) = tokio::join!(retry, recorded);
    assert!(recorded.is_ok(), "the record failed: {recorded:?}");
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(
        db.count("SELECT count(*) FROM deliveries WHERE state = 'pending'")
            .await,
        1,
        "the retry made the delivery due again"
    );
}

#[tokio::test]
async fn a_replay_to_a_fifo_endpoint_calls_each_application_in_order() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    for step in &steps[1..3] {
        move_on(&acme, application, *step).await;
    }
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(
        &acme,
        &receiver.url(),
        json!({"events": ["ProcessStepChange"], "ordering": "fifo"}),
    )
    .await;
    let replayed = acme
        .post(
            &format!("{}/replay", endpoint["_self"].as_str().unwrap()),
            json!({"since": "2000-01-01 00:00:00"}),
        )
        .await;
    assert_eq!(replayed.body["deliveries"], 2, "{}", replayed.text);
    assert_eq!(app.step().await, 1, "the older event first, alone");
    assert_eq!(app.step().await, 1);
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn a_test_call_reaches_one_endpoint_signed() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let other = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    subscribe(&acme, &other.url(), json!({})).await;
    let sent = acme
        .post(&format!("{}/test", endpoint["_self"].as_str().unwrap()), json!({}))
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(app.step().await, 1, "a test call goes to its endpoint alone");
    let call = receiver.received().remove(0);
    assert_eq!(call.json()["event"], "WebhookTest");
    assert_eq!(call.header("webhook-id"), sent.body["event_id"].as_str().unwrap());
    let verifier = standardwebhooks::Webhook::new(endpoint["secret"].as_str().unwrap()).unwrap();
    verifier
        .verify(&call.body, &call.headers)
        .expect("the test call is signed");
    assert!(other.received().is_empty());
}

#[tokio::test]
async fn replay_delivers_again_every_event_since_a_date() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let application = acme.new_application().await;
    let steps = acme.step_ids().await;
    move_on(&acme, application, steps[1]).await;
    // The endpoint is added after the events: it got none of them.
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let path = endpoint["_self"].as_str().unwrap();

    let replayed = acme
        .post(&format!("{path}/replay"), json!({"since": "2000-01-01 00:00:00"}))
        .await;
    assert_eq!(replayed.status, 200, "{}", replayed.text);
    assert_eq!(replayed.body["deliveries"], 1, "only the subscribed ProcessStepChange");
    let call = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(call.json()["data"]["to"]["name"], "Screening");
    let future = acme
        .post(&format!("{path}/replay"), json!({"since": "2999-01-01T00:00:00Z"}))
        .await;
    assert_eq!(future.body["deliveries"], 0);
    let bad = acme
        .post(&format!("{path}/replay"), json!({"since": "last week"}))
        .await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn events_and_tasks_past_retention_are_purged_unless_a_delivery_waits() {
    let app = spawn_stepped_app(|c| c.retention.keep = Duration::from_secs(3600)).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    // Then a disabled endpoint makes the next event wait (while the first endpoint gets it).
    let gone = TestReceiver::start().await;
    gone.script([crate::receiver::Answer::Status(410, "gone")]);
    subscribe(&acme, &gone.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 2);

    let db = app.db();
    let counts = async || {
        (
            db.count("SELECT count(*) FROM events").await,
            db.count("SELECT count(*) FROM deliveries").await,
            db.count("SELECT count(*) FROM tasks").await,
        )
    };
    app.advance(Duration::from_secs(3599));
    assert_eq!(app.purge().await, 0, "nothing is past retention yet");
    assert_eq!(counts().await, (3, 3, 3), "with the disabling's EndpointDisabled");
    app.advance(Duration::from_secs(2));
    assert_eq!(
        app.purge().await,
        5,
        "the first event, the three tasks and the EndpointDisabled"
    );
    assert_eq!(
        counts().await,
        (1, 2, 0),
        "the event whose delivery waits is kept past retention, with its deliveries; the \
         first event's went with it"
    );
    let waiting = db
        .count("SELECT count(*) FROM deliveries WHERE state = 'pending'")
        .await;
    assert_eq!(waiting, 1);
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_until_its_grace_ends() {
    // Two minutes: the receivers' check of a signature's age (five minutes) still passes after
    // the clock moved past it.
    let app = spawn_stepped_app(|c| c.delivery.secret_rotation_grace = Duration::from_secs(120)).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let path = endpoint["_self"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();

    let rotated = acme.post(&format!("{path}/secret/rotate"), json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(
        acme.get(path).await.body.get("secret").is_none(),
        "shown only in the rotation's answer"
    );

    let verifies = |call: &crate::receiver::Received, secret: &str| {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&call.body, &call.headers)
            .is_ok()
    };
    acme.new_application().await;
    assert_eq!(app.step().await, 1);
    let during = receiver.received().remove(0);
    assert_eq!(
        during.header("webhook-signature").split(' ').count(),
        2,
        "one signature per valid secret"
    );
    assert!(
        verifies(&during, &old) && verifies(&during, &new),
        "both secrets verify during the grace"
    );

    app.advance(Duration::from_secs(119));
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 1);
    let last = receiver.received().remove(1);
    assert_eq!(
        last.header("webhook-signature").split(' ').count(),
        2,
        "the grace is not over"
    );
    app.advance(Duration::from_secs(2));
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 1);
    let after = receiver.received().remove(2);
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    assert!(
        verifies(&after, &new) && !verifies(&after, &old),
        "the old secret is retired after the grace"
    );
}
