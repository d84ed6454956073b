//! E-mail to account owners: a suspension (once a day per endpoint) and a disabling are
//! e-mailed to the account's `notify_email` through a real SMTP server on loopback, from a
//! queue in the database that outlives a mailer and waits out an SMTP server that is away.

use std::time::Duration;

use serde_json::json;

use crate::delivery::subscribe;
use crate::helpers::{PASSWORD, SteppedApp, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver};
use crate::smtp::SmtpSink;

/// An app that e-mails through `smtp`, suspending an endpoint after 2 failures, with the
/// account `acme` whose address is `ops@acme.example`.
async fn app_mailing_to(smtp: &str) -> SteppedApp {
    let smtp = smtp.to_owned();
    let app = spawn_stepped_app(move |c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(10); 20];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 2;
        c.suspension.first = Duration::from_secs(60);
        c.notify.smtp = Some(herald::config::SmtpServer {
            host: "127.0.0.1".into(),
            port: smtp.rsplit(':').next().unwrap().parse().unwrap(),
        });
        c.notify.from = "Herald <herald@example.com>".into();
        c.ui.public_url = "https://hooks.example.com".into();
    })
    .await;
    app.new_account("acme").await;
    let patched = app
        .admin()
        .patch("/admin/v1/account/acme", json!({"notify_email": "ops@acme.example"}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["notify_email"], "ops@acme.example");
    app
}

/// A failing endpoint of `acme`, described, with one event on its way; returns its id.
async fn failing_endpoint(app: &SteppedApp, receiver: &TestReceiver) -> String {
    let acme = app.as_account("acme", PASSWORD);
    let body = json!({"events": ["ApplicationCreate"], "description": "Billing sync"});
    let endpoint = subscribe(&acme, &receiver.url(), body).await;
    acme.new_application().await;
    endpoint["id"].as_str().unwrap().to_owned()
}

/// Fails the endpoint's first call and its retry: suspended.
async fn suspend(app: &SteppedApp) {
    assert_eq!(app.step().await, 1);
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 1, "the retry, which suspends");
}

#[tokio::test]
async fn a_suspension_is_emailed_with_what_the_endpoint_answered_and_a_link_to_its_page() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink.url()).await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "upstream database down"));
    let id = failing_endpoint(&app, &receiver).await;
    suspend(&app).await;

    assert_eq!(app.mail().await, 1);
    let mail = &sink.messages()[0];
    assert_eq!(mail.to, ["ops@acme.example"]);
    assert_eq!(mail.from, "herald@example.com");
    let subject = mail.header("Subject").unwrap();
    assert_eq!(subject, format!("Webhook endpoint suspended: {}", receiver.url()));
    let body = mail.body();
    for part in [
        &format!("Endpoint:    {}", receiver.url()),
        "Description: Billing sync",
        "after 2 failed calls in a row",
        "answered HTTP 500:\n\nupstream database down",
        &format!("https://hooks.example.com/ui/endpoints/{id}"),
    ] {
        assert!(body.contains(part), "{part:?} in:\n{body}");
    }
    assert_eq!(app.mail().await, 0, "sent once");

    // The failed probe renews the suspension: the same episode, no second e-mail.
    app.advance(Duration::from_secs(61));
    assert_eq!(app.step().await, 1);
    assert_eq!(app.mail().await, 0);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_disabling_is_emailed_and_a_suspension_at_most_once_a_day() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink.url()).await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    let id = failing_endpoint(&app, &receiver).await;
    let acme = app.as_account("acme", PASSWORD);
    let resume = format!("/restapi/v1/webhook/endpoint/{id}/resume");
    suspend(&app).await;
    assert_eq!(app.mail().await, 1);

    // Resumed by hand, and suspended again within the day: told by event, not by e-mail.
    assert_eq!(acme.post(&resume, json!({})).await.status, 200);
    acme.new_application_for_new_candidate().await;
    app.advance(Duration::from_secs(11));
    assert_eq!(
        app.step().await,
        2,
        "both waiting events, which fail and suspend it again"
    );
    assert_eq!(
        acme.get(&format!("/restapi/v1/webhook/endpoint/{id}")).await.body["state"],
        "suspended"
    );
    assert_eq!(app.mail().await, 0, "one suspension e-mail a day");

    // A day later, the next suspension is e-mailed.
    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(acme.post(&resume, json!({})).await.status, 200);
    assert_eq!(app.step().await, 2);
    assert_eq!(app.mail().await, 1);

    // Then it answers 410: disabled, and e-mailed whatever the hour.
    receiver.otherwise(Answer::Status(410, "gone for good"));
    assert_eq!(acme.post(&resume, json!({})).await.status, 200);
    app.advance(Duration::from_secs(11));
    assert_eq!(app.step().await, 2);
    assert_eq!(app.mail().await, 1);
    let messages = sink.messages();
    let disabled = messages.last().unwrap();
    assert_eq!(
        disabled.header("Subject").unwrap(),
        format!("Webhook endpoint disabled: {}", receiver.url())
    );
    assert!(
        disabled.body().contains("answered HTTP 410:\n\ngone for good"),
        "{}",
        disabled.body()
    );
}

