//! The dispatcher driven one step at a time (`dispatch_next`), against a real store and a
//! real receiver, on a manual clock: what each claim takes, and how long the loop may sleep
//! after it, with no timing in the assertions.

use std::sync::Arc;
use std::time::Duration;

use herald::clock::{Clock, Hand, Micros};
use herald::config::Config;
use herald::delivery::Dispatcher;
use herald::domain::account::NewAccount;
use herald::domain::delivery::CallRecord;
use herald::domain::endpoint::{EndpointSpec, EndpointState, Health, Ordering};
use herald::domain::event::{Event, EventDraft, EventStamp};
use herald::domain::operational::News;
use herald::metrics::Metrics;
use herald::store::{ClaimRequest, Store, StoreError};
use serde_json::json;

use crate::db::TestDb;
use crate::receiver::{Answer, TestReceiver};

/// Where the tests' manual clock starts: 2026-01-01 00:00:00 UTC.
const T0: Micros = 1_767_225_600_000_000;

/// What the tests work with: a store with one account, and a dispatcher over it with a cap
/// of 2 calls per endpoint, on a manual clock.
struct Setup {
    db: TestDb,
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    account: i64,
    hand: Hand,
    /// The dispatcher's clock, which `hand` moves.
    clock: Clock,
    metrics: Arc<Metrics>,
    /// The dispatcher's finished calls, for a test that runs its loop.
    finished: tokio::sync::mpsc::Receiver<herald::domain::delivery::CallRecord>,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// The setup, with the configuration changed by `change` first.
async fn setup_with(change: impl FnOnce(&mut Config)) -> Setup {
    let db = TestDb::new().await;
    let mut config = Config::defaults();
    config.database = db.url.clone();
    config.allow_private_targets = true;
    config.delivery.max_in_flight_per_endpoint = 2;
    change(&mut config);
    let store = herald::store::open(&config.database, 4).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0, None).await.unwrap();
    let hand = Hand::at(T0);
    let clock = Clock::manual("UTC", &hand).unwrap();
    let metrics = Arc::new(Metrics::default());
    let (dispatcher, finished) =
        Dispatcher::new(store.clone(), Arc::new(config), metrics.clone(), clock.clone()).unwrap();
    Setup {
        db,
        store,
        dispatcher,
        account: account.id,
        hand,
        clock,
        metrics,
        finished,
    }
}

/// An endpoint at `url` for every event type.
fn spec(url: &str, ordering: Ordering) -> EndpointSpec {
    EndpointSpec {
        url: url.into(),
        description: String::new(),
        events: vec!["*".into()],
        ordering,
        auth: None,
        controls: Default::default(),
        filter: None,
        version: Default::default(),
    }
}

/// Subscribes `url` to every event type; returns the endpoint's id.
pub(crate) async fn endpoint(store: &dyn Store, account: i64, url: &str, ordering: Ordering) -> String {
    let spec = spec(url, ordering);
    let id = herald::ids::endpoint_id();
    store
        .create_endpoint(account, &spec, &id, &herald::ids::webhook_secret(), 0, None)
        .await
        .unwrap();
    id
}

/// Publishes `count` events (of the built-in test type, about no application), written at
/// `at`: their deliveries are due then.
async fn publish_at(store: &dyn Store, account: i64, count: usize, at: Micros) {
    for _ in 0..count {
        let draft = EventDraft {
            event_type: "WebhookTest".into(),
            application_id: None,
            data: json!({"message": "x"}),
        };
        let stamp = EventStamp {
            id: herald::ids::event_id(),
            at,
            datetime: "2026-01-01 00:00:00".into(),
        };
        store.publish_event(account, draft, stamp, None).await.unwrap();
    }
}

pub(crate) async fn publish(store: &dyn Store, account: i64, count: usize) {
    publish_at(store, account, count, T0).await;
}

/// How many calls the next step starts.
async fn step(dispatcher: &Dispatcher) -> usize {
    dispatcher.dispatch_next().await.unwrap().dispatched
}

