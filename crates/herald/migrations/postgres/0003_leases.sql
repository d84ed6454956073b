-- Leases move out of deliveries into a table of their own, which holds only the calls in
-- flight. A claim then inserts a small row instead of updating the delivery: no delivery is
-- rewritten (with a new entry in each of its indexes) just to be leased, and counting an
-- endpoint's calls in flight reads this small table.
CREATE TABLE leases (
    account_id   BIGINT NOT NULL,
    delivery_id  BIGINT NOT NULL,
    endpoint_seq BIGINT NOT NULL,
    until        BIGINT NOT NULL,
    PRIMARY KEY (account_id, delivery_id),
    FOREIGN KEY (account_id, delivery_id) REFERENCES deliveries (account_id, id) ON DELETE CASCADE
);
CREATE INDEX leases_by_endpoint ON leases (endpoint_seq, until);
CREATE INDEX leases_by_time ON leases (until);

INSERT INTO leases (account_id, delivery_id, endpoint_seq, until)
SELECT account_id, id, endpoint_seq, leased_until FROM deliveries WHERE leased_until IS NOT NULL;
DROP INDEX deliveries_leased;
ALTER TABLE deliveries DROP COLUMN leased_until;
