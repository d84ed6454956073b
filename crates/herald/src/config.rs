//! The configuration: the TOML keys of the spec, their defaults, and validation.
//!
//! Layers, lowest first: built-in defaults, the `--config` file, `HERALD_*` environment
//! variables, then command-line flags. Everything is checked once, at start; a bad value is
//! one line naming where it came from, the key and the problem.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The commented default configuration, as `herald config` would print it.
pub const DEFAULT_TOML: &str = include_str!("../herald.default.toml");

/// A value that must never reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Herald's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`.
    pub database: String,
    /// `None` means: use the token kept in the database, generating one on first start.
    pub admin_token: Option<Secret>,
    /// The IANA name of the time zone of `datetime` fields.
    pub timezone: String,
    pub allow_private_targets: bool,
    /// REST calls per account and minute; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// What this node runs: the API, the dispatcher, or both.
    pub role: Role,
    /// The most connections a node keeps open to PostgreSQL.
    pub database_max_connections: u32,
    pub delivery: DeliveryConfig,
    pub suspension: SuspensionConfig,
    pub retention: RetentionConfig,
    pub notify: NotifyConfig,
    pub ui: UiConfig,
    /// `[http]`: how long a client may take to send a request.
    pub http: crate::http::Limits,
}

/// `[notify]`: e-mail to account owners about their endpoints.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// `smtp://host:port`; `None` sends no e-mail.
    pub smtp: Option<SmtpServer>,
    /// The sender, as an RFC 5322 mailbox (`Herald <herald@example.com>`).
    pub from: String,
}

/// Where e-mail is handed over: a plain SMTP server (a local relay does TLS onwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

/// `[ui]`: the dashboard.
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    pub enabled: bool,
    /// The base URL of links to the dashboard, without a trailing `/`; empty: none known.
    pub public_url: String,
    /// The origins (`https://app.example.com`) that may frame portal pages; no other page
    /// may be framed.
    pub frame_ancestors: Vec<String>,
}

/// What a node runs. Nodes on one PostgreSQL database can be split: some serve the API
/// behind a load balancer, others only deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The API only: events are written and other nodes deliver them.
    Api,
    /// The dispatcher (and retention) only, with `/healthz` and `/metrics` for probes.
    Dispatcher,
    All,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Role::Dispatcher | Role::All)
    }
}

/// `[delivery]`: how calls are made and retried.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    /// Each delay is drawn within ±`jitter` of its value (0.2 is ±20 %).
    pub jitter: f64,
    pub max_in_flight: u32,
    pub max_in_flight_per_endpoint: u32,
    /// How long a rotated secret keeps signing calls beside the new one.
    pub secret_rotation_grace: Duration,
}

/// `[suspension]`: when an endpoint that keeps failing is rested.
#[derive(Debug, Clone)]
pub struct SuspensionConfig {
    pub after_failures: u32,
    pub first: Duration,
    pub max: Duration,
    pub disable_after: Duration,
}

/// `[retention]`: how long events and tasks are kept.
#[derive(Debug, Clone)]
pub struct RetentionConfig {
    pub keep: Duration,
}

/// Values given on the command line, which win over every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub admin_token: Option<String>,
    pub role: Option<String>,
}

/// A configuration that cannot be used: where the value came from, its key, and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {origin}: {key}: {problem}")]
pub struct ConfigError {
    pub origin: String,
    pub key: String,
    pub problem: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Bool,
    Integer,
    Float,
    Duration,
    Durations,
    /// A list of strings; from the environment, comma-separated.
    Texts,
}