#[tokio::test]
async fn a_claim_takes_no_more_than_an_endpoints_room_and_skips_full_ones() {
    let Setup {
        store,
        dispatcher,
        account,
        ..
    } = setup().await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    endpoint(store.as_ref(), account, &hanging.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 5).await;

    assert_eq!(step(&dispatcher).await, 2, "the cap of 2");
    assert_eq!(step(&dispatcher).await, 0, "full until calls are recorded");

    // Another endpoint's work is claimed although the first is full.
    let fast = TestReceiver::start().await;
    endpoint(store.as_ref(), account, &fast.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 1).await;
    assert_eq!(step(&dispatcher).await, 1, "only the new endpoint's call");
    fast.wait_for(1, crate::delivery::WAIT).await;
}

#[tokio::test]
async fn a_fifo_endpoint_gets_one_pending_delivery_at_a_time() {
    let Setup {
        store,
        dispatcher,
        account,
        ..
    } = setup().await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    endpoint(store.as_ref(), account, &hanging.url(), Ordering::Fifo).await;
    publish(store.as_ref(), account, 3).await;
    assert_eq!(step(&dispatcher).await, 1, "the oldest, alone");
    assert_eq!(step(&dispatcher).await, 0, "the next waits for it");
}

#[tokio::test]
async fn a_delivery_that_falls_due_between_the_claim_and_the_look_ahead_is_due_at_once() {
    let s = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish_at(s.store.as_ref(), s.account, 1, T0 + 1_000).await;

    let claim = s.dispatcher.dispatch_next().await.unwrap();
    assert_eq!((claim.dispatched, claim.at), (0, T0), "not due at the claim");
    // It falls due after the claim, before the loop looks ahead.
    s.hand.advance(Duration::from_millis(5));
    let pause = s.dispatcher.pause_after(&claim);
    assert_eq!(pause.sleep, Duration::ZERO, "{pause:?}");
    assert!(!pause.safety_net);

    assert_eq!(step(&s.dispatcher).await, 1);
    receiver.wait_for(1, crate::delivery::WAIT).await;
}

#[tokio::test]
async fn a_cool_down_that_ends_between_the_claim_and_the_look_ahead_ends_at_once() {
    let s = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish(s.store.as_ref(), s.account, 2).await;
    let ends = T0 + 1_000;
    s.db.execute(&format!(
        "UPDATE endpoints SET state = 'suspended', suspended_until = {ends}, consecutive_failures = 5"
    ))
    .await;

    let claim = s.dispatcher.dispatch_next().await.unwrap();
    assert_eq!(claim.dispatched, 0, "suspended at the claim");
    s.hand.set(ends + 1);
    let pause = s.dispatcher.pause_after(&claim);
    assert_eq!(pause.sleep, Duration::ZERO, "{pause:?}");

    assert_eq!(step(&s.dispatcher).await, 1, "one probe");
    receiver.wait_for(1, crate::delivery::WAIT).await;
}

#[tokio::test]
async fn a_lease_that_runs_out_between_the_claim_and_the_look_ahead_is_due_at_once_on_postgres() {
    let s = setup().await;
    if !s.db.is_postgres() {
        // SQLite's single node keeps its leases until the call is recorded.
        return;
    }
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    endpoint(s.store.as_ref(), s.account, &hanging.url(), Ordering::Parallel).await;
    publish(s.store.as_ref(), s.account, 1).await;
    assert_eq!(step(&s.dispatcher).await, 1);
    // The 30 s time-out, the 10 s margin, and the 250 ms a rate-limited call may wait to start.
    let lease_ends = T0 + 40_250_000;

    s.hand.set(lease_ends - 1);
    let claim = s.dispatcher.dispatch_next().await.unwrap();
    assert_eq!(claim.dispatched, 0, "still leased");
    s.hand.set(lease_ends + 1);
    let pause = s.dispatcher.pause_after(&claim);
    assert_eq!(pause.sleep, Duration::ZERO, "{pause:?}");
}

#[tokio::test]
async fn the_loop_sleeps_until_the_next_due_time_and_no_longer_than_the_safety_net() {
    let s = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;

    let claim = s.dispatcher.dispatch_next().await.unwrap();
    let pause = s.dispatcher.pause_after(&claim);
    assert!(pause.safety_net && pause.sleep == Duration::from_secs(60), "{pause:?}");

    publish_at(s.store.as_ref(), s.account, 1, T0 + 3_600_000_000).await;
    let claim = s.dispatcher.dispatch_next().await.unwrap();
    let pause = s.dispatcher.pause_after(&claim);
    assert!(
        pause.safety_net && pause.sleep == Duration::from_secs(60),
        "an hour away: {pause:?}"
    );

    publish_at(s.store.as_ref(), s.account, 1, T0 + 2_500_000).await;
    let claim = s.dispatcher.dispatch_next().await.unwrap();
    let pause = s.dispatcher.pause_after(&claim);
    assert_eq!(pause.sleep, Duration::from_millis(2_500));
    assert!(!pause.safety_net);
}

