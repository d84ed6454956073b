//! Any bytes as the JSON body of any write route, sent through the whole API (router,
//! extractors, domain rules, SQLite store) without a socket: the answer is never a 5xx.
//! The first byte picks the route; an account, a job, a candidate, an application and an
//! endpoint exist, so that bodies can reach every rule.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/restapi/v1/job", false),
    ("POST", "/restapi/v1/candidate", false),
    ("POST", "/restapi/v1/application", false),
    ("POST", "/restapi/v1/step", false),
    ("POST", "/restapi/v1/webhook/endpoint", false),
    ("PATCH", "/restapi/v1/webhook/endpoint/{endpoint}", false),
    ("POST", "/restapi/v1/webhook/endpoint/{endpoint}/replay", false),
    ("POST", "/admin/v1/account", true),
    ("POST", "/admin/v1/event-type", true),
    ("POST", "/admin/v1/account/acme/event", true),
    ("POST", "/admin/v1/account/acme/webhook/endpoint", true),
];

struct World {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    endpoint: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = std::env::temp_dir().join(format!("herald-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = herald::config::Config::defaults();
        config.database = format!("sqlite://{}", dir.join("fuzz.db").display());
        config.admin_token = Some(herald::config::Secret("fuzz".into()));
        config.rate_limit_per_minute = 0;
        let clock = herald::clock::Clock::new(&config.timezone).unwrap();
        let app = herald::api::app(runtime.block_on(herald::server::state(config, clock)).unwrap());
        let send = |method: &str, path: &str, admin: bool, body: &str| {
            let response = runtime.block_on(app.clone().oneshot(request(method, path, admin, body.as_bytes().to_vec())));
            let bytes = runtime.block_on(axum::body::to_bytes(response.unwrap().into_body(), 1 << 20)).unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        send("POST", "/admin/v1/account", true, r#"{"login":"acme","password":"fuzz-password"}"#);
        send("POST", "/restapi/v1/job", false, r#"{"title":"Fuzzing"}"#);
        send("POST", "/restapi/v1/candidate", false, r#"{"first_name":"Ada","last_name":"Lovelace"}"#);
        send("POST", "/restapi/v1/application", false, r#"{"candidate_id":1,"job_id":1}"#);
        let endpoint = send("POST", "/restapi/v1/webhook/endpoint", false, r#"{"url":"https://example.com/h","events":["*"]}"#);
        let endpoint = endpoint.split("\"id\":\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
        World { runtime, app, endpoint }
    })
}

fn request(method: &str, path: &str, admin: bool, body: Vec<u8>) -> Request<Body> {
    let auth = if admin { "Bearer fuzz".to_owned() } else { "Basic YWNtZTpmdXp6LXBhc3N3b3Jk".to_owned() };
    Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", auth)
        .body(Body::from(body))
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let world = world();
    let (method, path, admin) = ROUTES[pick as usize % ROUTES.len()];
    let path = path.replace("{endpoint}", &world.endpoint);
    let response = world.runtime.block_on(world.app.clone().oneshot(request(method, &path, admin, body.to_vec()))).unwrap();
    assert!(response.status().as_u16() < 500, "{method} {path} answered {}", response.status());
});
