//! Health, metrics, schemas' home, and how the binary starts and refuses bad configuration.

use std::process::Command;

use std::time::Duration;

use serde_json::json;

use crate::db::Cluster;
use crate::delivery::{WAIT, subscribe, tasks};
use crate::helpers::{Process, TestApp, eventually, spawn_app, spawn_app_with, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver};

/// The value of an unlabelled sample in `/metrics`.
async fn sample(app: &TestApp, name: &str) -> f64 {
    let text = app.anonymous().get("/metrics").await.text;
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    line[name.len() + 1..].parse().unwrap()
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    acme.get("/restapi/v1/job").await;
    acme.get("/restapi/v1/job/424242").await;
    assert_eq!(app.anonymous().get("/healthz").await.text, "ok\n");
    assert_eq!(app.anonymous().get("/readyz").await.text, "ready\n");
    assert_eq!(sample(&app, "herald_ready").await, 1.0);
    let metrics = app.anonymous().get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = metrics.text;
    assert!(text.contains("# TYPE herald_http_requests_total counter"), "{text}");
    // What Prometheus asks for, it gets.
    let openmetrics = app
        .client
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        openmetrics.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let openmetrics = openmetrics.text().await.unwrap();
    assert!(
        openmetrics.contains("# TYPE herald_http_requests counter"),
        "{openmetrics}"
    );
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
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
    assert!(text.contains("herald_dispatcher_safety_net_claims_total 0\n"), "{text}");
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
fn an_unknown_role_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let output = herald()
        .current_dir(dir.path())
        .args(["serve", "--role", "worker"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--role") && stderr.contains("\"api\", \"dispatcher\" or \"all\""),
        "{stderr}"
    );
    assert!(!dir.path().join("herald.db").exists());
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

/// Starts `herald serve` with no token in `dir`, on a free port; returns the child and its URL.
fn serve_without_token(dir: &std::path::Path) -> (Process, String) {
    let port = crate::helpers::free_port();
    let child = herald()
        .current_dir(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (Process::new(child), format!("http://127.0.0.1:{port}"))
}

/// Waits for the server's health, then stops it and returns what it printed.
async fn run_until_healthy(child: Process, base: &str) -> String {
    herald::bench::wait_healthy(&reqwest::Client::new(), base)
        .await
        .expect("herald starts");
    let mut child = child.into_child();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn with_no_configuration_a_token_is_generated_kept_and_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base) = serve_without_token(dir.path());
    let printed = run_until_healthy(child, &base).await;
    assert!(
        dir.path().join("herald.db").exists(),
        "the database is herald.db in the working folder"
    );
    let token = printed
        .split_whitespace()
        .find_map(|word| word.strip_prefix("HERALD_ADMIN_TOKEN="))
        .unwrap_or_else(|| panic!("the token is printed: {printed}"))
        .to_owned();

    // A second start keeps the token and prints nothing about it.
    let (child, base) = serve_without_token(dir.path());
    let client = reqwest::Client::new();
    let check = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            // A 503 says the database is not ready yet (the first process may still hold the
            // file while it exits): asked again, as a client told Retry-After would.
            if let Some(status) = client
                .get(format!("{base}/admin/v1/account"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()
                .map(|r| r.status())
                .filter(|s| *s != 503)
            {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "herald did not start again");
            // Another process: polling is how the test sees it listen.
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    };
    assert_eq!(check.await, 200, "the kept token still opens the admin API");
    let printed = run_until_healthy(child, &base).await;
    assert!(!printed.contains("HERALD_ADMIN_TOKEN"), "printed once only: {printed}");
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve_without_token(dir.path());
    herald::bench::wait_healthy(&reqwest::Client::new(), &base)
        .await
        .expect("herald starts");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "herald did not stop within 10 s of SIGTERM"
        );
        // Another process: polling is how the test sees it exit.
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn without_its_database_herald_is_alive_but_not_ready_and_says_so_at_once() {
    let Some(cluster) = Cluster::of_own("stopping the database") else {
        return;
    };
    let url = cluster.url.clone();
    let app = spawn_app_with(move |c| c.database = url).await;
    let acme = app.new_account("acme").await;
    assert_eq!(app.anonymous().get("/readyz").await.status, 200);

    cluster.stop();
    // The API answers at once that it cannot serve, rather than hang with the database.
    for what in ["a REST read", "an admin read"] {
        let asked = std::time::Instant::now();
        let reply = match what {
            "a REST read" => acme.get("/restapi/v1/job").await,
            _ => app.admin().get("/admin/v1/account").await,
        };
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(2),
            "{what} took {:?}",
            asked.elapsed()
        );
        assert_eq!(reply.status, 503, "{what}: {}", reply.text);
        assert_eq!(reply.code(), "unavailable", "{what}");
        assert_eq!(reply.headers["retry-after"], "1", "{what}");
    }
    let asked = std::time::Instant::now();
    let ready = app.anonymous().get("/readyz").await;
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "a probe hears at once, not after the pool's own time-out: {:?}",
        asked.elapsed()
    );
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.code(), "unavailable");
    assert_eq!(ready.headers["retry-after"], "1");
    assert_eq!(app.anonymous().get("/healthz").await.status, 200, "alive all the same");
    let metrics = app.anonymous().get("/metrics").await;
    assert_eq!(metrics.status, 200, "a scrape still works");
    assert!(metrics.text.contains("\nherald_ready 0\n"), "{}", metrics.text);
    assert!(
        !metrics.text.contains("herald_deliveries_waiting"),
        "no gauge it could not read"
    );
}