#[tokio::test]
async fn work_found_only_by_the_safety_net_is_counted() {
    let s = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish_at(s.store.as_ref(), s.account, 1, T0 + 3_600_000_000).await;
    let counted = |metrics: &Metrics| {
        metrics
            .render(Some(&Default::default()), 0, herald::metrics::Format::Text)
            .contains("herald_dispatcher_safety_net_claims_total 1\n")
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = s.dispatcher.with_safety_net(Duration::from_secs(1));
    let running = tokio::spawn(dispatcher.run(s.finished, async move {
        let _ = stopped.await;
    }));
    // A real wait, for the loop to make its first claim (which finds nothing due) and fall
    // asleep. Were it slower, its first claim would find the work and the test would fail:
    // it cannot pass wrongly.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Made due behind the dispatcher's back: no wake-up, so only the safety net finds it.
    // (The store's own triggers would announce it: PostgreSQL's are switched off for this
    // write, and SQLite's live on the store's writing connection, not the test's.)
    let update = format!("UPDATE deliveries SET next_at = {T0}");
    if s.db.is_postgres() {
        s.db.execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; {update}; COMMIT"
        ))
        .await;
    } else {
        s.db.execute(&update).await;
    }
    receiver.wait_for(1, crate::delivery::WAIT).await;
    assert!(counted(&s.metrics));

    let _ = stop.send(());
    running.await.unwrap();
}

#[tokio::test]
async fn retries_a_suspension_and_its_probe_follow_the_clock_step_by_step() {
    let s = setup_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(5), Duration::from_secs(60)];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 2;
        c.suspension.first = Duration::from_secs(60);
    })
    .await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down"), Answer::Status(500, "down")]);
    receiver.otherwise(Answer::Status(200, "ok"));
    let id = endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish(s.store.as_ref(), s.account, 1).await;
    let state = async || s.store.endpoint(s.account, &id).await.unwrap();

    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1, "the first call fails");
    assert_eq!(
        s.dispatcher.step().await.unwrap().dispatched,
        0,
        "its retry is 5 s away"
    );
    s.hand.advance(Duration::from_millis(4_900));
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 0, "still 5 s away");

    s.hand.advance(Duration::from_secs(1));
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1, "the retry fails too");
    let suspended = state().await;
    assert_eq!(suspended.state, EndpointState::Suspended);
    assert_eq!(suspended.consecutive_failures, 2);

    s.hand.advance(Duration::from_secs(59));
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 0, "cooling down");
    s.hand.advance(Duration::from_secs(2));
    assert_eq!(
        s.dispatcher.step().await.unwrap().dispatched,
        1,
        "one probe, which succeeds"
    );
    let resumed = state().await;
    assert_eq!(resumed.state, EndpointState::Active);
    assert_eq!(resumed.consecutive_failures, 0);
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(
        s.dispatcher.step().await.unwrap().dispatched,
        0,
        "delivered: nothing left"
    );
}

/// The next finished call, as the dispatcher hands it to the recorder (which these tests hold
/// back, so that calls end without being recorded).
async fn ended(finished: &mut tokio::sync::mpsc::Receiver<CallRecord>) -> CallRecord {
    tokio::time::timeout(crate::delivery::WAIT, finished.recv())
        .await
        .expect("a call ends within the wait")
        .expect("the dispatcher is alive")
}

/// Rules that leave every endpoint's health as it is, so that nothing is news.
struct Unchanged;

impl herald::store::CallRules for Unchanged {
    fn health(&self, health: Health, _: &CallRecord) -> Health {
        health
    }

    fn tell(&self, news: News, _: &CallRecord, _: &Health, _: Option<i64>) -> Event {
        unreachable!("no health changes, so no {news:?}")
    }

    fn mails(&self) -> bool {
        false
    }
}

/// Records calls leaving every endpoint's health as it is.
async fn record(store: &dyn Store, calls: Vec<CallRecord>) {
    store.record_calls(calls.into(), Arc::new(Unchanged)).await.unwrap();
}

