-- A delivery's account is already checked twice, by its keys into endpoints and events (each
-- with the account, each cascading when the account goes). Its own key into accounts only
-- locked the account's row once more per delivery, for every subscribed endpoint of every
-- event: under concurrent writes that single row was the hottest lock of the database.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_account_id_fkey;
