//! The database a test runs on: a SQLite file in a temporary folder, or, when the suite runs
//! against PostgreSQL (`HERALD_TEST_DATABASE` names a cluster, as `scripts/test` sets it), a
//! new database of its own on that cluster. Tests read it directly, through the few queries
//! here, to check what the API cannot show. A test that stops or restarts PostgreSQL starts a
//! cluster of its own (`Cluster`).

use std::process::{Command, Stdio};

use sqlx::Connection;
use tempfile::TempDir;

/// A fresh, empty database for one test.
pub struct TestDb {
    /// What `--database` takes.
    pub url: String,
    _dir: TempDir,
}

/// The PostgreSQL cluster the suite runs against, if any.
pub fn postgres_cluster() -> Option<String> {
    std::env::var("HERALD_TEST_DATABASE")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = match postgres_cluster() {
            Some(cluster) => {
                let name = format!("herald_{}", herald::ids::endpoint_id().to_lowercase().replace('-', "_"));
                let mut admin = sqlx::PgConnection::connect(&cluster).await.unwrap();
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let base = cluster.rsplit_once('/').unwrap().0;
                format!("{base}/{name}")
            }
            None => format!("sqlite://{}", dir.path().join("herald.db").display()),
        };
        TestDb { url, _dir: dir }
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }

    /// Runs statements, failing the test if they fail.
    pub async fn execute(&self, sql: &str) {
        if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        } else {
            self.sqlite().execute_batch(sql).unwrap();
        }
    }

    /// The single whole number a query answers.
    pub async fn count(&self, sql: &str) -> i64 {
        *self.ints(sql).await.first().expect("the query answers a row")
    }

    /// The single text a query answers.
    pub async fn text(&self, sql: &str) -> String {
        self.texts(sql).await.swap_remove(0)
    }

    /// The first column of every row, as whole numbers.
    pub async fn ints(&self, sql: &str) -> Vec<i64> {
        if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            self.sqlite_column(sql)
        }
    }

    /// The first column of every row, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            self.sqlite_column(sql)
        }
    }

    /// The single whole number a query answers on the PostgreSQL database at `url`.
    pub async fn count_on(url: &str, sql: &str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let path = self.url.strip_prefix("sqlite://").unwrap();
        let db = rusqlite::Connection::open(path).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        db
    }

    fn sqlite_column<T: rusqlite::types::FromSql>(&self, sql: &str) -> Vec<T> {
        let db = self.sqlite();
        let mut statement = db.prepare(sql).unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// A PostgreSQL cluster of one test's own, through `scripts/pg`; stopped and deleted on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub url: String,
}

impl Cluster {
    /// A cluster of the test's own when the suite runs on PostgreSQL (which makes the
    /// binaries there); on SQLite `None`, with a line saying the test is skipped and why.
    pub fn of_own(why: &str) -> Option<Cluster> {
        if postgres_cluster().is_none() {
            eprintln!("skipped: {why} needs PostgreSQL (scripts/test runs it)");
            return None;
        }
        Some(Cluster::start())
    }

    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg"))
            .arg("start")
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/pg runs");
        assert!(output.status.success(), "scripts/pg start failed");
        let url = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        Cluster { dir, url }
    }

    /// When the server started, to tell that it restarted.
    pub async fn started_at(&self) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_scalar("SELECT pg_postmaster_start_time()::text")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }

    pub fn restart(&self) {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg"))
            .arg("restart")
            .arg(self.dir.path())
            .status()
            .expect("scripts/pg runs");
        assert!(status.success(), "scripts/pg restart failed");
    }
}

impl Cluster {
    /// Stops it for good (its folder goes too): the database is gone.
    pub fn stop(&self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg"))
            .arg("stop")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
