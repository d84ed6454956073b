//! Retention: events and tasks older than `retention.keep`, and idempotency keys older than a
//! day, are purged in small batches, each its own short transaction, so that the purge never
//! holds the database long enough to stall delivery. An event with a delivery still pending is kept, whatever its age: nothing that
//! waits is lost.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::session;
use crate::store::{KEY_LIFETIME, Store, StoreResult};

/// Rows deleted per transaction.
const BATCH: u32 = 500;

/// Purges on a period of a tenth of `keep`, between 100 ms and 10 minutes, until `shutdown`.
pub async fn run(store: Arc<dyn Store>, clock: Clock, keep: Duration, shutdown: impl Future<Output = ()>) {
    let period = (keep / 10).clamp(Duration::from_millis(100), Duration::from_secs(600));
    tokio::pin!(shutdown);
    loop {
        match purge(store.as_ref(), &clock, keep).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(
                rows = purged,
                "purged events, tasks, idempotency keys and endpoint counters past retention"
            ),
            Err(e) => tracing::error!(error = %e, "purging old events, tasks and idempotency keys failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = &mut shutdown => return,
        }
    }
}

/// Purges, batch after batch, what is older than `keep` at the clock's now, the idempotency
/// keys older than a day, the endpoints' counters older than `keep` or a week and a day,
/// whichever is longer (the figures look a week back), and the dashboard's lapsed sessions;
/// returns how many rows went. The loop's one step: tests call it between moves of a manual
/// clock.
pub async fn purge(store: &dyn Store, clock: &Clock, keep: Duration) -> StoreResult<u64> {
    let now = clock.now();
    let cutoff = now - keep.as_micros() as i64;
    let mut purged = 0;
    loop {
        match store.purge(cutoff, BATCH).await? {
            0 => break,
            n => purged += n,
        }
        // Let delivery's writes in between batches.
        tokio::task::yield_now().await;
    }
    loop {
        match store.forget_keys(now - KEY_LIFETIME, BATCH).await? {
            0 => break,
            n => purged += n,
        }
        tokio::task::yield_now().await;
    }
    let counters_cutoff = now - keep.max(crate::domain::stats::KEPT).as_micros() as i64;
    loop {
        match store.forget_counters(counters_cutoff, BATCH).await? {
            0 => break,
            n => purged += n,
        }
        tokio::task::yield_now().await;
    }
    // Lapsed sessions and expired portal links: few rows, one statement.
    purged += store
        .forget_sessions(now - session::IDLE.as_micros() as i64, now)
        .await?;
    Ok(purged)
}
