//! Claiming due deliveries in PostgreSQL, from several nodes at once.
//!
//! A claim finds the endpoints with pending work through an index, then takes them one at a
//! time: it locks the endpoint's row with `FOR NO KEY UPDATE SKIP LOCKED` (an endpoint another
//! node is claiming is skipped, not waited for), counts the calls in flight on every node from
//! the unexpired leases, and leases due deliveries up to the room left. Holding the
//! endpoint's row while counting and leasing is what keeps the per-endpoint cap, and a
//! suspended endpoint's single probe, true across nodes; it also means no other claim reads
//! that endpoint's deliveries meanwhile, so they are not locked row by row (a row lock writes
//! to the row and to the WAL: on a durable cluster that was most of the claim's cost). A lease
//! that runs out (its node died) makes the delivery due again for everyone.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{decode, decode_word};
use crate::clock::Micros;
use crate::domain::delivery::Claimed;
use crate::domain::endpoint::{Auth, Occupancy, signing_secrets};
use crate::store::{ClaimRequest, StoreResult};

/// Every callable endpoint with a pending delivery, by account and seq, found by skipping
/// through the index rather than reading every pending row.
const ENDPOINTS_WITH_WORK: &str = "WITH RECURSIVE busy(seq) AS (
        SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending'
        UNION ALL
        SELECT (SELECT min(endpoint_seq) FROM deliveries WHERE state = 'pending' AND endpoint_seq > busy.seq)
        FROM busy WHERE busy.seq IS NOT NULL)
    SELECT e.account_id, e.seq
    FROM busy JOIN endpoints e ON e.seq = busy.seq
    WHERE e.state = 'active' OR (e.state = 'suspended' AND e.suspended_until <= $1)";

/// Locks one endpoint unless another node holds it, and reads it with its calls in flight
/// (on every node).
const LOCK_ENDPOINT: &str = "SELECT e.id, e.url, e.auth, e.secret, e.state, e.suspended_until, e.ordering,
        e.previous_secret, e.previous_secret_until,
        (SELECT count(*) FROM leases l WHERE l.account_id = e.account_id AND l.endpoint_seq = e.seq
                                         AND l.until > $3)
    FROM endpoints e WHERE e.account_id = $1 AND e.seq = $2
    FOR NO KEY UPDATE OF e SKIP LOCKED";

/// Leases up to `$5` of one endpoint's due deliveries, oldest first; FIFO endpoints get only
/// each application's oldest pending one. A delivery whose lease ran out is due again: its
/// lease row is taken over. (If the call that held it is recorded at that very moment, the
/// delivery is called once more: at least once, as for any lease that runs out.)
const LEASE_DUE: &str = "WITH due AS (
        SELECT d.id FROM deliveries d
        WHERE d.account_id = $1 AND d.endpoint_seq = $2 AND d.state = 'pending' AND d.next_at <= $3
          AND NOT EXISTS (SELECT 1 FROM leases l
                          WHERE l.account_id = d.account_id AND l.delivery_id = d.id AND l.until > $3)
          AND ($4 = 'parallel' OR NOT EXISTS (
               SELECT 1 FROM deliveries o
               WHERE o.account_id = d.account_id AND o.endpoint_seq = d.endpoint_seq
                 AND o.application_id IS NOT DISTINCT FROM d.application_id
                 AND o.state = 'pending' AND o.id < d.id))
        ORDER BY d.next_at LIMIT $5),
    leased AS (
        INSERT INTO leases (account_id, delivery_id, endpoint_seq, until)
        SELECT $1, due.id, $2, $6 FROM due
        ON CONFLICT (account_id, delivery_id) DO UPDATE SET until = excluded.until)
    SELECT d.id, d.attempts + 1, ev.id, ev.event_type, ev.application_id, ev.body
    FROM due JOIN deliveries d ON d.account_id = $1 AND d.id = due.id
    JOIN events ev ON ev.account_id = d.account_id AND ev.seq = d.event_seq
    ORDER BY d.id";

/// An endpoint with due work, as a claim sees it once it holds the endpoint's row.
struct Target {
    account_id: i64,
    seq: i64,
    id: String,
    url: String,
    auth: Option<Auth>,
    secrets: Vec<String>,
    occupancy: Occupancy,
    ordering: String,
}

fn target_from(account_id: i64, seq: i64, row: &PgRow, now: Micros) -> StoreResult<Target> {
    let auth: Option<String> = row.try_get(2)?;
    Ok(Target {
        account_id,
        seq,
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        auth: auth.as_deref().map(|a| decode::<Auth>("auth", a)).transpose()?,
        secrets: signing_secrets(row.try_get(3)?, row.try_get(7)?, row.try_get(8)?, now),
        occupancy: Occupancy {
            state: decode_word("state", row.try_get(4)?)?,
            suspended_until: row.try_get(5)?,
            in_flight: u32::try_from(row.try_get::<i64, _>(9)?).unwrap_or(u32::MAX),
        },
        ordering: row.try_get(6)?,
    })
}

/// Leases the due deliveries `request` allows, inside the caller's transaction.
pub(super) async fn claim(conn: &mut PgConnection, request: &ClaimRequest) -> StoreResult<Vec<Claimed>> {
    let mut candidates: Vec<(i64, i64)> = sqlx::query_as(ENDPOINTS_WITH_WORK)
        .bind(request.now)
        .fetch_all(&mut *conn)
        .await?;
    // Start after the endpoint the last claim ended with, so that when the global cap binds,
    // every endpoint gets its turn.
    candidates.sort_by_key(|&(_, seq)| (seq <= request.after_endpoint, seq));
    let mut chosen = Vec::new();
    for (account_id, seq) in candidates {
        let left = (request.limit as usize).saturating_sub(chosen.len()) as u32;
        if left == 0 {
            break;
        }
        let Some(row) = sqlx::query(LOCK_ENDPOINT)
            .bind(account_id)
            .bind(seq)
            .bind(request.now)
            .fetch_optional(&mut *conn)
            .await?
        else {
            // Another node is claiming this endpoint's work, or it was deleted.
            continue;
        };
        let target = target_from(account_id, seq, &row, request.now)?;
        let room = target.occupancy.room(request.per_endpoint, request.now).min(left);
        if room == 0 {
            continue;
        }
        let leased = sqlx::query(LEASE_DUE)
            .bind(target.account_id)
            .bind(target.seq)
            .bind(request.now)
            .bind(&target.ordering)
            .bind(i64::from(room))
            .bind(request.lease_until)
            .fetch_all(&mut *conn)
            .await?;
        for r in leased {
            chosen.push(Claimed {
                delivery_id: r.try_get(0)?,
                account_id: target.account_id,
                attempt: r.try_get::<i64, _>(1)? as u32,
                endpoint_seq: target.seq,
                endpoint_id: target.id.clone(),
                url: target.url.clone(),
                auth: target.auth.clone(),
                secrets: target.secrets.clone(),
                event_id: r.try_get(2)?,
                event_type: r.try_get(3)?,
                application_id: r.try_get(4)?,
                body: r.try_get(5)?,
                leased_until: request.lease_until,
            });
        }
    }
    Ok(chosen)
}
