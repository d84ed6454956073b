//! Upkeep of the hot tables: fresh statistics for the planner, and dead rows cleared.
//!
//! `deliveries`, `leases`, `events` and `tasks` grow from nothing to hundreds of thousands of
//! rows in seconds; until they are analysed the planner picks plans for tiny tables, and
//! deliveries crawl (measured: 110 calls/s for a minute after a burst, then 6,400 once ANALYZE
//! ran). And every recorded call leaves a dead version of its delivery, and a dead lease, in
//! the indexes each claim reads: until a vacuum clears them, each claim steps over all of them
//! (measured: 5,133 and 4,755 calls/s without, 6,250 and 5,762 with a vacuum looked for every
//! 5 s). `leases` holds a few rows alive but thousands dead after a second of full load, so it
//! is looked at every second (7,268 and 7,312 calls/s, against 6,920 and 6,838 every 5 s).
//! Autovacuum gets to both, but only on its own schedule (its naptime, a minute by default),
//! so each node checks.
//!
//! Each analysis or vacuum updates the table's planner statistics, and PostgreSQL then plans
//! again, on every connection, each prepared statement that reads the table (as the
//! documentation of `PREPARE` says). With the work of the analysis itself, at a steady 1,000
//! events/s on two cores these made a stall of 100 to 300 ms about every second, and the
//! slowest calls were the ones caught in it. So a table is analysed when its size has doubled
//! or halved since the planner last learnt it (from an analysis or a vacuum): each statement
//! keeps one generic plan, which depends on the tables' sizes, not on the values a histogram
//! describes. (`leases`, which stays small whatever passes through it, was analysed every
//! second for its churn alone.) And a table is vacuumed once 5,000 of its rows, and a tenth of
//! them, are dead: `leases` every second or two under full load, every five seconds at 1,000
//! events/s. A vacuum keeps the empty pages of `leases` and `deliveries` (migration 19): giving
//! them back takes a lock that stalls every claim.

use std::time::Duration;

use sqlx::PgPool;

/// The tables whose statistics and dead rows the claim, the record and the publishing group
/// lean on.
const HOT: [&str; 4] = ["deliveries", "leases", "events", "tasks"];
/// How often the changes are looked at.
const EVERY: Duration = Duration::from_secs(1);

/// Keeps the hot tables analysed and vacuumed, until the pool closes.
pub(super) async fn keep_up(pool: PgPool) {
    while !pool.is_closed() {
        if let Err(e) = vacuum_dead(&pool).await {
            tracing::debug!(error = %e, "clearing the tables' dead rows failed; trying again later");
        }
        if let Err(e) = analyse_changed(&pool).await {
            tracing::debug!(error = %e, "checking the tables' statistics failed; trying again later");
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Analyses each hot table that was never analysed and has had 1,000 rows written, or whose
/// rows have come to differ from the count the planner has (`reltuples`, -1 until it is first
/// learnt) by more than 1,000 and by more than the smaller of the two: doubled, or halved.
async fn analyse_changed(pool: &PgPool) -> sqlx::Result<()> {
    let changed = "(analyze_count + autoanalyze_count = 0 AND n_mod_since_analyze > 1000)
        OR abs(n_live_tup - greatest(c.reltuples, 0)) > greatest(1000, least(n_live_tup, c.reltuples))";
    for table in hot_tables_where(pool, changed).await? {
        sqlx::query(&format!("ANALYZE {table}")).execute(pool).await?;
    }
    Ok(())
}

/// Vacuums each hot table with more than 5,000 dead rows, and more than a tenth as many as
/// live ones. A table another node is vacuuming is skipped rather than waited for.
async fn vacuum_dead(pool: &PgPool) -> sqlx::Result<()> {
    for table in hot_tables_where(pool, "n_dead_tup > greatest(5000, n_live_tup / 10)").await? {
        // VACUUM refuses to run in a transaction, which a prepared statement may be: sent as
        // plain text.
        sqlx::raw_sql(&format!("VACUUM (SKIP_LOCKED) {table}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The hot tables whose activity counters (`pg_stat_user_tables`) and planner's row count
/// (`c.reltuples`) meet `condition`. The names come from the fixed list above, never from
/// input, so they may be written into the statements that follow.
async fn hot_tables_where(pool: &PgPool, condition: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(&format!(
        "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.schemaname = current_schema() AND s.relname = ANY($1) AND ({condition})"
    ))
    .bind(&HOT[..])
    .fetch_all(pool)
    .await
}
