//! The database a test runs on: a SQLite file in a temporary folder, or, when the suite runs
//! against PostgreSQL (`HERALD_TEST_DATABASE` names a cluster, as `scripts/test` sets it), a
//! new database of its own on that cluster. Tests read it directly, through the few queries
//! here, to check what the API cannot show.

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
