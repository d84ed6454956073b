//! Whose data a request works on. The REST API serves the calling account; the admin API
//! serves the account its path names, with the same handlers and shapes.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::auth::{Admin, Tenant};
use super::error::ApiError;
use crate::domain::account::Account;

/// Where admin paths for one account start.
const ADMIN_ACCOUNT: &str = "/admin/v1/account/";

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
                let account = Arc::new(state.store.account(&login).await?);
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
