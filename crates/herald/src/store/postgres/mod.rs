//! The PostgreSQL store, for several Herald nodes on one database.
//!
//! Each call takes a connection from a pool; a write that emits an event runs in one
//! transaction with it. Published events are written in groups (see `publish`). Nodes learn
//! of new work through `LISTEN/NOTIFY`, sent by the database's triggers (see `notify`), and
//! share deliveries through leases that run out (see `claim`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use tokio::sync::Notify;

use order::Listed;

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

mod claim;
mod delivery;
mod kept;
mod keys;
mod mail;
mod migrate;
mod notify;
mod order;
mod publish;
mod recruiting;
mod sessions;
mod upkeep;
mod versions;
mod webhooks;

/// Herald's data in a PostgreSQL database, shared with other nodes.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Wakes this node's dispatcher when a notification of new work arrives, from any node.
    wake: Arc<Notify>,
    /// Writes published events in groups.
    publisher: publish::Publisher,
    /// Where this node's writers of a listed collection wait their turn (one for every clone).
    turns: Arc<order::Turns>,
    /// The connection the dispatcher's claims, one after another, keep between them.
    claims: Arc<tokio::sync::Mutex<kept::Kept>>,
    /// The connection the recorder's batches, one after another, keep between them.
    records: Arc<tokio::sync::Mutex<kept::Kept>>,
}

/// A pooled connection idle this long is pinged before it is used again.
const PING_IDLE: Duration = Duration::from_secs(1);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if let sqlx::Error::PoolTimedOut = e {
            // sqlx's own words do not say which of the two it was; the log should.
            return StoreError::Unavailable(
                "no connection within a second: every one of database_max_connections is busy, \
                 or PostgreSQL does not answer"
                    .into(),
            );
        }
        if is_unreachable(&e) {
            return StoreError::Unavailable(e.to_string());
        }
        // SQLSTATE 53100, disk_full: the server could not extend a file.
        if let sqlx::Error::Database(db) = &e {
            if db.code().as_deref() == Some("53100") {
                return StoreError::Full(db.message().to_owned());
            }
        }
        StoreError::Other(Box::new(e))
    }
}

/// How long a request waits for a connection, and a node's start for its first one, before
/// the database counts as away.
const WAIT: Duration = Duration::from_secs(1);