#[tokio::test]
async fn a_call_that_ended_leaves_room_before_it_is_recorded() {
    let Setup {
        store,
        dispatcher,
        account,
        mut finished,
        ..
    } = setup().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(200, "ok"), Answer::Status(200, "ok")]);
    receiver.otherwise(Answer::Hang);
    endpoint(store.as_ref(), account, &receiver.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 5).await;

    assert_eq!(step(&dispatcher).await, 2, "the cap of 2");
    let first = vec![ended(&mut finished).await, ended(&mut finished).await];
    assert_eq!(
        step(&dispatcher).await,
        2,
        "both calls ended: their unrecorded leases are not calls in flight"
    );
    // The first two are recorded now, while the dispatcher still counts them as ended (its
    // recorder, which forgets them, is not running): their leases are gone, and the two
    // hanging calls are what is in flight. Only a lease that is still the ended call's own
    // makes room; counting the ended calls alone would start a third call here.
    record(store.as_ref(), first).await;
    assert_eq!(step(&dispatcher).await, 0, "two hanging calls fill the cap");
    // The hanging calls were only spawned by their step: wait for them to arrive.
    assert_eq!(receiver.wait_for(4, crate::delivery::WAIT).await.len(), 4);
}

#[tokio::test]
async fn a_fifo_application_waits_for_the_record_of_its_ended_call() {
    let Setup {
        store,
        dispatcher,
        account,
        mut finished,
        ..
    } = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(store.as_ref(), account, &receiver.url(), Ordering::Fifo).await;
    publish(store.as_ref(), account, 2).await;

    assert_eq!(step(&dispatcher).await, 1, "the oldest delivery only");
    let call = ended(&mut finished).await;
    assert_eq!(step(&dispatcher).await, 0, "its outcome is not stored yet");
    record(store.as_ref(), vec![call]).await;
    assert_eq!(step(&dispatcher).await, 1, "the next one, once it is");
}

#[tokio::test]
async fn a_task_is_retried_by_hand_only_once_its_deliverys_call_is_recorded() {
    let Setup {
        db,
        store,
        dispatcher,
        account,
        mut finished,
        ..
    } = setup().await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down")]);
    endpoint(store.as_ref(), account, &receiver.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 1).await;
    assert_eq!(step(&dispatcher).await, 1);
    record(store.as_ref(), vec![ended(&mut finished).await]).await;
    let task = db.count("SELECT max(id) FROM tasks").await;

    let retry = async || store.retry_task(account, task, T0, None).await;
    assert!(retry().await.is_ok(), "no call in flight: due again at once");
    assert_eq!(step(&dispatcher).await, 1, "called again");
    let call = ended(&mut finished).await;
    // Its call has ended, but until its record commits the delivery is leased.
    let refused = retry().await.expect_err("a call of the delivery is not recorded yet");
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused:?}");
    assert_eq!(step(&dispatcher).await, 0, "nor did the refused retry make it due");
    record(store.as_ref(), vec![call]).await;
    assert!(retry().await.is_ok(), "recorded: retried");
    assert_eq!(step(&dispatcher).await, 1);
    assert_eq!(receiver.wait_for(3, crate::delivery::WAIT).await.len(), 3);
}

#[tokio::test]
async fn a_probe_that_ended_is_not_followed_by_another_before_it_is_recorded() {
    let mut s = setup_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(1)];
        c.delivery.jitter = 0.0;
        c.suspension.after_failures = 1;
        c.suspension.first = Duration::from_secs(60);
    })
    .await;
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    let id = endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish(s.store.as_ref(), s.account, 3).await;
    assert_eq!(
        s.dispatcher.step().await.unwrap().dispatched,
        2,
        "the cap of 2; both fail"
    );
    assert_eq!(
        s.store.endpoint(s.account, &id).await.unwrap().state,
        EndpointState::Suspended
    );

    s.hand.advance(Duration::from_secs(61));
    assert_eq!(step(&s.dispatcher).await, 1, "one probe once the cool-down is over");
    ended(&mut s.finished).await;
    assert_eq!(
        step(&s.dispatcher).await,
        0,
        "the probe ended, but its outcome decides whether another call follows"
    );
}

