-- Foreign keys that cost more than they guard. Each checked row takes a lock on the row it
-- refers to: every event and task locked its account's row, every lease its delivery's, and
-- every delivery its event's. Concurrent writers of one account then share those locks
-- through multixacts, and each lock dirties a page: at full load they were a fifth of the
-- ingest's cost. The rows they guard are written only where their parent exists (an event
-- by its account's request, a delivery with its event, a task for a call, a lease by a claim
-- that holds its endpoint's row), so the cascades are written out where parents are deleted
-- (store/postgres: delete_account, delete_endpoint, purge). A delivery keeps its foreign key
-- to its endpoint: publishing while the endpoint is deleted must fail, not leave a delivery
-- for nobody.
ALTER TABLE events DROP CONSTRAINT events_account_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_account_id_event_seq_fkey;
ALTER TABLE tasks DROP CONSTRAINT tasks_account_id_fkey;
ALTER TABLE leases DROP CONSTRAINT leases_account_id_delivery_id_fkey;
