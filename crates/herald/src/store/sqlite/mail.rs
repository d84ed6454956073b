//! The e-mail queue in SQLite: filled by `record_calls` in the transaction of the news it
//! tells, emptied by the mailer (see `notify`).

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use crate::clock::Micros;
use crate::domain::operational::{Mail, SUSPENSION_MAIL_PERIOD};
use crate::store::codec::MAIL_SELECT;
use crate::store::recording::Queued;
use crate::store::rows::mail_from;
use crate::store::{MailStore, StoreResult};

/// Queues an e-mail, if the account gave an address and, for a suspension, none was queued
/// for the endpoint in the last day.
pub(super) fn queue(conn: &Connection, mail: &Queued) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO emails (account_id, endpoint_seq, event_id, task_id, kind, created_at, next_at)
         SELECT a.id, ?2, ?3, ?4, ?5, ?6, ?6 FROM accounts a
         WHERE a.id = ?1 AND a.notify_email IS NOT NULL
           AND (?5 <> 'suspended' OR NOT EXISTS (
               SELECT 1 FROM emails m WHERE m.endpoint_seq = ?2 AND m.kind = 'suspended' AND m.created_at > ?7))",
    )?
    .execute(params![
        mail.account,
        mail.endpoint_seq,
        mail.event_id,
        mail.task_id,
        mail.kind.as_str(),
        mail.at,
        mail.at - SUSPENSION_MAIL_PERIOD
    ])?;
    Ok(())
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn due_mail(&self, now: Micros, until: Micros, limit: u32) -> StoreResult<Vec<Mail>> {
        self.db
            .write(move |conn| {
                let ids: Vec<i64> = conn
                    .prepare_cached(
                        "UPDATE emails SET next_at = ?2 WHERE id IN (
                             SELECT id FROM emails WHERE sent_at IS NULL AND given_up_at IS NULL AND next_at <= ?1
                             ORDER BY next_at LIMIT ?3)
                         RETURNING id",
                    )?
                    .query_map(params![now, until, limit], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut read = conn.prepare_cached(&format!("{MAIL_SELECT} WHERE m.id = ?"))?;
                let mut mails = Vec::with_capacity(ids.len());
                for id in ids {
                    mails.push(read.query_row([id], |r| mail_from(r))?);
                }
                Ok(mails)
            })
            .await
    }

    async fn mail_tried(&self, id: i64, at: Micros, sent: bool, retry_at: Option<Micros>) -> StoreResult<()> {
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE emails SET attempts = attempts + 1,
                         sent_at = CASE WHEN ?3 THEN ?2 END,
                         given_up_at = CASE WHEN NOT ?3 AND ?4 IS NULL THEN ?2 END,
                         next_at = coalesce(?4, next_at)
                     WHERE id = ?1",
                )?
                .execute(params![id, at, sent, retry_at])?;
                Ok(())
            })
            .await
    }
}