#[tokio::test]
async fn calls_that_end_keep_a_capped_endpoint_busy_without_record_wake_ups() {
    let Setup {
        store,
        dispatcher,
        account,
        finished,
        metrics,
        ..
    } = setup().await;
    let receiver = TestReceiver::start().await;
    endpoint(store.as_ref(), account, &receiver.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 60).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.run(finished, async move {
        let _ = stopped.await;
    }));
    // 60 calls through a cap of 2, each success leaving the endpoint busy with more: records
    // of plain successes wake nobody, so every next claim comes from a call that ended. One
    // lost wake-up would leave the rest to the idle safety net, a minute away.
    receiver.wait_for(60, crate::delivery::WAIT).await;
    let text = metrics.render(Some(&Default::default()), 0, herald::metrics::Format::Text);
    assert!(text.contains("herald_dispatcher_safety_net_claims_total 0\n"), "{text}");
    assert!(receiver.most_in_flight() <= 2, "the cap held");
    let _ = stop.send(());
    running.await.unwrap();
}

#[tokio::test]
async fn retention_purges_by_the_clock_and_keeps_an_event_whose_delivery_waits() {
    let s = setup().await;
    let keep = Duration::from_secs(3600);
    let (store, account) = (s.store.as_ref(), s.account);
    let fine = TestReceiver::start().await;
    let first = endpoint(store, account, &fine.url(), Ordering::Parallel).await;
    publish(store, account, 1).await;
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1);
    store.delete_endpoint(account, &first).await.unwrap();
    // An endpoint that answers 410 is disabled, and its delivery waits for it.
    let gone = TestReceiver::start().await;
    gone.otherwise(Answer::Status(410, "gone"));
    endpoint(store, account, &gone.url(), Ordering::Parallel).await;
    publish(store, account, 1).await;
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1);
    let counts = async || {
        (
            s.db.count("SELECT count(*) FROM events").await,
            s.db.count("SELECT count(*) FROM tasks").await,
            s.db.count("SELECT count(*) FROM deliveries WHERE state = 'pending'")
                .await,
        )
    };
    assert_eq!(counts().await, (3, 2, 1), "with the disabling's EndpointDisabled");

    s.hand.advance(keep - Duration::from_secs(1));
    let purged = herald::delivery::retention::purge(store, &s.clock, keep).await.unwrap();
    assert_eq!(purged, 0, "nothing is past retention yet");

    s.hand.advance(Duration::from_secs(2));
    let purged = herald::delivery::retention::purge(store, &s.clock, keep).await.unwrap();
    assert_eq!(purged, 4, "both tasks, the delivered event and the EndpointDisabled");
    assert_eq!(counts().await, (1, 0, 1), "the event whose delivery waits is kept");
}

/// Whether the store's wake-up was given since the last look, waiting up to `wait` for it;
/// takes it.
async fn woken(wake: &tokio::sync::Notify, wait: Duration) -> bool {
    tokio::time::timeout(wait, wake.notified()).await.is_ok()
}

