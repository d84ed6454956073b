//! Claiming due deliveries in PostgreSQL, from several nodes at once.
//!
//! A claim finds the endpoints with pending work through an index and locks their rows with
//! `FOR NO KEY UPDATE SKIP LOCKED` (an endpoint another node is claiming is skipped, not
//! waited for), counts their calls in flight on every node from the unexpired leases (less
//! the claiming node's calls that ended and wait to be recorded), and leases each one's due
//! deliveries up to the room left. Holding the endpoint's row while counting and leasing is
//! what keeps the per-endpoint cap, and a suspended endpoint's single probe, true across
//! nodes; it also means no other claim reads that endpoint's deliveries meanwhile, so they are
//! not locked row by row (a row lock writes to the row and to the WAL). A lease that runs out
//! (its node died) makes the delivery due again for everyone.
//!
//! A rate-limited endpoint's calls are given start times under the same lock, and its next
//! free one is written back to its row before the lock is let go: the nodes share one budget.
//!
//! A claim is two round trips: the transaction's start with the lock statement, and the lease
//! statement with the commit. The dispatcher runs one claim after another, so their round
//! trips bound how fast a node hands out work: each waits for the network when the database
//! is on another machine (with a millisecond's round trip, four per claim held a node to 2,760
//! calls/s, two let it make 4,169; docs/BENCHMARKS.md), and for the database's process to be
//! scheduled on a busy one. sqlx's protocol (one statement per round trip, with its
//! parameters) would take four, so the claim uses the simple protocol, which runs several
//! statements at once but takes no parameters: its statements are prepared on every
//! connection (`prepare`) and run by `EXECUTE`, with the values written into the text, where
//! only numbers, booleans and NULL can go (`Plain`).

use std::fmt::Write;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Executor, PgConnection, PgPool, Postgres, Row};

use super::delivery::UNSYNCED;
use super::kept::Kept;
use super::{decode, decode_word};
use crate::clock::Micros;
use crate::domain::delivery::Claimed;
use crate::domain::endpoint::{Auth, CallControls, EndpointState, Occupancy, Ordering, signing_secrets};
use crate::domain::pacing::{Slots, earliest};
use crate::domain::version::{Deprecation, WebhookVersion};
use crate::store::codec::{StoredControls, decode_day};
use crate::store::{Claim, ClaimRequest, StoreResult};

/// The query of when the first pending delivery, suspended endpoint or lease falls due after
/// the parameter named: a statement of its own, and a column of `LEASE_DUE`.
macro_rules! next_due_after {
    ($after:literal) => {
        concat!(
            "SELECT min(t) FROM (
                 SELECT min(next_at) AS t FROM deliveries WHERE state = 'pending' AND next_at > ",
            $after,
            " UNION ALL
                 SELECT min(suspended_until) FROM endpoints WHERE state = 'suspended' AND suspended_until > ",
            $after,
            " UNION ALL
                 SELECT min(until) FROM leases WHERE until > ",
            $after,
            ") AS upcoming"
        )
    };
}

/// Every callable endpoint with a pending delivery (found by skipping through the index
/// rather than reading every pending row), locked unless another node holds it, with its
/// leases on every node: how many, and how many of them are the claiming node's ended calls
/// `($2, $3)` (delivery ids and lease ends). The leases are read as of the statement's start,
/// before the lock: a claim of another node that released an endpoint just before this one
/// locked it may have leased more since, which `LEASE_DUE`, reading them again once the lock
/// is held, takes off the room.
const LOCK_ENDPOINTS_WITH_WORK: &str = "WITH RECURSIVE busy(seq) AS (
        SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending'
        UNION ALL
        SELECT (SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending' AND endpoint_seq > busy.seq)
        FROM busy WHERE busy.seq IS NOT NULL)
    SELECT e.account_id, e.seq, e.id, e.url, e.auth, e.secret, e.state, e.suspended_until, e.ordering,
           e.previous_secret, e.previous_secret_until, e.headers, e.retry_schedule, e.timeout_ms,
           e.rate_limit, e.next_call_at, e.version, w.deprecated_at, w.sunset, l.leased, l.ended
    FROM busy JOIN endpoints e ON e.seq = busy.seq
    LEFT JOIN webhook_versions w ON w.version = e.version
    CROSS JOIN LATERAL (
        SELECT count(*) AS leased,
               count(*) FILTER (WHERE (l.delivery_id, l.until) IN (SELECT * FROM unnest($2::bigint[], $3::bigint[])))
                   AS ended
        FROM leases l WHERE l.account_id = e.account_id AND l.endpoint_seq = e.seq AND l.until > $1) l
    WHERE e.state = 'active' OR (e.state = 'suspended' AND e.suspended_until <= $1)
    FOR NO KEY UPDATE OF e SKIP LOCKED";

