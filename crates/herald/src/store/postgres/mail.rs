//! The e-mail queue in PostgreSQL: filled by `record_calls` in the transaction of the news it
//! tells, emptied by every node's mailer (see `notify`), each leasing what it sends.

use async_trait::async_trait;
use sqlx::PgConnection;

use super::PostgresStore;
use crate::clock::Micros;
use crate::domain::operational::{Mail, SUSPENSION_MAIL_PERIOD};
use crate::store::codec::MAIL_SELECT;
use crate::store::recording::Queued;
use crate::store::rows::mail_from;
use crate::store::{MailStore, StoreResult};

/// Queues an e-mail, if the account gave an address and, for a suspension, none was queued
/// for the endpoint in the last day. (The caller holds the endpoint's row lock: two nodes
/// cannot both find none.)
pub(super) async fn queue(conn: &mut PgConnection, mail: &Queued<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO emails (account_id, endpoint_seq, event_id, task_id, kind, created_at, next_at)
         SELECT a.id, $2, $3, $4, $5, $6, $6 FROM accounts a
         WHERE a.id = $1 AND a.notify_email IS NOT NULL
           AND ($5 <> 'suspended' OR NOT EXISTS (
               SELECT 1 FROM emails m WHERE m.endpoint_seq = $2 AND m.kind = 'suspended' AND m.created_at > $7))",
    )
    .bind(mail.account)
    .bind(mail.endpoint_seq)
    .bind(mail.event_id)
    .bind(mail.task_id)
    .bind(mail.kind.as_str())
    .bind(mail.at)
    .bind(mail.at - SUSPENSION_MAIL_PERIOD)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl MailStore for PostgresStore {
    async fn due_mail(&self, now: Micros, until: Micros, limit: u32) -> StoreResult<Vec<Mail>> {
        let rows = sqlx::query(&format!(
            "WITH leased AS (
                 UPDATE emails SET next_at = $2 WHERE id IN (
                     SELECT id FROM emails WHERE sent_at IS NULL AND given_up_at IS NULL AND next_at <= $1
                     ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING id)
             {MAIL_SELECT} WHERE m.id IN (SELECT id FROM leased)"
        ))
        .bind(now)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(mail_from).collect::<sqlx::Result<_>>()?)
    }

    async fn mail_tried(&self, id: i64, at: Micros, sent: bool, retry_at: Option<Micros>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE emails SET attempts = attempts + 1,
                 sent_at = CASE WHEN $3 THEN $2 END,
                 given_up_at = CASE WHEN NOT $3 AND $4::bigint IS NULL THEN $2 END,
                 next_at = coalesce($4, next_at)
             WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(sent)
        .bind(retry_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
