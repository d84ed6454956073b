//! The recorder: writes finished calls in batches (one transaction for many calls), then
//! gives their endpoints their room back and wakes the dispatcher.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::schedule;
use crate::config::SuspensionConfig;
use crate::domain::delivery::CallRecord;
use crate::store::{HealthRule, Store};

/// Most calls recorded in one transaction.
pub(super) const RECORD_BATCH: usize = 512;

/// Calls in flight, by endpoint seq: the dispatcher adds, the recorder takes away.
pub(super) type InFlight = Arc<Mutex<HashMap<i64, u32>>>;

/// What the recorder needs; it holds no sender of its own channel, so it stops when the
/// dispatcher and its calls are gone.
pub(super) struct Recorder {
    pub store: Arc<dyn Store>,
    pub suspension: SuspensionConfig,
    pub in_flight: InFlight,
    pub wake: Arc<Notify>,
}

impl Recorder {
    /// Writes finished calls in batches until every sender is gone.
    pub async fn run(self, mut finished: mpsc::Receiver<CallRecord>) {
        let suspension = self.suspension.clone();
        let rule: HealthRule = Arc::new(move |health, call: &CallRecord| {
            schedule::after_call(&suspension, health, call.attempt.verdict, call.attempt.ended_at())
        });
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            // A failed write is tried again: the calls were made, and until they are recorded
            // their deliveries stay leased, so nothing else calls them meanwhile.
            let calls: Arc<[CallRecord]> = batch.drain(..).collect();
            while let Err(e) = self.store.record_calls(calls.clone(), rule.clone()).await {
                tracing::error!(error = %e, calls = calls.len(), "recording calls failed; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // Only now that the outcome (a renewed suspension, say) is written does the
            // endpoint get its room back; until then the loop could claim on stale health.
            self.release(&calls);
            self.wake.notify_one();
        }
    }

    /// Gives each recorded call's endpoint its room back.
    fn release(&self, calls: &[CallRecord]) {
        let mut in_flight = self.in_flight.lock().expect("the in-flight lock is never poisoned");
        for call in calls {
            let seq = call.attempt.claimed.endpoint_seq;
            if let Some(n) = in_flight.get_mut(&seq) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(&seq);
                }
            }
        }
    }
}
