//! Support's view: every account with its endpoints' health, and the choice of the account
//! the dashboard then shows.

use axum::extract::{Path, State};
use maud::html;

use super::endpoints::{see_other, segment};
use super::layout::{Section, csrf, page};
use super::session::{Posted, Visitor};
use super::text::plain;
use super::{UiError, UiResult, UiState};

/// `GET /ui/accounts`: support only.
pub async fn list(State(state): State<UiState>, visitor: Visitor) -> UiResult {
    if !visitor.session.support {
        return Err(UiError::Forbidden("Only support sees every account.".into()));
    }
    let accounts = state.api.get("/admin/v1/account?limit=100").await?;
    let accounts = accounts["items"].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::with_capacity(accounts.len());
    for account in &accounts {
        let login = plain(&account["login"]);
        let endpoints = state
            .api
            .get(&format!(
                "/admin/v1/account/{}/webhook/endpoint?limit=100",
                segment(&login)
            ))
            .await?;
        let states: Vec<String> = endpoints["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| plain(&e["state"]))
            .collect();
        let count = |word: &str| states.iter().filter(|s| *s == word).count();
        rows.push((
            account,
            states.len(),
            count("active"),
            count("suspended"),
            count("disabled"),
        ));
    }
    let content = html! {
        h1 { "Accounts" }
        table.accounts {
            thead { tr { th { "Account" } th { "Login" } th.num { "Endpoints" } th.num { "Active" } th.num { "Suspended" } th.num { "Disabled" } th {} } }
            tbody {
                @for (account, all, active, suspended, disabled) in &rows {
                    tr {
                        td { (plain(&account["name"])) }
                        td { code { (plain(&account["login"])) } }
                        td.num { (all) }
                        td.num { (active) }
                        td.num { @if *suspended > 0 { span.state.warn { (suspended) } } @else { "0" } }
                        td.num { @if *disabled > 0 { span.state.bad { (disabled) } } @else { "0" } }
                        td {
                            form method="post" action={"/ui/accounts/" (segment(&plain(&account["login"]))) "/open"} {
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
