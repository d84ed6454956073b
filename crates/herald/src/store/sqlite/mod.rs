//! The SQLite store: one file in WAL mode, written by one thread that commits batches of
//! writes together, and read by a few others (see `engine`).
//!
//! A single writer means writes never fight over the database lock; readers see the last
//! committed state without waiting. `synchronous = FULL` fsyncs the WAL at the commit of
//! every write an API caller waits for, so an answered write survives a power loss too, not
//! only a killed process; group commit is what keeps that affordable (one fsync for every
//! write queued meanwhile). The dispatcher's own writes skip that fsync (see `engine`).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::Notify;

use super::codec::{
    ACCOUNT_COLUMNS, CANDIDATE_COLUMNS, JOB_COLUMNS, STEP_COLUMNS, column_text, decode, decode_word, fetch_limit,
    found, quoted,
};
use super::rows::{account_from, step_from};
use super::{AccountStore, AccountUpdate, Once, Page, StoreError, StoreResult};
use crate::clock::Micros;
use crate::domain::account::{Account, NewAccount};
use crate::domain::event::builtin_types;
use crate::domain::recruiting::{Process, StepStatus};
use engine::Engine;
use leases::Leases;

mod claim;
mod delivery;
mod engine;
mod keys;
mod leases;
mod mail;
mod migrate;
mod recruiting;
mod sessions;
mod versions;
mod webhooks;
mod work;

/// Herald's data in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    db: Engine,
    /// Wakes the dispatcher after a commit that made work due (see `work`).
    wake: Arc<Notify>,
    /// The deliveries with a call in flight; a new process starts with none, so a delivery
    /// whose call a dead process left unrecorded is called again (with the same webhook-id).
    leases: Arc<Leases>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
            _ => StoreError::Other(Box::new(e)),
        }
    }
}

/// The file a `sqlite://PATH` (or `sqlite:PATH`) URL names; query parameters are ignored.
fn path_of(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    anyhow::ensure!(
        !path.is_empty() && !path.starts_with(":memory:"),
        "{url:?} names no database file"
    );
    Ok(PathBuf::from(path))
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url` (`sqlite://PATH`).
    pub fn open(url: &str) -> anyhow::Result<SqliteStore> {
        let path = path_of(url)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let writer = engine::connect(&path, flags)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrate::run(&writer)?;
        seed_builtin_types(&writer)?;
        let wake = Arc::new(Notify::new());
        Ok(SqliteStore {
            db: Engine::start(&path, writer, wake.clone())?,
            wake,
            leases: Arc::default(),
        })
    }
}

fn seed_builtin_types(conn: &Connection) -> rusqlite::Result<()> {
    for t in builtin_types() {
        conn.execute(
            "INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES (?, ?, ?, 1, 0)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, schema = excluded.schema",
            params![t.name, t.description, t.schema.to_string()],
        )?;
    }
    Ok(())
}

