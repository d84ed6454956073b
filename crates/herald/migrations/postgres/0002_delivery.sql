-- The delivery engine on PostgreSQL: one row per event and subscribed endpoint, and the
-- history of calls.

-- One event to one endpoint, written in the same transaction as the event. A delivery is
-- pending until a call succeeds or its retry schedule is spent. leased_until marks it as being
-- called by some node; when that node dies, the lease runs out and another node takes it.
CREATE TABLE deliveries (
    account_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id             BIGSERIAL,
    endpoint_seq   BIGINT NOT NULL,
    event_seq      BIGINT NOT NULL,
    application_id BIGINT,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_at        BIGINT NOT NULL,
    leased_until   BIGINT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, endpoint_seq) REFERENCES endpoints (account_id, seq) ON DELETE CASCADE,
    FOREIGN KEY (account_id, event_seq) REFERENCES events (account_id, seq) ON DELETE CASCADE
);
-- The claim skips through the endpoints with pending work, then reads each one's due
-- deliveries in order; FIFO endpoints look for an older pending delivery of the application.
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_seq, next_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
-- Only calls in flight are leased: a small index that counts each endpoint's calls across
-- nodes, and tells when a dead node's lease runs out.
CREATE INDEX deliveries_leased ON deliveries (endpoint_seq, leased_until) WHERE leased_until IS NOT NULL;
CREATE INDEX deliveries_by_event ON deliveries (account_id, event_seq);

-- Every call made: the items of GET /restapi/v1/webhook/task. Endpoint and event are kept by
-- their public ids so that the history outlives a deleted endpoint.
CREATE TABLE tasks (
    account_id      BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id              BIGSERIAL,
    delivery_id     BIGINT NOT NULL,
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    application_id  BIGINT,
    attempt         BIGINT NOT NULL,
    url             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    duration_ms     BIGINT NOT NULL,
    response_status BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    error           TEXT,
    request_headers TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX tasks_by_endpoint ON tasks (account_id, endpoint_id, id);
CREATE INDEX tasks_by_application ON tasks (account_id, application_id, id);
CREATE INDEX tasks_by_time ON tasks (created_at);
