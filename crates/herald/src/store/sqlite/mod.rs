//! The SQLite store: one file, WAL mode, one writing connection and a few reading ones.
//!
//! A single writer means writes never fight over the database lock; readers see the last
//! committed state without waiting. `synchronous = NORMAL` in WAL mode survives a killed
//! process (it can lose the last commits only on power loss or an OS crash).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Notify;

use super::{AccountStore, Page, StoreError, StoreResult};
use crate::clock::Micros;
use crate::domain::account::{Account, NewAccount};
use crate::domain::event::builtin_types;
use crate::domain::recruiting::{Process, ProcessStep, StepStatus};

mod delivery;
mod recruiting;
mod webhooks;

/// Herald's data in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Wakes the dispatcher after a commit that made work due.
    wake: Arc<Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url` (`sqlite://PATH`).
    pub async fn open(url: &str) -> Result<SqliteStore, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let store = SqliteStore {
            write,
            read,
            wake: Arc::default(),
        };
        store.seed_builtin_types().await?;
        Ok(store)
    }

    async fn seed_builtin_types(&self) -> Result<(), sqlx::Error> {
        for t in builtin_types() {
            sqlx::query(
                "INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, ?, 1, 0)
                 ON CONFLICT (name) DO UPDATE SET description = excluded.description, schema = excluded.schema",
            )
            .bind(&t.name)
            .bind(&t.description)
            .bind(t.schema.to_string())
            .execute(&self.write)
            .await?;
        }
        Ok(())
    }
}

/// Turns a unique-constraint violation into a `Conflict` with `message`.
fn conflict(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message.into()),
        _ => StoreError::Other(e),
    }
}

/// Reads an enum stored as its bare word (`fifo`).
fn decode_word<T: serde::de::DeserializeOwned>(column: &str, word: String) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(word))
        .map_err(|e| StoreError::Other(sqlx::Error::Decode(format!("{column}: {e}").into())))
}

/// Maps "no row" to `NotFound(what)`.
fn found<T>(row: Option<T>, what: &'static str) -> StoreResult<T> {
    row.ok_or(StoreError::NotFound(what))
}

/// SQLite has no unsigned integers; limits are small, so this never saturates in practice.
fn fetch_limit(page: Page) -> i64 {
    i64::from(page.limit) + 1
}

type AccountRow = (i64, String, String, i64, Micros);

const ACCOUNT_COLUMNS: &str =
    "a.id, a.login, a.name, (SELECT p.id FROM processes p WHERE p.account_id = a.id), a.created_at";

fn account_from((id, login, name, process_id, created_at): AccountRow) -> Account {
    Account {
        id,
        login,
        name,
        process_id,
        created_at,
    }
}

fn step_from((id, process_id, name, status): (i64, i64, String, String)) -> ProcessStep {
    ProcessStep {
        id,
        process_id,
        name,
        status: StepStatus::parse(&status).unwrap_or(StepStatus::Current),
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn admin_token_digest(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query_scalar("SELECT value FROM settings WHERE name = 'admin_token_sha256'")
            .fetch_optional(&self.read)
            .await?;
        Ok(row)
    }

    async fn set_admin_token_digest(&self, digest: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('admin_token_sha256', ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(digest)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn create_account(&self, new: &NewAccount, password_hash: &str, at: Micros) -> StoreResult<Account> {
        let mut tx = self.write.begin().await?;
        let account_id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (login, name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.login)
        .bind(&new.name)
        .bind(password_hash)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("the login {:?} is taken", new.login)))?;
        let process_id: i64 = sqlx::query_scalar("INSERT INTO processes (account_id, name) VALUES (?, ?) RETURNING id")
            .bind(account_id)
            .bind(&new.process_name)
            .fetch_one(&mut *tx)
            .await?;
        for (position, name) in new.steps.iter().enumerate() {
            sqlx::query(
                "INSERT INTO process_steps (account_id, process_id, position, name, status) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(account_id)
            .bind(process_id)
            .bind(position as i64)
            .bind(name)
            .bind(StepStatus::at(position, new.steps.len()).as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Account {
            id: account_id,
            login: new.login.clone(),
            name: new.name.clone(),
            process_id,
            created_at: at,
        })
    }

    async fn accounts(&self, page: Page) -> StoreResult<Vec<Account>> {
        let rows: Vec<AccountRow> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a
             WHERE (?1 IS NULL OR a.id > ?1) AND (?2 IS NULL OR a.id < ?2) ORDER BY a.id DESC LIMIT ?3"
        ))
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(account_from).collect())
    }

    async fn account(&self, login: &str) -> StoreResult<Account> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = ?"))
                .bind(login)
                .fetch_optional(&self.read)
                .await?;
        found(row, "account").map(account_from)
    }

    async fn account_credentials(&self, login: &str) -> StoreResult<(Account, String)> {
        let row: Option<(i64, String, String, i64, Micros, String)> = sqlx::query_as(&format!(
            "SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ?"
        ))
        .bind(login)
        .fetch_optional(&self.read)
        .await?;
        let (id, login, name, process_id, created_at, hash) = found(row, "account")?;
        Ok((account_from((id, login, name, process_id, created_at)), hash))
    }

    async fn delete_account(&self, login: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM accounts WHERE login = ?")
            .bind(login)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("account"));
        }
        Ok(())
    }

    async fn process(&self, account: i64, id: i64) -> StoreResult<Process> {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM processes WHERE account_id = ? AND id = ?")
            .bind(account)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let name = found(name, "process")?;
        let steps: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, process_id, name, status FROM process_steps
             WHERE account_id = ? AND process_id = ? ORDER BY position",
        )
        .bind(account)
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(Process {
            id,
            name,
            steps: steps.into_iter().map(step_from).collect(),
        })
    }
}
