-- A delivery's key to its endpoint goes too (see 0007). Its check locked the endpoint's row
-- once per delivery: for every subscribed endpoint of every event, while the claims hold the
-- same rows, so the two kinds of lock were shared through a multixact, and each check ran a
-- query of its own. What it guarded is kept another way: whoever writes deliveries locks their
-- endpoints first, once per statement (`FOR KEY SHARE` when publishing, the claim's own lock
-- when replaying), and deleting an endpoint deletes its row before its deliveries, in a later
-- statement. A publish that locked the endpoint first makes the deletion wait for its commit,
-- and the deliveries it wrote are then seen and deleted; one that comes second finds the row
-- gone and writes no delivery for it.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_account_id_endpoint_seq_fkey;
