-- An endpoint's counters by hour (see domain/stats.rs): calls by outcome, a latency
-- histogram, failures by status and by failure code. The recorder adds to them in the
-- transaction that records the calls; the dashboard and `…/stats` read them. They go with
-- their endpoint, and so with its account.
CREATE TABLE endpoint_stats (
    account_id INTEGER NOT NULL,
    endpoint_seq INTEGER NOT NULL REFERENCES endpoints (seq) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    -- By endpoint first: its deletion's cascade finds its counters by this key.
    PRIMARY KEY (endpoint_seq, hour, kind, key)
) WITHOUT ROWID;
CREATE INDEX endpoint_stats_by_hour ON endpoint_stats (hour);
