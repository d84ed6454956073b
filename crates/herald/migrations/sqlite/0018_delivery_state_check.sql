-- The deliveries' state check, written as comparisons. SQLite evaluates `state IN (a, b, c)`
-- by building a temporary lookup table (a b-tree with its own page cache) for each row it
-- checks: twice per delivery, when it is written and when its call is recorded, a few
-- microseconds each on the single writer thread. Comparisons check the same thing with none.
-- A check cannot be altered in place, so the table is rebuilt (rows, ids and indexes as they
-- were; a few seconds per million deliveries, once); nothing refers to it by a foreign key.
CREATE TABLE deliveries_rebuilt (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    endpoint_seq   INTEGER NOT NULL REFERENCES endpoints (seq) ON DELETE CASCADE,
    event_seq      INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    application_id INTEGER,
    state          TEXT NOT NULL CHECK (state = 'pending' OR state = 'succeeded' OR state = 'failed'),
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_at        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
INSERT INTO deliveries_rebuilt (id, account_id, endpoint_seq, event_seq, application_id, state, attempts, next_at,
                                created_at)
    SELECT id, account_id, endpoint_seq, event_seq, application_id, state, attempts, next_at, created_at
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_rebuilt RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_by_account ON deliveries (account_id, id);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_seq, next_at) WHERE state = 'pending';
