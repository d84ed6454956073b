//! Endpoints, through the account's own API and through support's.

use serde_json::json;

use crate::helpers::spawn_app;

const URL: &str = "https://hooks.example.com/herald";

#[tokio::test]
async fn an_endpoint_is_created_with_a_generated_secret_shown_only_then() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let body = json!({"url": URL, "events": ["ProcessStepChange"], "description": "ATS sync",
        "auth": {"type": "basic", "username": "herald", "password": "hunter22"}});
    let created = acme.post("/restapi/v1/webhook/endpoint", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    assert!(id.starts_with("ep_"));
    assert!(created.body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["consecutive_failures"], 0);
    assert!(created.body["suspended_until"].is_null());
    assert_eq!(created.body["ordering"], "parallel");
    assert_eq!(
        created.body["auth"],
        json!({"type": "basic", "username": "herald", "password": "********"})
    );

    let read = acme.get(created.body["_self"].as_str().unwrap()).await;
    assert_eq!(read.status, 200);
    assert!(
        read.body.get("secret").is_none(),
        "the secret is shown only at creation: {}",
        read.text
    );
    assert!(!read.text.contains("hunter22"));
    assert_eq!(read.body["description"], "ATS sync");
}

#[tokio::test]
async fn a_given_secret_and_every_auth_shape_are_accepted() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let auths = [
        json!(null),
        json!({"type": "bearer", "token": "t0k3n"}),
        json!({"type": "header", "name": "X-Api-Key", "value": "k3y"}),
    ];
    for auth in auths {
        let body = json!({"url": URL, "events": ["*"], "auth": auth, "secret": secret, "ordering": "fifo"});
        let created = acme.post("/restapi/v1/webhook/endpoint", body).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["secret"], secret);
        assert_eq!(created.body["ordering"], "fifo");
        assert!(!created.text.contains("t0k3n") && !created.text.contains("k3y"));
    }
    assert_eq!(
        acme.get("/restapi/v1/webhook/endpoint").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn an_endpoint_is_updated_in_part_and_deleted() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let body = json!({"url": URL, "events": ["ProcessStepChange"], "auth": {"type": "bearer", "token": "a"}});
    let created = acme.post("/restapi/v1/webhook/endpoint", body).await;
    let path = created.body["_self"].as_str().unwrap();

    let patched = acme
        .patch(path, json!({"events": ["ApplicationCreate", "ProcessStepChange"]}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["events"],
        json!(["ApplicationCreate", "ProcessStepChange"])
    );
    assert_eq!(patched.body["url"], URL, "fields not in the patch stay");
    assert_eq!(patched.body["auth"]["type"], "bearer");
    assert!(patched.body.get("secret").is_none());

    let cleared = acme
        .patch(path, json!({"auth": null, "url": "http://other.example.com/h"}))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert!(cleared.body["auth"].is_null());
    assert_eq!(acme.get(path).await.body["url"], "http://other.example.com/h");

    assert_eq!(acme.delete(path).await.status, 204);
    assert_eq!(acme.get(path).await.status, 404);
    assert_eq!(acme.delete(path).await.status, 404);
}

#[tokio::test]
async fn support_manages_an_accounts_endpoints_with_the_same_shapes() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let body = json!({"url": URL, "events": ["ProcessStepChange"]});
    let created = app.admin().post("/admin/v1/account/acme/webhook/endpoint", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        created.body["_self"],
        format!("/admin/v1/account/acme/webhook/endpoint/{id}")
    );
    assert_eq!(created.body["_schema"], "/restapi/schemav1/webhookendpoint");

    let own = acme.get(&format!("/restapi/v1/webhook/endpoint/{id}")).await;
    assert_eq!(own.status, 200, "the account sees what support made");
    assert_eq!(own.body["url"], URL);
    let listed = app.admin().get("/admin/v1/account/acme/webhook/endpoint").await;
    assert_eq!(listed.body["items"][0]["id"], id);
    assert_eq!(
        app.admin()
            .get("/admin/v1/account/nobody/webhook/endpoint")
            .await
            .status,
        404
    );
    let patched = app
        .admin()
        .patch(
            &format!("/admin/v1/account/acme/webhook/endpoint/{id}"),
            json!({"description": "by support"}),
        )
        .await;
    assert_eq!(patched.body["description"], "by support");
    assert_eq!(
        app.admin()
            .delete(&format!("/admin/v1/account/acme/webhook/endpoint/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        acme.get(&format!("/restapi/v1/webhook/endpoint/{id}")).await.status,
        404
    );
    // The admin path wants the admin token, not the account's password.
    assert_eq!(acme.get("/admin/v1/account/acme/webhook/endpoint").await.status, 401);
}
