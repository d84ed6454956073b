//! `herald bench --soak DURATION`: Herald under faults for a bounded time. A chaos receiver
//! serves endpoints that answer 500, hang past their time-out, reset the connection, drip
//! their answer, answer 410 Gone, answer 429 with `Retry-After`, or flip between failing and
//! answering; two more always answer. Events are published at a steady rate while the
//! server is killed with SIGKILL at random moments and restarted (and, with
//! `--postgres-restart`, the PostgreSQL cluster with it).
//!
//! A calm phase first (no faults, every endpoint answering) gives the latency to compare
//! with. After the chaos, the flipping endpoint answers again and the run waits for the
//! deliveries to settle. It checks, and prints:
//! - every acknowledged event reached every endpoint that was healthy at the end (none lost);
//! - no call reached the failing endpoint while Herald said it was suspended, but its probe;
//! - no call reached the gone endpoint once Herald said it was disabled;
//! - the healthy endpoints' p99 event-to-call is under twice the calm phase's (taken as at
//!   least 100 ms, see [`CALM_P99_FLOOR`]);
//! - the server's memory is flat: its last tenth within 10 % of its second tenth.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::database::Database;
use super::processes::Server;
use super::{BenchArgs, TOKEN};

/// Endpoints that answer; each must have every acknowledged event by the end.
const HEALTHY: [&str; 4] = ["steady", "steady-too", "flip", "busy"];

/// The least the calm phase's p99 counts as. A two-minute run's calm phase makes about 960
/// calls, so its p99 is its tenth slowest call, and the machine that runs the soak in CI also
/// runs the load and the receiver, all debug builds, on two shared cores. There, runs without
/// any fault of Herald's have given calm p99s from 5.9 to 36.8 ms, and chaos p99s up to
/// 138 ms (against a calm 36.8 ms, both slowed alike). What this check is for costs far more:
/// a restarted server whose deliveries wait for the dispatcher's one-minute safety net, or the
/// steady endpoints' calls queued behind the failing endpoints' retries.
const CALM_P99_FLOOR: Duration = Duration::from_millis(100);

/// Endpoints that always answer 200.
const STEADY: [&str; 2] = ["steady", "steady-too"];

/// What the server is told to do differently, so that a short run sees retries, suspension
/// and resumption many times.
const SETTINGS: [(&str, &str); 7] = [
    ("HERALD_DELIVERY_RETRY_SCHEDULE", "1s,2s,4s,8s,16s,30s"),
    ("HERALD_DELIVERY_TIMEOUT", "5s"),
    ("HERALD_SUSPENSION_AFTER_FAILURES", "5"),
    ("HERALD_SUSPENSION_FIRST", "5s"),
    ("HERALD_SUSPENSION_MAX", "10s"),
    ("HERALD_SUSPENSION_DISABLE_AFTER", "1h"),
    ("HERALD_RETENTION_KEEP", "1d"),
];

/// One call as the receiver saw it.
#[derive(Clone)]
struct Arrival {
    endpoint: String,
    n: Option<u64>,
    at: Instant,
}

/// The chaos receiver's state.
struct Receiver {
    arrivals: Mutex<Vec<Arrival>>,
    /// While set, `flip` alternates every 5 s between 500 and 200; then it answers.
    chaos: std::sync::atomic::AtomicBool,
    /// Calls `busy` has had: it tells every other one to come back.
    busy_calls: std::sync::atomic::AtomicU64,
    started: Instant,
    /// When each event's publication was sent, by number.
    sent: Mutex<HashMap<u64, Instant>>,
    /// The id the API gave each acknowledged event, by number.
    ids: Mutex<HashMap<u64, String>>,
}

impl Receiver {
    fn record(&self, endpoint: &str, body: &[u8]) {
        let n = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["data"]["n"].as_u64());
        self.arrivals.lock().expect("never poisoned").push(Arrival {
            endpoint: endpoint.to_owned(),
            n,
            at: Instant::now(),
        });
    }
}

