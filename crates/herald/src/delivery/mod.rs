//! The dispatcher: claims due deliveries, calls their endpoints, and records every call.
//!
//! One loop claims work in batches and spawns a task per call; a recorder writes finished
//! calls in batches (one transaction for many calls). New events wake the loop (at once after
//! a quiet spell, else a millisecond after the last claim began, see `CLAIM_SPACING`), and so
//! does a call that ends while its endpoint has more waiting than room; when nothing is due it
//! sleeps until the next retry or the end of a suspension. Concurrency is
//! bounded twice: `max_in_flight` calls in all, `max_in_flight_per_endpoint` per endpoint, so a
//! slow endpoint fills only its own share.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};

use crate::clock::{Clock, Micros};
use crate::config::Config;
use crate::domain::delivery::{Attempt, CallRecord, Claimed, Next};
use crate::metrics::Metrics;
use crate::store::{Claim, ClaimRequest, Store};

pub mod call;
pub mod guard;
mod recorder;
pub mod retention;
pub mod schedule;
pub mod signing;

use call::Caller;
use recorder::{Ended, Recorder};
use signing::SigningKey;

/// Most deliveries claimed in one go.
const CLAIM_BATCH: u32 = 256;
/// How long past the time-out a claimed delivery stays leased: time enough for the call's
/// record to be written. When a node dies, other nodes call its deliveries again once that
/// much has passed after the time-out.
const LEASE_MARGIN: Duration = Duration::from_secs(10);
/// The longest the loop sleeps without being woken: a safety net, not the way work is found.
const MAX_IDLE: Duration = Duration::from_secs(60);
/// How far ahead a claim gives a rate-limited endpoint's calls their start times. Each call
/// waits for its own, holding its slot; looking ahead lets one claim start many calls of a
/// fast limit, rather than one claim per call (see `Slots::reopens`).
const PACE_AHEAD: Duration = Duration::from_millis(250);
/// How long after a claim began new work waits for the next: events that come in a steady
/// stream are claimed a few at a time rather than one by one, each claim a hand-off to a
/// reading thread (SQLite) or a transaction of two round trips (PostgreSQL). Work after a
/// quiet spell is claimed at once; room that a call's end makes is too.
const CLAIM_SPACING: Duration = Duration::from_millis(1);

/// What one step of the loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Calls were started for this many deliveries (0: nothing could be claimed).
    pub dispatched: usize,
    /// The time the claim went by: what was due then and not taken is waiting for room, and
    /// anything due later is what the loop must wake up for.
    pub at: Micros,
    /// When a rate limit that held back due deliveries lets the next claim take more.
    pub paced: Option<Micros>,
    /// When the next thing falls due after `at`, as the claim saw it.
    pub next_due: Option<Micros>,
}

impl Outcome {
    fn of(claim: &Claim, at: Micros) -> Outcome {
        Outcome {
            dispatched: claim.claimed.len(),
            at,
            paced: claim.paced,
            next_due: claim.next_due,
        }
    }
}

/// How long the loop may sleep after a step, and why it wakes if nothing wakes it sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub sleep: Duration,
    /// No due time is known within the idle safety net (a minute): the sleep is the safety
    /// net's.
    pub safety_net: bool,
}

/// Everything the dispatcher needs; cheap to clone into each call's task.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    clock: Clock,
    caller: Caller,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    records: mpsc::Sender<CallRecord>,
    /// The endpoint the last claim ended with; the next starts after it.
    last_endpoint: Arc<AtomicI64>,
    /// Whether the last claim left an endpoint at its cap: then a call that ends makes room
    /// that is wanted, and wakes the loop through `room`.
    at_capacity: Arc<AtomicBool>,
    /// Calls that ended and wait for the recorder.
    ended: Ended,
    /// The store's signal of new work, also given when a record changes what is due.
    wake: Arc<Notify>,
    /// Given when a call ends while the last claim left an endpoint at its cap.
    room: Arc<Notify>,
    /// The longest the loop sleeps without being woken.
    safety_net: Duration,
}

impl Dispatcher {
    /// A dispatcher, and the receiving end of its finished calls, which [`Dispatcher::run`]
    /// hands to the recorder.
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> anyhow::Result<(Dispatcher, mpsc::Receiver<CallRecord>)> {
        let delivery = &config.delivery;
        let guard = guard::Guard::new(config.allow_private_targets);
        let caller = Caller::new(delivery.timeout, delivery.max_in_flight, guard)?;
        let (records, finished) = mpsc::channel(recorder::RECORD_BATCH * 4);
        let dispatcher = Dispatcher {
            clock,
            slots: Arc::new(Semaphore::new(delivery.max_in_flight as usize)),
            wake: store.new_work(),
            store,
            config,
            caller,
            metrics,
            last_endpoint: Arc::default(),
            at_capacity: Arc::default(),
            ended: Ended::default(),
            room: Arc::default(),
            records,
            safety_net: MAX_IDLE,
        };
        Ok((dispatcher, finished))
    }

