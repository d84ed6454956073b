//! The dashboard's sessions and portal links in SQLite (see `domain::session`). A link is
//! followed on the writer's connection, so that of two visitors following it at once only
//! one gets a session.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use crate::clock::Micros;
use crate::domain::session::{PortalLink, Session};
use crate::store::codec::decode_permissions;
use crate::store::{Once, SessionStore, StoreError, StoreResult};

const SESSION_COLUMNS: &str = "token_hash, account_id, support, permissions, portal, csrf, created_at, last_seen_at";

fn session_of(row: &Row) -> rusqlite::Result<Session> {
    let permissions: String = row.get(3)?;
    Ok(Session {
        token_hash: row.get(0)?,
        account_id: row.get(1)?,
        support: row.get(2)?,
        permissions: decode_permissions(&permissions)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into()))?,
        portal: row.get(4)?,
        csrf: row.get(5)?,
        created_at: row.get(6)?,
        last_seen_at: row.get(7)?,
    })
}

fn insert_session(conn: &Connection, s: &Session) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO ui_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))?
    .execute(params![
        s.token_hash,
        s.account_id,
        s.support,
        s.permissions.as_str(),
        s.portal,
        s.csrf,
        s.created_at,
        s.last_seen_at
    ])?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn open_session(&self, session: Session) -> StoreResult<()> {
        self.db.write(move |conn| Ok(insert_session(conn, &session)?)).await
    }

    async fn session(&self, token_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        self.db
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(&format!(
                        "SELECT {SESSION_COLUMNS} FROM ui_sessions WHERE token_hash = ?"
                    ))?
                    .query_row([token_hash], session_of)
                    .optional()?)
            })
            .await
    }

    async fn touch_session(&self, token_hash: [u8; 32], at: Micros) -> StoreResult<()> {
        self.db
            .write(move |conn| {
                conn.prepare_cached("UPDATE ui_sessions SET last_seen_at = ? WHERE token_hash = ?")?
                    .execute(params![at, token_hash])?;
                Ok(())
            })
            .await
    }

    async fn set_session_account(&self, token_hash: [u8; 32], account: Option<i64>) -> StoreResult<()> {
        self.db
            .write(move |conn| {
                conn.prepare_cached("UPDATE ui_sessions SET account_id = ? WHERE token_hash = ? AND support")?
                    .execute(params![account, token_hash])?;
                Ok(())
            })
            .await
    }

    async fn close_session(&self, token_hash: [u8; 32]) -> StoreResult<()> {
        self.db
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM ui_sessions WHERE token_hash = ?")?
                    .execute([token_hash])?;
                Ok(())
            })
            .await
    }

    async fn add_portal_link(&self, link: PortalLink, once: Option<Once<PortalLink>>) -> StoreResult<PortalLink> {
        self.db
            .write_once(once, move |conn| {
                conn.prepare_cached(
                    "INSERT INTO ui_portal_links (token_hash, account_id, permissions, expires_at)
                     VALUES (?, ?, ?, ?)",
                )?
                .execute(params![
                    link.token_hash,
                    link.account_id,
                    link.permissions.as_str(),
                    link.expires_at
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::NotFound("account"),
                    _ => e.into(),
                })?;
                Ok(link)
            })
            .await
    }

    async fn follow_portal_link(
        &self,
        token_hash: [u8; 32],
        now: Micros,
        session: Session,
    ) -> StoreResult<Option<Session>> {
        self.db
            .write(move |conn| {
                let link: Option<(i64, String)> = conn
                    .prepare_cached(
                        "UPDATE ui_portal_links SET used_at = ?
                         WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
                         RETURNING account_id, permissions",
                    )?
                    .query_row(params![now, token_hash, now], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((account, permissions)) = link else {
                    return Ok(None);
                };
                let session = session.opened_by_link(account, decode_permissions(&permissions)?);
                insert_session(conn, &session)?;
                Ok(Some(session))
            })
            .await
    }

    async fn forget_sessions(&self, idle_before: Micros, expired_before: Micros) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let sessions = conn
                    .prepare_cached("DELETE FROM ui_sessions WHERE last_seen_at < ?")?
                    .execute([idle_before])?;
                let links = conn
                    .prepare_cached("DELETE FROM ui_portal_links WHERE expires_at < ?")?
                    .execute([expired_before])?;
                Ok((sessions + links) as u64)
            })
            .await
    }
}
