//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver,
//! against a real `herald serve` delivering to real receivers. A customer signs in, opens
//! every page, uses every action and sees its effect in the store; a hostile answer is shown
//! as text and runs nothing; a portal link opens a session that cannot change anything;
//! support opens an account. It takes screenshots of each page on the way (see `shot`).
//!
//! It runs on SQLite only: the pages are the same on both backends, and what is stored per
//! backend (sessions, links) is tested on both in `dashboard`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::delivery::subscribe;
use crate::helpers::{ADMIN_TOKEN, PASSWORD, TestApp, eventually, spawn_app_with};
use crate::receiver::{Answer, TestReceiver};
use crate::webdriver::Browser;

/// What a hostile endpoint answers: markup that would run if a page interpreted it.
const HOSTILE: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";

/// Where a screenshot goes: `target/ui-screenshots/`, or `docs/ui/` (which the README shows)
/// when `HERALD_UPDATE_SCREENSHOTS` is set, so that a test run leaves the repository as it was.
fn shot(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folder = if std::env::var_os("HERALD_UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/ui")
    } else {
        root.join("target/ui-screenshots")
    };
    folder.join(format!("{name}.png"))
}

async fn endpoint_state(app: &TestApp, id: &str) -> String {
    let endpoint = app
        .admin()
        .get(&format!("/admin/v1/account/acme/webhook/endpoint/{id}"))
        .await;
    endpoint.body["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_customer_support_and_a_portal_visitor_use_the_dashboard_in_chromium() {
    if crate::db::TestDb::new().await.is_postgres() {
        return;
    }
    let app = spawn_app_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_millis(200)];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 2;
        c.suspension.first = Duration::from_secs(3600);
    })
    .await;
    let acme = app.new_account("acme").await;
    app.admin()
        .patch("/admin/v1/account/acme", json!({"name": "Acme Recruiting"}))
        .await;
    let good = TestReceiver::start().await;
    let hostile = TestReceiver::start().await;
    hostile.otherwise(Answer::Status(500, HOSTILE));
    let orders = subscribe(
        &acme,
        &format!("{}/orders", good.url()),
        json!({"description": "Order system", "events": ["*"]}),
    )
    .await;
    let crm = subscribe(
        &acme,
        &hostile.url(),
        json!({"description": "CRM sync", "events": ["ApplicationCreate"]}),
    )
    .await;
    let (orders, crm) = (
        orders["id"].as_str().unwrap().to_owned(),
        crm["id"].as_str().unwrap().to_owned(),
    );
    for _ in 0..24 {
        acme.new_application().await;
    }
    good.wait_for(24, Duration::from_secs(20)).await;
    eventually("the failing endpoint is suspended", || async {
        endpoint_state(&app, &crm).await == "suspended"
    })
    .await;
    let tasks = || app.db().count("SELECT count(*) FROM tasks");

    let browser = Browser::start().await;
    let url = |path: &str| app.url(path);

    // Signing in leads to the endpoints, each with its health.
    browser.goto(&url("/ui")).await;
    assert!(browser.url().await.ends_with("/ui/login"), "sent to sign in");
    browser.screenshot(&shot("login")).await;
    browser.find("input[name=login]").await.type_text("acme").await;
    browser.find("input[name=password]").await.type_text(PASSWORD).await;
    browser.click_through("form button[type=submit]").await;
    assert_eq!(
        browser.title().await,
        "Endpoints · Herald",
        "{}",
        browser.find("main").await.text().await
    );
    assert_eq!(browser.count("table.endpoints tbody tr").await, 2);
    assert_eq!(browser.count("svg.spark").await, 2);
    let list = browser.find("table.endpoints").await.text().await;
    assert!(list.contains("suspended") && list.contains("active"), "{list}");
    assert!(list.contains("100.0 %"), "the good endpoint's success rate: {list}");
    browser.screenshot(&shot("endpoints")).await;

    // The failing endpoint's page: its charts and failures, and the hostile answer shown as
    // text in the last calls.
    browser.click_through(&format!("a[href='/ui/endpoints/{crm}']")).await;
    assert_eq!(browser.count("svg.chart").await, 2, "calls and latency");
    let failures = browser.find(".columns").await.text().await;
    assert!(
        failures.contains("500") && failures.contains("http_status"),
        "{failures}"
    );
    assert!(browser.find(".note").await.text().await.contains("Suspended"));
    browser.screenshot(&shot("endpoint-failing")).await;

    // One failed call in full: the hostile body is text; no script ran, no image loaded.
    browser.click_through("table.calls tbody tr a").await;
    let shown = browser.find("#response-body").await.text().await;
    assert_eq!(shown, HOSTILE);
    assert_eq!(browser.count("#response-body img, #response-body script").await, 0);
    assert_ne!(browser.title().await, "pwned");
    assert!(browser.alert().await.is_none(), "no alert ran");
    let request = browser.find("section").await.text().await;
    assert!(
        request.contains("webhook-signature") || request.contains("x-herald"),
        "{request}"
    );
    browser.screenshot(&shot("call")).await;

    // The endpoint is fixed; resume it rather than wait for its probe.
    hostile.otherwise(Answer::Status(200, "fixed"));
    browser.goto(&url(&format!("/ui/endpoints/{crm}"))).await;
    browser.click_through("form[action$='/resume'] button").await;
    assert_eq!(endpoint_state(&app, &crm).await, "active");

    // The good endpoint: charts over a week too, then every action.
    browser.goto(&url(&format!("/ui/endpoints/{orders}"))).await;
    let figures = browser.find(".figures").await.text().await;
    assert!(figures.contains("100.0 %"), "{figures}");
    browser.screenshot(&shot("endpoint")).await;
    browser.click_through("nav.tabs a[href$='window=7d']").await;
    assert_eq!(browser.count("svg.chart").await, 2);

    // Retry now, from one of its calls: the call is made again, and recorded.
    let before = tasks().await;
    let received = good.received().len();
    browser.click_through("table.calls tbody tr a").await;
    browser.click_through("form[action$='/retry'] button").await;
    good.wait_for(received + 1, Duration::from_secs(10)).await;
    eventually("the retried call is recorded", || async { tasks().await > before }).await;
    assert!(browser.url().await.contains(&format!("/ui/tasks?endpoint={orders}")));
    browser.goto(&url(&format!("/ui/endpoints/{orders}"))).await;

    // Send a test event: it reaches the receiver.
    browser.click_through("form[action$='/test'] button").await;
    eventually("the test event arrives", || async {
        good.received().iter().any(|call| call.json()["event"] == "WebhookTest")
    })
    .await;

    // Edit: the description changes in the store.
    browser.goto(&url(&format!("/ui/endpoints/{orders}/edit"))).await;
    let description = browser.find("input[name=description]").await;
    description.clear().await;
    description.type_text("Order system, EU").await;
    browser.click_through("form.card button[type=submit]").await;
    assert!(browser.url().await.ends_with(&format!("/ui/endpoints/{orders}")));
    let stored = app.db().texts("SELECT description FROM endpoints ORDER BY seq").await;
    assert_eq!(stored[0], "Order system, EU");

    // An edit the API refuses comes back with its reason, and changes nothing.
    browser.goto(&url(&format!("/ui/endpoints/{orders}/edit"))).await;
    browser.find("input[name=timeout]").await.type_text("soon").await;
    browser.click_through("form.card button[type=submit]").await;
    assert!(browser.find(".error").await.text().await.contains("timeout"));

    // Rotate the secret, after the confirmation: the new one is shown once, and stored.
    browser.goto(&url(&format!("/ui/endpoints/{orders}"))).await;
    let secret_before = app.db().texts("SELECT secret FROM endpoints ORDER BY seq").await[0].clone();
    browser.mark().await;
    browser
        .find("form[action$='/rotate-secret'] button")
        .await
        .click()
        .await;
    assert!(browser.alert().await.unwrap().contains("Rotate"));
    browser.accept_alert().await;
    browser.new_page().await;
    let shown = browser.find("#secret").await.text().await;
    let stored = app.db().texts("SELECT secret FROM endpoints ORDER BY seq").await[0].clone();
    assert_ne!(stored, secret_before);
    assert_eq!(shown, stored);
    browser.screenshot(&shot("secret")).await;

    // Replay since a date-time before everything: every event is delivered again.
    browser.goto(&url(&format!("/ui/endpoints/{orders}"))).await;
    let received = good.received().len();
    browser
        .find("input[name=since]")
        .await
        .type_text("2000-01-01 00:00:00")
        .await;
    browser.click_through("form.replay button").await;
    let notice = browser.find(".note").await.text().await;
    let replayed: usize = notice
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{notice}"));
    assert!(replayed >= 24, "every application's event at least: {notice}");
    good.wait_for(received + replayed, Duration::from_secs(20)).await;

    // The history: filters and keyset paging.
    browser.goto(&url(&format!("/ui/tasks?endpoint={orders}"))).await;
    assert_eq!(browser.count("table.calls tbody tr").await, 20, "a page");
    // Calls are numbered in the order they were made; a page holds older ones than the last.
    let call_id = |href: String| -> i64 { href.rsplit('/').next().unwrap().parse().unwrap() };
    let last_of_first = call_id(
        browser
            .find("table.calls tbody tr:last-child a")
            .await
            .attribute("href")
            .await,
    );
    browser.click_through("nav.pages a.button").await;
    assert!(browser.url().await.contains("pagecursor="));
    let first_of_older = call_id(browser.find("table.calls tbody tr a").await.attribute("href").await);
    assert!(
        first_of_older < last_of_first,
        "{first_of_older} comes before {last_of_first}"
    );
    browser.goto(&url("/ui/tasks")).await;
    browser.screenshot(&shot("calls")).await;

    // "Refresh every 5 s" reloads the history, which then shows the new call.
    let newest = call_id(browser.find("table.calls tbody tr a").await.attribute("href").await);
    browser.find("#auto-refresh").await.click().await;
    browser.mark().await;
    acme.new_application().await;
    browser.new_page().await;
    let refreshed = call_id(browser.find("table.calls tbody tr a").await.attribute("href").await);
    assert!(refreshed > newest, "the reloaded page shows the new call");
    browser.find("#auto-refresh").await.click().await;
    browser.find("input[name=response_status]").await.type_text("500").await;
    browser.click_through("form.filters button").await;
    let rows = browser.find("table.calls tbody").await.text().await;
    assert!(rows.contains("500") && !rows.contains(" 200 "), "{rows}");

    // The catalogue, with an example body per version.
    browser.goto(&url("/ui/events")).await;
    let catalogue = browser.find("main").await.text().await;
    assert!(catalogue.contains("ProcessStepChange") && catalogue.contains("Version 2: an example"));
    browser.screenshot(&shot("events")).await;

    // Settings.
    browser.goto(&url("/ui/settings")).await;
    browser
        .find("input[name=notify_email]")
        .await
        .type_text("ops@acme.example")
        .await;
    browser.click_through("form.card button[type=submit]").await;
    let account = app.admin().get("/admin/v1/account/acme").await;
    assert_eq!(account.body["notify_email"], "ops@acme.example");

    // Delete, after the confirmation.
    browser.goto(&url(&format!("/ui/endpoints/{crm}"))).await;
    browser.mark().await;
    browser.find("form[action$='/delete'] button").await.click().await;
    assert!(browser.alert().await.unwrap().contains("Delete"));
    browser.accept_alert().await;
    browser.new_page().await;
    assert!(browser.url().await.ends_with("/ui"));
    assert_eq!(app.db().count("SELECT count(*) FROM endpoints").await, 1);

    // Add an endpoint: its secret is shown once, it is stored as the form said, and its
    // calls come.
    let added = TestReceiver::start().await;
    browser.click_through("a[href='/ui/endpoints/new']").await;
    browser.find("input[name=url]").await.type_text(&added.url()).await;
    browser.find("input[name=description]").await.type_text("Payroll").await;
    browser
        .find("input[name=events][value=ApplicationCreate]")
        .await
        .click()
        .await;
    browser
        .find("select[name=version] option[value='2']")
        .await
        .click()
        .await;
    browser.find("input[name=rate_limit]").await.type_text("50").await;
    browser.click_through("form.card button[type=submit]").await;
    let secret = browser.find("#secret").await.text().await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let stored = app
        .db()
        .texts("SELECT version || ' ' || rate_limit || ' ' || events FROM endpoints WHERE description = 'Payroll'")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].starts_with("2 50 ") && stored[0].contains("ApplicationCreate"),
        "{stored:?}"
    );
    acme.new_application().await;
    let call = added.wait_for(1, Duration::from_secs(10)).await.remove(0);
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&call.body, &call.headers)
        .expect("signed with the secret the page showed");

    // Sign out: the dashboard asks to sign in again.
    browser.click_through("header form button").await;
    browser.goto(&url("/ui")).await;
    assert!(browser.url().await.ends_with("/ui/login"));

    // A portal link with view permissions: no action is offered, and a forged form post with
    // the session's own token is refused.
    let link = app
        .admin()
        .post(
            "/admin/v1/account/acme/portal",
            json!({"permissions": "view", "ttl": "1h"}),
        )
        .await;
    browser.goto(&url(link.body["url"].as_str().unwrap())).await;
    assert_eq!(browser.title().await, "Endpoints · Herald");
    assert!(browser.find("header").await.text().await.contains("view only"));
    browser.goto(&url(&format!("/ui/endpoints/{orders}"))).await;
    assert_eq!(browser.count("main form").await, 0, "no action for a view session");
    assert_eq!(browser.count("a[href$='/edit']").await, 0);
    browser.screenshot(&shot("portal-view")).await;
    let csrf = app
        .db()
        .texts("SELECT csrf FROM ui_sessions WHERE permissions = 'view'")
        .await
        .remove(0);
    browser.mark().await;
    browser
        .run(&format!(
            "const form = document.createElement('form');
             form.method = 'post';
             form.action = '/ui/endpoints/{orders}/delete';
             const token = document.createElement('input');
             token.name = 'csrf';
             token.value = '{csrf}';
             form.appendChild(token);
             document.body.appendChild(form);
             form.submit();"
        ))
        .await;
    browser.new_page().await;
    assert_eq!(browser.title().await, "Not allowed · Herald");
    assert!(browser.find("main").await.text().await.contains("view permissions"));
    assert_eq!(
        app.db().count("SELECT count(*) FROM endpoints").await,
        2,
        "nothing deleted"
    );

    // Support signs in with the admin token and opens the account.
    browser.clear_cookies().await;
    browser.goto(&url("/ui/login")).await;
    browser.find("details summary").await.click().await;
    browser.find("input[name=token]").await.type_text(ADMIN_TOKEN).await;
    browser.click_through("form button[type=submit]").await;
    assert!(browser.url().await.ends_with("/ui/accounts"));
    let accounts = browser.find("table.accounts").await.text().await;
    assert!(
        accounts.contains("Acme Recruiting") && accounts.contains(" %"),
        "its health: {accounts}"
    );
    browser.screenshot(&shot("accounts")).await;
    browser.click_through("table.accounts form button").await;
    assert_eq!(browser.count("table.endpoints tbody tr").await, 2, "acme's endpoints");
}
