//! A property: whatever bytes arrive as the body of any write route, the answer is a 4xx in
//! the error envelope, never a 5xx, and nothing stored changes. Bodies are random bytes and
//! random JSON-like text; the seed is printed so that a failure can be replayed with
//! `HERALD_PROPERTY_SEED`.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Api, TestApp, spawn_app_with};

/// Bodies per route.
const BODIES: usize = 150;

/// A small xorshift generator: reproducible from its seed, and enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Random bytes, any of them.
    fn bytes(&mut self) -> Vec<u8> {
        (0..self.below(512)).map(|_| self.next() as u8).collect()
    }

    /// Text made of JSON's own tokens and field names of the API, so that parsing gets deep.
    fn json_like(&mut self) -> Vec<u8> {
        const TOKENS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1e999",
            "42",
            "\"x\"",
            "\"title\"",
            "\"url\"",
            "\"events\"",
            "\"auth\"",
            "\"type\"",
            "\"since\"",
            "\"login\"",
            "\"password\"",
            "\"candidate_id\"",
            "\"job_id\"",
            "\"application_id\"",
            "\"process_step_id\"",
            "\"*\"",
            "\"\\u0000\"",
            "\"http://\"",
            " ",
            "\n",
            "\\",
            "\u{fffd}",
        ];
        let mut text = String::new();
        for _ in 0..self.below(60) {
            text.push_str(TOKENS[self.below(TOKENS.len())]);
        }
        text.into_bytes()
    }
}

/// Everything stored that a refused write could have changed.
async fn snapshot(app: &TestApp) -> String {
    let counts = "(SELECT count(*) FROM accounts), (SELECT count(*) FROM jobs), (SELECT count(*) FROM candidates),
        (SELECT count(*) FROM applications), (SELECT count(*) FROM step_changes), (SELECT count(*) FROM events),
        (SELECT count(*) FROM deliveries), (SELECT count(*) FROM event_types)";
    let endpoints = "url || events || description || ordering || coalesce(auth, '') || secret";
    let sql = if app.db().is_postgres() {
        format!(
            "SELECT json_build_array({counts}, (SELECT string_agg({endpoints}, '|' ORDER BY seq) FROM endpoints))::text"
        )
    } else {
        format!("SELECT json_array({counts}, (SELECT group_concat({endpoints}, '|') FROM endpoints))")
    };
    app.db().text(&sql).await
}

#[tokio::test]
async fn random_bodies_on_every_write_route_get_a_4xx_and_change_nothing() {
    let app = spawn_app_with(|c| c.rate_limit_per_minute = 0).await;
    let acme = app.new_account("acme").await;
    acme.new_application().await;
    let endpoint = acme
        .post(
            "/restapi/v1/webhook/endpoint",
            json!({"url": "https://example.com/h", "events": ["*"]}),
        )
        .await;
    let endpoint = endpoint.body["_self"].as_str().unwrap().to_owned();
    let admin = app.admin();
    let routes: Vec<(&Api, Method, String)> = vec![
        (&acme, Method::POST, "/restapi/v1/job".into()),
        (&acme, Method::POST, "/restapi/v1/candidate".into()),
        (&acme, Method::POST, "/restapi/v1/application".into()),
        (&acme, Method::POST, "/restapi/v1/step".into()),
        (&acme, Method::POST, "/restapi/v1/webhook/endpoint".into()),
        (&acme, Method::PATCH, endpoint.clone()),
        (&acme, Method::POST, format!("{endpoint}/replay")),
        (&admin, Method::POST, "/admin/v1/account".into()),
        (&admin, Method::POST, "/admin/v1/event-type".into()),
        (&admin, Method::POST, "/admin/v1/account/acme/event".into()),
        (&admin, Method::POST, "/admin/v1/account/acme/webhook/endpoint".into()),
    ];
    let seed = std::env::var("HERALD_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from_be_bytes(herald::ids::random_bytes::<8>()) | 1);
    eprintln!("property seed: HERALD_PROPERTY_SEED={seed}");
    let mut rng = Rng(seed);
    let before = snapshot(&app).await;
    for (api, method, path) in &routes {
        for i in 0..BODIES {
            let body = if i % 2 == 0 { rng.bytes() } else { rng.json_like() };
            let reply = api
                .raw(method.clone(), path, Some(("application/json", body.clone())))
                .await;
            assert!(
                (400..500).contains(&reply.status) && reply.body["_status"] == "INVALID",
                "{method} {path} with {:?} answered {}: {} (seed {seed})",
                String::from_utf8_lossy(&body),
                reply.status,
                reply.text
            );
        }
        assert_eq!(
            snapshot(&app).await,
            before,
            "{method} {path} changed stored data (seed {seed})"
        );
    }
}
