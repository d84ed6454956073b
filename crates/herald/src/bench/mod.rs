//! `herald bench`: starts real Herald nodes (this binary, `serve`, as child processes) with a
//! fast local receiver, publishes events through the public API with some concurrency, and
//! reports the ingest rate, end-to-end deliveries per second, event-to-call latency, CPU per
//! event and the nodes' memory.
//!
//! The database is a temporary SQLite file unless `--database` names another. On PostgreSQL,
//! `--nodes` starts several nodes that share the deliveries, the publishers spread their calls
//! over them, and the report adds the CPU of the PostgreSQL cluster when it runs on this
//! machine.
//!
//! `--database-delay` puts a relay between the nodes and PostgreSQL that holds every packet
//! for a while each way, as a database on another machine would be (see `far`).
//!
//! Latency runs from the moment the event's API call is sent to the moment the receiver
//! gets the call; each event carries its sequence number in `data.n` to match the two.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::json;
use tokio::task::JoinHandle;

mod backlog;
mod dashboard;
mod database;
mod far;
mod processes;
mod soak;

use crate::domain::operational::OPERATIONAL;
use database::{Database, inspect_postgres};
use processes::{PostgresCpu, Server, own_cpu, servers_cpu};

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
    /// How many of the endpoints answer every call with a 500 (their calls are not counted
    /// as delivered: they are retried, and their endpoints suspended)
    #[arg(long, default_value_t = 0)]
    pub failing: usize,
    /// Adds an endpoint that names every operational event (EndpointSuspended, …), to
    /// measure what telling them costs
    #[arg(long)]
    pub operational: bool,
    /// Gives every endpoint a filter that every event passes, to measure what testing
    /// filters at fan-out costs
    #[arg(long)]
    pub filtered: bool,
    /// Gives every endpoint this rate limit (calls per second), to measure what pacing costs
    /// when the limit is above the load
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit: Option<u32>,
    /// Publishes the events while their one endpoint is down, then brings it back: reports
    /// the drain rate, the server's memory, and the history's latency while it drains
    #[arg(long)]
    pub backlog: bool,
    /// Fills the call history with the events, then times each dashboard page, signed in as
    /// the account
    #[arg(long)]
    pub dashboard: bool,
    /// Runs the chaos soak for this long ("2m", "30m"): misbehaving endpoints, the server
    /// killed and restarted at random moments, and checks that nothing is lost
    #[arg(long, value_name = "DURATION", value_parser = parse_soak)]
    pub soak: Option<Duration>,
    /// With --soak on PostgreSQL: a shell command that restarts the cluster, run at every
    /// other kill (e.g. "scripts/pg restart DIR")
    #[arg(long, value_name = "COMMAND")]
    pub postgres_restart: Option<String>,
    /// The nodes' database: sqlite://PATH, or postgres://… naming an empty database (create
    /// a fresh one for each run) [default: a temporary SQLite file]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Herald nodes to start on the database; publisher i calls node i % N (more than one
    /// needs PostgreSQL)
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Puts the PostgreSQL database this many milliseconds away from the nodes, each way
    /// (0.25: a round trip gains half a millisecond), through a relay in the bench, as a
    /// database on another machine would be; the relay's CPU counts as the bench's
    #[arg(long, value_name = "MS", value_parser = parse_delay)]
    pub database_delay: Option<Duration>,
}

const TOKEN: &str = "bench-admin-token";

/// What the receiver counts.
struct Received {
    /// When each event's API call was sent, in microseconds since the start.
    sent: Vec<AtomicU64>,
    /// How long the API took to answer each event's call, in microseconds.
    answered: Vec<AtomicU64>,
    /// Latency of each call, in microseconds, by event; 0 until it arrives.
    latency: Vec<AtomicU64>,
    calls: AtomicUsize,
    /// Operational events received (with `--operational`).
    told: AtomicUsize,
    started: Instant,
}

/// A `--soak` duration, as the configuration writes them ("2m").
fn parse_soak(text: &str) -> Result<Duration, String> {
    let duration = crate::config::parse_duration(text)?;
    if duration < Duration::from_secs(30) {
        return Err("a soak runs for 30s at least".into());
    }
    Ok(duration)
}

