//! The test harness: a real Herald on a random loopback port with its own database (see
//! `db`), and a small HTTP client that speaks to it as an account or as support.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use herald::clock::{Clock, Hand};
use herald::config::{Config, Role, Secret};
use herald::delivery::{Dispatcher, retention};
use herald::notify::Mailer;
use herald::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::db::TestDb;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const PASSWORD: &str = "correct horse battery";

/// A running server and what the test needs to reach it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: TestDb,
    _shutdown: oneshot::Sender<()>,
}

/// Starts Herald on `127.0.0.1:0` with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts Herald with a configuration the test adjusts.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let (config, db) = config(adjust).await;
    let clock = Clock::new(&config.timezone).unwrap();
    spawn(config, clock, db).await
}

/// A configuration for a fresh database, adjusted by the test.
async fn config(adjust: impl FnOnce(&mut Config)) -> (Config, TestDb) {
    let db = TestDb::new().await;
    let mut config = Config::defaults();
    config.database = db.url.clone();
    config.admin_token = Some(Secret(ADMIN_TOKEN.into()));
    config.allow_private_targets = true;
    adjust(&mut config);
    (config, db)
}

async fn spawn(config: Config, clock: Clock, db: TestDb) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        herald::server::run_on(clock, config, listener, async {
            let _ = rx.await;
        })
        .await
        .expect("herald runs");
    });
    let app = TestApp {
        addr,
        client: reqwest::Client::new(),
        db,
        _shutdown: tx,
    };
    // The listener is bound; wait for the store to be ready before the test speaks. (A real
    // server on a real socket: polling is the only way to know.)
    for _ in 0..200 {
        if app.anonymous().get("/readyz").await.status == 200 {
            return app;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("herald did not become healthy");
}

/// Herald serving its APIs on a manual clock, with no delivery loop of its own: the test
/// delivers, a step at a time, and moves the clock between steps. What it asserts about
/// time (retries, suspensions, graces, retention) then depends on no real wait.
pub struct SteppedApp {
    pub app: TestApp,
    /// Moves the time of the server and of the steps alike.
    pub hand: Hand,
    clock: Clock,
    store: Arc<dyn Store>,
    dispatcher: Dispatcher,
    retention: Duration,
    config: Config,
}

/// Starts Herald as an API node on a manual clock that stands at the real time, with a
/// dispatcher of its own for the test to step; the configuration is the test's.
pub async fn spawn_stepped_app(adjust: impl FnOnce(&mut Config)) -> SteppedApp {
    let (mut config, db) = config(adjust).await;
    config.role = Role::Api;
    // The real time, so that receivers checking a signature's timestamp accept it.
    let hand = Hand::at(jiff::Timestamp::now().as_microsecond());
    let clock = Clock::manual(&config.timezone, &hand).unwrap();
    let app = spawn(config.clone(), clock.clone(), db).await;
    let store = herald::store::open(&config.database, 2).await.unwrap();
    let retention = config.retention.keep;
    let (dispatcher, _finished) =
        Dispatcher::new(store.clone(), Arc::new(config.clone()), Arc::default(), clock.clone()).unwrap();
    SteppedApp {
        app,
        hand,
        clock,
        store,
        dispatcher,
        retention,
        config,
    }
}

impl SteppedApp {
    /// Claims what is due now, makes the calls and records them; returns how many calls it
    /// made.
    pub async fn step(&self) -> usize {
        self.dispatcher.step().await.expect("a step").dispatched
    }

    pub fn advance(&self, by: Duration) {
        self.hand.advance(by);
    }

    /// A mailer as the server would run one (as after a restart, when made anew), on the
    /// app's store and clock; `None` without `[notify] smtp_url`.
    pub fn mailer(&self) -> Option<Mailer> {
        Mailer::new(self.store.clone(), &self.config, self.clock.clone()).unwrap()
    }

    /// Sends the e-mails due now; returns how many were sent.
    pub async fn mail(&self) -> usize {
        self.mailer()
            .expect("an SMTP server is configured")
            .step()
            .await
            .expect("a mailer's step")
    }

    /// Purges what is past retention now; returns how many rows went.
    pub async fn purge(&self) -> u64 {
        retention::purge(self.store.as_ref(), &self.clock, self.retention)
            .await
            .expect("a purge")
    }
}

impl std::ops::Deref for SteppedApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Admin,
    Basic(String, String),
}

/// A client bound to one identity.
pub struct Api<'a> {
    app: &'a TestApp,
    auth: Auth,
    /// The `Idempotency-Key` every request carries, if any.
    key: Option<String>,
}

