//! `herald bench`: starts a real Herald (this binary, `serve`, as a child process) on a
//! temporary SQLite database with a fast local receiver, publishes events through the public
//! API with some concurrency, and reports the ingest rate, end-to-end deliveries per second,
//! event-to-call latency, CPU per event and the server's memory.
//!
//! Latency runs from the moment the event's API call is sent to the moment the receiver
//! gets the call; each event carries its sequence number in `data.n` to match the two.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::json;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// How many events to publish
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// API calls in flight at once
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Publish at this many events per second instead of as fast as possible
    #[arg(long)]
    pub rate: Option<u32>,
    /// Endpoints subscribed to every event (each event is delivered to each)
    #[arg(long, default_value_t = 1)]
    pub endpoints: usize,
}

const TOKEN: &str = "bench-admin-token";

/// What the receiver counts.
struct Received {
    /// When each event's API call was sent, in microseconds since the start.
    sent: Vec<AtomicU64>,
    /// Latency of each call, in microseconds, by event; 0 until it arrives.
    latency: Vec<AtomicU64>,
    calls: AtomicUsize,
    started: Instant,
}

impl Received {
    fn since_start(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> &'static str {
    let now = received.since_start();
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["n"].as_u64());
    if let Some(n) = n.map(|n| n as usize).filter(|n| *n < received.sent.len()) {
        let sent = received.sent[n].load(Ordering::Relaxed);
        let _ = received.latency[n].compare_exchange(
            0,
            now.saturating_sub(sent).max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    received.calls.fetch_add(1, Ordering::Relaxed);
    "ok"
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let received = Arc::new(Received {
        sent: (0..args.events).map(|_| AtomicU64::new(0)).collect(),
        latency: (0..args.events).map(|_| AtomicU64::new(0)).collect(),
        calls: AtomicUsize::new(0),
        started: Instant::now(),
    });
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_url = format!("http://{}/hook", receiver.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server::start(&dir, port)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    wait_healthy(&client, &base).await?;
    setup(&client, &base, &receiver_url, args.endpoints).await?;

    let cpu_before = (server.cpu()?, own_cpu()?);
    let expected_calls = args.events * args.endpoints;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, base, next, received) = (client.clone(), base.clone(), next.clone(), received.clone());
        let pace = args.rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
        publishers.push(tokio::spawn(async move {
            publish(client, base, next, received, pace, started).await
        }));
    }
    let mut memory = Vec::new();
    let mut ingest_done = None;
    loop {
        let calls = received.calls.load(Ordering::Relaxed);
        let published = next.load(Ordering::Relaxed).min(args.events);
        progress(published, calls, expected_calls, started.elapsed());
        if ingest_done.is_none() && publishers.iter().all(|p| p.is_finished()) {
            ingest_done = Some(started.elapsed());
        }
        let quarter = (calls * 4 / expected_calls.max(1)).min(4);
        if memory.len() < quarter {
            memory.push(server.rss_kib()?);
        }
        if calls >= expected_calls {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("not every call arrived within 10 minutes ({calls} of {expected_calls})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed();
    for publisher in publishers {
        publisher.await??;
    }
    let ingest = ingest_done.unwrap_or(total);
    let server_cpu = server.cpu()? - cpu_before.0;
    let bench_cpu = own_cpu()? - cpu_before.1;
    let peak = server.peak_kib()?;
    server.stop();
    eprintln!();

    let mut latencies: Vec<u64> = received
        .latency
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .filter(|l| *l > 0)
        .collect();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "herald bench: {} events x {} endpoint(s), {} publishers{}",
        args.events,
        args.endpoints,
        args.concurrency,
        args.rate
            .map(|r| format!(", paced at {r} events/s"))
            .unwrap_or_default()
    );
    println!(
        "  ingest (API)         {:>10.0} events/s   ({:.2} s)",
        args.events as f64 / ingest.as_secs_f64(),
        ingest.as_secs_f64()
    );
    println!(
        "  delivered end to end {:>10.0} calls/s    ({:.2} s)",
        expected_calls as f64 / total.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "  event-to-call        p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / expected_calls as f64;
    println!(
        "  CPU per delivered    {:.3} ms (server {:.3} ms, load generator and receiver {:.3} ms)",
        per_call(server_cpu + bench_cpu),
        per_call(server_cpu),
        per_call(bench_cpu)
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    let samples: Vec<String> = memory.iter().map(|k| format!("{:.0}", mib(*k))).collect();
    println!(
        "  server memory        peak {:.0} MiB; at 25/50/75/100 % delivered: {} MiB",
        mib(peak),
        samples.join(" / ")
    );
    Ok(())
}

/// Publishes events until `next` passes the end, optionally paced.
async fn publish(
    client: reqwest::Client,
    base: String,
    next: Arc<AtomicUsize>,
    received: Arc<Received>,
    pace: Option<Duration>,
    started: Instant,
) -> anyhow::Result<()> {
    let url = format!("{base}/admin/v1/account/bench/event");
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= received.sent.len() {
            return Ok(());
        }
        if let Some(pace) = pace {
            // Event n is due at n × pace from the start, whichever publisher sends it.
            let due = started + pace * n as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        received.sent[n].store(received.since_start(), Ordering::Relaxed);
        let body = json!({"event": "BenchEvent", "data": {"n": n}});
        let response = client.post(&url).bearer_auth(TOKEN).json(&body).send().await?;
        if response.status() != 201 {
            bail!(
                "publishing answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
    }
}

async fn setup(client: &reqwest::Client, base: &str, receiver: &str, endpoints: usize) -> anyhow::Result<()> {
    let admin = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let account = admin(
        "/admin/v1/account",
        json!({"login": "bench", "password": "bench-password"}),
    )
    .await?;
    anyhow::ensure!(
        account.status() == 201,
        "creating the account: {}",
        account.text().await?
    );
    let event_type = json!({"name": "BenchEvent", "description": "A benchmark event."});
    anyhow::ensure!(
        admin("/admin/v1/event-type", event_type).await?.status() == 201,
        "registering the event type"
    );
    for _ in 0..endpoints {
        let endpoint = json!({"url": receiver, "events": ["*"]});
        let created = admin("/admin/v1/account/bench/webhook/endpoint", endpoint).await?;
        anyhow::ensure!(
            created.status() == 201,
            "creating an endpoint: {}",
            created.text().await?
        );
    }
    Ok(())
}

/// Waits until a server that runs in another process answers `/healthz` (it can only be
/// watched from outside), for at most 30 s. The benchmark and the tests that start the real
/// binary use it.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            bail!("the server at {base} did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn progress(published: usize, calls: usize, expected: usize, elapsed: Duration) {
    const WIDTH: usize = 40;
    let done = calls * WIDTH / expected.max(1);
    let bar: String = "#".repeat(done) + &"-".repeat(WIDTH - done);
    eprint!(
        "\r[{bar}] {calls}/{expected} delivered, {published} published, {:.1} s ",
        elapsed.as_secs_f64()
    );
    let _ = std::io::stderr().flush();
}

/// The server under test, a child process of this one.
struct Server {
    child: Child,
}

impl Server {
    fn start(dir: &TempDir, port: u16) -> anyhow::Result<Server> {
        let database = format!("sqlite://{}", dir.0.join("bench.db").display());
        let child = Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                &database,
                "--admin-token",
                TOKEN,
            ])
            .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
            .env("HERALD_RATE_LIMIT_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting the server")?;
        Ok(Server { child })
    }

    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .context("no such field in /proc status")?;
        Ok(line.split_whitespace().nth(1).context("a number")?.parse()?)
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    fn peak_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.child.id()))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server never outlives the benchmark, whatever ends it.
impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// User and system CPU time of a process, from `/proc/PID/stat`.
fn cpu_of(path: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a stat line")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

fn own_cpu() -> anyhow::Result<Duration> {
    cpu_of("/proc/self/stat")
}

/// A folder removed when the benchmark ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("herald-bench-{}", crate::ids::ulid(0)));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}