/// A `--database-delay`: milliseconds, a fraction allowed.
fn parse_delay(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(ms) if (0.0..=1000.0).contains(&ms) => Ok(Duration::from_secs_f64(ms / 1000.0)),
        _ => Err(format!(
            "expected milliseconds from 0 to 1000, such as 0.25, found {text:?}"
        )),
    }
}

impl Received {
    /// Counts for `events` events, with their latencies.
    fn new(events: usize) -> Received {
        Received {
            sent: (0..events).map(|_| AtomicU64::new(0)).collect(),
            answered: (0..events).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..events).map(|_| AtomicU64::new(0)).collect(),
            calls: AtomicUsize::new(0),
            told: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

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

/// A failing endpoint's receiver.
async fn fail() -> (axum::http::StatusCode, &'static str) {
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
}

/// The receiver of the endpoint that names the operational events.
async fn told(State(received): State<Arc<Received>>) -> &'static str {
    received.told.fetch_add(1, Ordering::Relaxed);
    "ok"
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

/// What a run measured, for the report.
struct Measured {
    /// Until the last event was accepted by the API.
    ingest: Duration,
    /// Until the last call arrived.
    total: Duration,
    /// Every herald node together.
    server_cpu: Duration,
    /// This process: the publishers and the receiver.
    bench_cpu: Duration,
    /// The PostgreSQL cluster's CPU and how many of its processes were seen, when measured.
    postgres_cpu: Option<(Duration, usize)>,
    /// Each node's peak resident memory, in KiB.
    peaks: Vec<u64>,
    /// Each node's resident memory (inner, by node) at 25, 50, 75 and 100 % delivered.
    memory: Vec<Vec<u64>>,
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.backlog {
        return backlog::run(args).await;
    }
    if args.dashboard {
        return dashboard::run(args).await;
    }
    if let Some(duration) = args.soak {
        return soak::run(args.clone(), duration).await;
    }
    let database = Database::from_args(&args)?;
    let mut postgres_cpu = None;
    if database.postgres {
        postgres_cpu = inspect_postgres(&database.url).await?.map(PostgresCpu::new);
    }
    // The nodes reach the database through the relay; the bench's own look at it (above) and
    // the cluster's CPU do not.
    let nodes_database = match args.database_delay {
        Some(delay) => far::relay(&database.url, delay)?,
        None => database.url.clone(),
    };
    let received = Arc::new(Received::new(args.events));
    let receiver_url = start_receiver(received.clone()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let mut nodes = start_nodes(&client, &nodes_database, args.nodes).await?;
    setup(&client, &nodes[0].base, &receiver_url, &args).await?;

    let cpu_before = (servers_cpu(&nodes)?, own_cpu()?);
    if let Some(postgres) = &mut postgres_cpu {
        postgres.begin();
    }
    let expected_calls = args.events * healthy(&args);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let mut publishers = spawn_publishers(&args, &client, &bases, &next, &received, started);
    let mut memory = Vec::new();
    let mut ingest_done = None;
    let mut progress = Progress::new();
    loop {
        let calls = received.calls.load(Ordering::Relaxed);
        let published = next.load(Ordering::Relaxed).min(args.events);
        progress.show(published, calls, expected_calls, started.elapsed());
        if ingest_done.is_none() && publishers.iter().all(|p| p.is_finished()) {
            ingest_done = Some(started.elapsed());
            // A publisher stops at its first refused event, whose calls will never come: say
            // why now rather than wait for them.
            for publisher in publishers.drain(..) {
                publisher.await??;
            }
        }
        let quarter = (calls * 4 / expected_calls.max(1)).min(4);
        if memory.len() < quarter {
            memory.push(nodes.iter().map(Server::rss_kib).collect::<anyhow::Result<_>>()?);
        }
        // Often, so that a PostgreSQL backend that exits still counts up to its last sample.
        if let Some(postgres) = &mut postgres_cpu {
            postgres.sample();
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
    let measured = Measured {
        ingest: ingest_done.unwrap_or(total),
        total,
        server_cpu: servers_cpu(&nodes)? - cpu_before.0,
        bench_cpu: own_cpu()? - cpu_before.1,
        postgres_cpu: postgres_cpu.as_mut().map(|p| {
            p.sample();
            p.used()
        }),
        peaks: nodes.iter().map(Server::peak_kib).collect::<anyhow::Result<_>>()?,
        memory,
    };
    for node in &mut nodes {
        node.stop();
    }
    if progress.terminal {
        // The bar's line ends here.
        eprintln!();
    }
    report(&args, &database, &received, &measured);
    Ok(())
}

/// Starts the receiver on a free loopback port and returns its URL.
async fn start_receiver(received: Arc<Received>) -> anyhow::Result<String> {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", receiver.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .route("/fail", post(fail))
        .route("/told", post(told))
        .with_state(received);
    tokio::spawn(async move { axum::serve(receiver, app).await });
    Ok(url)
}

/// The endpoints whose calls are delivered and counted.
fn healthy(args: &BenchArgs) -> usize {
    args.endpoints.saturating_sub(args.failing)
}

/// Starts `count` nodes on `database` and waits until each is healthy. The first starts
/// alone, so that it has migrated the database before the others open it.
async fn start_nodes(client: &reqwest::Client, database: &str, count: usize) -> anyhow::Result<Vec<Server>> {
    let mut nodes = vec![Server::start(database)?];
    wait_healthy(client, &nodes[0].base).await?;
    for _ in 1..count {
        nodes.push(Server::start(database)?);
    }
    for node in &nodes[1..] {
        wait_healthy(client, &node.base).await?;
    }
    Ok(nodes)
}

/// One task per unit of concurrency; publisher i calls node i % N, so that the API load is
/// spread evenly over the nodes.
fn spawn_publishers(
    args: &BenchArgs,
    client: &reqwest::Client,
    bases: &[String],
    next: &Arc<AtomicUsize>,
    received: &Arc<Received>,
    started: Instant,
) -> Vec<JoinHandle<anyhow::Result<()>>> {
    let pace = args.rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    (0..args.concurrency)
        .map(|i| {
            let (client, base, next, received) = (
                client.clone(),
                bases[i % bases.len()].clone(),
                next.clone(),
                received.clone(),
            );
            tokio::spawn(async move { publish(client, base, next, received, pace, started).await })
        })
        .collect()
}

/// The value at quantile `q` of `sorted` (0 when it is empty).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

/// The p99 of each second of a paced run, told as the median second's and the worst one's.
#[derive(Debug, PartialEq)]
struct BySecond {
    median: u64,
    worst: u64,
    /// Which second was the worst, from 0.
    worst_second: usize,
    seconds: usize,
}

/// The event-to-call p99 of each second of a run published at `rate` events/s, from the
/// latencies in publishing order (0 where no call came): a tail spread over the whole run and
/// one from a stall that comes back every few seconds, or only at the start, have the same
/// p99 over the run, but not over its seconds.
fn p99_by_second(in_order: &[u64], rate: u32) -> Option<BySecond> {
    let mut p99s: Vec<(u64, usize)> = in_order
        .chunks(rate.max(1) as usize)
        .enumerate()
        .filter_map(|(second, chunk)| {
            let mut arrived: Vec<u64> = chunk.iter().copied().filter(|l| *l > 0).collect();
            arrived.sort_unstable();
            (!arrived.is_empty()).then(|| (quantile(&arrived, 0.99), second))
        })
        .collect();
    let seconds = p99s.len();
    let &(worst, worst_second) = p99s
        .iter()
        .max_by_key(|(p99, second)| (*p99, std::cmp::Reverse(*second)))?;
    p99s.sort_unstable();
    Some(BySecond {
        median: p99s[seconds / 2].0,
        worst,
        worst_second,
        seconds,
    })
}

fn report(args: &BenchArgs, database: &Database, received: &Received, measured: &Measured) {
    let expected_calls = args.events * healthy(args);
    let in_order: Vec<u64> = received.latency.iter().map(|l| l.load(Ordering::Relaxed)).collect();
    let mut latencies: Vec<u64> = in_order.iter().copied().filter(|l| *l > 0).collect();
    latencies.sort_unstable();
    let pick = |q: f64| quantile(&latencies, q);
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "herald bench: {} events x {} endpoint(s), {} publishers{}, {}, {} node(s)",
        args.events,
        args.endpoints,
        args.concurrency,
        args.rate
            .map(|r| format!(", paced at {r} events/s"))
            .unwrap_or_default(),
        database.kind(),
        args.nodes
    );
    if let Some(delay) = args.database_delay {
        println!(
            "  the database {:.2} ms away each way (a relay in the bench, whose CPU counts as its own)",
            delay.as_secs_f64() * 1000.0
        );
    }
    if args.filtered {
        println!("  every endpoint has a filter that every event passes");
    }
    if let Some(limit) = args.rate_limit {
        println!("  every endpoint has a rate limit of {limit} calls/s");
    }
    if args.failing > 0 || args.operational {
        println!(
            "  {} of the endpoints failing (calls to them not counted); {}",
            args.failing,
            match args.operational {
                true => format!(
                    "an endpoint naming the operational events got {}",
                    received.told.load(Ordering::Relaxed)
                ),
                false => "no endpoint names the operational events".into(),
            }
        );
    }
    println!(
        "  ingest (API)         {:>10.0} events/s   ({:.2} s)",
        args.events as f64 / measured.ingest.as_secs_f64(),
        measured.ingest.as_secs_f64()
    );
    let mut answered: Vec<u64> = received.answered.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    answered.sort_unstable();
    println!(
        "  API answer           p50 {:.1} ms   p99 {:.1} ms",
        ms(quantile(&answered, 0.5)),
        ms(quantile(&answered, 0.99))
    );
    println!(
        "  delivered end to end {:>10.0} calls/s    ({:.2} s)",
        expected_calls as f64 / measured.total.as_secs_f64(),
        measured.total.as_secs_f64()
    );
    println!(
        "  event-to-call        p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    if let Some(by_second) = args.rate.and_then(|rate| p99_by_second(&in_order, rate)) {
        println!(
            "  p99 of each second   median {:.1} ms   worst {:.1} ms (second {} of {})",
            ms(by_second.median),
            ms(by_second.worst),
            by_second.worst_second + 1,
            by_second.seconds
        );
    }
    let per_call = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / expected_calls as f64;
    let postgres = measured.postgres_cpu.map(|(cpu, _)| cpu).unwrap_or_default();
    let server = match args.nodes {
        1 => "server".to_string(),
        n => format!("{n} servers"),
    };
    println!(
        "  CPU per delivered    {:.3} ms ({server} {:.3} ms, load generator and receiver {:.3} ms{})",
        per_call(measured.server_cpu + measured.bench_cpu + postgres),
        per_call(measured.server_cpu),
        per_call(measured.bench_cpu),
        match measured.postgres_cpu {
            Some(_) => format!(", PostgreSQL {:.3} ms", per_call(postgres)),
            None => String::new(),
        }
    );
    match measured.postgres_cpu {
        Some((cpu, processes)) => println!(
            "  PostgreSQL CPU       {:.3} ms per delivered call ({:.1} s over {processes} processes of its cluster)",
            per_call(cpu),
            cpu.as_secs_f64()
        ),
        None if database.postgres => println!("  PostgreSQL CPU       not measured: its server is not on this machine"),
        None => {}
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (i, peak) in measured.peaks.iter().enumerate() {
        let samples: Vec<String> = measured.memory.iter().map(|m| format!("{:.0}", mib(m[i]))).collect();
        let label = match args.nodes {
            1 => "server memory".to_string(),
            _ => format!("node {i} memory"),
        };
        println!(
            "  {label:<20} peak {:.0} MiB; at 25/50/75/100 % delivered: {} MiB",
            mib(*peak),
            samples.join(" / ")
        );
    }
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
        let sent = received.since_start();
        received.sent[n].store(sent, Ordering::Relaxed);
        let body = json!({"event": "BenchEvent", "data": {"n": n}});
        let response = client.post(&url).bearer_auth(TOKEN).json(&body).send().await?;
        received.answered[n].store(received.since_start() - sent, Ordering::Relaxed);
        if response.status() != 201 {
            bail!(
                "publishing answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
    }
}

async fn setup(client: &reqwest::Client, base: &str, receiver: &str, args: &BenchArgs) -> anyhow::Result<()> {
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
    // A database given with --database may hold an earlier run; its deliveries would be
    // counted with this one's.
    anyhow::ensure!(
        account.status() != 409,
        "the database already holds a bench account; --database must name an empty database"
    );
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
    anyhow::ensure!(args.failing <= args.endpoints, "--failing is more than --endpoints");
    let operational = json!({"url": format!("{receiver}/told"), "events": OPERATIONAL});
    let endpoints = (0..args.endpoints)
        .map(|i| {
            let path = if i < args.failing { "fail" } else { "hook" };
            let mut endpoint = json!({"url": format!("{receiver}/{path}"), "events": ["*"]});
            if args.filtered {
                endpoint["filter"] = json!({"event": "BenchEvent", "data.n": {"$gte": 0}});
            }
            if let Some(limit) = args.rate_limit {
                endpoint["rate_limit"] = json!(limit);
            }
            endpoint
        })
        .chain(args.operational.then_some(operational));
    for endpoint in endpoints {
        let created = admin("/admin/v1/account/bench/webhook/endpoint", endpoint).await?;
        anyhow::ensure!(
            created.status() == 201,
            "creating an endpoint: {}",
            created.text().await?
        );
    }
    Ok(())
}

/// Waits until a server that runs in another process is ready, `/readyz` answering 200 (it
/// can only be watched from outside), for at most 30 s. The benchmark and the tests that
/// start the real binary use it.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/readyz"))
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

/// The progress of a run on stderr: a bar that rewrites itself on a terminal, and a plain
/// line every few seconds elsewhere, so that a log is not flooded with carriage returns.
struct Progress {
    terminal: bool,
    last_line: Option<Instant>,
}

impl Progress {
    /// How often a plain line is printed when stderr is not a terminal.
    const EVERY: Duration = Duration::from_secs(5);

    fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            terminal: std::io::stderr().is_terminal(),
            last_line: None,
        }
    }

    fn show(&mut self, published: usize, calls: usize, expected: usize, elapsed: Duration) {
        const WIDTH: usize = 40;
        let figures = format!(
            "{calls}/{expected} delivered, {published} published, {:.1} s",
            elapsed.as_secs_f64()
        );
        if self.terminal {
            let done = calls * WIDTH / expected.max(1);
            let bar: String = "#".repeat(done) + &"-".repeat(WIDTH - done);
            eprint!("\r[{bar}] {figures} ");
            let _ = std::io::stderr().flush();
        } else if self.last_line.is_none_or(|at| at.elapsed() >= Self::EVERY) || calls >= expected {
            self.last_line = Some(Instant::now());
            eprintln!("{figures}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seconds_p99_is_its_own() {
        // Three seconds at 100 events/s: the second one has a stall of 5 events at 80 ms.
        let mut in_order = vec![2_000; 300];
        in_order[150..155].fill(80_000);
        assert_eq!(
            p99_by_second(&in_order, 100),
            Some(BySecond {
                median: 2_000,
                worst: 80_000,
                worst_second: 1,
                seconds: 3
            })
        );
    }

    #[test]
    fn an_event_whose_call_never_came_does_not_count() {
        // In the first second only one call came, at 7 ms: that is its p99, not the 0 of the
        // 99 others.
        let mut in_order = vec![0; 100];
        in_order[5] = 7_000;
        in_order.extend([3_000; 100]);
        let by_second = p99_by_second(&in_order, 100).unwrap();
        assert_eq!((by_second.worst, by_second.worst_second), (7_000, 0));
    }

    #[test]
    fn a_run_with_no_call_has_no_seconds() {
        assert_eq!(p99_by_second(&[0; 50], 10), None);
        assert_eq!(p99_by_second(&[], 10), None);
    }

    #[test]
    fn the_first_of_equally_bad_seconds_is_named() {
        let in_order = [9_000, 1_000, 9_000, 1_000];
        assert_eq!(p99_by_second(&in_order, 1).map(|s| s.worst_second), Some(0));
    }
}
