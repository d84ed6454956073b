//! Health, metrics, schemas' home, and how the binary starts and refuses bad configuration.

use std::process::Command;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    acme.get("/restapi/v1/job").await;
    acme.get("/restapi/v1/job/424242").await;
    assert_eq!(app.anonymous().get("/healthz").await.text, "ok\n");
    let metrics = app.anonymous().get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text;
    assert!(text.contains("# TYPE herald_http_requests_total counter"), "{text}");
    assert!(
        text.contains(r#"herald_http_requests_total{method="GET",route="/restapi/v1/job",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"herald_http_requests_total{method="GET",route="/restapi/v1/job/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"herald_http_request_duration_seconds_count{method="GET",route="/restapi/v1/job"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_get_the_error_envelope() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let missing = acme.get("/restapi/v1/nothing-here").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "not_found");
    let wrong_method = acme.patch("/restapi/v1/job", serde_json::json!({})).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.code(), "method_not_allowed");
}

fn herald() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn a_bad_configuration_file_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, "[delivery]\nmax_in_flight = \"lots\"\n").unwrap();
    let output = herald()
        .current_dir(dir.path())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("delivery.max_in_flight") && stderr.contains("whole number"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("herald.db").exists(),
        "nothing is created before the configuration is valid"
    );

    let output = herald()
        .current_dir(dir.path())
        .env("HERALD_LISTEN", "nowhere")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HERALD_LISTEN"));
}

#[test]
fn herald_config_prints_the_defaults_which_load() {
    let output = herald().arg("config").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("retry_schedule = [\"5s\", \"5m\", \"30m\", \"2h\", \"5h\", \"10h\", \"10h\"]"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, text).unwrap();
    herald::config::Config::load(Some(&file), [], &Default::default()).expect("the printed defaults load");
}
