//! The seed's receiver, done right: verify each call, answer 200 at once, skip duplicates,
//! and do the work in the background: fetch the application over Herald's REST API with
//! HTTP Basic, as the seed's Flask and Express examples do.
//!
//! ```sh
//! HERALD_SECRET=whsec_… HERALD_URL=http://127.0.0.1:8080 HERALD_LOGIN=acme \
//!   HERALD_PASSWORD='correct horse' PORT=3000 cargo run -p herald-receiver --example receiver
//! ```

use std::sync::Arc;

use axum::extract::FromRef;
use axum::routing::post;
use herald_receiver::{Event, Payload, Receiver, Verified};

#[derive(Clone)]
struct AppState {
    receiver: Arc<Receiver>,
    client: reqwest::Client,
    herald: Arc<Herald>,
}

/// Where and as whom to read the REST API.
struct Herald {
    url: String,
    login: String,
    password: String,
}

impl FromRef<AppState> for Arc<Receiver> {
    fn from_ref(state: &AppState) -> Arc<Receiver> {
        state.receiver.clone()
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("set {name}"))
}

#[tokio::main]
async fn main() {
    let state = AppState {
        receiver: Arc::new(Receiver::new(&env("HERALD_SECRET")).expect("HERALD_SECRET is a whsec_ secret")),
        client: reqwest::Client::new(),
        herald: Arc::new(Herald {
            url: env("HERALD_URL"),
            login: env("HERALD_LOGIN"),
            password: env("HERALD_PASSWORD"),
        }),
    };
    let app = axum::Router::new().route("/webhook", post(webhook)).with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", env("PORT").parse::<u16>().expect("PORT is a port")))
        .await
        .expect("the port is free");
    axum::serve(listener, app).await.expect("the receiver serves");
}

/// Verified and new (the extractor answered otherwise): acknowledge now, work later.
async fn webhook(
    axum::extract::State(state): axum::extract::State<AppState>,
    Verified(event): Verified<Event>,
) -> &'static str {
    tokio::spawn(process(state, event));
    "received"
}

async fn process(state: AppState, event: Event) {
    let Payload::ProcessStepChange { from, to } = event.payload() else {
        return;
    };
    let Some(application) = event.application else { return };
    let url = format!("{}{}", state.herald.url, application.self_);
    let fetched = state
        .client
        .get(&url)
        .basic_auth(&state.herald.login, Some(&state.herald.password))
        .send()
        .await;
    match fetched.and_then(reqwest::Response::error_for_status) {
        Ok(response) => {
            let details: serde_json::Value = response.json().await.unwrap_or_default();
            println!(
                "{} moved from {} to {}: {}",
                application.self_, from.name, to.name, details["candidate"]["last_name"]
            );
        }
        // Herald already has its 200; a failure here is this receiver's to retry or report.
        Err(e) => eprintln!("fetching {url} failed: {e}"),
    }
}
