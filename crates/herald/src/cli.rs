//! The command line: `herald serve` runs the server, `herald listen` a local receiver,
//! `herald account|endpoint|task|event` drive a running server, `herald config` prints the
//! defaults and `herald bench` measures.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Herald: webhook delivery for an applicant-tracking service.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API and the dispatcher.
    Serve(ServeArgs),
    /// Print the default configuration file, with every key and its default.
    Config,
    /// Run a local receiver that prints every call and answers a chosen status.
    Listen(crate::listen::ListenArgs),
    /// Manage accounts on a running server (admin API)
    Account {
        #[command(flatten)]
        remote: crate::support::Remote,
        #[command(subcommand)]
        command: crate::support::AccountCommand,
    },
    /// Manage an account's endpoints on a running server
    Endpoint {
        #[command(flatten)]
        remote: crate::support::Remote,
        #[command(subcommand)]
        command: crate::support::EndpointCommand,
    },
    /// Read and retry the call history
    Task {
        #[command(flatten)]
        remote: crate::support::Remote,
        #[command(subcommand)]
        command: crate::support::TaskCommand,
    },
    /// Publish events as a host product does
    Event {
        #[command(flatten)]
        remote: crate::support::Remote,
        #[command(subcommand)]
        command: crate::support::EventCommand,
    },
    /// Measure delivery: a real server, a local receiver, events through the API.
    Bench(crate::bench::BenchArgs),
}

/// How `herald serve` is configured; each flag wins over the file and the environment.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [env: HERALD_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// sqlite://PATH or postgres://… [env: HERALD_DATABASE_URL] [default: sqlite://herald.db]
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// What this node runs: api, dispatcher or all (several nodes on one PostgreSQL database
    /// can split the work) [env: HERALD_ROLE] [default: all]
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// The admin API's bearer token [env: HERALD_ADMIN_TOKEN] [default: generated on first start]
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// A TOML configuration file (`herald config` prints one)
    #[arg(long, value_name = "FILE", env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log lines as text for people or JSON for machines
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}
