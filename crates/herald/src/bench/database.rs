//! The database the benchmark's nodes share: a temporary SQLite file, or a PostgreSQL
//! database that must be empty, whose cluster's CPU is counted when it runs on this machine.

use anyhow::Context;
use sqlx::Connection;

use super::BenchArgs;
use super::processes::{TempDir, stat_of, tempfile_dir};

/// The database the nodes share.
pub(super) struct Database {
    pub(super) url: String,
    pub(super) postgres: bool,
    /// Holds the default SQLite file; removed when the benchmark ends.
    _dir: Option<TempDir>,
}

impl Database {
    pub(super) fn from_args(args: &BenchArgs) -> anyhow::Result<Database> {
        let database = match &args.database {
            None => {
                let dir = tempfile_dir()?;
                let url = format!("sqlite://{}", dir.0.join("bench.db").display());
                Database {
                    url,
                    postgres: false,
                    _dir: Some(dir),
                }
            }
            Some(url) => Database {
                url: url.clone(),
                postgres: url.starts_with("postgres://") || url.starts_with("postgresql://"),
                _dir: None,
            },
        };
        anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
        // Nodes share deliveries through PostgreSQL's row locks, leases and notifications;
        // on SQLite each node would deliver every event.
        anyhow::ensure!(
            args.database_delay.is_none() || database.postgres,
            "--database-delay puts a PostgreSQL database at a distance: pass --database postgres://…"
        );
        anyhow::ensure!(
            args.database_delay.is_none() || !(args.backlog || args.dashboard || args.soak.is_some()),
            "--database-delay goes with the plain benchmark, not --backlog, --dashboard or --soak"
        );
        anyhow::ensure!(
            args.nodes == 1 || database.postgres,
            "--nodes {} needs a shared PostgreSQL database: pass --database postgres://…",
            args.nodes
        );
        Ok(database)
    }

    pub(super) fn kind(&self) -> &'static str {
        if self.postgres { "PostgreSQL" } else { "SQLite" }
    }
}

/// Checks that the PostgreSQL database at `url` is empty, and finds the PID of its cluster's
/// postmaster when the cluster runs on this machine (None otherwise), through the parent of
/// the backend that serves this connection.
pub(super) async fn inspect_postgres(url: &str) -> anyhow::Result<Option<u32>> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the database --database names")?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut conn)
    .await?;
    anyhow::ensure!(
        tables == 0,
        "the database holds {tables} table(s); --database must name an empty database (create a fresh one for each run)"
    );
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    // Read while the backend lives: it exits when the connection closes.
    let postmaster = stat_of(&format!("/proc/{backend}/stat"))
        .ok()
        .filter(|s| s.comm.starts_with("postgres"))
        .map(|s| s.ppid);
    conn.close().await?;
    Ok(postmaster)
}
