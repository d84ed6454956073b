//! How the SQLite store runs its SQL: one writer thread that commits whole batches of writes
//! together (group commit), and a few reader threads.
//!
//! Each write is a closure run on the writer's connection inside its own savepoint, so one
//! failing write rolls back alone; all writes that queued while the previous batch committed
//! share the next transaction, and each caller hears back only once that transaction has
//! committed. Statements run on the thread that owns the connection, so a write costs one
//! hand-off between threads, not one per statement.
//!
//! A transaction is fsynced before its callers hear back (`synchronous = FULL`) when any of
//! its writes must survive a power cut, which is every write an API caller waits for. The
//! dispatcher's own writes (the records of calls made, a rate limit's next start time) need
//! not: a power cut that undoes them costs what a killed process costs, a call made again
//! (leases live in memory, see `leases`). Those commits leave their fsync to the next synced
//! one (the WAL is one file written in order, and a torn tail is discarded on open), so at low
//! rates a delivery costs one fsync, its event's, rather than two.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Notify, oneshot};

use super::work::WorkMade;
use crate::store::{StoreError, StoreResult};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Reading connections.
const READERS: usize = 4;

/// What the writer does once the batch's transaction has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), Failed>) + Send>;

/// Why a batch's transaction did not commit, told to each of its writes: none of them
/// happened.
#[derive(Debug, Clone)]
enum Failed {
    /// The commit found the disk full; the writes can be tried again once there is room.
    Full(String),
    /// SQLite rolled the transaction back after another write's error (a full disk, say).
    Lost,
    Other(String),
}

impl Failed {
    fn of(e: &rusqlite::Error) -> Failed {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => Failed::Full(e.to_string()),
            _ => Failed::Other(e.to_string()),
        }
    }
}

impl From<Failed> for StoreError {
    fn from(failed: Failed) -> StoreError {
        match failed {
            Failed::Full(message) => StoreError::Full(message),
            Failed::Lost => StoreError::Unavailable(
                "the write transaction was rolled back after another write failed; nothing was written".into(),
            ),
            Failed::Other(message) => StoreError::Other(message.into()),
        }
    }
}
/// A write's work: run it on the connection; `Some` holds its result until the commit is
/// known.
type Run = Box<dyn FnOnce(&Connection) -> Option<Completion> + Send>;

/// A write, and how durable its commit must be.
struct WriteJob {
    run: Run,
    /// Whether its commit must be on disk before its caller hears back.
    synced: bool,
}
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The reads waiting for a reading connection. Each idle reader waits on `ready` itself, so
/// that a read wakes one thread. Readers that took turns waiting on one channel's receiver,
/// under a mutex, woke two for each read (the one that got it, then the next to wait): at
/// 1,000 events/s, half of the readers' context switches.
#[derive(Default)]
struct ReadQueue {
    waiting: Mutex<Waiting>,
    ready: Condvar,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<ReadJob>,
    /// Every handle to the engine is gone: the readers stop once the queue is empty.
    closed: bool,
}

impl ReadQueue {
    fn push(&self, job: ReadJob) {
        self.lock().jobs.push_back(job);
        self.ready.notify_one();
    }

