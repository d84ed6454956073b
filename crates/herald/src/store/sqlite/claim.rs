//! Claiming due deliveries in SQLite: find the endpoints with pending work through an index,
//! then read each one's due deliveries up to its room, and lease what was taken. A claim only
//! reads the database: this node holds its leases in memory (see `leases`). An endpoint's
//! calls in flight are its leased deliveries, less those whose calls have ended and wait to be
//! recorded. A rate-limited endpoint's calls are given start times as they are claimed, and
//! the claim hands back each such endpoint's next free one, for its row.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::vtab::array::Array;
use rusqlite::{Connection, Row, params};

use super::leases::{Lease, Leases};
use super::{column_text, decode, decode_word};
use crate::clock::Micros;
use crate::domain::delivery::Claimed;
use crate::domain::endpoint::{Auth, EndpointState, Occupancy, Ordering, signing_secrets};
use crate::domain::pacing::{Slots, earliest};
use crate::domain::version::{Deprecation, WebhookVersion};
use crate::store::codec::{StoredControls, decode_day};
use crate::store::{Claim, ClaimRequest, StoreResult};

/// Every endpoint with a pending delivery (found by skipping through the index of pending
/// deliveries by endpoint rather than reading every pending row), whether it may be called
/// now, and when its first pending delivery that is not due yet falls due. That time is
/// sought endpoint by endpoint, in the same index: an index of all pending deliveries by due
/// time would answer in one step, but the writer thread would write an entry in it for every
/// delivery and remove it once called (migration 0020).
const ENDPOINTS_WITH_WORK: &str = "WITH RECURSIVE busy(seq) AS (
        SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending'
        UNION ALL
        SELECT (SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending' AND endpoint_seq > busy.seq)
        FROM busy WHERE busy.seq IS NOT NULL)
    SELECT e.seq, e.id, e.url, e.auth, e.secret, e.state, e.suspended_until, e.ordering,
           e.previous_secret, e.previous_secret_until, e.headers, e.retry_schedule, e.timeout_ms,
           e.rate_limit, e.next_call_at, e.version, w.deprecated_at, w.sunset,
           e.state = 'active' OR (e.state = 'suspended' AND e.suspended_until <= ?1),
           (SELECT min(d.next_at) FROM deliveries d
            WHERE d.endpoint_seq = e.seq AND d.state = 'pending' AND d.next_at > ?1)
    FROM busy JOIN endpoints e ON e.seq = busy.seq
    LEFT JOIN webhook_versions w ON w.version = e.version";

/// One endpoint's due deliveries, oldest first, but for its leased ones (`?5`, their ids); FIFO
/// endpoints get only each application's oldest pending one. The leased ones are left out by
/// their ids, which the index of the endpoint's pending deliveries holds: neither their rows
/// nor their events are read. (Reading past them read a row and an event for each: with 100
/// calls in flight per endpoint, a tenth of the readers' time.)
const DUE_OF_ENDPOINT: &str =
    "SELECT d.id, d.account_id, d.attempts + 1, ev.id, ev.event_type, ev.application_id, ev.body, d.created_at,
           ev.snapshot, ev.created_at
    FROM deliveries d JOIN events ev ON ev.seq = d.event_seq
    WHERE d.endpoint_seq = ?1 AND d.state = 'pending' AND d.next_at <= ?2 AND d.id NOT IN rarray(?5)
      AND (?3 = 'parallel' OR NOT EXISTS (
           SELECT 1 FROM deliveries o
           WHERE o.endpoint_seq = d.endpoint_seq AND o.application_id IS d.application_id
             AND o.state = 'pending' AND o.fifo = 1 AND o.id < d.id))
    ORDER BY d.next_at LIMIT ?4";

/// An endpoint that has pending deliveries, as a claim sees it.
struct Target {
    seq: i64,
    id: String,
    url: String,
    auth: Option<String>,
    secrets: Vec<String>,
    state: String,
    suspended_until: Option<Micros>,
    ordering: String,
    controls: StoredControls,
    /// The first start time the endpoint's next call may have, under its rate limit.
    next_call_at: Option<Micros>,
    version: String,
    /// When the version was deprecated, and its sunset day, if it is.
    deprecated: Option<(Micros, String)>,
    /// Whether it may be called now: active, or at the end of a suspension.
    callable: bool,
    /// When its first pending delivery that is not due yet falls due.
    later: Option<Micros>,
}

fn target_from(row: &Row, now: Micros) -> rusqlite::Result<Target> {
    Ok(Target {
        seq: row.get(0)?,
        id: row.get(1)?,
        url: row.get(2)?,
        auth: row.get(3)?,
        secrets: signing_secrets(row.get(4)?, row.get(8)?, row.get(9)?, now),
        state: row.get(5)?,
        suspended_until: row.get(6)?,
        ordering: row.get(7)?,
        controls: StoredControls {
            headers: row.get(10)?,
            retry_schedule: row.get(11)?,
            timeout_ms: row.get(12)?,
            rate_limit: row.get(13)?,
        },
        next_call_at: row.get(14)?,
        version: row.get(15)?,
        deprecated: match (row.get(16)?, row.get::<_, Option<String>>(17)?) {
            (Some(at), Some(sunset)) => Some((at, sunset)),
            _ => None,
        },
        callable: row.get(18)?,
        later: row.get(19)?,
    })
}

