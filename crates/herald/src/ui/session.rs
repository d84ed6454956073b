//! Who is looking: the session behind the `herald_session` cookie, checked on every page,
//! and the forms it posts, each checked for the session's CSRF token before anything is
//! read from them. A `view` session's changes are refused here, once for every form.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::{UiError, UiState};
pub use crate::api::auth::new_token;
use crate::api::auth::{constant_time_eq, sha256};
use crate::domain::account::Account;
use crate::domain::session::{Permissions, Session};

/// The session cookie's name.
pub const COOKIE: &str = "herald_session";

/// A cookie's value in a request, by name.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the browser reached Herald over https: directly under a `public_url` in https,
/// or through a proxy that says so.
pub fn over_https(state: &UiState, headers: &HeaderMap) -> bool {
    state.app.config.ui.public_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The `Set-Cookie` value that gives the browser a session. A portal session over https is
/// `SameSite=None` (and `Partitioned`), or a host product's frame on another site would
/// never send it back; its forms still carry the CSRF token.
pub fn session_cookie(token: &str, https: bool, portal: bool) -> String {
    let mut cookie = format!("{COOKIE}={token}; Path=/ui; HttpOnly");
    match (https, portal) {
        (true, true) => cookie += "; SameSite=None; Secure; Partitioned",
        (true, false) => cookie += "; SameSite=Strict; Secure",
        (false, _) => cookie += "; SameSite=Strict",
    }
    cookie
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn expired_cookie() -> String {
    format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A visitor with a live session, and the account it acts for, if any yet.
pub struct Visitor {
    pub session: Session,
    pub account: Option<Arc<Account>>,
}

impl Visitor {
    /// The account the visitor acts for; support that has not picked one is sent to pick.
    pub fn account(&self) -> Result<&Arc<Account>, UiError> {
        self.account.as_ref().ok_or(UiError::PickAccount)
    }

    /// The admin API's paths for the visitor's account.
    pub fn base(&self) -> Result<String, UiError> {
        Ok(format!("/admin/v1/account/{}", self.account()?.login))
    }

    pub fn may_change(&self) -> bool {
        self.session.permissions == Permissions::Manage
    }

    /// Refuses a `view` session a page that exists only to change something (a form).
    pub fn changer(&self) -> Result<(), UiError> {
        if self.may_change() { Ok(()) } else { Err(view_only()) }
    }
}

impl FromRequestParts<UiState> for Visitor {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Visitor, UiError> {
        let token = cookie(&parts.headers, COOKIE).ok_or(UiError::SignIn)?;
        let hash = sha256(token.as_bytes());
        let store = &state.app.store;
        let session = store.session(hash).await?.ok_or(UiError::SignIn)?;
        let now = state.app.clock.now();
        if !session.alive_at(now) {
            store.close_session(hash).await?;
            return Err(UiError::SignIn);
        }
        if session.needs_touch_at(now) {
            store.touch_session(hash, now).await?;
        }
        let account = match session.account_id {
            Some(id) => match store.account_by_id(id).await {
                Ok(account) => Some(Arc::new(account)),
                Err(crate::store::StoreError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        Ok(Visitor { session, account })
    }
}

/// A form posted by a visitor, its CSRF token checked.
pub struct Posted {
    pub visitor: Visitor,
    fields: Vec<(String, String)>,
}

impl Posted {
    /// A field's value; `""` when the form did not send it.
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of a field that may repeat (check boxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

impl FromRequest<UiState> for Posted {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &UiState) -> Result<Posted, UiError> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, crate::api::MAX_BODY_BYTES)
            .await
            .map_err(|_| UiError::Forbidden("The form could not be read.".into()))?;
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
        let sent = fields
            .iter()
            .find(|(key, _)| key == "csrf")
            .map_or("", |(_, value)| value.as_str());
        if !constant_time_eq(sent.as_bytes(), visitor.session.csrf.as_bytes()) {
            return Err(UiError::Forbidden(
                "This form is not from this session (its CSRF token is missing or wrong); nothing was changed. Reload the page and try again.".into(),
            ));
        }
        Ok(Posted { visitor, fields })
    }
}

/// A form that changes something: posted with the CSRF token, by a `manage` session.
pub struct Change(pub Posted);

impl FromRequest<UiState> for Change {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &UiState) -> Result<Change, UiError> {
        let posted = Posted::from_request(request, state).await?;
        if !posted.visitor.may_change() {
            return Err(view_only());
        }
        Ok(Change(posted))
    }
}

fn view_only() -> UiError {
    UiError::Forbidden("This session may only look (view permissions); nothing was changed.".into())
}