#[tokio::test]
async fn the_oldest_waiting_delivery_is_timed_on_the_clock_and_resting_endpoints_are_left_out() {
    let app = spawn_stepped_app(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    let oldest = async || sample(&app, "herald_oldest_waiting_seconds").await;
    assert_eq!(oldest().await, 0.0, "nothing waits");

    acme.new_application().await;
    app.advance(Duration::from_secs(30));
    assert_eq!(oldest().await, 30.0, "due 30 s ago and not called");
    assert_eq!(app.step().await, 1);
    assert_eq!(oldest().await, 0.0, "called");

    // A disabled endpoint's deliveries wait on its owner, not on Herald.
    receiver.script([Answer::Status(410, "gone")]);
    acme.new_application_for_new_candidate().await;
    assert_eq!(app.step().await, 1);
    acme.new_application_for_new_candidate().await;
    app.advance(Duration::from_secs(60));
    assert_eq!(oldest().await, 0.0, "only a disabled endpoint's delivery waits");
}

#[tokio::test]
async fn the_lag_of_a_deliverys_first_call_is_measured_and_its_retries_are_not() {
    let app = spawn_app_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_millis(50)];
        c.delivery.jitter = 0.0;
    })
    .await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "not yet")]);
    subscribe(&acme, &receiver.url(), json!({"events": ["ApplicationCreate"]})).await;
    acme.new_application().await;
    receiver.wait_for(2, WAIT).await;
    // Recorded, so counted: the metrics are counted before the record is written.
    tasks(&acme, 2).await;
    assert_eq!(sample(&app, "herald_call_duration_seconds_count").await, 2.0);
    assert_eq!(
        sample(&app, "herald_delivery_lag_seconds_count").await,
        1.0,
        "one delivery, one first call"
    );
    let lag = sample(&app, "herald_delivery_lag_seconds_sum").await;
    assert!((0.0..WAIT.as_secs_f64()).contains(&lag), "{lag}");
}

