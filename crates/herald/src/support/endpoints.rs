//! `herald endpoint …`: an account's endpoints, and what support does to them.

use std::io::Write;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::common::{Account, items};
use super::table::{cell, details, render};
use super::{Client, Failure, show};

/// `herald endpoint …`
#[derive(Subcommand, Debug)]
pub enum EndpointCommand {
    /// Subscribe a URL to event types
    Add {
        #[command(flatten)]
        account: Account,
        #[arg(long)]
        url: String,
        /// Event types, comma-separated; * for all
        #[arg(long, value_delimiter = ',', default_value = "*")]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Deliver each application's events in order
        #[arg(long)]
        fifo: bool,
        /// HTTP Basic credentials to send, user:password
        #[arg(long, value_name = "USER:PASSWORD", conflicts_with_all = ["bearer", "header"])]
        basic: Option<String>,
        /// A bearer token to send
        #[arg(long, conflicts_with = "header")]
        bearer: Option<String>,
        /// A header to send, Name:value
        #[arg(long, value_name = "NAME:VALUE")]
        header: Option<String>,
        #[command(flatten)]
        controls: Box<Controls>,
    },
    /// List an account's endpoints
    List {
        #[command(flatten)]
        account: Account,
    },
    /// Show one endpoint
    Show {
        #[command(flatten)]
        account: Account,
        id: String,
    },
    /// Change an endpoint's URL, events, description or call controls
    Update {
        #[command(flatten)]
        account: Account,
        id: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        controls: Box<Controls>,
    },
    /// Delete an endpoint
    Delete {
        #[command(flatten)]
        account: Account,
        id: String,
    },
    /// Resume a suspended or disabled endpoint
    Resume {
        #[command(flatten)]
        account: Account,
        id: String,
    },
    /// Give an endpoint a new signing secret (the old one signs too for a grace period)
    RotateSecret {
        #[command(flatten)]
        account: Account,
        id: String,
    },
    /// An endpoint's figures over its last day or week: calls, success rate, latency,
    /// failures, and each hour that had calls
    Stats {
        #[command(flatten)]
        account: Account,
        id: String,
        /// 24h or 7d
        #[arg(long, default_value = "24h", value_parser = ["24h", "7d"])]
        window: String,
    },
    /// Send an endpoint a test event
    Test {
        #[command(flatten)]
        account: Account,
        id: String,
    },
    /// Deliver again every event since a date-time, and watch the calls go out
    Replay {
        #[command(flatten)]
        account: Account,
        id: String,
        /// "YYYY-MM-DD HH:MM:SS" or RFC 3339
        #[arg(long)]
        since: String,
        /// Return at once instead of showing progress
        #[arg(long)]
        no_wait: bool,
    },
}

/// What shapes each call to an endpoint (the spec's endpoint controls).
#[derive(clap::Args, Debug)]
pub struct Controls {
    /// An extra header on every call, Name:value; repeat for more (on update, they replace
    /// the endpoint's)
    #[arg(long = "extra-header", value_name = "NAME:VALUE")]
    extra_headers: Vec<String>,
    /// The endpoint's own delays between retries, comma-separated (10s,1m,1h); "none" for the
    /// server's
    #[arg(long, value_name = "DELAYS")]
    retry_schedule: Option<String>,
    /// The endpoint's own time-out, 1s to 30s; "none" for the server's
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// At most this many calls per second, 1 to 10000; "none" for no limit
    #[arg(long, value_name = "PER_SECOND")]
    rate_limit: Option<String>,
    /// Only events whose call body matches this filter, as JSON
    /// ('{"data.to.name":{"$in":["Offer","Hired"]}}'); "none" for every event
    #[arg(long, value_name = "JSON")]
    filter: Option<String>,
    /// The webhook format the endpoint receives: 1 (the seed's body) or 2 (Standard
    /// Webhooks', with the application in data.application)
    #[arg(long, value_name = "1|2", value_parser = ["1", "2"])]
    webhook_version: Option<String>,
}

impl Controls {
    /// Adds the controls given to an endpoint's JSON body.
    fn add_to(self, body: &mut Value) -> Result<(), Failure> {
        if !self.extra_headers.is_empty() {
            let mut headers = serde_json::Map::new();
            for header in &self.extra_headers {
                let (name, value) = header
                    .split_once(':')
                    .ok_or_else(|| Failure::Refused("--extra-header takes Name:value".into()))?;
                headers.insert(name.trim().to_owned(), json!(value.trim()));
            }
            body["headers"] = Value::Object(headers);
        }
        if let Some(schedule) = self.retry_schedule {
            body["retry_schedule"] = match schedule.as_str() {
                "none" => Value::Null,
                delays => json!(delays.split(',').map(str::trim).collect::<Vec<_>>()),
            };
        }
        if let Some(timeout) = self.timeout {
            body["timeout"] = match timeout.as_str() {
                "none" => Value::Null,
                timeout => json!(timeout),
            };
        }
        if let Some(limit) = self.rate_limit {
            body["rate_limit"] = match limit.as_str() {
                "none" => Value::Null,
                limit => json!(limit.parse::<u32>().map_err(|_| {
                    Failure::Refused(format!(
                        "--rate-limit takes a number of calls per second or none, not {limit:?}"
                    ))
                })?),
            };
        }
        if let Some(version) = self.webhook_version {
            body["version"] = json!(version);
        }
        if let Some(filter) = self.filter {
            body["filter"] = match filter.as_str() {
                "none" => Value::Null,
                filter => {
                    serde_json::from_str(filter).map_err(|e| Failure::Refused(format!("--filter is not JSON: {e}")))?
                }
            };
        }
        Ok(())
    }
}