async fn answer(State(receiver): State<Arc<Receiver>>, Path(endpoint): Path<String>, body: Bytes) -> Response {
    receiver.record(&endpoint, &body);
    match endpoint.as_str() {
        "failing" => (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        "gone" => (StatusCode::GONE, "gone").into_response(),
        "hang" => {
            // Past the endpoint's 1 s time-out.
            tokio::time::sleep(Duration::from_secs(3)).await;
            "late".into_response()
        }
        "busy" => {
            // Every other call is told to come back in a second. Its own calls, counted alone:
            // counted among every endpoint's, the 429s came in runs at random, five in a row
            // suspended it every few seconds, and the backlog that built took from seconds to
            // over two minutes to drain after the chaos.
            if receiver.busy_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 0 {
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "busy").into_response()
            } else {
                "ok".into_response()
            }
        }
        "flip" => {
            let chaos = receiver.chaos.load(std::sync::atomic::Ordering::Relaxed);
            if chaos && (receiver.started.elapsed().as_secs() / 5) % 2 == 0 {
                (StatusCode::INTERNAL_SERVER_ERROR, "flipped").into_response()
            } else {
                "ok".into_response()
            }
        }
        _ => "ok".into_response(),
    }
}

/// The endpoints that misbehave below HTTP: `reset` closes the connection with a reset once
/// it has the request, `drip` sends its answer a byte every 300 ms, past the time-out.
async fn raw(listener: tokio::net::TcpListener, receiver: Arc<Receiver>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let receiver = receiver.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 8192];
            // The head, then as much body as it announces.
            let (head_end, length) = loop {
                let Ok(read) = stream.read(&mut buffer).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                request.extend_from_slice(&buffer[..read]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            while request.len() < head_end + length {
                let Ok(read) = stream.read(&mut buffer).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                request.extend_from_slice(&buffer[..read]);
            }
            let path = String::from_utf8_lossy(&request[..head_end])
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            receiver.record(&path, &request[head_end..]);
            if path == "reset" {
                // A linger of zero makes the close a reset; it cannot block, as nothing is
                // left unsent.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
                return;
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n").await;
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if stream.write_all(b".").await.is_err() {
                    return;
                }
            }
        });
    }
}

/// What the run saw of the endpoints' states, polled through the admin API.
#[derive(Default)]
struct Watch {
    /// Moments the failing endpoint was seen suspended, and until when.
    suspended: Vec<(Instant, Instant)>,
    /// The first moment the gone endpoint was seen disabled.
    disabled_at: Option<Instant>,
}

