//! Request extractors that answer bad input with the API's error envelope: JSON bodies,
//! path ids, and paging parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::envelope::{self, Resource};
use super::error::ApiError;
use crate::store::Page;

/// A JSON object body. The wrong content type (415), too many bytes (413), bad syntax (400)
/// and a wrong shape (422: not an object, a missing, unknown or mistyped field) each get their
/// own answer. The body is read as a JSON value first, so that every shape error, whatever
/// serde's reader would call it, is a 422.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            let message = "send the body as JSON with Content-Type: application/json";
            return Err(ApiError::UnsupportedMediaType(message.into()));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match (rejection.status(), crate::http::body_timeout(&rejection)) {
                (_, Some(limit)) => ApiError::BodyTimeout(limit),
                (StatusCode::PAYLOAD_TOO_LARGE, _) => ApiError::TooLarge("the request body is over 1 MiB".into()),
                _ => ApiError::MalformedJson(format!("the body could not be read: {}", rejection.body_text())),
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedJson(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::InvalidBody("the body must be a JSON object".into()));
        }
        // The error names the field at fault (`timeout: invalid type: …`).
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| match e.path().to_string().as_str() {
                "." => ApiError::InvalidBody(e.inner().to_string()),
                path => ApiError::InvalidBody(format!("{path}: {}", e.inner())),
            })
    }
}

/// Path parameters; a path that cannot be read (bad percent-encoding, say) names nothing,
/// so it is a 404 in the error envelope rather than axum's plain-text 400.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(_) => Err(ApiError::NotFound("no such path".into())),
        }
    }
}

/// Reads a numeric id from a path; anything else names nothing, so it is a 404.
pub fn path_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("{what} not found")))
}

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The query of a collection: `limit`, `since`, `pagecursor` and the filters, and what is
/// needed to write `_next`.
pub struct Paging {
    pairs: Vec<(String, String)>,
    path: String,
    limit: u32,
    before: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let mut paging = Paging {
            pairs,
            path: parts.uri.path().to_owned(),
            limit: DEFAULT_LIMIT,
            before: None,
        };
        if let Some(limit) = paging.param("limit") {
            paging.limit = limit
                .parse()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| ApiError::BadQuery(format!("limit: expected a whole number from 1 to {MAX_LIMIT}")))?;
        }
        if let Some(cursor) = paging.param("pagecursor") {
            let key = URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let key = key.and_then(|k| k.parse().ok());
            paging.before =
                Some(key.ok_or_else(|| ApiError::BadQuery("pagecursor: not a cursor this API gave".into()))?);
        }
        Ok(paging)
    }
}

impl Paging {
    /// The last value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A filter that must be a positive integer, such as `application=42`.
    pub fn id_param(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.param(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::BadQuery(format!("{name}: expected a numeric id")))
            })
            .transpose()
    }

    /// The page, with `since` read as a numeric id.
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(self.page_since(self.id_param("since")?))
    }

    /// The page, with `since` already resolved to a key by the caller.
    pub fn page_since(&self, since: Option<i64>) -> Page {
        Page {
            limit: self.limit,
            since,
            before: self.before,
        }
    }

    /// Answers with the page: `rows` holds up to `limit + 1` rows from the store; the extra
    /// one only tells that a next page exists.
    pub fn respond<T, R: Resource>(self, mut rows: Vec<T>, key: impl Fn(&T) -> i64, show: impl Fn(T) -> R) -> Response {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next = match rows.last() {
            Some(last) if more => self.link(Some(key(last))),
            _ => String::new(),
        };
        let self_path = self.link(self.before);
        envelope::many(self_path, next, rows.into_iter().map(show).collect())
    }

    /// This collection's path with the same parameters and the given cursor.
    fn link(&self, cursor: Option<i64>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "pagecursor") {
            query.append_pair(k, v);
        }
        if let Some(cursor) = cursor {
            query.append_pair("pagecursor", &URL_SAFE_NO_PAD.encode(cursor.to_string()));
        }
        let query = query.finish();
        if query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{query}", self.path)
        }
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an `Option<Option<T>>` field of a
/// patch: tells a field given as `null` (`Some(None)`) from an absent one (`None`).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