#[tokio::test]
async fn an_email_waits_out_an_smtp_server_that_is_away_and_outlives_its_mailer() {
    // A port with no server yet.
    let away = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = app_mailing_to(&format!("smtp://{away}")).await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    failing_endpoint(&app, &receiver).await;
    suspend(&app).await;
    assert_eq!(app.mail().await, 0, "the SMTP server is away");
    let tries = app.db().count("SELECT attempts FROM emails").await;
    assert_eq!(tries, 1);

    let sink = SmtpSink::start_on(away).await;
    app.advance(Duration::from_secs(29));
    assert_eq!(app.mail().await, 0, "the next try is 30 s after the first");
    app.advance(Duration::from_secs(2));
    // A new mailer, as a restarted node would run: the queue is in the database.
    let mailer = app.mailer().unwrap();
    assert_eq!(mailer.step().await.unwrap(), 1);
    sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        app.db()
            .count("SELECT count(*) FROM emails WHERE sent_at IS NOT NULL")
            .await,
        1
    );

    // Retention takes a sent e-mail with the rest.
    app.advance(Duration::from_secs(31 * 24 * 3600));
    app.purge().await;
    assert_eq!(app.db().count("SELECT count(*) FROM emails").await, 0);
}

#[tokio::test]
async fn without_an_address_or_a_server_nothing_is_queued() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink.url()).await;
    let cleared = app
        .admin()
        .patch("/admin/v1/account/acme", json!({"notify_email": null}))
        .await;
    assert!(cleared.body["notify_email"].is_null(), "{}", cleared.text);
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    failing_endpoint(&app, &receiver).await;
    suspend(&app).await;
    assert_eq!(app.db().count("SELECT count(*) FROM emails").await, 0);

    let quiet = spawn_stepped_app(|c| c.suspension.after_failures = 1).await;
    quiet.new_account("acme").await;
    quiet
        .admin()
        .patch("/admin/v1/account/acme", json!({"notify_email": "ops@acme.example"}))
        .await;
    failing_endpoint(&quiet, &receiver).await;
    assert_eq!(quiet.step().await, 1, "a failure that suspends");
    assert!(quiet.mailer().is_none());
    assert_eq!(
        quiet.db().count("SELECT count(*) FROM emails").await,
        0,
        "no SMTP server configured: nothing is queued"
    );
}

#[tokio::test]
async fn support_changes_an_accounts_name_password_and_address() {
    let app = spawn_stepped_app(|_| {}).await;
    app.new_account("acme").await;
    let path = "/admin/v1/account/acme";
    let bad = app.admin().patch(path, json!({"notify_email": "not an address"})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert!(bad.text.contains("notify_email"), "{}", bad.text);
    let unknown = app.admin().patch(path, json!({"plan": "gold"})).await;
    assert_eq!(unknown.status, 422);
    let short = app.admin().patch(path, json!({"password": "short"})).await;
    assert_eq!(short.status, 422);
    let missing = app
        .admin()
        .patch("/admin/v1/account/nobody", json!({"name": "X"}))
        .await;
    assert_eq!(missing.status, 404);
    let refused = app.as_account("acme", PASSWORD).patch(path, json!({"name": "X"})).await;
    assert_eq!(refused.status, 401, "support only");
    let shown = app.admin().get(path).await;
    assert!(shown.body["notify_email"].is_null());

    let changed = app
        .admin()
        .patch(path, json!({"name": "ACME Corp", "password": "a new password"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["name"], "ACME Corp");
    assert!(changed.body["notify_email"].is_null(), "left as it was");
    let old = app.as_account("acme", PASSWORD).get("/restapi/v1").await;
    assert_eq!(old.status, 401, "the old password stops at once");
    let new = app.as_account("acme", "a new password").get("/restapi/v1").await;
    assert_eq!(new.status, 200);
}