/// Every key: its dotted path, its environment variable, and its type.
const KEYS: &[(&str, &str, Kind)] = &[
    ("listen", "HERALD_LISTEN", Kind::Text),
    ("database", "HERALD_DATABASE_URL", Kind::Text),
    ("admin_token", "HERALD_ADMIN_TOKEN", Kind::Text),
    ("timezone", "HERALD_TIMEZONE", Kind::Text),
    ("allow_private_targets", "HERALD_ALLOW_PRIVATE_TARGETS", Kind::Bool),
    ("rate_limit_per_minute", "HERALD_RATE_LIMIT_PER_MINUTE", Kind::Integer),
    ("role", "HERALD_ROLE", Kind::Text),
    (
        "database_max_connections",
        "HERALD_DATABASE_MAX_CONNECTIONS",
        Kind::Integer,
    ),
    ("delivery.timeout", "HERALD_DELIVERY_TIMEOUT", Kind::Duration),
    (
        "delivery.retry_schedule",
        "HERALD_DELIVERY_RETRY_SCHEDULE",
        Kind::Durations,
    ),
    ("delivery.jitter", "HERALD_DELIVERY_JITTER", Kind::Float),
    ("delivery.max_in_flight", "HERALD_DELIVERY_MAX_IN_FLIGHT", Kind::Integer),
    (
        "delivery.max_in_flight_per_endpoint",
        "HERALD_DELIVERY_MAX_IN_FLIGHT_PER_ENDPOINT",
        Kind::Integer,
    ),
    (
        "delivery.secret_rotation_grace",
        "HERALD_DELIVERY_SECRET_ROTATION_GRACE",
        Kind::Duration,
    ),
    (
        "suspension.after_failures",
        "HERALD_SUSPENSION_AFTER_FAILURES",
        Kind::Integer,
    ),
    ("suspension.first", "HERALD_SUSPENSION_FIRST", Kind::Duration),
    ("suspension.max", "HERALD_SUSPENSION_MAX", Kind::Duration),
    (
        "suspension.disable_after",
        "HERALD_SUSPENSION_DISABLE_AFTER",
        Kind::Duration,
    ),
    ("retention.keep", "HERALD_RETENTION_KEEP", Kind::Duration),
    ("notify.smtp_url", "HERALD_NOTIFY_SMTP_URL", Kind::Text),
    ("notify.from", "HERALD_NOTIFY_FROM", Kind::Text),
    ("ui.enabled", "HERALD_UI_ENABLED", Kind::Bool),
    ("ui.public_url", "HERALD_UI_PUBLIC_URL", Kind::Text),
    ("ui.frame_ancestors", "HERALD_UI_FRAME_ANCESTORS", Kind::Texts),
    ("http.header_timeout", "HERALD_HTTP_HEADER_TIMEOUT", Kind::Duration),
    ("http.body_timeout", "HERALD_HTTP_BODY_TIMEOUT", Kind::Duration),
];

/// One value with where it came from, for error messages.
struct Sourced {
    value: toml::Value,
    origin: String,
}

impl Config {
    /// Builds the configuration from the optional file, the environment and the flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        layer_toml(&mut values, DEFAULT_TOML, "built-in defaults")?;
        if let Some(path) = file {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                origin: origin.clone(),
                key: "file".into(),
                problem: format!("cannot be read: {e}"),
            })?;
            layer_toml(&mut values, &text, &origin)?;
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (key, var, kind) in KEYS {
            if let Some(raw) = env.get(*var) {
                let value = env_value(raw, *kind);
                values.insert(
                    key.to_string(),
                    Sourced {
                        value,
                        origin: format!("environment variable {var}"),
                    },
                );
            }
        }
        let flags = [
            ("listen", &overrides.listen, "--listen"),
            ("database", &overrides.database, "--database"),
            ("admin_token", &overrides.admin_token, "--admin-token"),
            ("role", &overrides.role, "--role"),
        ];
        for (key, given, flag) in flags {
            if let Some(raw) = given {
                let value = toml::Value::String(raw.clone());
                values.insert(
                    key.into(),
                    Sourced {
                        value,
                        origin: format!("flag {flag}"),
                    },
                );
            }
        }
        Reader { values }.config()
    }

    /// The configuration a TOML text gives over the defaults, without the environment: for
    /// tools, tests and the fuzz target.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        layer_toml(&mut values, DEFAULT_TOML, "built-in defaults")?;
        layer_toml(&mut values, text, "configuration")?;
        Reader { values }.config()
    }

    /// The configuration with every default, for tests and tools.
    pub fn defaults() -> Config {
        Config::load(None, [], &Overrides::default()).expect("the built-in defaults are valid")
    }
}