#[tokio::test]
async fn the_database_wakes_the_dispatcher_for_every_write_that_makes_work_due() {
    let s = setup_with(|c| {
        c.delivery.retry_schedule = vec![Duration::from_secs(60); 3];
        c.delivery.jitter = 0.0;
    })
    .await;
    let (store, account) = (s.store.as_ref(), s.account);
    let wake = store.new_work();
    // SQLite's writer wakes the dispatcher before it answers the write: no wait at all.
    // PostgreSQL's notification comes back on the node's LISTEN connection after the commit,
    // which starts listening with a wake-up of its own.
    let postgres = s.db.is_postgres();
    let wait = if postgres {
        crate::delivery::WAIT
    } else {
        Duration::ZERO
    };
    if postgres {
        assert!(woken(&wake, wait).await, "listening begins with a wake-up");
    }
    let receiver = TestReceiver::start().await;
    receiver.otherwise(Answer::Status(500, "down"));
    let id = endpoint(store, account, &receiver.url(), Ordering::Parallel).await;
    assert!(
        !woken(&wake, Duration::ZERO).await,
        "an endpoint with nothing to deliver"
    );

    publish(store, account, 1).await;
    assert!(woken(&wake, wait).await, "a new delivery");
    assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1);
    let task = s.db.count("SELECT max(id) FROM tasks").await;
    store.retry_task(account, task, T0, None).await.unwrap();
    assert!(woken(&wake, wait).await, "a retry asked for by hand");
    s.db.execute("UPDATE endpoints SET state = 'disabled'").await;
    let stamp = EventStamp {
        id: herald::ids::event_id(),
        at: T0,
        datetime: "2026-01-01 00:00:00".into(),
    };
    store.resume_endpoint(account, &id, stamp, None).await.unwrap();
    assert!(woken(&wake, wait).await, "an endpoint active again");

    // What makes nothing due wakes no one. (Checked where it can be without waiting: on
    // PostgreSQL, telling a notification that never comes from a late one takes time.)
    if !postgres {
        assert_eq!(s.dispatcher.step().await.unwrap().dispatched, 1);
        assert!(!woken(&wake, wait).await, "a record that puts the retry a minute away");
        let quiet = NewAccount::new("quiet".into(), "correct horse".into(), None, None).unwrap();
        let quiet = store.create_account(&quiet, "not-a-hash", 0, None).await.unwrap();
        publish(store, quiet.id, 1).await;
        assert!(!woken(&wake, wait).await, "an event no endpoint subscribes to");
        let draft = EventDraft {
            event_type: "WebhookTest".into(),
            application_id: Some(404),
            data: json!({}),
        };
        let stamp = EventStamp {
            id: herald::ids::event_id(),
            at: T0,
            datetime: "2026-01-01 00:00:00".into(),
        };
        assert!(store.publish_event(account, draft, stamp, None).await.is_err());
        assert!(!woken(&wake, wait).await, "a write that failed");
    }
}

/// An endpoint deleted while events are being published leaves no delivery behind for nobody
/// to claim: a publish that wrote its deliveries first sees them deleted with the endpoint,
/// and one that comes after writes none to it. On PostgreSQL that is kept by the publishing
/// statement locking the endpoints it writes to, not by a foreign key (migration 0020), and
/// by the deletion removing the endpoint before its deliveries. Many rounds, so that some
/// deletions land in the middle of a publishing group.
#[tokio::test]
async fn an_endpoint_deleted_while_events_are_published_leaves_no_delivery_behind() {
    let Setup { db, store, account, .. } = setup().await;
    let kept = endpoint(&*store, account, "http://127.0.0.1:9/kept", Ordering::Parallel).await;
    const ROUNDS: usize = 8;
    const PUBLISHERS: usize = 24;
    for _ in 0..ROUNDS {
        let doomed = endpoint(&*store, account, "http://127.0.0.1:9/doomed", Ordering::Parallel).await;
        let mut work = tokio::task::JoinSet::new();
        for n in 0..PUBLISHERS {
            let publisher = store.clone();
            work.spawn(async move { publish(&*publisher, account, 1).await });
            if n == PUBLISHERS / 2 {
                let (deleter, doomed) = (store.clone(), doomed.clone());
                work.spawn(async move { deleter.delete_endpoint(account, &doomed).await.unwrap() });
            }
        }
        work.join_all().await;
    }
    let orphans =
        "SELECT count(*) FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM endpoints e WHERE e.seq = d.endpoint_seq)";
    assert_eq!(db.count(orphans).await, 0, "deliveries to a deleted endpoint");
    let events = (ROUNDS * PUBLISHERS) as i64;
    assert_eq!(db.count("SELECT count(*) FROM events").await, events);
    let kept = db
        .count(&format!("SELECT seq FROM endpoints WHERE id = '{kept}'"))
        .await;
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM deliveries WHERE endpoint_seq = {kept}"))
            .await,
        events,
        "every event still reaches the endpoint that stays"
    );
}

