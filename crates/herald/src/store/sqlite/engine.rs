//! How the SQLite store runs its SQL: one writer thread that commits whole batches of writes
//! together (group commit), and a few reader threads.
//!
//! Each write is a closure run on the writer's connection inside its own savepoint, so one
//! failing write rolls back alone; all writes that queued while the previous batch committed
//! share the next transaction, and each caller hears back only once that transaction has
//! committed. Statements run on the thread that owns the connection, so a write costs one
//! hand-off between threads, not one per statement.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Notify, oneshot};

use super::work::WorkMade;
use crate::store::{StoreError, StoreResult};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Reading connections.
const READERS: usize = 4;

/// What the writer does once the batch's transaction has committed (or failed to).
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write: run it on the connection; `Some` holds its result until the commit is known.
type WriteJob = Box<dyn FnOnce(&Connection) -> Option<Completion> + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Handles to the writer and reader threads; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    writes: mpsc::Sender<WriteJob>,
    reads: mpsc::Sender<ReadJob>,
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
        let (reads, read_jobs) = mpsc::channel::<ReadJob>();
        let read_jobs = Arc::new(Mutex::new(read_jobs));
        for i in 0..READERS {
            let conn = connect(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            let jobs = read_jobs.clone();
            std::thread::Builder::new()
                .name(format!("herald-db-reader-{i}"))
                .spawn(move || read_loop(&conn, &jobs))
                .expect("a thread starts");
        }
        Ok(Engine { writes, reads })
    }

    /// Runs `f` in the next group-committed transaction; answers once it has committed.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn| match f(conn) {
            Ok(value) => Some(Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(committed.map(|()| value).map_err(|e| StoreError::Other(e.into())));
            })),
            Err(e) => {
                let _ = tx.send(Err(e));
                None
            }
        });
        self.writes.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on a reading connection.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.reads
            .send(Box::new(move |conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn write_loop(conn: &Connection, jobs: &mpsc::Receiver<WriteJob>, work: &WorkMade) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a write transaction");
            // Dropping the jobs tells each caller that its write did not happen.
            continue;
        }
        let mut completions = Vec::with_capacity(batch.len());
        for job in batch {
            if conn.execute_batch("SAVEPOINT job").is_err() {
                continue;
            }
            let work_so_far = work.so_far();
            // A panicking write loses only itself: its caller hears that it failed.
            let done = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))).ok().flatten();
            match done {
                Some(completion) => {
                    let _ = conn.execute_batch("RELEASE job");
                    completions.push(completion);
                }
                None => {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                    work.restore(work_so_far);
                }
            }
        }
        let committed = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // The dispatcher is woken before any caller is answered.
        work.ended(committed.is_ok());
        for completion in completions {
            completion(committed.clone());
        }
    }
}

fn read_loop(conn: &Connection, jobs: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
            }
            Err(_) => return,
        }
    }
}
