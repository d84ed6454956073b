-- The dispatcher claims work endpoint by endpoint: it finds the endpoints with pending
-- deliveries by skipping through this index, then reads each one's due deliveries in order,
-- so that a claim costs what it takes, not the size of the backlog.
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_seq, next_at) WHERE state = 'pending';
