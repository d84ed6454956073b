-- An endpoint's counters by hour (see domain/stats.rs): calls by outcome, a latency
-- histogram, failures by status and by failure code. The recorder adds to them in the
-- transaction that records the calls; the dashboard and `…/stats` read them.
CREATE TABLE endpoint_stats (
    account_id bigint NOT NULL,
    endpoint_seq bigint NOT NULL,
    hour bigint NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (account_id, endpoint_seq, hour, kind, key)
);
CREATE INDEX endpoint_stats_by_hour ON endpoint_stats (hour);
