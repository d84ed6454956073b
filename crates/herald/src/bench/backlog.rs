//! `herald bench --backlog`: a large backlog, then its drain. Events are published while their
//! one endpoint is down (it answers 503, so it is soon suspended and its deliveries wait);
//! then the endpoint comes back and is resumed by hand, as support would after an incident.
//! Reported: the drain rate, the server's memory throughout, and how fast the call history
//! answers while the backlog drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use super::database::Database;
use super::{BenchArgs, Received, TOKEN, setup, spawn_publishers, start_nodes};

/// The endpoint: down (503) until it is brought back; counts each event's first call.
struct Endpoint {
    up: AtomicBool,
    first_calls: AtomicUsize,
    seen: Vec<AtomicBool>,
}

async fn receive(State(endpoint): State<Arc<Endpoint>>, body: Bytes) -> StatusCode {
    if !endpoint.up.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["n"].as_u64())
        .map(|n| n as usize);
    if let Some(seen) = n.and_then(|n| endpoint.seen.get(n)) {
        if !seen.swap(true, Ordering::Relaxed) {
            endpoint.first_calls.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::OK
}

/// The server's resident memory, sampled in each phase, in KiB.
#[derive(Default)]
struct Memory {
    most_publishing: u64,
    most_draining: u64,
}

/// Runs the backlog benchmark and prints its report.
pub(super) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes == 1, "--backlog runs one node");
    let database = Database::from_args(&args)?;
    let endpoint = Arc::new(Endpoint {
        up: AtomicBool::new(false),
        first_calls: AtomicUsize::new(0),
        seen: (0..args.events).map(|_| AtomicBool::new(false)).collect(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(endpoint.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let nodes = start_nodes(&client, &database.url, 1).await?;
    let node = &nodes[0];
    let one = BenchArgs {
        endpoints: 1,
        failing: 0,
        operational: false,
        ..args.clone()
    };
    setup(&client, &node.base, &receiver_url, &one).await?;
    let mut memory = Memory::default();

    // The backlog: every event published while the endpoint is down.
    let received = Arc::new(Received {
        sent: (0..args.events).map(|_| AtomicU64::new(0)).collect(),
        answered: (0..args.events).map(|_| AtomicU64::new(0)).collect(),
        latency: Vec::new(),
        calls: AtomicUsize::new(0),
        told: AtomicUsize::new(0),
        started: Instant::now(),
    });
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let publishers = spawn_publishers(
        &one,
        &client,
        std::slice::from_ref(&node.base),
        &next,
        &received,
        started,
    );
    let mut last_line = Instant::now();
    while !publishers.iter().all(|p| p.is_finished()) {
        memory.most_publishing = memory.most_publishing.max(node.rss_kib()?);
        if last_line.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "{} of {} published",
                next.load(Ordering::Relaxed).min(args.events),
                args.events
            );
            last_line = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for publisher in publishers {
        publisher.await??;
    }
    let published_in = started.elapsed();

    // The endpoint comes back, and is resumed by hand.
    endpoint.up.store(true, Ordering::Relaxed);
    let endpoint_path = endpoint_path(&client, &node.base).await?;
    let resumed = client
        .post(format!("{}{endpoint_path}/resume", node.base))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    anyhow::ensure!(resumed.status() == 200, "resuming answered {}", resumed.status());
    let drain_started = Instant::now();
    let reading = Arc::new(AtomicBool::new(true));
    let reader = tokio::spawn(read_history(client.clone(), node.base.clone(), reading.clone()));
    let mut last_line = Instant::now();
    loop {
        memory.most_draining = memory.most_draining.max(node.rss_kib()?);
        let delivered = endpoint.first_calls.load(Ordering::Relaxed);
        if delivered >= args.events {
            break;
        }
        if last_line.elapsed() > Duration::from_secs(5) {
            eprintln!("{delivered} of {} delivered", args.events);
            last_line = Instant::now();
        }
        if drain_started.elapsed() > Duration::from_secs(3600) {
            bail!(
                "the backlog did not drain within an hour ({delivered} of {})",
                args.events
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_in = drain_started.elapsed();
    reading.store(false, Ordering::Relaxed);
    let mut history = reader.await??;
    let peak = node.peak_kib()?;
    report(&args, &database, published_in, drained_in, &memory, peak, &mut history);
    Ok(())
}

/// The endpoint's path on the admin API.
async fn endpoint_path(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let listed: serde_json::Value = client
        .get(format!("{base}/admin/v1/account/bench/webhook/endpoint"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let id = listed["items"][0]["id"].as_str().context("the endpoint's id")?;
    Ok(format!("/admin/v1/account/bench/webhook/endpoint/{id}"))
}

/// Reads the first page of the call history, as a customer checking on the drain would, one
/// request after another until told to stop; returns each answer's time.
async fn read_history(
    client: reqwest::Client,
    base: String,
    reading: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::new();
    while reading.load(Ordering::Relaxed) {
        let asked = Instant::now();
        let page = client
            .get(format!("{base}/restapi/v1/webhook/task?limit=20"))
            .basic_auth("bench", Some("bench-password"))
            .send()
            .await?;
        anyhow::ensure!(page.status() == 200, "the history answered {}", page.status());
        page.bytes().await?;
        times.push(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(times)
}

fn report(
    args: &BenchArgs,
    database: &Database,
    published_in: Duration,
    drained_in: Duration,
    memory: &Memory,
    peak: u64,
    history: &mut [Duration],
) {
    history.sort_unstable();
    let pick = |q: f64| {
        history
            .get(((history.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "herald bench --backlog: {} events to one endpoint that was down, {}",
        args.events,
        database.kind()
    );
    println!(
        "  published while down    {:>8.0} events/s  ({:.1} s)",
        args.events as f64 / published_in.as_secs_f64(),
        published_in.as_secs_f64()
    );
    println!(
        "  drained once back       {:>8.0} calls/s   ({:.1} s)",
        args.events as f64 / drained_in.as_secs_f64(),
        drained_in.as_secs_f64()
    );
    println!(
        "  server memory           most {:.0} MiB publishing, {:.0} MiB draining; peak {:.0} MiB",
        mib(memory.most_publishing),
        mib(memory.most_draining),
        mib(peak)
    );
    println!(
        "  history page (limit 20) while draining: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} reads)",
        pick(0.5),
        pick(0.99),
        pick(1.0),
        history.len()
    );
}
