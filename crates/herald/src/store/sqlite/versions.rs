//! Deprecated webhook format versions in SQLite: one row per deprecated version, and the
//! `WebhookVersionDeprecated` events a deprecation gives, written in its transaction.

use async_trait::async_trait;
use jiff::civil::Date;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::webhooks::insert_event;
use crate::clock::Micros;
use crate::domain::event::EventStamp;
use crate::domain::version::{Deprecation, WebhookVersion};
use crate::store::codec::{decode_day, decode_word, deprecation_news};
use crate::store::fanout::Fanout;
use crate::store::{Once, StoreResult, VersionStore};

#[async_trait]
impl VersionStore for SqliteStore {
    async fn deprecate_version(
        &self,
        version: WebhookVersion,
        sunset: Date,
        stamp: EventStamp,
        once: Option<Once<Deprecation>>,
    ) -> StoreResult<Deprecation> {
        self.db
            .write_once(once, move |conn| {
                let word = version.as_str();
                let day = sunset.strftime("%Y-%m-%d").to_string();
                let before: Option<(Micros, String)> = conn
                    .prepare_cached("SELECT deprecated_at, sunset FROM webhook_versions WHERE version = ?")?
                    .query_row([word], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let at = before.as_ref().map_or(stamp.at, |(at, _)| *at);
                conn.prepare_cached(
                    "INSERT INTO webhook_versions (version, deprecated_at, sunset) VALUES (?, ?, ?)
                     ON CONFLICT (version) DO UPDATE SET sunset = excluded.sunset",
                )?
                .execute(params![word, at, day])?;
                // The same sunset posted again is no news.
                if before.is_none_or(|(_, was)| was != day) {
                    let endpoints = conn
                        .prepare_cached(
                            "SELECT account_id, id FROM endpoints WHERE version = ? ORDER BY account_id, seq",
                        )?
                        .query_map([word], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
                    for (account, event) in deprecation_news(version, &day, endpoints, &stamp) {
                        insert_event(conn, account, &event, Fanout::Named)?;
                    }
                }
                Ok(Deprecation { at, sunset })
            })
            .await
    }

    async fn undeprecate_version(&self, version: WebhookVersion) -> StoreResult<bool> {
        self.db
            .write(move |conn| {
                let gone = conn.execute("DELETE FROM webhook_versions WHERE version = ?", [version.as_str()])?;
                Ok(gone > 0)
            })
            .await
    }

    async fn deprecations(&self) -> StoreResult<Vec<(WebhookVersion, Deprecation)>> {
        self.db
            .read(move |conn| {
                let rows = conn
                    .prepare_cached("SELECT version, deprecated_at, sunset FROM webhook_versions ORDER BY version")?
                    .query_map([], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Micros>(1)?, r.get::<_, String>(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(version, at, sunset)| {
                        let sunset = decode_day("sunset", &sunset)?;
                        Ok((decode_word("version", version)?, Deprecation { at, sunset }))
                    })
                    .collect()
            })
            .await
    }

    async fn sunset_for(&self, account: i64) -> StoreResult<Option<Date>> {
        self.db
            .read(move |conn| {
                let sunset: Option<String> = conn
                    .prepare_cached(
                        "SELECT min(w.sunset) FROM webhook_versions w
                         WHERE EXISTS (SELECT 1 FROM endpoints e WHERE e.account_id = ? AND e.version = w.version)",
                    )?
                    .query_row([account], |r| r.get(0))?;
                sunset.map(|day| decode_day("sunset", &day)).transpose()
            })
            .await
    }
}
