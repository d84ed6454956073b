-- The Idempotency-Key of each POST written in the last 24 hours, with the answer it got,
-- kept in the transaction of the write itself. `scope` is whose key space it is in:
-- 'admin', or 'account:' and the account's id.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status SMALLINT NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
