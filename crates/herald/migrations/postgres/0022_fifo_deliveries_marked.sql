-- Only the deliveries of FIFO endpoints go into the index that keeps each application's calls
-- in order. The claim reads it for FIFO endpoints alone, yet every delivery wrote an entry
-- (docs/BENCHMARKS.md, "2026-12-04, later"). A delivery is marked when it becomes pending,
-- from its endpoint's ordering, read under the endpoint's lock; a change of ordering locks the
-- endpoint against them all and marks or unmarks its pending deliveries in the same
-- transaction; only pending ones are ever read with the mark.
ALTER TABLE deliveries ADD COLUMN fifo boolean NOT NULL DEFAULT false;
UPDATE deliveries d SET fifo = true FROM endpoints e
WHERE d.state = 'pending' AND e.account_id = d.account_id AND e.seq = d.endpoint_seq AND e.ordering = 'fifo';
DROP INDEX deliveries_in_order;
CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending' AND fifo;
-- As every column of `deliveries` (migration 0021): with the default target, the mark alone
-- would make each ANALYZE of the table sample ten times the rows.
ALTER TABLE deliveries ALTER fifo SET STATISTICS 10;
