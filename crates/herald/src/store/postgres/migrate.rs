//! Versioned migrations for PostgreSQL, applied at start in one transaction that first takes
//! a transaction-scoped advisory lock: nodes starting together wait for each other, and the
//! ones that come second find every migration applied.

use sqlx::{Connection, Executor, PgConnection, Row};

/// Every migration, in order: version, name, SQL.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../../../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        "leases",
        include_str!("../../../migrations/postgres/0003_leases.sql"),
    ),
    (
        4,
        "fewer_account_checks",
        include_str!("../../../migrations/postgres/0004_fewer_account_checks.sql"),
    ),
    (
        5,
        "leases_of_endpoint",
        include_str!("../../../migrations/postgres/0005_leases_of_endpoint.sql"),
    ),
    (
        6,
        "work_announced",
        include_str!("../../../migrations/postgres/0006_work_announced.sql"),
    ),
    (
        7,
        "cascades_written_out",
        include_str!("../../../migrations/postgres/0007_cascades_written_out.sql"),
    ),
    (
        8,
        "idempotency_keys",
        include_str!("../../../migrations/postgres/0008_idempotency_keys.sql"),
    ),
    (
        9,
        "operational_events",
        include_str!("../../../migrations/postgres/0009_operational_events.sql"),
    ),
    (10, "email", include_str!("../../../migrations/postgres/0010_email.sql")),
    (
        11,
        "call_controls",
        include_str!("../../../migrations/postgres/0011_call_controls.sql"),
    ),
    (
        12,
        "filters",
        include_str!("../../../migrations/postgres/0012_filters.sql"),
    ),
    (
        13,
        "rate_limits",
        include_str!("../../../migrations/postgres/0013_rate_limits.sql"),
    ),
    (
        14,
        "webhook_versions",
        include_str!("../../../migrations/postgres/0014_webhook_versions.sql"),
    ),
    (
        15,
        "endpoint_stats",
        include_str!("../../../migrations/postgres/0015_endpoint_stats.sql"),
    ),
    (
        16,
        "endpoint_stats_shards",
        include_str!("../../../migrations/postgres/0016_endpoint_stats_shards.sql"),
    ),
    (
        17,
        "ui_sessions",
        include_str!("../../../migrations/postgres/0017_ui_sessions.sql"),
    ),
    (
        18,
        "failed_tasks",
        include_str!("../../../migrations/postgres/0018_failed_tasks.sql"),
    ),
    (
        19,
        "no_vacuum_truncation",
        include_str!("../../../migrations/postgres/0019_no_vacuum_truncation.sql"),
    ),
    (
        20,
        "delivery_endpoint_locked_once",
        include_str!("../../../migrations/postgres/0020_delivery_endpoint_locked_once.sql"),
    ),
    (
        21,
        "lighter_statistics",
        include_str!("../../../migrations/postgres/0021_lighter_statistics.sql"),
    ),
    (
        22,
        "fifo_deliveries_marked",
        include_str!("../../../migrations/postgres/0022_fifo_deliveries_marked.sql"),
    ),
];

/// The advisory lock's key: any constant that other software on the database is unlikely to use.
const MIGRATION_LOCK: i64 = 0x6865_7261_6c64; // "herald"

/// Brings the database up to the newest version; returns how many migrations ran.
pub async fn run(conn: &mut PgConnection) -> sqlx::Result<usize> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut ran = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        // A query without parameters goes by the simple protocol, which runs a whole script.
        tx.execute(*sql).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(name)
            .bind(jiff::Timestamp::now().as_microsecond())
            .execute(&mut *tx)
            .await?;
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}
