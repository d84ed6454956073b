//! Support's view: every account with its endpoints' health, and the choice of the account
//! the dashboard then shows.

use axum::extract::{Path, State};
use maud::html;
use serde_json::{Value, json};

use super::endpoints::{see_other, segment};
use super::layout::{Section, csrf, page};
use super::session::{Posted, Visitor};
use super::text::{plain, rate};
use super::{UiError, UiResult, UiState};

/// An account's line: its endpoints by state, and their calls over the last day.
struct Health {
    account: Value,
    endpoints: usize,
    active: usize,
    suspended: usize,
    disabled: usize,
    calls: i64,
    /// Succeeded calls over all calls; `null` without calls.
    rate: Value,
}

/// `GET /ui/accounts`: support only.
pub async fn list(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    if !visitor.session.support {
        return Err(UiError::Forbidden("Only support sees every account.".into()));
    }
    let accounts = state.api.get("/admin/v1/account?limit=100").await?;
    let mut rows = Vec::new();
    for account in accounts["items"].as_array().cloned().unwrap_or_default() {
        rows.push(health(&state, account).await?);
    }
    let content = html! {
        h1 { "Accounts" }
        table.accounts {
            thead { tr {
                th { "Account" } th { "Login" } th.num { "Endpoints" } th.num { "Suspended" } th.num { "Disabled" }
                th.num { "Calls, 24 h" } th.num { "Success, 24 h" } th {}
            } }
            tbody {
                @for row in &rows {
                    tr {
                        td { (plain(&row.account["name"])) }
                        td { code { (plain(&row.account["login"])) } }
                        td.num {
                            (row.endpoints)
                            @if row.active < row.endpoints { span.muted { " (" (row.active) " active)" } }
                        }
                        td.num { @if row.suspended > 0 { span.state.warn { (row.suspended) } } @else { "0" } }
                        td.num { @if row.disabled > 0 { span.state.bad { (row.disabled) } } @else { "0" } }
                        td.num { (row.calls) }
                        td.num { (rate(&row.rate)) }
                        td {
                            form method="post" action={"/ui/accounts/" (segment(&plain(&row.account["login"]))) "/open"} {
                                (csrf(&visitor)) button type="submit" { "Open" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&visitor, Section::Accounts, "Accounts", content))
}

/// An account's endpoints by state, and the day's calls of them all from each one's counters.
async fn health(state: &UiState, account: Value) -> Result<Health, UiError> {
    let base = format!("/admin/v1/account/{}", segment(&plain(&account["login"])));
    let endpoints = state.api.get(&format!("{base}/webhook/endpoint?limit=100")).await?;
    let items = endpoints["items"].as_array().cloned().unwrap_or_default();
    let count = |word: &str| items.iter().filter(|e| e["state"] == word).count();
    let (mut calls, mut succeeded) = (0, 0);
    for endpoint in &items {
        let id = segment(&plain(&endpoint["id"]));
        let stats = state.api.get(&format!("{base}/webhook/endpoint/{id}/stats")).await?;
        calls += stats["calls"].as_i64().unwrap_or(0);
        succeeded += stats["succeeded"].as_i64().unwrap_or(0);
    }
    Ok(Health {
        endpoints: items.len(),
        active: count("active"),
        suspended: count("suspended"),
        disabled: count("disabled"),
        calls,
        rate: if calls > 0 {
            json!(succeeded as f64 / calls as f64)
        } else {
            Value::Null
        },
        account,
    })
}

/// `POST /ui/accounts/{login}/open`: support's session acts for this account from now on.
pub async fn open(State(state): State<UiState>, Path(login): Path<String>, posted: Posted) -> UiResult {
    if !posted.visitor.session.support {
        return Err(UiError::Forbidden("Only support opens other accounts.".into()));
    }
    let account = state.app.store.account(&login).await?;
    state
        .app
        .store
        .set_session_account(posted.visitor.session.token_hash, Some(account.id))
        .await?;
    Ok(see_other("/ui"))
}
