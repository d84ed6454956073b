-- Every node learns of work made due from the database itself: a write that makes a delivery
-- due (a new delivery, one made due again by a retry, an endpoint active again) sends
-- NOTIFY herald_work from these triggers, in its own transaction, so the notification goes
-- out on commit and only then. No write has to remember to send it; the node that made the
-- write hears it too, on the connection it LISTENs on (store/postgres/notify.rs).
-- PostgreSQL folds the identical notifications of one transaction into one.

CREATE FUNCTION herald_announce_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('herald_work', '');
    RETURN NULL;
END $$;

-- Once per statement, and only if it wrote a delivery: publishing to an account without
-- subscribed endpoints wakes no one.
CREATE FUNCTION herald_announce_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM made) THEN
        PERFORM pg_notify('herald_work', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER deliveries_made AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS made
    FOR EACH STATEMENT EXECUTE FUNCTION herald_announce_deliveries();

-- A retry's record moves next_at later; only a person's retry (or a replay of a finished
-- delivery) makes a delivery due again, or sooner.
CREATE TRIGGER deliveries_due_again AFTER UPDATE OF state, next_at ON deliveries
    FOR EACH ROW WHEN (NEW.state = 'pending' AND (OLD.state <> 'pending' OR NEW.next_at < OLD.next_at))
    EXECUTE FUNCTION herald_announce_work();

CREATE TRIGGER endpoints_active_again AFTER UPDATE OF state ON endpoints
    FOR EACH ROW WHEN (NEW.state = 'active' AND OLD.state <> 'active')
    EXECUTE FUNCTION herald_announce_work();
