//! JobAffinity's envelope: `_status`, `_self` and `_schema` on every answer, `items` and
//! `_next` on collections, `{"_self": …}` links, and the `INVALID` error shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::store::Answer;

/// Where JSON Schemas are served.
pub const SCHEMA_BASE: &str = "/restapi/schemav1/";

/// Something the API shows, with the names of its schemas.
pub trait Resource: Serialize + JsonSchema {
    /// The schema of one resource: `/restapi/schemav1/{SCHEMA}`.
    const SCHEMA: &'static str;
    /// The schema of a page of them.
    const COLLECTION: &'static str;
    /// The resource's own path.
    fn self_path(&self) -> &str;
}

/// `"OK"`: the `_status` of every successful answer.
#[derive(Serialize, JsonSchema)]
pub enum Ok {
    #[serde(rename = "OK")]
    Ok,
}

/// A link to another resource.
#[derive(Debug, Clone, Serialize, serde::Deserialize, JsonSchema)]
pub struct Link {
    #[serde(rename = "_self")]
    pub self_: String,
}

impl Link {
    pub fn to(path: String) -> Link {
        Link { self_: path }
    }
}

/// A link that also carries the target's id, as JobAffinity's nested objects do.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IdLink {
    #[serde(rename = "_self")]
    pub self_: String,
    pub id: i64,
}

/// One resource in its envelope; the resource carries its own `_self`.
#[derive(Serialize, JsonSchema)]
pub struct One<T> {
    #[serde(rename = "_status")]
    status: Ok,
    #[serde(rename = "_schema")]
    schema: String,
    #[serde(flatten)]
    resource: T,
}

/// A page of a collection.
#[derive(Serialize, JsonSchema)]
pub struct Many<T> {
    #[serde(rename = "_status")]
    status: Ok,
    #[serde(rename = "_schema")]
    schema: String,
    #[serde(rename = "_self")]
    self_: String,
    /// The path of the next page, or `""` on the last one.
    #[serde(rename = "_next")]
    next: String,
    items: Vec<T>,
}

/// An answer with a JSON body: the form in which a write's answer is kept under its
/// `Idempotency-Key` and given again.
fn json_answer<T: Serialize>(status: StatusCode, location: Option<String>, body: &T) -> Answer {
    Answer {
        status: status.as_u16(),
        location,
        body: serde_json::to_string(body).expect("the API's shapes serialise"),
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = (status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// 200 with the resource.
pub fn ok<R: Resource>(resource: R) -> Response {
    ok_answer(resource).into_response()
}

/// 200 with the resource, as an answer to keep.
pub fn ok_answer<R: Resource>(resource: R) -> Answer {
    let one = One {
        status: Ok::Ok,
        schema: schema_path(R::SCHEMA),
        resource,
    };
    json_answer(StatusCode::OK, None, &one)
}

/// 201 with the new resource and its `Location`.
pub fn created<R: Resource>(resource: R) -> Response {
    created_answer(resource).into_response()
}

/// 201 with the new resource and its `Location`, as an answer to keep.
pub fn created_answer<R: Resource>(resource: R) -> Answer {
    let location = resource.self_path().to_owned();
    let one = One {
        status: Ok::Ok,
        schema: schema_path(R::SCHEMA),
        resource,
    };
    json_answer(StatusCode::CREATED, Some(location), &one)
}

/// 200 with a page of a collection.
pub fn many<R: Resource>(self_path: String, next: String, items: Vec<R>) -> Response {
    let page = Many {
        status: Ok::Ok,
        schema: schema_path(R::COLLECTION),
        self_: self_path,
        next,
        items,
    };
    json_answer(StatusCode::OK, None, &page).into_response()
}

/// 200 with a body of its own shape (the root), which still carries the envelope's fields.
pub fn plain<T: Serialize>(body: &T) -> Response {
    json_answer(StatusCode::OK, None, body).into_response()
}

/// 204: a deletion, which has nothing left to show.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn schema_path(name: &str) -> String {
    format!("{SCHEMA_BASE}{name}")
}
