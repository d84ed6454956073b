//! A database at a distance (`herald bench --database-delay`): a relay between the nodes and
//! PostgreSQL that holds every chunk of bytes for a fixed time, each way and in order, as the
//! network between two machines would. On one machine every round trip to the database is a
//! few microseconds; across machines it is a fraction of a millisecond to a few, and a design
//! that waits for many of them in a row is slow there however fast the database is.
//!
//! Plain threads, not the runtime's tasks: Tokio's timers round up to the millisecond, and
//! a delay of a tenth of one must stay a tenth. Four threads per connection (a reader and a
//! writer each way), for the few dozen connections of a benchmark. The relay's CPU counts as
//! the bench's own.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Starts a relay to the database at `url`, `delay` away each way; returns the URL that
/// reaches the database through it.
pub(super) fn relay(url: &str, delay: Duration) -> anyhow::Result<String> {
    let mut far = url::Url::parse(url).context("parsing --database")?;
    let target = (far.host_str().unwrap_or("localhost"), far.port().unwrap_or(5432))
        .to_socket_addrs()?
        .next()
        .context("the host of --database has no address")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::Builder::new().name("bench-db-relay".into()).spawn(move || {
        for client in listener.incoming().flatten() {
            // A connection the database refuses is refused to the node too: dropped.
            if let Err(e) = connect(client, target, delay) {
                eprintln!("herald bench: the database relay could not connect: {e}");
            }
        }
    })?;
    far.set_host(Some("127.0.0.1"))?;
    far.set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("--database cannot take a port"))?;
    Ok(far.into())
}

/// Joins a node's connection to a new one to the database, each way through a delay.
fn connect(client: TcpStream, target: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let server = TcpStream::connect(target)?;
    for stream in [&client, &server] {
        // Held bytes go out as soon as they are due, not when more have gathered.
        stream.set_nodelay(true)?;
    }
    carry(client.try_clone()?, server.try_clone()?, delay)?;
    carry(server, client, delay)
}

/// Carries bytes from `from` to `to`, each chunk `delay` after it was read.
fn carry(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> std::io::Result<()> {
    let (held, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::Builder::new().name("bench-db-delay".into()).spawn(move || {
        for (at, chunk) in due {
            thread::sleep(at.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        // The reading side ended (or this one failed): the far end learns it, in turn.
        let _ = to.shutdown(Shutdown::Write);
    })?;
    thread::Builder::new().name("bench-db-read".into()).spawn(move || {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            if held.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    })?;
    Ok(())
}
