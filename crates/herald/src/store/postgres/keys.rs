//! Idempotency keys in PostgreSQL: kept by the write they guard, in its transaction (see
//! `store::once`). Two nodes writing under one key at once: the second's insert waits for
//! the first's transaction, and finds the key taken once it commits.

use async_trait::async_trait;
use sqlx::{PgConnection, Postgres, Row, Transaction};

use super::PostgresStore;
use crate::clock::Micros;
use crate::store::once::KeyRow;
use crate::store::{Answer, Kept, KeyStore, Once, StoreError, StoreResult};

/// Keeps a key's row in the caller's transaction. A key kept already (and not run out) is
/// `KeyTaken`: the caller drops its transaction, which rolls the write back.
pub(super) async fn keep_row(conn: &mut PgConnection, row: &KeyRow) -> StoreResult<()> {
    let kept = sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, location, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint,
             status = excluded.status, location = excluded.location, body = excluded.body,
             created_at = excluded.created_at
         WHERE idempotency_keys.created_at < $8",
    )
    .bind(&row.key.scope)
    .bind(&row.key.key)
    .bind(&row.key.fingerprint)
    .bind(i16::try_from(row.answer.status).unwrap_or(i16::MAX))
    .bind(&row.answer.location)
    .bind(&row.answer.body)
    .bind(row.at)
    .bind(row.expired_before())
    .execute(conn)
    .await?;
    match kept.rows_affected() {
        0 => Err(StoreError::KeyTaken),
        _ => Ok(()),
    }
}

/// Keeps `once`'s key with the answer to `written`, then commits the write.
pub(super) async fn commit_once<T>(
    mut tx: Transaction<'_, Postgres>,
    once: Option<Once<T>>,
    written: &T,
) -> StoreResult<()> {
    if let Some(once) = once {
        keep_row(&mut tx, &once.row(written)).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn kept(&self, scope: &str, key: &str, since: Micros) -> StoreResult<Option<Kept>> {
        let row = sqlx::query(
            "SELECT fingerprint, status, location, body FROM idempotency_keys
             WHERE scope = $1 AND key = $2 AND created_at >= $3",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: i16 = row.try_get(1)?;
        Ok(Some(Kept {
            fingerprint: row.try_get(0)?,
            answer: Answer {
                status: u16::try_from(status).unwrap_or_default(),
                location: row.try_get(2)?,
                body: row.try_get(3)?,
            },
        }))
    }

    async fn forget_keys(&self, before: Micros, batch: u32) -> StoreResult<u64> {
        let gone = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (scope, key) IN (
                 SELECT scope, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(batch))
        .execute(&self.pool)
        .await?;
        Ok(gone.rows_affected())
    }
}
