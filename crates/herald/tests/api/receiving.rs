//! The receiving side against a real Herald: the herald-receiver crate verifies our calls,
//! its axum extractor types them and drops duplicates, and `herald listen` prints them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use herald_receiver::{Event, Payload, Receiver, Verified, Webhook};
use serde_json::json;

use crate::delivery::{WAIT, move_on, subscribe, tasks};
use crate::helpers::spawn_app;
use crate::receiver::TestReceiver;

#[tokio::test]
async fn the_receiver_crate_verifies_herald_calls() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({"events": ["ProcessStepChange"]})).await;
    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;
    let call = receiver.wait_for(1, WAIT).await.remove(0);
    let webhook = Webhook::new(endpoint["secret"].as_str().unwrap()).unwrap();
    assert_eq!(webhook.verify(&call.body, &call.headers), Ok(()));
    let stranger = Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert!(stranger.verify(&call.body, &call.headers).is_err());
}

#[derive(Clone)]
struct Handled {
    receiver: Arc<Receiver>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl FromRef<Handled> for Arc<Receiver> {
    fn from_ref(state: &Handled) -> Arc<Receiver> {
        state.receiver.clone()
    }
}

async fn handle(State(state): State<Handled>, Verified(event): Verified<Event>) -> &'static str {
    state.events.lock().unwrap().push(event);
    "received"
}

#[tokio::test]
async fn the_axum_extractor_hands_over_typed_events_once() {
    the_extractor_hands_over_typed_events_once_in(1).await;
}

#[tokio::test]
async fn the_axum_extractor_reads_version_2_calls_alike() {
    the_extractor_hands_over_typed_events_once_in(2).await;
}

async fn the_extractor_hands_over_typed_events_once_in(version: u8) {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let endpoint = subscribe(
        &acme,
        &url,
        json!({"events": ["ProcessStepChange"], "version": version.to_string()}),
    )
    .await;
    let handled = Handled {
        receiver: Arc::new(Receiver::new(endpoint["secret"].as_str().unwrap()).unwrap()),
        events: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/webhook", axum::routing::post(handle))
        .with_state(handled.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;
    let task = tasks(&acme, 1).await.remove(0);
    assert_eq!(task["response_status"], 200, "{task}");
    {
        let events = handled.events.lock().unwrap();
        assert_eq!(events.len(), 1);
        let Payload::ProcessStepChange { from, to } = events[0].payload() else {
            panic!("{:?}", events[0])
        };
        assert_eq!((from.name.as_str(), to.name.as_str()), ("New", "Screening"));
        assert_eq!(
            events[0].application.as_ref().unwrap().self_,
            format!("/restapi/v1/application/{application}")
        );
        assert_eq!(events[0].version, version);
        // Version 2 brings the application as it was, at the step the event moved it to.
        let snapshot = events[0].snapshot.as_ref().map(|s| s["step"]["name"].clone());
        assert_eq!(snapshot, (version == 2).then(|| json!("Screening")));
    }
    // The same event again (a retry by hand): acknowledged, not handled twice.
    acme.post(&format!("{}/retry", task["_self"].as_str().unwrap()), json!({}))
        .await;
    let again = tasks(&acme, 2).await.remove(0);
    assert_eq!(again["response_status"], 200);
    assert!(
        again["response_body"].as_str().unwrap().contains("duplicate"),
        "{again}"
    );
    assert_eq!(handled.events.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn herald_listen_prints_each_call_and_its_signature() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = subscribe(
        &acme,
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"events": ["ProcessStepChange"]}),
    )
    .await;
    let mut listen = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["listen", "--port", &port.to_string(), "--status", "202", "--secret"])
        .arg(endpoint["secret"].as_str().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(listen.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("listening on http://127.0.0.1:"), "{first}");

    let application = acme.new_application().await;
    move_on(&acme, application, acme.step_ids().await[1]).await;
    let line = tokio::time::timeout(
        WAIT,
        tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap()),
    )
    .await
    .expect("a line for the call")
    .unwrap();
    assert!(
        line.contains("ProcessStepChange") && line.contains("signature valid"),
        "{line}"
    );
    assert!(
        line.contains(&format!("/restapi/v1/application/{application}")),
        "{line}"
    );
    let task = tasks(&acme, 1).await.remove(0);
    assert_eq!(task["response_status"], 202, "the chosen status");
    let _ = listen.kill();
    let _ = listen.wait();
}
