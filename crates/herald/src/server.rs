//! Starting Herald: listen, open the store (waiting for a database that is not up yet),
//! settle the admin token, and serve until shut down.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::error::ApiError;
use crate::api::rate_limit::RateLimiter;
use crate::api::{self, AppState, auth::sha256};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::guard::Guard;
use crate::delivery::{Dispatcher, retention};
use crate::metrics::Metrics;
use crate::notify::Mailer;
use crate::store::{self, Store};

/// Runs Herald on `listener` until `shutdown` completes. Tests bind port 0 and own the
/// shutdown; `herald serve` binds the configured address and waits for a signal.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let clock = Clock::new(&config.timezone)?;
    run_on(clock, config, listener, shutdown).await
}

/// [`run`], telling the time by `clock`: tests give it a manual one.
///
/// The node listens at once, even while its database is not there yet: it is alive
/// (`/healthz`) but not ready (`/readyz` and every other request answer 503) until the store
/// opens, which it tries again with backoff, saying so in the log.
pub async fn run_on(
    clock: Clock,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // One shutdown signal, heard by the API, the dispatcher and the wait for the database.
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    tracing::info!(address = %listener.local_addr()?, role = ?config.role, "herald is listening");
    let app = Arc::new(OnceLock::<Router>::new());
    let served = app.clone();
    let front = Router::new().fallback(move |request: Request| serve_or_wait(served.clone(), request));
    // The peer's address reaches the handlers, for the per-address limit on failed logins.
    let server = tokio::spawn(crate::http::serve(
        listener,
        front,
        config.http,
        until_true(stopped.clone()),
    ));
    let Some(state) = open_when_reachable(config, clock, stopped.clone()).await? else {
        server.await??;
        return Ok(());
    };
    let (store, config, metrics) = (state.store.clone(), state.config.clone(), state.metrics.clone());
    let _ = app.set(api::app(state.clone()));
    tracing::info!("herald is ready");
    // A node that only serves the API leaves delivery, retention and e-mail to the others.
    let mut background = Vec::new();
    if config.role.delivers() {
        background.push(tokio::spawn(retention::run(
            store.clone(),
            state.clock.clone(),
            config.retention.keep,
            until_true(stopped.clone()),
        )));
        if let Some(mailer) = Mailer::new(store.clone(), &config, state.clock.clone())? {
            background.push(tokio::spawn(mailer.run(until_true(stopped.clone()))));
        }
        let (dispatcher, finished) = Dispatcher::new(store, config.clone(), metrics, state.clock.clone())?;
        background.push(tokio::spawn(dispatcher.run(finished, until_true(stopped.clone()))));
    }
    server.await??;
    for task in background {
        task.await?;
    }
    tracing::info!("herald stopped");
    Ok(())
}

/// The app once the store is open; until then `/healthz` alone answers 200, and everything
/// else a 503 that says why.
async fn serve_or_wait(app: Arc<OnceLock<Router>>, request: Request) -> Response {
    match app.get() {
        Some(router) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None if request.uri().path() == "/healthz" => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response()
        }
        None => ApiError::Unavailable("starting: waiting for the database".into()).into_response(),
    }
}

/// Opens the store, trying again with backoff (up to 5 s apart) while the database cannot be
/// reached; any other failure (a bad URL, a failed migration) ends the start at once. `None`
/// when shut down while waiting.
async fn open_when_reachable(
    config: Config,
    clock: Clock,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Option<AppState>> {
    let mut delay = Duration::from_millis(250);
    loop {
        match state(config.clone(), clock.clone()).await {
            Ok(state) => return Ok(Some(state)),
            Err(e) if store::is_unreachable(&e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?delay, "waiting for the database");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = until_true(stopped.clone()) => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Opens the store, settles the admin token, and builds what every handler shares: all of
/// Herald but its sockets and background tasks (a fuzz target drives `api::app` with it).
pub async fn state(config: Config, clock: Clock) -> anyhow::Result<AppState> {
    let store = store::open(&config.database, config.database_max_connections)
        .await
        .with_context(|| format!("opening {}", config.database))?;
    let admin_digest = admin_digest(&config, store.as_ref()).await?;
    Ok(AppState {
        store,
        clock,
        rate_limit: Arc::new(RateLimiter::new(config.rate_limit_per_minute)),
        failed_logins: Arc::default(),
        catalogue: Arc::default(),
        admin_accounts: Arc::default(),
        guard: Guard::new(config.allow_private_targets),
        logins: Arc::default(),
        metrics: Arc::new(Metrics::default()),
        admin_digest: Arc::new(admin_digest),
        config: Arc::new(config),
    })
}

/// Completes once the watched flag turns true (or its sender is gone).
async fn until_true(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

/// The digest of the admin token: the configured one, else the one kept in the database,
/// else a new one, kept and printed this once.
async fn admin_digest(config: &Config, store: &dyn Store) -> anyhow::Result<[u8; 32]> {
    if let Some(token) = &config.admin_token {
        return Ok(sha256(token.0.as_bytes()));
    }
    if let Some(kept) = store.admin_token_digest().await? {
        return decode_digest(&kept);
    }
    let token = crate::ids::admin_token();
    let digest = sha256(token.as_bytes());
    if !store.keep_admin_token_digest(&STANDARD.encode(digest)).await? {
        // Another node starting at the same moment generated and kept one first: use it.
        let kept = store.admin_token_digest().await?;
        return decode_digest(&kept.context("the admin token digest vanished")?);
    }
    println!("Herald generated an admin token; it is shown this once, so keep it:\n\n    HERALD_ADMIN_TOKEN={token}\n");
    Ok(digest)
}

fn decode_digest(kept: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD
        .decode(kept)
        .context("the stored admin token digest is corrupt")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored admin token digest is corrupt"))
}
