//! Keeping the planner's statistics of the hot tables fresh. `deliveries`, `leases`, `events`
//! and `tasks` grow from nothing to hundreds of thousands of rows in seconds; until they are
//! analysed the planner picks plans for tiny tables, and deliveries crawl (measured: 110 calls/s
//! for a minute after a burst, then 6,400 once ANALYZE ran). Autovacuum gets there, but only
//! on its own schedule (its naptime), so each node checks every few seconds and analyses a
//! table once a fifth of it has changed since it last was.

use std::time::Duration;

use sqlx::PgPool;

/// The tables whose statistics the claim, the record and the publishing group lean on.
const HOT: [&str; 4] = ["deliveries", "leases", "events", "tasks"];
/// How often the changes are looked at.
const EVERY: Duration = Duration::from_secs(5);

/// Analyses the hot tables that changed much since their last analysis, until the pool
/// closes.
pub(super) async fn keep_fresh(pool: PgPool) {
    while !pool.is_closed() {
        if let Err(e) = analyse_changed(&pool).await {
            tracing::debug!(error = %e, "checking the tables' statistics failed; trying again later");
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Analyses each hot table with more than 1,000 rows changed since it was last analysed, and
/// more than a fifth of its rows; returns the tables analysed.
pub(super) async fn analyse_changed(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_stat_user_tables
         WHERE schemaname = current_schema() AND relname = ANY($1)
           AND n_mod_since_analyze > greatest(1000, n_live_tup / 5)",
    )
    .bind(&HOT[..])
    .fetch_all(pool)
    .await?;
    for table in &stale {
        // A name from the fixed list above, not from input.
        sqlx::query(&format!("ANALYZE {table}")).execute(pool).await?;
    }
    Ok(stale)
}