/// Flattens a TOML document into dotted keys, refusing unknown keys and misplaced sections.
fn layer_toml(values: &mut BTreeMap<String, Sourced>, text: &str, origin: &str) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(1);
        ConfigError {
            origin: format!("{origin} line {line}"),
            key: "syntax".into(),
            problem: e.message().trim().replace('\n', " "),
        }
    })?;
    for (name, value) in table {
        match value {
            toml::Value::Table(section) => {
                for (inner, value) in section {
                    insert_known(values, format!("{name}.{inner}"), value, origin)?;
                }
            }
            other => insert_known(values, name, other, origin)?,
        }
    }
    Ok(())
}

fn insert_known(
    values: &mut BTreeMap<String, Sourced>,
    key: String,
    value: toml::Value,
    origin: &str,
) -> Result<(), ConfigError> {
    if !KEYS.iter().any(|(known, _, _)| *known == key) {
        let section = KEYS.iter().any(|(known, _, _)| known.starts_with(&format!("{key}.")));
        let problem = if section {
            "must be a table ([section])"
        } else {
            "unknown key"
        };
        return Err(ConfigError {
            origin: origin.into(),
            key,
            problem: problem.into(),
        });
    }
    values.insert(
        key,
        Sourced {
            value,
            origin: origin.into(),
        },
    );
    Ok(())
}

/// Environment variables are text; they are read the way the key's type reads.
fn env_value(raw: &str, kind: Kind) -> toml::Value {
    let trimmed = raw.trim();
    match kind {
        Kind::Bool => match trimmed {
            "true" | "1" => toml::Value::Boolean(true),
            "false" | "0" => toml::Value::Boolean(false),
            _ => toml::Value::String(raw.into()),
        },
        Kind::Integer => trimmed
            .parse()
            .map(toml::Value::Integer)
            .unwrap_or(toml::Value::String(raw.into())),
        Kind::Float => trimmed
            .parse()
            .map(toml::Value::Float)
            .unwrap_or(toml::Value::String(raw.into())),
        Kind::Durations | Kind::Texts => toml::Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.into()))
                .collect(),
        ),
        Kind::Text | Kind::Duration => toml::Value::String(raw.into()),
    }
}

/// Reads typed values out of the merged layers.
struct Reader {
    values: BTreeMap<String, Sourced>,
}