impl Target {
    fn occupancy(&self, calls: &Calls) -> StoreResult<Occupancy> {
        Ok(Occupancy {
            state: decode_word("state", self.state.clone())?,
            suspended_until: self.suspended_until,
            leased: calls.leased.len() as u32,
            ended: calls.ended,
        })
    }
}

/// An endpoint's leased deliveries (their ids), and how many of them are calls that have ended.
#[derive(Debug, Default)]
struct Calls {
    leased: Vec<i64>,
    ended: u32,
}

/// Each endpoint's calls, by endpoint seq, from the leases held and the calls `ended`.
fn calls_by_endpoint(held: &HashMap<i64, Lease>, ended: &[(i64, Micros)]) -> HashMap<i64, Calls> {
    let mut calls = HashMap::<i64, Calls>::new();
    for (&delivery, lease) in held {
        calls.entry(lease.endpoint_seq).or_default().leased.push(delivery);
    }
    for (delivery, until) in ended {
        // Only an ended call whose lease is still held: once recorded, it is in neither count.
        if let Some(lease) = held.get(delivery).filter(|lease| lease.until == *until) {
            calls.entry(lease.endpoint_seq).or_default().ended += 1;
        }
    }
    calls
}

/// When the first suspension ends after `after`, or `later` if it is sooner: when the first
/// pending delivery not yet due falls due. (This node holds every lease until it records the
/// call, so none runs out.)
fn next_due(conn: &Connection, after: Micros, later: Option<Micros>) -> StoreResult<Option<Micros>> {
    let suspension_ends: Option<Micros> = conn
        .prepare_cached(
            "SELECT min(suspended_until) FROM endpoints WHERE state = 'suspended' AND suspended_until > ?1",
        )?
        .query_row([after], |r| r.get(0))?;
    Ok([suspension_ends, later].into_iter().flatten().min())
}

/// What a claim leased, and the next free start time it gave each rate-limited endpoint it
/// took calls of, for the endpoint's row.
pub(super) struct Chosen {
    pub claim: Claim,
    pub next_calls: Vec<(i64, Micros)>,
}

