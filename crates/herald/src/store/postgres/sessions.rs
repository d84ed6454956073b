//! The dashboard's sessions and portal links in PostgreSQL (see `domain::session`). A link
//! is marked used by one conditional `UPDATE`, so that of two visitors following it at once,
//! on one node or two, only one gets a session.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::keys::commit_once;
use crate::clock::Micros;
use crate::domain::session::{PortalLink, Session};
use crate::store::codec::decode_permissions;
use crate::store::{Once, SessionStore, StoreError, StoreResult};

const SESSION_COLUMNS: &str = "token_hash, account_id, support, permissions, portal, csrf, created_at, last_seen_at";

fn session_of(row: &PgRow) -> StoreResult<Session> {
    let hash: Vec<u8> = row.try_get(0)?;
    let permissions: String = row.try_get(3)?;
    Ok(Session {
        token_hash: hash
            .try_into()
            .map_err(|_| StoreError::Other("token_hash: not 32 bytes".into()))?,
        account_id: row.try_get(1)?,
        support: row.try_get(2)?,
        permissions: decode_permissions(&permissions)?,
        portal: row.try_get(4)?,
        csrf: row.try_get(5)?,
        created_at: row.try_get(6)?,
        last_seen_at: row.try_get(7)?,
    })
}

async fn insert_session<'e>(executor: impl sqlx::PgExecutor<'e>, s: &Session) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO ui_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&s.token_hash[..])
    .bind(s.account_id)
    .bind(s.support)
    .bind(s.permissions.as_str())
    .bind(s.portal)
    .bind(&s.csrf)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn open_session(&self, session: Session) -> StoreResult<()> {
        insert_session(&self.pool, &session).await
    }

    async fn session(&self, token_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM ui_sessions WHERE token_hash = $1"
        ))
        .bind(&token_hash[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_of).transpose()
    }

    async fn touch_session(&self, token_hash: [u8; 32], at: Micros) -> StoreResult<()> {
        sqlx::query("UPDATE ui_sessions SET last_seen_at = $2 WHERE token_hash = $1")
            .bind(&token_hash[..])
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_session_account(&self, token_hash: [u8; 32], account: Option<i64>) -> StoreResult<()> {
        sqlx::query("UPDATE ui_sessions SET account_id = $2 WHERE token_hash = $1 AND support")
            .bind(&token_hash[..])
            .bind(account)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn close_session(&self, token_hash: [u8; 32]) -> StoreResult<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
            .bind(&token_hash[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_portal_link(&self, link: PortalLink, once: Option<Once<PortalLink>>) -> StoreResult<PortalLink> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO ui_portal_links (token_hash, account_id, permissions, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&link.token_hash[..])
        .bind(link.account_id)
        .bind(link.permissions.as_str())
        .bind(link.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error().map(|d| d.is_foreign_key_violation()) {
            Some(true) => StoreError::NotFound("account"),
            _ => e.into(),
        })?;
        commit_once(tx, once, &link).await?;
        Ok(link)
    }

    async fn follow_portal_link(
        &self,
        token_hash: [u8; 32],
        now: Micros,
        session: Session,
    ) -> StoreResult<Option<Session>> {
        let mut tx = self.pool.begin().await?;
        let link: Option<(i64, String)> = sqlx::query_as(
            "UPDATE ui_portal_links SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
             RETURNING account_id, permissions",
        )
        .bind(&token_hash[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((account, permissions)) = link else {
            return Ok(None);
        };
        let session = session.opened_by_link(account, decode_permissions(&permissions)?);
        insert_session(&mut *tx, &session).await?;
        tx.commit().await?;
        Ok(Some(session))
    }

    async fn forget_sessions(&self, idle_before: Micros, expired_before: Micros) -> StoreResult<u64> {
        let gone: i64 = sqlx::query_scalar(
            "WITH sessions AS (DELETE FROM ui_sessions WHERE last_seen_at < $1 RETURNING 1),
             links AS (DELETE FROM ui_portal_links WHERE expires_at < $2 RETURNING 1)
             SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM links)",
        )
        .bind(idle_before)
        .bind(expired_before)
        .fetch_one(&self.pool)
        .await?;
        Ok(gone as u64)
    }
}