#[tokio::test]
async fn with_json_logs_each_call_is_a_line_naming_its_account_endpoint_and_event() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = herald()
        .args([
            "serve",
            "--log-format",
            "json",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--admin-token", crate::helpers::ADMIN_TOKEN, "--database"])
        .arg(format!("sqlite://{}", dir.path().join("herald.db").display()))
        .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
        .env("HERALD_DELIVERY_RETRY_SCHEDULE", "50ms")
        .env("RUST_LOG", "herald=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = Process::new(child);
    let client = reqwest::Client::new();
    herald::bench::wait_healthy(&client, &base)
        .await
        .expect("herald starts");
    let admin = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let account = admin(
        "/admin/v1/account",
        json!({"login": "acme", "password": "correct horse"}),
    );
    assert_eq!(account.await.unwrap().status(), 201);
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "not yet")]);
    let endpoint = admin(
        "/admin/v1/account/acme/webhook/endpoint",
        json!({"url": receiver.url(), "events": ["*"]}),
    )
    .await
    .unwrap();
    let endpoint: serde_json::Value = endpoint.json().await.unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let sent = admin(
        &format!("/admin/v1/account/acme/webhook/endpoint/{endpoint_id}/test"),
        json!({}),
    );
    let sent: serde_json::Value = sent.await.unwrap().json().await.unwrap();
    receiver.wait_for(2, WAIT).await;
    // Each call's line is written before it is counted; the server is another process, so
    // polling is how the test sees the count.
    let deadline = std::time::Instant::now() + WAIT;
    while !client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("herald_call_duration_seconds_count 2\n")
    {
        assert!(std::time::Instant::now() < deadline, "the calls were never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut child = server.into_child();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stderr)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let call = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line in {lines:?}"))
            .clone()
    };
    let failed = call("call failed");
    assert_eq!(failed["level"], "WARN");
    let delivered = call("delivered");
    for line in [&failed, &delivered] {
        let fields = &line["fields"];
        assert!(fields["account"].is_i64(), "{line}");
        assert_eq!(fields["endpoint"], endpoint_id.as_str(), "{line}");
        assert_eq!(fields["event"], sent["event_id"], "{line}");
    }
    assert_eq!(failed["fields"]["status"], 500);
    assert_eq!(failed["fields"]["error"], "http_status");
    assert!(failed["fields"]["retry_at"].is_string(), "{failed}");
    assert_eq!(delivered["fields"]["attempt"], 2);
}

