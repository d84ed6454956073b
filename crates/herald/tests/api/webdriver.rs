//! A small W3C WebDriver client for the browser tests: it starts Debian's ChromeDriver
//! (`HERALD_TEST_CHROMEDRIVER`, which `scripts/browser-deps` installs) on a loopback port,
//! opens one headless Chromium, and sends the dozen commands the tests use as JSON over
//! HTTP. Written here because the crates that wrap the protocol bring hundreds of lines of
//! lock file for these few calls.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{Process, free_port};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    _driver: Process,
    _profile: tempfile::TempDir,
}

/// An element of the page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// A headless Chromium, its window `width` pixels wide.
    pub async fn start() -> Browser {
        let driver = std::env::var("HERALD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&driver).exists(),
            "the browser tests need Chromium and ChromeDriver: run scripts/browser-deps (scripts/test does)"
        );
        let port = free_port();
        // Chromium's profile, and the temporary files it makes (TMPDIR), go with the test.
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env("TMPDIR", profile.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Process::new(child);
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        // A real process on a real port: polling is the only way to know it listens.
        for _ in 0..200 {
            if client.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // The flags keep Chromium from reaching out to the network (refused here) and from
        // needing a sandbox, which root cannot have.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": chromium(), "args": args},
        }}});
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Browser {
            client,
            session: format!("{base}/session/{id}"),
            _driver: driver,
            _profile: profile,
        }
    }

    /// One command; its `value`, or the WebDriver error as `Err`.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let mut request = self.client.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("chromedriver answers");
        let ok = response.status().is_success();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(answer["value"].clone())
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body))
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {}", e["message"]))
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {}", e["message"]))
    }

    /// Opens a URL and waits for its page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap().to_owned()
    }

    pub async fn title(&self) -> String {
        self.get("/title").await.as_str().unwrap().to_owned()
    }

    /// The first element that matches a CSS selector.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .unwrap_or_else(|e| panic!("no element {css:?}: {}", e["message"]));
        Element {
            browser: self,
            id: found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css:?}: {found}"))
                .to_owned(),
        }
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found.as_array().map_or(0, Vec::len)
    }

    /// Runs a script in the page; its result.
    pub async fn run(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Clicks what matches `css` and waits for the page it leads to (a form's answer, a
    /// link's target) to be loaded: a click returns before the navigation it starts ends.
    pub async fn click_through(&self, css: &str) {
        self.mark().await;
        self.find(css).await.click().await;
        self.new_page().await;
    }

    /// Marks the page in the browser, so that `new_page` can tell it from the next.
    pub async fn mark(&self) {
        self.run("window.heraldOldPage = true").await;
    }

    /// Waits until the marked page has been replaced by a loaded one.
    pub async fn new_page(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .command(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(json!({"script": "return !window.heraldOldPage && document.readyState === 'complete'", "args": []})),
                )
                .await;
            if loaded == Ok(Value::Bool(true)) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no new page within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The text of the open alert or confirmation, if one is open.
    pub async fn alert(&self) -> Option<String> {
        self.command(reqwest::Method::GET, "/alert/text", None)
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    pub async fn accept_alert(&self) {
        self.post("/alert/accept", json!({})).await;
    }

    /// Forgets the cookies of the current site.
    pub async fn clear_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await.unwrap();
    }

    /// Saves a PNG of the whole page to `path`: the window is made as tall as the page first.
    pub async fn screenshot(&self, path: &Path) {
        // The window's height counts the browser's own bars, which the page does not get.
        let bars = self
            .run("return window.outerHeight - window.innerHeight")
            .await
            .as_i64()
            .unwrap_or(0);
        let height = self
            .run("return document.documentElement.scrollHeight")
            .await
            .as_i64()
            .unwrap_or(900);
        self.post(
            "/window/rect",
            json!({"width": 1280, "height": (height + bars).clamp(600, 5000)}),
        )
        .await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        self.post("/window/rect", json!({"width": 1280, "height": 900})).await;
    }
}

impl Element<'_> {
    pub async fn click(&self) {
        self.browser
            .post(&format!("/element/{}/click", self.id), json!({}))
            .await;
    }

    /// Types `text` into the element, after what it holds.
    pub async fn type_text(&self, text: &str) {
        self.browser
            .post(&format!("/element/{}/value", self.id), json!({"text": text}))
            .await;
    }

    pub async fn clear(&self) {
        self.browser
            .post(&format!("/element/{}/clear", self.id), json!({}))
            .await;
    }

    /// An attribute's value, as the page has it now.
    pub async fn attribute(&self, name: &str) -> String {
        self.browser
            .get(&format!("/element/{}/attribute/{name}", self.id))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The text the element shows.
    pub async fn text(&self) -> String {
        self.browser
            .get(&format!("/element/{}/text", self.id))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser with its session; the driver process goes with `Process`.
        // With a client of its own: the test's client keeps its connections on the test's
        // runtime, which may be gone, and a request on one of them fails, leaving Chromium
        // running.
        let session = self.session.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = reqwest::Client::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), client.delete(session).send()).await;
            });
        })
        .join();
    }
}

/// Debian's Chromium.
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/usr/bin/chromium")
        .to_owned()
}