/// Whether an error is a unique-constraint violation.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Turns a unique-constraint violation into a `Conflict` with `message`.
fn conflict(message: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(message.into())
        } else {
            e.into()
        }
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn admin_token_digest(&self) -> StoreResult<Option<String>> {
        self.db
            .read(|conn| {
                let digest = conn
                    .query_row(
                        "SELECT value FROM settings WHERE name = 'admin_token_sha256'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(digest)
            })
            .await
    }

    async fn keep_admin_token_digest(&self, digest: &str) -> StoreResult<bool> {
        let digest = digest.to_owned();
        self.db
            .write(move |conn| {
                let kept = conn.execute(
                    "INSERT INTO settings (name, value) VALUES ('admin_token_sha256', ?) ON CONFLICT (name) DO NOTHING",
                    [digest],
                )?;
                Ok(kept == 1)
            })
            .await
    }

    async fn create_account(
        &self,
        new: &NewAccount,
        password_hash: &str,
        at: Micros,
        once: Option<Once<Account>>,
    ) -> StoreResult<Account> {
        let (new, password_hash) = (new.clone(), password_hash.to_owned());
        self.db
            .write_once(once, move |conn| {
                let account_id: i64 = conn
                    .query_row(
                        "INSERT INTO accounts (login, name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                        params![new.login, new.name, password_hash, at],
                        |r| r.get(0),
                    )
                    .map_err(conflict(format!("the login {:?} is taken", new.login)))?;
                let process_id: i64 = conn.query_row(
                    "INSERT INTO processes (account_id, name) VALUES (?, ?) RETURNING id",
                    params![account_id, new.process_name],
                    |r| r.get(0),
                )?;
                let mut insert = conn.prepare_cached(
                    "INSERT INTO process_steps (account_id, process_id, position, name, status) VALUES (?, ?, ?, ?, ?)",
                )?;
                for (position, name) in new.steps.iter().enumerate() {
                    let status = StepStatus::at(position, new.steps.len()).as_str();
                    insert.execute(params![account_id, process_id, position as i64, name, status])?;
                }
                Ok(Account { id: account_id, login: new.login, name: new.name, process_id, created_at: at, notify_email: None })
            })
            .await
    }

    async fn accounts(&self, page: Page) -> StoreResult<Vec<Account>> {
        self.db
            .read(move |conn| {
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a
                     WHERE a.id > coalesce(?1, -1) AND a.id < coalesce(?2, 9223372036854775807) ORDER BY a.id DESC LIMIT ?3"
                ))?;
                let rows = statement.query_map(params![page.since, page.before, fetch_limit(page)], |row| account_from(row))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn account(&self, login: &str) -> StoreResult<Account> {
        let login = login.to_owned();
        self.db
            .read(move |conn| {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = ?");
                let row = conn
                    .prepare_cached(&sql)?
                    .query_row([login], |row| account_from(row))
                    .optional()?;
                found(row, "account")
            })
            .await
    }

    async fn account_by_id(&self, id: i64) -> StoreResult<Account> {
        self.db
            .read(move |conn| {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ?");
                let row = conn
                    .prepare_cached(&sql)?
                    .query_row([id], |row| account_from(row))
                    .optional()?;
                found(row, "account")
            })
            .await
    }

    async fn account_credentials(&self, login: &str) -> StoreResult<(Account, String)> {
        let login = login.to_owned();
        self.db
            .read(move |conn| {
                let sql = format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ?");
                let row = conn
                    .prepare_cached(&sql)?
                    .query_row([login], |r| Ok((account_from(r)?, r.get::<_, String>(6)?)))
                    .optional()?;
                found(row, "account")
            })
            .await
    }

    async fn update_account(&self, login: &str, update: &AccountUpdate) -> StoreResult<Account> {
        let (login, update) = (login.to_owned(), update.clone());
        self.db
            .write(move |conn| {
                let changed = conn.execute(
                    "UPDATE accounts SET name = coalesce(?2, name), password_hash = coalesce(?3, password_hash),
                         notify_email = CASE WHEN ?4 THEN ?5 ELSE notify_email END
                     WHERE login = ?1",
                    params![
                        login,
                        update.name,
                        update.password_hash,
                        update.notify_email.is_some(),
                        update.notify_email.flatten()
                    ],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound("account"));
                }
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = ?");
                Ok(conn.query_row(&sql, [login], |row| account_from(row))?)
            })
            .await
    }

    async fn delete_account(&self, login: &str) -> StoreResult<()> {
        let login = login.to_owned();
        self.db
            .write(move |conn| {
                let id: Option<i64> = conn
                    .query_row("DELETE FROM accounts WHERE login = ? RETURNING id", [login], |r| {
                        r.get(0)
                    })
                    .optional()?;
                let id = found(id, "account")?;
                // Its data goes by the foreign keys' cascades; its keys, which have none, here.
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE scope = ?",
                    [format!("account:{id}")],
                )?;
                Ok(())
            })
            .await
    }

    async fn process(&self, account: i64, id: i64) -> StoreResult<Process> {
        self.db
            .read(move |conn| {
                let name: Option<String> = conn
                    .query_row(
                        "SELECT name FROM processes WHERE account_id = ? AND id = ?",
                        [account, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let name = found(name, "process")?;
                let mut statement = conn.prepare_cached(&format!(
                    "SELECT {STEP_COLUMNS} FROM process_steps s
                     WHERE s.account_id = ? AND s.process_id = ? ORDER BY s.position"
                ))?;
                let steps = statement.query_map([account, id], |r| step_from(r, 0))?;
                Ok(Process {
                    id,
                    name,
                    steps: steps.collect::<rusqlite::Result<_>>()?,
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files() {
        assert_eq!(path_of("sqlite://herald.db").unwrap(), PathBuf::from("herald.db"));
        assert_eq!(
            path_of("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(path_of("sqlite:data/h.db").unwrap(), PathBuf::from("data/h.db"));
        assert!(path_of("sqlite::memory:").is_err());
        assert!(path_of("sqlite://").is_err());
    }

    /// SQLite builds a temporary b-tree, with its own page cache, for `RETURNING` and for an
    /// `IN` list of more than two values (a check constraint's too): a few microseconds per
    /// row on the one writer thread, which writes these rows for every event and every call.
    #[test]
    fn the_rows_written_per_event_and_per_call_build_no_temporary_table() {
        let conn = Connection::open_in_memory().unwrap();
        migrate::run(&conn).unwrap();
        // The fan-out's own statement names a lookup table in its bytecode, for the endpoints a
        // filter leaves out, which it builds only when there are some (`insert_event`); what
        // each of its rows costs, the check above all, is a plain insert's.
        let new_delivery =
            "INSERT INTO deliveries (account_id, endpoint_seq, event_seq, application_id, state, next_at,
                                created_at, fifo) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)";
        for sql in [
            webhooks::INSERT_EVENT,
            new_delivery,
            delivery::INSERT_TASK,
            delivery::RECORD_DELIVERY,
        ] {
            let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let unbound = std::iter::repeat_n(rusqlite::types::Null, explain.parameter_count());
            let ops: Vec<String> = explain
                .query_map(rusqlite::params_from_iter(unbound), |r| r.get(1))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(ops.iter().any(|op| op == "Insert"), "{sql}: {ops:?}");
            assert!(!ops.iter().any(|op| op == "OpenEphemeral"), "{sql}: {ops:?}");
        }
    }
}
