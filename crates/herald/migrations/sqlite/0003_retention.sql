-- Retention purges events by age; this index lets it find the oldest ones without a scan.
CREATE INDEX events_by_time ON events (created_at);
