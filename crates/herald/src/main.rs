//! The `herald` binary: parse the command line, load the configuration, call the library.

use std::process::ExitCode;

use clap::Parser;
use herald::cli::{Cli, Command, LogFormat, ServeArgs};
use herald::config::{self, Config, Overrides};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config => {
            print!("{}", config::DEFAULT_TOML);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(args),
        Command::Account { remote, command } => herald::support::run(&remote, |client| command.run(client)),
        Command::Endpoint { remote, command } => herald::support::run(&remote, |client| command.run(client)),
        Command::Task { remote, command } => herald::support::run(&remote, |client| command.run(client)),
        Command::Event { remote, command } => herald::support::run(&remote, |client| command.run(client)),
        Command::Listen(args) => match herald::listen::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald listen: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Bench(args) => match herald::bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald bench: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let overrides = Overrides {
        listen: args.listen,
        database: args.database,
        admin_token: args.admin_token,
        role: args.role,
    };
    let config = match Config::load(args.config.as_deref(), std::env::vars(), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    match runtime.block_on(serve_until_signal(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    herald::run(config, listener, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM, for a graceful stop.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("herald=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
