-- An endpoint's filter (see domain/filter.rs), as the JSON it was given; NULL: every event
-- it subscribes to.
ALTER TABLE endpoints ADD COLUMN filter TEXT;
