-- Lighter statistics for the tables that grow fastest. Herald analyses them itself as they
-- grow (store/postgres/upkeep.rs), several times a minute under load. The payloads are never
-- looked up, so they are not described at all: their values are the widest an ANALYZE sorts
-- and counts. `deliveries` is read only by its keys and through its partial indexes, by
-- statements whose plans do not hang on how its values are spread, so 3,000 sampled rows
-- describe it (a target of 10) instead of 30,000. `tasks` and `events` keep the default for
-- the columns a customer filters by: with 3,000 rows, an endpoint with a few dozen calls
-- among 100,000 went unseen, and the planner read the whole history backwards to list its
-- last call (32 ms instead of 2 on the dashboard's endpoints page).
ALTER TABLE deliveries
    ALTER account_id SET STATISTICS 10, ALTER id SET STATISTICS 10, ALTER endpoint_seq SET STATISTICS 10,
    ALTER event_seq SET STATISTICS 10, ALTER application_id SET STATISTICS 10, ALTER state SET STATISTICS 10,
    ALTER attempts SET STATISTICS 10, ALTER next_at SET STATISTICS 10, ALTER created_at SET STATISTICS 10;
ALTER TABLE events ALTER body SET STATISTICS 0, ALTER snapshot SET STATISTICS 0;
ALTER TABLE tasks
    ALTER url SET STATISTICS 0, ALTER response_body SET STATISTICS 0, ALTER error SET STATISTICS 0,
    ALTER request_headers SET STATISTICS 0;
