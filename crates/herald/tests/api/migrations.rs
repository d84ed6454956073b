//! Migrations: applied at start under the database's write lock, so that several processes
//! starting together on one database apply each once; and a newer binary upgrades an older
//! database.

use std::process::{Command, Stdio};

use crate::db::TestDb;
use crate::helpers::{ADMIN_TOKEN, Process};

/// The migrations this binary applies to the test's backend (each numbers its own).
fn versions(db: &TestDb) -> Vec<i64> {
    let newest = if db.is_postgres() { 22 } else { 20 };
    (1..=newest).collect()
}

fn serve(db: &TestDb) -> (Process, String) {
    let port = crate::helpers::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .arg("--database")
        .arg(&db.url)
        .stdout(Stdio::null())
        // Warnings and errors reach the test's output, to tell why a server did not start.
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (Process::new(child), format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn processes_starting_together_apply_each_migration_once() {
    let db = TestDb::new().await;
    let servers: Vec<(Process, String)> = (0..3).map(|_| serve(&db)).collect();
    let client = reqwest::Client::new();
    for (_, base) in &servers {
        herald::bench::wait_healthy(&client, base)
            .await
            .expect("every process starts");
    }
    let applied = db.ints("SELECT version FROM schema_migrations ORDER BY version").await;
    assert_eq!(applied, versions(&db));
}

#[tokio::test]
async fn a_newer_binary_upgrades_an_older_database() {
    let db = TestDb::new().await;
    // A database as the first version left it: the foundation only, with an account.
    let foundation = if db.is_postgres() {
        include_str!("../../migrations/postgres/0001_foundation.sql")
    } else {
        include_str!("../../migrations/sqlite/0001_foundation.sql")
    };
    db.execute(foundation).await;
    db.execute(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 'foundation', 0);
         INSERT INTO accounts (login, name, password_hash, created_at) VALUES ('old', 'Old', 'x', 0);
         INSERT INTO processes (account_id, name) VALUES (1, 'Hiring');",
    )
    .await;
    let (_server, base) = serve(&db);
    let client = reqwest::Client::new();
    herald::bench::wait_healthy(&client, &base)
        .await
        .expect("it starts on the old database");
    let account = client
        .get(format!("{base}/admin/v1/account/old"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200, "the old data is still there");
    assert_eq!(
        db.count("SELECT max(version) FROM schema_migrations").await,
        *versions(&db).last().unwrap()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM tasks").await,
        0,
        "the newer tables exist"
    );
}

#[tokio::test]
async fn upgrading_marks_the_deliveries_waiting_on_fifo_endpoints() {
    use herald::domain::account::NewAccount;
    use herald::domain::endpoint::Ordering;

    use crate::dispatcher::{endpoint, publish};

    let db = TestDb::new().await;
    let store = herald::store::open(&db.url, 2).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0, None).await.unwrap().id;
    endpoint(&*store, account, "http://127.0.0.1:9/fifo", Ordering::Fifo).await;
    endpoint(&*store, account, "http://127.0.0.1:9/parallel", Ordering::Parallel).await;
    publish(&*store, account, 2).await;
    drop(store);
    // The database as it was before the migration that marks them, with the FIFO endpoint's
    // first delivery given up on: deliveries to each endpoint, first the FIFO one's, then the
    // other's.
    let marking = if db.is_postgres() { 22 } else { 19 };
    db.execute(&format!(
        "DROP INDEX deliveries_in_order;
         ALTER TABLE deliveries DROP COLUMN fifo;
         CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending';
         DELETE FROM schema_migrations WHERE version = {marking};
         UPDATE deliveries SET state = 'failed' WHERE id = (SELECT min(id) FROM deliveries);"
    ))
    .await;

    herald::store::open(&db.url, 2).await.expect("the upgrade runs");
    let marked = db
        .ints("SELECT CAST(CASE WHEN fifo THEN 1 ELSE 0 END AS BIGINT) FROM deliveries ORDER BY id")
        .await;
    assert_eq!(marked, [0, 0, 1, 0], "only the FIFO endpoint's pending delivery");
}

/// Every column of `deliveries` is described from 3,000 sampled rows (migration 0021): one
/// left at the default target makes each ANALYZE of the table, which Herald runs several
/// times a minute under load, sample ten times as many.
#[tokio::test]
async fn every_column_of_the_deliveries_has_light_statistics() {
    let db = TestDb::new().await;
    if !db.is_postgres() {
        return;
    }
    herald::store::open(&db.url, 1).await.unwrap();
    let heavy = db
        .texts(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = 'deliveries'::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget <> 10",
        )
        .await;
    assert!(
        heavy.is_empty(),
        "columns with the default statistics target: {heavy:?}"
    );
}
