//! The account's settings: its name and where e-mail about its endpoints goes.

use axum::extract::State;
use maud::html;
use serde_json::{Value, json};

use super::endpoints::see_other;
use super::layout::{Section, csrf, page};
use super::session::{Change, Visitor};
use super::text::plain;
use super::{UiResult, UiState};

/// `GET /ui/settings`.
pub async fn show(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    let base = visitor.base()?;
    let account = state.api.get(&base).await?;
    Ok(settings_page(&visitor, &account, None))
}

fn settings_page(visitor: &Visitor, account: &Value, problem: Option<&str>) -> axum::response::Response {
    let content = html! {
        h1 { "Settings" }
        @if let Some(problem) = problem { p.error role="alert" { (problem) } }
        dl.config {
            dt { "Login" } dd { code { (plain(&account["login"])) } }
            dt { "Created" } dd { (plain(&account["datetime"])) }
            dt { "REST API" } dd { code { "/restapi/v1" } " with HTTP Basic, this login and its password" }
        }
        @if visitor.may_change() {
            form.card.wide method="post" action="/ui/settings" {
                (csrf(visitor))
                label { "Name" input name="name" required value=(plain(&account["name"])); }
                label {
                    "E-mail about endpoints that are suspended or disabled"
                    input name="notify_email" type="email" value=(plain(&account["notify_email"])) placeholder="none";
                }
                button.primary type="submit" { "Save" }
            }
        } @else {
            dl.config {
                dt { "Name" } dd { (plain(&account["name"])) }
                dt { "E-mail about endpoints" } dd { (plain(&account["notify_email"])) }
            }
        }
    };
    page(visitor, Section::Settings, "Settings", content)
}

/// `POST /ui/settings`.
pub async fn change(State(state): State<UiState>, Change(form): Change) -> UiResult {
    let base = form.visitor.base()?;
    let email = form.field("notify_email").trim();
    let body = json!({
        "name": form.field("name").trim(),
        "notify_email": if email.is_empty() { Value::Null } else { json!(email) },
    });
    match state.api.patch(&base, body).await {
        Ok(_) => Ok(see_other("/ui/settings")),
        Err(refused) if refused.status.is_client_error() => {
            let account = state.api.get(&base).await?;
            let mut response = settings_page(&form.visitor, &account, Some(&refused.message));
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(refused) => Err(refused.into()),
    }
}
