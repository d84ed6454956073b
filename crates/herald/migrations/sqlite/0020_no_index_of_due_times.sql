-- No index of all pending deliveries by due time. Only the claim's look-ahead read it (when
-- the first pending delivery falls due), once per claim, yet the writer thread wrote an entry
-- for every delivery and removed it once called. The look-ahead now asks each endpoint with
-- pending work, in the index of its pending deliveries by due time (store/sqlite/claim.rs).
-- PostgreSQL keeps its index: there the look-ahead asked that way cost the claim more (0.62
-- against 0.48 ms per lease statement) than the index cost the writes, whose dead entries
-- its vacuum removes in bulk.
DROP INDEX deliveries_due;