/// A change of an endpoint's ordering made while events are published to it applies to every
/// delivery it leaves waiting: those of a FIFO endpoint, and only those, are in the index of
/// FIFO deliveries (migrations 0019 and 0022). On PostgreSQL the change locks the endpoint
/// against the publishing groups, which hold it shared: the groups under way commit before the
/// change marks the endpoint's deliveries, and those after it read the new ordering. Many
/// rounds, so that some changes land in the middle of a group.
#[tokio::test]
async fn an_ordering_changed_while_events_are_published_applies_to_every_waiting_delivery() {
    let Setup { db, store, account, .. } = setup().await;
    let url = "http://127.0.0.1:9/";
    let id = endpoint(&*store, account, url, Ordering::Parallel).await;
    let mut spec = spec(url, Ordering::Parallel);
    const ROUNDS: usize = 8;
    const PUBLISHERS: usize = 24;
    for round in 0..ROUNDS {
        spec.ordering = if round % 2 == 0 {
            Ordering::Fifo
        } else {
            Ordering::Parallel
        };
        let mut work = tokio::task::JoinSet::new();
        for n in 0..PUBLISHERS {
            let publisher = store.clone();
            work.spawn(async move { publish(&*publisher, account, 1).await });
            if n == PUBLISHERS / 2 {
                let (changer, id, spec) = (store.clone(), id.clone(), spec.clone());
                work.spawn(async move {
                    changer.update_endpoint(account, &id, &spec, T0).await.unwrap();
                });
            }
        }
        work.join_all().await;
        let fifo = i64::from(spec.ordering == Ordering::Fifo);
        let marked = format!(
            "SELECT count(*) FROM deliveries WHERE state = 'pending' AND CASE WHEN fifo THEN 1 ELSE 0 END = {fifo}"
        );
        assert_eq!(
            db.count(&marked).await,
            ((round + 1) * PUBLISHERS) as i64,
            "round {round}: every waiting delivery is marked as its endpoint's ordering says"
        );
    }
}

/// A replay that meets an endpoint being deleted waits for the deletion, then finds no
/// endpoint, instead of writing deliveries to one that is going (on PostgreSQL the replay
/// locks the endpoint's row; migration 0020). The deletion is held open by hand, so that the
/// race is not left to chance. SQLite writes one thing at a time, so it has no such race.
#[tokio::test]
async fn a_replay_meeting_an_endpoint_being_deleted_writes_nothing() {
    use sqlx::Connection;

    let Setup { db, store, account, .. } = setup().await;
    if !db.is_postgres() {
        return;
    }
    let doomed = endpoint(&*store, account, "http://127.0.0.1:9/doomed", Ordering::Parallel).await;
    // Of a type a replay sends again (test events are not).
    for n in 0..3 {
        let draft = EventDraft {
            event_type: "OrderPaid".into(),
            application_id: None,
            data: json!({ "order": n }),
        };
        let stamp = EventStamp {
            id: herald::ids::event_id(),
            at: T0,
            datetime: "2026-01-01 00:00:00".into(),
        };
        store.publish_event(account, draft, stamp, None).await.unwrap();
    }
    let seq = db
        .count(&format!("SELECT seq FROM endpoints WHERE id = '{doomed}'"))
        .await;
    let mut deletion = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(&format!("BEGIN; DELETE FROM endpoints WHERE seq = {seq}"))
        .execute(&mut deletion)
        .await
        .unwrap();
    let replayer = store.clone();
    let replay = tokio::spawn(async move { replayer.replay(account, &doomed, 0, T0, None).await });
    // Until the replay waits for the deletion's lock, or (wrongly) is done: polled, since
    // the waiting happens in PostgreSQL.
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !replay.is_finished() && db.count(waiting).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay neither waits nor ends"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::raw_sql(&format!("DELETE FROM deliveries WHERE endpoint_seq = {seq}; COMMIT"))
        .execute(&mut deletion)
        .await
        .unwrap();
    let replayed = replay.await.unwrap();
    assert!(matches!(replayed, Err(StoreError::NotFound(_))), "{replayed:?}");
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM deliveries WHERE endpoint_seq = {seq}"))
            .await,
        0,
        "deliveries to the deleted endpoint"
    );
}

/// Polls `future` until it has waited `waits` times, then drops it; its output if it ended
/// first. Each wait is an await point (a connection, a round trip): dropping it there is
/// what a cancellation does.
async fn cancelled_after<F: std::future::Future>(future: F, waits: usize) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut waited = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if waited == waits => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            waited += 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// The `i`th of a series of claims whose leases each run out by the next one's time: on
/// PostgreSQL, each leases a pending delivery again.
fn claim_number(i: Micros) -> ClaimRequest {
    let now = T0 + 2 * i;
    ClaimRequest {
        now,
        lease_until: now + 1,
        limit: 10,
        after_endpoint: 0,
        per_endpoint: 10,
        ended: Vec::new(),
        ahead: 0,
    }
}

