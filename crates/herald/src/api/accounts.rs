//! `/admin/v1/account`: support creates, lists, shows, changes and deletes accounts, each
//! created with its hiring process.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Admin, hash_password};
use super::envelope::{IdLink, Link, Resource, created_answer, no_content, ok};
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Paging, Path, present};
use super::idempotency::IdempotencyKey;
use crate::clock::Clock;
use crate::domain::account::{Account, AccountChange, NewAccount};
use crate::store::AccountUpdate;

/// A new account.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    login: String,
    password: String,
    name: Option<String>,
    /// The hiring process; the spec's six-step example when absent.
    process: Option<ProcessIn>,
}

/// A process by the names of its steps: the first is `START`, the last two `END`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessIn {
    name: String,
    steps: Vec<String>,
}

/// A change to an account: any of its name, password and e-mail address (`null` stops the
/// e-mail).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    name: Option<String>,
    password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    notify_email: Option<Option<String>>,
}

/// An account as support sees it.
#[derive(Serialize, schemars::JsonSchema)]
pub struct AccountOut {
    #[serde(rename = "_self")]
    self_: String,
    id: i64,
    login: String,
    name: String,
    /// Where e-mail about its endpoints goes (suspended, disabled); `null`: nowhere.
    notify_email: Option<String>,
    /// When it was created.
    datetime: String,
    process: IdLink,
    endpoints: Link,
}

impl AccountOut {
    fn new(account: Account, clock: &Clock) -> AccountOut {
        let self_ = format!("/admin/v1/account/{}", account.login);
        AccountOut {
            endpoints: Link::to(format!("{self_}/webhook/endpoint")),
            self_,
            id: account.id,
            login: account.login,
            name: account.name,
            notify_email: account.notify_email,
            datetime: clock.datetime(account.created_at),
            process: IdLink {
                self_: format!("/restapi/v1/process/{}", account.process_id),
                id: account.process_id,
            },
        }
    }
}

impl Resource for AccountOut {
    const SCHEMA: &'static str = "account";
    const COLLECTION: &'static str = "accounts";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/account", get(list).post(create))
        .route("/admin/v1/account/{login}", get(show).patch(update).delete(delete))
}

async fn list(State(state): State<AppState>, _: Admin, paging: Paging) -> ApiResult {
    let rows = state.store.accounts(paging.page()?).await?;
    Ok(paging.respond(rows, |a| a.id, |a| AccountOut::new(a, &state.clock)))
}

async fn create(
    State(state): State<AppState>,
    _: Admin,
    key: IdempotencyKey,
    Json(input): Json<AccountIn>,
) -> ApiResult {
    let process = input.process.map(|p| (p.name, p.steps));
    let new = NewAccount::new(input.login, input.password, input.name, process)?;
    let hash = hash_password(new.password.clone()).await.map_err(ApiError::Internal)?;
    let now = state.clock.now();
    let clock = state.clock.clone();
    let answer = move |account: &Account| created_answer(AccountOut::new(account.clone(), &clock));
    key.write(now, answer, |once| state.store.create_account(&new, &hash, now, once))
        .await
}

async fn show(State(state): State<AppState>, _: Admin, Path(login): Path<String>) -> ApiResult {
    let account = state.store.account(&login).await?;
    Ok(ok(AccountOut::new(account, &state.clock)))
}

/// Changes an account's name, password or e-mail address; a new password works at once and
/// the old one stops.
async fn update(
    State(state): State<AppState>,
    _: Admin,
    Path(login): Path<String>,
    Json(patch): Json<AccountPatch>,
) -> ApiResult {
    let change = AccountChange::new(patch.name, patch.password, patch.notify_email)?;
    let password_hash = match change.password {
        Some(password) => Some(hash_password(password).await.map_err(ApiError::Internal)?),
        None => None,
    };
    let update = AccountUpdate {
        name: change.name,
        password_hash,
        notify_email: change.notify_email,
    };
    let account = state.store.update_account(&login, &update).await?;
    state.admin_accounts.forget(&login);
    if update.password_hash.is_some() {
        state.logins.forget(&login);
    }
    Ok(ok(AccountOut::new(account, &state.clock)))
}

/// Deletes the account and everything it owns; its login stops working at once.
async fn delete(State(state): State<AppState>, _: Admin, Path(login): Path<String>) -> ApiResult {
    state.store.delete_account(&login).await?;
    state.logins.forget(&login);
    state.admin_accounts.forget(&login);
    Ok(no_content())
}
