-- The application as an event's own transaction saw it (JSON), for events about one: what a
-- version-2 call carries in data.application. Events written before this migration have
-- none, and their version-2 calls carry no data.application.
ALTER TABLE events ADD COLUMN snapshot TEXT;
-- The webhook format an endpoint receives ("1" or "2").
ALTER TABLE endpoints ADD COLUMN version TEXT NOT NULL DEFAULT '1';
-- The format a task's call was sent in: its request shows the very body that was sent.
ALTER TABLE tasks ADD COLUMN version TEXT NOT NULL DEFAULT '1';
-- The versions support has deprecated: since when, and the sunset date announced.
CREATE TABLE webhook_versions (
    version TEXT PRIMARY KEY,
    deprecated_at INTEGER NOT NULL,
    sunset TEXT NOT NULL
);
