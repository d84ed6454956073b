-- The failed calls, by status: what a customer filters the history for when an endpoint
-- fails (`response_status=500`). Without it, such a filter reads the history back from its
-- newest call until it finds a page of failures, which may be far back. Partial, so that
-- the successful calls, nearly all of them, cost no more to record.
CREATE INDEX tasks_failed_by_status ON tasks (account_id, response_status, id)
    WHERE response_status NOT BETWEEN 200 AND 299;
