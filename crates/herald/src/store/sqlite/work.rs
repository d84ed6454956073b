//! Work made due, told by the database: temporary triggers on the writer's connection call
//! `herald_work_made()` when a write makes a delivery due (a new delivery, one due again or
//! sooner, an endpoint active again), and the writer wakes the dispatcher once the
//! transaction that did so has committed. No write method has to remember to: the rule is
//! these triggers, as PostgreSQL's is its own (migrations/postgres/0006_work_announced.sql).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use tokio::sync::Notify;

/// Temporary: they live with the writer's connection, which is the only one that writes.
/// A retry's record moves `next_at` later, so it wakes no one; a person's retry or a replay
/// makes a delivery due again, or sooner.
const TRIGGERS: &str = "
    CREATE TEMP TRIGGER work_delivery_made AFTER INSERT ON main.deliveries
    BEGIN SELECT herald_work_made(); END;
    CREATE TEMP TRIGGER work_delivery_due_again AFTER UPDATE OF state, next_at ON main.deliveries
    WHEN NEW.state = 'pending' AND (OLD.state <> 'pending' OR NEW.next_at < OLD.next_at)
    BEGIN SELECT herald_work_made(); END;
    CREATE TEMP TRIGGER work_endpoint_active_again AFTER UPDATE OF state ON main.endpoints
    WHEN NEW.state = 'active' AND OLD.state <> 'active'
    BEGIN SELECT herald_work_made(); END;";

/// Whether the writer's open transaction has made work due, and whom to wake when it commits.
pub(super) struct WorkMade {
    made: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

impl WorkMade {
    /// Installs the triggers on the writer's `conn`; commits that make work due wake `wake`.
    pub fn watch(conn: &Connection, wake: Arc<Notify>) -> rusqlite::Result<WorkMade> {
        let made = Arc::new(AtomicBool::new(false));
        let flag = made.clone();
        conn.create_scalar_function("herald_work_made", 0, FunctionFlags::SQLITE_UTF8, move |_| {
            flag.store(true, SeqCst);
            Ok(rusqlite::types::Null)
        })?;
        conn.execute_batch(TRIGGERS)?;
        Ok(WorkMade { made, wake })
    }

    /// Whether work was made so far: a write rolled back to its savepoint gives this back to
    /// [`WorkMade::restore`], so that only committed work wakes anyone.
    pub fn so_far(&self) -> bool {
        self.made.load(SeqCst)
    }

    pub fn restore(&self, so_far: bool) {
        self.made.store(so_far, SeqCst);
    }

    /// The transaction ended, committed or not: wakes the dispatcher if it committed work.
    pub fn ended(&self, committed: bool) {
        if self.made.swap(false, SeqCst) && committed {
            self.wake.notify_one();
        }
    }
}
