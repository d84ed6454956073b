-- The delivery engine: one row per event and subscribed endpoint, the history of calls, and
-- what the dispatcher keeps of each endpoint's health.

-- One event to one endpoint, written in the same transaction as the event. A delivery is
-- pending until a call succeeds or its retry schedule is spent. leased_until marks it as being
-- called; a lease left by a killed process expires (and, on SQLite, is released at start).
CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    endpoint_seq   INTEGER NOT NULL REFERENCES endpoints (seq) ON DELETE CASCADE,
    event_seq      INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    application_id INTEGER,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at        INTEGER NOT NULL,
    leased_until   INTEGER,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX deliveries_by_account ON deliveries (account_id, id);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_seq);

-- Every call made: the items of GET /restapi/v1/webhook/task. Endpoint and event are kept by
-- their public ids so that the history outlives a deleted endpoint.
CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    delivery_id     INTEGER NOT NULL,
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    application_id  INTEGER,
    attempt         INTEGER NOT NULL,
    url             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    error           TEXT,
    request_headers TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX tasks_by_account ON tasks (account_id, id);
CREATE INDEX tasks_by_endpoint ON tasks (account_id, endpoint_id, id);
CREATE INDEX tasks_by_application ON tasks (account_id, application_id, id);
CREATE INDEX tasks_by_time ON tasks (created_at);

ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
ALTER TABLE endpoints ADD COLUMN suspensions INTEGER NOT NULL DEFAULT 0;
