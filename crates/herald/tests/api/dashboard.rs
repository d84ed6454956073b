//! The dashboard over plain HTTP, as a browser without script sees it: sign-in and its
//! limits, the session cookie, the headers of every page, CSRF tokens, `view` sessions,
//! portal links and idle expiry. On both backends (sessions live in the store). What needs
//! a real browser (script, rendering) is in `browser`.

use std::time::Duration;

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;

use crate::delivery::subscribe;
use crate::helpers::{ADMIN_TOKEN, PASSWORD, TestApp, spawn_app_with, spawn_stepped_app};
use crate::receiver::{Answer, TestReceiver};

/// A browser without script: its session cookie, and the CSRF token of the last page read.
pub struct Visit<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: String,
    pub csrf: String,
}

/// A page as it came: status, headers, HTML.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn location(&self) -> String {
        self.header("location")
    }
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_owned())
}

/// A cookie's value in `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
}

impl<'a> Visit<'a> {
    pub fn new(app: &'a TestApp) -> Visit<'a> {
        Visit {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: String::new(),
            csrf: String::new(),
        }
    }

    /// Signs in with the form: `fields` are the form's fields but its CSRF token.
    pub async fn sign_in_with(&mut self, fields: &[(&str, &str)]) -> Page {
        let form = self.get("/ui/login").await;
        assert_eq!(form.status, 200, "{}", form.html);
        let login_cookie = set_cookie(&form.headers, "herald_login").expect("the form's cookie");
        let token = csrf_of(&form.html).expect("the form's token");
        assert_eq!(token, login_cookie, "the form repeats its cookie");
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        let response = self
            .client
            .post(self.app.url("/ui/login"))
            .header("cookie", format!("herald_login={login_cookie}"))
            .form(&all)
            .send()
            .await
            .unwrap();
        let page = page(response).await;
        if let Some(session) = set_cookie(&page.headers, "herald_session") {
            self.cookie = session;
        }
        page
    }

    pub async fn sign_in(app: &'a TestApp, login: &str) -> Visit<'a> {
        let mut visit = Visit::new(app);
        let page = visit.sign_in_with(&[("login", login), ("password", PASSWORD)]).await;
        assert_eq!((page.status, page.location()), (303, "/ui".into()), "{}", page.html);
        visit.get("/ui").await;
        visit
    }

    /// A visit with the session of a cookie.
    pub fn with_cookie(app: &'a TestApp, cookie: &str) -> Visit<'a> {
        let mut visit = Visit::new(app);
        visit.cookie = cookie.to_owned();
        visit
    }

    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Reads a page; keeps its CSRF token, if it has one.
    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(self.app.url(path))
            .header("cookie", format!("herald_session={}", self.cookie))
            .send()
            .await
            .unwrap();
        let page = page(response).await;
        if let Some(token) = csrf_of(&page.html) {
            self.csrf = token;
        }
        page
    }

    /// Posts a form with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(self.app.url(path))
            .header("cookie", format!("herald_session={}", self.cookie))
            .form(fields)
            .send()
            .await
            .unwrap();
        page(response).await
    }
}

async fn page(response: reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    Page { status, headers, html }
}

#[tokio::test]
async fn signing_in_gives_a_strict_session_and_every_page_a_strict_policy() {
    let app = spawn_app_with(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({})).await;
    let id = endpoint["id"].as_str().unwrap();
    acme.post(&format!("/restapi/v1/webhook/endpoint/{id}/test"), json!({}))
        .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    crate::delivery::tasks(&acme, 1).await;

    let mut stranger = Visit::new(&app);
    let away = stranger.get("/ui").await;
    assert_eq!((away.status, away.location()), (303, "/ui/login".into()));

    let wrong = stranger.sign_in_with(&[("login", "acme"), ("password", "wrong")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains("Wrong login or password"), "{}", wrong.html);
    assert!(set_cookie(&wrong.headers, "herald_session").is_none());

    let mut visit = Visit::new(&app);
    let signed = visit.sign_in_with(&[("login", "acme"), ("password", PASSWORD)]).await;
    assert_eq!((signed.status, signed.location()), (303, "/ui".into()));
    let cookie = signed.header("set-cookie");
    assert!(
        cookie.contains("herald_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "not over https: {cookie}");
    let stored = app.db().count("SELECT count(*) FROM ui_sessions").await;
    assert_eq!(stored, 1);
    let token_in_table = app
        .db()
        .count(&format!(
            "SELECT count(*) FROM ui_sessions WHERE token_hash = {}",
            if app.db().is_postgres() {
                format!("'{}'::bytea", visit.cookie())
            } else {
                format!("CAST('{}' AS BLOB)", visit.cookie())
            }
        ))
        .await;
    assert_eq!(token_in_table, 0, "the store keeps the token's hash, not the token");

    let task = app.db().count("SELECT max(id) FROM tasks").await;
    for path in [
        "/ui".to_owned(),
        format!("/ui/endpoints/{id}"),
        format!("/ui/endpoints/{id}?window=7d"),
        format!("/ui/endpoints/{id}/edit"),
        "/ui/endpoints/new".into(),
        "/ui/tasks".into(),
        format!("/ui/tasks?endpoint={id}&response_status=200"),
        format!("/ui/tasks/{task}"),
        "/ui/events".into(),
        "/ui/settings".into(),
        "/ui/logout".into(),
    ] {
        let page = visit.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        let policy = page.header("content-security-policy");
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{path}: {policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
    }
    assert_eq!(visit.get("/ui/endpoints/ep_nothere").await.status, 404);
    assert_eq!(visit.get("/ui/accounts").await.status, 403, "support's page");

    // Behind a proxy that says https, the cookie is Secure.
    let login = Visit::new(&app).get("/ui/login").await;
    let token = csrf_of(&login.html).unwrap();
    let over_https = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/ui/login"))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("herald_login={token}"))
        .form(&[("csrf", token.as_str()), ("login", "acme"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = over_https
        .headers()
        .get(SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // A sign-in form without its cookie is refused.
    let forged = Visit::new(&app)
        .post_raw(
            "/ui/login",
            &[("csrf", "made-up"), ("login", "acme"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Failed sign-ins are limited as the API's are: past ten for a login (one was above),
    // even the right password waits.
    for _ in 0..9 {
        let wrong = Visit::new(&app)
            .sign_in_with(&[("login", "acme"), ("password", "nope")])
            .await;
        assert_eq!(wrong.status, 401);
    }
    let limited = Visit::new(&app)
        .sign_in_with(&[("login", "acme"), ("password", PASSWORD)])
        .await;
    assert_eq!(limited.status, 429, "{}", limited.html);
    assert!(limited.html.contains("Too many failed sign-ins"));
}

#[tokio::test]
async fn a_form_without_its_sessions_csrf_token_is_refused_and_changes_nothing() {
    let app = spawn_app_with(|_| {}).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(&acme, &receiver.url(), json!({})).await;
    let id = endpoint["id"].as_str().unwrap();
    let delete = format!("/ui/endpoints/{id}/delete");
    let endpoints = || app.db().count("SELECT count(*) FROM endpoints");

    let mut visit = Visit::sign_in(&app, "acme").await;
    let mut other = Visit::sign_in(&app, "acme").await;
    visit.get(&format!("/ui/endpoints/{id}")).await;
    other.get(&format!("/ui/endpoints/{id}")).await;
    assert_ne!(visit.csrf, other.csrf, "each session has its own token");

    let without = visit.post_raw(&delete, &[]).await;
    assert_eq!(without.status, 403, "{}", without.html);
    assert!(without.html.contains("CSRF"), "{}", without.html);
    let others = visit.post_raw(&delete, &[("csrf", &other.csrf)]).await;
    assert_eq!(others.status, 403);
    let settings = visit
        .post_raw("/ui/settings", &[("csrf", "x"), ("name", "Changed")])
        .await;
    assert_eq!(settings.status, 403);
    assert_eq!(endpoints().await, 1, "nothing deleted");
    assert_eq!(app.admin().get("/admin/v1/account/acme").await.body["name"], "acme");

    let done = visit.post(&delete, &[]).await;
    assert_eq!((done.status, done.location()), (303, "/ui".into()));
    assert_eq!(endpoints().await, 0, "its own token deletes");
}

#[tokio::test]
async fn a_portal_link_works_once_and_a_view_session_changes_nothing() {
    let app = spawn_stepped_app(|c| c.ui.frame_ancestors = vec!["https://host.example".into()]).await;
    let acme = app.new_account("acme").await;
    let receiver = TestReceiver::start().await;
    let endpoint = subscribe(
        &acme,
        &receiver.url(),
        json!({"headers": {"X-Api-Key": "k3y-not-for-viewers"}}),
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let support = app.admin();

    // Bad input changes nothing.
    for (body, field) in [
        (json!({"permissions": "admin"}), "permissions"),
        (json!({"permissions": "view", "ttl": "25h"}), "ttl"),
        (json!({"permissions": "view", "ttl": "soon"}), "ttl"),
    ] {
        let refused = support.post("/admin/v1/account/acme/portal", body).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
        assert!(
            refused.body["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            refused.text
        );
    }
    assert_eq!(
        support
            .post("/admin/v1/account/nobody/portal", json!({"permissions": "view"}))
            .await
            .status,
        404
    );
    assert_eq!(
        acme.post("/admin/v1/account/acme/portal", json!({"permissions": "view"}))
            .await
            .status,
        401,
        "support's call"
    );
    assert_eq!(app.db().count("SELECT count(*) FROM ui_portal_links").await, 0);

    let link = support
        .post(
            "/admin/v1/account/acme/portal",
            json!({"permissions": "view", "ttl": "1h"}),
        )
        .await;
    assert_eq!(link.status, 201, "{}", link.text);
    let url = link.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/ui/portal/"), "{url}");
    assert!(link.body["expires"].as_str().is_some());

    let mut viewer = Visit::new(&app);
    let followed = viewer.get(&url).await;
    assert_eq!((followed.status, followed.location()), (303, "/ui".into()));
    let cookie = set_cookie(&followed.headers, "herald_session").unwrap();
    let mut viewer = Visit::with_cookie(&app, &cookie);
    let again = Visit::new(&app).get(&url).await;
    assert_eq!(again.status, 410, "a link works once");

    // A view session sees the endpoint, with header values masked and no forms to change it.
    let page = viewer.get(&format!("/ui/endpoints/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("x-api-key") && !page.html.contains("k3y-not-for-viewers"),
        "{}",
        page.html
    );
    assert!(page.html.contains("view only"));
    assert!(
        !page.html.contains("rotate-secret") && !page.html.contains("/delete"),
        "no actions shown"
    );
    // Portal pages may be framed by the configured origins, and no other.
    let policy = page.header("content-security-policy");
    assert!(policy.contains("frame-ancestors https://host.example"), "{policy}");
    assert_eq!(page.header("x-frame-options"), "");

    // The pages that exist only to change something are refused too.
    for form in [format!("/ui/endpoints/{id}/edit"), "/ui/endpoints/new".into()] {
        let refused = viewer.get(&form).await;
        assert_eq!(refused.status, 403, "{form}");
        assert!(refused.html.contains("view permissions"));
    }

    // Its posts are refused even with its own valid token (its pages have no form to read it
    // from: the store gives it), and change nothing.
    viewer.csrf = app
        .db()
        .texts("SELECT csrf FROM ui_sessions WHERE permissions = 'view'")
        .await
        .remove(0);
    let secret = || app.db().texts("SELECT secret FROM endpoints");
    let before = secret().await;
    for action in ["rotate-secret", "delete", "resume", "test"] {
        let refused = viewer.post(&format!("/ui/endpoints/{id}/{action}"), &[]).await;
        assert_eq!(refused.status, 403, "{action}: {}", refused.html);
        assert!(refused.html.contains("view permissions"), "{action}: {}", refused.html);
    }
    let edit = viewer
        .post(&format!("/ui/endpoints/{id}/edit"), &[("url", "https://example.com/x")])
        .await;
    assert_eq!(edit.status, 403);
    assert_eq!(viewer.post("/ui/settings", &[("name", "Hacked")]).await.status, 403);
    assert_eq!(secret().await, before);
    assert_eq!(app.db().count("SELECT count(*) FROM endpoints").await, 1);
    assert_eq!(app.db().count("SELECT count(*) FROM events").await, 0, "no test event");
    assert_eq!(app.admin().get("/admin/v1/account/acme").await.body["name"], "acme");

    // A manage link changes; a link followed after its time to live does not sign in.
    let manage = support
        .post(
            "/admin/v1/account/acme/portal",
            json!({"permissions": "manage", "ttl": "10m"}),
        )
        .await;
    let late = support
        .post(
            "/admin/v1/account/acme/portal",
            json!({"permissions": "manage", "ttl": "10m"}),
        )
        .await;
    let mut manager = Visit::new(&app);
    let cookie = set_cookie(
        &manager.get(manage.body["url"].as_str().unwrap()).await.headers,
        "herald_session",
    )
    .unwrap();
    manager = Visit::with_cookie(&app, &cookie);
    manager.get("/ui/settings").await;
    assert_eq!(manager.post("/ui/settings", &[("name", "Acme Ltd")]).await.status, 303);
    assert_eq!(app.admin().get("/admin/v1/account/acme").await.body["name"], "Acme Ltd");
    app.advance(Duration::from_secs(601));
    assert_eq!(
        Visit::new(&app).get(late.body["url"].as_str().unwrap()).await.status,
        410
    );
}

#[tokio::test]
async fn a_session_lapses_after_twelve_idle_hours_and_ends_at_sign_out() {
    let app = spawn_stepped_app(|_| {}).await;
    app.new_account("acme").await;
    let mut visit = Visit::sign_in(&app, "acme").await;
    // Each page holds the session another twelve hours.
    for _ in 0..3 {
        app.advance(Duration::from_secs(11 * 3600));
        assert_eq!(visit.get("/ui").await.status, 200);
    }
    app.advance(Duration::from_secs(12 * 3600));
    let lapsed = visit.get("/ui").await;
    assert_eq!((lapsed.status, lapsed.location()), (303, "/ui/login".into()));
    assert_eq!(app.db().count("SELECT count(*) FROM ui_sessions").await, 0, "forgotten");

    let visit = Visit::sign_in(&app, "acme").await;
    let cookie = visit.cookie().to_owned();
    let out = visit.post("/ui/logout", &[]).await;
    assert_eq!((out.status, out.location()), (303, "/ui/login".into()));
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let after = Visit::with_cookie(&app, &cookie).get("/ui").await;
    assert_eq!(after.status, 303, "the old cookie no longer signs in");

    // Retention forgets lapsed sessions.
    Visit::sign_in(&app, "acme").await;
    app.advance(Duration::from_secs(13 * 3600));
    app.purge().await;
    assert_eq!(app.db().count("SELECT count(*) FROM ui_sessions").await, 0);
}

#[tokio::test]
async fn support_signs_in_with_the_admin_token_and_picks_an_account() {
    let app = spawn_app_with(|_| {}).await;
    let acme = app.new_account("acme").await;
    app.new_account("initech").await;
    let receiver = TestReceiver::start().await;
    receiver.script([Answer::Status(500, "down")]);
    subscribe(&acme, &receiver.url(), json!({})).await;

    let mut support = Visit::new(&app);
    let wrong = support.sign_in_with(&[("token", "not-the-token")]).await;
    assert_eq!(wrong.status, 401);
    let signed = support.sign_in_with(&[("token", ADMIN_TOKEN)]).await;
    assert_eq!((signed.status, signed.location()), (303, "/ui/accounts".into()));
    let before = support.get("/ui").await;
    assert_eq!(
        (before.status, before.location()),
        (303, "/ui/accounts".into()),
        "no account picked yet"
    );
    let accounts = support.get("/ui/accounts").await;
    assert_eq!(accounts.status, 200);
    assert!(accounts.html.contains("acme") && accounts.html.contains("initech"));
    assert_eq!(support.post("/ui/accounts/nobody/open", &[]).await.status, 404);
    let opened = support.post("/ui/accounts/acme/open", &[]).await;
    assert_eq!((opened.status, opened.location()), (303, "/ui".into()));
    let endpoints = support.get("/ui").await;
    assert!(endpoints.html.contains(&receiver.url()), "{}", endpoints.html);
    assert!(endpoints.html.contains("support"));

    // An account's session cannot open another account.
    let mut visit = Visit::sign_in(&app, "acme").await;
    visit.get("/ui").await;
    assert_eq!(visit.post("/ui/accounts/initech/open", &[]).await.status, 403);
}
