-- Herald's foundation: accounts and their process, jobs, candidates, applications, step
-- changes, event types, the event log and endpoints.
--
-- Every account-owned table leads with account_id in an index that serves its queries, so that
-- a sharded PostgreSQL can later distribute by account. Times are Unix microseconds.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE processes (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX processes_by_account ON processes (account_id, id);

CREATE TABLE process_steps (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    process_id INTEGER NOT NULL REFERENCES processes (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('START', 'CURRENT', 'END'))
) STRICT;
CREATE UNIQUE INDEX process_steps_by_account ON process_steps (account_id, process_id, position);

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    process_id INTEGER NOT NULL REFERENCES processes (id),
    title      TEXT NOT NULL,
    reference  TEXT,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX jobs_by_account ON jobs (account_id, id);

CREATE TABLE candidates (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    first_name TEXT NOT NULL,
    last_name  TEXT NOT NULL,
    email      TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX candidates_by_account ON candidates (account_id, id);

-- step_id and step_date repeat the application's latest step change, so that reading an
-- application's current step needs no scan of its history.
CREATE TABLE applications (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    candidate_id INTEGER NOT NULL REFERENCES candidates (id) ON DELETE CASCADE,
    job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_id      INTEGER NOT NULL REFERENCES process_steps (id),
    step_date    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX applications_by_account ON applications (account_id, id);
CREATE UNIQUE INDEX applications_by_pair ON applications (account_id, candidate_id, job_id);
CREATE INDEX applications_by_job ON applications (account_id, job_id, id);
CREATE INDEX applications_by_candidate ON applications (account_id, candidate_id, id);

-- Every step an application reached, its arrival at the first step included (from_step_id
-- is then NULL).
CREATE TABLE step_changes (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    application_id INTEGER NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    step_id        INTEGER NOT NULL REFERENCES process_steps (id),
    from_step_id   INTEGER REFERENCES process_steps (id),
    created_at     INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX step_changes_by_account ON step_changes (account_id, id);
CREATE INDEX step_changes_by_application ON step_changes (account_id, application_id, id);

-- The one table without an account: the platform's catalogue, the same for every account
-- (a reference table, copied to every shard, in a sharded PostgreSQL).
CREATE TABLE event_types (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    schema      TEXT NOT NULL,
    builtin     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- The event log. seq orders events as they were written; body is exactly what each call sends.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    event_type     TEXT NOT NULL,
    application_id INTEGER,
    created_at     INTEGER NOT NULL,
    body           TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_account ON events (account_id, seq);

CREATE TABLE endpoints (
    seq                  INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    account_id           INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url                  TEXT NOT NULL,
    description          TEXT NOT NULL,
    events               TEXT NOT NULL,  -- JSON array of event types, or ["*"]
    ordering             TEXT NOT NULL CHECK (ordering IN ('parallel', 'fifo')),
    auth                 TEXT,           -- JSON, or NULL
    secret               TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'disabled')),
    suspended_until      INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX endpoints_by_account ON endpoints (account_id, seq);