    /// The rules the store applies as it records this dispatcher's calls.
    fn rules(&self) -> Arc<recorder::Rules> {
        Arc::new(recorder::Rules {
            suspension: self.config.suspension.clone(),
            clock: self.clock.clone(),
            mails: self.config.notify.smtp.is_some(),
        })
    }

    /// The same dispatcher with another idle safety net: tests shorten it to see what it
    /// finds without waiting a minute.
    pub fn with_safety_net(self, safety_net: Duration) -> Dispatcher {
        Dispatcher { safety_net, ..self }
    }

    /// Runs until `shutdown` completes, then lets calls in flight finish and be recorded.
    pub async fn run(self, finished: mpsc::Receiver<CallRecord>, shutdown: impl Future<Output = ()>) {
        let recorder = Recorder {
            store: self.store.clone(),
            rules: self.rules(),
            wake: self.wake.clone(),
            ended: self.ended.clone(),
        };
        let recorder = tokio::spawn(recorder.run(finished));
        let wake = self.wake.clone();
        tokio::pin!(shutdown);
        let mut woken_by_safety_net = false;
        loop {
            let claimed_at = tokio::time::Instant::now();
            let pause = match self.dispatch_next().await {
                Ok(outcome) => {
                    if woken_by_safety_net && outcome.dispatched > 0 {
                        // Work that no wake-up and no due time accounted for: a regression.
                        self.metrics.safety_net_claim();
                        tracing::debug!(
                            dispatched = outcome.dispatched,
                            "the idle safety net, not a wake-up, found due work"
                        );
                    }
                    if outcome.dispatched == CLAIM_BATCH as usize {
                        woken_by_safety_net = false;
                        continue;
                    }
                    // A call that ends wakes the loop if its endpoint was at its cap, a record
                    // if it changed what is due; but a retry of another endpoint may fall due
                    // before either: sleep until the next due time.
                    self.pause_after(&outcome)
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming deliveries failed; trying again in a second");
                    Pause {
                        sleep: Duration::from_secs(1),
                        safety_net: false,
                    }
                }
            };
            // In this order: a wake-up already given and a due time already passed (a new
            // event does both) are one reason to claim, and taking the wake-up first spends it,
            // rather than leaving it to start a second, empty claim.
            woken_by_safety_net = tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.room.notified() => false,
                () = wake.notified() => {
                    tokio::time::sleep_until(claimed_at + CLAIM_SPACING).await;
                    false
                }
                () = tokio::time::sleep(pause.sleep) => pause.safety_net,
            };
        }
        // Calls in flight end within the time-out; waiting for every slot waits for them.
        let all = self.config.delivery.max_in_flight;
        let _ = self.slots.acquire_many(all).await;
        // The recorder stops once every sender is gone: this one, and the calls' (done now).
        drop(self);
        let _ = recorder.await;
    }

    /// Claims what is due and starts a call for each; the loop's one step. The calls are
    /// recorded by the recorder, in batches, as they end.
    pub async fn dispatch_next(&self) -> anyhow::Result<Outcome> {
        let seen = self.ended.count();
        let (claim, at) = self.claim(self.ended.list(), PACE_AHEAD).await?;
        // A call that ended while the claim ran, with room it did not count, may have seen the
        // previous claim's `at_capacity` and not woken the loop: look again at once.
        if self.at_capacity.load(SeqCst) && self.ended.count() != seen {
            self.room.notify_one();
        }
        let outcome = Outcome::of(&claim, at);
        for delivery in claim.claimed {
            // Only this loop takes slots, and it claimed no more than were free.
            let slot = self
                .slots
                .clone()
                .try_acquire_owned()
                .expect("no more were claimed than slots were free");
            let this = self.clone();
            tokio::spawn(async move {
                let record = this.call(delivery).await;
                // The call is no longer in flight: its slot goes back, and the next claim leaves
                // room in its place, before the record is even sent. (So the recorder's wake-up,
                // which follows the record, always finds both.)
                this.ended.add(&record.attempt.claimed);
                drop(slot);
                if this.at_capacity.load(SeqCst) {
                    this.room.notify_one();
                }
                // The recorder only stops after every sender is gone, so this cannot fail
                // while this task holds one.
                let _ = this.records.send(record).await;
            });
        }
        Ok(outcome)
    }

    /// One step run to its end: claims what is due, makes the calls, and records them before
    /// it returns. With a manual clock, tests drive retries, suspensions and cool-downs with
    /// it, moving time between steps instead of sleeping.
    pub async fn step(&self) -> anyhow::Result<Outcome> {
        // Every call of a step is recorded before it returns: none waits for a record. Nor does
        // any wait for its start time: a rate limit gives only calls that may start now.
        let (claim, at) = self.claim(Vec::new(), Duration::ZERO).await?;
        let outcome = Outcome::of(&claim, at);
        let mut calls = tokio::task::JoinSet::new();
        for delivery in claim.claimed {
            let this = self.clone();
            calls.spawn(async move { this.call(delivery).await });
        }
        let records: Arc<[CallRecord]> = calls.join_all().await.into();
        if !records.is_empty() {
            self.store.record_calls(records, self.rules()).await?;
        }
        Ok(outcome)
    }

    /// Leases what is due now, within the free slots, leaving room for the `ended` calls and
    /// giving rate-limited calls start times up to `ahead`; returns it with the claim's time.
    async fn claim(&self, ended: Vec<(i64, Micros)>, ahead: Duration) -> anyhow::Result<(Claim, Micros)> {
        let now = self.clock.now();
        let free = self.slots.available_permits() as u32;
        if free == 0 {
            // Every slot is taken: the next call that ends frees one that is wanted.
            self.at_capacity.store(true, SeqCst);
            return Ok((Claim::default(), now));
        }
        let delivery = &self.config.delivery;
        let request = ClaimRequest {
            now,
            lease_until: now + (ahead + delivery.timeout + LEASE_MARGIN).as_micros() as Micros,
            limit: free.min(CLAIM_BATCH),
            after_endpoint: self.last_endpoint.load(Relaxed),
            per_endpoint: delivery.max_in_flight_per_endpoint,
            ended,
            ahead: ahead.as_micros() as Micros,
        };
        let claim = self.store.claim_due(&request).await?;
        self.at_capacity.store(claim.at_capacity, SeqCst);
        if let Some(last) = claim.claimed.last() {
            self.last_endpoint.store(last.endpoint_seq, Relaxed);
        }
        Ok((claim, now))
    }

    /// Makes one call, at its start time, and decides, by the retry schedule, what becomes of
    /// its delivery.
    async fn call(&self, delivery: Claimed) -> CallRecord {
        let early = delivery.start_at - self.clock.now();
        if early > 0 {
            tokio::time::sleep(Duration::from_micros(early as u64)).await;
        }
        let keys: Vec<SigningKey> = delivery
            .secrets
            .iter()
            .filter_map(|s| SigningKey::from_secret(s))
            .collect();
        let started_at = self.clock.now();
        let (attempt, elapsed) = self.caller.call(delivery, &keys, started_at).await;
        let next = schedule::after_attempt(
            &self.config.delivery,
            attempt.claimed.controls.retry_schedule.as_deref(),
            attempt.claimed.attempt,
            attempt.verdict,
            attempt.ended_at(),
            crate::ids::unit_random(),
        );
        // Logged before it is counted: a test that sees the count finds the line.
        log_call(&attempt, next, &self.clock);
        self.metrics.call(&attempt, elapsed);
        CallRecord { attempt, next }
    }

    /// How long the loop may sleep after `outcome` before something falls due. The claim
    /// looked for due times after its own time, not after now: whatever fell due since then
    /// it did not take, and it must be claimed at once.
    pub fn pause_after(&self, outcome: &Outcome) -> Pause {
        match outcome.next_due.into_iter().chain(outcome.paced).min() {
            Some(at) => {
                let sleep = Duration::from_micros((at - self.clock.now()).max(0) as u64);
                Pause {
                    sleep: sleep.min(self.safety_net),
                    safety_net: sleep > self.safety_net,
                }
            }
            None => Pause {
                sleep: self.safety_net,
                safety_net: true,
            },
        }
    }
}

/// One line per call, naming its account, endpoint and event, so that an operator can follow
/// one delivery through the log (`--log-format json` makes each a JSON object): failed calls
/// at `warn`, successes at `debug` (a busy node makes thousands a second).
fn log_call(attempt: &Attempt, next: Next, clock: &Clock) {
    let c = &attempt.claimed;
    let next_at = match next {
        Next::RetryAt(at) => Some(clock.datetime(at)),
        Next::Succeeded | Next::Failed => None,
    };
    match &attempt.failure {
        None => tracing::debug!(
            account = c.account_id,
            endpoint = %c.endpoint_id,
            event = %c.event_id,
            attempt = c.attempt,
            status = attempt.response_status,
            duration_ms = attempt.duration_ms,
            "delivered"
        ),
        Some(failure) => tracing::warn!(
            account = c.account_id,
            endpoint = %c.endpoint_id,
            event = %c.event_id,
            attempt = c.attempt,
            status = attempt.response_status,
            duration_ms = attempt.duration_ms,
            error = failure.code.as_str(),
            reason = %failure.message,
            retry_at = next_at,
            gave_up = matches!(next, Next::Failed),
            "call failed"
        ),
    }
}
