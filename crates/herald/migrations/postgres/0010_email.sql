-- Where e-mail about an account's endpoints goes.
ALTER TABLE accounts ADD COLUMN notify_email TEXT;

-- E-mail waiting to be sent, written in the transaction of the operational event it tells of
-- (`event_id`), so that none is lost nor sent for a change that did not commit. `kind` is
-- 'suspended' or 'disabled'; `task_id` the call that made the news.
CREATE TABLE emails (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    endpoint_seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    task_id BIGINT,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT,
    given_up_at BIGINT
);

CREATE INDEX emails_due ON emails (next_at) WHERE sent_at IS NULL AND given_up_at IS NULL;
CREATE INDEX emails_of_endpoint ON emails (endpoint_seq, kind, created_at);
