//! Deprecated webhook format versions in PostgreSQL: one row per deprecated version, and the
//! `WebhookVersionDeprecated` events a deprecation gives, written in its transaction. The
//! version's row is locked while its news is decided, so that of two nodes deprecating it at
//! once, only one tells the same sunset.

use async_trait::async_trait;
use jiff::civil::Date;
use sqlx::Row;

use super::PostgresStore;
use super::keys::commit_once;
use super::webhooks::insert_event;
use crate::clock::Micros;
use crate::domain::event::EventStamp;
use crate::domain::version::{Deprecation, WebhookVersion};
use crate::store::codec::{decode_day, decode_word, deprecation_news};
use crate::store::fanout::Fanout;
use crate::store::{Once, StoreResult, VersionStore};

#[async_trait]
impl VersionStore for PostgresStore {
    async fn deprecate_version(
        &self,
        version: WebhookVersion,
        sunset: Date,
        stamp: EventStamp,
        once: Option<Once<Deprecation>>,
    ) -> StoreResult<Deprecation> {
        let word = version.as_str();
        let day = sunset.strftime("%Y-%m-%d").to_string();
        let mut tx = self.pool.begin().await?;
        // A first deprecation makes the row (with no sunset yet), so that there is a row to
        // lock; a concurrent one waits for it, then finds it.
        sqlx::query(
            "INSERT INTO webhook_versions (version, deprecated_at, sunset) VALUES ($1, $2, '')
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(word)
        .bind(stamp.at)
        .execute(&mut *tx)
        .await?;
        let (at, before): (Micros, String) =
            sqlx::query_as("SELECT deprecated_at, sunset FROM webhook_versions WHERE version = $1 FOR UPDATE")
                .bind(word)
                .fetch_one(&mut *tx)
                .await?;
        // The same sunset posted again is no news.
        if before != day {
            sqlx::query("UPDATE webhook_versions SET sunset = $2 WHERE version = $1")
                .bind(word)
                .bind(&day)
                .execute(&mut *tx)
                .await?;
            let endpoints: Vec<(i64, String)> =
                sqlx::query_as("SELECT account_id, id FROM endpoints WHERE version = $1 ORDER BY account_id, seq")
                    .bind(word)
                    .fetch_all(&mut *tx)
                    .await?;
            for (account, event) in deprecation_news(version, &day, endpoints, &stamp) {
                insert_event(&mut tx, account, &event, Fanout::Named).await?;
            }
        }
        let deprecation = Deprecation { at, sunset };
        commit_once(tx, once, &deprecation).await?;
        Ok(deprecation)
    }

    async fn undeprecate_version(&self, version: WebhookVersion) -> StoreResult<bool> {
        let gone = sqlx::query("DELETE FROM webhook_versions WHERE version = $1")
            .bind(version.as_str())
            .execute(&self.pool)
            .await?;
        Ok(gone.rows_affected() > 0)
    }

    async fn deprecations(&self) -> StoreResult<Vec<(WebhookVersion, Deprecation)>> {
        let rows = sqlx::query("SELECT version, deprecated_at, sunset FROM webhook_versions ORDER BY version")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let sunset: String = r.try_get(2)?;
                let deprecation = Deprecation {
                    at: r.try_get(1)?,
                    sunset: decode_day("sunset", &sunset)?,
                };
                Ok((decode_word("version", r.try_get(0)?)?, deprecation))
            })
            .collect()
    }

    async fn sunset_for(&self, account: i64) -> StoreResult<Option<Date>> {
        let sunset: Option<String> = sqlx::query_scalar(
            "SELECT min(w.sunset) FROM webhook_versions w
             WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.account_id = $1 AND e.version = w.version)",
        )
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        sunset.map(|day| decode_day("sunset", &day)).transpose()
    }
}
