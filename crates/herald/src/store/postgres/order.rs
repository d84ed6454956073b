//! Ids that become visible in order.
//!
//! A sequence hands out ids when rows are inserted, but transactions commit in their own
//! order: on PostgreSQL a row with id 100 can appear after a reader has already seen 101. A
//! client that polls a collection with `since=101` would then never see 100, which breaks the
//! API's promise that keyset paging skips nothing (SQLite, with its single writer, keeps it by
//! construction). So every transaction that adds to a listed collection first takes a
//! transaction-scoped advisory lock for that collection's ids: writers of one collection
//! (per account, for the account's collections) take their ids and commit one after the
//! other. Writes of different accounts, and events, which are not listed, stay concurrent.

use sqlx::PgConnection;

/// A collection whose ids must become visible in order.
#[derive(Clone, Copy)]
#[repr(i32)]
pub(super) enum Listed {
    Accounts = 1,
    /// The account's jobs, candidates, applications, step changes and endpoints: one lock for
    /// all, since one transaction can add to several of them.
    AccountData = 2,
    /// The call history, written by every node's recorder.
    Tasks = 3,
}

/// Holds, until the caller's transaction ends, the right to add to `listed` for `account`
/// (any value for the platform-wide collections).
pub(super) async fn in_id_order(conn: &mut PgConnection, listed: Listed, account: i64) -> sqlx::Result<()> {
    let (listed, folded) = keys(listed, account);
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(listed)
        .bind(folded)
        .execute(conn)
        .await?;
    Ok(())
}

/// `BEGIN`, then the lock of [`in_id_order`]: a transaction that holds the right to add to
/// `listed` from its start, in one round trip (it is sent as one simple query, which takes no
/// parameters, hence the keys written out).
pub(super) fn in_id_order_from_start(listed: Listed, account: i64) -> String {
    let (listed, folded) = keys(listed, account);
    format!("BEGIN; SELECT pg_advisory_xact_lock({listed}, {folded})")
}

/// The lock's two keys. The two-key form takes 32-bit keys: a folded account id can only make
/// two accounts share a lock, which costs concurrency, never correctness.
fn keys(listed: Listed, account: i64) -> (i32, i32) {
    (listed as i32, (account % i64::from(i32::MAX)) as i32)
}
