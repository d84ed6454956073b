-- An endpoint's rate limit in calls per second (NULL: none), and the first start time its
-- next call may have (see domain/pacing.rs), which each claim moves on under the endpoint's
-- row lock: one budget for every node.
ALTER TABLE endpoints ADD COLUMN rate_limit bigint;
ALTER TABLE endpoints ADD COLUMN next_call_at bigint;