/// A claim cancelled at any of its await points (its node shutting down, a caller that gave
/// up) leaves no transaction open on a pooled connection. PostgreSQL's claim runs one that
/// sqlx does not know of, across two round trips; a connection handed back to the pool with
/// it still open would keep the endpoint locked, skipped by every other node's claims, until
/// this node happened to use that connection again.
#[tokio::test]
async fn a_claim_cancelled_at_any_moment_leaves_no_transaction_open_on_postgres() {
    let s = setup().await;
    if !s.db.is_postgres() {
        // SQLite's claim only reads, on a reading thread, in a statement of its own.
        return;
    }
    let receiver = TestReceiver::start().await;
    endpoint(s.store.as_ref(), s.account, &receiver.url(), Ordering::Parallel).await;
    publish(s.store.as_ref(), s.account, 1).await;
    let open = "SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    let mut finished = 0;
    for waits in 0..40 {
        // Every claim has the delivery to lease, and goes through all its round trips unless
        // cancelled.
        let request = claim_number(waits as Micros);
        match cancelled_after(s.store.claim_due(&request), waits).await {
            Some(claim) => {
                assert_eq!(claim.unwrap().claimed.len(), 1);
                finished += 1;
            }
            None => {
                // A cancelled claim's connection is closed; its backend ends a moment later.
                let deadline = std::time::Instant::now() + Duration::from_secs(2);
                while s.db.count(open).await > 0 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert_eq!(
                    s.db.count(open).await,
                    0,
                    "no transaction left open by a claim cancelled after {waits} waits"
                );
            }
        }
    }
    assert!(finished > 0, "some claims ran to their end");
}

/// A store on PostgreSQL with a pool of 16 connections, several of them idle (the pool hands
/// out the one that waited longest), an account and an endpoint; `None` on SQLite.
async fn pool_with_idle_connections() -> Option<(TestDb, Arc<dyn Store>, i64, TestReceiver)> {
    let db = TestDb::new().await;
    if !db.is_postgres() {
        return None;
    }
    let store = herald::store::open(&db.url, 16).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0, None).await.unwrap().id;
    let receiver = TestReceiver::start().await;
    endpoint(store.as_ref(), account, &receiver.url(), Ordering::Parallel).await;
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = store.clone();
        reads.spawn(async move { store.event_types().await.unwrap() });
    }
    reads.join_all().await;
    Some((db, store, account, receiver))
}

/// The dispatcher's claims, one after another, keep one connection between them rather than
/// taking whichever of the pool's has waited longest: one PostgreSQL backend runs them all,
/// and no connection handed back costs a ping. (SQLite's claims run on its reading threads,
/// which keep their connections.)
#[tokio::test]
async fn claims_one_after_another_keep_one_connection_on_postgres() {
    let Some((db, store, account, _receiver)) = pool_with_idle_connections().await else {
        return;
    };
    publish(store.as_ref(), account, 1).await;
    for i in 0..12 {
        let request = claim_number(i);
        assert_eq!(store.claim_due(&request).await.unwrap().claimed.len(), 1);
    }
    let claiming = db
        .count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE '%EXECUTE herald_lease_due%'",
        )
        .await;
    assert_eq!(claiming, 1, "backends whose last statement was a claim's");
}

/// The recorder's batches, one after another, keep one connection too. (SQLite's records
/// run on its writer thread.)
#[tokio::test]
async fn records_one_after_another_keep_one_connection_on_postgres() {
    let Some((db, store, account, _receiver)) = pool_with_idle_connections().await else {
        return;
    };
    let mut config = Config::defaults();
    config.database = db.url.clone();
    config.allow_private_targets = true;
    let clock = Clock::manual("UTC", &Hand::at(T0)).unwrap();
    let (dispatcher, _finished) = Dispatcher::new(store.clone(), Arc::new(config), Arc::default(), clock).unwrap();
    let mut recorders = std::collections::HashSet::new();
    for _ in 0..12 {
        publish(store.as_ref(), account, 1).await;
        // A step ends with its record's commit: the last `COMMIT` of any backend (publishing
        // and claims commit otherwise).
        assert_eq!(dispatcher.step().await.unwrap().dispatched, 1);
        recorders.insert(
            db.count(
                "SELECT pid::bigint FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid() AND query = 'COMMIT'
                 ORDER BY state_change DESC LIMIT 1",
            )
            .await,
        );
    }
    assert_eq!(recorders.len(), 1, "backends that recorded calls: {recorders:?}");
}
