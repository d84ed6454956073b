//! `herald event …`: publishing events as a host product does.

use clap::Subcommand;
use serde_json::{Value, json};

use super::common::Account;
use super::table::cell;
use super::{Client, Failure, show};

/// `herald event …`
#[derive(Subcommand, Debug)]
pub enum EventCommand {
    /// Publish an event of a registered type, as a host product does
    Publish {
        #[command(flatten)]
        account: Account,
        /// The event type
        event: String,
        #[arg(long)]
        application: Option<i64>,
        /// The event's data, a JSON object
        #[arg(long, default_value = "{}")]
        data: String,
    },
}

impl EventCommand {
    pub fn run(self, client: &Client) -> Result<(), Failure> {
        match self {
            EventCommand::Publish {
                account,
                event,
                application,
                data,
            } => {
                let data: Value =
                    serde_json::from_str(&data).map_err(|e| Failure::Refused(format!("--data is not JSON: {e}")))?;
                let body = json!({"event": event, "application": application, "data": data});
                let published = client.post(&format!("/admin/v1/account/{}/event", account.account), body)?;
                show(client, &published, |e| {
                    format!("published {} {}\n", cell(&e["event"]), cell(&e["id"]))
                });
            }
        }
        Ok(())
    }
}
