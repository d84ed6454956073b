//! A connection kept between uses by one of the node's users of the database that run one
//! thing after another: the dispatcher's claims, the recorder of calls, each writer of
//! published events.
//!
//! Handed back to the pool after every use, a connection costs a round trip more (sqlx pings
//! each one it takes back, to be sure it is fit for the next caller), and the next use takes
//! whichever connection has waited longest: a node at 1,000 events/s kept seven PostgreSQL
//! backends busy in turn, each waking for a share of the work. Kept, the claims and the
//! writes go to the same backends, one after another. At 1,000 events/s that took
//! PostgreSQL's CPU from 0.83 to 0.93 ms per delivery down to 0.68 to 0.73, and the p99 from
//! 11 to 18 ms down to 7.1 to 7.7 (docs/BENCHMARKS.md).
//!
//! Only a connection used within the last second is used again as it is: one that sat idle
//! longer goes back to the pool, which pings it before it hands it out, as it does any. Only a
//! use that went well keeps its connection; after an error it goes back to the pool (which
//! closes it if it is broken), or is closed by its user. A small pool keeps none, leaving its
//! few connections to the API's requests.

use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use super::PING_IDLE;

/// The fewest connections a pool must have for its users to keep some: the claims, the
/// recorder and the two event writers keep four, and the rest serve requests.
const KEEP_FROM: u32 = 8;

/// A connection, and when its last use ended.
pub(super) struct Kept {
    kept: Option<(PoolConnection<Postgres>, Instant)>,
    /// Whether the pool is large enough to keep one.
    keeps: bool,
}

impl Kept {
    pub(super) fn new(pool: &PgPool) -> Kept {
        Kept {
            kept: None,
            keeps: pool.options().get_max_connections() >= KEEP_FROM,
        }
    }

    /// The kept connection, if its last use ended within `PING_IDLE`; else one from the pool.
    pub(super) async fn take(&mut self, pool: &PgPool) -> sqlx::Result<PoolConnection<Postgres>> {
        match self.kept.take() {
            Some((conn, used)) if used.elapsed() < PING_IDLE => Ok(conn),
            // One that sat idle goes back to the pool as it is dropped here.
            _ => pool.acquire().await,
        }
    }

    /// Keeps `conn` for the next use, after one that went well.
    pub(super) fn keep(&mut self, conn: PoolConnection<Postgres>) {
        if self.keeps {
            self.kept = Some((conn, Instant::now()));
        }
    }
}