/// Chooses the due deliveries `request` allows and leases them in `leases`; only reads `conn`.
pub(super) fn claim(conn: &Connection, request: &ClaimRequest, leases: &Leases) -> StoreResult<Chosen> {
    let _turn = leases.claiming();
    let held = leases.snapshot();
    let mut calls = calls_by_endpoint(&held, &request.ended);
    // All its statements read one snapshot, begun after the copy of the leases. A reading
    // connection also drops its page cache at every read transaction that finds the file
    // changed: one transaction for the claim reads its pages once, not once per endpoint.
    // Dropping it ends the read.
    let _snapshot = conn.unchecked_transaction()?;
    let mut targets: Vec<Target> = conn
        .prepare_cached(ENDPOINTS_WITH_WORK)?
        .query_map([request.now], |row| target_from(row, request.now))?
        .collect::<Result<_, _>>()?;
    // Every endpoint with pending work tells when its next delivery falls due; those that
    // cannot be called now have nothing to claim.
    let later = targets.iter().filter_map(|t| t.later).min();
    targets.retain(|t| t.callable);
    // Start after the endpoint the last claim ended with, so that when the global
    // cap binds, every endpoint gets its turn.
    targets.sort_by_key(|t| (t.seq <= request.after_endpoint, t.seq));
    let mut due = conn.prepare_cached(DUE_OF_ENDPOINT)?;
    let mut chosen = Vec::new();
    let mut next_calls = Vec::new();
    let mut at_capacity = false;
    let mut paced = None::<Micros>;
    for target in targets {
        let left = (request.limit as usize).saturating_sub(chosen.len()) as u32;
        let its_calls = calls.remove(&target.seq).unwrap_or_default();
        let room = target
            .occupancy(&its_calls)?
            .room(request.per_endpoint, request.now)
            .min(left);
        if room == 0 {
            at_capacity = true;
            continue;
        }
        let controls = Arc::new(target.controls.decode()?);
        let slots = controls
            .rate_limit
            .map(|limit| Slots::open(limit, target.next_call_at, request.now, request.ahead));
        let allowed = slots.map_or(room, |slots| slots.count.min(room));
        if let Some(slots) = slots.filter(|_| allowed == 0) {
            paced = earliest(paced, slots.reopens(0, request.ahead));
            continue;
        }
        let before = chosen.len();
        let auth = target.auth.as_deref().map(|a| decode::<Auth>("auth", a)).transpose()?;
        let ordering = decode_word::<Ordering>("ordering", target.ordering.clone())?;
        let probe = target.state == column_text(&EndpointState::Suspended);
        let version = decode_word::<WebhookVersion>("version", target.version.clone())?;
        let deprecation = match &target.deprecated {
            Some((at, sunset)) => Some(Deprecation {
                at: *at,
                sunset: decode_day("sunset", sunset)?,
            }),
            None => None,
        };
        // Its leased deliveries are still pending: the read leaves them out.
        let leased: Array = Rc::new(its_calls.leased.into_iter().map(Value::from).collect());
        let rows = due.query_map(
            params![target.seq, request.now, target.ordering, allowed, leased],
            |r| {
                Ok(Claimed {
                    delivery_id: r.get(0)?,
                    account_id: r.get(1)?,
                    attempt: r.get::<_, i64>(2)? as u32,
                    endpoint_seq: target.seq,
                    endpoint_id: target.id.clone(),
                    url: target.url.clone(),
                    auth: auth.clone(),
                    secrets: target.secrets.clone(),
                    event_id: r.get(3)?,
                    event_type: r.get(4)?,
                    application_id: r.get(5)?,
                    body: version.body(
                        &r.get::<_, String>(6)?,
                        r.get::<_, Option<String>>(8)?.as_deref(),
                        r.get(9)?,
                    ),
                    version,
                    deprecation: deprecation.clone(),
                    leased_until: request.lease_until,
                    ordering,
                    probe,
                    created_at: r.get(7)?,
                    controls: controls.clone(),
                    start_at: request.now,
                })
            },
        )?;
        for claimed in rows {
            let mut claimed = claimed?;
            if let Some(slots) = &slots {
                claimed.start_at = slots.start((chosen.len() - before) as u32);
            }
            chosen.push(claimed);
        }
        let taken = (chosen.len() - before) as u32;
        if let Some(slots) = slots.filter(|_| taken > 0) {
            next_calls.push((target.seq, slots.next_free(taken)));
            if taken == slots.count {
                paced = earliest(paced, slots.reopens(taken, request.ahead));
            }
        }
        at_capacity |= taken == room;
        if chosen.len() >= request.limit as usize {
            break;
        }
    }
    let next_due = next_due(conn, request.now, later)?;
    leases.take(chosen.iter().map(|c| {
        let lease = Lease {
            endpoint_seq: c.endpoint_seq,
            until: c.leased_until,
        };
        (c.delivery_id, lease)
    }));
    Ok(Chosen {
        claim: Claim {
            claimed: chosen,
            at_capacity,
            paced,
            next_due,
        },
        next_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database, migrated, on a connection that knows `rarray`.
    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        rusqlite::vtab::array::load_module(&conn).unwrap();
        super::super::migrate::run(&conn).unwrap();
        conn
    }

    /// The steps of the plan SQLite makes for `sql` with `params`, on a new database.
    fn plan(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let conn = migrated();
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        plan.query_map(params, |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The look-ahead seeks each busy endpoint's first delivery not yet due: with no index of
    /// all pending deliveries by due time, a minimum over all of them would read every one.
    #[test]
    fn the_look_ahead_seeks_each_endpoints_next_delivery() {
        let steps = plan(ENDPOINTS_WITH_WORK, [0]);
        assert!(
            steps
                .iter()
                .any(|s| s.contains("INDEX deliveries_by_endpoint (endpoint_seq=? AND next_at>?)")),
            "{steps:?}"
        );
    }

    /// The FIFO check looks an application's older pending deliveries up in the index of FIFO
    /// deliveries: SQLite uses a partial index only for a query that names its condition
    /// (`fifo = 1`), and without it would read every pending delivery of the endpoint for
    /// each one it considers.
    #[test]
    fn the_fifo_check_reads_the_index_of_fifo_deliveries() {
        let steps = plan(DUE_OF_ENDPOINT, params![1, 0, "fifo", 10, Array::default()]);
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("SEARCH o USING") && s.contains("INDEX deliveries_in_order (")),
            "{steps:?}"
        );
    }

    /// The due read leaves an endpoint's leased deliveries out by their ids, and takes as many
    /// as there is room for from the rest.
    #[test]
    fn the_due_read_leaves_the_leased_deliveries_out() {
        let conn = migrated();
        // The read alone is tested: its rows need no account or endpoint behind them.
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        for n in 1..=5 {
            conn.execute(
                "INSERT INTO events (seq, id, account_id, event_type, created_at, body)
                 VALUES (?1, 'evt_' || ?1, 1, 'T', 0, '{}')",
                [n],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO deliveries (id, account_id, endpoint_seq, event_seq, state, next_at, created_at)
                 VALUES (?1, 1, 1, ?1, 'pending', ?1, 0)",
                [n],
            )
            .unwrap();
        }
        let leased: Array = Rc::new([1i64, 2, 4].into_iter().map(Value::from).collect());
        let due: Vec<i64> = conn
            .prepare(DUE_OF_ENDPOINT)
            .unwrap()
            .query_map(params![1, 10, "parallel", 2, leased], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(due, [3, 5]);
    }
}
