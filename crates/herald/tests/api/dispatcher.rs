//! The dispatcher driven one step at a time (`dispatch_next`), against a real store and a
//! real receiver: what each claim takes, with no timing in the assertions.

use std::sync::Arc;

use herald::config::Config;
use herald::delivery::{Dispatcher, Outcome};
use herald::domain::account::NewAccount;
use herald::domain::endpoint::{EndpointSpec, Ordering};
use herald::domain::event::{EventDraft, EventStamp};
use herald::metrics::Metrics;
use herald::store::Store;
use serde_json::json;

use crate::db::TestDb;
use crate::receiver::{Answer, TestReceiver};

/// A store with one account, and a dispatcher over it with a cap of 2 calls per endpoint.
async fn setup() -> (TestDb, Arc<dyn Store>, Dispatcher, i64) {
    let db = TestDb::new().await;
    let mut config = Config::defaults();
    config.database = db.url.clone();
    config.allow_private_targets = true;
    config.delivery.max_in_flight_per_endpoint = 2;
    let store = herald::store::open(&config.database, 4).await.unwrap();
    let account = NewAccount::new("acme".into(), "correct horse".into(), None, None).unwrap();
    let account = store.create_account(&account, "not-a-hash", 0).await.unwrap();
    let (dispatcher, _finished) =
        Dispatcher::new(store.clone(), Arc::new(config), Arc::new(Metrics::default())).unwrap();
    (db, store, dispatcher, account.id)
}

async fn endpoint(store: &dyn Store, account: i64, url: &str, ordering: Ordering) {
    let spec = EndpointSpec {
        url: url.into(),
        description: String::new(),
        events: vec!["*".into()],
        ordering,
        auth: None,
    };
    let id = herald::ids::endpoint_id();
    store
        .create_endpoint(account, &spec, &id, &herald::ids::webhook_secret(), 0)
        .await
        .unwrap();
}

/// Publishes `count` events (of the built-in test type, about no application).
async fn publish(store: &dyn Store, account: i64, count: usize) {
    for _ in 0..count {
        let draft = EventDraft {
            event_type: "WebhookTest".into(),
            application_id: None,
            data: json!({"message": "x"}),
        };
        let stamp = EventStamp {
            id: herald::ids::event_id(),
            at: 1,
            datetime: "1970-01-01 00:00:00".into(),
        };
        store.publish_event(account, draft, stamp).await.unwrap();
    }
}

#[tokio::test]
async fn a_claim_takes_no_more_than_an_endpoints_room_and_skips_full_ones() {
    let (_dir, store, dispatcher, account) = setup().await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    endpoint(store.as_ref(), account, &hanging.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 5).await;

    assert_eq!(
        dispatcher.dispatch_next().await.unwrap(),
        Outcome::Dispatched(2),
        "the cap of 2"
    );
    assert_eq!(
        dispatcher.dispatch_next().await.unwrap(),
        Outcome::Idle,
        "full until calls are recorded"
    );

    // Another endpoint's work is claimed although the first is full.
    let fast = TestReceiver::start().await;
    endpoint(store.as_ref(), account, &fast.url(), Ordering::Parallel).await;
    publish(store.as_ref(), account, 1).await;
    assert_eq!(
        dispatcher.dispatch_next().await.unwrap(),
        Outcome::Dispatched(1),
        "only the new endpoint's call"
    );
    fast.wait_for(1, crate::delivery::WAIT).await;
}

#[tokio::test]
async fn a_fifo_endpoint_gets_one_pending_delivery_at_a_time() {
    let (_dir, store, dispatcher, account) = setup().await;
    let hanging = TestReceiver::start().await;
    hanging.otherwise(Answer::Hang);
    endpoint(store.as_ref(), account, &hanging.url(), Ordering::Fifo).await;
    publish(store.as_ref(), account, 3).await;
    assert_eq!(
        dispatcher.dispatch_next().await.unwrap(),
        Outcome::Dispatched(1),
        "the oldest, alone"
    );
    assert_eq!(
        dispatcher.dispatch_next().await.unwrap(),
        Outcome::Idle,
        "the next waits for it"
    );
}
