//! Signing in and out: an account's login and password, or support's admin token (both
//! limited on failure as the API's are), and the portal's one-time links. The sign-in form
//! has no session yet, so its CSRF token is a cookie of its own that the form repeats.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{self, shell};
use super::session::{Posted, Visitor, cookie, expired_cookie, new_token, over_https, session_cookie};
use super::{UiError, UiResult, UiState};
use crate::api::auth::{constant_time_eq, sha256};
use crate::api::error::ApiError;
use crate::domain::session::{Permissions, Session};

/// The sign-in form's own CSRF cookie.
const LOGIN_COOKIE: &str = "herald_login";

/// `GET /ui/login`: the form, or the dashboard for a visitor signed in already.
pub async fn form(State(state): State<UiState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if <Visitor as axum::extract::FromRequestParts<UiState>>::from_request_parts(&mut parts, &state)
        .await
        .is_ok()
    {
        return Redirect::to("/ui").into_response();
    }
    login_page(&state, &parts.headers, StatusCode::OK, None)
}

fn login_page(state: &UiState, headers: &HeaderMap, status: StatusCode, problem: Option<&str>) -> Response {
    let (token, _) = new_token();
    let secure = if over_https(state, headers) { "; Secure" } else { "" };
    let set_cookie = format!("{LOGIN_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict{secure}");
    let markup = shell(
        "Sign in",
        html! {
            h1.brand-title { "Herald" }
            p.muted { "Webhooks: see every call, find why an endpoint fails, and fix it." }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            form.card method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(token);
                h2 { "Account" }
                label { "Login" input name="login" autocomplete="username" autofocus; }
                label { "Password" input name="password" type="password" autocomplete="current-password"; }
                details {
                    summary { "Support: sign in with the admin token" }
                    label { "Admin token" input name="token" type="password" autocomplete="off"; }
                }
                button type="submit" { "Sign in" }
            }
        },
    );
    (status, [(header::SET_COOKIE, set_cookie)], markup).into_response()
}

/// `POST /ui/login`.
pub async fn sign_in(State(state): State<UiState>, request: Request) -> UiResult {
    let (parts, body) = request.into_parts();
    let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| UiError::Forbidden("The form could not be read.".into()))?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map_or(String::new(), |(_, value)| value.clone())
    };
    let expected = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(field("csrf").as_bytes(), expected.as_bytes()) {
        return Err(UiError::Forbidden(
            "The sign-in form had expired or came from elsewhere. Open it again.".into(),
        ));
    }
    let app = &state.app;
    let now = Instant::now();
    let token = field("token");
    let support = !token.trim().is_empty();
    let login = field("login");
    let limited = |error: ApiError| match error {
        ApiError::RateLimited { retry_after } => Ok(login_page(
            &state,
            &parts.headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!("Too many failed sign-ins: try again in {retry_after} s.")),
        )),
        other => Err(UiError::Refused(super::client::Refused {
            status: other.status_and_code().0,
            code: other.status_and_code().1.into(),
            message: other.to_string(),
        })),
    };
    let account = if support {
        if let Err(e) = app.failed_logins.check(None, address, now) {
            return limited(e);
        }
        if !constant_time_eq(&sha256(token.trim().as_bytes()), &app.admin_digest[..]) {
            app.failed_logins.failed(None, address, now);
            return Ok(login_page(
                &state,
                &parts.headers,
                StatusCode::UNAUTHORIZED,
                Some("Wrong admin token."),
            ));
        }
        None
    } else {
        if let Err(e) = app.failed_logins.check(Some(&login), address, now) {
            return limited(e);
        }
        match app.logins.verify(app.store.as_ref(), &login, &field("password")).await {
            Ok(Some(account)) => Some(account.id),
            Ok(None) => {
                app.failed_logins.failed(Some(&login), address, now);
                return Ok(login_page(
                    &state,
                    &parts.headers,
                    StatusCode::UNAUTHORIZED,
                    Some("Wrong login or password."),
                ));
            }
            Err(e) => return limited(e),
        }
    };
    let (token, hash) = new_token();
    let at = app.clock.now();
    app.store
        .open_session(Session {
            token_hash: hash,
            account_id: account,
            support,
            permissions: Permissions::Manage,
            portal: false,
            csrf: new_token().0,
            created_at: at,
            last_seen_at: at,
        })
        .await?;
    let to = if support { "/ui/accounts" } else { "/ui" };
    let cookie = session_cookie(&token, over_https(&state, &parts.headers), false);
    Ok(signed_in(cookie, to))
}

/// A 303 to `to` that gives the browser its session cookie and drops the sign-in form's.
fn signed_in(cookie: String, to: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
    // Two cookies: headers given as an array would keep only the last one.
    for value in [cookie, format!("{LOGIN_COOKIE}=; Path=/ui/login; Max-Age=0")] {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `GET /ui/logout`: a button, since signing out is a change and changes are posted.
pub async fn sign_out_form(visitor: Visitor) -> Response {
    layout::page(
        &visitor,
        layout::Section::Settings,
        "Sign out",
        html! {
            h1 { "Sign out" }
            form method="post" action="/ui/logout" {
                (layout::csrf(&visitor))
                button type="submit" { "Sign out" }
            }
        },
    )
}

/// `POST /ui/logout`: ends the session in the store and in the browser.
pub async fn sign_out(State(state): State<UiState>, posted: Posted) -> UiResult {
    state.app.store.close_session(posted.visitor.session.token_hash).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, expired_cookie()),
            (header::LOCATION, "/ui/login".to_owned()),
        ],
    )
        .into_response())
}

/// `GET /ui/portal/{token}`: follows a one-time link into its account's dashboard.
pub async fn portal(State(state): State<UiState>, Path(token): Path<String>, headers: HeaderMap) -> UiResult {
    let app = &state.app;
    let (session_token, hash) = new_token();
    let at = app.clock.now();
    let fresh = Session {
        token_hash: hash,
        account_id: None,
        support: false,
        permissions: Permissions::View,
        portal: true,
        csrf: new_token().0,
        created_at: at,
        last_seen_at: at,
    };
    match app
        .store
        .follow_portal_link(sha256(token.as_bytes()), at, fresh)
        .await?
    {
        Some(_) => {
            let cookie = session_cookie(&session_token, over_https(&state, &headers), true);
            let mut response = signed_in(cookie, "/ui");
            response.extensions_mut().insert(super::headers::Framable);
            Ok(response)
        }
        None => Ok((
            StatusCode::GONE,
            layout::bare(
                "This link no longer works",
                "A portal link works once, for a limited time. Ask the product that sent you here for a new one.",
            ),
        )
            .into_response()),
    }
}
