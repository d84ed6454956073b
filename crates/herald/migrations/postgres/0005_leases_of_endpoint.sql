-- Counting an endpoint's calls in flight names its account too. With the account first in
-- this index the count is a plain index scan, which marks the entries of deleted leases dead
-- as it passes them. The planner used to combine the two other indexes in a bitmap scan,
-- which never does, so every count walked every lease deleted since the last vacuum.
CREATE INDEX leases_of_endpoint ON leases (account_id, endpoint_seq, until);
DROP INDEX leases_by_endpoint;