/// Leases, for each endpoint `($1, $2)`, up to its room `$4` of its due deliveries, oldest
/// first, in one statement; FIFO endpoints (`$3` true) get only each application's oldest pending
/// one. The leases are read again, now that the claim holds the endpoints: their deliveries
/// are skipped (by an array of ids, which the planner cannot mistake for a table to join; a
/// join with `leases` got a generic plan, made while the table was empty, that read every
/// lease of the account for each due delivery), and those beyond the `$9` the lock statement
/// counted take their place in the room. A delivery whose lease ran out is due again: its
/// lease row is taken over. (If the call that held it is recorded at that very moment, the
/// delivery is called once more: at least once, as for any lease that runs out.) The rows
/// come back endpoint by endpoint, in the order given. A rate-limited endpoint's calls start
/// at `$7`, `$8` apart, and the endpoint keeps the next free start time after those it
/// leased. Each row also says when the next thing falls due, as of the statement's start:
/// the leases it takes are not in that answer, which the caller adds.
const LEASE_DUE: &str = concat!(
    "WITH target AS (
        SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bool[], $4::bigint[], $7::bigint[], $8::bigint[],
                             $9::bigint[])
            WITH ORDINALITY AS t(account_id, seq, fifo, room, first_start, spacing, counted, position)),
    leased AS (
        SELECT t.position, count(l.delivery_id) AS leased,
               coalesce(array_agg(l.delivery_id) FILTER (WHERE l.delivery_id IS NOT NULL), '{}') AS deliveries
        FROM target t
        LEFT JOIN leases l ON l.account_id = t.account_id AND l.endpoint_seq = t.seq AND l.until > $5
        GROUP BY t.position),
    due AS (
        SELECT t.position, d.account_id, d.id, d.endpoint_seq, d.attempts, d.created_at, ev.id AS event_id,
               ev.event_type, ev.application_id, ev.body, ev.snapshot, ev.created_at AS event_at,
               t.first_start, t.spacing
        FROM target t JOIN leased USING (position)
        CROSS JOIN LATERAL (
            SELECT d.account_id, d.id, d.endpoint_seq, d.attempts, d.event_seq, d.created_at FROM deliveries d
            WHERE d.account_id = t.account_id AND d.endpoint_seq = t.seq AND d.state = 'pending'
              AND d.next_at <= $5 AND d.id <> ALL(leased.deliveries)
              AND (NOT t.fifo OR NOT EXISTS (
                   SELECT 1 FROM deliveries o
                   WHERE o.account_id = d.account_id AND o.endpoint_seq = d.endpoint_seq
                     AND o.application_id IS NOT DISTINCT FROM d.application_id
                     AND o.state = 'pending' AND o.fifo AND o.id < d.id))
            ORDER BY d.next_at LIMIT greatest(0, t.room - greatest(0, leased.leased - t.counted))) d
        CROSS JOIN LATERAL (
            SELECT ev.id, ev.event_type, ev.application_id, ev.body, ev.snapshot, ev.created_at FROM events ev
            WHERE ev.account_id = d.account_id AND ev.seq = d.event_seq) ev),
    taken AS (
        INSERT INTO leases (account_id, delivery_id, endpoint_seq, until)
        SELECT due.account_id, due.id, due.endpoint_seq, $6 FROM due
        ON CONFLICT (account_id, delivery_id) DO UPDATE SET until = excluded.until),
    paced AS (
        UPDATE endpoints e SET next_call_at = p.first_start + p.spacing * p.taken
        FROM (SELECT account_id, endpoint_seq, min(first_start) AS first_start, min(spacing) AS spacing,
                     count(*) AS taken
              FROM due WHERE first_start IS NOT NULL GROUP BY account_id, endpoint_seq) p
        WHERE e.account_id = p.account_id AND e.seq = p.endpoint_seq)
    SELECT position, id, attempts + 1, event_id, event_type, application_id, body, created_at, snapshot, event_at,
           (",
    next_due_after!("$5"),
    ")
    FROM due ORDER BY position, id"
);

/// An endpoint with due work, as a claim sees it once it holds the endpoint's row.
struct Target {
    account_id: i64,
    seq: i64,
    id: String,
    url: String,
    auth: Option<Auth>,
    secrets: Vec<String>,
    state: EndpointState,
    suspended_until: Option<Micros>,
    ordering: Ordering,
    controls: Arc<CallControls>,
    /// The first start time the endpoint's next call may have, under its rate limit.
    next_call_at: Option<Micros>,
    version: WebhookVersion,
    /// Set when support has deprecated the version.
    deprecation: Option<Deprecation>,
    /// Its calls in flight on every node, and how many of them have ended here, as the lock
    /// statement counted them.
    leased: i64,
    ended: i64,
}

