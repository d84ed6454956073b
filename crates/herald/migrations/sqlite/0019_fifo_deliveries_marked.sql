-- Only the deliveries of FIFO endpoints go into the index that keeps each application's calls
-- in order. The claim reads it for FIFO endpoints alone, yet every delivery wrote an entry and
-- removed it once called: about a sixth of the writer thread's time under full load
-- (docs/BENCHMARKS.md, "2026-12-04, later"). A delivery is marked when it becomes pending,
-- from its endpoint's ordering, and a change of ordering marks or unmarks the endpoint's
-- pending deliveries in the same transaction; only pending ones are ever read with the mark.
ALTER TABLE deliveries ADD COLUMN fifo INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET fifo = 1
WHERE state = 'pending' AND endpoint_seq IN (SELECT seq FROM endpoints WHERE ordering = 'fifo');
DROP INDEX deliveries_in_order;
CREATE INDEX deliveries_in_order ON deliveries (endpoint_seq, application_id, id) WHERE state = 'pending' AND fifo = 1;
