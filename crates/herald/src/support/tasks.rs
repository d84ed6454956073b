//! `herald task …`: the call history, as a table, followed live, and retried.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::common::{Account, items};
use super::table::{cell, details, render};
use super::{Client, Failure, show};

/// `herald task …`
#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// The call history, newest first
    List {
        #[command(flatten)]
        account: Account,
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        status: Option<u16>,
        #[arg(long)]
        application: Option<i64>,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Keep printing new calls as they are made
        #[arg(long)]
        follow: bool,
    },
    /// One call in full: the request sent and the answer
    Show {
        #[command(flatten)]
        account: Account,
        id: i64,
    },
    /// Call the endpoint again with the task's event, now
    Retry {
        #[command(flatten)]
        account: Account,
        id: i64,
    },
}

impl TaskCommand {
    pub fn run(self, client: &Client) -> Result<(), Failure> {
        match self {
            TaskCommand::List {
                account,
                event,
                status,
                application,
                endpoint,
                limit,
                follow,
            } => {
                let mut query = vec![format!("limit={limit}")];
                let filters = [
                    ("event", event),
                    ("response_status", status.map(|s| s.to_string())),
                    ("application", application.map(|a| a.to_string())),
                    ("endpoint", endpoint),
                ];
                for (name, value) in filters {
                    if let Some(value) = value {
                        query.push(format!(
                            "{name}={}",
                            url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
                        ));
                    }
                }
                let base = format!("/admin/v1/account/{}/webhook/task?{}", account.account, query.join("&"));
                let page = client.get(&base)?;
                let mut newest = items(&page).first().and_then(|t| t["id"].as_i64()).unwrap_or(0);
                show(client, &page, |p| {
                    render(TASK_HEADERS, &items(p).iter().map(task_row).collect::<Vec<_>>())
                });
                if follow {
                    loop {
                        client.sleep(Duration::from_secs(1));
                        // Every page of what came since, so that a burst longer than a page is
                        // printed whole.
                        let mut new = Vec::new();
                        let mut next = Some(format!("{base}&since={newest}"));
                        while let Some(path) = next.take() {
                            let page = client.get(&path)?;
                            new.extend(items(&page).iter().cloned());
                            next = page["_next"].as_str().filter(|n| !n.is_empty()).map(str::to_owned);
                        }
                        for task in new.iter().rev() {
                            newest = newest.max(task["id"].as_i64().unwrap_or(0));
                            if client.json {
                                println!("{task}");
                            } else {
                                print!(
                                    "{}",
                                    render(TASK_HEADERS, &[task_row(task)])
                                        .lines()
                                        .nth(1)
                                        .map(|l| format!("{l}\n"))
                                        .unwrap_or_default()
                                );
                            }
                        }
                    }
                }
            }
            TaskCommand::Show { account, id } => {
                let task = client.get(&format!("/admin/v1/account/{}/webhook/task/{id}", account.account))?;
                show(client, &task, |t| {
                    let mut out = details(
                        t,
                        &[
                            "id",
                            "datetime",
                            "event",
                            "event_id",
                            "application",
                            "endpoint",
                            "attempt",
                            "delivery",
                            "duration_ms",
                            "response_status",
                            "error",
                        ],
                    );
                    out.push_str(&format!("\nrequest: POST {}\n", cell(&t["request"]["url"])));
                    if let Some(headers) = t["request"]["headers"].as_object() {
                        for (name, value) in headers {
                            out.push_str(&format!("  {name}: {}\n", cell(value)));
                        }
                    }
                    out.push_str(&format!(
                        "  {}\n\nresponse {}:\n  {}\n",
                        cell(&t["request"]["body"]),
                        cell(&t["response_status"]),
                        cell(&t["response_body"])
                    ));
                    out
                });
            }
            TaskCommand::Retry { account, id } => {
                let task = client.post(
                    &format!("/admin/v1/account/{}/webhook/task/{id}/retry", account.account),
                    json!({}),
                )?;
                show(client, &task, |t| {
                    format!(
                        "retrying: {} will be called again with {} now\n",
                        cell(&t["endpoint"]["url"]),
                        cell(&t["event_id"])
                    )
                });
            }
        }
        Ok(())
    }
}

const TASK_HEADERS: &[&str] = &[
    "ID",
    "TIME",
    "EVENT",
    "STATUS",
    "ATTEMPT",
    "ENDPOINT",
    "APPLICATION",
    "ERROR",
];

fn task_row(task: &Value) -> Vec<String> {
    vec![
        cell(&task["id"]),
        cell(&task["datetime"]),
        cell(&task["event"]),
        cell(&task["response_status"]),
        cell(&task["attempt"]),
        cell(&task["endpoint"]["id"]),
        cell(&task["application"]),
        cell(&task["error"]),
    ]
}
