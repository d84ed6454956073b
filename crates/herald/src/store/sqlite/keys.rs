//! Idempotency keys in SQLite: kept by the write they guard, on the writer's connection
//! inside that write's savepoint (see `store::once`).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::engine::Engine;
use crate::clock::Micros;
use crate::store::{Answer, Kept, KeyStore, Once, StoreError, StoreResult};

/// Keeps `once`'s key with the answer `written` gets, in the caller's write. A key kept
/// already (and not run out) is `KeyTaken`, which rolls the whole write back.
fn keep<T>(conn: &Connection, once: Option<Once<T>>, written: &T) -> StoreResult<()> {
    let Some(once) = once else { return Ok(()) };
    let row = once.row(written);
    let kept = conn
        .prepare_cached(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status, location, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                 status = excluded.status, location = excluded.location, body = excluded.body,
                 created_at = excluded.created_at
             WHERE idempotency_keys.created_at < ?8",
        )?
        .execute(params![
            row.key.scope,
            row.key.key,
            row.key.fingerprint,
            row.answer.status,
            row.answer.location,
            row.answer.body,
            row.at,
            row.expired_before(),
        ])?;
    match kept {
        0 => Err(StoreError::KeyTaken),
        _ => Ok(()),
    }
}

impl Engine {
    /// Runs the write `f` as [`Engine::write`] does, and keeps `once`'s key with the answer to
    /// what `f` wrote in the same savepoint: a key taken already undoes `f`.
    pub async fn write_once<T, F>(&self, once: Option<Once<T>>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.write(move |conn| {
            let written = f(conn)?;
            keep(conn, once, &written)?;
            Ok(written)
        })
        .await
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn kept(&self, scope: &str, key: &str, since: Micros) -> StoreResult<Option<Kept>> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.db
            .read(move |conn| {
                let kept = conn
                    .prepare_cached(
                        "SELECT fingerprint, status, location, body FROM idempotency_keys
                         WHERE scope = ? AND key = ? AND created_at >= ?",
                    )?
                    .query_row(params![scope, key, since], |r| {
                        Ok(Kept {
                            fingerprint: r.get(0)?,
                            answer: Answer {
                                status: r.get(1)?,
                                location: r.get(2)?,
                                body: r.get(3)?,
                            },
                        })
                    })
                    .optional()?;
                Ok(kept)
            })
            .await
    }

    async fn forget_keys(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        self.db
            .write(move |conn| {
                let gone = conn.execute(
                    "DELETE FROM idempotency_keys WHERE (scope, key) IN (
                         SELECT scope, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
                    params![before, batch],
                )?;
                Ok(gone as u64)
            })
            .await
    }
}
