-- The node holds its leases in memory (src/store/sqlite/leases.rs): a delivery's lease was
-- written at its claim and cleared at its record or the next start, and no other process
-- ever read it.
DROP INDEX deliveries_leased;
ALTER TABLE deliveries DROP COLUMN leased_until;