impl Reader {
    fn config(&self) -> Result<Config, ConfigError> {
        let config = Config {
            listen: self.parsed("listen", |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| "expected an address such as \"127.0.0.1:8080\" or \"[::1]:8080\"".into())
            })?,
            database: self.parsed("database", database_url)?,
            admin_token: self.parsed("admin_token", |s| {
                Ok(Some(Secret(s.to_owned())).filter(|t| !t.0.is_empty()))
            })?,
            timezone: self.parsed("timezone", |s| {
                jiff::tz::TimeZone::get(s)
                    .map(|_| s.to_owned())
                    .map_err(|_| format!("unknown time zone {s:?} (expected an IANA name such as \"Europe/Paris\")"))
            })?,
            allow_private_targets: self.bool("allow_private_targets")?,
            rate_limit_per_minute: self.integer("rate_limit_per_minute", 0)?,
            role: self.parsed("role", |s| match s {
                "api" => Ok(Role::Api),
                "dispatcher" => Ok(Role::Dispatcher),
                "all" => Ok(Role::All),
                _ => Err(format!("expected \"api\", \"dispatcher\" or \"all\", found {s:?}")),
            })?,
            database_max_connections: self.integer("database_max_connections", 1)?,
            delivery: DeliveryConfig {
                timeout: self.positive_duration("delivery.timeout")?,
                retry_schedule: self.durations("delivery.retry_schedule")?,
                jitter: self.fraction("delivery.jitter")?,
                max_in_flight: self.integer("delivery.max_in_flight", 1)?,
                max_in_flight_per_endpoint: self.integer("delivery.max_in_flight_per_endpoint", 1)?,
                secret_rotation_grace: self.parsed("delivery.secret_rotation_grace", parse_duration)?,
            },
            suspension: SuspensionConfig {
                after_failures: self.integer("suspension.after_failures", 1)?,
                first: self.positive_duration("suspension.first")?,
                max: self.positive_duration("suspension.max")?,
                disable_after: self.positive_duration("suspension.disable_after")?,
            },
            retention: RetentionConfig {
                keep: self.positive_duration("retention.keep")?,
            },
            notify: NotifyConfig {
                smtp: self.parsed("notify.smtp_url", smtp_server)?,
                from: self.parsed("notify.from", |s| Ok(s.to_owned()))?,
            },
            ui: UiConfig {
                enabled: self.bool("ui.enabled")?,
                public_url: self.parsed("ui.public_url", public_url)?,
                frame_ancestors: self.origins("ui.frame_ancestors")?,
            },
            http: crate::http::Limits {
                header_timeout: self.positive_duration("http.header_timeout")?,
                body_timeout: self.positive_duration("http.body_timeout")?,
            },
        };
        if config.notify.smtp.is_some() && config.notify.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(self.error(
                "notify.from",
                format!(
                    "expected a sender such as \"Herald <herald@example.com>\" with notify.smtp_url, found {:?}",
                    config.notify.from
                ),
            ));
        }
        if config.delivery.max_in_flight_per_endpoint > config.delivery.max_in_flight {
            return Err(self.error(
                "delivery.max_in_flight_per_endpoint",
                "must not exceed delivery.max_in_flight".into(),
            ));
        }
        // Nodes split by role find each other's work through PostgreSQL; a SQLite file has
        // one process, which must do both.
        if config.role != Role::All && config.database.starts_with("sqlite") {
            return Err(self.error(
                "role",
                "\"api\" and \"dispatcher\" need a postgres:// database; on SQLite one process does both (\"all\")"
                    .into(),
            ));
        }
        if config.suspension.first > config.suspension.max {
            return Err(self.error("suspension.first", "must not exceed suspension.max".into()));
        }
        Ok(config)
    }

    fn error(&self, key: &str, problem: String) -> ConfigError {
        let origin = self
            .values
            .get(key)
            .map_or("built-in defaults".into(), |v| v.origin.clone());
        ConfigError {
            origin,
            key: key.into(),
            problem,
        }
    }

    fn value(&self, key: &str) -> &toml::Value {
        &self.values.get(key).expect("every key has a built-in default").value
    }

    fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        match self.value(key) {
            toml::Value::String(s) => parse(s).map_err(|p| self.error(key, p)),
            other => Err(self.error(key, format!("expected a string, found {}", other.type_str()))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        match self.value(key) {
            toml::Value::Boolean(b) => Ok(*b),
            other => Err(self.error(key, format!("expected true or false, found {}", describe(other)))),
        }
    }

    fn integer(&self, key: &str, min: u32) -> Result<u32, ConfigError> {
        match self.value(key) {
            toml::Value::Integer(i) => match u32::try_from(*i) {
                Ok(n) if n >= min => Ok(n),
                _ => Err(self.error(
                    key,
                    format!("expected a whole number from {min} to {}, found {i}", u32::MAX),
                )),
            },
            other => Err(self.error(key, format!("expected a whole number, found {}", describe(other)))),
        }
    }

    fn fraction(&self, key: &str) -> Result<f64, ConfigError> {
        let value = match self.value(key) {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            other => return Err(self.error(key, format!("expected a number from 0 to 1, found {}", describe(other)))),
        };
        if (0.0..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(key, format!("expected a number from 0 to 1, found {value}")))
        }
    }

    fn positive_duration(&self, key: &str) -> Result<Duration, ConfigError> {
        let d = self.parsed(key, parse_duration)?;
        if d.is_zero() {
            return Err(self.error(key, "must be longer than zero".into()));
        }
        Ok(d)
    }

    fn durations(&self, key: &str) -> Result<Vec<Duration>, ConfigError> {
        let toml::Value::Array(items) = self.value(key) else {
            return Err(self.error(key, "expected a list of durations such as [\"5s\", \"5m\"]".into()));
        };
        items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => parse_duration(s).map_err(|p| self.error(key, p)),
                other => Err(self.error(key, format!("expected durations as strings, found {}", describe(other)))),
            })
            .collect()
    }
}