const ENDPOINT_KEYS: &[&str] = &[
    "id",
    "url",
    "events",
    "description",
    "ordering",
    "auth",
    "headers",
    "retry_schedule",
    "timeout",
    "rate_limit",
    "filter",
    "version",
    "state",
    "suspended_until",
    "consecutive_failures",
];

/// The admin path of an account's endpoints.
fn endpoints(account: &Account) -> String {
    format!("/admin/v1/account/{}/webhook/endpoint", account.account)
}

fn auth_of(basic: Option<String>, bearer: Option<String>, header: Option<String>) -> Result<Value, Failure> {
    let split = |text: &str, what: &str| {
        text.split_once(':')
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .ok_or_else(|| Failure::Refused(format!("--{what} takes two parts joined by ':'")))
    };
    Ok(match (basic, bearer, header) {
        (Some(basic), _, _) => {
            let (username, password) = split(&basic, "basic")?;
            json!({"type": "basic", "username": username, "password": password})
        }
        (_, Some(token), _) => json!({"type": "bearer", "token": token}),
        (_, _, Some(header)) => {
            let (name, value) = split(&header, "header")?;
            json!({"type": "header", "name": name, "value": value})
        }
        _ => Value::Null,
    })
}

impl EndpointCommand {
    pub fn run(self, client: &Client) -> Result<(), Failure> {
        match self {
            EndpointCommand::Add {
                account,
                url,
                events,
                description,
                fifo,
                basic,
                bearer,
                header,
                controls,
            } => {
                let ordering = if fifo { "fifo" } else { "parallel" };
                let auth = auth_of(basic, bearer, header)?;
                let mut body = json!({"url": url, "events": events, "description": description, "ordering": ordering, "auth": auth});
                controls.add_to(&mut body)?;
                let endpoint = client.post(&endpoints(&account), body)?;
                show(client, &endpoint, |e| {
                    let secret = cell(&e["secret"]);
                    format!(
                        "created endpoint {}\n{}signing secret (shown this once): {secret}\n",
                        cell(&e["id"]),
                        details(e, ENDPOINT_KEYS)
                    )
                });
            }
            EndpointCommand::List { account } => {
                let page = client.get(&format!("{}?limit=100", endpoints(&account)))?;
                show(client, &page, |p| {
                    let rows = items(p)
                        .iter()
                        .map(|e| vec![cell(&e["id"]), cell(&e["state"]), cell(&e["events"]), cell(&e["url"])])
                        .collect::<Vec<_>>();
                    render(&["ID", "STATE", "EVENTS", "URL"], &rows)
                });
            }
            EndpointCommand::Show { account, id } => {
                let endpoint = client.get(&format!("{}/{id}", endpoints(&account)))?;
                show(client, &endpoint, |e| details(e, ENDPOINT_KEYS));
            }
            EndpointCommand::Update {
                account,
                id,
                url,
                events,
                description,
                controls,
            } => {
                let mut body = json!({});
                controls.add_to(&mut body)?;
                if let Some(url) = url {
                    body["url"] = json!(url);
                }
                if let Some(events) = events {
                    body["events"] = json!(events);
                }
                if let Some(description) = description {
                    body["description"] = json!(description);
                }
                let endpoint = client.patch(&format!("{}/{id}", endpoints(&account)), body)?;
                show(client, &endpoint, |e| details(e, ENDPOINT_KEYS));
            }
            EndpointCommand::Delete { account, id } => {
                client.delete(&format!("{}/{id}", endpoints(&account)))?;
                show(client, &json!({"deleted": id}), |_| format!("deleted endpoint {id}\n"));
            }
            EndpointCommand::Resume { account, id } => {
                let endpoint = client.post(&format!("{}/{id}/resume", endpoints(&account)), json!({}))?;
                show(client, &endpoint, |e| format!("resumed\n{}", details(e, ENDPOINT_KEYS)));
            }
            EndpointCommand::RotateSecret { account, id } => {
                let endpoint = client.post(&format!("{}/{id}/secret/rotate", endpoints(&account)), json!({}))?;
                show(client, &endpoint, |e| {
                    format!(
                        "new signing secret (shown this once): {}\nthe previous one signs too until its grace period ends\n",
                        cell(&e["secret"])
                    )
                });
            }
            EndpointCommand::Stats { account, id, window } => {
                let stats = client.get(&format!("{}/{id}/stats?window={window}", endpoints(&account)))?;
                show(client, &stats, |s| figures(s, &id));
            }
            EndpointCommand::Test { account, id } => {
                let sent = client.post(&format!("{}/{id}/test", endpoints(&account)), json!({}))?;
                show(client, &sent, |s| {
                    format!(
                        "test event {} sent; see `herald task list -a {} --endpoint {id}`\n",
                        cell(&s["event_id"]),
                        account.account
                    )
                });
            }
            EndpointCommand::Replay {
                account,
                id,
                since,
                no_wait,
            } => {
                let before = latest_task(client, &account, &id)?;
                let replay = client.post(&format!("{}/{id}/replay", endpoints(&account)), json!({"since": since}))?;
                let count = replay["deliveries"].as_u64().unwrap_or(0);
                show(client, &replay, |_| {
                    format!("{count} events to deliver again to {id}\n")
                });
                if !no_wait && !client.json && count > 0 {
                    watch_replay(client, &account, &id, before, count)?;
                }
            }
        }
        Ok(())
    }
}