/// Runs the soak and prints its report; fails when a check fails.
pub(super) async fn run(args: BenchArgs, duration: Duration) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes == 1, "--soak runs one node");
    let database = Database::from_args(&args)?;
    let rate = args.rate.unwrap_or(20);
    let receiver = Arc::new(Receiver {
        arrivals: Mutex::new(Vec::new()),
        chaos: std::sync::atomic::AtomicBool::new(false),
        busy_calls: std::sync::atomic::AtomicU64::new(0),
        started: Instant::now(),
        sent: Mutex::new(HashMap::new()),
        ids: Mutex::new(HashMap::new()),
    });
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_url = format!("http://{}", http.local_addr()?);
    let app = axum::Router::new()
        .route("/{endpoint}", post(answer))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(http, app).await });
    let raw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let raw_url = format!("http://{}", raw_listener.local_addr()?);
    tokio::spawn(raw(raw_listener, receiver.clone()));

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = Server::start_on(&database.url, port, &SETTINGS)?;
    let base = server.base.clone();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    super::wait_healthy(&client, &base).await?;
    setup(&client, &base).await?;
    let urls = (http_url.as_str(), raw_url.as_str());
    let mut endpoints = HashMap::new();
    add_endpoints(&client, &base, urls, &STEADY, &mut endpoints).await?;

    // The calm phase: the steady endpoints alone, no kill.
    let calm = duration / 5;
    eprintln!("calm phase: {} s at {rate} events/s", calm.as_secs());
    let calm_acked = publish_for(&client, &base, &receiver, rate, calm, 0).await?;
    settle(&receiver, &calm_acked, &STEADY, Duration::from_secs(30)).await?;
    let calm_p99 = p99(&receiver, &calm_acked, &STEADY);

    // The chaos phase: the misbehaving endpoints join.
    let chaotic = ["flip", "busy", "failing", "gone", "hang", "reset", "drip"];
    add_endpoints(&client, &base, urls, &chaotic, &mut endpoints).await?;
    receiver.chaos.store(true, std::sync::atomic::Ordering::Relaxed);
    let chaos = duration - calm;
    // A kill every 15 s or so, at random moments: one in each slot of the phase.
    let kills = (chaos.as_secs() / 15).max(2) as usize;
    let slot = chaos / (kills as u32 + 1);
    eprintln!("chaos phase: {} s, {kills} kills", chaos.as_secs());
    let watch = Arc::new(Mutex::new(Watch::default()));
    let watching = tokio::spawn(watch_states(
        client.clone(),
        base.clone(),
        endpoints.clone(),
        watch.clone(),
    ));
    let first = calm_acked.len() as u64;
    let publisher = {
        let (client, base, receiver) = (client.clone(), base.clone(), receiver.clone());
        tokio::spawn(async move { publish_for(&client, &base, &receiver, rate, chaos, first).await })
    };
    let mut memory: Vec<u64> = Vec::new();
    let chaos_started = Instant::now();
    let mut next_kill = chaos_started + slot / 2 + jittered(slot);
    let mut killed = 0;
    let mut postgres_restarts = 0;
    while chaos_started.elapsed() < chaos {
        if let Ok(kib) = server.rss_kib() {
            memory.push(kib);
        }
        if Instant::now() >= next_kill && killed < kills {
            server.stop();
            killed += 1;
            if let Some(command) = &args.postgres_restart {
                if killed % 2 == 0 {
                    let status = std::process::Command::new("sh")
                        .args(["-c", command])
                        .stdout(std::process::Stdio::null())
                        .status()?;
                    anyhow::ensure!(status.success(), "restarting PostgreSQL: {command}");
                    postgres_restarts += 1;
                }
            }
            server = Server::start_on(&database.url, port, &SETTINGS)?;
            next_kill = chaos_started + slot * killed as u32 + slot / 2 + jittered(slot);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let chaos_acked = publisher.await??;
    receiver.chaos.store(false, std::sync::atomic::Ordering::Relaxed);
    let waiting: Vec<String> = HEALTHY
        .iter()
        .map(|e| format!("{e} {}", missing(&receiver, &chaos_acked, &[e])))
        .collect();
    eprintln!("settling: deliveries not yet made: {}", waiting.join(", "));
    let settled = settle(&receiver, &chaos_acked, &HEALTHY, Duration::from_secs(120)).await;
    if let Ok(took) = &settled {
        eprintln!("settled in {:.1} s", took.as_secs_f64());
    }
    watching.abort();
    let chaos_p99 = p99(&receiver, &chaos_acked, &STEADY);

    let report = Report::of(&receiver, &watch.lock().expect("never poisoned"), &chaos_acked);
    let refused = receiver.sent.lock().expect("never poisoned").len() - calm_acked.len() - chaos_acked.len();
    let tenth = memory.len() / 10;
    let (second_tenth, last_tenth) = if tenth > 0 {
        (mean(&memory[tenth..2 * tenth]), mean(&memory[memory.len() - tenth..]))
    } else {
        (0.0, 0.0)
    };
    println!(
        "herald bench --soak {} s: {}, {rate} events/s, {killed} kills (SIGKILL), {postgres_restarts} PostgreSQL restarts",
        duration.as_secs(),
        database.kind()
    );
    println!(
        "  published {} acknowledged, {} refused while the server was down",
        calm_acked.len() + chaos_acked.len(),
        refused
    );
    println!(
        "  healthy endpoints: {} deliveries due, {} delivered, {} lost; {} duplicate calls to the steady ones",
        report.due, report.delivered, report.lost, report.duplicates
    );
    println!(
        "  failing endpoint: {} calls, {} while suspended but the probe; gone endpoint: {} calls, {} after it was disabled",
        report.failing_calls, report.calls_while_suspended, report.gone_calls, report.calls_after_disabled
    );
    println!(
        "  p99 event to call on the steady endpoints: calm {:.1} ms, chaos {:.1} ms",
        calm_p99.as_secs_f64() * 1000.0,
        chaos_p99.as_secs_f64() * 1000.0
    );
    println!(
        "  server memory: second tenth {:.1} MiB, last tenth {:.1} MiB",
        second_tenth / 1024.0,
        last_tenth / 1024.0
    );
    if report.lost > 0 {
        if let Err(e) = explain_missing(&client, &base, &receiver, &endpoints, &chaos_acked).await {
            println!("  (where the missing deliveries stand could not be read: {e:#})");
        }
    }
    let mut failed = Vec::new();
    if let Err(e) = settled {
        failed.push(format!("{e}"));
    }
    if report.lost > 0 {
        failed.push(format!("{} deliveries lost", report.lost));
    }
    if report.calls_while_suspended > 0 {
        failed.push("calls to a suspended endpoint".into());
    }
    if report.calls_after_disabled > 0 {
        failed.push("calls to a disabled endpoint".into());
    }
    if report.disabled_never {
        failed.push("the gone endpoint was never disabled".into());
    }
    let yardstick = calm_p99.max(CALM_P99_FLOOR);
    if chaos_p99 > yardstick * 2 {
        failed.push(format!(
            "the p99 under chaos is over twice the calm one (counted as {:.1} ms, at least {} ms)",
            yardstick.as_secs_f64() * 1000.0,
            CALM_P99_FLOOR.as_millis()
        ));
    }
    if last_tenth > second_tenth * 1.1 {
        failed.push("the server's memory grew".into());
    }
    if failed.is_empty() {
        println!("  every check passed");
        Ok(())
    } else {
        bail!("the soak failed: {}", failed.join("; "))
    }
}

/// A random moment within `slot`.
fn jittered(slot: Duration) -> Duration {
    let mut byte = [0u8; 1];
    getrandom::fill(&mut byte).expect("the system has randomness");
    slot.mul_f64(f64::from(byte[0]) / 255.0)
}

fn mean(values: &[u64]) -> f64 {
    values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
}

/// The account and the event type.
async fn setup(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let account = post(
        "/admin/v1/account",
        json!({"login": "bench", "password": "bench-password"}),
    )
    .await?;
    anyhow::ensure!(account.status() == 201, "--database must name an empty database");
    let event_type = post(
        "/admin/v1/event-type",
        json!({"name": "BenchEvent", "description": "A soak event."}),
    )
    .await?;
    anyhow::ensure!(event_type.status() == 201, "registering the event type");
    Ok(())
}

/// One endpoint per name, each at the receiver's path of that name (`reset` and `drip` on the
/// raw listener), with a 1 s time-out; adds their ids to `ids`.
async fn add_endpoints(
    client: &reqwest::Client,
    base: &str,
    urls: (&str, &str),
    names: &[&str],
    ids: &mut HashMap<String, String>,
) -> anyhow::Result<()> {
    let (http_url, raw_url) = urls;
    for name in names {
        let root = if matches!(*name, "reset" | "drip") {
            raw_url
        } else {
            http_url
        };
        let body =
            json!({"url": format!("{root}/{name}"), "events": ["BenchEvent"], "description": name, "timeout": "1s"});
        let created = client
            .post(format!("{base}/admin/v1/account/bench/webhook/endpoint"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(created.status() == 201, "adding the endpoint {name}");
        let created: Value = created.json().await?;
        ids.insert(
            (*name).to_owned(),
            created["id"].as_str().context("an endpoint id")?.to_owned(),
        );
    }
    Ok(())
}

/// Publishes at `rate` for `length`, numbering events from `first`; returns the numbers the
/// API acknowledged (201), with when each was sent. A refusal or no answer (the server is
/// down) is not acknowledged, and is not retried: the client did not get its 201.
async fn publish_for(
    client: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
    rate: u32,
    length: Duration,
    first: u64,
) -> anyhow::Result<Vec<u64>> {
    let pace = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = Instant::now();
    let mut acked = Vec::new();
    let mut n = first;
    while started.elapsed() < length {
        tokio::time::sleep_until((started + pace * (n - first) as u32).into()).await;
        let sent = Instant::now();
        receiver.sent.lock().expect("never poisoned").insert(n, sent);
        let body = json!({"event": "BenchEvent", "data": {"n": n}});
        let answer = client
            .post(format!("{base}/admin/v1/account/bench/event"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await;
        if let Some(answer) = answer.ok().filter(|a| a.status() == 201) {
            acked.push(n);
            // The id is only for the report of a failed run: an answer cut short by a kill
            // after its 201 still counts as acknowledged.
            if let Some(id) = answer
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| Some(v["id"].as_str()?.to_owned()))
            {
                receiver.ids.lock().expect("never poisoned").insert(n, id);
            }
        }
        n += 1;
    }
    Ok(acked)
}

/// Waits until every endpoint of `endpoints` has had a call for every event of `acked`;
/// returns how long that took.
async fn settle(receiver: &Receiver, acked: &[u64], endpoints: &[&str], within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let missing = missing(receiver, acked, endpoints);
        if missing == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!("{missing} deliveries still missing after {} s", within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many of `acked`'s events some endpoint of `endpoints` has not had a call for.
fn missing(receiver: &Receiver, acked: &[u64], endpoints: &[&str]) -> usize {
    endpoints.iter().map(|e| missing_at(receiver, acked, e).len()).sum()
}

/// The events of `acked` that `endpoint` has not had a call for.
fn missing_at(receiver: &Receiver, acked: &[u64], endpoint: &str) -> Vec<u64> {
    let arrivals = receiver.arrivals.lock().expect("never poisoned");
    let seen: HashSet<u64> = arrivals
        .iter()
        .filter(|a| a.endpoint == endpoint)
        .filter_map(|a| a.n)
        .collect();
    acked.iter().copied().filter(|n| !seen.contains(n)).collect()
}

/// For a failed run, where Herald says the missing deliveries stand: per healthy endpoint, its
/// state, and for each missing event whether it was never called, is waiting after failed
/// calls, or was given up, from the endpoint's call history; then a few of them.
async fn explain_missing(
    client: &reqwest::Client,
    base: &str,
    receiver: &Receiver,
    endpoints: &HashMap<String, String>,
    acked: &[u64],
) -> anyhow::Result<()> {
    let get = |url: String| async move {
        let answer = client.get(url).bearer_auth(TOKEN).send().await?.error_for_status()?;
        anyhow::Ok(answer.json::<Value>().await?)
    };
    let ids = receiver.ids.lock().expect("never poisoned").clone();
    for name in HEALTHY {
        let missing = missing_at(receiver, acked, name);
        if missing.is_empty() {
            continue;
        }
        let id = &endpoints[name];
        let endpoint = get(format!("{base}/admin/v1/account/bench/webhook/endpoint/{id}")).await?;
        // Each event's calls to this endpoint: how many, and the last (the history is newest
        // first).
        let mut calls: HashMap<String, (usize, Value)> = HashMap::new();
        let mut page = format!("{base}/admin/v1/account/bench/webhook/task?endpoint={id}&limit=100");
        loop {
            let answer = get(page).await?;
            let items = answer["items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                let event = item["event_id"].as_str().unwrap_or_default().to_owned();
                calls.entry(event).or_insert_with(|| (0, item.clone())).0 += 1;
            }
            match answer["_next"].as_str() {
                Some(next) if !next.is_empty() && !items.is_empty() => page = format!("{base}{next}"),
                _ => break,
            }
        }
        let (mut never, mut waiting, mut given_up, mut unknown) = (0, 0, 0, 0);
        for n in &missing {
            match ids.get(n).map(|id| calls.get(id)) {
                None => unknown += 1,
                Some(None) => never += 1,
                Some(Some((_, last))) if last["delivery"] == "failed" => given_up += 1,
                Some(Some(_)) => waiting += 1,
            }
        }
        println!(
            "  {name}: {} missing; the endpoint {}, {} failures in a row; {never} never called, {waiting} pending after failed calls, {given_up} given up, {unknown} without the id of their event",
            missing.len(),
            endpoint["state"],
            endpoint["consecutive_failures"],
        );
        for n in missing.iter().take(3) {
            let id = ids.get(n).map_or("(no id: its answer was cut short)", String::as_str);
            match calls.get(id) {
                None => println!("    event {n} {id}: no call recorded"),
                Some((count, last)) => println!(
                    "    event {n} {id}: {count} calls, the last at {} (attempt {}): {}; delivery {}",
                    last["datetime"], last["attempt"], last["error"], last["delivery"]
                ),
            }
        }
    }
    Ok(())
}

/// The 99th percentile of publish-to-first-call over these events and endpoints.
fn p99(receiver: &Receiver, acked: &[u64], endpoints: &[&str]) -> Duration {
    let sent = receiver.sent.lock().expect("never poisoned");
    let arrivals = receiver.arrivals.lock().expect("never poisoned");
    let wanted: HashSet<u64> = acked.iter().copied().collect();
    let mut first: HashMap<(&str, u64), Instant> = HashMap::new();
    for arrival in arrivals.iter() {
        let Some(n) = arrival.n.filter(|n| wanted.contains(n)) else {
            continue;
        };
        if endpoints.contains(&arrival.endpoint.as_str()) {
            first.entry((arrival.endpoint.as_str(), n)).or_insert(arrival.at);
        }
    }
    let mut latencies: Vec<Duration> = first
        .iter()
        .filter_map(|((_, n), at)| Some(at.saturating_duration_since(*sent.get(n)?)))
        .collect();
    latencies.sort_unstable();
    latencies
        .get(((latencies.len() as f64 - 1.0) * 0.99).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// Polls the failing and the gone endpoint's state every 100 ms.
async fn watch_states(client: reqwest::Client, base: String, ids: HashMap<String, String>, watch: Arc<Mutex<Watch>>) {
    let state = |name: &str| {
        let url = format!("{base}/admin/v1/account/bench/webhook/endpoint/{}", ids[name]);
        let client = client.clone();
        async move {
            let answer = client.get(url).bearer_auth(TOKEN).send().await.ok()?;
            answer.json::<Value>().await.ok()
        }
    };
    loop {
        let asked = Instant::now();
        if let Some(failing) = state("failing").await {
            if failing["state"] == "suspended" {
                // `suspended_until` is a date-time to the second; the check leaves a second.
                let until = failing["suspended_until"].as_str().and_then(parse_datetime);
                if let Some(until) = until {
                    watch.lock().expect("never poisoned").suspended.push((asked, until));
                }
            }
        }
        if let Some(gone) = state("gone").await {
            if gone["state"] == "disabled" {
                let mut watch = watch.lock().expect("never poisoned");
                watch.disabled_at.get_or_insert(asked);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A UTC `YYYY-MM-DD HH:MM:SS` (the server's default time zone) as an `Instant` of this
/// process.
fn parse_datetime(text: &str) -> Option<Instant> {
    let at: jiff::civil::DateTime = text.parse().ok()?;
    let at = at.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let ahead = at.duration_since(now);
    let ahead = Duration::try_from(ahead).unwrap_or(Duration::ZERO);
    Some(Instant::now() + ahead)
}

/// What the checks found.
struct Report {
    due: usize,
    delivered: usize,
    lost: usize,
    duplicates: usize,
    failing_calls: usize,
    calls_while_suspended: usize,
    gone_calls: usize,
    calls_after_disabled: usize,
    disabled_never: bool,
}

impl Report {
    fn of(receiver: &Receiver, watch: &Watch, acked: &[u64]) -> Report {
        let lost = missing(receiver, acked, &HEALTHY);
        let arrivals = receiver.arrivals.lock().expect("never poisoned");
        let wanted: HashSet<u64> = acked.iter().copied().collect();
        // On the endpoints that always answer 200, a second call of an event is a duplicate
        // delivery (the others' are retries of failed calls).
        let mut calls: HashMap<(&str, u64), usize> = HashMap::new();
        for arrival in arrivals.iter() {
            if let Some(n) = arrival.n.filter(|n| wanted.contains(n)) {
                if STEADY.contains(&arrival.endpoint.as_str()) {
                    *calls.entry((arrival.endpoint.as_str(), n)).or_default() += 1;
                }
            }
        }
        let duplicates = calls.values().map(|c| c - 1).sum();
        let of = |name: &str| arrivals.iter().filter(|a| a.endpoint == name).collect::<Vec<_>>();
        let failing = of("failing");
        // A call inside a window Herald reported as suspended, more than a second from both
        // ends (polling and `suspended_until`'s whole seconds), is one the suspension should
        // have held back; the probe comes at the window's end.
        let slack = Duration::from_secs(1);
        let calls_while_suspended = failing
            .iter()
            .filter(|a| {
                watch
                    .suspended
                    .iter()
                    .any(|(seen, until)| a.at > *seen + slack && a.at + slack < *until)
            })
            .count();
        let gone = of("gone");
        let calls_after_disabled = watch.disabled_at.map_or(0, |at| {
            gone.iter().filter(|a| a.at > at + Duration::from_millis(100)).count()
        });
        Report {
            due: acked.len() * HEALTHY.len(),
            delivered: acked.len() * HEALTHY.len() - lost,
            lost,
            duplicates,
            failing_calls: failing.len(),
            calls_while_suspended,
            gone_calls: gone.len(),
            calls_after_disabled,
            disabled_never: watch.disabled_at.is_none(),
        }
    }
}
