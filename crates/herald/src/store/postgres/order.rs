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
//!
//! Within a node, writers of one collection also queue in the process (`Turns`) before they
//! take a connection, so that a burst of writes to one account waits with one connection,
//! not with the whole pool.

use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, MutexGuard};

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

/// How many queues a node's writers are spread over.
const QUEUES: usize = 64;

/// Where a node's writers of one collection wait their turn, holding no connection. Only the
/// writer whose turn it is holds a connection while it waits for the lock (which another
/// node's writer may have). Were they all to wait in PostgreSQL, a burst of writes to one
/// account would take every connection of the pool to wait there, and the node's other
/// requests, of any account, would find none and fail after the pool's second.
pub(super) struct Turns([Mutex<()>; QUEUES]);

impl Turns {
    pub(super) fn new() -> Turns {
        Turns(std::array::from_fn(|_| Mutex::new(())))
    }

    /// Waits for this node's turn to add to `listed` for `account`, then begins a transaction
    /// that holds the right to add to it until it ends. The turn is the caller's until it drops
    /// it, after the transaction. Accounts whose writers share a queue wait for each other,
    /// which costs concurrency, never correctness.
    pub(super) async fn begin(
        &self,
        pool: &PgPool,
        listed: Listed,
        account: i64,
    ) -> sqlx::Result<(MutexGuard<'_, ()>, Transaction<'static, Postgres>)> {
        let (collection, folded) = keys(listed, account);
        let queue = (i64::from(collection) * 31 + i64::from(folded)).rem_euclid(QUEUES as i64);
        let turn = self.0[queue as usize].lock().await;
        let tx = pool.begin_with(in_id_order_from_start(listed, account)).await?;
        Ok((turn, tx))
    }
}

/// `BEGIN`, then the lock: a transaction that holds the right to add to `listed` from its
/// start, in one round trip (it is sent as one simple query, which takes no parameters, hence
/// the keys written out).
pub(super) fn in_id_order_from_start(listed: Listed, account: i64) -> String {
    let (listed, folded) = keys(listed, account);
    format!("BEGIN; SELECT pg_advisory_xact_lock({listed}, {folded})")
}

/// The lock's two keys. The two-key form takes 32-bit keys: a folded account id can only make
/// two accounts share a lock, which costs concurrency, never correctness.
fn keys(listed: Listed, account: i64) -> (i32, i32) {
    (listed as i32, (account % i64::from(i32::MAX)) as i32)
}