#[tokio::test]
async fn a_node_started_before_its_database_waits_for_it_alive_but_not_ready() {
    let Some(cluster) = Cluster::of_own("a database that comes late") else {
        return;
    };
    // The node is told a port where nothing listens yet; the database comes there later,
    // through a proxy to the cluster.
    let (head, tail) = cluster.url.rsplit_once(':').unwrap();
    let (real_port, db) = tail.split_once('/').unwrap();
    let real_port: u16 = real_port.parse().unwrap();
    let late_port = crate::helpers::free_port();
    let port = crate::helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = herald()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-token", crate::helpers::ADMIN_TOKEN, "--database"])
        .arg(format!("{head}:{late_port}/{db}"))
        .env("RUST_LOG", "herald=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = Process::new(child);
    let client = reqwest::Client::new();
    // Alive before its database: /healthz answers (wait_healthy would wait for /readyz).
    let deadline = std::time::Instant::now() + WAIT;
    while client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(std::time::Instant::now() < deadline, "not alive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
    };
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    let waiting = get("/admin/v1/account").await.unwrap();
    assert_eq!(waiting.status(), 503);
    let body: serde_json::Value = waiting.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");

    // Opening the store tries to connect for a second (the pool's wait) before it gives up
    // and says so: let that first attempt fail in real time before the database comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get("/readyz").await.unwrap().status(), 503, "still waiting");
    // Then something that takes connections and never answers, as a host whose database hangs
    // would: each attempt gives up after the same second, rather than wait for it forever.
    let silent = tokio::net::TcpListener::bind(("127.0.0.1", late_port)).await.unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let taking = tokio::spawn({
        let held = held.clone();
        async move {
            while let Ok((connection, _)) = silent.accept().await {
                held.lock().unwrap().push(connection);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(get("/readyz").await.unwrap().status(), 503, "still waiting");
    assert!(!held.lock().unwrap().is_empty(), "it tried the silent one");
    // The listener goes; the connections it took stay open, unanswered, until the test ends.
    taking.abort();
    let _ = taking.await;
    let proxy = tokio::net::TcpListener::bind(("127.0.0.1", late_port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = proxy.accept().await {
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(("127.0.0.1", real_port)).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Another process, retrying on its own schedule: polling is how the test sees it.
    while get("/readyz").await.unwrap().status() != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "never ready once the database came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get("/admin/v1/account").await.unwrap().status(), 200);

    let mut child = server.into_child();
    child.kill().unwrap();
    let log = String::from_utf8(child.wait_with_output().unwrap().stderr).unwrap();
    assert!(log.contains("waiting for the database"), "it says why it waits: {log}");
}

#[tokio::test]
async fn postgresql_fast_growing_tables_are_analysed_and_vacuumed_without_shrinking() {
    let app = spawn_app().await;
    if !app.db().is_postgres() {
        // SQLite's planner does not wait on statistics.
        return;
    }
    // Autovacuum visits each of the suite's many databases often, and once it has analysed
    // the tables Herald has nothing left to do: it is kept off them, so that the test sees
    // Herald's own analysis.
    app.db()
        .execute(
            "ALTER TABLE deliveries SET (autovacuum_enabled = false);
             ALTER TABLE events SET (autovacuum_enabled = false)",
        )
        .await;
    let acme = app.new_account("acme").await;
    let support = app.admin();
    let load = json!({"name": "LoadEvent", "description": "Many at once."});
    assert_eq!(support.post("/admin/v1/event-type", load).await.status, 201);
    let receiver = TestReceiver::start().await;
    subscribe(&acme, &receiver.url(), json!({"events": ["LoadEvent"]})).await;
    // 5,500 events: more rows written to a table never analysed than the 1,000 that call for
    // its first statistics, and, once delivered, as many dead versions of deliveries, more than
    // the 5,000 (and the tenth of the live ones) that call for a vacuum. Eight publishers at
    // once, to make them quickly.
    const EVENTS: usize = 5_500;
    let publisher = |first: usize| {
        let support = &support;
        async move {
            for n in (first..EVENTS).step_by(8) {
                let published = support
                    .post(
                        "/admin/v1/account/acme/event",
                        json!({"event": "LoadEvent", "data": {"n": n}}),
                    )
                    .await;
                assert_eq!(published.status, 201);
            }
        }
    };
    tokio::join!(
        publisher(0),
        publisher(1),
        publisher(2),
        publisher(3),
        publisher(4),
        publisher(5),
        publisher(6),
        publisher(7)
    );
    let analysed = "SELECT count(*) FROM pg_stat_user_tables
                    WHERE relname IN ('deliveries', 'events') AND last_analyze IS NOT NULL";
    eventually("Herald never analysed the tables that grew", || async {
        app.db().count(analysed).await == 2
    })
    .await;
    receiver.wait_for(EVENTS, Duration::from_secs(60)).await;
    // Every call leased a delivery and let it go: 11,000 rows written to `leases`, but never
    // many at once. Its statistics, and with them every plan that reads the table, are made
    // again only when its size doubles or halves, not for each thousand rows that passed
    // through.
    let analyses = app
        .db()
        .count("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'leases'")
        .await;
    assert!(
        analyses <= 1,
        "leases were analysed {analyses} times for their churn alone"
    );
    let vacuumed = "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'deliveries' AND last_vacuum IS NOT NULL";
    eventually("Herald never vacuumed the dead deliveries", || async {
        app.db().count(vacuumed).await == 1
    })
    .await;
    // Once every call is recorded no lease is left, and the table's pages are empty. A vacuum
    // that gave them back to the file system would take the lock that stalls every claim, so
    // they are kept.
    eventually("leases outlived their calls", || async {
        app.db().count("SELECT count(*) FROM leases").await == 0
    })
    .await;
    app.db().execute("VACUUM leases").await;
    assert!(
        app.db().count("SELECT pg_relation_size('leases') / 8192").await > 0,
        "a vacuum gave the leases' empty pages back to the file system"
    );
}
