-- An endpoint's calls in flight are its leased deliveries: a claim counts them through this
-- small index (a few rows per endpoint) rather than through the endpoint's whole backlog.
CREATE INDEX deliveries_leased ON deliveries (endpoint_seq) WHERE leased_until IS NOT NULL;
