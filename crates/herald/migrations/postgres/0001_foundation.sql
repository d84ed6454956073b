-- Herald's foundation on PostgreSQL: accounts and their process, jobs, candidates,
-- applications, step changes, event types, the event log and endpoints.
--
-- Every account-owned table has the account first in its primary key, and every foreign key
-- between them carries the account too, so that a distributed PostgreSQL (Citus) can shard
-- the tables by account_id and keep each account's rows, and its joins, on one node (see
-- docs/DEPLOYMENT.md). Ids come from one sequence per table, so they are unique across
-- accounts as the API expects. Times are Unix microseconds.

-- Platform-wide values (the admin token's digest); a reference table under Citus.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Few rows, read by every request's login: a reference table under Citus.
CREATE TABLE accounts (
    id            BIGSERIAL PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE processes (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         BIGSERIAL,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);

CREATE TABLE process_steps (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         BIGSERIAL,
    process_id BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('START', 'CURRENT', 'END')),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, process_id) REFERENCES processes (account_id, id) ON DELETE CASCADE,
    UNIQUE (account_id, process_id, position)
);

CREATE TABLE jobs (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         BIGSERIAL,
    process_id BIGINT NOT NULL,
    title      TEXT NOT NULL,
    reference  TEXT,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, process_id) REFERENCES processes (account_id, id) ON DELETE CASCADE
);

CREATE TABLE candidates (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id         BIGSERIAL,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, id)
);

-- step_id and step_date repeat the application's latest step change, so that reading an
-- application's current step needs no scan of its history.
CREATE TABLE applications (
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id           BIGSERIAL,
    candidate_id BIGINT NOT NULL,
    job_id       BIGINT NOT NULL,
    step_id      BIGINT NOT NULL,
    step_date    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, candidate_id) REFERENCES candidates (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, job_id) REFERENCES jobs (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, step_id) REFERENCES process_steps (account_id, id),
    UNIQUE (account_id, candidate_id, job_id)
);
CREATE INDEX applications_by_job ON applications (account_id, job_id, id);
CREATE INDEX applications_by_candidate ON applications (account_id, candidate_id, id);

-- Every step an application reached, its arrival at the first step included (from_step_id
-- is then NULL).
CREATE TABLE step_changes (
    account_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    id             BIGSERIAL,
    application_id BIGINT NOT NULL,
    step_id        BIGINT NOT NULL,
    from_step_id   BIGINT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, application_id) REFERENCES applications (account_id, id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, step_id) REFERENCES process_steps (account_id, id),
    FOREIGN KEY (account_id, from_step_id) REFERENCES process_steps (account_id, id)
);
CREATE INDEX step_changes_by_application ON step_changes (account_id, application_id, id);

-- The platform's catalogue, the same for every account: a reference table under Citus. The
-- schema is kept as the text it was given, so that it is served back byte for byte.
CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    schema      TEXT NOT NULL,
    builtin     BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);

-- The event log. seq orders events as they were written; body is exactly what each call sends.
CREATE TABLE events (
    account_id     BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq            BIGSERIAL,
    id             TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    application_id BIGINT,
    created_at     BIGINT NOT NULL,
    body           TEXT NOT NULL,
    PRIMARY KEY (account_id, seq),
    UNIQUE (account_id, id)
);
CREATE INDEX events_by_time ON events (created_at);

-- events is a JSONB array of event types, or ["*"], so that writing an event finds its
-- subscribers with one containment test.
CREATE TABLE endpoints (
    account_id            BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    seq                   BIGSERIAL,
    id                    TEXT NOT NULL,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL,
    events                JSONB NOT NULL,
    ordering              TEXT NOT NULL CHECK (ordering IN ('parallel', 'fifo')),
    auth                  TEXT,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    state                 TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'disabled')),
    suspended_until       BIGINT,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    failing_since         BIGINT,
    suspensions           BIGINT NOT NULL DEFAULT 0,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (account_id, seq),
    UNIQUE (account_id, id)
);
-- The dispatcher, which works across accounts, finds an endpoint by its seq alone.
CREATE INDEX endpoints_by_seq ON endpoints (seq);
