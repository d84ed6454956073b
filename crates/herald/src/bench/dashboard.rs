//! `herald bench --dashboard`: how fast the dashboard's pages answer with a long history.
//! Publishes the events to the endpoints (one of them failing, with `--failing`), waits until
//! every call is recorded, signs in through the form as a customer would, then asks for each
//! page again and again and reports each one's latency as the browser waits for it.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::database::Database;
use super::{BenchArgs, Received, TOKEN, setup, spawn_publishers, start_nodes, start_receiver};

/// How many times each page is asked for.
const ROUNDS: usize = 50;

pub(super) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.nodes == 1, "--dashboard runs one node");
    let database = Database::from_args(&args)?;
    let received = Arc::new(Received::new(args.events));
    let receiver_url = start_receiver(received.clone()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let nodes = start_nodes(&client, &database.url, 1).await?;
    let base = nodes[0].base.clone();
    setup(&client, &base, &receiver_url, &args).await?;

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let publishers = spawn_publishers(&args, &client, std::slice::from_ref(&base), &next, &received, started);
    for publisher in publishers {
        publisher.await??;
    }
    // Every call to a healthy endpoint recorded: the history holds them all.
    let healthy = args.events * (args.endpoints - args.failing);
    let deadline = Instant::now() + Duration::from_secs(1800);
    while tasks(&client, &base).await? < healthy {
        if Instant::now() > deadline {
            bail!("the calls were not all recorded within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recorded = tasks(&client, &base).await?;

    let cookie = sign_in(&client, &base).await?;
    let admin = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let value: serde_json::Value = client.get(url).bearer_auth(TOKEN).send().await?.json().await?;
            anyhow::Ok(value)
        }
    };
    let endpoints = admin("/admin/v1/account/bench/webhook/endpoint".into()).await?;
    let endpoint = endpoints["items"][0]["id"].as_str().context("an endpoint")?.to_owned();
    let history = admin("/admin/v1/account/bench/webhook/task?limit=20".into()).await?;
    let task = history["items"][0]["id"].as_i64().context("a task")?;
    let older = history["_next"]
        .as_str()
        .and_then(|n| n.split_once('?'))
        .map(|(_, q)| q.to_owned());
    let mut pages = vec![
        ("endpoints", "/ui".to_owned()),
        ("one endpoint, 24 h", format!("/ui/endpoints/{endpoint}")),
        ("one endpoint, 7 d", format!("/ui/endpoints/{endpoint}?window=7d")),
        ("calls", "/ui/tasks".to_owned()),
        ("calls of one endpoint", format!("/ui/tasks?endpoint={endpoint}")),
        ("calls answered 500", "/ui/tasks?response_status=500".to_owned()),
        ("one call", format!("/ui/tasks/{task}")),
        ("event types", "/ui/events".to_owned()),
        ("settings", "/ui/settings".to_owned()),
    ];
    if let Some(query) = older {
        pages.push(("calls, second page", format!("/ui/tasks?{query}")));
    }
    println!(
        "herald bench --dashboard: {recorded} calls in the history ({} events to {} endpoints, {} failing), {}",
        args.events,
        args.endpoints,
        args.failing,
        database.kind()
    );
    println!("  {:<24} {:>9} {:>9} {:>9}", "page", "p50 ms", "p99 ms", "max ms");
    for (name, path) in pages {
        let mut times = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let asked = Instant::now();
            let page = client
                .get(format!("{base}{path}"))
                .header("cookie", format!("herald_session={cookie}"))
                .send()
                .await?;
            anyhow::ensure!(page.status() == 200, "{path} answered {}", page.status());
            page.bytes().await?;
            times.push(asked.elapsed());
        }
        times.sort_unstable();
        let ms = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!("  {name:<24} {:>9.1} {:>9.1} {:>9.1}", ms(0.5), ms(0.99), ms(1.0));
    }
    Ok(())
}

/// How many calls the history holds: the newest call's id, since ids count up from 1 and the
/// bench's database holds the bench account's calls alone.
async fn tasks(client: &reqwest::Client, base: &str) -> anyhow::Result<usize> {
    let page: serde_json::Value = client
        .get(format!("{base}/admin/v1/account/bench/webhook/task?limit=1"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    Ok(page["items"][0]["id"].as_u64().unwrap_or(0) as usize)
}

/// Signs in through the form; the session cookie's value.
async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let form = client.get(format!("{base}/ui/login")).send().await?;
    let token = cookie(&form, "herald_login").context("the sign-in form's cookie")?;
    let signed = client
        .post(format!("{base}/ui/login"))
        .header("cookie", format!("herald_login={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("login", "bench"),
            ("password", "bench-password"),
        ])
        .send()
        .await?;
    cookie(&signed, "herald_session").context("signing in gave no session")
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
        })
}
