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
