//! `herald account …`: create, list, show and delete accounts.

use clap::Subcommand;
use serde_json::json;

use super::common::items;
use super::table::{cell, details, render};
use super::{Client, Failure, show};

/// `herald account …`
#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account with its hiring process
    Create {
        login: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        /// The steps of its process, comma-separated (the first is START, the last two END)
        #[arg(long, value_delimiter = ',')]
        steps: Option<Vec<String>>,
    },
    /// List accounts
    List,
    /// Show one account
    Show { login: String },
    /// Delete an account and everything it owns
    Delete { login: String },
}

const ACCOUNT_KEYS: &[&str] = &["login", "name", "id", "datetime", "process", "endpoints"];

impl AccountCommand {
    pub fn run(self, client: &Client) -> Result<(), Failure> {
        match self {
            AccountCommand::Create {
                login,
                password,
                name,
                steps,
            } => {
                let mut body = json!({"login": login, "password": password, "name": name});
                if let Some(steps) = steps {
                    body["process"] = json!({"name": "Hiring", "steps": steps});
                }
                let account = client.post("/admin/v1/account", body)?;
                show(client, &account, |a| {
                    format!("created account {}\n{}", cell(&a["login"]), details(a, ACCOUNT_KEYS))
                });
            }
            AccountCommand::List => {
                let page = client.get("/admin/v1/account?limit=100")?;
                show(client, &page, |p| {
                    let rows = items(p)
                        .iter()
                        .map(|a| vec![cell(&a["login"]), cell(&a["name"]), cell(&a["datetime"])])
                        .collect::<Vec<_>>();
                    render(&["LOGIN", "NAME", "CREATED"], &rows)
                });
            }
            AccountCommand::Show { login } => {
                let account = client.get(&format!("/admin/v1/account/{login}"))?;
                show(client, &account, |a| details(a, ACCOUNT_KEYS));
            }
            AccountCommand::Delete { login } => {
                client.delete(&format!("/admin/v1/account/{login}"))?;
                show(client, &json!({"deleted": login}), |_| {
                    format!("deleted account {login}\n")
                });
            }
        }
        Ok(())
    }
}
