//! Keyset paging: `limit`, `since`, `pagecursor` and `_next`.

use serde_json::json;

use crate::helpers::spawn_app;

fn ids(reply: &crate::helpers::Reply) -> Vec<i64> {
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn pages_follow_next_until_it_is_empty() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    for i in 0..7 {
        acme.post("/restapi/v1/job", json!({"title": format!("Job {i}")})).await;
    }
    let mut seen = Vec::new();
    let mut path = "/restapi/v1/job?limit=3".to_owned();
    let mut pages = 0;
    while !path.is_empty() {
        let page = acme.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(ids(&page));
        path = page.body["_next"].as_str().unwrap().to_owned();
        pages += 1;
        assert!(pages <= 3, "three pages of 3, 3 and 1");
    }
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(
        ids(&acme.get("/restapi/v1/job").await).len(),
        7,
        "the default limit is 20"
    );
}

#[tokio::test]
async fn new_items_written_while_paging_are_neither_repeated_nor_skipped() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    for i in 0..4 {
        acme.post(
            "/restapi/v1/candidate",
            json!({"first_name": "C", "last_name": format!("{i}")}),
        )
        .await;
    }
    let first = acme.get("/restapi/v1/candidate?limit=2").await;
    assert_eq!(ids(&first), [4, 3]);
    for i in 0..3 {
        acme.post(
            "/restapi/v1/candidate",
            json!({"first_name": "New", "last_name": format!("{i}")}),
        )
        .await;
    }
    let second = acme.get(first.body["_next"].as_str().unwrap()).await;
    assert_eq!(ids(&second), [2, 1], "the cursor holds its place while new rows arrive");
    assert_eq!(second.body["_next"], "");
}

#[tokio::test]
async fn since_returns_only_newer_items() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    for i in 0..5 {
        acme.post("/restapi/v1/job", json!({"title": format!("Job {i}")})).await;
    }
    let newer = acme.get("/restapi/v1/job?since=3").await;
    assert_eq!(ids(&newer), [5, 4]);
    let paged = acme.get("/restapi/v1/job?since=1&limit=2").await;
    assert_eq!(ids(&paged), [5, 4]);
    let next = paged.body["_next"].as_str().unwrap();
    assert!(next.contains("since=1") && next.contains("limit=2"), "{next}");
    assert_eq!(ids(&acme.get(next).await), [3, 2]);
}

#[tokio::test]
async fn endpoints_page_and_take_an_endpoint_id_as_since() {
    let app = spawn_app().await;
    let acme = app.new_account("acme").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let e = acme
            .post(
                "/restapi/v1/webhook/endpoint",
                json!({"url": "https://example.com/h", "events": ["*"]}),
            )
            .await;
        made.push(e.body["id"].as_str().unwrap().to_owned());
    }
    let page = acme
        .get(&format!("/restapi/v1/webhook/endpoint?since={}&limit=1", made[0]))
        .await;
    assert_eq!(page.body["items"][0]["id"], made[2].as_str());
    let next = acme.get(page.body["_next"].as_str().unwrap()).await;
    assert_eq!(next.body["items"][0]["id"], made[1].as_str());
    assert_eq!(next.body["_next"], "");
}

/// Makes PostgreSQL hold the insert of a candidate named "Slow" for this many seconds, inside
/// its transaction (a trigger that sleeps), after the id is taken.
async fn slow_down_candidates_named_slow(db: &crate::db::TestDb, seconds: f64) {
    db.execute(&format!(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.first_name = 'Slow' THEN PERFORM pg_sleep({seconds}); END IF; RETURN NEW; END $$;
         CREATE TRIGGER slow BEFORE INSERT ON candidates FOR EACH ROW EXECUTE FUNCTION slow();"
    ))
    .await;
}

/// On PostgreSQL, transactions can commit in another order than they took their ids. A write
/// held up after taking its id (here by a trigger that sleeps) must not let a later write
/// become visible first, or a client polling with `since` would step over it for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_misses_no_item_whose_write_commits_late() {
    let app = spawn_app().await;
    if !app.db().is_postgres() {
        return; // One SQLite writer commits in id order by construction.
    }
    let acme = app.new_account("acme").await;
    slow_down_candidates_named_slow(app.db(), 0.5).await;
    let slow = {
        let client = reqwest::Client::new();
        let url = app.url("/restapi/v1/candidate");
        tokio::spawn(async move {
            let reply = client
                .post(url)
                .basic_auth("acme", Some(crate::helpers::PASSWORD))
                .json(&json!({"first_name": "Slow", "last_name": "Writer"}))
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = reply.json().await.unwrap();
            body["id"].as_i64().unwrap()
        })
    };
    // The slow write has its id and sleeps in PostgreSQL's trigger; this one comes after it.
    // (Real time, for it is the database's own transactions that interleave.)
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let fast = acme
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Fast", "last_name": "Writer"}),
        )
        .await;
    assert_eq!(fast.status, 201, "{}", fast.text);
    // A poller reads what is there, then asks for what came since the newest it saw.
    let first = ids(&acme.get("/restapi/v1/candidate?since=0").await);
    let newest = first.iter().max().copied().unwrap();
    let slow = slow.await.unwrap();
    let then = ids(&acme.get(&format!("/restapi/v1/candidate?since={newest}")).await);
    let seen: Vec<i64> = first.iter().chain(&then).copied().collect();
    assert!(
        seen.contains(&slow),
        "the slow write ({slow}) was stepped over: first poll {first:?}, then since={newest}: {then:?}"
    );
}

/// The lock that keeps ids in order makes one account's writes wait for each other. Waiting,
/// they must not hold the node's connections: here a slow write holds the lock for two
/// seconds while six more queue behind it, on a pool of four. Another account's requests are
/// answered meanwhile, and the queued writes are all made once the slow one commits, rather
/// than failing when the pool finds no connection for them within its second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_behind_one_accounts_lock_leave_the_pool_to_the_others() {
    let app = crate::helpers::spawn_app_with(|c| c.database_max_connections = 4).await;
    if !app.db().is_postgres() {
        return; // SQLite's writes queue for its one writer thread, not for connections.
    }
    let acme = app.new_account("acme").await;
    let globex = app.new_account("globex").await;
    slow_down_candidates_named_slow(app.db(), 2.0).await;
    let client = reqwest::Client::new();
    let write = |first_name: &str| {
        let request = client
            .post(app.url("/restapi/v1/candidate"))
            .basic_auth("acme", Some(crate::helpers::PASSWORD))
            .json(&json!({"first_name": first_name, "last_name": "Writer"}));
        tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
    };
    let slow = write("Slow");
    // Real time: the slow write must be inside PostgreSQL's trigger before the others queue.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let queued: Vec<_> = (0..6).map(|_| write("Queued")).collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let asked = std::time::Instant::now();
    let read = globex.get("/restapi/v1/candidate").await;
    assert_eq!(read.status, 200, "another account's read: {}", read.text);
    let made = globex
        .post(
            "/restapi/v1/candidate",
            json!({"first_name": "Other", "last_name": "Account"}),
        )
        .await;
    assert_eq!(made.status, 201, "another account's write: {}", made.text);
    let took = asked.elapsed();
    assert!(
        took < std::time::Duration::from_millis(900),
        "another account waited {took:?} for a connection"
    );
    assert!(!slow.is_finished(), "the slow write still holds the lock");

    assert_eq!(slow.await.unwrap(), 201);
    for write in queued {
        assert_eq!(write.await.unwrap(), 201, "a queued write is made once its turn comes");
    }
    assert_eq!(
        acme.get("/restapi/v1/candidate").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
}
