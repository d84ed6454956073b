//! The admin API client of the support CLI, and what its failures tell the person at the
//! keyboard.

use std::process::ExitCode;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::Remote;

/// A connection to one server, with the admin token.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    /// Print JSON rather than tables.
    pub json: bool,
}

/// Why a command failed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: the server could not be reached, or failed.
    Server(String),
    /// Exit 3: what was named does not exist.
    NotFound(String),
    /// Exit 4: the server refused the request (bad input, a conflict, the token).
    Refused(String),
}

impl Failure {
    /// Prints the failure on stderr and gives its exit code.
    pub fn report(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Server(m) => (1, m),
            Failure::NotFound(m) => (3, m),
            Failure::Refused(m) => (4, m),
        };
        eprintln!("herald: {message}");
        ExitCode::from(code)
    }
}

impl Client {
    pub fn new(remote: &Remote) -> Result<Client, Failure> {
        let token = remote.admin_token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
            Failure::Refused(
                "no admin token: set HERALD_ADMIN_TOKEN (herald serve printed it on its first start) or pass --admin-token"
                    .into(),
            )
        })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Server(e.to_string()))?;
        Ok(Client {
            base: remote.server.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
            runtime,
            json: remote.json,
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.send(Method::POST, path, Some(body))
    }

    pub fn patch(&self, path: &str, body: Value) -> Result<Value, Failure> {
        self.send(Method::PATCH, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.send(Method::DELETE, path, None)
    }

    /// One call; an answer that is not 2xx becomes a `Failure` that says what to do.
    fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut request = self.http.request(method, &url).bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.map_err(|e| {
                Failure::Server(format!(
                    "cannot reach {}: {e}. Is `herald serve` running there? (--server or HERALD_SERVER)",
                    self.base
                ))
            })?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(value);
            }
            let message = value["error"]["message"].as_str().map_or_else(|| text.clone(), str::to_owned);
            Err(match status {
                StatusCode::UNAUTHORIZED => Failure::Refused(format!(
                    "the server refused the admin token ({message}); set HERALD_ADMIN_TOKEN to the token herald serve printed"
                )),
                StatusCode::NOT_FOUND => Failure::NotFound(message),
                s if s.is_server_error() => Failure::Server(format!("the server failed ({s}): {message}")),
                s => Failure::Refused(format!("{message} ({s})")),
            })
        })
    }

    /// Waits, for `--follow` and progress bars.
    pub fn sleep(&self, duration: std::time::Duration) {
        self.runtime.block_on(async { tokio::time::sleep(duration).await });
    }
}
