//! The processes a run measures: the Herald nodes it starts, the PostgreSQL cluster, and
//! itself, read from `/proc`.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use super::TOKEN;

/// The CPU of one PostgreSQL cluster on this machine: its postmaster and the postmaster's
/// children whose command starts with `postgres` (backends, and background processes such as
/// the checkpointer, the WAL writer and autovacuum), from `/proc`. Only this cluster's: another
/// one on the machine (a test suite's) is left out.
pub(super) struct PostgresCpu {
    postmaster: u32,
    /// Each process's CPU when the run started; a process started later started from zero.
    start: HashMap<u32, Duration>,
    /// Each process's CPU when last seen. Sampled through the run, so a backend that exits
    /// counts up to its last sample; one that lives between two samples is missed.
    last: HashMap<u32, Duration>,
}

impl PostgresCpu {
    pub(super) fn new(postmaster: u32) -> PostgresCpu {
        PostgresCpu {
            postmaster,
            start: HashMap::new(),
            last: HashMap::new(),
        }
    }

    pub(super) fn processes(&self) -> HashMap<u32, Duration> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return HashMap::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| Some((pid, stat_of(&format!("/proc/{pid}/stat")).ok()?)))
            .filter(|(pid, s)| s.comm.starts_with("postgres") && (*pid == self.postmaster || s.ppid == self.postmaster))
            .map(|(pid, s)| (pid, s.cpu))
            .collect()
    }

    pub(super) fn begin(&mut self) {
        self.start = self.processes();
        self.last = self.start.clone();
    }

    pub(super) fn sample(&mut self) {
        self.last.extend(self.processes());
    }

    /// CPU used since `begin`, and by how many processes.
    pub(super) fn used(&self) -> (Duration, usize) {
        let cpu = self
            .last
            .iter()
            .map(|(pid, cpu)| cpu.saturating_sub(self.start.get(pid).copied().unwrap_or_default()))
            .sum();
        (cpu, self.last.len())
    }
}

/// A herald node under test, a child process of this one, on a free loopback port.
pub(super) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(super) base: String,
}

impl Server {
    pub(super) fn start(database: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Server::start_on(database, port, &[])
    }

    /// A node on `port`, with these settings added to the environment.
    pub(super) fn start_on(database: &str, port: u16, settings: &[(&str, &str)]) -> anyhow::Result<Server> {
        let child = Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                database,
                "--admin-token",
                TOKEN,
            ])
            .env("HERALD_ALLOW_PRIVATE_TARGETS", "true")
            .env("HERALD_RATE_LIMIT_PER_MINUTE", "0")
            // Failed calls are expected here (`--failing`): their one line each would drown
            // the report.
            .env("RUST_LOG", "warn,herald::delivery=error")
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the server")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    pub(super) fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .context("no such field in /proc status")?;
        Ok(line.split_whitespace().nth(1).context("a number")?.parse()?)
    }

    pub(super) fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    pub(super) fn peak_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    pub(super) fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_of(&format!("/proc/{}/stat", self.child.id()))
    }

    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server never outlives the benchmark, whatever ends it.
impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn servers_cpu(nodes: &[Server]) -> anyhow::Result<Duration> {
    nodes.iter().map(Server::cpu).sum()
}

/// What the benchmark reads of a process in `/proc/PID/stat`.
pub(super) struct Stat {
    /// The command name, as in `/proc/PID/comm`.
    pub(super) comm: String,
    pub(super) ppid: u32,
    /// User and system CPU time.
    cpu: Duration,
}

pub(super) fn stat_of(path: &str) -> anyhow::Result<Stat> {
    let stat = std::fs::read_to_string(path)?;
    // The command name is in parentheses and may hold spaces and parentheses itself.
    let (head, tail) = stat.rsplit_once(')').context("a stat line")?;
    let comm = head.split_once('(').context("a stat line")?.1.to_string();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Stat {
        comm,
        ppid: fields[1].parse()?,
        cpu: Duration::from_millis(ticks * 10),
    })
}

/// User and system CPU time of a process, from `/proc/PID/stat`.
pub(super) fn cpu_of(path: &str) -> anyhow::Result<Duration> {
    Ok(stat_of(path)?.cpu)
}

pub(super) fn own_cpu() -> anyhow::Result<Duration> {
    cpu_of("/proc/self/stat")
}

/// A folder removed when the benchmark ends.
pub(super) struct TempDir(pub(super) std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn tempfile_dir() -> anyhow::Result<TempDir> {
    let path = std::env::temp_dir().join(format!("herald-bench-{}", crate::ids::ulid(0)));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}