fn target_from(row: &PgRow, now: Micros) -> StoreResult<Target> {
    let auth: Option<String> = row.try_get(4)?;
    Ok(Target {
        account_id: row.try_get(0)?,
        seq: row.try_get(1)?,
        id: row.try_get(2)?,
        url: row.try_get(3)?,
        auth: auth.as_deref().map(|a| decode::<Auth>("auth", a)).transpose()?,
        secrets: signing_secrets(row.try_get(5)?, row.try_get(9)?, row.try_get(10)?, now),
        state: decode_word("state", row.try_get(6)?)?,
        suspended_until: row.try_get(7)?,
        ordering: decode_word("ordering", row.try_get(8)?)?,
        controls: Arc::new(
            StoredControls {
                headers: row.try_get(11)?,
                retry_schedule: row.try_get(12)?,
                timeout_ms: row.try_get(13)?,
                rate_limit: row.try_get(14)?,
            }
            .decode()?,
        ),
        next_call_at: row.try_get(15)?,
        version: decode_word("version", row.try_get(16)?)?,
        deprecation: match (row.try_get(17)?, row.try_get::<Option<String>, _>(18)?) {
            (Some(at), Some(sunset)) => Some(Deprecation {
                at,
                sunset: decode_day("sunset", &sunset)?,
            }),
            _ => None,
        },
        leased: row.try_get(19)?,
        ended: row.try_get(20)?,
    })
}

/// The statements of a claim, by the names they are prepared under on every connection, with
/// their parameters' types (a parameter of the simple protocol's `EXECUTE` is a literal, whose
/// type comes from here).
const PREPARED: [(&str, &str, &str); 3] = [
    (
        "herald_lock_endpoints_with_work",
        "bigint, bigint[], bigint[]",
        LOCK_ENDPOINTS_WITH_WORK,
    ),
    (
        "herald_lease_due",
        "bigint[], bigint[], bool[], bigint[], bigint, bigint, bigint[], bigint[], bigint[]",
        LEASE_DUE,
    ),
    ("herald_next_due", "bigint", next_due_after!("$1")),
];

/// Prepares the claim's statements on a new connection of the pool.
pub(super) async fn prepare(conn: &mut PgConnection) -> sqlx::Result<()> {
    let mut script = String::new();
    for (name, types, statement) in PREPARED {
        let _ = write!(script, "PREPARE {name}({types}) AS {statement};");
    }
    conn.execute(script.as_str()).await?;
    Ok(())
}

/// A value a claim writes into a statement's text: only numbers, booleans and NULL, which
/// cannot carry anything else into it.
trait Plain: std::fmt::Display {}
impl Plain for i64 {}
impl Plain for bool {}

/// An array literal of `values`: `'{1,NULL,3}'`.
fn array<T: Plain>(values: impl IntoIterator<Item = Option<T>>) -> String {
    let mut literal = String::from("'{");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        match value {
            Some(value) => {
                let _ = write!(literal, "{value}");
            }
            None => literal.push_str("NULL"),
        }
    }
    literal.push_str("}'");
    literal
}

/// A pooled connection inside a transaction that sqlx does not know of, begun by the simple
/// protocol. Unless the claim ends the transaction (`ended`), the connection is closed when
/// this is dropped, on an error or when the claim is cancelled, and PostgreSQL rolls the
/// transaction back, rather than handed to the next caller with the endpoints still locked.
struct InTransaction(Option<PoolConnection<Postgres>>);

impl InTransaction {
    fn conn(&mut self) -> &mut PgConnection {
        self.0.as_mut().expect("the connection is only taken by `ended`")
    }

    /// The connection, once the claim's transaction has ended.
    fn ended(mut self) -> PoolConnection<Postgres> {
        self.0.take().expect("the connection is only taken by `ended`")
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.0 {
            conn.close_on_drop();
        }
    }
}

