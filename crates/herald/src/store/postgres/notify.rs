//! Waking the nodes: the database's triggers send `NOTIFY herald_work` from any transaction
//! that makes work due (migration 0006; PostgreSQL delivers it on commit, and only then), and
//! every node LISTENs on one connection of its own and wakes its dispatcher when a
//! notification arrives, its own writes' included.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;

/// The channel every node listens on, which the triggers name.
pub(super) const CHANNEL: &str = "herald_work";

/// Wakes `wake` on every notification, for as long as the process runs. When the connection
/// is lost, notifications sent meanwhile are lost with it, so reconnecting wakes the
/// dispatcher too: it looks for due work itself.
pub(super) async fn listen(pool: PgPool, wake: Arc<Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for new work; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for new work; trying again in a second");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake.notify_one(),
                // The connection was lost; the next call reconnects and listens again.
                Ok(None) => {
                    tracing::warn!("the connection that listens for new work was lost; reconnecting");
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for new work failed; reconnecting in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
