//! The support CLI: `herald account|endpoint|task|event …` drive a running server over the
//! admin API. Tables for people, `--json` for scripts, and exit codes that mean something:
//! 0 done, 1 the server failed or cannot be reached, 2 bad usage, 3 not found, 4 refused
//! (bad input, a conflict, a wrong token).

use std::process::ExitCode;

use serde_json::Value;

mod accounts;
mod client;
mod common;
mod endpoints;
mod events;
mod table;
mod tasks;

pub use accounts::AccountCommand;
pub use client::{Client, Failure};
pub use endpoints::EndpointCommand;
pub use events::EventCommand;
pub use tasks::TaskCommand;

/// Where the server is and how to talk to it; every support command takes these.
#[derive(clap::Args, Debug, Clone)]
pub struct Remote {
    /// The server's base URL
    #[arg(long, env = "HERALD_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// The admin token (`herald serve` printed it on its first start)
    #[arg(long, env = "HERALD_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
    /// Print the server's JSON answers instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

/// Runs one support command and turns its outcome into an exit code.
pub fn run(remote: &Remote, command: impl FnOnce(&Client) -> Result<(), Failure>) -> ExitCode {
    let client = match Client::new(remote) {
        Ok(client) => client,
        Err(failure) => return failure.report(),
    };
    match command(&client) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Prints an answer: its JSON with `--json`, else what `human` makes of it.
pub(crate) fn show(client: &Client, answer: &Value, human: impl FnOnce(&Value) -> String) {
    if client.json {
        println!("{}", serde_json::to_string_pretty(answer).unwrap_or_default());
    } else {
        print!("{}", human(answer));
    }
}
