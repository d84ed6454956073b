//! Accounts are isolated: another account's ids answer 404, as if they did not exist.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn another_accounts_resources_are_not_found() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let globex = app.new_account("globex").await;
    let application = acme.new_application().await;
    let endpoint = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    let endpoint = endpoint.body["_self"].as_str().unwrap().to_owned();
    let step = acme
        .post(
            "/restapi/v1/step",
            json!({"application_id": application, "process_step_id": acme.step_ids().await[1]}),
        )
        .await;
    let process = acme.get("/restapi/v1").await.body["process"]["_self"]
        .as_str()
        .unwrap()
        .to_owned();

    for path in [
        "/restapi/v1/job/1".to_owned(),
        "/restapi/v1/job/1/application".to_owned(),
        "/restapi/v1/candidate/1".to_owned(),
        "/restapi/v1/candidate/1/application".to_owned(),
        format!("/restapi/v1/application/{application}"),
        step.body["_self"].as_str().unwrap().to_owned(),
        process,
        endpoint.clone(),
    ] {
        assert_eq!(acme.get(&path).await.status, 200, "{path} is acme's");
        let reply = globex.get(&path).await;
        assert_eq!(reply.status, 404, "{path} must be hidden from globex: {}", reply.text);
        assert_eq!(reply.code(), "not_found");
    }
    for list in [
        "/restapi/v1/job",
        "/restapi/v1/candidate",
        "/restapi/v1/step",
        "/restapi/v1/webhook/endpoint",
    ] {
        assert_eq!(globex.get(list).await.body["items"], json!([]), "{list}");
    }

    // Writes through another account's ids fail the same way and change nothing.
    assert_eq!(globex.patch(&endpoint, json!({"description": "x"})).await.status, 404);
    assert_eq!(globex.delete(&endpoint).await.status, 404);
    assert_eq!(
        globex
            .delete(&format!("/restapi/v1/application/{application}"))
            .await
            .status,
        404
    );
    let cross = globex
        .post("/restapi/v1/application", json!({"candidate_id": 1, "job_id": 1}))
        .await;
    assert_eq!(cross.code(), "unknown_candidate");
    let moved = globex
        .post(
            "/restapi/v1/step",
            json!({"application_id": application, "process_step_id": 1}),
        )
        .await;
    assert_eq!(moved.code(), "unknown_application");
    assert_eq!(acme.get(&endpoint).await.body["description"], "");
    assert_eq!(
        acme.get(&format!("/restapi/v1/application/{application}")).await.status,
        200
    );
}

#[tokio::test]
async fn another_accounts_tasks_are_not_found_nor_retried() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let globex = app.new_account("globex").await;
    let receiver = crate::receiver::TestReceiver::start().await;
    crate::delivery::subscribe(&acme, &receiver.url(), json!({})).await;
    acme.new_application().await;
    let task = crate::delivery::tasks(&acme, 1).await.remove(0);
    let path = task["_self"].as_str().unwrap();
    assert_eq!(globex.get(path).await.status, 404);
    assert_eq!(globex.post(&format!("{path}/retry"), json!({})).await.status, 404);
    assert_eq!(globex.get("/restapi/v1/webhook/task").await.body["items"], json!([]));
    assert_eq!(receiver.received().len(), 1, "globex's retry called nothing");
}
