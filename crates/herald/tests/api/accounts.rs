//! Accounts and the admin API's authentication.

use serde_json::json;

use crate::delivery::{WAIT, subscribe};
use crate::helpers::{PASSWORD, spawn_app};
use crate::receiver::{Answer, TestReceiver};

#[tokio::test]
async fn an_account_is_created_with_the_spec_process_and_can_log_in() {
    let app = spawn_app().await;
    let body = json!({"login": "acme", "password": PASSWORD, "name": "ACME",
        "process": {"name": "Hiring", "steps": ["New", "Screening", "Interview", "Offer", "Hired", "Rejected"]}});
    let created = app.admin().post("/admin/v1/account", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["location"], "/admin/v1/account/acme");
    assert_eq!(created.body["login"], "acme");
    assert_eq!(created.body["name"], "ACME");

    let acme = app.as_account("acme", PASSWORD);
    let process = acme.get(created.body["process"]["_self"].as_str().unwrap()).await;
    assert_eq!(process.status, 200, "{}", process.text);
    assert_eq!(process.body["name"], "Hiring");
    let steps: Vec<(String, String)> = process.body["steps"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("New", "START"),
        ("Screening", "CURRENT"),
        ("Interview", "CURRENT"),
        ("Offer", "CURRENT"),
        ("Hired", "END"),
        ("Rejected", "END"),
    ];
    assert_eq!(steps, expected.map(|(n, s)| (n.to_owned(), s.to_owned())));
}

#[tokio::test]
async fn accounts_are_listed_shown_and_deleted() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    app.new_account("globex").await;

    let list = app.admin().get("/admin/v1/account").await;
    let logins: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["globex", "acme"]);
    assert_eq!(app.admin().get("/admin/v1/account/acme").await.body["login"], "acme");

    let acme = app.as_account("acme", PASSWORD);
    assert_eq!(acme.get("/restapi/v1").await.status, 200);
    assert_eq!(app.admin().delete("/admin/v1/account/acme").await.status, 204);
    assert_eq!(app.admin().get("/admin/v1/account/acme").await.status, 404);
    let after = acme.get("/restapi/v1").await;
    assert_eq!(
        after.status, 401,
        "a deleted account's cached login must stop working at once"
    );
    assert_eq!(
        app.admin().get("/admin/v1/account").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_admin_api_wants_the_admin_token() {
    let app = spawn_app().await;
    let anonymous = app.anonymous().get("/admin/v1/account").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.code(), "unauthorized");
    let wrong = app
        .client
        .get(app.url("/admin/v1/account"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    app.new_account("acme").await;
    let as_account = app.as_account("acme", PASSWORD).get("/admin/v1/account").await;
    assert_eq!(as_account.status, 401, "an account's password is not the admin token");
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_a_basic_challenge() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    for api in [
        app.as_account("acme", "wrong password"),
        app.as_account("nobody", PASSWORD),
        app.anonymous(),
    ] {
        let reply = api.get("/restapi/v1").await;
        assert_eq!(reply.status, 401);
        assert!(reply.headers["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_eq!(reply.code(), "unauthorized");
    }
    // A correct login after wrong ones still works (the cache holds only verified logins).
    assert_eq!(app.as_account("acme", PASSWORD).get("/restapi/v1").await.status, 200);
}

#[tokio::test]
async fn calls_past_the_rate_limit_get_429_with_retry_after() {
    let app = crate::helpers::spawn_app_with(|c| c.rate_limit_per_minute = 3).await;
    let acme = app.new_account("acme").await;
    let globex = app.new_account("globex").await;
    for _ in 0..3 {
        assert_eq!(acme.get("/restapi/v1/job").await.status, 200);
    }
    let limited = acme.get("/restapi/v1/job").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        globex.get("/restapi/v1/job").await.status,
        200,
        "another account has its own budget"
    );
    assert_eq!(
        app.admin().get("/admin/v1/account").await.status,
        200,
        "support is not limited"
    );
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_login_then_the_address() {
    let app = spawn_app().await;
    app.new_account("acme").await;
    app.new_account("globex").await;
    for _ in 0..10 {
        assert_eq!(app.as_account("acme", "guess").get("/restapi/v1").await.status, 401);
    }
    let locked = app.as_account("acme", PASSWORD).get("/restapi/v1").await;
    assert_eq!(
        locked.status, 429,
        "even the right password waits once the login is locked"
    );
    assert!(locked.headers.contains_key("retry-after"));
    assert_eq!(
        app.as_account("globex", PASSWORD).get("/restapi/v1").await.status,
        200,
        "other logins still work"
    );

    // Wrong admin tokens count against the address, which then locks every login from it.
    for _ in 0..40 {
        let wrong = app
            .client
            .get(app.url("/admin/v1/account"))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
    }
    assert_eq!(app.admin().get("/admin/v1/account").await.status, 429);
    assert_eq!(app.as_account("globex", PASSWORD).get("/restapi/v1").await.status, 429);
}

#[tokio::test]
async fn deleting_an_endpoint_or_an_account_leaves_none_of_its_rows_behind() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let globex = app.new_account("globex").await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    let answering = TestReceiver::start().await;
    let held = subscribe(&acme, &hanging.url(), json!({})).await;
    subscribe(&acme, &answering.url(), json!({})).await;
    subscribe(&globex, &answering.url(), json!({})).await;
    acme.new_application().await;
    globex.new_application().await;
    hanging.wait_for(1, WAIT).await;
    answering.wait_for(2, WAIT).await;
    // Both answered calls recorded, so that each account has a task.
    crate::delivery::tasks(&acme, 1).await;
    crate::delivery::tasks(&globex, 1).await;

    let db = app.db();
    let id_of = async |login: &str| {
        db.count(&format!("SELECT id FROM accounts WHERE login = '{login}'"))
            .await
    };
    let (acme_id, globex_id) = (id_of("acme").await, id_of("globex").await);
    let rows = async |table: &str, account: i64| {
        db.count(&format!("SELECT count(*) FROM {table} WHERE account_id = {account}"))
            .await
    };
    // PostgreSQL leases a call in flight in a table of its own; SQLite holds it in memory.
    let leases = async |account: i64| match db.is_postgres() {
        true => rows("leases", account).await,
        false => 0,
    };
    let in_flight = if db.is_postgres() { 1 } else { 0 };
    assert_eq!(leases(acme_id).await, in_flight, "the hanging call's lease");

    let deleted = acme.delete(held["_self"].as_str().unwrap()).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(leases(acme_id).await, 0, "the endpoint's lease goes with it");
    assert_eq!(
        rows("deliveries", acme_id).await,
        1,
        "and its delivery; the other stays"
    );

    assert_eq!(app.admin().delete("/admin/v1/account/acme").await.status, 204);
    for table in ["events", "deliveries", "tasks", "endpoints"] {
        assert_eq!(rows(table, acme_id).await, 0, "acme's {table}");
        assert!(rows(table, globex_id).await > 0, "globex's {table} stay");
    }
    assert_eq!(leases(acme_id).await, 0);
}