/// An answer: its status, headers and JSON body (`Null` when the body is empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of an `INVALID` answer.
    #[track_caller]
    pub fn code(&self) -> &str {
        assert_eq!(self.body["_status"], "INVALID", "{}", self.text);
        self.body["error"]["code"].as_str().unwrap()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin(&self) -> Api<'_> {
        Api {
            app: self,
            auth: Auth::Admin,
            key: None,
        }
    }

    pub fn anonymous(&self) -> Api<'_> {
        Api {
            app: self,
            auth: Auth::None,
            key: None,
        }
    }

    pub fn as_account(&self, login: &str, password: &str) -> Api<'_> {
        Api {
            app: self,
            auth: Auth::Basic(login.into(), password.into()),
            key: None,
        }
    }

    /// Creates an account with the default six-step process and returns its client.
    pub async fn new_account(&self, login: &str) -> Api<'_> {
        let reply = self
            .admin()
            .post("/admin/v1/account", json!({"login": login, "password": PASSWORD}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        self.as_account(login, PASSWORD)
    }

    /// The database, to check what the API cannot show.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// How many events the log holds, for every account.
    pub async fn event_count(&self) -> i64 {
        self.db.count("SELECT count(*) FROM events").await
    }
}

impl<'a> Api<'a> {
    /// The same client, sending `Idempotency-Key: key`.
    pub fn with_key(&self, key: &str) -> Api<'a> {
        Api {
            app: self.app,
            auth: self.auth.clone(),
            key: Some(key.into()),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.raw(method, path, body).await
    }

    /// Sends exactly these bytes with this content type.
    pub async fn raw(&self, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut request = self.app.client.request(method, self.app.url(path));
        request = match &self.auth {
            Auth::None => request,
            Auth::Admin => request.bearer_auth(ADMIN_TOKEN),
            Auth::Basic(login, password) => request.basic_auth(login, Some(password)),
        };
        if let Some(key) = &self.key {
            request = request.header("idempotency-key", key);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.expect("herald answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// Creates a job, a candidate and an application; returns the application's id.
    pub async fn new_application(&self) -> i64 {
        let job = self.post("/restapi/v1/job", json!({"title": "Rust engineer"})).await;
        assert_eq!(job.status, 201, "{}", job.text);
        let candidate = self
            .post(
                "/restapi/v1/candidate",
                json!({"first_name": "Ada", "last_name": "Lovelace"}),
            )
            .await;
        assert_eq!(candidate.status, 201, "{}", candidate.text);
        let application = self
            .post(
                "/restapi/v1/application",
                json!({"candidate_id": candidate.body["id"], "job_id": job.body["id"]}),
            )
            .await;
        assert_eq!(application.status, 201, "{}", application.text);
        application.body["id"].as_i64().unwrap()
    }

    /// Another application, of a new candidate to the first job; returns its id.
    pub async fn new_application_for_new_candidate(&self) -> i64 {
        let candidate = self
            .post(
                "/restapi/v1/candidate",
                json!({"first_name": "Grace", "last_name": "Hopper"}),
            )
            .await;
        let application = self
            .post(
                "/restapi/v1/application",
                json!({"candidate_id": candidate.body["id"], "job_id": 1}),
            )
            .await;
        assert_eq!(application.status, 201, "{}", application.text);
        application.body["id"].as_i64().unwrap()
    }

    /// The ids of the steps of the account's process, in order.
    pub async fn step_ids(&self) -> Vec<i64> {
        let root = self.get("/restapi/v1").await;
        let process = self.get(root.body["process"]["_self"].as_str().unwrap()).await;
        process.body["steps"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    }
}

/// A free loopback port for a server a test starts in another process (and may restart on
/// the same port). It is picked below the kernel's ephemeral range (32768 and up on Linux),
/// where no outgoing connection takes its source port and no `127.0.0.1:0` bind lands: a
/// port the kernel handed out for one of those, freed and then taken, made such a server fail
/// to start with "address in use".
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + (herald::ids::unit_random() * 12_000.0) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process, killed when dropped: a failing assertion leaves none running. (One left
/// running would hold the test run's output open, and the run would never end.)
pub struct Process(Option<std::process::Child>);

impl Process {
    pub fn new(child: std::process::Child) -> Process {
        Process(Some(child))
    }

    /// The child itself, for a test that waits for its output; then it is the test's to end.
    pub fn into_child(mut self) -> std::process::Child {
        self.0.take().expect("a process holds its child until dropped")
    }
}

impl std::ops::Deref for Process {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().expect("a process holds its child until dropped")
    }
}

impl std::ops::DerefMut for Process {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().expect("a process holds its child until dropped")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits, on real time, until `check` holds, and fails with `what` after 30 s: the server
/// delivers, records and keeps its tables up on its own time, which the test can only watch.
pub async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
