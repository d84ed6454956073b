//! The dashboard's way to the data: requests to the admin API's own router, in process. A
//! page shows what the API answers and a form changes what the API would, with the same
//! checks and the same errors, so the two cannot drift apart. The visitor's session was
//! checked before; the request is marked [`InProcess`] instead of carrying the admin token.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use crate::api::auth::InProcess;

/// The admin API, as the dashboard calls it.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// What the API refused, as its error envelope told it.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl Api {
    pub fn new(router: Router) -> Api {
        Api { router }
    }

    pub async fn get(&self, path: &str) -> Result<Value, Refused> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, Refused> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, Refused> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, Refused> {
        self.call(Method::DELETE, path, None).await
    }

    /// One request; the answer's JSON (`null` for a 204), or what the API said was wrong.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Refused> {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let mut request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .map_err(|e| refused(StatusCode::BAD_REQUEST, "invalid_path", e.to_string()))?;
        request.extensions_mut().insert(InProcess);
        let response = self.router.clone().oneshot(request).await.expect("routers do not fail");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        };
        if status.is_success() {
            return Ok(json);
        }
        let error = &json["error"];
        Err(refused(
            status,
            error["code"].as_str().unwrap_or("error"),
            error["message"].as_str().unwrap_or("the request failed").to_owned(),
        ))
    }
}

fn refused(status: StatusCode, code: &str, message: String) -> Refused {
    Refused {
        status,
        code: code.to_owned(),
        message,
    }
}