/// An endpoint's figures as text: a summary, the calls by status, the failures, and a table
/// of the steps (hours, or 6 hours over a week) that had calls.
fn figures(stats: &Value, id: &str) -> String {
    let n = |key: &str| stats[key].as_i64().unwrap_or(0);
    let ms = |value: &Value| value.as_i64().map_or("-".to_owned(), |ms| format!("≤ {ms}"));
    let mut out = format!(
        "endpoint {id}, last {} ({} to {})\n",
        cell(&stats["window"]),
        cell(&stats["from"]),
        cell(&stats["to"])
    );
    let rate = stats["success_rate"]
        .as_f64()
        .map_or(String::new(), |r| format!(" ({:.1} % succeeded)", r * 100.0));
    out += &format!(
        "calls {}: {} succeeded, {} failed{rate}\n",
        n("calls"),
        n("succeeded"),
        n("failed")
    );
    let latency = &stats["latency_ms"];
    out += &format!(
        "latency p50 {} ms, p95 {} ms, p99 {} ms\n",
        ms(&latency["p50"]),
        ms(&latency["p95"]),
        ms(&latency["p99"])
    );
    let counted = |key: &str| -> String {
        let mut counts: Vec<(String, i64)> = stats[key]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
            .unwrap_or_default();
        counts.sort_by_key(|(key, n)| (-n, key.clone()));
        let parts: Vec<String> = counts.iter().map(|(key, n)| format!("{key} ×{n}")).collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    };
    out += &format!("calls by status: {}\n", counted("by_status"));
    out += &format!("failures by code: {}\n", counted("by_failure"));
    let rows: Vec<Vec<String>> = items_of(&stats["series"])
        .iter()
        .filter(|s| s["calls"].as_i64().unwrap_or(0) > 0)
        .map(|s| {
            vec![
                cell(&s["from"]),
                cell(&s["succeeded"]),
                cell(&s["failed"]),
                ms(&s["p50_ms"]),
                ms(&s["p95_ms"]),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out += "\n";
        out += &super::table::render(&["from", "succeeded", "failed", "p50 ms", "p95 ms"], &rows);
    }
    out
}

/// The items of a JSON array, or none.
fn items_of(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// The id of the endpoint's newest task, or 0.
fn latest_task(client: &Client, account: &Account, endpoint: &str) -> Result<i64, Failure> {
    let page = client.get(&format!(
        "/admin/v1/account/{}/webhook/task?endpoint={endpoint}&limit=1",
        account.account
    ))?;
    Ok(items(&page).first().and_then(|t| t["id"].as_i64()).unwrap_or(0))
}

/// A progress bar of the replay's calls, until each event had one (or an interrupt).
fn watch_replay(client: &Client, account: &Account, endpoint: &str, before: i64, count: u64) -> Result<(), Failure> {
    const WIDTH: u64 = 40;
    let mut calls = 0;
    let mut stalled = 0;
    while calls < count && stalled < 600 {
        let path = format!(
            "/admin/v1/account/{}/webhook/task?endpoint={endpoint}&since={before}&limit=100",
            account.account
        );
        let mut seen = 0;
        let mut next = Some(path);
        while let Some(path) = next.take() {
            let page = client.get(&path)?;
            seen += items(&page).len() as u64;
            next = page["_next"].as_str().filter(|n| !n.is_empty()).map(str::to_owned);
        }
        stalled = if seen == calls { stalled + 1 } else { 0 };
        calls = seen;
        let done = calls.min(count) * WIDTH / count;
        eprint!(
            "\r[{}{}] {}/{count} calls made",
            "#".repeat(done as usize),
            "-".repeat((WIDTH - done) as usize),
            calls.min(count)
        );
        let _ = std::io::stderr().flush();
        if calls < count {
            client.sleep(Duration::from_millis(500));
        }
    }
    eprintln!();
    Ok(())
}
