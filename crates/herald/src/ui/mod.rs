//! The dashboard (`/ui`): pages rendered on the server for customers, for support, and for a
//! host product's customers through portal links. Everything essential works without
//! JavaScript; the one script (`assets/herald.js`) only asks for confirmations and refreshes
//! the history.
//!
//! Pages read and write through the admin API's own router, in process (`client`), after
//! the visitor's session is checked (`session`); forms carry the session's CSRF token, and a
//! `view` session changes nothing. Every answer carries a strict `Content-Security-Policy`
//! (`headers`), and everything an endpoint answered is shown as text, which `maud` escapes.

use axum::Router;
use axum::extract::FromRef;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::AppState;

mod accounts;
mod charts;
mod client;
mod endpoints;
mod events;
mod headers;
mod layout;
mod login;
mod session;
mod settings;
mod tasks;
mod text;

pub use client::Api;

/// What the dashboard's handlers reach: the API's state and the API itself.
#[derive(Clone)]
pub struct UiState {
    pub app: AppState,
    pub api: Api,
}

impl FromRef<UiState> for AppState {
    fn from_ref(ui: &UiState) -> AppState {
        ui.app.clone()
    }
}

/// The dashboard's routes, over `api`, the admin API's router.
pub fn router(app: AppState, api: Router) -> Router {
    let state = UiState {
        app,
        api: Api::new(api),
    };
    Router::new()
        .route("/ui", get(endpoints::list))
        .route("/ui/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", get(login::sign_out_form).post(login::sign_out))
        .route("/ui/portal/{token}", get(login::portal))
        .route("/ui/accounts", get(accounts::list))
        .route("/ui/accounts/{login}/open", post(accounts::open))
        .route("/ui/endpoints/new", get(endpoints::new_form).post(endpoints::create))
        .route("/ui/endpoints/{id}", get(endpoints::show))
        .route(
            "/ui/endpoints/{id}/edit",
            get(endpoints::edit_form).post(endpoints::edit),
        )
        .route("/ui/endpoints/{id}/test", post(endpoints::test))
        .route("/ui/endpoints/{id}/resume", post(endpoints::resume))
        .route("/ui/endpoints/{id}/rotate-secret", post(endpoints::rotate_secret))
        .route("/ui/endpoints/{id}/replay", post(endpoints::replay))
        .route("/ui/endpoints/{id}/delete", post(endpoints::delete))
        .route("/ui/tasks", get(tasks::list))
        .route("/ui/tasks/{id}", get(tasks::show))
        .route("/ui/tasks/{id}/retry", post(tasks::retry))
        .route("/ui/events", get(events::catalogue))
        .route("/ui/settings", get(settings::show).post(settings::change))
        .route("/ui/assets/herald.css", get(css))
        .route("/ui/assets/herald.js", get(js))
        .layer(axum::middleware::from_fn_with_state(state.clone(), headers::secure))
        .with_state(state)
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum UiError {
    /// No live session: to the sign-in form.
    SignIn,
    /// Support has not picked an account yet.
    PickAccount,
    /// The session may not do this (403): a `view` session's change, or a form without the
    /// session's CSRF token.
    Forbidden(String),
    /// The API refused, with its status and its message.
    Refused(client::Refused),
    /// The store failed.
    Store(crate::store::StoreError),
}

impl From<client::Refused> for UiError {
    fn from(refused: client::Refused) -> UiError {
        UiError::Refused(refused)
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(error: crate::store::StoreError) -> UiError {
        UiError::Store(error)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::SignIn => return Redirect::to("/ui/login").into_response(),
            UiError::PickAccount => return Redirect::to("/ui/accounts").into_response(),
            UiError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            UiError::Refused(refused) => {
                let title = if refused.status == StatusCode::NOT_FOUND {
                    "Not found"
                } else {
                    "Refused"
                };
                (refused.status, title, refused.message)
            }
            UiError::Store(error) => {
                let error = crate::api::error::ApiError::from(error);
                let status = error.status_and_code().0;
                if status.is_server_error() {
                    tracing::error!(error = %error, "dashboard page failed");
                    (
                        status,
                        "Unavailable",
                        "The database did not answer; try again in a moment.".to_owned(),
                    )
                } else {
                    (status, "Not found", error.to_string())
                }
            }
        };
        (status, layout::bare(title, &message)).into_response()
    }
}

pub type UiResult<T = Response> = Result<T, UiError>;

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/herald.css"))
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("assets/herald.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