impl Reader {
    /// A list of web origins: a scheme `http` or `https`, a host and maybe a port, nothing
    /// more, so that each can stand as is in a `Content-Security-Policy`.
    fn origins(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let toml::Value::Array(items) = self.value(key) else {
            return Err(self.error(
                key,
                "expected a list of origins such as [\"https://app.example.com\"]".into(),
            ));
        };
        items
            .iter()
            .map(|item| {
                let toml::Value::String(s) = item else {
                    return Err(self.error(key, format!("expected origins as strings, found {}", describe(item))));
                };
                origin(s).map_err(|p| self.error(key, p))
            })
            .collect()
    }
}

/// An origin as written in a `Content-Security-Policy`, checked.
fn origin(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not an origin: {e}"))?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none() && !s.ends_with('/');
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare || !url.username().is_empty() {
        return Err(format!("{s:?} is not an origin such as \"https://app.example.com\""));
    }
    Ok(url.origin().ascii_serialization())
}

fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.type_str().to_owned(),
    }
}

/// `smtp://host:port` (port 25 if left out), or empty for no e-mail.
fn smtp_server(s: &str) -> Result<Option<SmtpServer>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let expected = || format!("expected \"smtp://host:port\" or an empty string, found {s:?}");
    let url = url::Url::parse(s).map_err(|_| expected())?;
    match (url.scheme(), url.host_str()) {
        ("smtp", Some(host)) if url.path().is_empty() || url.path() == "/" => Ok(Some(SmtpServer {
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: url.port().unwrap_or(25),
        })),
        _ => Err(expected()),
    }
}

/// An absolute http(s) URL, kept without its trailing `/`; or empty.
fn public_url(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(s) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(s.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "expected an absolute http(s) URL such as \"https://hooks.example.com\", found {s:?}"
        )),
    }
}

fn database_url(s: &str) -> Result<String, String> {
    let known = ["sqlite://", "sqlite:", "postgres://", "postgresql://"];
    if known.iter().any(|p| s.starts_with(p)) && s.len() > "sqlite:".len() {
        Ok(s.to_owned())
    } else {
        Err(format!("expected sqlite://PATH or postgres://…, found {s:?}"))
    }
}

