//! Nothing is lost: the real binary is killed with SIGKILL under load, restarted on the same
//! database, and every event it acknowledged (and any it wrote) still reaches the endpoint.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::db::TestDb;
use crate::helpers::{ADMIN_TOKEN, Process};
use crate::receiver::TestReceiver;

const ACKNOWLEDGED_BEFORE_KILL: usize = 90;

fn start(db: &str, listen: &str) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--listen", listen, "--admin-token", ADMIN_TOKEN])
        .arg("--database")
        .arg(db)
        .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
        // On PostgreSQL the killed process's leases must run out before its calls are made
        // again: a short time-out keeps that wait short.
        .env("HERALD_DELIVERY_TIMEOUT", "2s")
        .env("HERALD_DELIVERY_RETRY_SCHEDULE", "100ms,100ms,100ms")
        .stdout(Stdio::null())
        // Warnings and errors reach the test's output, to tell why a server did not start.
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the herald binary starts");
    Process::new(child)
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    herald::bench::wait_healthy(client, base).await.expect("herald starts");
}

/// What an acknowledged API call promised: an event of this type, about this application, to
/// this step (for a move).
type Promise = (&'static str, i64, Option<i64>);

/// One client's load: applications made and moved, noting each acknowledged event, until the
/// server stops answering.
async fn load(
    client: reqwest::Client,
    base: String,
    acknowledged: Arc<Mutex<Vec<Promise>>>,
    job: i64,
    steps: Vec<i64>,
) {
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .basic_auth("acme", Some("correct horse"))
            .json(&body)
            .send()
    };
    for i in 0..200 {
        let Ok(candidate) = post(
            "/restapi/v1/candidate",
            json!({"first_name": "C", "last_name": format!("{i}")}),
        )
        .await
        else {
            return;
        };
        let Ok(candidate) = candidate.json::<serde_json::Value>().await else {
            return;
        };
        let body = json!({"candidate_id": candidate["id"], "job_id": job});
        match post("/restapi/v1/application", body).await {
            Ok(r) if r.status() == 201 => {
                let application: serde_json::Value = r.json().await.unwrap_or_default();
                let id = application["id"].as_i64().unwrap_or_default();
                acknowledged.lock().unwrap().push(("ApplicationCreate", id, None));
                for step in &steps[1..3] {
                    let body = json!({"application_id": application["id"], "process_step_id": step});
                    match post("/restapi/v1/step", body).await {
                        Ok(r) if r.status() == 201 => {
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(("ProcessStepChange", id, Some(*step)));
                        }
                        _ => return,
                    };
                }
            }
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_delivers_every_event_after_restart() {
    let db = TestDb::new().await;
    let port = crate::helpers::free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let receiver = TestReceiver::start().await;

    let mut server = start(&db.url, &listen);
    wait_healthy(&client, &base).await;
    let admin = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    admin(
        "/admin/v1/account",
        json!({"login": "acme", "password": "correct horse"}),
    )
    .await
    .unwrap();
    let endpoint = json!({"url": receiver.url(), "events": ["*"]});
    assert_eq!(
        admin("/admin/v1/account/acme/webhook/endpoint", endpoint)
            .await
            .unwrap()
            .status(),
        201
    );
    let as_acme = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .basic_auth("acme", Some("correct horse"))
    };
    let job: serde_json::Value = client
        .post(format!("{base}/restapi/v1/job"))
        .basic_auth("acme", Some("correct horse"))
        .json(&json!({"title": "Rust engineer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let process: serde_json::Value = as_acme("/restapi/v1/process/1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps: Vec<i64> = process["steps"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();

    let acknowledged: Arc<Mutex<Vec<Promise>>> = Arc::default();
    let loads: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn(load(
                client.clone(),
                base.clone(),
                acknowledged.clone(),
                job["id"].as_i64().unwrap(),
                steps.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the load did not get going");
        // The kill must fall in the middle of real load, which real time drives.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL"); // Child::kill is SIGKILL on Unix: no shutdown code runs.
    server.wait().unwrap();
    for load in loads {
        load.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut server = start(&db.url, &listen);
    wait_healthy(&client, &base).await;
    let written = db.texts("SELECT id FROM events").await;
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let received = receiver.received();
        let bodies: Vec<serde_json::Value> = received.iter().map(|c| c.json()).collect();
        let distinct: HashSet<&str> = received.iter().map(|c| c.header("webhook-id")).collect();
        // Each acknowledged call's event, by what it is about, not merely by count.
        let arrived = |(event, application, to): &Promise| {
            bodies.iter().any(|b| {
                b["event"] == *event
                    && b["application"]["_self"] == format!("/restapi/v1/application/{application}")
                    && to.is_none_or(|to| b["data"]["to"]["id"] == to)
            })
        };
        let lost = acknowledged.iter().filter(|p| !arrived(p)).count();
        let missing = written.iter().filter(|id| !distinct.contains(id.as_str())).count();
        if lost == 0 && missing == 0 {
            eprintln!(
                "durability: {} acknowledged, {} written, {} calls, {} repeats",
                acknowledged.len(),
                written.len(),
                received.len(),
                received.len() - distinct.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{lost} acknowledged events and {missing} of {} written events never arrived",
            written.len()
        );
        // The restarted server is another process: polling is how the test sees its calls.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Publishes event `i` under the key `{round}-{i}`; answers the event's id, and whether the
/// answer was a replay, or `None` if no answer came.
async fn publish_keyed(client: &reqwest::Client, base: &str, round: usize, i: usize) -> Option<(String, bool)> {
    let reply = client
        .post(format!("{base}/admin/v1/account/acme/event"))
        .bearer_auth(ADMIN_TOKEN)
        .header("idempotency-key", format!("{round}-{i}"))
        .json(&json!({"event": "OrderPaid", "data": {"round": round, "i": i}}))
        .send()
        .await
        .ok()?;
    if reply.status() != 201 {
        return None;
    }
    let replayed = reply.headers().contains_key("idempotent-replayed");
    let event: serde_json::Value = reply.json().await.ok()?;
    Some((event["id"].as_str()?.to_owned(), replayed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_a_kill_lost_is_answered_again_not_written_again() {
    const EVENTS: usize = 150;
    let db = TestDb::new().await;
    let listen = format!("127.0.0.1:{}", crate::helpers::free_port());
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    let mut server = start(&db.url, &listen);
    wait_healthy(&client, &base).await;
    for (path, body) in [
        (
            "/admin/v1/account",
            json!({"login": "acme", "password": "correct horse"}),
        ),
        (
            "/admin/v1/event-type",
            json!({"name": "OrderPaid", "description": "paid"}),
        ),
    ] {
        let reply = client
            .post(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send();
        assert_eq!(reply.await.unwrap().status(), 201);
    }
    // The window between a commit and its answer is short: a round whose kill misses it (no
    // event written but unanswered) proves nothing, and another round is run, up to five.
    let mut lost_answers = 0;
    for round in 0..5 {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let publishes: Vec<_> = (0..EVENTS)
            .map(|i| {
                let (client, base, answered) = (client.clone(), base.clone(), answered.clone());
                tokio::spawn(async move {
                    if let Some(answer) = publish_keyed(&client, &base, round, i).await {
                        answered.lock().unwrap().push((i, answer.0));
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.lock().unwrap().len() < EVENTS / 4 {
            assert!(Instant::now() < deadline, "the publishes did not get going");
            // The kill must fall while writes are being answered, which real time drives.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill().expect("SIGKILL");
        server.wait().unwrap();
        for publish in publishes {
            publish.await.unwrap();
        }
        let answered = answered.lock().unwrap().clone();

        server = start(&db.url, &listen);
        wait_healthy(&client, &base).await;
        let written_before = db.count("SELECT count(*) FROM events").await;
        for i in 0..EVENTS {
            let (id, replayed) = publish_keyed(&client, &base, round, i)
                .await
                .expect("a repeat after the restart is answered");
            if let Some((_, first)) = answered.iter().find(|(n, _)| *n == i) {
                assert!(replayed, "event {i} was answered before the kill");
                assert_eq!(&id, first, "the repeat shows the event of the first answer");
            } else if replayed {
                // Written and committed, but its answer died with the server.
                lost_answers += 1;
            }
        }
        let events = db.count("SELECT count(*) FROM events").await;
        assert_eq!(events, ((round + 1) * EVENTS) as i64, "every event once, none twice");
        eprintln!(
            "idempotency under SIGKILL, round {round}: {} answered before the kill, {} written, \
             {lost_answers} written but unanswered so far",
            answered.len(),
            written_before - (round * EVENTS) as i64,
        );
        if lost_answers > 0 {
            break;
        }
    }
    assert!(
        lost_answers > 0,
        "no kill fell between a commit and its answer in five rounds"
    );
}
