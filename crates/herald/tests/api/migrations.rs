//! Migrations: applied at start under the database's write lock, so that several processes
//! starting together on one database apply each once; and a newer binary upgrades an older
//! database.

use std::process::{Child, Command, Stdio};

use crate::helpers::{ADMIN_TOKEN, column, scalar};

fn serve(db: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn processes_starting_together_apply_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("herald.db");
    let servers: Vec<(Child, String)> = (0..3).map(|_| serve(&db)).collect();
    let client = reqwest::Client::new();
    for (_, base) in &servers {
        herald::bench::wait_healthy(&client, base)
            .await
            .expect("every process starts");
    }
    let versions: Vec<i64> = column(
        &rusqlite::Connection::open(&db).unwrap(),
        "SELECT version FROM schema_migrations ORDER BY version",
    );
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    for (mut child, _) in servers {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test]
async fn a_newer_binary_upgrades_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("herald.db");
    {
        // A database as the first version left it: the foundation only, with an account.
        let old = rusqlite::Connection::open(&db).unwrap();
        old.execute_batch(include_str!("../../migrations/sqlite/0001_foundation.sql"))
            .unwrap();
        old.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'foundation', 0);
             INSERT INTO accounts (login, name, password_hash, created_at) VALUES ('old', 'Old', 'x', 0);
             INSERT INTO processes (account_id, name) VALUES (1, 'Hiring');",
        )
        .unwrap();
    }
    let (mut child, base) = serve(&db);
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
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(scalar::<i64>(&conn, "SELECT max(version) FROM schema_migrations"), 5);
    assert_eq!(
        scalar::<i64>(&conn, "SELECT count(*) FROM tasks"),
        0,
        "the newer tables exist"
    );
    let _ = child.kill();
    let _ = child.wait();
}
