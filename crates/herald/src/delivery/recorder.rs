//! The recorder: writes finished calls in batches (one transaction for many calls), then
//! wakes the dispatcher: recording a call clears its lease, which gives its endpoint room.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::schedule;
use crate::config::SuspensionConfig;
use crate::domain::delivery::CallRecord;
use crate::store::{HealthRule, Store};

/// Most calls recorded in one transaction.
pub(super) const RECORD_BATCH: usize = 512;

/// How a recorded call changes its endpoint's health: the suspension rules of `schedule`.
pub(super) fn health_rule(suspension: SuspensionConfig) -> HealthRule {
    Arc::new(move |health, call: &CallRecord| {
        schedule::after_call(&suspension, health, call.attempt.verdict, call.attempt.ended_at())
    })
}

/// What the recorder needs; it holds no sender of its own channel, so it stops when the
/// dispatcher and its calls are gone.
pub(super) struct Recorder {
    pub store: Arc<dyn Store>,
    pub suspension: SuspensionConfig,
    pub wake: Arc<Notify>,
}

impl Recorder {
    /// Writes finished calls in batches until every sender is gone.
    pub async fn run(self, mut finished: mpsc::Receiver<CallRecord>) {
        let rule = health_rule(self.suspension.clone());
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            // A failed write is tried again: the calls were made, and until they are recorded
            // their deliveries stay leased, so nothing else calls them meanwhile.
            let calls: Arc<[CallRecord]> = batch.drain(..).collect();
            while let Err(e) = self.store.record_calls(calls.clone(), rule.clone()).await {
                tracing::error!(error = %e, calls = calls.len(), "recording calls failed; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            // The endpoints' room came back with the commit, which also holds the outcome (a
            // renewed suspension, say): the next claim sees both at once.
            self.wake.notify_one();
        }
    }
}
