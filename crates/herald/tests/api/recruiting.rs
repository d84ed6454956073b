//! Jobs, candidates, applications and steps, and the events their changes write.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_root_lists_the_version_and_the_collections() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let root = acme.get("/restapi/v1").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.body["_status"], "OK");
    assert_eq!(root.body["_self"], "/restapi/v1");
    assert_eq!(root.body["_version"], "1.0");
    assert!(root.body["_expiration"].is_null());
    assert!(root.body["_changelog"].is_array());
    for link in ["job", "candidate", "step", "process"] {
        let path = root.body[link]["_self"].as_str().unwrap();
        assert_eq!(acme.get(path).await.status, 200, "{link} at {path}");
    }
    for link in ["endpoint", "event"] {
        let path = root.body["webhook"][link]["_self"].as_str().unwrap();
        assert_eq!(acme.get(path).await.status, 200, "{link} at {path}");
    }
}

#[tokio::test]
async fn jobs_and_candidates_are_created_and_read_back() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let job = acme
        .post(
            "/restapi/v1/job",
            json!({"title": "Rust engineer", "reference": "RUST-1"}),
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let job_path = job.body["_self"].as_str().unwrap();
    assert_eq!(job.headers["location"], job_path);
    let read = acme.get(job_path).await;
    assert_eq!(read.body["title"], "Rust engineer");
    assert_eq!(read.body["reference"], "RUST-1");
    assert_eq!(read.body["status"], "open");
    assert!(
        read.body["process"]["_self"]
            .as_str()
            .unwrap()
            .starts_with("/restapi/v1/process/")
    );

    let candidate = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}),
        )
        .await;
    assert_eq!(candidate.status, 201, "{}", candidate.text);
    let read = acme.get(candidate.body["_self"].as_str().unwrap()).await;
    assert_eq!(
        (read.body["first_name"].as_str(), read.body["email"].as_str()),
        (Some("Ada"), Some("ada@example.com"))
    );
    assert_eq!(acme.get("/restapi/v1/job").await.body["items"][0]["id"], job.body["id"]);
    assert_eq!(
        acme.get("/restapi/v1/candidate").await.body["items"][0]["id"],
        candidate.body["id"]
    );
}

#[tokio::test]
async fn an_application_starts_at_the_first_step_and_emits_application_create() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let id = acme.new_application().await;
    let application = acme.get(&format!("/restapi/v1/application/{id}")).await;
    assert_eq!(application.status, 200);
    assert_eq!(application.body["step"]["name"], "New");
    assert_eq!(application.body["step"]["status"], "START");
    let date = application.body["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "RFC 3339 in UTC: {date}"
    );
    assert_eq!(application.body["candidate"]["first_name"], "Ada");
    assert_eq!(application.body["job"]["title"], "Rust engineer");

    let db = app.db();
    assert_eq!(db.text("SELECT event_type FROM events").await, "ApplicationCreate");
    let body = db.text("SELECT body FROM events").await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["application"]["_self"], format!("/restapi/v1/application/{id}"));
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
}

#[tokio::test]
async fn moving_an_application_records_the_step_and_a_process_step_change() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let id = acme.new_application().await;
    let steps = acme.step_ids().await;

    let moved = acme
        .post(
            "/restapi/v1/step",
            json!({"application_id": id, "process_step_id": steps[2]}),
        )
        .await;
    assert_eq!(moved.status, 201, "{}", moved.text);
    assert_eq!(moved.body["id"], steps[2]);
    assert_eq!(moved.body["name"], "Interview");
    assert_eq!(moved.body["application"]["id"], id);
    assert_eq!(
        acme.get(moved.body["_self"].as_str().unwrap()).await.body["change_id"],
        moved.body["change_id"]
    );

    let application = acme.get(&format!("/restapi/v1/application/{id}")).await;
    assert_eq!(application.body["step"]["id"], steps[2]);
    let history: Vec<&str> = application.body["steps"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["New", "Interview"]);

    let changes = acme.get("/restapi/v1/step").await;
    assert_eq!(
        changes.body["items"][0]["change_id"], moved.body["change_id"],
        "newest first"
    );

    let db = app.db();
    let body = db
        .text("SELECT body FROM events WHERE event_type = 'ProcessStepChange'")
        .await;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"]["from"], json!({"id": steps[0], "name": "New"}));
    assert_eq!(body["data"]["to"], json!({"id": steps[2], "name": "Interview"}));
    let datetime = body["datetime"].as_str().unwrap();
    assert!(
        datetime.len() == 19 && datetime.as_bytes()[10] == b' ',
        "YYYY-MM-DD HH:MM:SS: {datetime}"
    );
}

#[tokio::test]
async fn a_step_change_and_its_event_are_written_together_or_not_at_all() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let id = acme.new_application().await;
    let steps = acme.step_ids().await;
    // Make every new event fail to be written, as a full disk or a crash mid-write would.
    let db = app.db();
    if db.is_postgres() {
        db.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await;
    } else {
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END")
            .await;
    }

    let moved = acme
        .post(
            "/restapi/v1/step",
            json!({"application_id": id, "process_step_id": steps[1]}),
        )
        .await;
    assert_eq!(moved.status, 500, "{}", moved.text);
    assert_eq!(moved.code(), "internal");
    assert!(!moved.text.contains("refused"), "internal errors are not shown");
    let application = acme.get(&format!("/restapi/v1/application/{id}")).await;
    assert_eq!(
        application.body["step"]["id"], steps[0],
        "the step must not change without its event"
    );
    assert_eq!(application.body["steps"]["items"].as_array().unwrap().len(), 1);

    let candidate = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Grace", "last_name": "Hopper"}),
        )
        .await;
    let created = acme
        .post(
            "/restapi/v1/application",
            json!({"candidate_id": candidate.body["id"], "job_id": 1}),
        )
        .await;
    assert_eq!(created.status, 500);
    let count = db.count("SELECT count(*) FROM applications").await;
    assert_eq!(count, 1, "no application without its ApplicationCreate");
}

#[tokio::test]
async fn deleting_an_application_emits_application_delete() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let id = acme.new_application().await;
    let path = format!("/restapi/v1/application/{id}");
    assert_eq!(acme.delete(&path).await.status, 204);
    assert_eq!(acme.get(&path).await.status, 404);
    assert_eq!(acme.delete(&path).await.status, 404);
    let db = app.db();
    let types = db.texts("SELECT event_type FROM events ORDER BY seq").await;
    assert_eq!(types, ["ApplicationCreate", "ApplicationDelete"]);
}

#[tokio::test]
async fn a_job_and_a_candidate_list_their_applications() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let id = acme.new_application().await;
    for owner in ["/restapi/v1/job/1/application", "/restapi/v1/candidate/1/application"] {
        let list = acme.get(owner).await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.body["items"][0]["id"], id);
        assert_eq!(list.body["items"][0]["step"]["status"], "START");
    }
    assert_eq!(acme.get("/restapi/v1/job/999/application").await.status, 404);
}