/// Whether the error says the database cannot be reached, rather than that a statement
/// failed: no connection within the pool's wait, a connection lost, or a server shutting
/// down or starting (SQLSTATE classes 08 and 57P).
pub(super) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…`) with up to `max_connections`, and
    /// migrates it.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<PostgresStore> {
        // Every statement Herald runs is short; compiling one with JIT (which PostgreSQL does
        // when a plan looks costly) takes longer than running it. Planning each execution
        // anew (a custom plan) was a quarter of PostgreSQL's CPU at 1,000 events/s, so each
        // prepared statement keeps one generic plan. That plan is made again whenever its
        // tables' statistics change, which `upkeep` sees to as they grow: a plan made
        // while the tables were empty once took 23 ms per claim, before it did.
        let options = url
            .parse::<PgConnectOptions>()?
            .options([("jit", "off"), ("plan_cache_mode", "force_generic_plan")]);
        // The schema is brought up to date on a connection of its own, before the pool's
        // connections prepare the claim's statements, which need its tables. A database that
        // does not answer within the pool's wait is unreachable, as for the pool.
        let mut setup = tokio::time::timeout(WAIT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| {
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the database did not answer within a second",
                ))
            })??;
        migrate::run(&mut setup).await?;
        seed_builtin_types(&mut setup).await?;
        setup.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // A request waits this long for a connection before it fails (with a 503), rather
            // than hanging while PostgreSQL is away. Statements take milliseconds, so a second
            // without a free connection means the database is not there.
            .acquire_timeout(WAIT)
            // sqlx pings every connection it hands out, a round trip before each transaction
            // and statement: a fifth of a claim's. Only a connection that sat idle is pinged
            // (one that PostgreSQL dropped meanwhile is replaced); a busy one that broke fails
            // its statement, which every caller is ready for (a claim or a record is tried
            // again; a request is answered 503 and its write was not made).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(|conn, _| Box::pin(claim::prepare(conn)))
            .connect_with(options)
            .await?;
        let wake = Arc::new(Notify::new());
        tokio::spawn(notify::listen(pool.clone(), wake.clone()));
        tokio::spawn(upkeep::keep_up(pool.clone()));
        let publisher = publish::Publisher::start(&pool);
        let claims = Arc::new(tokio::sync::Mutex::new(kept::Kept::new(&pool)));
        let records = Arc::new(tokio::sync::Mutex::new(kept::Kept::new(&pool)));
        Ok(PostgresStore {
            pool,
            wake,
            publisher,
            turns: Arc::new(order::Turns::new()),
            claims,
            records,
        })
    }
}

async fn seed_builtin_types(conn: &mut PgConnection) -> sqlx::Result<()> {
    for t in builtin_types() {
        sqlx::query(
            "INSERT INTO event_types (name, description, schema, builtin, created_at) VALUES ($1, $2, $3, true, 0)
             ON CONFLICT (name) DO UPDATE SET description = excluded.description, schema = excluded.schema",
        )
        .bind(t.name)
        .bind(t.description)
        .bind(t.schema.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Turns a unique-constraint violation into a `Conflict` with `message`.
fn conflict(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message.into()),
        _ => e.into(),
    }
}

/// One page of an account's collection, newest first: `from` selects the rows of the table
/// aliased `alias`, whose `key` orders them.
async fn account_page(
    pool: &PgPool,
    from: &str,
    alias: &str,
    key: &str,
    account: i64,
    page: Page,
) -> sqlx::Result<Vec<PgRow>> {
    let k = format!("{alias}.{key}");
    sqlx::query(&format!(
        "{from} WHERE {alias}.account_id = $1
         AND {k} > coalesce($2, -1) AND {k} < coalesce($3, 9223372036854775807) ORDER BY {k} DESC LIMIT $4"
    ))
    .bind(account)
    .bind(page.since)
    .bind(page.before)
    .bind(fetch_limit(page))
    .fetch_all(pool)
    .await
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn admin_token_digest(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = 'admin_token_sha256'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn keep_admin_token_digest(&self, digest: &str) -> StoreResult<bool> {
        let kept = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('admin_token_sha256', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(digest)
        .execute(&self.pool)
        .await?;
        Ok(kept.rows_affected() == 1)
    }

    async fn create_account(
        &self,
        new: &NewAccount,
        password_hash: &str,
        at: Micros,
        once: Option<Once<Account>>,
    ) -> StoreResult<Account> {
        let (_turn, mut tx) = self.turns.begin(&self.pool, Listed::Accounts, 0).await?;
        let account_id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (login, name, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&new.login)
        .bind(&new.name)
        .bind(password_hash)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict(format!("the login {:?} is taken", new.login)))?;
        let process_id: i64 =
            sqlx::query_scalar("INSERT INTO processes (account_id, name) VALUES ($1, $2) RETURNING id")
                .bind(account_id)
                .bind(&new.process_name)
                .fetch_one(&mut *tx)
                .await?;
        let statuses: Vec<&str> = (0..new.steps.len())
            .map(|position| StepStatus::at(position, new.steps.len()).as_str())
            .collect();
        // One statement for every step, in order: the steps' ids follow their positions.
        sqlx::query(
            "INSERT INTO process_steps (account_id, process_id, position, name, status)
             SELECT $1, $2, s.position - 1, s.name, s.status
             FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS s (name, status, position)
             ORDER BY s.position",
        )
        .bind(account_id)
        .bind(process_id)
        .bind(&new.steps)
        .bind(&statuses)
        .execute(&mut *tx)
        .await?;
        let account = Account {
            id: account_id,
            login: new.login.clone(),
            name: new.name.clone(),
            process_id,
            created_at: at,
            notify_email: None,
        };
        keys::commit_once(tx, once, &account).await?;
        Ok(account)
    }

    async fn accounts(&self, page: Page) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a
             WHERE a.id > coalesce($1, -1) AND a.id < coalesce($2, 9223372036854775807) ORDER BY a.id DESC LIMIT $3"
        ))
        .bind(page.since)
        .bind(page.before)
        .bind(fetch_limit(page))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(account_from).collect::<sqlx::Result<_>>()?)
    }

    async fn account(&self, login: &str) -> StoreResult<Account> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.login = $1"))
            .bind(login)
            .fetch_optional(&self.pool)
            .await?;
        found(row.as_ref().map(account_from).transpose()?, "account")
    }

    async fn account_by_id(&self, id: i64) -> StoreResult<Account> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        found(row.as_ref().map(account_from).transpose()?, "account")
    }

    async fn account_credentials(&self, login: &str) -> StoreResult<(Account, String)> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = $1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        let row = found(row, "account")?;
        Ok((account_from(&row)?, row.try_get(6)?))
    }

    async fn update_account(&self, login: &str, update: &AccountUpdate) -> StoreResult<Account> {
        let row = sqlx::query(&format!(
            "WITH changed AS (
                 UPDATE accounts SET name = coalesce($2, name), password_hash = coalesce($3, password_hash),
                     notify_email = CASE WHEN $4 THEN $5 ELSE notify_email END
                 WHERE login = $1 RETURNING *)
             SELECT {ACCOUNT_COLUMNS} FROM changed a"
        ))
        .bind(login)
        .bind(&update.name)
        .bind(&update.password_hash)
        .bind(update.notify_email.is_some())
        .bind(update.notify_email.clone().flatten())
        .fetch_optional(&self.pool)
        .await?;
        found(row.as_ref().map(account_from).transpose()?, "account")
    }

    async fn delete_account(&self, login: &str) -> StoreResult<()> {
        // Foreign keys delete the account's data, but for its events, deliveries, tasks and
        // leases, whose cascades are written out (migrations 0007 and 0020), its idempotency
        // keys and its endpoints' counters. Those go in a second statement, which sees the
        // deliveries of publishing groups that held its endpoints while the first waited.
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar("DELETE FROM accounts WHERE login = $1 RETURNING id")
            .bind(login)
            .fetch_optional(&mut *tx)
            .await?;
        let id = found(id, "account")?;
        sqlx::query(
            "WITH events AS (DELETE FROM events WHERE account_id = $1),
             deliveries AS (DELETE FROM deliveries WHERE account_id = $1),
             tasks AS (DELETE FROM tasks WHERE account_id = $1),
             leases AS (DELETE FROM leases WHERE account_id = $1),
             keys AS (DELETE FROM idempotency_keys WHERE scope = 'account:' || $1)
             DELETE FROM endpoint_stats WHERE account_id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn process(&self, account: i64, id: i64) -> StoreResult<Process> {
        let name: Option<String> = sqlx::query_scalar("SELECT name FROM processes WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let name = found(name, "process")?;
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS} FROM process_steps s
             WHERE s.account_id = $1 AND s.process_id = $2 ORDER BY s.position"
        ))
        .bind(account)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Process {
            id,
            name,
            steps: rows.iter().map(|r| step_from(r, 0)).collect::<sqlx::Result<_>>()?,
        })
    }
}