/// Leases the due deliveries `request` allows, in one transaction: two round trips, however
/// many endpoints have work (three when the endpoints with room had nothing due after all).
/// Claims run one after another, on the connection they keep (`kept`).
pub(super) async fn claim(pool: &PgPool, kept: &mut Kept, request: &ClaimRequest) -> StoreResult<Claim> {
    let mut tx = InTransaction(Some(kept.take(pool).await?));
    let (ended, ended_until): (Vec<i64>, Vec<i64>) = request.ended.iter().copied().unzip();
    let begin = format!(
        "BEGIN; {UNSYNCED}; EXECUTE herald_lock_endpoints_with_work({}, {}, {})",
        request.now,
        array(ended.into_iter().map(Some)),
        array(ended_until.into_iter().map(Some)),
    );
    let rows = tx.conn().fetch_all(begin.as_str()).await?;
    let mut targets = rows
        .iter()
        .map(|row| target_from(row, request.now))
        .collect::<StoreResult<Vec<_>>>()?;
    // Start after the endpoint the last claim ended with, so that when the global cap binds,
    // every endpoint gets its turn.
    targets.sort_by_key(|t| (t.seq <= request.after_endpoint, t.seq));
    // Each endpoint's room, in turn, until the claim's limit is used up; a rate limit narrows
    // it to the calls that may start within the claim's horizon.
    let mut left = request.limit;
    let mut rooms = Vec::with_capacity(targets.len());
    let mut slots = Vec::with_capacity(targets.len());
    let mut paced = None::<Micros>;
    for target in &targets {
        let occupancy = Occupancy {
            state: target.state,
            suspended_until: target.suspended_until,
            leased: u32::try_from(target.leased).unwrap_or(u32::MAX),
            ended: u32::try_from(target.ended).unwrap_or(u32::MAX),
        };
        let room = occupancy.room(request.per_endpoint, request.now).min(left);
        let paced_slots = target
            .controls
            .rate_limit
            .filter(|_| room > 0)
            .map(|limit| Slots::open(limit, target.next_call_at, request.now, request.ahead));
        let allowed = paced_slots.map_or(room, |s| s.count.min(room));
        if let Some(s) = paced_slots.filter(|_| allowed == 0) {
            paced = earliest(paced, s.reopens(0, request.ahead));
        }
        left -= allowed;
        rooms.push(i64::from(allowed));
        slots.push(paced_slots);
    }
    if rooms.iter().all(|room| *room == 0) {
        // Nothing to lease: an endpoint without room is at capacity, unless its rate limit is
        // what holds it back (`paced`).
        let end = format!("EXECUTE herald_next_due({}); COMMIT", request.now);
        let next_due = match tx.conn().fetch_all(end.as_str()).await?.first() {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        kept.keep(tx.ended());
        return Ok(Claim {
            at_capacity: slots.iter().any(Option::is_none),
            paced,
            next_due,
            ..Claim::default()
        });
    }
    let lease = format!(
        "EXECUTE herald_lease_due({}, {}, {}, {}, {}, {}, {}, {}, {}); COMMIT",
        array(targets.iter().map(|t| Some(t.account_id))),
        array(targets.iter().map(|t| Some(t.seq))),
        array(targets.iter().map(|t| Some(t.ordering == Ordering::Fifo))),
        array(rooms.iter().copied().map(Some)),
        request.now,
        request.lease_until,
        array(slots.iter().map(|s| s.map(|s| s.first))),
        array(slots.iter().map(|s| s.map(|s| s.interval))),
        array(targets.iter().map(|t| Some(t.leased))),
    );
    let leased = tx.conn().fetch_all(lease.as_str()).await?;
    let next_due = match leased.first() {
        Some(row) => earliest(row.try_get(10)?, request.lease_until),
        None => {
            sqlx::query_scalar(next_due_after!("$1"))
                .bind(request.now)
                .fetch_one(tx.conn())
                .await?
        }
    };
    kept.keep(tx.ended());
    let mut taken = vec![0u32; targets.len()];
    let mut claimed = Vec::with_capacity(leased.len());
    for r in leased {
        let position = r.try_get::<i64, _>(0)? as usize - 1;
        let target = &targets[position];
        taken[position] += 1;
        claimed.push(Claimed {
            delivery_id: r.try_get(1)?,
            account_id: target.account_id,
            attempt: r.try_get::<i64, _>(2)? as u32,
            endpoint_seq: target.seq,
            endpoint_id: target.id.clone(),
            url: target.url.clone(),
            auth: target.auth.clone(),
            secrets: target.secrets.clone(),
            event_id: r.try_get(3)?,
            event_type: r.try_get(4)?,
            application_id: r.try_get(5)?,
            body: target.version.body(
                &r.try_get::<String, _>(6)?,
                r.try_get::<Option<String>, _>(8)?.as_deref(),
                r.try_get(9)?,
            ),
            version: target.version,
            deprecation: target.deprecation.clone(),
            leased_until: request.lease_until,
            ordering: target.ordering,
            probe: target.state == EndpointState::Suspended,
            created_at: r.try_get(7)?,
            controls: target.controls.clone(),
            start_at: slots[position].map_or(request.now, |s| s.start(taken[position] - 1)),
        });
    }
    let mut at_capacity = false;
    for (i, taken) in taken.iter().enumerate() {
        match slots[i] {
            Some(s) if *taken == s.count && *taken > 0 => {
                paced = earliest(paced, s.reopens(*taken, request.ahead));
            }
            Some(_) if *taken == 0 => {}
            _ => at_capacity |= i64::from(*taken) == rooms[i],
        }
    }
    Ok(Claim {
        claimed,
        at_capacity,
        paced,
        next_due,
    })
}
