//! Versioned migrations for SQLite, applied at start, each in its own transaction.
//! `BEGIN IMMEDIATE` takes the database's write lock, so two processes starting together
//! apply each migration once.

use rusqlite::Connection;

/// Every migration, in order: version, name, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "delivery",
        include_str!("../../../migrations/sqlite/0002_delivery.sql"),
    ),
    (
        3,
        "retention",
        include_str!("../../../migrations/sqlite/0003_retention.sql"),
    ),
    (
        4,
        "claim_by_endpoint",
        include_str!("../../../migrations/sqlite/0004_claim_by_endpoint.sql"),
    ),
    (
        5,
        "secret_rotation",
        include_str!("../../../migrations/sqlite/0005_secret_rotation.sql"),
    ),
    (
        6,
        "calls_in_flight",
        include_str!("../../../migrations/sqlite/0006_calls_in_flight.sql"),
    ),
    (
        7,
        "idempotency_keys",
        include_str!("../../../migrations/sqlite/0007_idempotency_keys.sql"),
    ),
    (
        8,
        "operational_events",
        include_str!("../../../migrations/sqlite/0008_operational_events.sql"),
    ),
    (9, "email", include_str!("../../../migrations/sqlite/0009_email.sql")),
    (
        10,
        "call_controls",
        include_str!("../../../migrations/sqlite/0010_call_controls.sql"),
    ),
    (
        11,
        "filters",
        include_str!("../../../migrations/sqlite/0011_filters.sql"),
    ),
    (
        12,
        "rate_limits",
        include_str!("../../../migrations/sqlite/0012_rate_limits.sql"),
    ),
    (
        13,
        "webhook_versions",
        include_str!("../../../migrations/sqlite/0013_webhook_versions.sql"),
    ),
    (
        14,
        "endpoint_stats",
        include_str!("../../../migrations/sqlite/0014_endpoint_stats.sql"),
    ),
    (
        15,
        "ui_sessions",
        include_str!("../../../migrations/sqlite/0015_ui_sessions.sql"),
    ),
    (
        16,
        "failed_tasks",
        include_str!("../../../migrations/sqlite/0016_failed_tasks.sql"),
    ),
    (
        17,
        "leases_in_memory",
        include_str!("../../../migrations/sqlite/0017_leases_in_memory.sql"),
    ),
    (
        18,
        "delivery_state_check",
        include_str!("../../../migrations/sqlite/0018_delivery_state_check.sql"),
    ),
    (
        19,
        "fifo_deliveries_marked",
        include_str!("../../../migrations/sqlite/0019_fifo_deliveries_marked.sql"),
    ),
    (
        20,
        "no_index_of_due_times",
        include_str!("../../../migrations/sqlite/0020_no_index_of_due_times.sql"),
    ),
];

/// Brings the database up to the newest version; returns how many migrations ran.
pub fn run(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let mut ran = 0;
    for (version, name, sql) in MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied: bool = conn.query_row(
            "SELECT count(*) > 0 FROM schema_migrations WHERE version = ?",
            [version],
            |r| r.get(0),
        )?;
        if applied {
            conn.execute_batch("COMMIT")?;
            continue;
        }
        let result = conn.execute_batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                rusqlite::params![version, name, jiff::Timestamp::now().as_microsecond()],
            )
        });
        match result {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        ran += 1;
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_upgrade_an_older_database() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        // An older database: only the first migration applied.
        conn.execute_batch(MIGRATIONS[0].2).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'foundation', 0);",
        )
        .unwrap();
        assert_eq!(run(&conn).unwrap(), MIGRATIONS.len() - 1);
        assert_eq!(run(&conn).unwrap(), 0);
        let tasks: i64 = conn.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0)).unwrap();
        assert_eq!(tasks, 0, "the newer tables exist");
    }

    #[test]
    fn the_deliveries_table_is_rebuilt_with_its_rows_indexes_and_check() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for (_, _, sql) in &MIGRATIONS[..17] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO accounts (id, login, name, password_hash, created_at) VALUES (1, 'old', 'Old', 'x', 0);
             INSERT INTO endpoints (seq, id, account_id, url, description, events, ordering, secret, state, created_at,
                                    updated_at)
                 VALUES (3, 'ep', 1, 'http://127.0.0.1:9/', '', '[\"*\"]', 'parallel', 's', 'active', 0, 0);
             INSERT INTO events (seq, id, account_id, event_type, created_at, body) VALUES (5, 'ev', 1, 'T', 0, '{}');
             INSERT INTO deliveries (id, account_id, endpoint_seq, event_seq, state, attempts, next_at, created_at)
                 VALUES (42, 1, 3, 5, 'failed', 7, 100, 0);",
        )
        .unwrap();
        // Migration 18 alone: later ones change the indexes again.
        conn.execute_batch(MIGRATIONS[17].2).unwrap();
        let kept: (i64, String, i64) = conn
            .query_row("SELECT id, state, attempts FROM deliveries", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(kept, (42, "failed".to_owned(), 7));
        const WRITE: &str = "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, state, next_at, created_at)
                             VALUES (1, 3, 5, ?, 0, 0)";
        assert!(
            conn.execute(WRITE, ["lost"]).is_err(),
            "an unknown state is still refused"
        );
        conn.execute(WRITE, ["pending"]).unwrap();
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'deliveries' AND sql IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 5, "its indexes are back");
    }
}
