//! `POST /admin/v1/account/{login}/portal`: a one-time link that signs its visitor into the
//! account's dashboard with `view` or `manage` permissions, for a host product to frame or
//! redirect to, as Svix's App Portal does.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Admin, new_token};
use super::envelope::{Resource, created_answer};
use super::error::{ApiError, ApiResult};
use super::extract::{Json, Path};
use super::idempotency::IdempotencyKey;
use crate::config::parse_duration;
use crate::domain::Invalid;
use crate::domain::session::{PORTAL_TTL_MAX, Permissions, PortalLink};

/// What the link grants.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalIn {
    /// `view` (everything but secrets; no change) or `manage`.
    permissions: String,
    /// How long the link works, such as `"1h"`; at most 24 h. One hour when absent.
    ttl: Option<String>,
}

/// A portal link.
#[derive(Serialize, schemars::JsonSchema)]
pub struct PortalOut {
    /// The link's path.
    #[serde(rename = "_self")]
    self_: String,
    /// `/ui/portal/<token>`, or the whole URL under `[ui] public_url` when set. It works once.
    url: String,
    /// Until when it works.
    expires: String,
    permissions: String,
}

impl Resource for PortalOut {
    const SCHEMA: &'static str = "portal";
    const COLLECTION: &'static str = "portals";
    fn self_path(&self) -> &str {
        &self.self_
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/account/{login}/portal", post(create))
}

async fn create(
    State(state): State<AppState>,
    _: Admin,
    Path(login): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<PortalIn>,
) -> ApiResult {
    if !state.config.ui.enabled {
        return Err(ApiError::Conflict("the dashboard is off ([ui] enabled = false)".into()));
    }
    let permissions = Permissions::parse(&input.permissions)
        .ok_or_else(|| Invalid::field("permissions", "must be \"view\" or \"manage\""))?;
    let ttl = match input.ttl.as_deref() {
        None => std::time::Duration::from_secs(3600),
        Some(text) => parse_duration(text).map_err(|problem| Invalid::field("ttl", &problem))?,
    };
    if ttl.is_zero() || ttl > PORTAL_TTL_MAX {
        return Err(Invalid::field("ttl", "must be more than 0 and at most 24h").into());
    }
    let account = state.store.account(&login).await?;
    let (token, hash) = new_token();
    let now = state.clock.now();
    let link = PortalLink {
        token_hash: hash,
        account_id: account.id,
        permissions,
        expires_at: now + ttl.as_micros() as i64,
    };
    let path = format!("/ui/portal/{token}");
    let public = state.config.ui.public_url.clone();
    let clock = state.clock.clone();
    // Under an Idempotency-Key the answer, link included, is kept for a repeat, as the
    // answer to an endpoint's creation keeps its secret.
    let answer = move |link: &PortalLink| {
        created_answer(PortalOut {
            url: if public.is_empty() {
                path.clone()
            } else {
                format!("{public}{path}")
            },
            self_: path,
            expires: clock.datetime(link.expires_at),
            permissions: link.permissions.as_str().into(),
        })
    };
    key.write(now, answer, |once| state.store.add_portal_link(link, once))
        .await
}
