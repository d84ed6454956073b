-- An endpoint's call controls: extra headers (a JSON object), its own retry delays (a JSON
-- array of milliseconds) and its own time-out; NULL: the server's.
ALTER TABLE endpoints ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN timeout_ms INTEGER;
