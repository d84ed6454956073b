//! The recorder: writes finished calls in batches (one transaction for many calls; plain
//! successes wait a few milliseconds for company), then wakes the dispatcher if a record
//! changed what is due (a retry's time, a suspension, the next delivery of a FIFO
//! application, a probe's outcome). Room a call leaves came back when it ended (see
//! [`Ended`]), so a batch of plain successes wakes nobody.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::schedule;
use crate::clock::{Clock, Micros};
use crate::config::SuspensionConfig;
use crate::domain::delivery::{CallRecord, Claimed};
use crate::domain::endpoint::Health;
use crate::domain::event::{Event, EventStamp};
use crate::domain::operational::{self, About, LastCall, News};
use crate::ids;
use crate::store::{CallRules, Store};

/// Most calls recorded in one transaction.
pub(super) const RECORD_BATCH: usize = 512;
/// How long a small batch of plain successes waits for more calls to record with it. Their
/// records change nothing that is due, so they can wait; at a moderate rate this turns a
/// transaction per call into one per few milliseconds, each a hand-off to the database and
/// back.
const LINGER: Duration = Duration::from_millis(5);
/// A batch this large is written at once: under load calls end faster than a transaction
/// commits, and holding their records back would only keep their leases, and the claims'
/// list of ended calls, longer.
const LINGER_BELOW: usize = 16;

/// The rules the store applies as it records calls: the suspension rules of `schedule`, and
/// operational events stamped with the clock.
pub(super) struct Rules {
    pub suspension: SuspensionConfig,
    pub clock: Clock,
    /// Whether an SMTP server is configured, to e-mail the news.
    pub mails: bool,
}

impl CallRules for Rules {
    fn health(&self, health: Health, call: &CallRecord) -> Health {
        schedule::after_call(&self.suspension, health, call.attempt.verdict, call.attempt.ended_at())
    }

    fn tell(&self, news: News, call: &CallRecord, health: &Health, task_id: Option<i64>) -> Event {
        let attempt = &call.attempt;
        // Now, as the record is written: a call's end, which adds its real duration to the
        // clock's time of its start, can lie ahead of a manual clock, and the event's
        // deliveries would wait for the clock to catch up.
        let at = self.clock.now();
        let stamp = EventStamp {
            id: ids::event_id(),
            at,
            datetime: self.clock.datetime(at),
        };
        let about = About {
            endpoint_id: &attempt.claimed.endpoint_id,
            url: &attempt.claimed.url,
            state: health.state,
            consecutive_failures: health.consecutive_failures,
            suspended_until: health.suspended_until.map(|until| self.clock.datetime(until)),
        };
        let last_call = task_id.map(|task_id| LastCall {
            task_id,
            response_status: attempt.response_status,
            error: attempt.failure.as_ref().map(|f| f.code),
        });
        operational::event(news, &about, last_call.as_ref(), stamp)
    }

    fn mails(&self) -> bool {
        self.mails
    }
}

/// This node's calls that have ended and wait to be recorded, by (delivery id, lease until).
/// Their deliveries stay leased until then, but claims leave room for others in their place:
/// a call that ended is not in flight, and waiting for its record would hold every endpoint
/// to the pace of the recorder's commits.
#[derive(Clone, Default)]
pub(super) struct Ended {
    calls: Arc<Mutex<HashSet<(i64, Micros)>>>,
    /// How many calls have ended so far: a claim compares it before and after, to tell
    /// whether a call ended while it ran.
    count: Arc<AtomicU64>,
}

impl Ended {
    pub fn add(&self, call: &Claimed) {
        self.lock().insert((call.delivery_id, call.leased_until));
        self.count.fetch_add(1, SeqCst);
    }

    pub fn count(&self) -> u64 {
        self.count.load(SeqCst)
    }

    /// Forgets calls once their records are committed.
    pub fn recorded(&self, calls: &[CallRecord]) {
        let mut ended = self.lock();
        for call in calls {
            let claimed = &call.attempt.claimed;
            ended.remove(&(claimed.delivery_id, claimed.leased_until));
        }
    }

    pub fn list(&self) -> Vec<(i64, Micros)> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(i64, Micros)>> {
        // The set is consistent after every operation, so one poisoned by a panic elsewhere
        // is still right.
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What the recorder needs; it holds no sender of its own channel, so it stops when the
/// dispatcher and its calls are gone.
pub(super) struct Recorder {
    pub store: Arc<dyn Store>,
    pub rules: Arc<Rules>,
    pub wake: Arc<Notify>,
    pub ended: Ended,
}

impl Recorder {
    /// Writes finished calls in batches until every sender is gone.
    pub async fn run(self, mut finished: mpsc::Receiver<CallRecord>) {
        let rules: Arc<dyn CallRules> = self.rules.clone();
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let until = tokio::time::Instant::now() + LINGER;
            while batch.len() < LINGER_BELOW && !batch.iter().any(CallRecord::changes_what_is_due) {
                let room = LINGER_BELOW - batch.len();
                match tokio::time::timeout_at(until, finished.recv_many(&mut batch, room)).await {
                    Ok(received) if received > 0 => {}
                    // The time is up, or every sender is gone: write what there is.
                    _ => break,
                }
            }
            // A failed write is tried again: the calls were made, and until they are recorded
            // their deliveries stay leased, so nothing else calls them meanwhile.
            let calls: Arc<[CallRecord]> = batch.drain(..).collect();
            while let Err(e) = self.store.record_calls(calls.clone(), rules.clone()).await {
                tracing::error!(error = %e, calls = calls.len(), "recording calls failed; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            self.ended.recorded(&calls);
            if calls.iter().any(CallRecord::changes_what_is_due) {
                self.wake.notify_one();
            }
        }
    }
}