/// Reads `"500ms"`, `"30s"`, `"5m"`, `"2h"` or `"5d"`.
/// A duration as `parse_duration` reads it, in the largest unit that divides it: `"90s"`,
/// `"5m"`, `"250ms"`.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms > 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as \"30s\", \"5m\", \"2h\" or \"5d\", found {text:?}");
    let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let number: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit_ms: u64 = match &text[digits..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, text).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Some(&path), env, &Overrides::default())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database, "sqlite://herald.db");
        assert!(c.admin_token.is_none());
        assert_eq!(c.timezone, "UTC");
        assert!(!c.allow_private_targets);
        assert_eq!(c.rate_limit_per_minute, 600);
        assert_eq!(c.delivery.timeout, Duration::from_secs(30));
        let mins: Vec<u64> = c.delivery.retry_schedule.iter().map(|d| d.as_secs()).collect();
        assert_eq!(mins, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(c.delivery.jitter, 0.2);
        assert_eq!(
            (c.delivery.max_in_flight, c.delivery.max_in_flight_per_endpoint),
            (512, 10)
        );
        assert_eq!(c.delivery.secret_rotation_grace, Duration::from_secs(24 * 3600));
        assert_eq!(c.suspension.after_failures, 5);
        assert_eq!(c.suspension.first, Duration::from_secs(60));
        assert_eq!(c.suspension.max, Duration::from_secs(3600));
        assert_eq!(c.suspension.disable_after, Duration::from_secs(5 * 86400));
        assert_eq!(c.retention.keep, Duration::from_secs(30 * 86400));
        // Herald's additions.
        assert_eq!(c.role, Role::All);
        assert_eq!(c.database_max_connections, 16);
    }

    #[test]
    fn the_environment_wins_over_the_file_and_flags_over_both() {
        let text = "listen = \"127.0.0.1:9000\"\n[delivery]\ntimeout = \"10s\"\n";
        let c = load_text(
            text,
            &[
                ("HERALD_DELIVERY_TIMEOUT", "3s"),
                ("HERALD_DELIVERY_RETRY_SCHEDULE", "1s, 2s"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.delivery.timeout, Duration::from_secs(3));
        assert_eq!(
            c.delivery.retry_schedule,
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        let env = [("HERALD_LISTEN".to_string(), "127.0.0.1:9001".to_string())];
        let flags = Overrides {
            listen: Some("127.0.0.1:9002".into()),
            ..Overrides::default()
        };
        assert_eq!(Config::load(None, env, &flags).unwrap().listen.port(), 9002);
        let env = [
            ("HERALD_ROLE".to_string(), "api".to_string()),
            ("HERALD_DATABASE_URL".to_string(), "postgres://db/herald".to_string()),
        ];
        assert_eq!(
            Config::load(None, env.clone(), &Overrides::default()).unwrap().role,
            Role::Api
        );
        let flags = Overrides {
            role: Some("dispatcher".into()),
            ..Overrides::default()
        };
        assert_eq!(Config::load(None, env, &flags).unwrap().role, Role::Dispatcher);
    }

    #[test]
    fn a_bad_value_names_its_key_and_origin() {
        let err = load_text("[delivery]\ntimeout = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delivery.timeout") && err.contains("herald.toml") && err.contains("\"soon\""),
            "{err}"
        );
        let err = load_text("", &[("HERALD_SUSPENSION_AFTER_FAILURES", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HERALD_SUSPENSION_AFTER_FAILURES") && err.contains("suspension.after_failures"),
            "{err}"
        );
        let err = load_text("timezone = \"Mars/Olympus\"", &[]).unwrap_err().to_string();
        assert!(err.contains("timezone") && err.contains("Mars/Olympus"), "{err}");
        let err = load_text("jitter = 0.5", &[]).unwrap_err().to_string();
        assert!(err.contains("jitter: unknown key"), "{err}");
        let err = load_text("delivery = 3", &[]).unwrap_err().to_string();
        assert!(err.contains("delivery: must be a table"), "{err}");
        let err = load_text("listen = \n", &[]).unwrap_err().to_string();
        assert!(err.contains("line 1") && !err.contains('\n'), "{err}");
        let err = load_text("role = \"worker\"", &[]).unwrap_err().to_string();
        assert!(err.contains("role") && err.contains("\"dispatcher\""), "{err}");
        let err = load_text("role = \"api\"", &[]).unwrap_err().to_string();
        assert!(err.contains("need a postgres:// database"), "{err}");
        let err = load_text("database_max_connections = 0", &[]).unwrap_err();
        assert_eq!(err.key, "database_max_connections");
        let err = load_text("[delivery]\nmax_in_flight = 4\nmax_in_flight_per_endpoint = 5", &[]).unwrap_err();
        assert_eq!(err.key, "delivery.max_in_flight_per_endpoint");
    }

    #[test]
    fn frame_ancestors_are_bare_origins() {
        assert_eq!(origin("https://app.example.com"), Ok("https://app.example.com".into()));
        assert_eq!(origin("http://127.0.0.1:9000"), Ok("http://127.0.0.1:9000".into()));
        for bad in [
            "https://app.example.com/",
            "https://a.example/path",
            "javascript:alert(1)",
            "*",
            "https://x.example; script-src *",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
