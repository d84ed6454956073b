-- An endpoint's counters split over a few shards, one chosen per recorder batch and summed
-- when read: two nodes recording calls of one endpoint then seldom update the same row, and
-- seldom wait for each other's commit on it.
ALTER TABLE endpoint_stats ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE endpoint_stats DROP CONSTRAINT endpoint_stats_pkey;
ALTER TABLE endpoint_stats ADD PRIMARY KEY (account_id, endpoint_seq, hour, kind, key, shard);
