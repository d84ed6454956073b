//! `/restapi/schemav1/{name}`: the JSON Schema (draft 2020-12) of every answer, generated
//! from the very types that are serialised, so that they cannot drift apart.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::AppState;
use super::accounts::AccountOut;
use super::applications::ApplicationView;
use super::candidates::CandidateOut;
use super::endpoints::{DispatchOut, EndpointOut};
use super::envelope::{Many, One, Resource, SCHEMA_BASE};
use super::error::{ApiError, ErrorBody};
use super::events::{EventOut, EventTypeOut};
use super::extract::Path;
use super::jobs::JobOut;
use super::portal::PortalOut;
use super::root::RootOut;
use super::stats::StatsOut;
use super::steps::{ProcessOut, StepChangeOut};
use super::tasks::TaskOut;
use super::versions::WebhookVersionOut;

fn schema<T: schemars::JsonSchema>(name: &str) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).expect("a schema serialises");
    schema["$id"] = Value::String(format!("{SCHEMA_BASE}{name}"));
    // Generic envelopes would all be titled `One` or `Many`; a title of its own lets a client
    // generator name each answer's type.
    schema["title"] = Value::String(name.to_owned());
    schema
}

fn add<R: Resource>(all: &mut HashMap<&'static str, Value>) {
    all.insert(R::SCHEMA, schema::<One<R>>(R::SCHEMA));
    all.insert(R::COLLECTION, schema::<Many<R>>(R::COLLECTION));
}

/// Every schema by name, built once.
pub fn all() -> &'static HashMap<&'static str, Value> {
    static ALL: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = HashMap::new();
        all.insert("root", schema::<RootOut>("root"));
        all.insert("error", schema::<ErrorBody>("error"));
        add::<JobOut>(&mut all);
        add::<CandidateOut>(&mut all);
        add::<ApplicationView>(&mut all);
        add::<StepChangeOut>(&mut all);
        add::<ProcessOut>(&mut all);
        add::<EndpointOut>(&mut all);
        add::<EventTypeOut>(&mut all);
        add::<EventOut>(&mut all);
        add::<AccountOut>(&mut all);
        add::<TaskOut>(&mut all);
        add::<DispatchOut>(&mut all);
        add::<WebhookVersionOut>(&mut all);
        all.insert(StatsOut::SCHEMA, schema::<One<StatsOut>>(StatsOut::SCHEMA));
        all.insert(PortalOut::SCHEMA, schema::<One<PortalOut>>(PortalOut::SCHEMA));
        all
    })
}

pub fn router() -> Router<AppState> {
    Router::new().route("/restapi/schemav1/{name}", get(show))
}

async fn show(Path(name): Path<String>) -> Result<Response, ApiError> {
    let schema = all()
        .get(name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("schema {name:?} not found")))?;
    let mut response = axum::Json(schema).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/schema+json"),
    );
    Ok(response)
}
