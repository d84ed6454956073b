//! Whose data a request works on. The REST API serves the calling account; the admin API
//! serves the account its path names, with the same handlers and shapes.
//!
//! The admin API's accounts are remembered for a second ([`AdminAccounts`]): publishing
//! events through it is a host product's hot path, and reading the account for every event
//! cost a hand-off to a reading thread on SQLite and a round trip on PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::auth::{Admin, Tenant};
use super::error::ApiError;
use crate::domain::account::Account;

/// Where admin paths for one account start.
const ADMIN_ACCOUNT: &str = "/admin/v1/account/";
/// How long the admin API uses an account it read without reading it again. A change made
/// through this node forgets it; one made through another node, or racing a read of it, is
/// seen within this long.
const ADMIN_ACCOUNT_TTL: Duration = Duration::from_secs(1);
/// Past this many remembered accounts the memory starts over, bounding it.
const ADMIN_ACCOUNTS_CAP: usize = 10_000;

/// The account a request acts for, and the path its resources live under.
pub struct Scope {
    pub account: Arc<Account>,
    /// `/restapi/v1`, or `/admin/v1/account/{login}`.
    pub base: String,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let login = parts
            .uri
            .path()
            .strip_prefix(ADMIN_ACCOUNT)
            .map(|rest| rest.split('/').next().unwrap_or_default().to_owned());
        match login {
            Some(login) => {
                Admin::from_request_parts(parts, state).await?;
                let now = Instant::now();
                let account = match state.admin_accounts.recall(&login, now) {
                    Some(account) => account,
                    None => {
                        let account = Arc::new(state.store.account(&login).await?);
                        state.admin_accounts.remember(account.clone(), now);
                        account
                    }
                };
                Ok(Scope {
                    account,
                    base: format!("{ADMIN_ACCOUNT}{login}"),
                })
            }
            None => {
                let Tenant(account) = Tenant::from_request_parts(parts, state).await?;
                Ok(Scope {
                    account,
                    base: "/restapi/v1".into(),
                })
            }
        }
    }
}

/// The accounts the admin API read lately, by login, each with when it was read.
#[derive(Default)]
pub struct AdminAccounts {
    read: Mutex<HashMap<String, (Arc<Account>, Instant)>>,
}

impl AdminAccounts {
    /// The account with this login, if read less than [`ADMIN_ACCOUNT_TTL`] before `now`.
    fn recall(&self, login: &str, now: Instant) -> Option<Arc<Account>> {
        let read = self.lock();
        let (account, at) = read.get(login)?;
        (now.saturating_duration_since(*at) < ADMIN_ACCOUNT_TTL).then(|| account.clone())
    }

    fn remember(&self, account: Arc<Account>, now: Instant) {
        let mut read = self.lock();
        if read.len() >= ADMIN_ACCOUNTS_CAP {
            read.clear();
        }
        read.insert(account.login.clone(), (account, now));
    }

    /// Forgets an account changed or deleted through this node.
    pub fn forget(&self, login: &str) {
        self.lock().remove(login);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Account>, Instant)>> {
        // Nothing panics while holding it; a poisoned map is still a valid one.
        self.read.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Arc<Account> {
        Arc::new(Account {
            id: 1,
            login: "acme".into(),
            name: name.into(),
            process_id: 1,
            created_at: 0,
            notify_email: None,
        })
    }

    #[test]
    fn an_account_is_used_again_for_a_second_unless_forgotten() {
        let accounts = AdminAccounts::default();
        let read = Instant::now();
        assert!(accounts.recall("acme", read).is_none(), "nothing read yet");
        accounts.remember(account("Acme"), read);
        let within = read + ADMIN_ACCOUNT_TTL - Duration::from_millis(1);
        assert_eq!(accounts.recall("acme", within).unwrap().name, "Acme");
        assert!(accounts.recall("globex", within).is_none(), "by login");
        assert!(
            accounts.recall("acme", read + ADMIN_ACCOUNT_TTL).is_none(),
            "read again after a second"
        );

        accounts.remember(account("Acme Corp"), read);
        accounts.forget("acme");
        assert!(
            accounts.recall("acme", read).is_none(),
            "a change through this node is seen at once"
        );
    }
}