    /// The next read; `None` once the engine is gone and no read is left.
    fn next(&self) -> Option<ReadJob> {
        let mut waiting = self.lock();
        loop {
            if let Some(job) = waiting.jobs.pop_front() {
                return Some(job);
            }
            if waiting.closed {
                return None;
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Reads run outside the lock, and catch their panics: nothing can poison it midway.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The engine's side of the read queue: when the last handle goes, the readers stop.
struct Reads(Arc<ReadQueue>);

impl Drop for Reads {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// Handles to the writer and reader threads; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    writes: mpsc::Sender<WriteJob>,
    reads: Arc<Reads>,
}

fn stopped() -> StoreError {
    StoreError::Other("the database threads have stopped".into())
}

/// Opens a connection with the settings every connection shares.
pub fn connect(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // An answered write must survive a power cut: the WAL is on disk before the commit returns.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(128);
    // A statement whose plan used a bound value (a `LIMIT ?`, say) is compiled again whenever
    // that value changes: the claim's read of an endpoint's due deliveries was compiled anew
    // on nine executions in ten, two fifths of the readers' CPU at 1,000 events/s. With the
    // planner's stability guarantee, each statement keeps the plan it was prepared with.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // `rarray(?)`, a list of values bound as one parameter: a claim leaves out its leased
    // deliveries by their ids.
    rusqlite::vtab::array::load_module(&conn)?;
    Ok(conn)
}

impl Engine {
    /// Starts the threads on the (already migrated) database at `path`; commits that make
    /// work due wake `wake`.
    pub fn start(path: &Path, writer: Connection, wake: Arc<Notify>) -> rusqlite::Result<Engine> {
        let work = WorkMade::watch(&writer, wake)?;
        let (writes, write_jobs) = mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("herald-db-writer".into())
            .spawn(move || write_loop(&writer, &write_jobs, &work))
            .expect("a thread starts");
        let reads = Arc::new(ReadQueue::default());
        for i in 0..READERS {
            let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            let jobs = reads.clone();
            std::thread::Builder::new()
                .name(format!("herald-db-reader-{i}"))
                .spawn(move || read_loop(&conn, &jobs))
                .expect("a thread starts");
        }
        Ok(Engine {
            writes,
            reads: Arc::new(Reads(reads)),
        })
    }

    /// Runs `f` in the next group-committed transaction; answers once it has committed and
    /// is on disk.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, true).await
    }

    /// Like [`Engine::write`], but answers once committed, before the commit is on disk: for
    /// the dispatcher's writes, which a power cut may undo at the cost of a call made again.
    pub async fn write_unsynced<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, false).await
    }

    async fn submit<T, F>(&self, f: F, synced: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |conn: &Connection| match f(conn) {
            Ok(value) => Some(Box::new(move |committed: Result<(), Failed>| {
                let _ = tx.send(committed.map(|()| value).map_err(StoreError::from));
            }) as Completion),
            Err(e) => {
                let _ = tx.send(Err(e));
                None
            }
        });
        self.writes.send(WriteJob { run, synced }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on a reading connection.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.reads.0.push(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        rx.await.map_err(|_| stopped())?
    }
}

fn write_loop(conn: &Connection, jobs: &mpsc::Receiver<WriteJob>, work: &WorkMade) {
    // Writes a batch did not get to run, because its transaction was lost: they go first in
    // the next one.
    let mut carried: Vec<WriteJob> = Vec::new();
    // The connection starts with `synchronous = FULL` (see `connect`).
    let mut syncing = true;
    loop {
        let mut batch = std::mem::take(&mut carried);
        if batch.is_empty() {
            match jobs.recv() {
                Ok(first) => batch.push(first),
                Err(_) => return,
            }
        }
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Set between transactions; SQLite reads it as it commits.
        let synced = batch.iter().any(|job| job.synced);
        if synced != syncing {
            let level = if synced { "FULL" } else { "NORMAL" };
            if let Err(e) = conn.pragma_update(None, "synchronous", level) {
                tracing::error!(error = %e, "cannot set synchronous = {level}");
                // Dropping the jobs tells each caller that its write did not happen.
                continue;
            }
            syncing = synced;
        }
        if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a write transaction");
            // Dropping the jobs tells each caller that its write did not happen.
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        let mut lost = None;
        let mut batch = batch.into_iter();
        for job in batch.by_ref() {
            if control(conn, "SAVEPOINT job").is_err() {
                continue;
            }
            let work_so_far = work.so_far();
            // A panicking write loses only itself: its caller hears that it failed.
            let done = std::panic::catch_unwind(AssertUnwindSafe(|| (job.run)(conn)))
                .ok()
                .flatten();
            match done {
                Some(completion) => {
                    let _ = control(conn, "RELEASE job");
                    completions.push(completion);
                }
                None => {
                    let _ = control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"));
                    work.restore(work_so_far);
                }
            }
            // SQLite may roll back the whole transaction on some errors (a full disk, say):
            // the writes that seemed done are undone, and the next ones would each commit on
            // their own, unannounced. Stop here; the rest wait for the next transaction.
            if conn.is_autocommit() {
                lost = Some(Failed::Lost);
                break;
            }
        }
        carried.extend(batch);
        let committed = match lost {
            Some(failed) => Err(failed),
            None => control(conn, "COMMIT").map_err(|e| Failed::of(&e)),
        };
        if committed.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // The dispatcher is woken before any caller is answered.
        work.ended(committed.is_ok());
        for completion in completions {
            completion(committed.clone());
        }
    }
}

/// Runs a transaction's control statement from the statement cache: the writer runs several
/// for each write, and parsing them anew each time showed in its profile.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn read_loop(conn: &Connection, jobs: &ReadQueue) {
    while let Some(job) = jobs.next() {
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PRAGMA synchronous` as a write sees it on the writer's connection: 2 is FULL (fsynced
    /// at commit), 1 NORMAL.
    fn level(conn: &Connection) -> StoreResult<i64> {
        Ok(conn.pragma_query_value(None, "synchronous", |r| r.get(0))?)
    }

    /// An engine on a new, migrated database in a folder that lasts as long as the first value.
    fn started() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let writer = connect(&path, flags).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        super::super::migrate::run(&writer).unwrap();
        let engine = Engine::start(&path, writer, Arc::new(Notify::new())).unwrap();
        (dir, engine)
    }

    #[test]
    fn a_statement_keeps_its_plan_whatever_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = connect(&dir.path().join("herald.db"), flags).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let mut select = conn.prepare_cached("SELECT n FROM t ORDER BY n LIMIT ?").unwrap();
        for limit in 1..=3 {
            let rows: Vec<i64> = select
                .query_map([limit], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(rows.len(), limit as usize);
        }
        assert_eq!(
            select.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "compiled once"
        );
    }

    #[tokio::test]
    async fn reads_are_shared_by_the_readers_which_stop_with_the_engine() {
        let (_dir, engine) = started();

        // More reads at once than readers: each waits on its own thread, so all are served.
        let thread = |_: &Connection| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(std::thread::current().name().unwrap_or_default().to_owned())
        };
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..READERS * 2 {
            let engine = engine.clone();
            reads.spawn(async move { engine.read(thread).await.unwrap() });
        }
        let threads: std::collections::HashSet<String> = reads.join_all().await.into_iter().collect();
        assert_eq!(threads.len(), READERS, "{threads:?}");

        let queue = Arc::downgrade(&engine.reads.0);
        drop(engine);
        // The readers hold the queue until they stop; they are real threads, so wait for them.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while queue.upgrade().is_some() {
            assert!(std::time::Instant::now() < deadline, "the readers did not stop");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[tokio::test]
    async fn a_batch_is_fsynced_when_any_of_its_writes_must_be() {
        let (_dir, engine) = started();

        assert_eq!(engine.write_unsynced(level).await.unwrap(), 1, "alone, no fsync");
        assert_eq!(engine.write(level).await.unwrap(), 2, "an answered write is fsynced");
        assert_eq!(
            engine.write_unsynced(level).await.unwrap(),
            1,
            "and the level goes back"
        );

        // Both queue while a slow write holds the writer, so they share the next batch: the
        // unsynced one is fsynced with the other.
        let slow = engine.write_unsynced(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        });
        let unsynced = engine.write_unsynced(level);
        let synced = engine.write(level);
        let ((), unsynced, synced) = tokio::try_join!(slow, unsynced, synced).unwrap();
        assert_eq!((unsynced, synced), (2, 2));
    }
}
