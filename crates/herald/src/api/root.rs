//! `GET /restapi/v1`: the API's version, its changelog and a link to every collection.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::auth::Tenant;
use super::envelope::{Link, Ok, plain, schema_path};
use super::error::ApiResult;

/// The minor version of API v1.
pub const VERSION: &str = "1.0";

/// The root document.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RootOut {
    #[serde(rename = "_status")]
    status: Ok,
    #[serde(rename = "_self")]
    self_: String,
    #[serde(rename = "_schema")]
    schema: String,
    #[serde(rename = "_version")]
    version: String,
    /// When this major version ends, `YYYY-MM-DD`: the first sunset of a deprecated webhook
    /// format version that one of the account's endpoints still receives; `null` while none
    /// is planned.
    #[serde(rename = "_expiration")]
    expiration: Option<String>,
    #[serde(rename = "_changelog")]
    changelog: Vec<ChangelogEntry>,
    job: Link,
    candidate: Link,
    application: Link,
    step: Link,
    process: Link,
    webhook: WebhookLinks,
}

/// One minor version and what it brought.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ChangelogEntry {
    version: String,
    changes: String,
}

/// The webhook collections.
#[derive(Serialize, schemars::JsonSchema)]
pub struct WebhookLinks {
    task: Link,
    endpoint: Link,
    event: Link,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/restapi/v1", get(root))
}

async fn root(State(state): State<AppState>, Tenant(account): Tenant) -> ApiResult {
    let expiration = state.store.sunset_for(account.id).await?;
    let link = |path: &str| Link::to(format!("/restapi/v1{path}"));
    Ok(plain(&RootOut {
        status: Ok::Ok,
        self_: "/restapi/v1".into(),
        schema: schema_path("root"),
        version: VERSION.into(),
        expiration: expiration.map(|day| day.strftime("%Y-%m-%d").to_string()),
        changelog: vec![ChangelogEntry {
            version: "1.0".into(),
            changes: "Jobs, candidates, applications, steps, and webhook endpoints and events.".into(),
        }],
        job: link("/job"),
        candidate: link("/candidate"),
        application: link("/application"),
        step: link("/step"),
        process: link(&format!("/process/{}", account.process_id)),
        webhook: WebhookLinks {
            task: link("/webhook/task"),
            endpoint: link("/webhook/endpoint"),
            event: link("/webhook/event"),
        },
    }))
}
